"""Robustness to parameter perturbation: the five definitions, each one solver query.

With f the network output, p0 the nominal parameters, p any parameters within nominal ± δ
(`nnsmt.params.make_symbolic`), l the decision level and D an input domain:

1. (δ, ε) local at x0:  |f_p(x0) - f_p0(x0)| <= ε for every p            kind="eps",   point
2. (δ, ε) global on D:  the same for every x in D                         kind="eps",   domain
3. δ local at x0:       label_p(x0) == label_p0(x0) for every p           kind="label", point
4. δ global on D:       the same for every x in D                         kind="label", domain
5. δσ global on D:      no label changes where |f_p0(x) - l| >= σ         kind="sigma", domain

Each query asserts the negation (a perturbed copy and a nominal copy of the network share the
input); unsat proves the property, sat gives perturbed parameters and an input that break it.
A sat witness is replayed exactly (certified rational enclosures where there is a sigmoid,
`nnsmt.interpret.evaluate_enclosure`) before it is reported; one that cannot be certified is
reported as unknown with that reason, never as sat.

Labels: one output -> label = [f >= l] with l = 1/2 after a final sigmoid, else 0; several
outputs -> argmax. A final sigmoid is compared through its pre-activation (exact monotone
rewriting), so label and σ queries need no exp; ε on a sigmoid output does (exact `exp`, or
the sound piecewise-linear relaxation `pwl`, see `nnsmt.sigmoid`). ε uses the max norm over
outputs. σ is defined for single-output (binary) networks; "above" is the side whose nominal
label is 1 (f_p0 >= l + σ), "below" the side of label 0 (f_p0 <= l - σ).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import numpy as np

from ..bounds import box_interval, propagate_bounds
from ..domain import region_bounds
from ..encode import TermDomain
from ..errors import InputError, UnsupportedError, ValidationError
from ..interpret import evaluate_enclosure, interpret
from ..ir import Argmax, Graph, Sigmoid
from ..params import nominal_graph, params_from_model, sym_params, within
from ..query import Outcome, decide
from ..result import Capabilities, SolveOptions
from ..sigmoid import SIGMOID_ENCODINGS, logit_bounds
from ..terms import Add, And, Cmp, Mul, Not, Num, Objective, Or, Script, ScriptBuilder, Var

KINDS = ("eps", "label", "sigma")
SIDES = ("above", "below")
NAMES = {1: "(δ, ε) robust locally", 2: "(δ, ε) robust globally", 3: "δ robust locally",
         4: "δ robust globally", 5: "δσ robust globally"}


@dataclass(frozen=True)
class Question:
    """One robustness property. `point` (local) or `domain` (global, an InputDomain) is given;
    `value` is ε (kind eps) or σ (kind sigma); `sides` restricts σ to one class."""

    kind: str
    point: tuple[Fraction, ...] | None = None
    domain: object = None
    value: Fraction = Fraction(0)
    sides: tuple[str, ...] = SIDES

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InputError(f"unknown property {self.kind!r}; choose from label, eps=E, sigma=S")
        if (self.point is None) == (self.domain is None):
            raise InputError("give exactly one of an input point (--point) or a domain (--domain)")
        if self.kind == "sigma" and self.point is not None:
            raise InputError("σ robustness is global: give --domain, not --point")
        object.__setattr__(self, "value", Fraction(self.value))
        if self.value < 0:
            raise InputError(f"{self.kind} must be >= 0, got {self.value}")

    @property
    def definition(self) -> int:
        """Number of the definition (1-5, module docstring)."""
        local = self.point is not None
        return {"eps": 1 if local else 2, "label": 3 if local else 4, "sigma": 5}[self.kind]

    def describe(self) -> str:
        v = {"eps": f" with ε = {float(self.value):g}", "sigma": f" with σ = {float(self.value):g}"}
        side = f" (class {self.sides[0]} the level)" if self.kind == "sigma" and len(self.sides) == 1 else ""
        return NAMES[self.definition] + v.get(self.kind, "") + side


@dataclass(frozen=True)
class Head:
    """What the query compares: `out` (the output vector, before a final argmax), `logit` (the
    pre-activation of a final sigmoid, if any), `level` (decision level of a single output)."""

    out: str
    logit: str | None
    binary: bool
    level: Fraction


def analyse(graph: Graph) -> Head:
    _, out = graph.single_io("robustness")
    node = graph.node(out)
    if isinstance(node, Argmax):
        out = node.x
        node = graph.node(out)
    logit = node.x if isinstance(node, Sigmoid) else None
    binary = graph.dims()[out] == 1
    return Head(out, logit, binary, Fraction(1, 2) if logit else Fraction(0))


def truncate(graph: Graph, out: str) -> Graph:
    """The sub-graph computing `out`: `graph.slice((out,))`."""
    return graph.slice((out,))


def has_sigmoid(graph: Graph) -> bool:
    return any(isinstance(n, Sigmoid) for n in graph.nodes)


def _t(v):
    """A term for a value element: an SMT name, a number, or already a term."""
    if isinstance(v, str):
        return Var(v)
    if isinstance(v, (Var, Num, Add, Mul)):
        return v
    return Num(Fraction(v))


def _sub(a, b):
    a, b = _t(a), _t(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    return Add((a, Mul((Num(Fraction(-1)), b))))


_OPS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y}


def _cmp(op, a, b):
    """Comparison term, folded to True/False when both sides are numbers (local queries)."""
    a, b = _t(a), _t(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return _OPS[op](a.value, b.value)
    return Cmp(op, a, b)


def _and(*xs):
    if any(x is False for x in xs):
        return False
    xs = tuple(x for x in xs if x is not True)
    return True if not xs else xs[0] if len(xs) == 1 else And(xs)


def _or(*xs):
    if any(x is True for x in xs):
        return True
    xs = tuple(x for x in xs if x is not False)
    return False if not xs else xs[0] if len(xs) == 1 else Or(xs)


@dataclass
class Encoding:
    """Options for how a query is encoded (shared by verification and estimation)."""

    sigmoid: str = "exp"  # exp | pwl
    pieces: int = 8  # pwl grid segments; candidates that fail the replay refine it
    extra: dict = field(default_factory=dict)  # pwl refinement points
    bounds: Mapping | None = None  # value name -> Interval (pwl needs them)
    logit_bits: int = 60  # precision of rational logit thresholds (σ behind a final sigmoid)
    logit_strong: bool = False  # thresholds on the strict side: to find a witness, proves nothing


def input_names(graph: Graph) -> list[str]:
    return [f"X_{i}" for i in range(graph.inputs[0].dim)]


def build(graph: Graph, q: Question, enc: Encoding | None = None,
          objective: tuple | None = None, kind: str = "robustness") -> Script:
    """The script asserting the negation of `q` on the symbolic network `graph`.

    With `objective`, the negation's threshold is dropped and the quantity is optimised instead:
    ("eps", j, +1|-1) maximises ±(f_p(x)_j - f_p0(x)_j); ("sigma", "above"|"below") optimises
    the nominal output (pre-activation of a final sigmoid) over the inputs whose label flips.
    `kind` is what the script's header calls the query (robustness, or estimate for the probes
    and objectives of an estimate).
    """
    enc = enc or Encoding()
    head = analyse(graph)
    if q.kind == "sigma" and not head.binary:
        raise UnsupportedError("σ robustness is defined for networks with one output (a binary "
                               "classifier); this one has several (argmax labels)")
    use_logit = head.logit is not None and q.kind != "eps"
    target = head.logit if use_logit else head.out
    gp = graph.slice((target,))
    gn = nominal_graph(gp)
    if q.kind == "eps" and has_sigmoid(gp) and enc.sigmoid not in SIGMOID_ENCODINGS:
        raise UnsupportedError(f"unknown sigmoid encoding {enc.sigmoid!r}")
    b = ScriptBuilder()
    inp = gp.inputs[0]
    xs = input_names(graph)
    kw = dict(sigmoid=f"pwl:{enc.pieces}" if enc.sigmoid == "pwl" else enc.sigmoid,
              sigmoid_bounds=enc.bounds, sigmoid_extra=enc.extra)
    if q.point is not None:
        if len(q.point) != inp.dim:
            raise InputError(f"the point has {len(q.point)} values, the network {inp.dim} inputs")
        x_val = np.array([Fraction(v) for v in q.point], dtype=object)
        pd = TermDomain(b, prefix="p_", **kw)
        yp = interpret(gp, pd, {inp.name: x_val})[target]
        yn = interpret(gn, TermDomain(b, prefix="n_", **kw), {inp.name: x_val})[target]
    else:
        if q.domain.dim != inp.dim:
            raise InputError(f"{q.domain.source}: the domain has {q.domain.dim} inputs, the network {inp.dim}")
        pd = TermDomain(b, prefix="p_", names=lambda n, d: xs if n == inp.name else None, **kw)
        yp = interpret(gp, pd, {inp.name: None})[target]
        b.assert_("domain", q.domain.constraint(xs))
        # the nominal copy reads the same input variables: its input is already computed
        yn = interpret(gn, TermDomain(b, prefix="n_", **kw), {},
                       initial_env={inp.name: np.array(xs, dtype=object)})[target]
    for p in sym_params(graph):  # parameters the truncation dropped are still declared (boxed)
        pd.param(p)
    L = Fraction(0) if use_logit else head.level
    if objective is not None:
        cond, term, sense = _objective(q, head, objective, yp, yn, L)
        b.objective = Objective(sense, term)
        b.features.add("optimize")
        b.meta["objective"] = (f"maximise {'' if objective[2] > 0 else '-'}(f_p(x)[{objective[1]}] - "
                               f"f_p0(x)[{objective[1]}])" if objective[0] == "eps" else
                               f"{sense}imise the nominal output over inputs whose label flips "
                               f"({objective[1]} the level)")
    else:
        cond = _negation(q, head, yp, yn, L, use_logit, enc.logit_bits, enc.logit_strong)
        if kind == "estimate":  # a probe of the estimate's search: the definition's negation
            b.meta["probe"] = (f"can some output move by more than {float(q.value):g}?" if q.kind == "eps" else
                               f"can a label flip at distance >= {float(q.value):g} from the level?")
    if cond is True:
        b.assert_("negation", Cmp(">=", Num(Fraction(0)), Num(Fraction(0))))
    elif cond is False:
        b.assert_("negation", Cmp("<", Num(Fraction(0)), Num(Fraction(0))))
    else:
        b.assert_("negation", cond)
    b.meta.update({"query": kind, "definition": q.describe() if objective is None else NAMES[q.definition],
                   "network": graph.meta.get("source", ""),
                   "perturbation": graph.meta.get("perturbation", ""),
                   "sigmoid": enc.sigmoid if has_sigmoid(gp) else "none",
                   "inputs": xs if q.point is None else []})
    return b.build()


def _label_flip(head, yp, yn, L, q=None):
    if head.binary:
        return _or(_and(_cmp(">=", yn[0], L), _cmp("<", yp[0], L)),
                   _and(_cmp("<", yn[0], L), _cmp(">=", yp[0], L)))
    # argmax labels differ: for some class c, c is the nominal argmax and not the perturbed one
    alts = []
    k = len(yp)
    for c in range(k):
        def is_max(y, c=c):
            return _and(*[_cmp(">", y[c], y[j]) if j < c else _cmp(">=", y[c], y[j])
                          for j in range(k) if j != c])
        wins_n, wins_p = is_max(yn), is_max(yp)
        alts.append(_and(wins_n, True if wins_p is False else False if wins_p is True else Not(wins_p)))
    return _or(*alts)


def sigma_thresholds(head: Head, sigma: Fraction, use_logit: bool, bits: int = 60,
                     strong: bool = False):
    """Thresholds (above, below) on the compared value for |f_p0 - l| >= σ: on the
    pre-activation of a final sigmoid they are rational bounds of logit(1/2 ± σ) on the weaker
    side (so unsat still proves the property), or with `strong` on the stricter side (so any
    model is a witness); None where no input can reach them."""
    if not use_logit:
        return head.level + sigma, head.level - sigma
    t_above, t_below = Fraction(1, 2) + sigma, Fraction(1, 2) - sigma
    k = 1 if strong else 0
    above = logit_bounds(t_above, bits)[k] if t_above < 1 else None
    below = logit_bounds(t_below, bits)[1 - k] if t_below > 0 else None
    return above, below


def _negation(q, head, yp, yn, L, use_logit, bits=60, strong=False):
    if q.kind == "eps":
        alts = []
        for a, c in zip(yp, yn):
            alts.append(_cmp(">", _sub(a, c), q.value))
            alts.append(_cmp(">", _sub(c, a), q.value))
        return _or(*alts)
    if q.kind == "label":
        return _label_flip(head, yp, yn, L)
    above, below = sigma_thresholds(head, q.value, use_logit, bits, strong)
    alts = []
    if "above" in q.sides and above is not None:
        alts.append(_and(_cmp(">=", yn[0], L), _cmp(">=", yn[0], above), _cmp("<", yp[0], L)))
    if "below" in q.sides and below is not None:
        alts.append(_and(_cmp("<", yn[0], L), _cmp("<=", yn[0], below), _cmp(">=", yp[0], L)))
    return _or(*alts)


def _objective(q, head, objective, yp, yn, L):
    if objective[0] == "eps":
        _, j, sign = objective
        d = _sub(yp[j], yn[j]) if sign > 0 else _sub(yn[j], yp[j])
        return True, d, "max"
    side = objective[1]
    if side == "above":
        return _and(_cmp(">=", yn[0], L), _cmp("<", yp[0], L)), _t(yn[0]), "max"
    return _and(_cmp("<", yn[0], L), _cmp(">=", yp[0], L)), _t(yn[0]), "min"


# --- witnesses ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Witness:
    """Perturbed parameters and an input, replayed exactly (or with certified enclosures).

    `value` is the certified lower bound of the witnessed quantity: |f_p(x) - f_p0(x)|_inf for
    eps, |f_p0(x) - l| for sigma (of the side it flips); None for label. `holds` is True when the
    replay certifies the negation of the question, False when it refutes it, None when the
    enclosure cannot decide."""

    x: tuple[Fraction, ...]
    params: dict
    y_pert: tuple
    y_nom: tuple
    value: Fraction | None
    holds: bool | None
    side: str = ""
    pre: dict = field(default_factory=dict)  # (prefix+node, neuron) -> pre-activation of sigmoids
    float_replay: str = ""  # a float replay that agreed too (e.g. "onnxruntime")
    notes: tuple[str, ...] = ()  # how it was certified, and what it witnesses

    @property
    def replayed(self) -> list[str]:
        return ["certified enclosures" if self.pre else "exact"] + ([self.float_replay] if self.float_replay else [])

    def to_json(self) -> dict:
        mid = lambda e: [float((a + b) / 2) for a, b in zip(*e)]  # noqa: E731
        return {"x": [float(v) for v in self.x], "x_exact": [str(v) for v in self.x],
                "params": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in self.params.items()},
                "params_exact": {k: [str(a) for a in np.asarray(v, dtype=object).ravel()]
                                 for k, v in self.params.items()},
                "y_perturbed": mid(self.y_pert), "y_nominal": mid(self.y_nom),
                "value": None if self.value is None else float(self.value),
                "side": self.side or None}


def _pre_activations(graph, env, prefix):
    out = {}
    for n in graph.nodes:
        if isinstance(n, Sigmoid):
            lo, hi = env[n.x]
            for i, (a, b) in enumerate(zip(lo, hi)):
                out[(prefix + n.name, i)] = [(a + b) / 2]
    return out


def replay(graph: Graph, q: Question, x: Sequence, params: Mapping) -> Witness:
    """Certify a candidate (input, parameters) against the negation of `q` on the network."""
    head = analyse(graph)
    inp = graph.inputs[0].name
    x = tuple(Fraction(v) for v in x)
    ep = evaluate_enclosure(graph, {inp: list(x)}, params)
    en = evaluate_enclosure(graph, {inp: list(x)}, {})
    yp, yn = ep[head.out], en[head.out]
    pre = _pre_activations(graph, ep, "p_") | _pre_activations(graph, en, "n_")
    if not within(graph, params) or (q.domain is not None and not q.domain.contains(x)):
        return Witness(x, dict(params), yp, yn, None, False, pre=pre)
    if q.kind == "eps":
        best = max(max(a_lo - b_hi, b_lo - a_hi)
                   for a_lo, a_hi, b_lo, b_hi in zip(yp[0], yp[1], yn[0], yn[1]))
        holds = True if best > q.value else None
        if all(max(a_hi - b_lo, b_hi - a_lo) <= q.value for a_lo, a_hi, b_lo, b_hi
               in zip(yp[0], yp[1], yn[0], yn[1])):
            holds = False
        return Witness(x, dict(params), yp, yn, max(best, Fraction(0)), holds, pre=pre)
    # labels, on the logit when there is a final sigmoid (exact there when the rest is)
    v = head.logit or head.out
    L = Fraction(0) if head.logit else head.level
    lp, ln = _label(ep[v], head, L), _label(en[v], head, L)
    flip = None if lp is None or ln is None else lp != ln
    if q.kind == "label":
        return Witness(x, dict(params), yp, yn, None, flip, pre=pre)
    # sigma: distance of the nominal output from the level, on the side that flips
    if not flip:
        return Witness(x, dict(params), yp, yn, None, flip, pre=pre)
    side = "above" if ln == 1 else "below"
    dist = (yn[0][0] - head.level) if side == "above" else (head.level - yn[1][0])
    ok_side = side in q.sides
    if not ok_side:
        return Witness(x, dict(params), yp, yn, None, False, side, pre=pre)
    far = dist >= q.value
    far_refuted = ((yn[1][0] - head.level) if side == "above" else (head.level - yn[0][0])) < q.value
    holds = True if (ok_side and far) else False if (not ok_side or far_refuted) else None
    return Witness(x, dict(params), yp, yn, dist, holds, side, pre=pre)


def _label(enc, head, L):
    """The certain label of an enclosure, or None when it cannot be decided."""
    lo, hi = enc
    if not head.binary:
        n = len(lo)  # i can be the first argmax unless some j is certainly larger (or tied, earlier)
        cand = [i for i in range(n) if not any(lo[j] > hi[i] or (j < i and lo[j] >= hi[i])
                                               for j in range(n) if j != i)]
        return cand[0] if len(cand) == 1 else None
    if lo[0] >= L:
        return 1
    if hi[0] < L:
        return 0
    return None


def witness_from_model(graph: Graph, q: Question, model: Mapping[str, Fraction]) -> Witness:
    params = params_from_model(graph, model)
    x = q.point if q.point is not None else [model[n] for n in input_names(graph)]
    return replay(graph, q, x, params)


# --- the query -----------------------------------------------------------------------------------

DELTA = 1e-6  # δ asked of δ-complete solvers (measured on the cats model: 1e-4 boxes often miss)
MARGIN = 100  # a δ-sat candidate that does not replay: ask again, comparisons strengthened by MARGIN·δ
LOGIT_BITS_MAX = 480  # σ behind a final sigmoid: the finest rational bounds of logit(1/2 ± σ)
REFINE = 12  # pwl: refinements of the relaxation around rejected candidates
RELAXATION_NOTE = ("sigmoid by a sound piecewise-linear relaxation: unsat is a proof for the network; "
                   "a sat candidate is reported only after it replays on the network")


def query_bounds(graph: Graph, q: Question):
    """Sound interval bounds of every value over the question's inputs and parameter boxes."""
    if q.point is not None:
        return propagate_bounds(graph, box_interval(q.point, q.point), "interval")
    return region_bounds(graph, q.domain, "interval")


def needs_sigmoid(graph: Graph, q: Question) -> bool:
    head = analyse(graph)
    target = head.logit if head.logit is not None and q.kind != "eps" else head.out
    return has_sigmoid(graph.slice((target,)))


class Rejected(ValidationError):
    """A candidate whose replay does not break the property; `witness` is what the replay
    showed (its certified value still bounds the quantity from below)."""

    def __init__(self, message: str, witness: Witness | None = None):
        super().__init__(message)
        self.witness = witness


@dataclass(frozen=True, eq=False)
class RobustnessQuery:
    """The negation of a robustness question (`build`) as a query of the driver.

    certify: the model's parameters and input, replayed exactly (certified enclosures through a
    sigmoid), must break the property; then `float_check(witness)`, if given, replays it in
    floating point (raising ValidationError on a disagreement). refine, after a rejected
    candidate: on a δ-complete solver once with strengthened comparisons (`options.margin`);
    σ behind a final sigmoid: the stricter rational threshold (whose unsat proves nothing:
    then the weaker one with 4x the bits, up to LOGIT_BITS_MAX); pwl: the relaxation refined
    around the candidate's pre-activations, at most `refinements` times.

    `sigmoid` is "exp" or "pwl", resolved by the caller from the solver's capabilities
    (`nnsmt.engine.robustness.sigmoid_for`); `objective` turns the query into the optimisation
    script of `build` (what `nnsmt compile --mode estimate --objective` writes); `kind` is
    "robustness", or "estimate" for the threshold probe of an estimate."""

    graph: Graph
    question: Question
    sigmoid: str = "pwl"
    pieces: int = 8
    bounds: Mapping | None = None
    extra: Mapping = field(default_factory=dict)
    logit_bits: int = 60
    logit_strong: bool = False
    delta_complete: bool = False
    options: SolveOptions = SolveOptions()
    refinements: int = REFINE
    objective: tuple | None = None
    float_check: Callable[[Witness], str | None] | None = None
    kind: str = "robustness"

    @property
    def uses_sigmoid(self) -> bool:
        return needs_sigmoid(self.graph, self.question)

    @property
    def relaxed(self) -> bool:
        q = self.question
        return (self.uses_sigmoid and self.sigmoid == "pwl") or \
            (q.kind == "sigma" and q.value > 0 and analyse(self.graph).logit is not None)

    @property
    def proves_unsat(self) -> bool:
        return not self.logit_strong

    @property
    def notes(self) -> tuple[str, ...]:
        return (RELAXATION_NOTE,) if self.uses_sigmoid and self.sigmoid == "pwl" else ()

    def describe(self) -> str:
        return self.question.describe()

    def compile(self) -> Script:
        enc = Encoding(self.sigmoid, self.pieces, self.extra, self.bounds, self.logit_bits, self.logit_strong)
        return build(self.graph, self.question, enc, self.objective, self.kind)

    def certify(self, model: Mapping[str, Fraction]) -> Witness:
        try:
            w = witness_from_model(self.graph, self.question, model)
        except (KeyError, ValueError) as e:
            raise Rejected(f"the model does not give every parameter and input ({e})") from None
        if not w.holds:
            why = "the replay cannot decide the candidate" if w.holds is None else \
                "the replayed network does not break the property"
            if self.uses_sigmoid and self.sigmoid == "pwl" and not self.refinements:
                why += f" (after {REFINE} refinements of the relaxation; try more --pieces or an exact backend)"
            raise Rejected(why, w)
        how = self.float_check(w) if self.float_check is not None else None
        q = self.question
        notes = (("replayed with certified enclosures of the sigmoid",) if w.pre else ()) + \
            (() if w.value is None else (f"{q.kind} >= {float(w.value):.6g}",))
        return replace(w, float_replay=how or "", notes=notes)

    def refine(self, model, error) -> "RobustnessQuery | None":
        w = getattr(error, "witness", None)
        if w is None:
            return None
        if self.delta_complete:  # look again once, with strengthened comparisons
            return None if self.options.margin else \
                replace(self, options=replace(self.options, margin=MARGIN * (self.options.delta or DELTA)))
        q = self.question
        if q.kind == "sigma" and q.value > 0 and analyse(self.graph).logit is not None and \
                (w.holds is None or w.value is not None and w.value < q.value):
            # the candidate sits in the gap between logit(1/2 ± σ) and its weaker rational bound:
            # look for one beyond the stricter bound instead
            return None if self.logit_strong else replace(self, logit_strong=True)
        if self.uses_sigmoid and self.sigmoid == "pwl" and self.refinements > 0:
            extra = {k: list(v) for k, v in self.extra.items()}
            for k, v in w.pre.items():  # refine around the candidate's pre-activations
                pts = extra.setdefault(k, [])
                h = Fraction(1, 1 << min(40, 2 + len(pts) // 3))
                pts.extend(p + d for p in v for d in (0, -h, h))
            return replace(self, extra=extra, refinements=self.refinements - 1)
        return None

    def refine_unsat(self, core) -> "RobustnessQuery | None":
        """No witness beyond the stricter threshold: the answer lies between the two rational
        bounds of logit(1/2 ± σ); narrow them."""
        if self.logit_bits >= LOGIT_BITS_MAX:
            return None
        return replace(self, logit_strong=False, logit_bits=self.logit_bits * 4)


def robustness_query(graph: Graph, q: Question, sigmoid: str = "pwl", pieces: int = 8, *,
                     capabilities: Capabilities = Capabilities(), **kw) -> RobustnessQuery:
    """The query for `q` on the symbolic network `graph`, for a solver with `capabilities`
    (δ-complete ones get δ = DELTA and the strengthened retry). `sigmoid` is "exp" or "pwl"."""
    if sigmoid not in SIGMOID_ENCODINGS:
        raise InputError(f"--sigmoid: choose exp or pwl here (got {sigmoid!r}); auto is resolved "
                         "by the backend's capabilities")
    if pieces < 1:
        raise InputError(f"--pieces needs a positive number of segments, got {pieces}")
    bounds = query_bounds(graph, q) if sigmoid == "pwl" and needs_sigmoid(graph, q) else None
    dc = capabilities.delta_complete
    return RobustnessQuery(graph, q, sigmoid, pieces, bounds, delta_complete=dc,
                           options=SolveOptions(delta=DELTA) if dc and "delta" in capabilities.options
                           else SolveOptions(), **kw)


def check(graph: Graph, q: Question, solve, sigmoid: str = "pwl", pieces: int = 8,
          timeout: float | None = None, observe=None, **kw) -> Outcome:
    """Decide `q` on the symbolic network `graph` with a `nnsmt.result.Solve` callable, all
    refinement rounds within `timeout` seconds: sat (a certified `Witness`), unsat (the property
    holds), unknown or error (`nnsmt.query.Outcome`)."""
    query = robustness_query(graph, q, sigmoid, pieces,
                             capabilities=getattr(solve, "capabilities", Capabilities()), **kw)
    return decide(query, solve, timeout, notes=query.notes, observe=observe)
