"""Make a network's parameters symbolic: every selected weight and bias ranges over nominal ± δ.

The result is a new Graph whose selected `Const` parameters are `Sym` with exact rational
`lo`/`hi` and the original value as `nominal`; `nominal_graph` turns it back. δ is absolute
(`|p - p0| <= δ`) or relative (`|p - p0| <= δ·|p0|`, so a zero parameter stays zero).
An affine node over several inputs has every dense weight made symbolic (`<node>_W`,
`<node>_W1`, ...); a sparse weight cannot be symbolic yet and is refused, naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError, UnsupportedError
from .ir import Affine, Const, Graph, Sparse, Sym


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


def parse_delta(text: str) -> Fraction:
    """`0.005`, `1/200` or `delta=0.005` -> the exact rational (decimal strings are exact)."""
    t = text.strip()
    if t.startswith("delta="):
        t = t[len("delta="):]
    try:
        d = Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--params: {text!r} is not delta=<number> (e.g. delta=0.005)") from None
    if d < 0:
        raise InputError(f"--params: delta must be >= 0, got {t}")
    if d > Fraction(1.7976931348623157e308):
        raise InputError(f"--params: delta {t} is beyond the float64 range")
    return d


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

    Symbolic parameters are named `<node>_W` and `<node>_B`; solver variables `<node>_W_i_j`.
    """
    chosen = set(select_layers(graph, pert.layers))
    taken = {n.name for n in graph.nodes}
    nodes = []
    for n in graph.nodes:
        if isinstance(n, Affine) and n.name in chosen:
            w, b, more = n.weight, n.bias, n.more
            if pert.which in ("all", "weights"):
                for x, p in n.terms():
                    if isinstance(p, Sparse):
                        raise UnsupportedError(
                            f"{graph.source}: affine layer {n.name!r} has a sparse weight "
                            f"(shape {list(p.shape)}, {p.nnz} nonzeros, read from {x!r}): sparse "
                            "weights cannot be made symbolic yet; leave the layer out (--layers) "
                            "or perturb only the biases (--which biases)")
                w = _sym(w, f"{n.name}_W", pert, taken)
                more = tuple((x, _sym(p, f"{n.name}_W{k}", pert, taken))
                             for k, (x, p) in enumerate(n.more, 1))
            if pert.which in ("all", "biases"):
                b = _sym(b, f"{n.name}_B", pert, taken)
            n = replace(n, weight=w, bias=b, more=more)
        nodes.append(n)
    named = Perturbation(pert.delta, pert.relative, tuple(n for n in affine_layers(graph) if n in chosen)
                         if pert.layers else (), pert.which)
    meta = dict(graph.meta) | {"perturbation": named.describe()}
    return graph.replace(nodes=nodes, meta=meta).check()


def _sym(p, name: str, pert: Perturbation, taken: set[str]) -> Sym:
    if isinstance(p, Sym):
        raise InputError(f"parameter {p.name!r} is already symbolic")
    while name in taken:
        name = "p_" + name
    taken.add(name)
    nom = p.fractions()
    d = np.empty(nom.shape, dtype=object)
    d.ravel()[:] = [abs(v) * pert.delta if pert.relative else pert.delta for v in nom.ravel()]
    return Sym(name, p.shape, lo=nom - d, hi=nom + d, nominal=p.value)


def nominal_graph(graph: Graph) -> Graph:
    """Every Sym parameter replaced by its nominal value."""
    return assign(graph, {})


def assign(graph: Graph, values: Mapping[str, np.ndarray]) -> Graph:
    """Every Sym parameter replaced by `values[name]` (or its nominal when absent)."""
    nodes = []
    for n in graph.nodes:
        if isinstance(n, Affine) and any(isinstance(p, Sym) for p in (n.bias,) + tuple(w for _, w in n.terms())):
            n = replace(n, weight=_const(n.weight, values), bias=_const(n.bias, values),
                        more=tuple((x, _const(w, values)) for x, w in n.more))
        nodes.append(n)
    return graph.replace(nodes=nodes)


def _const(p, values):
    if isinstance(p, (Const, Sparse)):
        return p
    if p.name in values:
        return Const(np.asarray(values[p.name], dtype=object).reshape(p.shape))
    if p.nominal is None:
        raise InputError(f"symbolic parameter {p.name!r} has no nominal value")
    return Const(p.nominal)


def sym_params(graph: Graph) -> list[Sym]:
    return [p for _, _, p in graph.params() if isinstance(p, Sym)]


def params_from_model(graph: Graph, model: Mapping[str, Fraction]) -> dict[str, np.ndarray]:
    """Each Sym parameter's value in a solver model, as an object array of Fractions."""
    out = {}
    for p in sym_params(graph):
        names = p.var_names()
        v = np.empty(p.shape, dtype=object)
        v.ravel()[:] = [Fraction(model[n]) for n in names.ravel()]
        out[p.name] = v
    return out


def within(graph: Graph, values: Mapping[str, np.ndarray]) -> bool:
    """Whether parameter values lie in their Sym boxes (exactly); absent ones are nominal."""
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
