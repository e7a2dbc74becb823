"""SMT training: find weights that classify every data point correctly, or prove none exist.

`make_problem` turns a network and a data set into a `TrainProblem` (free layers become `Sym`
parameters); `train` solves it with a `nnsmt.result.Solve` callable and returns a `TrainResult`
whose parameters have been checked on every point in exact rational arithmetic; `TrainQuery` is
one round of it as a query of the driver (`train_query`: every point at once). The encodings live in `train_encode`; the default is
``auto`` (``homog`` for one hidden ReLU layer on a binary task -- linear and exact -- else
``margin``), chosen by measurement (bench/train_scaling.py).

Strategy: counterexample-guided (CEGIS, the default). Solve on a few points; evaluate the
candidate on all points; add the misclassified ones; repeat. Exact: an unsat on a subset is an
unsat on the whole set (fewer constraints), and sat is only returned after the exact check of
every point. Each round is a fresh solve (the subset is small); the deadline covers all rounds.
Before the requested width, narrower hidden layers are tried (`train_widen`: a zero-padded
narrow fit is an exact fit; a narrow unsat is never reported).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Callable

import numpy as np

from ..data import Dataset
from ..errors import InputError, UnsupportedError, ValidationError
from ..interpret import evaluate, evaluate_exact
from ..ir import ELEMENTWISE, OPS, Affine, Argmax, Const, Graph, Sigmoid, Sym
from ..params import affine_layers, select_layers
from ..query import decide
from ..result import SolveOptions
from ..terms import Script
from .train_encode import encode, resolve_encoding

STRATEGIES = ("cegis", "direct")


@dataclass(frozen=True, eq=False)
class TrainProblem:
    """A network whose free layers are symbolic, the data, and how labels are read.

    `graph` ends at the logits (a final sigmoid/argmax of the source is stripped: they do not
    change which side of 0 / which logit wins); `binary_single` means one output, class 1 iff
    the logit is > 0; otherwise the label's logit must be strictly the largest."""

    graph: Graph
    source: Graph
    data: Dataset
    input: str
    logits: str
    n_classes: int
    binary_single: bool
    free: tuple[str, ...]
    frozen: tuple[str, ...]
    weight_bound: Fraction | None = None
    final_sigmoid: bool = False

    def arch(self) -> str:
        """Layer sizes, e.g. 3-16-2."""
        dims = self.graph.dims()
        return "-".join([str(dims[self.input])] + [str(dims[n.name]) for n in self.graph.nodes
                                                   if isinstance(n, Affine)])

    def n_weights(self) -> int:
        return sum(int(np.prod(p.shape)) for _, _, p in self.graph.params())

    def n_free(self) -> int:
        return sum(int(np.prod(p.shape)) for _, _, p in self.graph.params() if isinstance(p, Sym))


def free_layers(graph: Graph, spec: str | None) -> tuple[str, ...]:
    """Affine node names selected by --free: "all" (default), "last", "first", a node name
    ("a2"), a 1-based affine index ("2"), or a comma-separated list of these
    (`nnsmt.params.select_layers`)."""
    if not affine_layers(graph):
        raise UnsupportedError(f"{graph.source}: the network has no affine layer to train")
    items = [] if spec is None else [t for t in (t.strip() for t in spec.split(",")) if t]
    return tuple(select_layers(graph, items, f"--free {spec}"))


def make_problem(graph: Graph, data: Dataset, free: str | None = None,
                 weight_bound: float | None = None) -> TrainProblem:
    """Make the selected layers symbolic (their current values kept as nominal).

    Raises:
        UnsupportedError: more than one input/output, or a sigmoid inside the network.
        InputError: the data does not fit the network (features, labels).
    """
    src = graph.source
    inp, out = graph.single_io("training")
    nodes = list(graph.nodes)
    final_sigmoid = False
    while isinstance(graph.node(out), (Sigmoid, Argmax)):  # strip: they keep the decision
        n = graph.node(out)
        final_sigmoid |= isinstance(n, Sigmoid)
        nodes.remove(n)
        out = n.x
    for n in nodes:
        if isinstance(n, Sigmoid):
            raise UnsupportedError(f"{src}: sigmoid {n.name!r} inside the network: training "
                                   "encodes affine/ReLU layers (a sigmoid is allowed only at the end)")
        if isinstance(n, Argmax):
            raise UnsupportedError(f"{src}: argmax {n.name!r} inside the network")
        if isinstance(n, ELEMENTWISE):
            raise UnsupportedError(f"{src}: {OPS[type(n)]} {n.name!r}: training encodes affine/ReLU "
                                   "layers (products, quotients, powers, exp, comparisons are not)")
    if out == inp.name:
        raise UnsupportedError(f"{src}: the output is the input; nothing to train")
    k = graph.dims()[out]
    if final_sigmoid and k != 1:
        raise UnsupportedError(f"{src}: a final sigmoid over {k} outputs (multi-label) is not a "
                               "classifier nnsmt can train; use one sigmoid output or k logits")
    n_classes = 2 if k == 1 else k
    if data.dim != inp.dim:
        raise InputError(f"{data.source or 'data'}: points have {data.dim} features, "
                         f"{src} takes {inp.dim} inputs")
    bad = np.flatnonzero((data.y < 0) | (data.y >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{data.where(i)}: label {int(data.y[i])} is outside the network's "
                         f"classes 0..{n_classes - 1}")
    for n in nodes:  # the encodings instantiate a chain of dense layers per data point
        if isinstance(n, Affine) and (n.more or not isinstance(n.weight, (Const, Sym))):
            why = "reads several values" if n.more else "has a sparse weight"
            raise UnsupportedError(f"{src}: training takes chains of dense layers; affine node "
                                   f"{n.name!r} {why} (a residual, concatenation or convolution)")
    free_names = free_layers(graph, free)
    bound = None if weight_bound is None else Fraction(weight_bound)
    if bound is not None and bound <= 0:
        raise InputError(f"--weight-bound must be positive, got {weight_bound}")
    new = []
    for n in nodes:
        if isinstance(n, Affine) and n.name in free_names:
            def sym(p, kind):
                lo, hi = (None, None) if bound is None else (-bound, bound)
                nominal = p.value if isinstance(p, Const) else p.nominal
                return Sym(f"{kind}_{n.name}", p.shape, lo, hi, nominal)
            n = Affine(n.name, n.x, sym(n.weight, "W"), sym(n.bias, "b"))
        new.append(n)
    g = Graph(tuple(new), (out,), graph.meta).check()
    frozen = tuple(n.name for n in new if isinstance(n, Affine) and n.name not in free_names)
    return TrainProblem(g, graph, data, inp.name, out, n_classes, k == 1, free_names, frozen,
                        bound, final_sigmoid)


# ---- checking ----

def _correct(logits, label: int, binary_single: bool) -> bool:
    if binary_single:
        return logits[0] > 0 if label == 1 else logits[0] < 0
    return all(logits[label] > logits[j] for j in range(len(logits)) if j != label)


def _margin(logits, label: int, binary_single: bool) -> float:
    """How well a point is classified (float, > 0 when correct): used to rank violations."""
    if binary_single:
        return float(logits[0]) if label == 1 else -float(logits[0])
    others = [float(logits[j]) for j in range(len(logits)) if j != label]
    return float(logits[label]) - max(others)


def misclassified(problem: TrainProblem, params, exact: bool = True,
                  points=None) -> list[tuple[int, float]]:
    """(point, margin) of every point the network with `params` gets wrong, most violated first.
    `exact`: rational arithmetic (the verdict); else float64 (a quick filter)."""
    idx = range(problem.data.n) if points is None else points
    wrong = []
    for i in idx:
        x = problem.data.x[i]
        y = int(problem.data.y[i])
        env = (evaluate_exact if exact else evaluate)(problem.graph, {problem.input: x}, params)
        logits = env[problem.logits]
        if not _correct(logits, y, problem.binary_single):
            wrong.append((i, _margin(logits, y, problem.binary_single)))
    return sorted(wrong, key=lambda t: t[1])


def trained_graph(problem: TrainProblem, params) -> Graph:
    """The source graph (final sigmoid/argmax kept) with the trained values as Const."""
    nodes = []
    for n in problem.source.nodes:
        if isinstance(n, Affine) and n.name in problem.free:
            n = Affine(n.name, n.x, Const(params[f"W_{n.name}"]), Const(params[f"b_{n.name}"]))
        nodes.append(n)
    return problem.source.replace(nodes=tuple(nodes))


def statement(problem: TrainProblem, encoding: str, restriction: str = "") -> str:
    """What an unsat proves, in words."""
    s = f"no {problem.arch()} network"
    if problem.frozen:
        s += f" with layers {', '.join(problem.frozen)} frozen at their values in " \
             f"{problem.source.meta.get('source', 'the model')}"
    if problem.weight_bound is not None:
        s += f"{' and' if problem.frozen else ' with'} free weights and biases in " \
             f"[-{problem.weight_bound}, {problem.weight_bound}]"
    s += " classifies all of these points correctly"
    if restriction:
        s += f" under encoding {encoding}'s restriction: {restriction}"
    else:
        s += f" (encoding {encoding} is exact: it loses no solution)"
    return s


# ---- the query ----

@dataclass(frozen=True)
class TrainOptions:
    """How to train.

    Attributes:
        encoding: "auto" (default; None is auto), "seed", "margin" or "homog" (`train_encode`).
        strategy: "cegis" (default) or "direct" (all points, exact coordinates, one query).
        timeout: seconds for all solving; on expiry the status is unknown (timeout).
        init, batch: CEGIS's first subset size and how many misclassified points a round adds.
        coarse_bits: precision of the stand-ins (None or 0: exact coordinates throughout).
        hints: first try each round with the activation pattern of a quick float fit asserted.
        widen: narrow first (`train`).
        want_core: ask the solver for an unsat core (named data points).
    """

    encoding: str | None = None
    strategy: str = "cegis"
    timeout: float | None = None
    init: int = 8
    batch: int = 8
    coarse_bits: int | None = 10
    hints: bool = True
    widen: bool = True
    want_core: bool = True

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise UnsupportedError(f"unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}")
        if self.init < 1 or self.batch < 1:
            raise InputError(f"CEGIS needs init and batch >= 1 (got {self.init}, {self.batch})")
        if self.coarse_bits is not None and self.coarse_bits < 0:
            raise InputError(f"--coarse-bits must be >= 0 (0: off), got {self.coarse_bits}")


@dataclass(frozen=True)
class Trained:
    """A certified fit: free parameter name -> object array of Fractions, checked exactly on
    every point."""

    params: dict
    notes: tuple[str, ...] = ()


class Misclassified(ValidationError):
    """A candidate the exact check rejects; `wrong` is (point, margin), most violated first."""

    def __init__(self, message: str, wrong: list):
        super().__init__(message)
        self.wrong = wrong


@dataclass(frozen=True, eq=False)
class TrainQuery:
    """Weights that classify the `active` points (CEGIS's subset; all of them for the direct
    query), as a query of the driver.

    certify: the decoded parameters must classify every point of the data exactly (not only
    the active ones). refine (CEGIS): add up to `batch` misclassified points, and put back the
    exact coordinates of active points whose stand-ins misled the solver; a model that gets an
    exactly encoded active point wrong is an error (never sat). The query does not prove unsat
    while it asserts phase hints or uses coarse stand-ins (`coarse & active`): then
    `refine_unsat` drops the hints, or restores exact coordinates (of the unsat core's points
    where there is a core)."""

    problem: TrainProblem
    encoding: str
    active: frozenset
    coarse: frozenset = frozenset()  # points whose stand-in coordinates `xq` the solver sees
    xq: np.ndarray | None = None
    hints: object = None
    batch: int = 8
    options: SolveOptions = SolveOptions()
    kind: str = "train"
    relaxed: bool = False

    @cached_property
    def encoded(self):
        return encode(self.problem, sorted(self.active), self.encoding,
                      xs={i: self.xq[i] for i in self.active & self.coarse}, hints=self.hints)

    @property
    def proves_unsat(self) -> bool:
        return self.hints is None and not self.active & self.coarse

    def compile(self) -> Script:
        return self.encoded.script

    def certify(self, model) -> Trained:
        p, n = self.problem, self.problem.data.n
        params = self.encoded.decode(model)
        suspects = [i for i in range(n) if i not in self.active or i in self.coarse]
        wrong = misclassified(p, params, exact=False, points=suspects)  # a quick filter
        if not wrong:
            wrong = misclassified(p, params, exact=True)  # the verdict, every point
        if not wrong:
            return Trained(params, (f"exact check of all {n} points",))
        seen = [i for i, _ in wrong if i in self.active and i not in self.coarse]
        if seen:
            raise Misclassified(f"the model misclassifies point(s) {', '.join(p.data.where(i) for i in seen[:5])} "
                                "it was given (exact check)", wrong)
        raise Misclassified(f"the model misclassifies {len(wrong)} point(s), e.g. {p.data.where(wrong[0][0])}", wrong)

    def refine(self, model, error) -> "TrainQuery | None":
        wrong = [i for i, _ in getattr(error, "wrong", [])]
        if not wrong or any(i in self.active and i not in self.coarse for i in wrong):
            return None  # an exactly given point is wrong: a solver or encoding bug
        new = [i for i in wrong if i not in self.active]
        return replace(self, active=self.active | set(new[:self.batch]),
                       coarse=self.coarse - (set(wrong) & self.active))

    def refine_unsat(self, core) -> "TrainQuery | None":
        if self.hints is not None:  # the hinted pattern is infeasible: solve without it
            return replace(self, hints=None)
        pts = {int(c[2:]) for c in core if c.startswith("pt") and c[2:].isdigit()}
        stand_ins = self.active & self.coarse
        return replace(self, coarse=self.coarse - ((stand_ins & pts) or stand_ins))


def train_query(problem: TrainProblem, encoding: str | None = None, want_core: bool = False) -> TrainQuery:
    """The whole training query: every point, exact coordinates (what `nnsmt compile --mode
    train` writes and `nnsmt diff --mode train` compares)."""
    return TrainQuery(problem, resolve_encoding(problem, encoding), frozenset(range(problem.data.n)),
                      options=SolveOptions(want_core=want_core))


def training_script(problem: TrainProblem, encoding: str | None = None) -> Script:
    """The whole training query (every point) as one script."""
    return train_query(problem, encoding).compile()


@dataclass(frozen=True)
class TrainResult:
    """`status` sat (params checked exactly on every point), unsat, unknown or error.

    `params` maps each free Sym name (W_<node>, b_<node>) to an object array of Fractions;
    `core` lists data points (0-based rows) of an unsat core when the backend gave one;
    `used` is how many points the solver saw (CEGIS)."""

    status: str
    encoding: str
    reason: str = ""
    params: dict = field(default_factory=dict)
    core: tuple[int, ...] = ()
    statement: str = ""
    rounds: int = 0
    used: int = 0
    stats: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _initial_points(problem: TrainProblem, count: int) -> list[int]:
    """Round-robin over the classes, in file order: a few points of each class."""
    by_class = [list(np.flatnonzero(problem.data.y == c)) for c in range(problem.n_classes)]
    out: list[int] = []
    while len(out) < min(count, problem.data.n):
        for lst in by_class:
            if lst and len(out) < count:
                out.append(int(lst.pop(0)))
    return sorted(out)


def coarse_coordinates(x: np.ndarray, bits: int) -> np.ndarray:
    """Data rounded to a dyadic grid `bits` below the largest magnitude (the same grid for all
    coordinates): short rationals the simplex can pivot on cheaply."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0 or bits >= 53:  # 53 bits or more: float64 data is on that grid already
        return x.copy()
    step = 2.0 ** (int(np.frexp(top)[1]) - bits)
    return np.round(x / step) * step


NARROW_SHARE = 0.2  # of the time budget, for each narrow attempt (train_widen)
NARROW_TOTAL = 0.5  # of the time budget, for all narrow attempts together
NARROW_DEFAULT_S = 10.0  # per narrow attempt when there is no time budget
HINT_SECONDS = 1.0  # at most, for the float fit behind the phase hints


def train(problem: TrainProblem, solve, options: TrainOptions = TrainOptions(),
          progress: Callable[..., None] | None = None) -> TrainResult:
    """Find parameters that classify every point (exactly checked), or prove none exist.

    Narrow first (`options.widen`, the default): a network with fewer hidden units embeds
    exactly into this one (`train_widen`), so networks of width 1, 2, 4, ... below the
    requested one are tried first, each with at most NARROW_SHARE of the budget (NARROW_TOTAL
    for all of them; an attempt that times out ends the narrow phase). A narrow fit is
    zero-padded, checked exactly on every point at the full width, and returned with a note
    naming the width the solver solved; a narrow unsat proves nothing and is never reported.
    Then the requested width is solved with the time that is left. Measured on 200 random
    sphere points (bench/train_scaling.py): Z3 fits a 3-2-2 net in about 1.5 s but no 3-h-2 net
    with h >= 4 within 60 s, while every wider net contains the 3-2-2 one.

    CEGIS (the default strategy, `TrainQuery`) also lets the solver see *coarse* stand-ins of
    the points first: coordinates rounded to `coarse_bits` bits (`coarse_coordinates`). Float
    data are dyadic rationals with 53-bit numerators and simplex pivots on them are slow (a
    12-point 3-2-2 query: 30 s exact, 0.05 s coarse). A coarse answer is only a candidate: sat
    still needs the exact check of every original point; a point the candidate gets wrong
    exactly while its stand-in was used is put back with its exact coordinates; unsat is
    reported only once every point in the (core of the) query has its exact coordinates.
    Phase hints (`options.hints`): each round is first tried with the activation pattern of a
    quick float fit asserted (`train_hints`, at most HINT_SECONDS); a hinted unsat only drops
    the hints. On 200 sphere points a 3-2-2 fit takes 1.4 s with hints and times out (60 s)
    without.

    Args:
        problem: from `make_problem`.
        solve: a `nnsmt.result.Solve` (`nnsmt.engine.driver.solver`): each round's script goes
            to it with the time left and `SolveOptions(want_core=...)`.
        options: `TrainOptions`.
        progress: called as progress(event, **info) at "hints", "narrow", "solve", "check", "done".
    """
    resolve_encoding(problem, options.encoding)  # fail early on a bad name
    progress = progress or (lambda *a, **k: None)
    from .train_widen import narrow, pad, schedule, widths
    full = max(widths(problem).values(), default=0) if options.widen else 0
    timeout = options.timeout
    t0 = time.perf_counter()
    tried = []
    for w in schedule(full):
        spent = time.perf_counter() - t0
        if timeout is not None and spent >= NARROW_TOTAL * timeout:
            break
        budget = NARROW_DEFAULT_S if timeout is None else \
            min(NARROW_SHARE * timeout, NARROW_TOTAL * timeout - spent)
        progress("narrow", width=w, full=full)
        r = _train_once(narrow(problem, w), solve, options, budget, False, progress)
        tried.append(f"{w}: {r.status}")
        if r.status == "sat":
            params = pad(problem, r.params)
            wrong = misclassified(problem, params, exact=True)
            if wrong:  # cannot happen if the embedding claim holds: a bug, never a sat
                return replace(r, status="error", params={}, reason="a narrow fit, zero-padded, "
                               f"misclassifies {problem.data.where(wrong[0][0])} (exact check)")
            note = (f"solved by the solver at hidden width {w} and widened exactly to {full} "
                    "(extra units: zero weights, relu(0) = 0 adds nothing)")
            return replace(r, params=params, notes=r.notes + (note, _tried(tried)))
        if r.status == "error":
            return r
        if r.status != "unsat":
            break  # a wider narrow attempt would be harder still
    left = None if timeout is None else timeout - (time.perf_counter() - t0)
    r = _train_once(problem, solve, options, left, options.want_core, progress)
    return replace(r, notes=r.notes + (_tried(tried),)) if tried else r


def _tried(tried: list[str]) -> str:
    return "narrow attempts (width: answer): " + ", ".join(tried)


def _train_once(problem: TrainProblem, solve, opts: TrainOptions, timeout: float | None,
                want_core: bool, progress: Callable[..., None]) -> TrainResult:
    """`train` at the problem's own width (no narrow phase): `TrainQuery` rounds settled by
    the driver's policy (`nnsmt.query.decide`)."""
    enc = resolve_encoding(problem, opts.encoding)
    n, X = problem.data.n, problem.data.x
    direct = opts.strategy == "direct"
    active = frozenset(range(n)) if direct else frozenset(_initial_points(problem, opts.init))
    Xq = coarse_coordinates(X, opts.coarse_bits) if opts.coarse_bits and not direct else X
    coarse = frozenset(i for i in range(n) if not np.array_equal(Xq[i], X[i]))  # points with a stand-in
    stats: dict = {}
    hint = None
    if opts.hints:
        from .train_hints import gd_fit
        progress("hints")
        t = time.perf_counter()
        hint = gd_fit(problem, seconds=HINT_SECONDS if timeout is None else min(HINT_SECONDS, 0.1 * timeout))
        stats["hints_s"] = time.perf_counter() - t
    query = TrainQuery(problem, enc, active, coarse, Xq, hint, opts.batch, SolveOptions(want_core=want_core))
    last: dict = {"query": query, "round": 0}

    def watched(script, seconds=None, options=SolveOptions()):
        progress("solve", round=last["round"] + 1, points=script.meta.get("points", 0), total=n,
                 logic=script.logic)
        return solve(script, seconds, options)
    watched.backend = getattr(solve, "backend", "")

    def observe(q, res):  # the query just solved and its answer
        last.update(query=q, res=res, round=last["round"] + 1)
        if res.status == "sat":
            progress("check", round=last["round"], points=len(q.active), total=n)

    o = decide(query, watched, timeout, observe=observe)
    q = last["query"]
    progress("done", status=o.status)
    base = dict(rounds=o.rounds, used=len(q.active), stats=stats | dict(o.stats), notes=q.encoded.notes)
    if o.status == "sat":
        return TrainResult("sat", enc, params=o.witness.params, **base)
    if o.status == "unsat":
        core = tuple(sorted(int(c[2:]) for c in last["res"].core if c.startswith("pt") and c[2:].isdigit()))
        return TrainResult("unsat", enc, core=core, statement=statement(problem, enc, q.encoded.restriction), **base)
    return TrainResult(o.status, enc, reason=o.reason or o.status, **base)
