"""Exact compression by ReLU stability, and the equivalence query that proves it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..domain import InputDomain, region_bounds
from ..encode import TermDomain, encode_graph
from ..errors import InputError, UnsupportedError, ValidationError
from ..interpret import evaluate_exact, interpret
from ..ir import Graph
from ..passes import remove_stable, size
from ..query import decide
from ..result import SolveOptions
from ..terms import Add, Cmp, Num, Or, Script, ScriptBuilder, Var
from .stability import Stability, StabilityOptions, classify


def equivalence_script(f: Graph, g: Graph, domain: InputDomain, tol: Fraction = Fraction(0),
                       tighten: int = 60) -> Script:
    """Sat iff some input in `domain` has |f(x)_j - g(x)_j| > tol for some output j
    (both networks with the bounded encoding over the domain, its bounds optimised per neuron
    by `tighten` α-CROWN steps, as `classify` does by default; inputs shared as X_i)."""
    fin, fout = f.single_io("equivalence")
    gin, gout = g.single_io("equivalence")
    if fin.dim != gin.dim or f.dims()[fout] != g.dims()[gout]:
        raise UnsupportedError(f"{f.source} and {g.source} differ in input or output size")
    b = ScriptBuilder()
    xs = [f"X_{i}" for i in range(fin.dim)]
    # f declares the inputs X_i; g reads the same variables (its input is already computed)
    env_f = encode_graph(f, b, names=lambda n, d: xs if n == fin.name else None, prefix="f_",
                         encoding="bounded", bounds=region_bounds(f, domain, tighten=tighten), lemmas="none")
    dom_g = TermDomain(b, prefix="g_", encoding="bounded", bounds=region_bounds(g, domain, tighten=tighten), lemmas="none")
    env_g = interpret(g, dom_g, {}, initial_env={gin.name: np.array(xs, dtype=object)})
    outs = {"f": env_f[fout], "g": env_g[gout]}
    b.assert_("domain", domain.constraint(xs))
    t = Num(Fraction(tol))
    atoms = []
    for yf, yg in zip(outs["f"], outs["g"]):
        atoms.append(Cmp(">", Var(yf), Add((Var(yg), t))))
        atoms.append(Cmp(">", Var(yg), Add((Var(yf), t))))
    b.assert_("differ", Or(tuple(atoms)))
    b.meta.update({"query": "equivalence", "tolerance": str(tol), "inputs": xs})
    return b.build()


@dataclass(frozen=True, eq=False)
class EquivalenceQuery:
    """Does some input of `domain` tell f and g apart by more than `tol` on some output?
    (`equivalence_script`). certify: the model's input lies in the domain and, replayed
    exactly through both networks, some output differs by more than `tol`; the witness is
    that input. unsat proves |f(x) - g(x)| <= tol on the whole domain."""

    f: Graph
    g: Graph
    domain: InputDomain
    tol: Fraction = Fraction(0)
    options: SolveOptions = SolveOptions()
    kind: str = "equivalence"
    relaxed: bool = False

    def compile(self) -> Script:
        return equivalence_script(self.f, self.g, self.domain, self.tol)

    def certify(self, model) -> list[Fraction]:
        x = [Fraction(model[f"X_{i}"]) for i in range(self.f.inputs[0].dim)]
        if not self.domain.contains(x):
            raise ValidationError("solver model lies outside the domain")
        yf = evaluate_exact(self.f, {self.f.inputs[0].name: x})[self.f.outputs[0]]
        yg = evaluate_exact(self.g, {self.g.inputs[0].name: x})[self.g.outputs[0]]
        if not any(abs(a - b) > self.tol for a, b in zip(yf, yg)):
            raise ValidationError(f"solver model fails the exact replay: f and g agree within {self.tol} there")
        return x

    def refine(self, model, error):
        return None


@dataclass(frozen=True)
class CompressOptions:
    """How to compress: how stability is decided (`StabilityOptions`), whether to prove the
    result equivalent (`prove`, with `tol`, 0 = exactly)."""

    stability: StabilityOptions = field(default_factory=StabilityOptions)
    prove: bool = True
    tol: Fraction = Fraction(0)

    def __post_init__(self):
        try:  # a number, Fraction or rational string, exactly; never a float nan or inf
            tol = None if isinstance(self.tol, float) and not math.isfinite(self.tol) else Fraction(self.tol)
        except (TypeError, ValueError, ZeroDivisionError):
            tol = None
        if tol is None:
            raise InputError(f"tolerance must be a finite rational number, got {self.tol!r}")
        object.__setattr__(self, "tol", tol)
        if self.tol < 0:
            raise InputError(f"--tolerance must be >= 0, got {self.tol}")


@dataclass
class Compression:
    """A compressed network: `graph` (stable ReLUs removed exactly), the `stability` it came
    from, the sizes `before` and `after` (parameters, connections, nonzero connections,
    ReLUs), the equivalence query's status ("unsat": proved equal on the domain up
    to `tolerance`; "not checked") and its reason, and seconds per step."""

    graph: Graph
    stability: Stability
    before: dict
    after: dict
    equivalence: str = "not checked"  # unsat = proved equal on the domain
    equivalence_reason: str = ""
    tolerance: Fraction = Fraction(0)
    time_s: dict | None = None


def compress(graph: Graph, domain: InputDomain, solve, options: CompressOptions = CompressOptions(),
             stability: Stability | None = None) -> Compression:
    """Classify the ReLUs, remove the stable ones exactly, and (if `options.prove`) decide the
    `EquivalenceQuery` over the domain with the `nnsmt.result.Solve` callable `solve`: unsat
    means f = g there (up to `tol`, 0 = exactly). `stability`: a classification of `graph`
    over `domain` made already (e.g. by a MILP with exact confirmation), used instead of
    classifying again."""
    t0 = time.perf_counter()
    st = stability if stability is not None else classify(graph, domain, solve, options.stability)
    t1 = time.perf_counter()
    states = {k: v.copy() for k, v in st.states.items()}
    for v in states.values():
        v[(v != 1) & (v != -1)] = 0  # unknown counts as unstable: kept as a ReLU
    small = remove_stable(graph, states)
    t2 = time.perf_counter()
    res = Compression(small, st, size(graph), size(small), tolerance=options.tol)
    if options.prove:
        o = decide(EquivalenceQuery(graph, small, domain, options.tol), solve, options.stability.timeout)
        res.equivalence, res.equivalence_reason = o.status, o.reason
    res.time_s = {"classify": t1 - t0, "compress": t2 - t1, "prove": time.perf_counter() - t2}
    return res
