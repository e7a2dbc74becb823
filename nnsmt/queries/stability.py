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
1. bounds: linear (DeepPoly/CROWN-style) bounds decide what they can;
2. pre-pass (the same for both methods): `samples` random inputs, and with `guided` the box
   corner that maximises each open neuron's linear upper bound and the one that minimises its
   lower bound (where the relaxation says a witness is most likely); then, with `split` N,
   each question still open ("can a > 0?") is refuted by bounds on up to N sub-boxes of the
   domain if it can be (input splitting, `nnsmt.queries.split.plan_split`, on the neuron's
   cone): a sound proof that the answer is no;
3. exact queries on what is left, by one of two methods:
   - `per-neuron`: for each open neuron in layer order, "can a > 0?" and "can a < 0?" unless a
     model already showed it (at most two queries a neuron). Each query encodes only the
     neuron's cone of influence: the layers before it and its own row;
   - `single`: the harvesting query of the seed paper: one query asks for an input where some
     open neuron not yet seen active is active, or some not yet seen inactive is inactive; the
     model is recorded and the query asked again without what is known, until unsat: never
     seen active = stably inactive, never seen inactive = stably active.
Queries use the bounded encoding over the domain's bounds (stable ReLUs are constants or the
identity, only unstable ones are `ite`s; `lemmas` adds their bounds or triangle relaxation).
A query that times out leaves its neurons unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..bounds import LinearDomain, relu_states
from ..domain import InputDomain, region_bounds
from ..encode import LEMMAS, encode_graph
from ..errors import NnsmtError, UnsupportedError
from ..interpret import evaluate_exact, interpret
from ..ir import Affine, Const, Graph, Relu, operands
from ..terms import Cmp, Num, Or, ScriptBuilder, Var
from ..vnnlib import Property
from .split import plan_split

ACTIVE, INACTIVE, UNSTABLE, UNKNOWN = 1, -1, 0, 2
STATE_NAMES = {ACTIVE: "active", INACTIVE: "inactive", UNSTABLE: "unstable", UNKNOWN: "unknown"}
METHODS = ("single", "per-neuron")
ZERO = Num(Fraction(0))
# cvc5's sum-of-infeasibilities simplex: on the 64-input digits MLPs its default simplex spends
# tens of seconds in pivots on large exact rationals (0 conflicts); with use-soi every query
# there took under 5 s (bench/stability.py, README). Z3 has no such switch and stalls there.
SOLVER_OPTIONS = {"cvc5": {"use-soi": "true"}}


@dataclass
class Stability:
    """Per ReLU node, each neuron's state (ACTIVE / INACTIVE / UNSTABLE / UNKNOWN on a timeout),
    how each was decided, and the cost."""

    states: dict[str, np.ndarray]
    method: str
    reuse: bool = True  # per-neuron: a question an earlier model answered is not asked
    by_bounds: int = 0
    by_samples: int = 0  # neurons shown unstable by the pre-pass (samples, guided points)
    by_split: int = 0  # questions ("can a > 0?") refuted by bounds on sub-boxes
    points: int = 0  # inputs replayed in the pre-pass
    queries: int = 0
    sat: int = 0
    unsat: int = 0
    unknown: int = 0
    time_s: float = 0.0
    solve_s: float = 0.0  # of which in the solver
    witnesses: dict = field(default_factory=dict)  # (relu, i) -> (x with a > 0, x with a < 0)

    def counts(self) -> dict[str, int]:
        allv = np.concatenate(list(self.states.values())) if self.states else np.zeros(0)
        return {name: int((allv == code).sum()) for code, name in STATE_NAMES.items()} | \
            {"total": int(allv.size)}

    def same_as(self, other: "Stability") -> bool:
        return self.states.keys() == other.states.keys() and all(
            np.array_equal(self.states[k], other.states[k]) for k in self.states)


class _Harvest:
    """What replayed inputs have shown: per neuron, an input with a > 0 and one with a < 0."""

    def __init__(self, graph: Graph, relus: list[Relu]):
        self.g, self.relus = graph, relus
        self.pos: dict = {}
        self.neg: dict = {}

    def record(self, x: list[Fraction]) -> int:
        """Replay x exactly; returns how many new observations it gave (`self.env`: the values)."""
        env = self.env = evaluate_exact(self.g, {self.g.inputs[0].name: x})
        new = 0
        for r in self.relus:
            for i, a in enumerate(env[r.x]):
                if a > 0 and (r.name, i) not in self.pos:
                    self.pos[(r.name, i)] = tuple(x)
                    new += 1
                elif a < 0 and (r.name, i) not in self.neg:
                    self.neg[(r.name, i)] = tuple(x)
                    new += 1
        return new

    def seen(self, key, sign: str) -> bool:
        return key in (self.pos if sign == ">" else self.neg)


def cone(graph: Graph, targets: dict[str, list[int]]) -> tuple[Graph, dict[str, list[str]]]:
    """The cone of influence of some elements of some values: `targets` maps a value to the
    element indices asked about. Returns the subgraph of their ancestors, in which a target
    that nothing else in the cone consumes keeps only the asked rows (when it is an affine map
    with constant parameters), and the SMT names of those rows (`{value}_{i}`, as in the full
    encoding)."""
    sub = graph.slice(tuple(targets))
    consumed = {x for n in sub.nodes for x in operands(n)}
    nodes, names = [], {}
    for n in sub.nodes:
        if n.name in targets and n.name not in consumed and isinstance(n, Affine) \
                and isinstance(n.weight, Const) and isinstance(n.bias, Const):
            rows = sorted(set(targets[n.name]))
            n = Affine(n.name, n.x, Const(n.weight.value[rows]), Const(n.bias.value[rows]))
            names[n.name] = [f"{n.name}_{i}" for i in rows]
        nodes.append(n)
    return sub.replace(nodes=tuple(nodes)), names


def _query(graph: Graph, domain: InputDomain, bounds, targets: dict[str, list[int]], question,
           lemmas: str, options: dict):
    """Script: inputs X_i in the domain, the cone of `targets` with the bounded encoding, and
    the boolean term `question` over the targets' SMT names `{value}_{i}`."""
    g, rows = cone(graph, targets)
    inp = g.inputs[0]
    xs = [f"X_{i}" for i in range(inp.dim)]
    b = ScriptBuilder()
    encode_graph(g, b, names=lambda n, d: xs if n == inp.name else rows.get(n),
                 encoding="bounded", bounds=bounds, lemmas=lemmas)
    b.assert_("domain", domain.constraint(xs))
    b.assert_("ask", question)
    b.meta.update({"query": "stability", "inputs": xs, "solver_options": options})
    return b.build()


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


def refuted_by_splitting(graph: Graph, domain: InputDomain, value: str, i: int, sign: str,
                         n: int) -> bool:
    """Whether sound bounds show `value[i] sign 0` false on every input of the domain, after
    bisecting it into at most `n` sub-boxes (best-first, `plan_split` on the cone of value[i])."""
    g, _ = cone(graph, {value: [i]})
    if value == g.inputs[0].name:
        return False  # an input's bounds are exact already
    xs = [f"X_{j}" for j in range(domain.dim)]
    prop = Property(domain.dim, 1, ((1, domain.constraint(xs)), (2, Cmp(sign, Var("Y_0"), ZERO))),
                    f"{value}[{i}] {sign} 0")
    plan = plan_split(g, prop, n, samples=0, build=False, max_boxes=4 * n)
    return not plan.subqueries and plan.candidate is None and not plan.exhausted


def _random_points(domain: InputDomain, n: int, seed: int) -> list[list[Fraction]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lo, hi = domain.boxes[int(rng.integers(len(domain.boxes)))]
        u = rng.random(len(lo))
        out.append([l + (h - l) * Fraction(float(t)) for l, h, t in zip(lo, hi, u)])
    return out


def classify(graph: Graph, domain: InputDomain, solve, method: str = "single",
             timeout: float | None = None, samples: int = 0, seed: int = 0,
             guided: bool = True, lemmas: str = "none", reuse: bool = True,
             split: int = 0, solver_options: dict | None = None) -> Stability:
    """Classify every ReLU of `graph` over `domain`.

    Args:
        graph: a checked graph with one input (ReLU networks; the queries need no sigmoid
            before the last ReLU).
        domain: the input region.
        solve: `solve(script, timeout) -> nnsmt.result.Result`.
        method: "single" (harvesting) or "per-neuron".
        timeout: seconds per query; a query that times out leaves its neurons UNKNOWN.
        samples: random inputs replayed exactly before any query (cheap witnesses).
        guided: also replay, before any query, the box corners the linear bounds point to.
        lemmas: what the bounded encoding asserts about unstable ReLUs ("none", "bounds",
            "triangle"; see `nnsmt.encode`).
        split: before any query, try to refute each open question by bounds on at most this
            many sub-boxes (0: no splitting).
        reuse: per-neuron only: skip a question that a model of an earlier query already
            answered (False: both questions for every neuron the pre-pass left open).
        solver_options: backend name -> {option: value}, put in each script's
            meta["solver_options"] (default `SOLVER_OPTIONS`; {} for the solvers' defaults).

    Returns:
        A Stability; every ACTIVE/INACTIVE is proved (bounds or unsat), every UNSTABLE has two
        exactly replayed witnesses.
    """
    if method not in METHODS:
        raise UnsupportedError(f"unknown stability method {method!r} ({', '.join(METHODS)})")
    if lemmas not in LEMMAS:
        raise UnsupportedError(f"unknown lemmas {lemmas!r}; choose from {', '.join(LEMMAS)}")
    if len(graph.inputs) != 1:
        raise UnsupportedError(f"{graph.source}: stability analysis needs a network with one input "
                               f"(has {len(graph.inputs)})")
    if split < 0:
        raise UnsupportedError(f"split needs a number of sub-boxes >= 0, got {split}")
    t0 = time.perf_counter()
    relus = [n for n in graph.nodes if isinstance(n, Relu)]
    if not relus:
        return Stability({}, method, time_s=time.perf_counter() - t0)
    g = graph.slice([r.name for r in relus])  # what the analysis needs: the ReLUs' cones
    bounds = region_bounds(g, domain)
    by_b = relu_states(g, bounds)
    st = Stability({k: np.where(v == 1, ACTIVE, np.where(v == -1, INACTIVE, UNKNOWN)).astype(np.int8)
                    for k, v in by_b.items()}, method, reuse=reuse or method != "per-neuron")
    st.by_bounds = int(sum((v != UNKNOWN).sum() for v in st.states.values()))
    pre = {r.name: r.x for r in relus}
    inp_name = g.inputs[0].name

    def atom(key, sign):  # "a > 0" / "a < 0" for neuron key, in the query's SMT names
        v, i = pre[key[0]], key[1]
        return Cmp(sign, Var(f"X_{i}" if v == inp_name else f"{v}_{i}"), ZERO)

    open_ = [(r.name, int(i)) for r in relus for i in np.flatnonzero(st.states[r.name] == UNKNOWN)]
    hv = _Harvest(g, relus)
    points = _random_points(domain, samples, seed) if samples else []
    if guided and open_:
        targets: dict[str, list[int]] = {}
        for r, i in open_:
            targets.setdefault(pre[r], []).append(i)
        points += guided_points(g, domain, targets)
    for x in points:
        hv.record(x)
    st.points = len(points)
    st.by_samples = sum(1 for k in open_ if k in hv.pos and k in hv.neg)
    impossible: set = set()  # (neuron, sign) refuted by bounds on sub-boxes
    if split:
        for key in open_:
            for sign in (">", "<"):
                if not hv.seen(key, sign) and refuted_by_splitting(g, domain, pre[key[0]], key[1], sign, split):
                    impossible.add((key, sign))
        st.by_split = len(impossible)
    known = ({k for k in open_ if k in hv.pos}, {k for k in open_ if k in hv.neg})  # after the pre-pass
    dim = g.inputs[0].dim
    undecided: set = set()  # (neuron, sign) whose query gave no answer

    def ask(targets, question, strict=True):
        """One query; a model is replayed and recorded (returns whether it was sat; with
        `strict`, a model that shows nothing new fails the replay)."""
        s = _query(g, domain, bounds, targets, question, lemmas,
                   SOLVER_OPTIONS if solver_options is None else solver_options)
        t = time.perf_counter()
        res = solve(s, timeout)
        st.solve_s += time.perf_counter() - t
        st.queries += 1
        if res.status == "unsat":
            st.unsat += 1
            return False
        if res.status != "sat":
            st.unknown += 1
            return None
        st.sat += 1
        x = [res.model[f"X_{i}"] for i in range(dim)]
        if not domain.contains(x):
            raise NnsmtError("solver model lies outside the domain")
        if hv.record(x) == 0 and strict:
            raise NnsmtError("solver model fails the exact replay: it shows no new neuron state")
        return True

    if method == "per-neuron":
        for key in open_:
            r, i = key
            for sign in (">", "<"):
                if (key, sign) in impossible or \
                        (hv.seen(key, sign) if reuse else key in known[sign == "<"]):
                    continue
                res = ask({pre[r]: [i]}, atom(key, sign), strict=reuse)
                v = hv.env[pre[r]][i] if res else 0
                if res and not (v > 0 if sign == ">" else v < 0):
                    raise NnsmtError(f"solver model fails the exact replay for {pre[r]}[{i}] {sign} 0")
                if res is None:
                    undecided.add((key, sign))
    else:
        while True:
            asked = [(key, sign) for key in open_ for sign in (">", "<")
                     if not hv.seen(key, sign) and (key, sign) not in undecided | impossible]
            if not asked:
                break
            targets = {}
            for (r, i), _ in asked:
                targets.setdefault(pre[r], []).append(i)
            atoms = [atom(key, sign) for key, sign in asked]
            res = ask(targets, atoms[0] if len(atoms) == 1 else Or(tuple(atoms)))
            if res is False:
                break
            if res is None:  # timeout: what is left stays unknown
                undecided.update(asked)
                break
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
        st.states[r][i] = state
    st.time_s = time.perf_counter() - t0
    return st


def check_witnesses(graph: Graph, st: Stability) -> None:
    """Replay every unstable neuron's two witnesses exactly; raise NnsmtError on a failure."""
    relus = {n.name: n for n in graph.nodes if isinstance(n, Relu)}
    inp = graph.inputs[0].name
    for (r, i), (xp, xn) in st.witnesses.items():
        a = relus[r].x
        if not evaluate_exact(graph, {inp: list(xp)})[a][i] > 0 or \
                not evaluate_exact(graph, {inp: list(xn)})[a][i] < 0:
            raise NnsmtError(f"witness replay failed for {a}[{i}]")


def layer_counts(st: Stability) -> list[tuple[str, dict[str, int]]]:
    return [(k, {name: int((v == code).sum()) for code, name in STATE_NAMES.items()})
            for k, v in st.states.items()]


__all__ = ["classify", "check_witnesses", "cone", "guided_points", "layer_counts", "Stability",
           "ACTIVE", "INACTIVE", "UNSTABLE", "UNKNOWN", "STATE_NAMES", "METHODS", "SOLVER_OPTIONS"]
