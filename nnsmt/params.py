"""Make a network's parameters symbolic: every selected weight and bias ranges over nominal ± δ.

The result is a new Graph whose selected `Const` parameters are `Sym` with exact rational
`lo`/`hi` and the original value as `nominal`; `nominal_graph` turns it back. δ is absolute
(`|p - p0| <= δ`) or relative (`|p - p0| <= δ·|p0|`, so a zero parameter stays zero).
An affine node over several inputs has every weight made symbolic (`<node>_W`, `<node>_W1`, ...).

A sparse weight (`Sparse`, e.g. a convolution as a matrix) becomes a `SparseSym` over its stored
entries: the zeros of the matrix are structure and stay zero. Its `tie` says which entries are
one parameter: a convolution's kernel entry is one variable shared by every position it is
applied at (it moves once, as in the model); entries tied to -1 (a skip connection's 1, a
layout move, a pooling average) are no parameter and stay fixed; without a tie every stored
entry is a variable of its own. Soundness of that fallback: moving every copy of a kernel entry
independently is a superset of moving it once, so an unsat (robust) answer still proves the
shared property, while a witness perturbs the IR's matrix entries and may not be realisable
with shared kernels (the perturbation's description says which layers that concerns).

As for dense layers, the parameters are the IR's: where the frontend folded model parameters
(a batch normalisation into a convolution's kernel, two maps summed into one), the folded
value is what moves. A bias moves element by element (a convolution's per-channel bias at
every position independently: again a superset of the model's perturbations). A node of only
structure (every weight sparse and tied to -1, a zero bias: a max-pool's ReLU tree, a layout
move) has no parameter at all and stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError
from .ir import SYMBOLIC, Affine, Const, Graph, Sparse, SparseSym, Sym


@dataclass(frozen=True)
class Perturbation:
    """What moves and by how much.

    Attributes:
        delta: δ >= 0, exact.
        relative: δ is relative to each parameter's magnitude.
        layers: affine node names (or 1-based indices as strings) whose parameters move;
            empty = every affine layer.
        which: "all", "weights" or "biases".
    """

    delta: Fraction
    relative: bool = False
    layers: tuple[str, ...] = ()
    which: str = "all"

    def describe(self) -> str:
        d = f"{float(self.delta):g}" + (" relative (|p0|·δ)" if self.relative else " absolute")
        where = ", ".join(self.layers) if self.layers else "all layers"
        what = {"all": "weights and biases", "weights": "weights", "biases": "biases"}[self.which]
        return f"δ = {d}, {what} of {where}"


MAX_NUMBER_CHARS = 1000


def parse_exact(text: str, flag: str, what: str = "a number", positive: bool = False) -> Fraction:
    """An exact number >= 0 (> 0 if `positive`) within the float64 range from a decimal or a
    ratio ("0.005", "1/200"); `flag` and `what` name it in the one-line InputError."""
    t = text.strip()
    shown = t if len(t) <= 40 else t[:37] + "..."
    if len(t) > MAX_NUMBER_CHARS:  # also beyond int()'s digit limit, which would say "invalid literal"
        raise InputError(f"{flag}: {shown!r} has too many digits (at most {MAX_NUMBER_CHARS} characters)")
    try:
        q = Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{flag}: {shown!r} is not {what}") from None
    if q < 0 or (positive and q == 0):
        raise InputError(f"{flag} must be {'>' if positive else '>='} 0, got {shown}")
    if q > Fraction(1.7976931348623157e308):
        raise InputError(f"{flag}: {shown} is beyond the float64 range")
    return q


def parse_delta(text: str) -> Fraction:
    """`0.005`, `1/200` or `delta=0.005` -> the exact rational (decimal strings are exact)."""
    t = text.strip()
    return parse_exact(t[len("delta="):] if t.startswith("delta=") else t, "--params delta",
                       "delta=<number> (e.g. delta=0.005)")


def affine_layers(graph: Graph) -> list[str]:
    """Names of the affine nodes, in graph order."""
    return [n.name for n in graph.nodes if isinstance(n, Affine)]


def select_layers(graph: Graph, layers: Sequence[str], option: str = "--layers") -> list[str]:
    """Affine node names, in graph order, for `layers`: each a node name, a 1-based index, a
    negative index (-1 = last), "first", "last" or "all"; empty = every affine layer.

    Raises:
        InputError: an item names no affine layer; the message starts with `option` (the flag
            the items came from) and lists the layers.
    """
    names = affine_layers(graph)
    chosen: set[str] = set()
    for s in layers:
        s = str(s).strip()
        if s in names:
            chosen.add(s)
            continue
        if s == "all":
            chosen.update(names)
            continue
        if s in ("first", "last") and names:
            chosen.add(names[0] if s == "first" else names[-1])
            continue
        try:
            i = int(s)
        except ValueError:
            listing = ", ".join(f"{a} ({k})" for k, a in enumerate(names, 1)) or "none"
            raise InputError(f"{option}: there is no affine layer {s!r}; {s!r} is not an affine layer "
                             f"of {graph.source} (layers: {listing}; or -1 for the last, first, "
                             "last, all)") from None
        if not (1 <= i <= len(names) or -len(names) <= i <= -1):
            raise InputError(f"{option}: layer {i} does not exist (index out of range 1..{len(names)}, "
                             f"or -{len(names)}..-1 from the end)")
        chosen.add(names[i - 1] if i > 0 else names[i])
    return [n for n in names if n in chosen] if layers else names


def make_symbolic(graph: Graph, pert: Perturbation) -> Graph:
    """A copy of `graph` whose selected parameters are `Sym` within nominal ± δ.

    Symbolic parameters are named `<node>_W` and `<node>_B`; solver variables `<node>_W_i_j`
    (dense) or `<node>_W_k` (the k-th parameter of a sparse weight, module docstring). A sparse
    weight that is only structure (every entry tied to -1) stays as it is.
    """
    chosen = set(select_layers(graph, pert.layers))
    taken = {n.name for n in graph.nodes}
    nodes, untied = [], []
    for n in graph.nodes:
        if isinstance(n, Affine) and n.name in chosen and not _structure(n):
            w, b, more = n.weight, n.bias, n.more
            if pert.which in ("all", "weights"):
                if any(isinstance(p, Sparse) and p.tie is None for _, p in n.terms()):
                    untied.append(n.name)
                w = _sym(w, f"{n.name}_W", pert, taken)
                more = tuple((x, _sym(p, f"{n.name}_W{k}", pert, taken))
                             for k, (x, p) in enumerate(n.more, 1))
            if pert.which in ("all", "biases"):
                b = _sym(b, f"{n.name}_B", pert, taken)
            n = replace(n, weight=w, bias=b, more=more)
        nodes.append(n)
    named = Perturbation(pert.delta, pert.relative, tuple(n for n in affine_layers(graph) if n in chosen)
                         if pert.layers else (), pert.which)
    text = named.describe()
    if untied:
        text += (f"; the sparse weights of {', '.join(untied)} move entry by entry (which entries "
                 "share a kernel entry is not known: a witness may not be realisable with shared "
                 "kernels)")
    meta = dict(graph.meta) | {"perturbation": text}
    return graph.replace(nodes=nodes, meta=meta).check()


def _structure(n: Affine) -> bool:
    """Whether an affine node holds no parameter of the model: sparse weights tied to -1 only
    (lowering constants) and a zero bias."""
    return all(isinstance(p, Sparse) and p.tie is not None and not (p.tie >= 0).any()
               for _, p in n.terms()) and isinstance(n.bias, Const) and not np.any(n.bias.value != 0)


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name = "p_" + name
    taken.add(name)
    return name


def _box(nom: np.ndarray, pert: Perturbation) -> tuple[np.ndarray, np.ndarray]:
    """(nom - d, nom + d), exact, d = δ or δ·|nom| elementwise (nom: Fractions)."""
    d = np.empty(nom.shape, dtype=object)
    d.ravel()[:] = [abs(v) * pert.delta if pert.relative else pert.delta for v in nom.ravel()]
    return nom - d, nom + d


def _sym(p, name: str, pert: Perturbation, taken: set[str]) -> Sym | SparseSym | Sparse:
    if isinstance(p, SYMBOLIC):
        raise InputError(f"parameter {p.name!r} is already symbolic")
    if isinstance(p, Sparse):
        return _sparse_sym(p, name, pert, taken)
    name = _fresh(name, taken)
    lo, hi = _box(p.fractions(), pert)
    return Sym(name, p.shape, lo=lo, hi=hi, nominal=p.value)


def _sparse_sym(p: Sparse, name: str, pert: Perturbation, taken: set[str]) -> SparseSym | Sparse:
    """One variable per parameter the stored entries are tied to (per entry without a tie);
    entries tied to -1 stay constant, and a matrix of only those stays a Sparse."""
    tie = np.arange(p.nnz) if p.tie is None else p.tie
    sel = tie >= 0
    if not sel.any():
        return p
    used, var = np.unique(tie[sel], return_inverse=True)  # variables 0..k-1 in tie order
    slot = np.full(p.nnz, -1, dtype=np.int64)
    slot[sel] = var
    first = np.empty(len(used), dtype=np.int64)
    first[var[::-1]] = np.flatnonzero(sel)[::-1]  # the first entry of each variable
    nominal = p.data[first]
    lo, hi = _box(Const(nominal).fractions(), pert)
    return SparseSym(_fresh(name, taken), Sparse(p.shape, p.indptr, p.indices, p.data, slot),
                     nominal, lo, hi)


def nominal_graph(graph: Graph) -> Graph:
    """Every symbolic parameter replaced by its nominal value."""
    return assign(graph, {})


def assign(graph: Graph, values: Mapping[str, np.ndarray]) -> Graph:
    """Every symbolic parameter replaced by `values[name]` (or its nominal when absent): a Sym
    by a `Const`, a SparseSym by the `Sparse` of its pattern with those values (ties kept)."""
    nodes = []
    for n in graph.nodes:
        if isinstance(n, Affine) and any(isinstance(p, SYMBOLIC)
                                         for p in (n.bias,) + tuple(w for _, w in n.terms())):
            n = replace(n, weight=_const(n.weight, values), bias=_const(n.bias, values),
                        more=tuple((x, _const(w, values)) for x, w in n.more))
        nodes.append(n)
    return graph.replace(nodes=nodes)


def _const(p, values):
    if isinstance(p, (Const, Sparse)):
        return p
    if isinstance(p, SparseSym):
        return p.instantiate(values.get(p.name))
    if p.name in values:
        return Const(np.asarray(values[p.name], dtype=object).reshape(p.shape))
    if p.nominal is None:
        raise InputError(f"symbolic parameter {p.name!r} has no nominal value")
    return Const(p.nominal)


def sym_params(graph: Graph) -> list[Sym | SparseSym]:
    """The symbolic parameters (Sym and SparseSym), in graph order."""
    return [p for _, _, p in graph.params() if isinstance(p, SYMBOLIC)]


def params_from_model(graph: Graph, model: Mapping[str, Fraction]) -> dict[str, np.ndarray]:
    """Each symbolic parameter's value in a solver model, as an object array of Fractions (a
    Sym's shape; a SparseSym's `size` variables)."""
    out = {}
    for p in sym_params(graph):
        names = p.var_names()
        v = np.empty(names.shape, dtype=object)
        v.ravel()[:] = [Fraction(model[n]) for n in names.ravel()]
        out[p.name] = v
    return out


def within(graph: Graph, values: Mapping[str, np.ndarray]) -> bool:
    """Whether parameter values lie in their boxes (exactly); absent ones are nominal."""
    for p in sym_params(graph):
        if p.name not in values:
            continue  # the nominal value
        v = values[p.name]
        lo = Const(p.lo).fractions() if p.lo is not None else None
        hi = Const(p.hi).fractions() if p.hi is not None else None
        for i, a in enumerate(np.asarray(v, dtype=object).ravel()):
            if lo is not None and a < lo.ravel()[i] or hi is not None and a > hi.ravel()[i]:
                return False
    return True
