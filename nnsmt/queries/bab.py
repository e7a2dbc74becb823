"""Branch and bound on ReLU phases: a verification query becomes sub-problems that fix phases.

First, at each root box, every ReLU input's bounds are optimised per neuron (α-CROWN on the
intermediate layers, `nnsmt.bounds.tightened_bounds`); each sub-problem (and leaf script) of
that root meets its own bounds with them (`prior`).

Input splitting (`nnsmt.queries.split`) bisects the input box; with hundreds of inputs
(MNIST-FC) it cannot refine anything. Here the input box stays whole and the sub-problems fix
the phases of unstable ReLUs instead: a sub-problem is the property's box plus a phase
assignment (+1: the neuron's pre-activation >= 0, -1: <= 0), and its bounds come from
`nnsmt.bounds.output_spec_bounds(..., phases=..., alpha_steps=..., beta_lr=...)`, where a fixed
neuron is an exact line (its input interval clamped by the phase), the intermediate bounds
below it tighten accordingly, and its phase constraint enters the spec's bound with an optimised
multiplier (β-CROWN), which carries the split back to the layers before it. A sub-problem is
*refuted* when those rigorous bounds decide one of the property's output assertions False
(three-valued, as the split planner does), or when the phases are infeasible on the box (some
value's bounds become empty). Otherwise the points the bounds suggest are tried as
counterexamples (exact replay via `validate`) and the sub-problem branches on one unstable free
ReLU, chosen by a BaBSR-like score (below), into +1 / -1.

Branching stops when every sub-problem is refuted (unsat), a candidate replays (sat), or the
time budget / node budget is spent. The open sub-problems (coarsened to their ancestors until
at most `n` remain) become `SubQuery`s solved exactly: the bounded verification script over the
box, with bounds computed under the leaf's phases (so the bounded encoding fixes those ReLUs),
plus an assertion `bab_phases` fixing each decided phase on its pre-activation (`v_i >= 0` or
`v_i <= 0`, the names the encoder gives values). Each leaf query is exact on its region and
the regions cover the box, so: all refuted or unsat -> unsat; a validated sat -> sat.

Branching score (per unstable free neuron j of a sub-problem): with `A_j` the coefficient the
back-substitution of a spec row gives ReLU j's output (plain relaxation slopes), the loss that
row's bound takes from j's upper line is `max(-A_j, 0) * t_j`, t_j = -l_j u_j / (u_j - l_j) the
triangle's intercept. The score sums it over the spec rows that can refute a still undecided
atom (BaBSR, Bunel et al. 2020, without its lower-line term), plus 1e-3 * |A_j| * t_j to break
ties; when every score is 0 the largest intercept in the earliest layer wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from ..attack import refine
from ..bounds import (Interval, _mm_param, box_interval, infeasible, output_spec_bounds,
                      propagate_bounds, relu_relaxation, tightened_bounds)
from ..certificate import Leaf as Proof
from ..errors import InputError
from ..interpret import evaluate
from ..ir import Affine, Const, Graph, Input, Relu, Sparse
from ..lp import relaxed_minimiser
from ..terms import And, Cmp, Num, Var
from .split import (SplitPlan, SplitRun, SubQuery, _float_or_none, _Planner, _three_cmp, certifies, in_box,
                    plan_split)
from .verify import VerifyQuery, restrict, verify_script

# α-CROWN steps on each sub-problem's spec bound (with β below). Measured on MNIST-FC 256x2
# prop_5 eps 0.03 (unsat, 80 s): with 5 steps all refuted after 274 sub-problems (44 s); with 3,
# 10 and 20 steps 89, 264 and 24 still open (cheaper bounds branch more, dearer ones explore less)
ALPHA_STEPS = 5
# β-CROWN: the same steps optimise the multipliers of the phase constraints, at this step size.
# Measured on MNIST-FC 256x2 prop_6 eps 0.05 (40 s): without β 1,354 sub-problems and 38 left
# to SMT; with β at 0.01 / 0.2 / 1.0: refuted after 32 / 24 / (544, not done) sub-problems.
BETA_LR = 0.2
# Falsification from the relaxation: once branching has run this long (or this share of its
# budget) without an answer, the triangle LP's minimiser of each spec row that can make an
# atom true (`nnsmt.lp`), refined by the attack's descent with the exact gradient, is tried.
# Measured on MNIST-FC 256x2 prop_0 eps 0.05 (sat; nnenum finds it in 17 s): the plain attack's
# best margin stays at 0.97 in 10 s; from the LP minimisers (margins 0.18 to 0.97) the descent
# reaches -0.009, a counterexample. Easy instances end before it and pay nothing.
# α-CROWN steps on the bounds of the ReLU inputs, once per root box (`tightened_bounds`); every
# sub-problem of that root meets its own bounds with these. Measured on MNIST-FC 256x2 prop_3
# eps 0.03: unstable ReLUs at the root 18 + 81 -> 18 + 66 (the first layer's are exact), and
# the instance went from unknown at 120 s to unsat in 42 s (1,095 sub-problems, no SMT leaf).
# The root's slopes are a certificate's Tighten node; sub-problems inherit only the root's
# bounds (not their parents'), so a checker needs nothing but that node to repeat them.
ROOT_TIGHTEN = 60
LP_AFTER_S, LP_AFTER_SHARE = 8.0, 0.15
LP_ROWS = 16  # LPs at most (the rows with the lowest bounds first)
# A sub-problem whose phases are all fixed is an LP (`_BabPlanner.settle`): this many more α,β
# steps at this β step size. Measured on MNIST-FC 256x2 prop_0 eps 0.03, "can a2[220] < 0?"
# (6 unstable ReLUs below it): 5 steps left all four fully fixed leaves open (bounds -0.0195 to
# -0.0156); 50 steps at 0.2 reach each leaf's LP optimum within 2e-6, 200 at 0.1 within 1e-8
# (0.07 s a leaf). There the LPs' minimisers replay as witnesses (a2[220] = -0.0186 < 0), which
# an exact solver had not found in 60 s.
LEAF_STEPS, LEAF_BETA_LR = 100, 0.1
# Relative margin an LP optimum must clear before the steps are spent on it (an optimum on the
# boundary, e.g. a property at a point's exact output, would only meet rounding). Without this
# gate a convolutional net's point-box query spent 45 s on steps that refuted nothing.
LEAF_MARGIN = 1e-7
# Fully fixed sub-problems settle takes per plan (the rest go to the exact solver as before): on
# a small convolutional net (252 ReLUs over a small box) nearly every stability question ends
# in dozens of them, each costing bounds, LPs and an exact replay (the test suite's stable run
# on it: 226 s with no cap); the MNIST-FC 256x2 witness above came from the first four.
LEAF_SETTLE_MAX = 8
BATCH = 32  # sub-problems bounded together
MAX_NODES = 20000  # sub-problems evaluated at most (without a time budget)


@dataclass(frozen=True)
class _Node:
    root: int  # which box of the property's region
    path: tuple  # ((flat neuron index, +1 | -1), ...): the phase decisions, in order

    @property
    def depth(self) -> int:
        return len(self.path)


@dataclass(frozen=True)
class _Open:
    """A sub-problem bounds did not refute."""
    branch: int | None  # the flat neuron to split next; None: every phase is fixed
    unstable: int  # free neurons still unstable
    warm: dict | None  # its optimised slopes and multipliers: its children's warm start
    lower: np.ndarray  # the spec rows' lower bounds


class _Relus:
    """The graph's ReLU nodes laid out on one flat neuron index."""

    def __init__(self, graph: Graph):
        dims = graph.dims()
        self.nodes = [n for n in graph.nodes if isinstance(n, Relu)]
        self.sizes = [dims[n.x] for n in self.nodes]
        self.offsets = np.cumsum([0] + self.sizes)
        self.total = int(self.offsets[-1])

    def phases(self, paths) -> dict[str, np.ndarray]:
        """ReLU name -> int8 phases, batch (len(paths), m)."""
        flat = np.zeros((len(paths), self.total), dtype=np.int8)
        for j, path in enumerate(paths):
            for i, s in path:
                flat[j, i] = s
        return {n.name: flat[:, a:b] for n, a, b in zip(self.nodes, self.offsets[:-1], self.offsets[1:])}

    def locate(self, i: int) -> tuple[Relu, int]:
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.nodes[k], i - int(self.offsets[k])

    def path(self, path) -> tuple:
        """A phase path as certificate decisions: ("relu", ReLU value, index, 0 active | 1 inactive)."""
        out = []
        for i, s in path:
            node, k = self.locate(i)
            out.append(("relu", node.name, k, 0 if s > 0 else 1))
        return tuple(out)


def _supported(graph: Graph, prop) -> str:
    """Why BaB does not apply to this query ("" when it does)."""
    if getattr(prop, "split_dims", None) is not None or "float_errors" in graph.meta:
        return "float semantics (rounding-error inputs)"
    for n in graph.nodes:
        if isinstance(n, Affine):
            if not isinstance(n.bias, Const) or not all(isinstance(w, (Const, Sparse)) for _, w in n.terms()):
                return "symbolic parameters"
        elif not isinstance(n, (Input, Relu)):
            return f"{type(n).__name__} nodes (BaB needs a piecewise-linear Affine/ReLU network)"
    return ""


class _BabPlanner(_Planner):
    def __init__(self, graph, prop, validate, roots, alpha_steps: int, score: str = "babsr",
                 slopes: bool = False):
        super().__init__(graph, prop, validate)
        self.slopes = slopes  # keep each refuted sub-problem's optimised slopes (certificates)
        self.score = score
        self.roots = roots
        self.root_iv = [box_interval(*b) for b in roots]
        self.root_f = [(np.array([float(v) for v in lo]), np.array([float(v) for v in hi])) for lo, hi in roots]
        self.relus = _Relus(graph)
        self.by_name = {n.name: n for n in graph.nodes}
        self.alpha_steps = alpha_steps
        self.infeasible = 0
        self.t_lp = 0.0  # seconds in lp_attack and settle's LPs (their replays are in t_replay)
        self.candidates = False  # a real validator: LP minimisers are worth replaying
        self.deadline: float | None = None  # perf_counter time the plan's budget ends (settle stops)
        self.settled = 0  # sub-problems settle has taken (at most LEAF_SETTLE_MAX)
        # per root: the ReLU inputs' tightened bounds (every sub-problem's prior) and the slopes
        # that give them (`tightened_bounds`)
        self.prior: list[dict[str, Interval]] = []
        self.tightened: list[dict] = []

    def tighten(self, steps: int) -> None:
        t = time.perf_counter()
        for iv in self.root_iv:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                bounds, slopes = tightened_bounds(self.g, iv, steps)
            self.prior.append({v: bounds[v] for v in self.relu_inputs})
            self.tightened.append(slopes)
        self.t_bounds += time.perf_counter() - t

    def root_prior(self, root: int) -> dict[str, Interval] | None:
        """Root box `root`'s tightened bounds (None: not tightened)."""
        return self.prior[root] if self.prior else None

    def prior_of(self, items) -> dict[str, Interval] | None:
        """The sub-problems' roots' tightened bounds, stacked (batch)."""
        if not self.prior:
            return None
        return {v: Interval(np.stack([self.prior[it.root][v].lo for it in items]),
                            np.stack([self.prior[it.root][v].hi for it in items])) for v in self.relu_inputs}

    def evaluate(self, items: list[_Node], inits: list | None = None, steps: int | None = None,
                 beta_lr: float = BETA_LR) -> list:
        """Per sub-problem: None when refuted, else an `_Open`. `inits`: per item, its
        parent's warm start (or None). `steps`: α,β steps (default `alpha_steps`)."""
        self.n_eval += len(items)
        if not items:
            return []
        lo = np.stack([self.root_iv[it.root].lo for it in items])
        hi = np.stack([self.root_iv[it.root].hi for it in items])
        phases = self.relus.phases([it.path for it in items])
        t = time.perf_counter()
        r0 = self.t_replay
        kept: dict = {}
        init = None  # children start from their parent's slopes and multipliers (α,β-CROWN's
        # warm start; on prop_5 above it made no difference, 286 sub-problems in 44.5 s)
        if inits and all(x is not None for x in inits):
            shapes = {k: v.shape for x in inits for k, v in x.items()}  # a key some parents lack: NaN
            init = {k: np.stack([x.get(k, np.full(sh, np.nan, np.float32)) for x in inits]) for k, sh in shapes.items()}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            lower, coeff, bounds = output_spec_bounds(self.g, Interval(lo, hi), self.spec,
                                                      alpha_steps=self.alpha_steps if steps is None else steps,
                                                      phases=phases, alphas_out=kept, beta_lr=beta_lr,
                                                      alphas_init=init, prior=self.prior_of(items))
        bad = np.broadcast_to(infeasible(bounds), (len(items),)) | np.all(lower == np.inf, axis=-1)
        K = len(self.atoms.C)
        out: list = [None] * len(items)
        weights = np.zeros((len(items), 2 * K))
        live = []
        for j, it in enumerate(items):
            if bad[j]:
                self.infeasible += 1
                self.proof.append((it.root, self.relus.path(it.path), Proof("infeasible")))
                continue
            alo, ahi = self.atom_bounds(lower[j])
            if self.refutes(alo, ahi):
                self.proof.append((it.root, self.relus.path(it.path), self._proof(kept if self.slopes else None, j, alo, ahi)))
                continue
            live.append(j)
            for k, rows in self.rows.items():
                if _three_cmp(alo[k], ahi[k]) is None:
                    weights[j, rows] = 1.0
            if self.found is None:  # the minimisers of the atom bounds: counterexample candidates
                box = self.roots[it.root]
                order = np.argsort(lower[j])
                lo_f, hi_f = self.root_f[it.root]
                for i in order[:4]:
                    up = coeff[j, i] > 0  # the corner each row's linear bound is least at
                    if self.try_point([l if c else h for c, l, h in zip(up, *box)], np.where(up, lo_f, hi_f),
                                      key=(it.root, np.packbits(up).tobytes())):
                        break
        self.t_bounds += time.perf_counter() - t - (self.t_replay - r0)
        if not live:
            return out
        scores = self.scores(bounds, weights, live)
        for j in live:
            s = scores[j]
            unstable = int(np.sum(s >= 0))
            warm = {k: np.asarray(v[j], dtype=np.float32) for k, v in kept.items() if not k.startswith("__free__")}
            out[j] = _Open(int(np.argmax(s)) if unstable else None, unstable, warm or None, lower[j])
        return out

    def settle(self, items: list[_Node], inits: list, lows: list) -> list[bool]:
        """Sub-problems with no unstable free neuron left (every phase fixed): each spec row is
        then linear on the sub-problem's region (the box and the phase half-spaces), so its
        least value is an LP. Per item, whether it is refuted. The LP of each row that can
        make an atom true (`nnsmt.lp`, HiGHS in floats: a steer) is solved first: where its
        optima refute the property with a margin, `LEAF_STEPS` more α,β steps make that
        rigorous (β-CROWN's multipliers are the LP's dual, so enough steps reach its optimum);
        elsewhere, with a validator, its minimisers are replayed as counterexamples. The steps
        are dear on large (e.g. convolutional) cones, so only an LP that promises a refutation
        buys them. `lows`: each item's spec-row bounds so far. What stays open goes to an exact
        solver."""
        t = time.perf_counter()
        r0 = self.t_replay
        worth = []  # items whose LP optima refute: the steps certify them
        for j, it in enumerate(items):
            if self.found is not None or self.settled >= LEAF_SETTLE_MAX or \
                    (self.deadline is not None and time.perf_counter() > self.deadline):
                break  # the rest stay open: an LP each is dear on a large cone
            self.settled += 1
            box, iv = self.roots[it.root], self.root_iv[it.root]
            bounds = leaf_bounds(self.g, box, it.path, self.root_prior(it.root))
            ph = {k: v[0] for k, v in self.relus.phases([it.path]).items()}
            low = np.array(lows[j], dtype=np.float64)
            rows = sorted({q for rs in self.rows.values() for q in rs}, key=lambda q: low[q])[:LP_ROWS]
            pts = []
            for q in rows:
                x = relaxed_minimiser(self.g, iv.lo, iv.hi, bounds, self.spec[q], ph)
                if x is None:
                    continue
                with np.errstate(over="ignore", invalid="ignore"):
                    v = float(self.spec[q] @ evaluate(self.g, {self.inp.name: x})[self.out])
                if np.isfinite(v):  # the LP's optimum, less a margin: rounding must not be the refutation
                    low[q] = max(low[q], v - LEAF_MARGIN * (1.0 + abs(v)))
                pts.append(x)
            if self.refutes(*self.atom_bounds(low)):
                worth.append(j)
            elif self.candidates:
                for x in pts:
                    if self.try_point(in_box(x, *box)):
                        break
        self.t_lp += time.perf_counter() - t - (self.t_replay - r0)
        out = [False] * len(items)
        if worth and self.found is None:
            got = self.evaluate([items[j] for j in worth], [inits[j] for j in worth], LEAF_STEPS, LEAF_BETA_LR)
            for j, r in zip(worth, got):
                out[j] = r is None
        return out

    def lp_attack(self) -> None:
        """Counterexample candidates from the triangle LP (see LP_AFTER_S), at each root box."""
        t = time.perf_counter()
        r0 = self.t_replay
        for r, (box, iv) in enumerate(zip(self.roots, self.root_iv)):
            if self.found is not None:
                break
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                lower, _, bounds = output_spec_bounds(self.g, iv, self.spec, prior=self.root_prior(r))
            rows = sorted({r for rs in self.rows.values() for r in rs}, key=lambda r: lower[r])[:LP_ROWS]
            pts = [x for r in rows if (x := relaxed_minimiser(self.g, iv.lo, iv.hi, bounds, self.spec[r])) is not None]
            for x in refine(self.g, self.prop, iv.lo, iv.hi, np.array(pts)) if pts else []:
                if self.try_point(in_box(x, *box)):
                    break
        self.t_lp = time.perf_counter() - t - (self.t_replay - r0)

    def scores(self, bounds, weights, live) -> np.ndarray:
        """Branching scores (batch, total neurons): -1 where a neuron is not unstable and free."""
        B = weights.shape[0]
        R = self.relus
        score = np.full((B, R.total), -1.0)
        inter = np.zeros((B, R.total))
        first = np.full(B, R.total)  # the earliest layer with an unstable neuron: its offset
        babsr = np.zeros((B, R.total))
        pending = {self.out: weights[..., None] * self.spec[None]}  # (B, rows, n_out)
        a0 = {n.name: a for n, a in zip(R.nodes, R.offsets[:-1])}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for node in reversed(self.g.nodes):
                A = pending.pop(node.name, None)
                if isinstance(node, Relu):
                    iv = bounds[node.x]
                    l, u = np.broadcast_to(iv.lo, (B, iv.lo.shape[-1])), np.broadcast_to(iv.hi, (B, iv.hi.shape[-1]))
                    a = a0[node.name]
                    m = l.shape[-1]
                    unst = (l < 0) & (u > 0)
                    t = np.where(unst, -l * u / (u - l), 0.0)
                    inter[:, a:a + m] = t
                    score[:, a:a + m] = np.where(unst, 0.0, -1.0)
                    has = unst.any(-1)
                    first = np.where(has & (a < first), a, first)
                    if A is None:
                        continue
                    A = np.nan_to_num(A)
                    babsr[:, a:a + m] = (np.maximum(-A, 0.0).sum(1) + 1e-3 * np.abs(A).sum(1)) * t
                    alpha, s, _ = relu_relaxation(l, u)
                    A2 = np.where(A < 0, A * s[:, None, :], A * alpha[:, None, :])
                    pending[node.x] = pending.get(node.x, 0) + np.nan_to_num(A2)
                elif isinstance(node, Affine) and A is not None:
                    for v, W in node.terms():
                        if isinstance(self.by_name.get(v), Input):
                            continue
                        pending[v] = pending.get(v, 0) + _mm_param(A, W)
        unstable = score >= 0
        best = np.where(unstable, babsr, -1.0)
        # no BaBSR signal: the largest intercept in the earliest unstable layer
        offs = R.offsets
        for j in live:
            if unstable[j].any() and (self.score == "intercept" or not np.any(best[j][unstable[j]] > 0)):
                k = int(np.searchsorted(offs, first[j], side="right")) - 1
                a, b = offs[k], offs[k + 1]
                row = np.full(R.total, 0.0)
                row[a:b] = inter[j, a:b] + 1e-300
                best[j] = np.where(unstable[j], row, -1.0)
        return best


def pre_name(graph: Graph, inp: str, out: str, value: str, i: int) -> str:
    """The SMT name `verify_script` gives element i of `value`."""
    if value == inp:
        return f"X_{i}"
    if value == out:
        return f"Y_{i}"
    return f"{value}_{i}"


def phase_asserts(graph: Graph, prop, path) -> tuple:
    """The script assertion fixing a leaf's decided phases on their pre-activations."""
    if not path:
        return ()
    from .verify import check_compatible
    inp, out = check_compatible(graph, prop)
    relus = _Relus(graph)
    zero = Num(Fraction(0))
    cmps = []
    for i, s in path:
        node, k = relus.locate(i)
        cmps.append(Cmp(">=" if s > 0 else "<=", Var(pre_name(graph, inp.name, out, node.x, k)), zero))
    return (("bab_phases", And(tuple(cmps)) if len(cmps) > 1 else cmps[0]),)


def leaf_bounds(graph: Graph, box, path, prior=None) -> dict:
    """Sound bounds over the box's inputs that satisfy the leaf's phases (unbatched), met with
    `prior` (its root's tightened bounds) where given."""
    relus = _Relus(graph)
    ph = {k: v[0] for k, v in relus.phases([path]).items()}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return propagate_bounds(graph, box_interval(*box), phases=ph, prior=prior)


def leaf_script(graph: Graph, prop, box, path, lemmas: str = "bounds", index: int = 0, of: int = 1, prior=None):
    s = verify_script(graph, prop, encoding="bounded", bounds=leaf_bounds(graph, box, path, prior), lemmas=lemmas)
    s = restrict(s, box, index, of)
    return replace(s, asserts=s.asserts + phase_asserts(graph, prop, path))


def _coarsen(leaves: list[_Node], n: int) -> list[_Node]:
    """At most n nodes covering `leaves` (deepest replaced by their parents first)."""
    cur = list(dict.fromkeys(leaves))
    while len(cur) > n:
        d = max(x.depth for x in cur)
        if d == 0:
            break
        cur = list(dict.fromkeys(_Node(x.root, x.path[:-1]) if x.depth == d else x for x in cur))
    return cur


def plan_bab(graph: Graph, prop, n: int, *, validate=None, time_budget: float | None = None,
             alpha_steps: int = ALPHA_STEPS, batch: int = BATCH, max_nodes: int | None = None,
             lemmas: str = "bounds", samples: int = 64, seed: int = 0, build: bool = True,
             attack_budget: float | None = None, score: str = "babsr", slopes: bool = False,
             tighten: int = ROOT_TIGHTEN, prior: Sequence[Mapping[str, Interval]] | None = None,
             root_lp: bool = True) -> SplitPlan:
    """Branch and bound on ReLU phases; at most `n` exact sub-queries are left for a solver.

    The contract of `plan_split` (validate, budgets, `SplitPlan` and its `SubQuery`s; a
    sub-query's `box` is the root box it lies in, `meta["phases"]` its decisions as
    ((flat neuron, sign), ...), `meta["depth"]` their number). Properties whose input region
    is not a bounded box, without linear output atoms, or on networks other than Affine/ReLU
    ones (or in float semantics) go to `plan_split` (`stats["fallback"]` says why).
    With build=False, scripts are left None (`leaf_script` builds one; `BabRun` does).
    `score`: the branching score, "babsr" (module docstring) or "intercept" (the largest
    triangle intercept in the earliest layer with an unstable free neuron).
    `prior`: per root box, sound bounds of (at least) every ReLU input over it, known already
    (e.g. `nnsmt.domain.region_bounds(..., tighten=)`): every sub-problem's prior, instead of
    tightening the roots here. Not with `slopes` (a certificate needs the slopes that give
    them).
    `root_lp`: with a validator, try the triangle LP's minimisers at the roots once branching
    has run a while (LP_AFTER_S); the LPs of fully fixed sub-problems (`settle`) run regardless.
    """
    if score not in ("babsr", "intercept"):
        raise InputError(f"unknown branching score {score!r}; choose babsr or intercept")
    if n < 1:
        raise InputError(f"bab needs a positive number of sub-queries, got {n}")
    t0 = time.perf_counter()
    why = _supported(graph, prop)
    boxes = prop.input_boxes()
    if not why and (boxes is None or any(v is None or _float_or_none(v) is None
                                         for lo, hi in boxes for v in (*lo, *hi))):
        why = "the input region is not a bounded union of boxes"
    # attack, random samples and the roots' bounds: the split planner with one sub-query
    first = plan_split(graph, prop, n if why else 1, validate=validate, time_budget=time_budget,
                       lemmas=lemmas, samples=samples, seed=seed, batch=batch, build=build and bool(why),
                       attack_budget=attack_budget, slopes=slopes)
    if why or first.candidate is not None or not first.subqueries:
        first.stats = dict(first.stats, **({"fallback": why} if why else {}))
        return first
    roots = [(tuple(lo), tuple(hi)) for lo, hi in boxes if all(a <= b for a, b in zip(lo, hi))]
    pl = _BabPlanner(graph, prop, validate or (lambda m: False), roots, alpha_steps, score, slopes)
    if not len(pl.atoms.C):
        first.stats = dict(first.stats, fallback="no linear output atoms")
        return first
    pl.tried = set()
    pl.candidates = validate is not None
    pl.deadline = None if time_budget is None else t0 + time_budget
    if prior is not None:
        if slopes or len(prior) != len(roots):
            raise InputError("bab: a given prior needs one bounds map per root box, and no certificate")
        pl.prior = [{v: p[v] for v in pl.relu_inputs} for p in prior]
    elif tighten:
        pl.tighten(tighten)
    max_nodes = max_nodes if max_nodes is not None else MAX_NODES
    open_: list[_Node] = [_Node(r, ()) for r in range(len(roots))]
    branch: dict[_Node, tuple] = {}  # evaluated -> (its branch neuron, its children's warm start)
    done: list[_Node] = []  # undecided with no unstable free neuron left
    refuted, max_depth, exhausted = 0, 0, ""
    lp_at = LP_AFTER_S if time_budget is None else min(LP_AFTER_S, LP_AFTER_SHARE * time_budget)
    lp_done = validate is None or not root_lp
    found_by = "bounds"
    while open_ and pl.found is None:
        if not lp_done and time.perf_counter() - t0 > lp_at:
            lp_done = True
            pl.lp_attack()
            if pl.found is not None:
                found_by = "lp attack"
                break
        if pl.n_eval >= max_nodes:
            exhausted = f"max nodes ({max_nodes})"
            break
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            exhausted = f"time budget ({time_budget:.0f} s)"
            break
        take, open_ = open_[:batch], open_[batch:]
        items, inits = [], []
        for node in take:
            if node in branch:  # evaluated: its children
                i, w = branch.pop(node)
                items += [_Node(node.root, node.path + ((i, 1),)), _Node(node.root, node.path + ((i, -1),))]
                inits += [w, w]
            else:
                items.append(node)
                inits.append(None)
        ends: list[tuple] = []  # every phase fixed: an LP each (`settle`)
        for node, r in zip(items, pl.evaluate(items, inits)):
            max_depth = max(max_depth, node.depth)
            if r is None:
                refuted += 1
            elif r.branch is None:
                ends.append((node, r.warm, r.lower))
            else:
                branch[node] = (r.branch, r.warm)
                open_.append(node)
        if ends:
            for (node, _, _), ok in zip(ends, pl.settle(*map(list, zip(*ends)))):
                if ok:
                    refuted += 1
                else:
                    done.append(node)
            if pl.found is not None:
                found_by = "leaf lp"
    subs = []
    if pl.found is None:
        leaves = _coarsen(done + open_, n)
        leaves.sort(key=lambda x: -x.depth)  # most decided (smallest) first
        for i, leaf in enumerate(leaves):
            box = roots[leaf.root]
            prior = pl.root_prior(leaf.root)
            s = leaf_script(graph, prop, box, leaf.path, lemmas, i, len(leaves), prior) if build else None
            subs.append(SubQuery(i, s, box, {"depth": leaf.depth, "phases": leaf.path, "region": leaf.root,
                                             "path": pl.relus.path(leaf.path), "prior": prior}))
    stats = {"plan_s": time.perf_counter() - t0, "roots": len(roots),
             "bounds_s": round(pl.t_bounds + first.stats.get("bounds_s", 0.0), 4),
             "replay_s": round(pl.t_replay + first.stats.get("replay_s", 0.0), 4),
             "attack_s": round(first.stats.get("attack_s", 0.0) + pl.t_lp, 4), "max_depth": max_depth,
             "infeasible": pl.infeasible, "smt_leaves": len(subs), "open_at_stop": len(open_) + len(done)}
    if pl.found is not None:
        stats["found_by"] = found_by
    return SplitPlan(subs, refuted + first.refuted, pl.n_eval + first.boxes_explored, pl.found,
                     exhausted, stats, pl.proof, pl.tightened)


class BabRun(SplitRun):
    """A `SplitRun` over BaB leaves: a leaf's script is built when it is taken (bounds under its
    phases, the box, and the `bab_phases` assertion); certify uses the whole query."""

    def __init__(self, *args, **kw):
        kw.setdefault("engine", "bab")
        super().__init__(*args, **kw)
        self.by_index = {sq.index: sq for sq in self.plan.subqueries}

    def on(self, backend: str) -> "BabRun":
        run = BabRun(self.plan, self.query, backend, self.left(), self.jobs, self.stats, engine=self.engine)
        run.cex, run.notes = self.cex, self.notes
        return run

    def subquery(self, sq: SubQuery) -> VerifyQuery:
        if sq.box == ((), ()) or "phases" not in sq.meta:
            return super().subquery(sq)
        bounds = leaf_bounds(self.query.graph, sq.box, sq.meta["phases"], sq.meta.get("prior"))
        return replace(self.query, encoding="bounded", bounds=bounds, box=sq.box, index=sq.index, of=self.n)

    def take(self):
        got = super().take()
        if got is None:
            return None
        index, script, left, options = got
        sq = self.by_index.get(index)
        if sq is not None and "phases" in sq.meta and (sq.script is None or index in self.queries):
            script = replace(script, asserts=script.asserts +
                             phase_asserts(self.query.graph, self.query.prop, sq.meta["phases"]))
        return index, script, left, options


def start_bab(query: VerifyQuery, n: int, backend: str, timeout: float | None = None,
              plan_share: float = 0.7, jobs: int = 1, engine: str | None = None,
              candidates: bool = True, alpha_steps: int = ALPHA_STEPS, slopes: bool = False) -> SplitRun:
    """`start_split` with `plan_bab`: branch and bound within `plan_share` of `timeout`, then a
    run over the (at most n) leaves left, its timeout the rest."""
    t0 = time.perf_counter()
    plan = plan_bab(query.graph, query.prop, n, validate=certifies(query) if candidates else None, build=False,
                    lemmas=query.lemmas, alpha_steps=alpha_steps, slopes=slopes,
                    time_budget=None if timeout is None else plan_share * timeout)
    stats = {"plan_s": round(time.perf_counter() - t0, 4), "subproblems": plan.boxes_explored,
             "refuted_by_bounds": plan.refuted, "subqueries": len(plan.subqueries)}
    stats |= {k: plan.stats[k] for k in ("attack_s", "bounds_s", "replay_s", "max_depth", "infeasible", "fallback")
              if k in plan.stats}
    if plan.exhausted:
        stats["bab_stopped"] = plan.exhausted
    left = None if timeout is None else timeout - (time.perf_counter() - t0)
    run = BabRun(plan, query, backend, left, jobs, stats, engine=engine or f"bab({n})")
    run.t0 = t0
    if plan.candidate is not None:
        run.cex = query.certify({f"X_{i}": v for i, v in enumerate(plan.candidate)})
        run.stats["found_by"] = plan.stats.get("found_by", "bounds")
    return run
