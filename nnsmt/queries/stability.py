"""Which ReLUs are stable over an input domain: by bounds first, then by exact queries.

Definitions (pre-activation a of a ReLU, over every input of the domain):
- stably inactive: a <= 0 everywhere (the ReLU is the constant 0; a neuron with a = 0
  everywhere counts as inactive);
- stably active: a >= 0 everywhere (the ReLU is the identity);
- unstable: a > 0 at some input and a < 0 at another; both inputs are kept as witnesses and
  were replayed exactly through the network.

Each "stable" verdict is proved: either by sound bounds (`nnsmt.bounds`) or by an unsat answer.
Every input the analysis meets (a random sample, a point the bounds suggest, a solver's model)
is replayed exactly and all neuron states it shows are recorded, so no question is asked whose
answer is already known. In order:
1. bounds: linear (DeepPoly/CROWN-style) bounds, each ReLU input's optimised per neuron
   (α-CROWN, `StabilityOptions.tighten`), decide what they can;
2. pre-pass (the same for both methods): `samples` random inputs, and with `guided` the box
   corner that maximises each open neuron's linear upper bound and the one that minimises its
   lower bound (where the relaxation says a witness is most likely); then, with `attack` N,
   for each (neuron, sign) still unseen, projected gradient descent (`nnsmt.attack`) on the
   neuron's cone from N random starts towards that sign (on digits_5x100_l1 it shows 54 of the
   60 states that 200,000 random samples miss, in 1.4 s); then, with `split` N, each question
   still open ("can a > 0?") is refuted by bounds on up to N sub-boxes of the domain if it can
   be (input splitting, `nnsmt.queries.split.plan_split`, on the neuron's cone): a sound proof
   that the answer is no; then each question still open gets `bab_first_s` seconds of the
   branch and bound of step 5;
3. exact queries on what is left, by one of two methods:
   - `per-neuron`: for each open neuron in layer order, "can a > 0?" and "can a < 0?" unless a
     model already showed it (at most two queries a neuron). Each query encodes only the
     neuron's cone of influence: the layers before it and its own row;
   - `single`: the harvesting query of the seed paper: one query asks for an input where some
     open neuron not yet seen active is active, or some not yet seen inactive is inactive; the
     model is recorded and the query asked again without what is known, until unsat: never
     seen active = stably inactive, never seen inactive = stably active.
   With a solver that honours `SolveOptions.harvest` (a MILP: "harvest" in the `solve`
   callable's `capabilities.options`), `single` asks it to maximise how many asked states
   hold, and records every solution it met (`Result.models`), not only the best one; the
   candidates are replayed exactly and one that fails the replay is skipped, never counted.
4. claims: a floating-point solver's "none can switch" (unknown with the UNCONFIRMED_INFEASIBLE
   reason) proves nothing: each (neuron, sign) it covers is a claim, made exact one by one
   before any neuron is called stable: by bounds on sub-boxes (`confirm_split`), then by an
   exact query on the neuron's cone with the `confirm` solver (an SMT backend). A claim that
   neither confirms nor refutes in time goes to step 5; a refuted one (a model the
   exact query found) is an observation like any other. What a harvesting question left
   unanswered (a timeout, a solution that failed its exact check) is asked again, one (neuron,
   sign) a question on its cone (a smaller problem; for a MILP a feasibility problem, easier
   than the harvesting maximisation); with a `confirm` solver, what those leave unanswered
   goes the way of the claims. A harvesting question without an answer whose solutions showed
   something new is simply asked again (without what they showed).
5. what no query settled (a timeout, an unconfirmed claim) gets `bab_s` seconds of branch and
   bound on the ReLU phases of the neuron's cone (`nnsmt.queries.bab`), a proof by rigorous
   bounds when it refutes every sub-problem; its LP minimisers (a sub-problem with every phase
   fixed is an LP) are replayed as witnesses, so it may also show the state possible; else
   the neuron is unknown. Where the queries do not pay (the first `bab_after` all ran out of
   time, none answered), each question left gets a query's time of this bab instead of its
   query, and so do the ones those queries left open.
Queries use the bounded encoding over the domain's bounds (stable ReLUs are constants or the
identity, only unstable ones are `ite`s; `lemmas` adds their bounds or triangle relaxation).
A query that times out goes to step 5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..attack import as_fractions, attack
from ..bounds import LinearDomain, relu_states
from ..domain import InputDomain, region_bounds
from ..encode import LEMMAS, encode_graph
from ..errors import NnsmtError, UnsupportedError, ValidationError
from ..interpret import FloatDomain, evaluate_exact, float_matvec, interpret
from ..ir import Affine, Const, Graph, Input, Relu, Sparse, operands
from ..query import decide
from ..result import UNCONFIRMED_INFEASIBLE, SolveOptions
from ..terms import Cmp, Num, Or, Script, ScriptBuilder, Var
from ..validate import to_float
from ..vnnlib import Property
from .bab import plan_bab
from .split import plan_split

ACTIVE, INACTIVE, UNSTABLE, UNKNOWN = 1, -1, 0, 2
STATE_NAMES = {ACTIVE: "active", INACTIVE: "inactive", UNSTABLE: "unstable", UNKNOWN: "unknown"}
METHODS = ("single", "per-neuron")
ZERO = Num(Fraction(0))
# a sum-of-infeasibilities simplex where the solver has one (`Capabilities.options`): measured on
# the 64-input digits MLPs, a default simplex spends tens of seconds in pivots on large exact
# rationals (0 conflicts), and with it every query there took under 5 s (bench/stability.py).
SIMPLEX = "soi"
# α steps per bab sub-problem of a stability question (bab's default, 5, is tuned on MNIST
# properties): on digits_5x100_l1, "can a2[25] < 0?" (its minimum is 0.031, HiGHS) stays open
# after 200,000 sub-problems (120 s) with 5 steps and is refuted after 104 (0.1 s) with 20;
# a5[61] and a5[96] take 0.7 and 0.5 s instead of 2.1 and 1.4 s
BAB_ALPHA_STEPS = 20


# Queries that answer nothing: after this many (and no answer at all) the rest of the questions
# get bab for a query's time. Measured on MNIST-FC 256x4 over prop_0's eps 0.03 box (1,024
# ReLUs, 784-input cones): cvc5 answered none of 27 queries at 10 s each (286 s), while bab
# refuted 77 questions (about 5 s each for most). On the digits networks the queries answer
# from the first, so nothing changes there.
BAB_AFTER = 3


@dataclass(frozen=True)
class StabilityOptions:
    """How to classify (see `classify`).

    Attributes:
        method: "per-neuron" (the default: with the pre-pass, as fast as "single" or faster on
            every digits network, README) or "single" (harvesting).
        timeout: seconds per query; what a query that times out asked goes to the branch and
            bound step (`bab_s`), and stays UNKNOWN if that does not refute it.
        samples: random inputs replayed exactly before any query (cheap witnesses); seed: theirs.
        guided: also replay, before any query, the box corners the linear bounds point to.
        attack: for each (neuron, sign) the samples and corners left unseen, one round of
            projected gradient descent from this many random starts on the neuron's cone
            (`nnsmt.attack.attack`), its points replayed exactly (0: none).
        lemmas: what the bounded encoding asserts about unstable ReLUs ("none", "bounds",
            "triangle"; see `nnsmt.encode`).
        reuse: per-neuron only: skip a question that a model of an earlier query already
            answered (False: both questions for every neuron the pre-pass left open).
        split: before any query, try to refute each open question by bounds on at most this
            many sub-boxes (0: no splitting).
        simplex: `SolveOptions.simplex` of every query (default SIMPLEX; "default": the solver's).
        confirm_split: a floating-point solver's claim that a state is impossible is first
            confirmed by bounds on at most this many sub-boxes (0: straight to the exact query).
        tighten: α-CROWN steps optimising each ReLU input's bounds per neuron before anything
            else (`nnsmt.bounds.tightened_bounds`; 0: plain linear bounds). The tighter
            bounds decide more neurons and shrink every query's encoding (a MILP's big-M).
        bab_s: seconds of branch and bound on ReLU phases (`refuted_by_bab`) for each
            question that no query settled (a timeout, an unconfirmed claim), before its
            neuron is called unknown (0: none). On digits_5x100_l1 it proves two "can a > 0?"
            in layer 5 in under a second each, which cvc5 and HiGHS left open.
        bab_first_s: seconds of the same branch and bound for each question the pre-pass
            left open, before any query (0: none): on digits_5x100_l1 it refutes 3 of the 6
            in under a second each, sparing their queries (20 s timeouts with cvc5).
        bab_after: once this many queries have run and none has answered (each ran out of
            its `timeout`; an exact solver), each question left gets `timeout` seconds of bab
            instead of its query (0: never). See BAB_AFTER.
        harvest_s: seconds a harvesting question may search (None: `timeout`). It maximises
            how many asked states hold, and its incumbents are what counts: one that runs out
            of time having shown something is simply asked again; one that shows nothing is
            followed by one question a state, each with the full `timeout`.
    """

    method: str = "per-neuron"
    timeout: float | None = None
    samples: int = 0
    seed: int = 0
    guided: bool = True
    attack: int = 64
    lemmas: str = "none"
    reuse: bool = True
    split: int = 0
    simplex: str = SIMPLEX
    confirm_split: int = 16
    harvest_s: float | None = 1.0  # digits_plain without pre-pass: 5.1 s in all at 1 s, 11.5 s at 5 s
    # over [0, 16]^64: digits_5x100_l1's layer-5 bound widths to 60% (median) in 0.5 s;
    # digits_2x800_l1 costs 3.7 s
    tighten: int = 60
    bab_s: float = 5.0
    bab_first_s: float = 1.0
    bab_after: int = BAB_AFTER

    def __post_init__(self):
        if self.method not in METHODS:
            raise UnsupportedError(f"unknown stability method {self.method!r} ({', '.join(METHODS)})")
        if self.lemmas not in LEMMAS:
            raise UnsupportedError(f"unknown lemmas {self.lemmas!r}; choose from {', '.join(LEMMAS)}")
        if self.split < 0:
            raise UnsupportedError(f"--split needs a number of sub-boxes >= 0, got {self.split}")
        if self.attack < 0:
            raise UnsupportedError(f"--attack needs a number of starts >= 0, got {self.attack}")
        if self.samples < 0:
            raise UnsupportedError(f"--samples needs a number of points >= 0, got {self.samples}")
        if self.harvest_s is not None and not self.harvest_s > 0:
            raise UnsupportedError(f"--harvest-seconds needs a number of seconds > 0, got {self.harvest_s}")
        for name, v in (("--bab-seconds", self.bab_s), ("bab_first_s", self.bab_first_s)):
            if not 0 <= v < float("inf"):
                raise UnsupportedError(f"{name} needs a finite number of seconds >= 0, got {v}")
        if self.bab_after < 0:
            raise UnsupportedError(f"--bab-after needs a number of queries >= 0, got {self.bab_after}")
        if self.tighten < 0:
            raise UnsupportedError(f"tighten needs a number of steps >= 0, got {self.tighten}")
        if self.confirm_split < 0:
            raise UnsupportedError(f"--confirm-split needs a number of sub-boxes >= 0, got {self.confirm_split}")


@dataclass
class Stability:
    """Per ReLU node, each neuron's state (ACTIVE / INACTIVE / UNSTABLE / UNKNOWN on a timeout),
    how each was decided, and the cost."""

    states: dict[str, np.ndarray]
    method: str
    reuse: bool = True  # per-neuron: a question an earlier model answered is not asked
    by_bounds: int = 0
    by_samples: int = 0  # neurons shown unstable by the pre-pass (samples, guided points, attack)
    by_attack: int = 0  # of which only once the attack's points were replayed
    by_split: int = 0  # questions ("can a > 0?") refuted by bounds on sub-boxes
    by_bab: int = 0  # questions refuted by phase branch and bound (before or after the queries)
    bab_shown: int = 0  # questions bab answered "possible" (an LP minimiser replayed as a witness)
    bab_instead: int = 0  # questions given a query's time of bab instead of the query (`bab_after`)
    points: int = 0  # inputs replayed in the pre-pass
    queries: int = 0
    sat: int = 0
    unsat: int = 0
    unknown: int = 0
    time_s: float = 0.0
    solve_s: float = 0.0  # of which in the solver
    witnesses: dict = field(default_factory=dict)  # (relu, i) -> (x with a > 0, x with a < 0)
    harvest: bool = False  # the solver harvested solutions (SolveOptions.harvest)
    harvested: int = 0  # further solutions (Result.models) in the domain, replayed if they show news
    harvest_skipped: int = 0  # further solutions outside the domain or malformed (not counted)
    claims: int = 0  # (neuron, sign) a floating-point solver called impossible without proof
    confirmed: dict = field(default_factory=dict)  # how claims were made exact: split / exact
    refuted_claims: int = 0  # claims an exact query refuted (a replayed model)
    unanswered: int = 0  # (neuron, sign) the solver left open, handed to `confirm` like claims
    phase_s: dict = field(default_factory=dict)  # seconds per phase (bounds, prepass, ...)
    # per unknown neuron (relu, i): (the questions left open, ">" and/or "<"; the sound bounds of
    # its pre-activation over the domain; the least and greatest value seen on the inputs met,
    # in float64: how far the open question is from an answer)
    gaps: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        allv = np.concatenate(list(self.states.values())) if self.states else np.zeros(0)
        return {name: int((allv == code).sum()) for code, name in STATE_NAMES.items()} | \
            {"total": int(allv.size)}

    def same_as(self, other: "Stability") -> bool:
        return self.states.keys() == other.states.keys() and all(
            np.array_equal(self.states[k], other.states[k]) for k in self.states)


class _Columns(FloatDomain):
    """float64 evaluation of many inputs at once (one column each): affine and ReLU nodes with
    constant parameters only (`_Harvest.record_many` checks the graph first)."""

    def input(self, node, value):
        return np.asarray(value, dtype=np.float64).T

    def affine(self, node, x, *more):
        out = sum(float_matvec(w, v) for (_, w), v in zip(node.terms(), (x,) + more))
        return out + node.bias.floats()[:, None]


def _columns_ok(graph: Graph) -> bool:
    return all(isinstance(n, (Relu, Input)) or (isinstance(n, Affine) and isinstance(n.bias, Const)
               and all(isinstance(w, (Const, Sparse)) for _, w in n.terms())) for n in graph.nodes)


class _Harvest:
    """What replayed inputs have shown: per neuron, an input with a > 0 and one with a < 0."""

    def __init__(self, graph: Graph, relus: list[Relu]):
        self.g, self.relus = graph, relus
        self.pos: dict = {}
        self.neg: dict = {}
        # per ReLU, the least and greatest pre-activation met so far (float64; a report only)
        self.least: dict[str, np.ndarray] = {}
        self.most: dict[str, np.ndarray] = {}

    def _range(self, name: str, a: np.ndarray) -> None:
        """Widen ReLU `name`'s seen range by values a (neurons first, points after)."""
        lo, hi = a.reshape(a.shape[0], -1).min(axis=1), a.reshape(a.shape[0], -1).max(axis=1)
        self.least[name] = np.minimum(self.least.get(name, lo), lo)
        self.most[name] = np.maximum(self.most.get(name, hi), hi)

    def record(self, x: list[Fraction]) -> int:
        """Replay x exactly; returns how many new observations it gave (`self.env`: the values)."""
        env = self.env = evaluate_exact(self.g, {self.g.inputs[0].name: x})
        new = 0
        for r in self.relus:
            self._range(r.name, np.array([to_float(a) for a in env[r.x]]))
            for i, a in enumerate(env[r.x]):
                if a > 0 and (r.name, i) not in self.pos:
                    self.pos[(r.name, i)] = tuple(x)
                    new += 1
                elif a < 0 and (r.name, i) not in self.neg:
                    self.neg[(r.name, i)] = tuple(x)
                    new += 1
        return new

    def record_many(self, points: list) -> int:
        """Record the points that can show something new; returns how many were replayed.

        An exact replay of a large network costs about a second, so the points are first
        evaluated in float64 all at once, and only those (greedily, most news first) whose float
        values show a state not yet seen are replayed exactly: the float values only choose
        which points to replay, the exact replay decides what they show (a point skipped is a
        witness missed, never a wrong verdict)."""
        if not points:
            return 0
        if not _columns_ok(self.g):
            for x in points:
                self.record(x)
            return len(points)
        env = interpret(self.g, _Columns(), {self.g.inputs[0].name: np.array(points, dtype=np.float64)})
        for r in self.relus:
            self._range(r.name, env[r.x])
        keys = [(r.name, i) for r in self.relus for i in range(env[r.x].shape[0])]
        a = np.vstack([env[r.x] for r in self.relus])
        tol = 1e-9 * (1 + np.abs(a))
        pos, neg = a > tol, a < -tol
        seen_p = np.array([k in self.pos for k in keys])
        seen_n = np.array([k in self.neg for k in keys])
        replayed = 0
        while True:
            gain = (pos & ~seen_p[:, None]).sum(0) + (neg & ~seen_n[:, None]).sum(0)
            j = int(np.argmax(gain))
            if gain[j] == 0:
                return replayed
            self.record(points[j])
            replayed += 1
            seen_p |= pos[:, j] | np.array([k in self.pos for k in keys])
            seen_n |= neg[:, j] | np.array([k in self.neg for k in keys])

    def input_of(self, model, domain: InputDomain) -> list[Fraction] | None:
        """A solver's candidate solution (declared name -> value) as an input, None unless it
        is an input of the domain."""
        try:
            x = [Fraction(model[f"X_{i}"]) for i in range(self.g.inputs[0].dim)]
        except (KeyError, TypeError, ValueError):
            return None
        return x if domain.contains(x) else None

    def seen(self, key, sign: str) -> bool:
        return key in (self.pos if sign == ">" else self.neg)


def _rows(w, rows):
    return w.take_rows(rows) if isinstance(w, Sparse) else Const(w.value[rows])


def cone(graph: Graph, targets: dict[str, list[int]]) -> tuple[Graph, dict[str, list[str]]]:
    """The cone of influence of some elements of some values: `targets` maps a value to the
    element indices asked about. Returns the subgraph of their ancestors, in which a target
    that nothing else in the cone consumes keeps only the asked rows (when it is an affine map
    with constant parameters), and the SMT names of those rows (`{value}_{i}`, as in the full
    encoding). Sparse and multi-input affine targets keep the asked rows of every term."""
    sub = graph.slice(tuple(targets))
    consumed = {x for n in sub.nodes for x in operands(n)}
    nodes, names = [], {}
    for n in sub.nodes:
        if n.name in targets and n.name not in consumed and isinstance(n, Affine) \
                and all(isinstance(w, (Const, Sparse)) for _, w in n.terms()) and isinstance(n.bias, Const):
            rows = sorted(set(targets[n.name]))
            n = replace(n, weight=_rows(n.weight, rows), bias=Const(n.bias.value[rows]),
                        more=tuple((x, _rows(w, rows)) for x, w in n.more), shape=None)
            names[n.name] = [f"{n.name}_{i}" for i in rows]
        nodes.append(n)
    return sub.replace(nodes=tuple(nodes)), names


@dataclass(frozen=True, eq=False)
class StabilityQuestion:
    """Is there an input in the domain at which one of `asked` holds? Each asked atom is
    (value, i, sign): the pre-activation `value[i]` compared with 0 by sign ">" or "<".

    compile: inputs X_i in the domain, the cone of the asked values with the bounded encoding
    (`cone`), and the disjunction of the atoms. certify: the model's input lies in the domain
    and, replayed exactly, satisfies one of the atoms; the witness is that input."""

    graph: Graph
    domain: InputDomain
    bounds: object
    asked: tuple
    lemmas: str = "none"
    options: SolveOptions = SolveOptions(simplex=SIMPLEX)
    kind: str = "stability"
    relaxed: bool = False

    def compile(self) -> Script:
        targets: dict[str, list[int]] = {}
        for v, i, _ in self.asked:
            targets.setdefault(v, []).append(i)
        g, rows = cone(self.graph, targets)
        inp = g.inputs[0]
        xs = [f"X_{i}" for i in range(inp.dim)]
        atoms = [Cmp(sign, Var(f"X_{i}" if v == inp.name else f"{v}_{i}"), ZERO) for v, i, sign in self.asked]
        b = ScriptBuilder()
        encode_graph(g, b, names=lambda n, d: xs if n == inp.name else rows.get(n),
                     encoding="bounded", bounds=self.bounds, lemmas=self.lemmas)
        b.assert_("domain", self.domain.constraint(xs))
        b.assert_("ask", atoms[0] if len(atoms) == 1 else Or(tuple(atoms)))
        b.meta.update({"query": "stability", "inputs": xs})
        return b.build()

    def certify(self, model) -> list[Fraction]:
        x = [Fraction(model[f"X_{i}"]) for i in range(self.graph.inputs[0].dim)]
        if not self.domain.contains(x):
            raise ValidationError("solver model lies outside the domain")
        env = evaluate_exact(self.graph, {self.graph.inputs[0].name: x})
        if not any(env[v][i] > 0 if sign == ">" else env[v][i] < 0 for v, i, sign in self.asked):
            raise ValidationError("solver model fails the exact replay: none of the asked neuron "
                                  "states holds at its input")
        return x

    def refine(self, model, error):
        return None


def guided_points(graph: Graph, domain: InputDomain, targets: dict[str, list[int]]) -> list[list[Fraction]]:
    """For every target element a, per box of the domain: the corner that maximises the linear
    upper bound of a and the one that minimises its lower bound (the back-substituted
    relaxation's optimum; a heuristic: the caller replays each point)."""
    out = []
    for (lo, hi), iv in zip(domain.boxes, domain.intervals()):
        dom = LinearDomain(graph)
        interpret(graph, dom, {graph.inputs[0].name: iv})
        for v, idx in targets.items():
            if not idx:
                continue
            m = dom.bounds[v].lo.size
            eye = np.eye(m)[sorted(idx)]
            _, (leaf, A, _) = dom.backsub(v, np.vstack([eye, -eye]))  # rows: a >= .., -a >= ..
            if leaf != graph.inputs[0].name:
                continue
            for row in A:  # the corner minimising row @ x
                out.append([l if c > 0 else h for c, l, h in zip(row.tolist(), lo, hi)])
    return out


def _question(graph: Graph, domain: InputDomain, value: str, i: int, sign: str):
    """(the cone of value[i] with it as the only output, the property "value[i] sign 0" over
    the domain), or None for an input (its bounds are exact already)."""
    g, _ = cone(graph, {value: [i]})
    if value == g.inputs[0].name:
        return None
    xs = [f"X_{j}" for j in range(domain.dim)]
    return g, Property(domain.dim, 1, ((1, domain.constraint(xs)), (2, Cmp(sign, Var("Y_0"), ZERO))),
                       f"{value}[{i}] {sign} 0")


def attacked(graph: Graph, domain: InputDomain, value: str, i: int, sign: str, starts: int,
             seed: int = 0) -> list[list[Fraction]]:
    """Candidate inputs of the domain where `value[i] sign 0` might hold: per box, one round of
    `nnsmt.attack.attack` on the cone of value[i] (a float steer: the caller replays them)."""
    q = _question(graph, domain, value, i, sign)
    out = []
    for lo, hi in domain.boxes if q is not None else ():
        for p in attack(*q, np.array([float(v) for v in lo]), np.array([float(v) for v in hi]),
                        starts=starts, seed=seed):
            x = as_fractions(p)
            if domain.contains(x):
                out.append(x)
    return out


def refuted_by_splitting(graph: Graph, domain: InputDomain, value: str, i: int, sign: str,
                         n: int) -> bool:
    """Whether sound bounds show `value[i] sign 0` false on every input of the domain, after
    bisecting it into at most `n` sub-boxes (best-first, `plan_split` on the cone of value[i])."""
    q = _question(graph, domain, value, i, sign)
    if q is None:
        return False
    return _all_refuted(plan_split(*q, n, samples=0, build=False, max_boxes=4 * n))


def refuted_by_bab(graph: Graph, domain: InputDomain, value: str, i: int, sign: str,
                   seconds: float, prior=None, found=None) -> bool:
    """Whether rigorous bounds refute `value[i] sign 0` on every sub-problem of a branch and
    bound on the ReLU phases of its cone (`plan_bab`, the root's bounds tightened per neuron)
    within `seconds`; False when the cone is not one bab handles or time runs out. `prior`:
    for a one-box domain, sound bounds of the ReLU inputs over it (`region_bounds(...,
    tighten=)`, which `classify` has), used instead of tightening the cone's root again.
    `found` (optional): input (exact Fractions) -> whether it shows `value[i] sign 0` (e.g.
    `_Harvest.record`, which replays it exactly): then bab's counterexample candidates (the
    relaxation's LP minimisers, and the exact LP of a sub-problem whose phases are all fixed)
    are offered to it, and a True ends the search (the question is answered: possible)."""
    q = _question(graph, domain, value, i, sign)
    if q is None:
        return False
    validate = None if found is None else _shows_on_cone(q[0], sign, domain, found)
    plan = plan_bab(*q, 1, time_budget=seconds, build=False, samples=0, alpha_steps=BAB_ALPHA_STEPS,
                    max_nodes=10**9,  # the time budget rules, not bab's node cap
                    validate=validate, attack_budget=0,  # the pre-pass attacked already
                    # no LP minimisers at the roots: with them digits_5x100_l1's 1 s bab phase took
                    # 7.0 s instead of 3.9 s and showed nothing; MNIST-FC 256x2 prop_0's three bab
                    # witnesses come from fully fixed leaves' LPs either way
                    root_lp=False,
                    prior=[prior] if prior is not None and len(domain.boxes) == 1 else None)
    return "fallback" not in plan.stats and _all_refuted(plan)


def _shows_on_cone(cone_graph: Graph, sign: str, domain: InputDomain, found):
    """bab's validator: a candidate is replayed exactly on the question's cone first (cheap),
    and handed to `found` (which may replay it on the whole network) only when it answers."""
    inp, out = cone_graph.inputs[0].name, cone_graph.outputs[0]

    def check(m) -> bool:
        x = [m[f"X_{j}"] for j in range(domain.dim)]
        if not domain.contains(x):
            return False
        v = evaluate_exact(cone_graph, {inp: x})[out][0]
        return (v > 0 if sign == ">" else v < 0) and found(x)
    return check


def _all_refuted(plan) -> bool:
    """A plan (`SplitPlan`) that refuted every sub-problem by bounds: nothing left, nothing found."""
    return not plan.subqueries and plan.candidate is None and not plan.exhausted


def _random_points(domain: InputDomain, n: int, seed: int) -> list[list[Fraction]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lo, hi = domain.boxes[int(rng.integers(len(domain.boxes)))]
        u = rng.random(len(lo))
        out.append([l + (h - l) * Fraction(float(t)) for l, h, t in zip(lo, hi, u)])
    return out


def classify(graph: Graph, domain: InputDomain, solve, options: StabilityOptions = StabilityOptions(),
             confirm=None, progress=lambda phase, text="": None) -> Stability:
    """Classify every ReLU of `graph` over `domain`.

    Args:
        graph: a checked graph with one input (ReLU networks; the queries need no sigmoid
            before the last ReLU).
        domain: the input region.
        solve: a `nnsmt.result.Solve` (`nnsmt.engine.driver.solver`); each `StabilityQuestion`
            is settled by the driver's policy (`nnsmt.query.decide`). With "harvest" in its
            `capabilities.options` the single method harvests (see the module docstring).
        options: `StabilityOptions`.
        confirm: an exact `Solve` (an SMT backend) for the claims of a floating-point
            `solve` (see the module docstring); None: claims are confirmed by splitting only,
            and those it does not confirm stay unknown.
        progress: called with (phase, text) as the classification goes (a status line).

    Returns:
        A Stability; every ACTIVE/INACTIVE is proved (bounds, splitting or an exact unsat),
        every UNSTABLE has two exactly replayed witnesses.

    Raises:
        ValidationError: a solver's model fails the exact replay (never counted).
    """
    opts = options
    method = opts.method
    if len(graph.inputs) != 1:
        raise UnsupportedError(f"{graph.source}: stability analysis needs a network with one input "
                               f"(has {len(graph.inputs)})")
    t0 = time.perf_counter()
    relus = [n for n in graph.nodes if isinstance(n, Relu)]
    harvest = method == "single" and "harvest" in getattr(getattr(solve, "capabilities", None), "options", ())
    if not relus:
        return Stability({}, method, time_s=time.perf_counter() - t0, harvest=harvest)
    g = graph.slice([r.name for r in relus])  # what the analysis needs: the ReLUs' cones
    bounds = region_bounds(g, domain, tighten=opts.tighten)
    by_b = relu_states(g, bounds)
    root = bounds if opts.tighten else None  # bab's root prior: tightened already, not again
    reuse = opts.reuse or method != "per-neuron"
    st = Stability({k: np.where(v == 1, ACTIVE, np.where(v == -1, INACTIVE, UNKNOWN)).astype(np.int8)
                    for k, v in by_b.items()}, method, reuse=reuse, harvest=harvest)
    tick = [t0]  # the "bounds" phase: slicing, bounds (tightened) and their states

    def phase(name):  # seconds since the previous phase ended
        progress(f"{name} done")
        now = time.perf_counter()
        st.phase_s[name] = st.phase_s.get(name, 0.0) + now - tick[0]
        tick[0] = now

    phase("bounds")
    st.by_bounds = int(sum((v != UNKNOWN).sum() for v in st.states.values()))
    pre = {r.name: r.x for r in relus}
    open_ = [(r.name, int(i)) for r in relus for i in np.flatnonzero(st.states[r.name] == UNKNOWN)]
    hv = _Harvest(g, relus)
    points = _random_points(domain, opts.samples, opts.seed) if opts.samples else []
    if opts.guided and open_:
        targets: dict[str, list[int]] = {}
        for r, i in open_:
            targets.setdefault(pre[r], []).append(i)
        points += guided_points(g, domain, targets)
    hv.record_many(points)
    st.points = len(points)
    impossible: set = set()  # (neuron, sign) refuted by bounds (sub-boxes or phase bab)

    def unsettled():
        """(neuron, sign) not yet seen nor refuted, each checked as the caller reaches it (a
        point recorded or a refutation meanwhile drops the ones after it)."""
        return ((key, sign) for key in open_ for sign in (">", "<")
                if not hv.seen(key, sign) and (key, sign) not in impossible)

    def bab(key, sign, seconds) -> bool:
        """`refuted_by_bab` on (neuron, sign) within `seconds`, a refutation recorded; its
        witnesses (inputs of the domain that answer on the cone, `_shows_on_cone`) are replayed
        on the whole network and recorded."""
        def found(x) -> bool:
            hv.record(x)
            st.bab_shown += hv.seen(key, sign)
            return hv.seen(key, sign)
        if refuted_by_bab(g, domain, pre[key[0]], key[1], sign, seconds, root, found):
            impossible.add((key, sign))
            st.by_bab += 1
            return True
        return False

    shown = sum(1 for k in open_ if k in hv.pos and k in hv.neg)
    progress("pre-pass", f"{len(open_)} neurons open after bounds")
    if opts.attack:
        for key, sign in unsettled():
            found = attacked(g, domain, pre[key[0]], key[1], sign, opts.attack, opts.seed)
            st.points += len(found)
            hv.record_many(found)
    st.by_samples = sum(1 for k in open_ if k in hv.pos and k in hv.neg)
    st.by_attack = st.by_samples - shown
    phase("prepass")
    if opts.split:
        for key, sign in unsettled():
            if refuted_by_splitting(g, domain, pre[key[0]], key[1], sign, opts.split):
                impossible.add((key, sign))
        st.by_split = len(impossible)
        phase("split")
    if opts.bab_first_s:  # before any query: a short bab refutes the easy stable states cheaply
        for key, sign in unsettled():
            progress("bab", f"can {pre[key[0]]}[{key[1]}] {sign} 0?")
            bab(key, sign, opts.bab_first_s)
        phase("bab")
    known = ({k for k in open_ if k in hv.pos}, {k for k in open_ if k in hv.neg})  # after the pre-pass
    undecided: set = set()  # (neuron, sign) whose query gave no answer
    claimed: list = []  # (neuron, sign) a floating-point solver called impossible, unproved
    qopts = SolveOptions(simplex=opts.simplex)

    def ask(asked, using=solve, harvesting=False):
        """One StabilityQuestion about (neuron, sign) pairs: True (a model, replayed and
        recorded, with every harvested solution that replays), False (unsat), "claim" (a
        floating-point solver's unconfirmed infeasibility) or None (no answer)."""
        progress("queries", f"query {st.queries + 1}: " + (f"can {pre[asked[0][0][0]]}[{asked[0][0][1]}] "
                                                            f"{asked[0][1]} 0?" if len(asked) == 1 else
                                                            f"{len(asked)} states at once"))
        q = StabilityQuestion(g, domain, bounds, tuple((pre[r], i, sign) for (r, i), sign in asked),
                              opts.lemmas, replace(qopts, harvest="ask") if harvesting else qopts)
        raw = []
        limit = opts.timeout if not harvesting or opts.harvest_s is None else \
            min(opts.harvest_s, opts.timeout or opts.harvest_s)
        o = decide(q, using, limit, observe=lambda _, res: raw.append(res))
        st.solve_s += o.stats.get("solve_s", 0.0)
        st.queries += 1
        found = [hv.input_of(m, domain) for res in raw for m in res.models]
        st.harvest_skipped += sum(x is None for x in found)
        st.harvested += sum(x is not None for x in found)
        hv.record_many([x for x in found if x is not None])  # the exact replay decides what they show
        if o.status == "unsat":
            st.unsat += 1
            return False
        if o.status == "sat":
            st.sat += 1
            hv.record(o.witness)
            return True
        if o.status == "error" and any(r.model for r in raw):  # a model that fails the replay
            raise ValidationError(o.reason)
        st.unknown += 1
        return "claim" if o.status == "unknown" and o.reason.startswith(UNCONFIRMED_INFEASIBLE) else None

    babbed: set = set()  # (neuron, sign) that had a query's time of bab instead of the query

    def queries_futile() -> bool:
        """The first `bab_after` queries all ran out of time (none answered or claimed):
        on this network the solver does not pay, bab gets each query's time instead."""
        return bool(opts.bab_after) and opts.timeout is not None and confirm is None and \
            st.queries >= opts.bab_after and st.sat + st.unsat + st.claims == 0

    def ask_one(key, sign):
        """One state's own question; what it leaves open is a claim to confirm (with a
        `confirm` solver, or when a floating-point solver claimed it), else undecided."""
        if queries_futile():
            progress("bab", f"can {pre[key[0]]}[{key[1]}] {sign} 0? (bab instead of a query)")
            st.bab_instead += 1
            babbed.add((key, sign))
            if not bab(key, sign, opts.timeout) and not hv.seen(key, sign):
                undecided.add((key, sign))
            return
        got = ask([(key, sign)])
        if got == "claim" or (got is None and confirm is not None):
            claimed.append((key, sign))
            st.claims += got == "claim"
        elif got is None:
            undecided.add((key, sign))

    if method == "per-neuron":
        for key in open_:
            for sign in (">", "<"):
                if (key, sign) not in impossible and \
                        not (hv.seen(key, sign) if reuse else key in known[sign == "<"]):
                    ask_one(key, sign)
    else:
        while True:
            asked = [ks for ks in unsettled() if ks not in undecided]
            if not asked:
                break
            seen = len(hv.pos) + len(hv.neg)
            res = ask(asked, harvesting=harvest)
            if res is False:
                break
            if res == "claim":  # every asked state is claimed impossible: to confirm
                claimed.extend(asked)
                st.claims += len(asked)
                break
            if res is None and len(hv.pos) + len(hv.neg) > seen:
                continue  # no answer, but its harvested solutions showed something: ask again
            if res is None:  # left open by the harvesting question: one question a state
                for key, sign in asked:
                    if not hv.seen(key, sign):
                        ask_one(key, sign)
                break
    phase("queries")
    st.unanswered = len(claimed) - st.claims
    st.confirmed = {"split": 0, "exact": 0}
    for key, sign in claimed:  # a floating-point "impossible" counts once it is exact
        if hv.seen(key, sign):
            st.refuted_claims += 1  # shown possible by a model an exact query found meanwhile
        elif opts.confirm_split and refuted_by_splitting(g, domain, pre[key[0]], key[1], sign, opts.confirm_split):
            st.confirmed["split"] += 1
        elif confirm is None:
            undecided.add((key, sign))
        else:
            got = ask([(key, sign)], using=confirm)
            if got is False:
                st.confirmed["exact"] += 1
            elif got is True:
                st.refuted_claims += 1
            else:
                undecided.add((key, sign))
    if claimed:
        phase("confirm")
    # the queries that made them futile get what the others got: a query's time of bab
    last = opts.timeout if st.bab_instead and queries_futile() else opts.bab_s
    if last:  # what no query settled: a last try at a proof by phase branch and bound
        for key, sign in sorted(undecided - babbed):
            progress("bab", f"can {pre[key[0]]}[{key[1]}] {sign} 0? (after the queries)")
            if not hv.seen(key, sign) and bab(key, sign, last):
                undecided.discard((key, sign))
        phase("bab")
    for key in open_:
        r, i = key
        p, n = key in hv.pos, key in hv.neg
        if p and n:
            state = UNSTABLE
            st.witnesses[key] = (hv.pos[key], hv.neg[key])
        elif not p and (key, ">") not in undecided:
            state = INACTIVE  # proved: no input gives a > 0
        elif not n and (key, "<") not in undecided:
            state = ACTIVE  # proved: no input gives a < 0
        else:
            state = UNKNOWN
            iv = bounds[pre[r]]
            st.gaps[key] = ("".join(s for s in "><" if (key, s) in undecided),
                            (float(np.min(iv.lo[..., i])), float(np.max(iv.hi[..., i]))),
                            (float(hv.least[r][i]) if r in hv.least else None,
                             float(hv.most[r][i]) if r in hv.most else None))
        st.states[r][i] = state
    st.time_s = time.perf_counter() - t0
    return st


def check_witnesses(graph: Graph, st: Stability) -> None:
    """Replay every unstable neuron's two witnesses exactly; raise NnsmtError on a failure."""
    relus = {n.name: n for n in graph.nodes if isinstance(n, Relu)}
    inp = graph.inputs[0].name
    envs: dict = {}  # one replay per distinct point: a point is usually the witness of many neurons

    def env(x):
        if x not in envs:
            envs[x] = evaluate_exact(graph, {inp: list(x)})
        return envs[x]

    for (r, i), (xp, xn) in st.witnesses.items():
        a = relus[r].x
        if not env(tuple(xp))[a][i] > 0 or not env(tuple(xn))[a][i] < 0:
            raise NnsmtError(f"witness replay failed for {a}[{i}]")


def layer_counts(st: Stability) -> list[tuple[str, dict[str, int]]]:
    return [(k, {name: int((v == code).sum()) for code, name in STATE_NAMES.items()})
            for k, v in st.states.items()]


__all__ = ["attacked", "classify", "check_witnesses", "cone", "guided_points", "layer_counts", "Stability",
           "StabilityOptions", "StabilityQuestion", "ACTIVE", "INACTIVE", "UNSTABLE", "UNKNOWN",
           "STATE_NAMES", "METHODS", "SIMPLEX"]
