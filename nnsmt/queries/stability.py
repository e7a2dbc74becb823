"""Which ReLUs are stable over an input domain: by bounds first, then by exact queries.

Definitions (pre-activation a of a ReLU, over every input of the domain):
- stably inactive: a <= 0 everywhere (the ReLU is the constant 0; a neuron with a = 0
  everywhere counts as inactive);
- stably active: a >= 0 everywhere (the ReLU is the identity);
- unstable: a > 0 at some input and a < 0 at another; both inputs are kept as witnesses and
  were replayed exactly through the network.

Each "stable" verdict is proved: either by sound bounds (`nnsmt.bounds`) or by an unsat answer.
Two exact methods decide the neurons the bounds leave open:
- `per-neuron`: two queries per open neuron ("can a > 0?", "can a < 0?");
- `single`: the harvesting query of the seed paper: one query asks for an input where some
  open neuron not yet seen active is active, or some not yet seen inactive is inactive; each
  model is replayed exactly and every neuron's state in it is recorded, then the query is asked
  again without what is known, until unsat: never seen active = stably inactive, never seen
  inactive = stably active.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..bounds import relu_states
from ..domain import InputDomain, region_bounds
from ..encode import encode_graph
from ..errors import NnsmtError, UnsupportedError
from ..interpret import evaluate_exact
from ..ir import Affine, Graph, Relu
from ..terms import Cmp, Num, Or, Script, ScriptBuilder, Var

ACTIVE, INACTIVE, UNSTABLE, UNKNOWN = 1, -1, 0, 2
STATE_NAMES = {ACTIVE: "active", INACTIVE: "inactive", UNSTABLE: "unstable", UNKNOWN: "unknown"}
ZERO = Num(Fraction(0))


@dataclass
class Stability:
    """Per ReLU node, each neuron's state (ACTIVE / INACTIVE / UNSTABLE / UNKNOWN on a timeout),
    how each was decided, and the cost."""

    states: dict[str, np.ndarray]
    method: str
    by_bounds: int = 0
    by_samples: int = 0  # neurons shown unstable by random samples before any query
    queries: int = 0
    sat: int = 0
    unsat: int = 0
    unknown: int = 0
    time_s: float = 0.0
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
        """Replay x exactly; returns how many new observations it gave."""
        env = evaluate_exact(self.g, {self.g.inputs[0].name: x})
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


def _prefix(graph: Graph, relus: list[Relu]) -> Graph:
    """The graph up to the last ReLU (what the queries need)."""
    last = max(i for i, n in enumerate(graph.nodes) if n.name in {r.name for r in relus})
    return graph.replace(nodes=graph.nodes[: last + 1], outputs=(graph.nodes[last].name,))


def _base_script(graph: Graph, domain: InputDomain, bounds) -> Script:
    """Inputs X_i in the domain, the network with the bounded encoding; no question yet."""
    b = ScriptBuilder()
    inp = graph.inputs[0]
    names = [f"X_{i}" for i in range(inp.dim)]
    encode_graph(graph, b, names=lambda n, d: names if n == inp.name else None,
                 encoding="bounded", bounds=bounds, lemmas="none")  # lemmas stall model finding here
    b.assert_("domain", domain.constraint(names))
    b.meta.update({"query": "stability", "inputs": names})
    return b.build()


def _ask(base: Script, name: str, atom) -> Script:
    return replace(base, asserts=base.asserts + ((name, atom),))


def _model_x(res, dim) -> list[Fraction]:
    return [res.model[f"X_{i}"] for i in range(dim)]


def classify(graph: Graph, domain: InputDomain, solve, method: str = "single",
             timeout: float | None = None, samples: int = 0, seed: int = 0) -> Stability:
    """Classify every ReLU of `graph` over `domain`.

    Args:
        graph: a checked graph with one input (ReLU networks; the queries need no sigmoid
            before the last ReLU).
        domain: the input region.
        solve: `solve(script, timeout) -> nnsmt.result.Result`.
        method: "single" (harvesting) or "per-neuron".
        timeout: seconds per query; a query that times out leaves its neurons UNKNOWN.
        samples: random inputs replayed exactly before any query (cheap witnesses).

    Returns:
        A Stability; every ACTIVE/INACTIVE is proved (bounds or unsat), every UNSTABLE has two
        exactly replayed witnesses.
    """
    if method not in ("single", "per-neuron"):
        raise UnsupportedError(f"unknown stability method {method!r} (single, per-neuron)")
    if len(graph.inputs) != 1:
        raise UnsupportedError("stability analysis needs a network with one input")
    t0 = time.perf_counter()
    relus = [n for n in graph.nodes if isinstance(n, Relu)]
    if not relus:
        return Stability({}, method, time_s=time.perf_counter() - t0)
    g = _prefix(graph, relus)
    bounds = region_bounds(g, domain)
    by_b = relu_states(g, bounds)
    st = Stability({k: np.where(v == 1, ACTIVE, np.where(v == -1, INACTIVE, UNKNOWN)).astype(np.int8)
                    for k, v in by_b.items()}, method)
    st.by_bounds = int(sum((v != UNKNOWN).sum() for v in st.states.values()))
    hv = _Harvest(g, relus)
    dim = g.inputs[0].dim
    if samples:
        rng = np.random.default_rng(seed)
        for _ in range(samples):
            lo, hi = domain.boxes[int(rng.integers(len(domain.boxes)))]
            u = rng.random(dim)
            hv.record([l + (h - l) * Fraction(float(t)) for l, h, t in zip(lo, hi, u)])
    open_ = [(r.name, i) for r in relus for i in np.flatnonzero(st.states[r.name] == UNKNOWN)]
    if samples:
        st.by_samples = sum(1 for k in open_ if k in hv.pos and k in hv.neg)
    pre = {r.name: r.x for r in relus}
    base = _base_script(g, domain, bounds)

    def run(script):
        res = solve(script, timeout)
        st.queries += 1
        if res.status == "sat":
            st.sat += 1
        elif res.status == "unsat":
            st.unsat += 1
        else:
            st.unknown += 1
        return res

    undecided_pos: set = set()  # neurons whose "can a > 0?" query gave no answer
    undecided_neg: set = set()
    if method == "per-neuron":
        for key in open_:
            r, i = key
            a = Var(f"{pre[r]}_{i}")
            for sign, seen, undecided in ((">", hv.pos, undecided_pos), ("<", hv.neg, undecided_neg)):
                if key in seen:
                    continue
                res = run(_ask(base, f"ask_{pre[r]}_{i}", Cmp(sign, a, ZERO)))
                if res.status == "sat":
                    x = _model_x(res, dim)
                    env = evaluate_exact(g, {g.inputs[0].name: x})
                    v = env[pre[r]][i]
                    if not (v > 0 if sign == ">" else v < 0):
                        raise NnsmtError(f"solver model fails the exact replay for {pre[r]}[{i}] {sign} 0")
                    seen[key] = tuple(x)
                elif res.status != "unsat":
                    undecided.add(key)
    else:
        while True:
            atoms, keys = [], []
            for key in open_:
                a = Var(f"{pre[key[0]]}_{key[1]}")
                if key not in hv.pos and key not in undecided_pos:
                    atoms.append(Cmp(">", a, ZERO))
                    keys.append(key)
                if key not in hv.neg and key not in undecided_neg:
                    atoms.append(Cmp("<", a, ZERO))
                    keys.append(key)
            if not atoms:
                break
            res = run(_ask(base, "harvest", atoms[0] if len(atoms) == 1 else Or(tuple(atoms))))
            if res.status == "unsat":
                break
            if res.status != "sat":  # timeout: what is left stays unknown
                for key, atom in zip(keys, atoms):
                    (undecided_pos if atom.op == ">" else undecided_neg).add(key)
                break
            if hv.record(_model_x(res, dim)) == 0:
                raise NnsmtError("solver model fails the exact replay: it shows no new neuron state")
    for key in open_:
        r, i = key
        p, n = key in hv.pos, key in hv.neg
        if p and n:
            state = UNSTABLE
            st.witnesses[key] = (hv.pos[key], hv.neg[key])
        elif not p and key not in undecided_pos:
            state = INACTIVE  # proved: no input gives a > 0
        elif not n and key not in undecided_neg:
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


__all__ = ["classify", "check_witnesses", "layer_counts", "Stability", "ACTIVE", "INACTIVE",
           "UNSTABLE", "UNKNOWN", "STATE_NAMES"]
