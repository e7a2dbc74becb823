"""Graph -> Graph passes that keep the function exactly on a domain: removing stable ReLUs.

`remove_stable(graph, states)` takes per-ReLU states (+1 stably active, -1 stably inactive,
0 unstable or unknown; from `nnsmt.queries.stability`) for the pattern
`a = W x + b; h = relu(a); z = V h + c` and
- deletes stably inactive neurons (h_i = 0: row i of W, b and column i of V go);
- folds stably active ones (h_A = W_A x + b_A is affine): a row basis W_B of W_A is kept
  (B subset of A, so those neurons stay, still stably active), the others are written exactly as
  h_A = M h_B + (b_A - M b_B) and folded into V and c. When nothing is unstable and it is
  smaller, the two affine maps are merged outright (z = V_A W_A x + V_A b_A + c).
All arithmetic is exact (Fractions where a product is not a float).

On a DAG the pattern must be private: `a` is read only by `h`, and `h` only by `z`, as its first
input. `z` may read further values (`z = V h + Σ U_k y_k + c`): those terms are kept as they
are, so folding stays exact. When `a` has several inputs or a sparse weight, only the stably
inactive neurons are deleted (rows of every term); its active ones stay ReLUs, which is exact
too. A ReLU whose pre-activation or output is shared (a residual connection, an output), or
whose `z` weight is sparse or whose parameters are symbolic, is left unchanged. A value that
loses neurons loses its ONNX name and tensor shape (it no longer is that tensor); `z` keeps both.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from .ir import Affine, Const, Graph, Relu, Sparse


def _frac(a) -> np.ndarray:
    return Const(a).fractions() if not isinstance(a, Const) else a.fractions()


def _row_basis(W: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Exact row basis of a Fraction matrix: (indices B, M) with W == M @ W[B]."""
    basis: list[int] = []
    red: list[np.ndarray] = []  # echelon rows, 1 at their pivot; red[k] = sum comb[k][j] W[basis[j]]
    pivots: list[int] = []
    comb: list[dict] = []
    coords: list[dict] = []  # W[i] = sum coords[i][j] W[basis[j]]
    for i in range(W.shape[0]):
        r = W[i].copy()
        t: dict = {}  # r = W[i] + sum t[j] W[basis[j]]
        for k, p in enumerate(pivots):
            f = r[p]
            if f:
                r = r - f * red[k]
                for j, v in comb[k].items():
                    t[j] = t.get(j, Fraction(0)) - f * v
        nz = [q for q, v in enumerate(r) if v != 0]
        if nz:
            piv = r[nz[0]]
            j = len(basis)
            basis.append(i)
            red.append(r / piv)
            pivots.append(nz[0])
            comb.append({k: v / piv for k, v in t.items()} | {j: Fraction(1) / piv})
            coords.append({j: Fraction(1)})
        else:
            coords.append({j: -v for j, v in t.items() if v})
    M = np.empty((W.shape[0], len(basis)), dtype=object)
    M[...] = Fraction(0)
    for i, cd in enumerate(coords):
        for j, v in cd.items():
            M[i, j] = v
    return basis, M


def _mat(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    out[...] = a
    return out


def _rows(w, rows: np.ndarray, zero: bool = False):
    """Rows of a Const or Sparse weight (all zero when `zero`)."""
    if isinstance(w, Sparse):
        return Sparse.from_coo((len(rows), w.shape[1]), [], [], []) if zero else w.take_rows(rows)
    out = _frac(w)[rows]
    if zero:
        out[:] = Fraction(0)
    return Const(_mat(out))


def remove_stable(graph: Graph, states: dict[str, np.ndarray], merge: bool = True) -> Graph:
    """A graph equal to `graph` on the domain the states hold over (see module docstring).

    ReLU layers that are not `affine -> relu -> affine` with single uses and constant
    parameters (a dense `V`) are left unchanged; when the first map is sparse or has several
    inputs only the stably inactive neurons go (the active ones stay ReLUs, exactly).
    """
    nodes = list(graph.nodes)
    uses = {v: len(u) + graph.outputs.count(v) for v, u in graph.users().items()}
    by_name = {n.name: n for n in nodes}
    for r in [n for n in nodes if isinstance(n, Relu)]:
        if r.name not in states:
            continue
        a = by_name[r.x]
        nxt = [n for n in nodes if isinstance(n, Affine) and n.x == r.name]
        if not isinstance(a, Affine) or uses.get(a.name) != 1 or uses.get(r.name) != 1 or len(nxt) != 1:
            continue
        z = nxt[0]
        # z.more is kept as it is: only V and c change
        if not all(isinstance(p, Const) for p in (a.bias, z.weight, z.bias)) or \
                not all(isinstance(w, (Const, Sparse)) for _, w in a.terms()):
            continue
        s = np.asarray(states[r.name])
        if a.more or isinstance(a.weight, Sparse):
            # several inputs or a sparse map: drop the stably inactive rows of every term; the
            # active neurons stay (relu(a_i) = a_i there: exact), no basis is computed
            keep = np.flatnonzero(s != -1)
            if keep.size == s.size:
                continue
            dead = keep.size == 0  # keep one dead neuron (relu(0) = 0) for a valid shape
            rows = np.array([0]) if dead else keep
            bk = np.array([Fraction(0)], dtype=object) if dead else _frac(a.bias)[keep]
            new_a = Affine(a.name, a.x, _rows(a.weight, rows, dead), Const(_mat(bk)),
                           more=tuple((x, _rows(w, rows, dead)) for x, w in a.more))
            Vk = _frac(z.weight)[:, rows]
            if dead:
                Vk[:] = Fraction(0)
            new_z = replace(z, weight=Const(_mat(Vk)))
            new_r = Relu(r.name, r.x)
            nodes = [new_a if n is a else new_r if n is r else new_z if n is z else n for n in nodes]
            by_name = {n.name: n for n in nodes}
            continue
        act, unst = np.flatnonzero(s == 1), np.flatnonzero(s == 0)
        W, b, V, c = (_frac(p) for p in (a.weight, a.bias, z.weight, z.bias))
        if act.size:
            B_local, M = _row_basis(W[act])
            B = act[B_local]
            d = b[act] - M.dot(b[B]) if B.size else b[act]
            VA = V[:, act]
            newVB = VA.dot(M) if B.size else np.zeros((V.shape[0], 0), dtype=object)
            c = c + VA.dot(d)
            V = V.copy()
            V[:, B] = newVB
        else:
            B = act
        keep = np.sort(np.concatenate([unst, B])).astype(int)
        if merge and unst.size == 0 and act.size:
            # whole layer linear: z = V_A (W_A x + b_A) + c, if that has fewer weights
            VA0, WA = _frac(z.weight)[:, act], W[act]
            merged = V.shape[0] * W.shape[1]
            kept = keep.size * W.shape[1] + V.shape[0] * keep.size
            if merged <= kept:
                w2 = VA0.dot(WA)
                b2 = VA0.dot(b[act]) + _frac(z.bias)
                new = replace(z, x=a.x, weight=Const(_mat(w2)), bias=Const(_mat(b2)))
                nodes = [new if n is z else n for n in nodes if n is not a and n is not r]
                by_name = {n.name: n for n in nodes}
                continue
        if keep.size == 0:  # no neuron left: keep one dead neuron (relu(0) = 0) for a valid shape
            Wk = np.zeros((1, W.shape[1]), dtype=object)
            Wk[:] = Fraction(0)
            bk = np.array([Fraction(0)], dtype=object)
            Vk = np.zeros((V.shape[0], 1), dtype=object)
            Vk[:] = Fraction(0)
        else:
            Wk, bk, Vk = W[keep], b[keep], V[:, keep]
        new_z = replace(z, weight=Const(_mat(Vk)), bias=Const(_mat(c)))
        if keep.size == W.shape[0]:  # every neuron stays: a and h are the same tensors
            new_a, new_r = a, r
        else:
            new_a = Affine(a.name, a.x, Const(_mat(Wk)), Const(_mat(bk)))
            new_r = Relu(r.name, r.x)
        nodes = [new_a if n is a else new_r if n is r else new_z if n is z else n for n in nodes]
        by_name = {n.name: n for n in nodes}
    meta = dict(graph.meta) | {"compressed": "stable ReLUs removed"}
    meta.pop("format", None)  # no longer the ONNX file it came from
    return Graph(tuple(nodes), graph.outputs, meta).check()


def size(graph: Graph) -> dict[str, int]:
    """Parameters, connections (weight entries; a sparse weight's stored ones) and ReLU neurons
    of a graph."""
    params = conns = nonzero = 0
    for n in graph.nodes:
        if isinstance(n, Affine):
            for _, w in n.terms():
                if isinstance(w, Sparse):
                    params += w.nnz
                    conns += w.nnz
                    nonzero += int(np.count_nonzero(w.data != 0))
                elif isinstance(w, Const):
                    params += w.value.size
                    conns += w.value.size
                    nonzero += int(np.count_nonzero(w.value != 0))
                else:
                    conns += int(np.prod(w.shape))
            if isinstance(n.weight, (Const, Sparse)) and isinstance(n.bias, Const):
                params += n.bias.value.size
    neurons = sum(graph.dims()[n.name] for n in graph.nodes if isinstance(n, Relu))
    return {"parameters": params, "connections": conns, "nonzero_connections": nonzero, "relus": neurons}
