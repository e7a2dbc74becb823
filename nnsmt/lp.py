"""The triangle-relaxation LP of an Affine/ReLU network over a box: a floating-point steer.

`relaxed_minimiser` solves, with SciPy's HiGHS, min c . output over the inputs of a box, every
value a variable, affine nodes as equalities, and each ReLU by its bounds: a neuron fixed (by a
sub-problem's phase, or stable by its bounds) is exact (identity with pre >= 0, or 0 with
pre <= 0), a free one is the triangle (r >= 0, r >= z, r <= u (z - l) / (u - l)). It returns
the input part of the LP's optimum: where most phases are fixed, that is close to the real
minimiser, so it is a good counterexample candidate. It proves nothing: the caller replays a
candidate exactly, and an LP failure (infeasible, numerical trouble, time) just gives None.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .ir import Affine, Graph, Input, Relu, Sparse


def relaxed_minimiser(graph: Graph, lo: np.ndarray, hi: np.ndarray, bounds: Mapping[str, object],
                      c: np.ndarray, phases: Mapping[str, np.ndarray] | None = None,
                      time_limit: float = 5.0) -> np.ndarray | None:
    """The input of the relaxed LP's optimum of min c . output (see the module docstring), or None.

    Args:
        graph: a one-input, one-output graph of Input, Affine (float weights) and Relu nodes.
        lo, hi: the input box (float64, (n,)).
        bounds: value name -> interval with `.lo`/`.hi` (n,) arrays: every ReLU's
            pre-activation bounds on the sub-problem (e.g. `nnsmt.bounds.propagate_bounds`).
        c: the objective's coefficients on the output.
        phases: optional ReLU name -> int8 (m,) phases (+1 active, -1 inactive, 0 free).
        time_limit: seconds for HiGHS.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_array, csr_array, hstack, identity, vstack

    phases = phases or {}
    dims = graph.dims()
    col: dict[str, int] = {}
    n = 0
    for node in graph.nodes:
        col[node.name] = n
        n += dims[node.name]
    vlo = np.full(n, -np.inf)
    vhi = np.full(n, np.inf)
    eq_rows, eq_b, ub_rows, ub_b = [], [], [], []

    def block(name, M):
        """M (k, dims[name]) placed at name's columns of an n-wide row block."""
        k = M.shape[0]
        a = col[name]
        parts = []
        if a:
            parts.append(csr_array((k, a)))
        parts.append(csr_array(M))
        rest = n - a - dims[name]
        if rest:
            parts.append(csr_array((k, rest)))
        return hstack(parts, format="csr")

    for node in graph.nodes:
        a, m = col[node.name], dims[node.name]
        if isinstance(node, Input):
            vlo[a:a + m], vhi[a:a + m] = lo, hi
        elif isinstance(node, Affine):
            rows = -block(node.name, identity(m, format="csr"))
            for v, W in node.terms():
                M = W.csr() if isinstance(W, Sparse) else np.asarray(W.value, dtype=np.float64)
                rows = rows + block(v, M)
            eq_rows.append(rows)
            eq_b.append(-np.asarray(node.bias.value, dtype=np.float64))
        elif isinstance(node, Relu):
            z = bounds[node.x]
            l, u = np.asarray(z.lo, dtype=np.float64), np.asarray(z.hi, dtype=np.float64)
            ph = np.asarray(phases.get(node.name, np.zeros(m, np.int8)))
            act = (ph > 0) | ((ph == 0) & (l >= 0))
            ina = ~act & ((ph < 0) | (u <= 0))
            free = ~act & ~ina
            b = col[node.x]
            vlo[b:b + m] = np.maximum(vlo[b:b + m], np.where(act, np.maximum(l, 0.0), l))
            vhi[b:b + m] = np.minimum(vhi[b:b + m], np.where(ina, np.minimum(u, 0.0), u))
            vlo[a:a + m] = 0.0
            vhi[a:a + m] = np.where(ina, 0.0, np.maximum(u, 0.0))
            eye = identity(m, format="csr")
            ia = np.flatnonzero(act)
            if len(ia):  # r = z
                sel = csr_array(eye[ia])
                eq_rows.append(block(node.name, sel) - block(node.x, sel))
                eq_b.append(np.zeros(len(ia)))
            fi = np.flatnonzero(free)
            if len(fi):  # z - r <= 0; r - s z <= -s l
                sel = csr_array(eye[fi])
                s = u[fi] / (u[fi] - l[fi])
                ub_rows.append(block(node.x, sel) - block(node.name, sel))
                ub_b.append(np.zeros(len(fi)))
                ub_rows.append(block(node.name, sel) - block(node.x, csr_array(coo_array(
                    (s, (np.arange(len(fi)), fi)), shape=(len(fi), m)))))
                ub_b.append(-s * l[fi])
        else:
            return None
    if not (np.all(np.isfinite(vlo[:dims[graph.inputs[0].name]])) and np.all(vlo <= vhi)):
        return None
    cost = np.zeros(n)
    out = graph.outputs[0]
    cost[col[out]:col[out] + dims[out]] = c
    try:
        res = linprog(cost, A_ub=vstack(ub_rows, format="csr") if ub_rows else None,
                      b_ub=np.concatenate(ub_b) if ub_b else None,
                      A_eq=vstack(eq_rows, format="csr"), b_eq=np.concatenate(eq_b),
                      bounds=np.column_stack([vlo, vhi]), method="highs",
                      options={"time_limit": time_limit, "presolve": True})
    except (ValueError, np.linalg.LinAlgError):
        return None
    if res.status != 0 or res.x is None:
        return None
    a = col[graph.inputs[0].name]
    return np.clip(res.x[a:a + len(lo)], lo, hi)


__all__ = ["relaxed_minimiser"]
