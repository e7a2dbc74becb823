"""Narrow-first training: a fit found for a narrower network is a fit for the wider one.

Claim (exact): let hidden layer l (affine -> relu) be followed by an affine layer l+1, both free.
A network whose layer l has only w < h units embeds into the width-h network by giving the
extra units zero incoming weights and bias (their ReLU outputs relu(0) = 0 on every input) and
zero outgoing weights (columns of W_{l+1}): every logit, on every input, is unchanged. So a
width-w model that classifies every point is, padded with zeros, a width-h model that does.

The converse does not hold: an unsat at width w says nothing about width h and is never
reported. `train` uses this to try cheap narrow queries first, with part of the time budget,
and then the requested width itself (`TrainResult.notes` says which width the solver solved).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from ..ir import Affine, Graph, Relu, Sym


def narrowable(problem) -> list[tuple[int, int]]:
    """(index of hidden affine, index of the affine after its ReLU) for every free hidden layer
    whose next affine layer is free too (and nothing else reads the layer)."""
    nodes = problem.graph.nodes
    users = problem.graph.users()
    out = []
    for k, n in enumerate(nodes):
        if not (isinstance(n, Affine) and isinstance(n.weight, Sym) and isinstance(n.bias, Sym)):
            continue
        if k + 2 >= len(nodes):
            continue
        r, nxt = nodes[k + 1], nodes[k + 2]
        if not (isinstance(r, Relu) and r.x == n.name and isinstance(nxt, Affine) and
                nxt.x == r.name and isinstance(nxt.weight, Sym)):
            continue
        if len(users[n.name]) + len(users[r.name]) != 2 or {n.name, r.name} & set(problem.graph.outputs):
            continue
        out.append((k, k + 2))
    return out


def widths(problem) -> dict[int, int]:
    """Units of each narrowable hidden layer, by node index."""
    return {k: problem.graph.nodes[k].weight.shape[0] for k, _ in narrowable(problem)}


def _cut(p: Sym, rows: slice = slice(None), cols: slice = slice(None)) -> Sym:
    idx = (rows,) if len(p.shape) == 1 else (rows, cols)
    shape = tuple(len(range(*s.indices(d))) for s, d in zip(idx, p.shape))
    def part(v):
        return None if v is None else np.asarray(v)[idx]
    return Sym(p.name, shape, part(p.lo), part(p.hi), part(p.nominal))


def narrow(problem, width: int):
    """The same problem with every narrowable hidden layer cut to at most `width` units (the
    first ones; their parameter names are kept, so a model decodes into the same names)."""
    nodes = list(problem.graph.nodes)
    for k, k2 in narrowable(problem):
        a, nxt = nodes[k], nodes[k2]
        w = min(width, a.weight.shape[0])
        nodes[k] = Affine(a.name, a.x, _cut(a.weight, slice(0, w)), _cut(a.bias, slice(0, w)))
        nodes[k2] = Affine(nxt.name, nxt.x, _cut(nxt.weight, slice(None), slice(0, w)), nxt.bias)
    g = Graph(tuple(nodes), problem.graph.outputs, problem.graph.meta).check()
    return replace(problem, graph=g)


def pad(problem, params: dict) -> dict:
    """Parameters of a narrowed problem, zero-padded to the shapes of `problem`'s (see the
    module docstring for why the function is unchanged)."""
    out = {}
    for _, _, p in problem.graph.params():
        if not isinstance(p, Sym):
            continue
        v = params[p.name]
        full = np.empty(p.shape, dtype=object)
        full[...] = Fraction(0)
        full[tuple(slice(0, s) for s in v.shape)] = v
        out[p.name] = full
    return out


def schedule(h: int) -> list[int]:
    """Narrow widths to try before width h: 1, 2, 4, ... below h."""
    out, w = [], 1
    while w < h:
        out.append(w)
        w *= 2
    return out
