"""Verification engines, and `auto`: the best one nnsmt has for a query.

- `plain`: one query, every ReLU an `ite`.
- `bounded`: one query; ReLUs that sound linear bounds over the input region show stable are
  fixed, the others get their bounds as lemmas.
- `split(N)`: an attack and bounds first (refuting sub-boxes, α-CROWN slopes once the plain
  ones have bounded 2000 boxes, trying the points they suggest as counterexamples), then at
  most N independent bounded sub-queries over sub-boxes (`nnsmt.queries.split`), spread over
  the executor's workers.
- `bab(N)`: branch and bound on ReLU phases (`nnsmt.queries.bab`), then at most N exact leaf
  queries, each fixing its phases; for many inputs (MNIST-FC).
- With `certificate` set, split and bab keep how each sub-problem was settled and an unsat
  writes it (`nnsmt.certificate`; `nnsmt check-certificate` replays it).
- `auto` (the default): split(4096) for piecewise-linear networks with at most LOW_DIM inputs
  (ACAS Xu: 0 of 14 instances in 60 s with plain, 13 of 14 with split); bab(64) above that
  (MNIST-FC 256x2, 11 instances at 60 s: 8 solved, against 6 for split(1), bounds and candidate
  points then one bounded query; bab falls back to input splitting where the network is not
  Affine/ReLU or the region not a box); plain for sigmoid networks, whose
  sigmoids are exact (`exp`) on a backend that decides exp δ-completely and otherwise a sound
  piecewise-linear relaxation refined at every rejected candidate; plain for networks with the
  elementwise nodes of `nnsmt.ir` (products, quotients, powers, exp, comparisons, selections,
  roundings): bisecting inputs and fixing ReLU phases are for piecewise-linear networks, and
  these are exact terms of one query (the backend must take its features), except exp on a
  backend without exp (Z3): there it is the sigmoid's sound piecewise-linear relaxation, refined
  at every rejected candidate (`exp_mode`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from nnsmt.backends import capabilities
from nnsmt.certificate import Certificate, Leaf, sha256, write as write_certificate
from nnsmt.domain import property_bounds
from nnsmt.errors import BackendUnavailable, InputError
from nnsmt.ir import OPS, Div, Graph, Pow, elementwise_nodes
from nnsmt.params import sym_params
from nnsmt.query import Outcome
from nnsmt.terms import And, ScriptBuilder, variables
from nnsmt.validate import to_float
from nnsmt.queries.bab import start_bab
from nnsmt.queries.split import certificate_of, start_split
from nnsmt.queries.verify import VerifyQuery, check_compatible, has_exp, has_inexact, has_sigmoid

from .driver import Run, SingleRun, check_backend, drive, executor_for

ENGINES = ("auto", "plain", "bounded", "split", "bab")
SIGMOID_MODES = ("auto", "exp", "pwl")
LOW_DIM = 16  # inputs at most this many: bisecting the input box pays
SPLIT_N = 4096
BAB_N = 64  # the most exact leaf queries branch and bound on ReLU phases leaves to the solver


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: the engine (see the module docstring) and where it runs.

    Attributes:
        engine: auto, plain, bounded or split.
        backend: the solver of every (sub-)query.
        timeout: seconds for the whole instance (None: no limit).
        split: the most sub-queries of the split engine (None: SPLIT_N, or 1 above LOW_DIM).
        jobs, executor, ray_address: sub-queries solved at once (None: one per core), on local
            processes or Ray.
        sigmoid: auto, exp (exact) or pwl (sound relaxation with refinement).
        lemmas: what the bounded encoding asserts per unstable ReLU (none, bounds, triangle).
        memory_mb: memory cap per solver process.
        candidates: the split engine tries the points bounds suggest as counterexamples (off
            in `nnsmt diff`, where every sat should come from a solver).
        certificate: write an unsat verdict's certificate here (`nnsmt.certificate`; real
            semantics only); `sources`: its files, ((role, path), ...), hashed into it.
    """

    engine: str = "auto"
    backend: str = "z3"
    timeout: float | None = None
    split: int | None = None
    jobs: int | None = None
    executor: str = "local"
    ray_address: str | None = None
    sigmoid: str = "auto"
    lemmas: str = "bounds"
    memory_mb: int | None = None
    candidates: bool = True
    certificate: str | None = None
    sources: tuple = ()

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}; choose from {', '.join(ENGINES)}")
        if self.sigmoid not in SIGMOID_MODES:
            raise InputError(f"unknown sigmoid encoding {self.sigmoid!r}; choose from {', '.join(SIGMOID_MODES)}")
        if self.jobs is None:
            object.__setattr__(self, "jobs", os.cpu_count() or 1)
        if self.jobs < 1:
            raise InputError(f"--jobs needs a positive number, got {self.jobs}")
        if self.split is not None and self.split < 1:
            raise InputError(f"--split needs a positive number of sub-queries, got {self.split}")


def sigmoid_mode(backend: str, requested: str = "auto") -> str:
    """How sigmoids (and the exp nodes of a network with sigmoids) are encoded: exp where the
    backend decides it δ-completely (dReal), else the pwl relaxation: Z3 has no exp, and cvc5
    accepts it but rarely decides these queries (a 3-4-4-2 net times out)."""
    if requested != "auto":
        return requested
    caps = capabilities(backend)
    return "exp" if "exp" in caps.features and caps.delta_complete else "pwl"


def exp_mode(backend: str, requested: str = "auto") -> str:
    """How the exp nodes of a network without sigmoids are encoded: exactly where the backend
    has exp (cvc5 decides such queries often enough, dReal δ-completely), else the pwl
    relaxation (Z3 has no exp)."""
    if requested != "auto":
        return requested
    return "exp" if "exp" in capabilities(backend).features else "pwl"


def relax_mode(graph: Graph, backend: str, requested: str = "auto") -> str:
    """The encoding of the graph's sigmoid and exp nodes (one mode covers both): `sigmoid_mode`
    when it has sigmoids, `exp_mode` when it has only exp nodes, else exact (nothing to relax)."""
    if has_sigmoid(graph):
        return sigmoid_mode(backend, requested)
    return exp_mode(backend, requested) if has_exp(graph) else "exp"


def choose(graph: Graph, prop, opts: VerifyOptions) -> tuple[str, int, str]:
    """(engine, sub-queries, why) for `opts.engine`; auto picks by the network and region."""
    dim = prop.split_dims if getattr(prop, "split_dims", None) is not None else graph.inputs[0].dim
    if opts.engine == "bab":
        return "bab", opts.split or BAB_N, "chosen by --engine (branch and bound on ReLU phases)"
    if opts.engine != "auto":
        n = opts.split or (SPLIT_N if dim <= LOW_DIM else 1)
        return opts.engine, n, "chosen by --engine"
    ew = elementwise_nodes(graph)
    if ew:
        kinds = ", ".join(dict.fromkeys(OPS[type(e)] for e in ew))
        relax = has_exp(graph) and relax_mode(graph, opts.backend, opts.sigmoid) == "pwl"
        return "plain", 0, (f"the network has {kinds} nodes: one {'' if relax else 'exact '}query "
                            + ("(exp relaxed piecewise-linearly; " if relax else "(")
                            + "input splitting and the bounded encoding need a piecewise-linear "
                            "network)")
    if has_sigmoid(graph):
        return "plain", 0, "sigmoid network: one query (sigmoids are not bisected)"
    if prop.input_boxes() is None:
        return "bounded", 0, "the input region is not a bounded box"
    if opts.split is not None:
        return "split", opts.split, f"split into at most {opts.split} sub-queries (--split)"
    if contradictory(prop):
        return "plain", 0, ("the property's assertions contradict each other whatever the network "
                            "computes: one query (bounds judge each output atom alone)")
    if dim <= LOW_DIM:
        return "split", SPLIT_N, f"{dim} inputs (<= {LOW_DIM}): input splitting"
    # measured on MNIST-FC 256x2 (11 instances, 60 s): bab 8 solved, split(1) 6, never apart
    return "bab", BAB_N, (f"{dim} inputs (> {LOW_DIM}): branch and bound on ReLU phases (input "
                          "splitting where the network is not piecewise-linear Affine/ReLU)")


def contradictory(prop, seconds: float = 1.0) -> bool:
    """Whether the property's assertions alone (the outputs free) have no solution, by Z3
    within `seconds`; only asked when two or more assertions speak of the outputs. Then no
    network meets them, yet bounds judge each output atom on its own ("Y_0 > Y_1" and
    "Y_0 < Y_1" are each possible on every box), so splitting would go down to its last
    sub-box; one plain query answers at once. False when Z3 is missing or undecided."""
    on_y = [t for _, t in prop.asserts if any(v.startswith("Y_") for v in variables(t))]
    if len(on_y) < 2 and not any(isinstance(t, And) for t in on_y):
        return False
    from nnsmt.backends import get_backend
    try:  # only Z3: loading every backend to ask which are there costs seconds
        z3 = get_backend("z3")
    except BackendUnavailable:
        return False
    b = ScriptBuilder()
    for i in range(prop.n_inputs):
        b.declare(f"X_{i}")
    for j in range(prop.n_outputs):
        b.declare(f"Y_{j}")
    for k, (_, t) in enumerate(prop.asserts):
        b.assert_(f"p{k}", t)
    return z3.solve(b.build(), seconds).status == "unsat"


def plan(graph: Graph, prop, opts: VerifyOptions = VerifyOptions(), float_eval=None,
         float_type: str = "") -> Run:
    """The run that answers `prop` on `graph` with the chosen engine (planning happens here:
    the split engine's bounds may already decide it). `float_type`: see `VerifyQuery`."""
    check_compatible(graph, prop)
    if opts.certificate and (float_type or "float_errors" in graph.meta):
        raise InputError(f"--certificate: certificates cover real-valued queries; this one is {float_type or 'float'}")
    caps = capabilities(opts.backend)  # fail early, naming what is missing
    engine, n, why = choose(graph, prop, opts)
    if "vnnlib" in caps.features and engine != "plain":
        engine, n, why = "plain", 0, f"{opts.backend} answers whole VNN-LIB queries: one query"
    mode = relax_mode(graph, opts.backend, opts.sigmoid)
    q = VerifyQuery(graph, prop, lemmas=opts.lemmas, sigmoid=mode, float_eval=float_eval,
                    float_type=float_type)
    if mode == "pwl":
        sb = property_bounds(graph, prop)
        if sb is None:
            what = "sigmoid" if has_sigmoid(graph) else "exp"
            raise InputError(f"{prop.source}: the piecewise-linear {what} relaxation needs a "
                             "bounded input region")
        q = replace(q, sigmoid_bounds=sb)
    notes = (f"engine {engine}" + (f"({n})" if engine in ("split", "bab") else "") + f": {why}",)
    if sym_params(graph):
        notes += ("the network has symbolic parameters: a counterexample is an input and parameter "
                  "values in their boxes, replayed exactly (onnxruntime runs only the nominal weights)",)
    if q.relaxed and has_sigmoid(graph):
        notes += ("sigmoid by a sound piecewise-linear relaxation: unsat is a proof for the "
                  "network; a candidate counts only after it replays on it",)
    if q.relaxed and has_exp(graph):
        notes += ("exp by a sound piecewise-linear relaxation (tangents below, chords above, "
                  "refined at rejected candidates): unsat is a proof for the network; a candidate "
                  "counts only after it replays on it",)
    partial = [n.name for n in graph.nodes if isinstance(n, Div) or
               isinstance(n, Pow) and (n.p < 0 or n.p.denominator != 1)]
    if partial:
        notes += (f"{', '.join(partial[:3])}{', ...' if len(partial) > 3 else ''} divide or take "
                  "roots: the question is asked over the network's domain (every divisor nonzero, "
                  "every root's base in range), which the query asserts",)
    if has_inexact(graph) and not has_sigmoid(graph):
        notes += ("exp or fractional powers have no exact rational value: a counterexample is "
                  "replayed with certified rational enclosures",)
    if engine == "split":
        run = start_split(q, n, opts.backend, opts.timeout, jobs=opts.jobs, engine=f"split({n})",
                          candidates=opts.candidates, slopes=bool(opts.certificate))
        run.notes = notes
        return run
    if engine == "bab":
        run = start_bab(q, n, opts.backend, opts.timeout, jobs=opts.jobs, engine=f"bab({n})",
                        candidates=opts.candidates, slopes=bool(opts.certificate))
        if "fallback" in run.stats:
            notes += (f"bab: {run.stats['fallback']}: input splitting instead",)
        run.notes = notes
        return run
    if engine == "bounded":
        q = replace(q, encoding="bounded", bounds=property_bounds(graph, prop))
    run = SingleRun(q, opts.backend, opts.timeout, engine, notes)
    check_backend(opts.backend, run.script().features)
    return run


def verify(graph: Graph, prop, opts: VerifyOptions = VerifyOptions(), float_eval=None,
           float_type: str = "") -> Outcome:
    """Decide a VNN-LIB property on a network with the chosen engine: sat (a counterexample,
    replayed), unsat (none exists), unknown or error, as one Outcome."""
    run = plan(graph, prop, opts, float_eval, float_type)
    ex = executor_for(opts.timeout, opts.jobs, opts.executor, opts.ray_address, opts.memory_mb)
    outcome = None
    for _, outcome in drive([run], ex, opts.memory_mb):
        break
    outcome = outcome or run.outcome()
    if opts.certificate:
        outcome = _with_certificate(run, outcome, opts)
    return outcome


def _with_certificate(run: Run, o: Outcome, opts: VerifyOptions) -> Outcome:
    """Write the certificate of an unsat outcome (a note says where, or why there is none)."""
    if o.status != "unsat":
        return replace(o, notes=o.notes + (f"no certificate written: the verdict is {o.status}",))
    t0 = time.perf_counter()
    files = tuple((role, path, sha256(path)) for role, path in opts.sources)
    if isinstance(run, SingleRun):
        cert = Certificate(files, o.engine, None, Leaf("smt", backend=o.backend))
    else:
        try:
            cert = certificate_of(run, files)
        except ValueError as e:  # a bug: say so rather than write a broken proof
            return replace(o, notes=o.notes + (f"no certificate written: {e}",))
    try:
        write_certificate(cert, opts.certificate)
    except OSError as e:
        raise InputError(f"--certificate {opts.certificate}: cannot write: {e.strerror}") from None
    c = cert.counts()
    what = f"{sum(c.values())} leaves: {c['bounds']} by bounds, {c['infeasible']} infeasible, {c['smt']} by SMT"
    stats = dict(o.stats, certificate={"path": str(opts.certificate), **c,
                                       "write_s": round(time.perf_counter() - t0, 4)})
    return replace(o, stats=stats, notes=o.notes + (f"certificate written to {opts.certificate} ({what})",))


def counterexample_json(cex) -> dict:
    """A validated counterexample as JSON: floats for reading, exact strings for replaying."""
    out = {"x": [to_float(v) for v in cex.x], "y": [to_float(v) for v in cex.y],
           "x_exact": [str(v) for v in cex.x],
           "y_onnxruntime": list(cex.y_float) if cex.y_float else None,
           "validated": [getattr(cex, "replay", "exact")] + ([cex.float_replay] if cex.float_replay else [])}
    if cex.float_check:
        out["float_check"] = cex.float_check
    return out


def outcome_json(o: Outcome) -> dict:
    """verify's --json record of an outcome (batch writes the same beside each result file)."""
    out = o.to_json()
    if o.witness is not None:
        out["counterexample"] = counterexample_json(o.witness)
    return out
