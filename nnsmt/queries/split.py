"""Input splitting: a verification query becomes independent sub-queries over sub-boxes.

The property's input region (a union of boxes) is bisected best-first: the sub-box with the
most unstable ReLUs is split next, along the dimension with the largest bound-based score
(width times the weight of that input in the linear bounds of the property's output atoms).
A sub-box is *refuted* when sound linear bounds show some output assertion of the property
false everywhere in it (three-valued evaluation of the property over atom bounds; bounds are
outward rounded, see `nnsmt.bounds`). Candidate counterexamples come first from an attack on
the float network (`nnsmt.attack`: projected gradient from many starts) and random points,
then from the bounds (box centres, minimisers of the linear bounds) on the way; one that
passes the exact replay ends the search with sat. What is left becomes `SubQuery`s: plain, picklable data (a complete
script with the bounded encoding for that sub-box, and metadata), so they can be solved
anywhere, in any order: all unsat -> unsat; any validated sat -> sat; else unknown.
`SplitRun` hands them out and collects the answers, one at a time (`solve_split`) or through
an executor's workers (`solve_split_parallel`, `nnsmt verify --split N --jobs J`, `nnsmt batch
--split N`).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..attack import attack
from ..certificate import Certificate, Leaf as Proof, Slopes, Tighten, tree_from_paths
from ..floatsem import local_bounds, tighten
from ..bounds import Interval, box_interval, output_spec_bounds, propagate_bounds
from ..errors import InputError
from ..interpret import decide, evaluate
from ..ir import Graph, Relu
from ..terms import And, Bool, Cmp, Not, Or, Script, atoms, linear_form, variables
from ..errors import ValidationError
from ..query import Outcome
from .verify import VerifyQuery, check_compatible, restrict, verify_script

Box = tuple[tuple[Fraction, ...], tuple[Fraction, ...]]

# the attack before splitting (`nnsmt.attack`): at most ATTACK_S seconds and ATTACK_SHARE of the
# planning budget; rounds of ATTACK_STARTS starts, ATTACK_STEPS steps each (ACAS Xu 1_9 prop 7:
# 512 x 30 reached the unsafe region in 14 of 20 rounds, 128 x 100 in 2 of 20)
ATTACK_S, ATTACK_SHARE = 2.0, 0.1
ATTACK_STARTS, ATTACK_STEPS = 512, 30
# α-CROWN steps on each sub-box's spec bound, once ALPHA_AFTER boxes were bounded with plain
# slopes. ACAS Xu 3_1 prop 1: plain slopes left 606 boxes open after 19007 bounded in 60 s, 5
# steps refuted all after 295 boxes (1.6 s); easy instances stay cheap: 1_1 prop 3 needs 3295
# boxes plain, 8919 with α from the start, 2743 with α after 2000
ALPHA_STEPS, ALPHA_AFTER = 5, 2000


@dataclass(frozen=True)
class SubQuery:
    """One independent piece of a split query: `script` is sat iff the property has a
    counterexample in `box` (closed; the script asserts it as `split_box`)."""

    index: int
    script: Script
    box: Box
    meta: dict = field(default_factory=dict)


@dataclass
class SplitPlan:
    """The result of planning: sub-queries left for a solver, and what bounds already showed."""

    subqueries: list[SubQuery]
    refuted: int = 0  # sub-boxes proved to hold no counterexample by bounds alone
    boxes_explored: int = 0
    candidate: list[Fraction] | None = None  # an input that passed the exact replay (sat)
    exhausted: str = ""  # why splitting stopped early ("max boxes", "time budget"), if it did
    stats: dict = field(default_factory=dict)
    # how each sub-problem the bounds settled was settled: (root box, path, certificate Leaf),
    # a path being the certificate's decisions from the root (`certificate.tree_from_paths`)
    proof: list = field(default_factory=list)
    # per root box: its ReLU inputs' tightened bounds' slopes (`bounds.tightened_bounds`), which
    # every sub-problem of that root used: the certificate's Tighten node above its tree
    tightened: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the property's output atoms, evaluated three-valued over bounds

@dataclass(frozen=True)
class _Atoms:
    C: np.ndarray  # one row per linear output atom: coefficients on Y
    d: np.ndarray  # constants: atom is C[k] @ Y + d[k]  op  0
    index: dict  # id(Cmp term) -> row


def _collectatoms(prop, n_out: int) -> tuple[list, _Atoms]:
    y_asserts, rows, consts, index = [], [], [], {}
    for _, t in prop.asserts:
        names = variables(t)
        if not any(v.startswith("Y_") for v in names):
            continue  # input constraints: the boxes
        y_asserts.append(t)
        for atom in atoms(t):
            lf, rf = linear_form(atom.lhs), linear_form(atom.rhs)
            if lf is None or rf is None:
                continue
            coef = {k: lf[0].get(k, 0) - rf[0].get(k, 0) for k in set(lf[0]) | set(rf[0])}
            if any(v and not k.startswith("Y_") for k, v in coef.items()):
                continue  # mixes inputs and outputs: stays unknown
            row = np.zeros(n_out)
            exact_ok = True
            for k, v in coef.items():
                f = _float_or_none(v)
                exact_ok &= f is not None and Fraction(f) == v
                row[int(k[2:])] = f or 0.0
            if not exact_ok:
                continue  # keep the bound arithmetic exact on its coefficients (or they overflow)
            index[id(atom)] = len(rows)
            rows.append(row)
            consts.append(lf[1] - rf[1])
    C = np.array(rows).reshape(len(rows), n_out)
    return y_asserts, _Atoms(C, np.array(consts, dtype=object), index)


def _float_or_none(q) -> float | None:
    """float(q), or None when q lies beyond the float64 range (e.g. a VNN-LIB 1e400)."""
    try:
        return float(q)
    except OverflowError:
        return None


def _float_consts(d: np.ndarray) -> np.ndarray:
    """The atom constants as float64 for the candidate screen; NaN where a constant does not fit
    float64 (the screen then leaves that atom unknown: sound, the exact check decides)."""
    out = [_float_or_none(v) for v in d]
    return np.array([np.nan if f is None else f for f in out], dtype=np.float64)


def _three(t, lo, hi, atoms: _Atoms):
    """True / False / None (unknown) for a boolean term over the atom value bounds
    (atom k's `C[k] @ Y + d[k]` lies in [lo[k], hi[k]], d included exactly)."""
    match t:
        case And():
            vals = [_three(a, lo, hi, atoms) for a in t.args]
            return False if False in vals else (True if all(v is True for v in vals) else None)
        case Or():
            vals = [_three(a, lo, hi, atoms) for a in t.args]
            return True if True in vals else (False if all(v is False for v in vals) else None)
        case Not():
            v = _three(t.arg, lo, hi, atoms)
            return None if v is None else not v
        case Bool():
            return t.value
        case Cmp():
            k = atoms.index.get(id(t))
            if k is None:
                return None
            return decide(t.op, lo[k], hi[k])  # Fractions (or +-inf floats)
    return None


def _three_cmp(lo, hi):
    """None when an atom's value bounds [lo, hi] contain 0 (its truth still open), else True."""
    return None if lo <= 0 <= hi else True


# ---------------------------------------------------------------------------------------------
# planning

@dataclass
class _Leaf:
    box: Box
    depth: int
    unstable: int
    bounds: dict  # value -> Interval of this box (a view into a batch)
    score: np.ndarray
    root: int
    path: tuple = ()  # the bisections from the root box: ("input", dim, 0 lower | 1 upper), ...


def _slice(bounds: dict, i: int) -> dict:
    return {k: Interval(v.lo[i], v.hi[i]) for k, v in bounds.items()}


class _Planner:
    def __init__(self, graph: Graph, prop, validate):
        self.g, self.prop, self.validate = graph, prop, validate
        self.inp, self.out = check_compatible(graph, prop)
        n_out = graph.dims()[self.out]
        self.y_asserts, self.atoms = _collectatoms(prop, n_out)
        k = len(self.atoms.C)
        self.spec = np.vstack([self.atoms.C, -self.atoms.C]) if k else np.zeros((0, n_out))
        self.relu_inputs = [n.x for n in graph.nodes if isinstance(n, Relu)]
        self.tried: set = set()
        # the float screen of candidates: without the asserts on rounding errors alone (a
        # candidate's errors are 0, within them)
        sd = getattr(prop, "split_dims", None)
        core = tuple((line, t) for line, t in prop.asserts if sd is None or
                     any(not v.startswith("X_") or int(v[2:]) < sd for v in variables(t)))
        self.screen = replace(prop, asserts=core)
        self.found: list[Fraction] | None = None
        self.n_eval = 0
        self.proof: list = []  # (root, path, certificate Leaf) of every refuted sub-problem
        self.alpha_steps = 0  # α-CROWN steps on each sub-box's spec bound (plan_split sets it)
        self.slopes = False  # keep each refuted sub-problem's optimised slopes (certificates)
        self.t_bounds = 0.0  # seconds in bound computations
        self.t_replay = 0.0  # seconds replaying candidates exactly (and in onnxruntime)
        K = len(self.atoms.C)
        # per atom, the spec rows (of [C; -C]) whose bound can make it False: lower bounds
        # refute "<=", "<" atoms (row k), upper bounds ">=", ">" (row K + k), both "="
        self.rows = {}
        for t in self.y_asserts:
            for a in atoms(t):
                k = self.atoms.index.get(id(a))
                if k is not None:
                    self.rows[k] = [k] if a.op in ("<=", "<") else [K + k] if a.op in (">=", ">") else [k, K + k]

    def evaluate(self, items: list[tuple[Box, int, int, tuple]]) -> list:
        """Bounds on a batch of sub-boxes (box, depth, root, path): a _Leaf each, or None when
        the bounds refute that box (recorded in `proof`)."""
        t = time.perf_counter()
        r0 = self.t_replay
        with np.errstate(over="ignore", invalid="ignore"):  # huge weights: bounds go infinite
            out = self._evaluate(items)
        self.t_bounds += time.perf_counter() - t - (self.t_replay - r0)
        return out

    def _evaluate(self, items: list[tuple[Box, int, int, tuple]]) -> list:
        self.n_eval += len(items)
        if not items:
            return []
        ivs = [box_interval(*b) for b, *_ in items]
        batch = Interval(np.stack([iv.lo for iv in ivs]), np.stack([iv.hi for iv in ivs]))
        k = len(self.atoms.C)
        kept: dict | None = {} if self.slopes and self.alpha_steps else None
        if k:
            lower, coeff, bounds = output_spec_bounds(self.g, batch, self.spec, alpha_steps=self.alpha_steps,
                                                      alphas_out=kept)
        else:
            bounds = propagate_bounds(self.g, batch)
            lower, coeff = np.zeros((len(items), 0)), np.zeros((len(items), 0, batch.lo.shape[1]))
        unstable = sum(((bounds[x].lo < 0) & (bounds[x].hi > 0)).sum(-1) for x in self.relu_inputs)
        local = local_bounds(self.g, bounds) if "float_errors" in self.g.meta else []
        unstable = np.broadcast_to(unstable, (len(items),))
        out = []
        for j, (box, depth, root, path) in enumerate(items):
            lo, hi = self.atom_bounds(lower[j])
            verdicts = [_three(t, lo, hi, self.atoms) for t in self.y_asserts]
            if False in verdicts:
                out.append(None)
                self.proof.append((root, path, self._proof(kept, j, lo, hi)))
                continue
            width = np.array([float(h - l) for l, h in zip(*box)])
            score = width * (np.abs(coeff[j]).sum(0) if k else 1.0)
            if not np.any(score > 0):
                score = width
            sd = getattr(self.prop, "split_dims", None)
            if sd is not None and sd < len(score):  # rounding errors: never bisected
                score = score.copy()
                score[sd:] = -1.0
            if local:  # float semantics: the box's own rounding-error bounds, for its children
                lo_, hi_ = tighten(box[0], box[1], [(f, b[j]) for f, b in local])
                box = tuple(lo_), tuple(hi_)
            out.append(_Leaf(box, depth, int(unstable[j]), (bounds, j), score, root, path))
            if self.found is None:
                # counterexample candidates: the centre, and the minimiser of the atom bound
                # closest to being violated (sat of a conjunct)
                cands = [[(a + b) / 2 for a, b in zip(*box)]]
                if k and not all(v is True for v in verdicts):
                    i = int(np.argmin([lower[j, i] for i in range(k)]))
                    cands.append([l if c > 0 else h for c, l, h in zip(coeff[j, i], *box)])
                    i = int(np.argmin([lower[j, k + i] for i in range(k)]))
                    cands.append([l if c > 0 else h for c, l, h in zip(coeff[j, k + i], *box)])
                for x in cands:
                    if self.try_point(x):
                        break
        return out

    def atom_bounds(self, lower) -> tuple[list, list]:
        """The atoms' value bounds from the spec rows' lower bounds (`self.spec`: C then -C),
        with the exact constants: [lower_k + d_k, -lower_{k+K} + d_k]."""
        k, d = len(self.atoms.C), self.atoms.d
        return [_addq(lower[i], d[i]) for i in range(k)], [_addq(-lower[k + i], d[i]) for i in range(k)]

    def refutes(self, lo, hi) -> bool:
        """Whether atom bounds make some output assertion False (three-valued)."""
        return False in [_three(t, lo, hi, self.atoms) for t in self.y_asserts]

    def _proof(self, kept, j: int, alo, ahi) -> Proof:
        """Sub-problem j's bounds leaf: its optimised slopes for the rows of its decided atoms,
        on its free neurons, and its multipliers (β) on its fixed ones: the certificate's hints
        (`certificate.Slopes`)."""
        if not kept:  # no certificate asked for (the hot path): nothing to compute
            return Proof("bounds")
        rows = sorted({r for k, rs in self.rows.items() if _three_cmp(alo[k], ahi[k]) is not None for r in rs})
        if not rows:
            return Proof("bounds")
        alpha, beta = {}, {}
        for name, a in kept.items():
            if name.startswith("__"):
                continue
            neurons = np.nonzero(np.broadcast_to(kept["__free__" + name], a.shape)[j, 0])[0]
            if len(neurons):  # a[j]: (spec rows, neurons)
                alpha[name] = Slopes(tuple(rows), tuple(int(i) for i in neurons),
                                     np.asarray(a[j][np.ix_(rows, neurons)], dtype=np.float32))
            b = kept.get("__beta__" + name)
            if b is not None:
                bj = np.asarray(b[j][rows], dtype=np.float32)
                neurons = np.nonzero(np.any(bj > 0, axis=0))[0]
                if len(neurons):
                    beta[name] = Slopes(tuple(rows), tuple(int(i) for i in neurons), bj[:, neurons])
        return Proof("bounds", alpha, beta=beta)

    def try_point(self, x, xf: np.ndarray | None = None, key=None) -> bool:
        """Replay candidate `x` (exact values): a float screen, then the validator; whether it
        is a counterexample. `xf`: x in floats, `key`: a key no other point has (a caller
        that has them saves 784 conversions a point on MNIST)."""
        sd = getattr(self.prop, "split_dims", None)
        if sd is not None and sd < len(x):  # rounding errors: a float run makes its own
            x, xf = list(x[:sd]) + [Fraction(0)] * (len(x) - sd), None
        if key is None:  # exact values as integer pairs: a Fraction's own hash (a modular
            # inverse each) cost half of bab's time on MNIST's 784 inputs
            key = tuple(v.as_integer_ratio() if isinstance(v, (Fraction, int)) else float(v) for v in x[:sd])
        if self.found is not None or key in self.tried:
            return self.found is not None
        self.tried.add(key)
        if xf is None:
            xf = np.array([float(v) for v in x])
        with np.errstate(over="ignore", invalid="ignore"):
            y = evaluate(self.g, {self.inp.name: xf})[self.out]
        finite = bool(np.all(np.isfinite(y)))  # floats overflow (huge weights): exact check only
        if finite and len(self.atoms.C):  # cheap float screen on the output atoms before exact checks
            v = self.atoms.C @ y + _float_consts(self.atoms.d)
            lo, hi = v - 1e-6, v + 1e-6
            lo[np.isnan(v)], hi[np.isnan(v)] = -np.inf, np.inf  # constant beyond float64: unknown
            if False in [_three(t, lo, hi, self.atoms) for t in self.y_asserts]:
                return False
        env = {f"X_{i}": v for i, v in enumerate(x)} | {f"Y_{j}": float(v) for j, v in enumerate(y)}
        if finite and not self.screen.holds(env, tol=1e-9):
            return False
        model = {f"X_{i}": Fraction(v) for i, v in enumerate(x)}
        t = time.perf_counter()
        ok = self.validate(model)
        self.t_replay += time.perf_counter() - t
        if ok:
            self.found = [Fraction(v) for v in x]
            return True
        return False


def in_box(x, lo, hi) -> list[Fraction]:
    """The exact value of each float of x, clamped into the exact box [lo, hi] (a decimal bound
    rounds to a float just outside it)."""
    return [min(max(Fraction(float(v)), a), b) for v, a, b in zip(x, lo, hi)]


def _addq(f: float, d: Fraction):
    return f if not np.isfinite(f) else Fraction(float(f)) + d


def _bisect(box: Box, dim: int) -> tuple[Box, Box]:
    lo, hi = box
    mid = (lo[dim] + hi[dim]) / 2
    return (lo, hi[:dim] + (mid,) + hi[dim + 1:]), (lo[:dim] + (mid,) + lo[dim + 1:], hi)


def subquery_script(graph: Graph, prop, box: Box, bounds, lemmas: str = "bounds", index: int = 0,
                    of: int = 1) -> Script:
    """The verification script restricted to `box` (asserted as `split_box`), with the bounded
    encoding over `bounds` (sound on that box)."""
    s = verify_script(graph, prop, encoding="bounded", bounds=bounds, lemmas=lemmas)
    return restrict(s, box, index, of)


def plan_split(graph: Graph, prop, n: int, *, validate=None, easy: int = 0,
               max_boxes: int | None = None, time_budget: float | None = None,
               lemmas: str = "bounds", samples: int = 64, seed: int = 0, batch: int = 64,
               build: bool = True, attack_budget: float | None = None,
               alpha_steps: int = ALPHA_STEPS, slopes: bool = False) -> SplitPlan:
    """Split the property's input region into at most `n` sub-queries.

    Args:
        graph, prop: the network and the VNN-LIB property (its inputs must form boxes).
        n: the most sub-queries to hand to a solver (>= 1).
        validate: model -> bool, the exact replay of a candidate counterexample; when given,
            the points an attack on the float network finds (`nnsmt.attack`), `samples` random
            points and the candidates suggested by the bounds are tried, in that order.
        attack_budget: seconds for the attack over all root boxes (None: min(2 s, a tenth of
            `time_budget`); 0: no attack).
        easy: a sub-box with at most this many unstable ReLUs is not split further.
        max_boxes, time_budget: stop splitting after this many bound computations / seconds.
        batch: sub-boxes whose bounds are computed together (numpy-vectorised).
        alpha_steps: α-CROWN steps optimising each sub-box's spec bound (0: plain slopes).
        slopes: keep the optimised slopes of refuted sub-boxes in `proof` (certificate hints).
        build: build each sub-query's script now; with False, `script` is None and the
            sub-box's bounds are in `meta["bounds"]` (`subquery_script` builds it later).

    Returns:
        A SplitPlan. If `candidate` is set, a validated counterexample was found (sat).
    """
    if n < 1:
        raise InputError(f"--split needs a positive number of sub-queries, got {n}")
    t0 = time.perf_counter()
    boxes = prop.input_boxes()
    if boxes is None or any(v is None or _float_or_none(v) is None for lo, hi in boxes for v in (*lo, *hi)):
        # not a bounded union of boxes (or bounds beyond float64, which the float bound
        # arithmetic cannot hold): one sub-query, the whole property
        s = verify_script(graph, prop, encoding="bounded", lemmas=lemmas)
        return SplitPlan([SubQuery(0, s, ((), ()), {"note": "input region is not a bounded box"})],
                         exhausted="input region is not a bounded union of boxes")
    roots = [(tuple(lo), tuple(hi)) for lo, hi in boxes if all(a <= b for a, b in zip(lo, hi))]
    if not roots:  # empty input region (lo > hi, or a false constraint): no input, no counterexample
        return SplitPlan([], 0, 0, None, "", {"plan_s": time.perf_counter() - t0, "roots": 0,
                                                      "note": "the input region is empty"})
    pl = _Planner(graph, prop, validate or (lambda m: False))
    pl.slopes = slopes
    max_boxes = max_boxes if max_boxes is not None else max(1000, 50 * n)
    found_by = ""
    # the roots' bounds first: a root they refute needs no attack (an easy unsat stays fast)
    root_leaves = pl.evaluate([(box, 0, r, ()) for r, box in enumerate(roots)])
    live = [box for box, leaf in zip(roots, root_leaves) if leaf is not None]
    if pl.found is not None:
        found_by = "bounds"
        live = []
    t_attack = time.perf_counter()
    if attack_budget is None:
        attack_budget = ATTACK_S if time_budget is None else min(ATTACK_S, ATTACK_SHARE * time_budget)
    if validate is not None and attack_budget > 0:
        sd = getattr(prop, "split_dims", None)
        for r, (lo, hi) in enumerate(live):
            left = attack_budget - (time.perf_counter() - t_attack)
            if left <= 0 or pl.found is not None:
                break
            alo, ahi = [float(v) for v in lo], [float(v) for v in hi]
            if sd is not None:  # rounding errors: 0 in a float run (try_point sets them so)
                alo[sd:], ahi[sd:] = [0.0] * (len(alo) - sd), [0.0] * (len(ahi) - sd)
            for x in attack(graph, prop, alo, ahi, starts=ATTACK_STARTS, steps=ATTACK_STEPS,
                            seed=seed + r, time_budget=left / (len(live) - r)):
                if pl.try_point(in_box(x, lo, hi)):
                    found_by = "attack"
                    break
    t_attack = time.perf_counter() - t_attack
    if validate is not None and samples and pl.found is None:
        rng = np.random.default_rng(seed)
        for lo, hi in live:
            for _ in range(samples):
                u = rng.random(len(lo))
                x = [l + (h - l) * Fraction(float(t)) for l, h, t in zip(lo, hi, u)]
                if pl.try_point(x):
                    found_by = "samples"
                    break
    heap: list = []
    done: list[_Leaf] = []  # easy leaves: not split further
    refuted = 0
    counter = 0

    def add(leaves):
        nonlocal counter, refuted
        for leaf in leaves:
            if leaf is None:
                refuted += 1
            elif leaf.unstable <= easy:
                done.append(leaf)
            else:
                heapq.heappush(heap, (-leaf.unstable, counter, leaf))
                counter += 1

    exhausted = ""
    if pl.found is None:
        add(root_leaves)
    while heap and pl.found is None:
        room = n - len(heap) - len(done)  # each split adds at most one open leaf
        if room <= 0:
            break
        if pl.n_eval + 2 > max_boxes:
            exhausted = f"max boxes ({max_boxes})"
            break
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            exhausted = f"time budget ({time_budget:.0f} s)"
            break
        take = [heapq.heappop(heap)[2] for _ in range(min(batch, room, len(heap)))]
        items = []
        for leaf in take:
            dim = int(np.argmax(leaf.score))
            for side, child in enumerate(_bisect(leaf.box, dim)):
                items.append((child, leaf.depth + 1, leaf.root, leaf.path + (("input", dim, side),)))
        if pl.n_eval >= ALPHA_AFTER:
            pl.alpha_steps = alpha_steps
        add(pl.evaluate(items))
    leaves = sorted(done + [e[2] for e in heap], key=lambda leaf: leaf.unstable)  # easiest first
    subs = []
    if pl.found is None:
        for i, leaf in enumerate(leaves):
            bounds = _slice(*leaf.bounds)
            s = subquery_script(graph, prop, leaf.box, bounds, lemmas, i, len(leaves)) if build else None
            subs.append(SubQuery(i, s, leaf.box, {"depth": leaf.depth, "unstable": leaf.unstable,
                                                 "region": leaf.root, "path": leaf.path}
                                 | ({} if build else {"bounds": bounds})))
    stats = {"plan_s": time.perf_counter() - t0, "roots": len(roots), "attack_s": round(t_attack, 4),
             "bounds_s": round(pl.t_bounds, 4), "replay_s": round(pl.t_replay, 4)}
    if pl.found is not None:
        stats["found_by"] = found_by or "bounds"
    return SplitPlan(subs, refuted, pl.n_eval, pl.found, exhausted, stats, pl.proof)


class SplitRun:
    """One split instance being solved, by one worker or many (a `nnsmt.engine.driver.Run`).

    `take` hands out the next sub-query (its script built now) with its share of the time left;
    `record` takes an answer, in any order. The verdict: all unsat -> unsat; the first sat whose
    model passes the query's `certify` -> sat (what still runs can then be cancelled); else
    unknown, or error when a solver failed or a model of an exact sub-query failed the replay
    (never sat). `timeout` bounds the whole run: sub-queries not started by then stay undecided.
    """

    def __init__(self, plan: SplitPlan, query: VerifyQuery, backend: str, timeout: float | None = None,
                 jobs: int = 1, stats: dict | None = None, engine: str = "split"):
        self.plan, self.query, self.backend, self.jobs = plan, query, backend, max(1, jobs)
        self.engine = engine
        self.t0 = time.perf_counter()
        self.deadline = None if timeout is None else self.t0 + timeout
        self.stats = dict(stats or {})
        self.n = len(plan.subqueries)
        self.started = 0
        self.outstanding: set[int] = set()
        self.log: list = []  # (index, status, reason, solve seconds)
        self.undecided: list[int] = []
        self.errors: list[str] = []
        self.cex = None
        self.notes: tuple[str, ...] = ()
        self.queries: dict[int, VerifyQuery] = {}  # sub-queries refined after a rejected model
        self.retry: list[int] = []  # ... waiting to be solved again
        self.proved: dict[int, str] = {}  # sub-query -> the backend that proved it unsat

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def on(self, backend: str) -> "SplitRun":
        """A fresh run of the same sub-queries on another backend (what `nnsmt diff` compares)."""
        run = SplitRun(self.plan, self.query, backend, self.left(), self.jobs, self.stats, self.engine)
        run.cex, run.notes = self.cex, self.notes
        return run

    def subquery(self, sq: SubQuery) -> VerifyQuery:
        if sq.box == ((), ()):  # the whole region: not a bounded box
            return replace(self.query, encoding="bounded")
        return replace(self.query, encoding="bounded", bounds=sq.meta["bounds"], box=sq.box,
                       index=sq.index, of=self.n)

    def take(self):
        """(index, script, timeout, options) of the next sub-query, or None when there is none
        to start: all started, a counterexample found, or the time is up."""
        if self.cex is not None or (self.started >= self.n and not self.retry):
            return None
        left = self.left()
        if left is not None and left <= 0:
            return None
        if self.retry:  # a refined sub-query first: its box is the one a candidate came from
            index = self.retry.pop(0)
            self.outstanding.add(index)
            return index, self.queries[index].compile(), left, self.query.options
        if left is not None:  # a fair share of the workers' time, so one hard sub-box cannot starve the rest
            left = min(left, max(left * self.jobs / (self.n - self.started), 2.0))
        sq = self.plan.subqueries[self.started]
        self.started += 1
        script = sq.script if sq.script is not None else self.subquery(sq).compile()
        self.outstanding.add(sq.index)
        return sq.index, script, left, self.query.options

    def record(self, index: int, res) -> None:
        self.outstanding.discard(index)
        self.log.append((index, res.status, res.reason, res.stats.get("solve_s", 0.0)))
        if self.cex is not None:
            return
        q = self.queries.get(index)
        if q is None and res.status == "sat":
            sq = next((x for x in self.plan.subqueries if x.index == index), None)
            q = self.subquery(sq) if sq is not None and "bounds" in sq.meta else self.query
        q = q or self.query
        if res.status == "unsat" and not q.proves_unsat:  # a search that found nothing
            self.undecided.append(index)
            return
        if res.status == "unsat":
            self.proved[index] = self.backend
        if res.status == "sat":
            try:
                self.cex = q.certify(res.model)
                return
            except ValidationError as e:
                nxt = q.refine(res.model, e)
                if nxt is not None:  # solve the refined sub-query next
                    self.queries[index] = nxt
                    self.retry.append(index)
                    return
                if not q.relaxed:  # an exact query's model must replay: a solver bug
                    self.errors.append(f"sub-query {index}: the model fails the replay: {str(e).splitlines()[0]}")
        elif res.status == "error":
            self.errors.append(f"sub-query {index}: {res.reason}")
        if res.status != "unsat":
            self.undecided.append(index)

    @property
    def done(self) -> bool:
        """Decided, or nothing running and nothing more to start."""
        if self.cex is not None:
            return True
        left = self.left()
        return not self.outstanding and ((self.started >= self.n and not self.retry) or
                                         (left is not None and left <= 0))

    def verdict(self):
        """(status, reason, counterexample, per-query log)."""
        if self.cex is not None:
            return "sat", "", self.cex, self.log
        pending = len(self.undecided) + len(self.outstanding) + (self.n - self.started) + len(self.retry)
        if not pending:
            return "unsat", "", None, self.log
        reason = f"{pending} of {self.n} sub-queries undecided"
        if self.errors:
            return "error", f"{reason} ({self.errors[0]})", None, self.log
        timed_out = (self.deadline is not None and self.left() <= 0) or any(r == "timeout" for _, _, r, _ in self.log)
        return "unknown", reason + (" (timeout)" if timed_out else ""), None, self.log

    def outcome(self) -> Outcome:
        status, reason, cex, log = self.verdict()
        stats = dict(self.stats)
        stats |= {"answered": len(log), "solve_s": round(sum(t for *_, t in log), 4),
                  "total_s": round(time.perf_counter() - self.t0, 4)}
        notes = self.notes + tuple(getattr(cex, "notes", ()) if cex is not None else ())
        if not log and status in ("sat", "unsat"):
            by = self.stats.get("found_by", "bounds")
            if cex is None:
                what = "decided by bounds: every sub-box refuted"
            elif by == "bounds":
                what = "decided by bounds: a candidate they suggested replays"
            else:
                what = f"decided by a candidate from the {by} before splitting, which replays"
            notes += (what + "; no solver ran",)
        return Outcome(status, "verify", self.backend, self.engine, reason, cex, notes, len(log), stats)


def certificate_of(run: "SplitRun", files=()) -> Certificate:
    """The unsat certificate of a finished run: the plan's settled sub-problems and the
    sub-queries a solver proved, as one tree per root box (a sub-problem under a sub-query's
    region, settled before branching was coarsened, is covered by that sub-query and dropped).
    Raises ValueError when the run is not unsat or the pieces do not form a tree."""
    if run.verdict()[0] != "unsat":
        raise ValueError(f"no certificate: the verdict is {run.verdict()[0]}")
    subs = run.plan.subqueries
    if any(sq.box == ((), ()) for sq in subs):  # the whole region in one query
        return Certificate(tuple(files), run.engine, None, Proof("smt", backend=run.proved.get(subs[0].index, run.backend)))
    entries: dict[int, list] = {}
    for root, path, leaf in run.plan.proof:
        entries.setdefault(root, []).append((tuple(path), leaf))
    for sq in subs:
        entries.setdefault(sq.meta["region"], []).append((tuple(sq.meta["path"]), Proof("smt", backend=run.proved[sq.index])))
    trees = []
    for r in range(run.plan.stats.get("roots", len(entries))):
        items = entries.get(r, [])
        paths = {p for p, _ in items}
        # drop what lies under another leaf (its region already covered)
        items = [(p, leaf) for p, leaf in items if not any(p[:i] in paths for i in range(len(p)))]
        tree = tree_from_paths(items)
        slopes = run.plan.tightened[r] if r < len(run.plan.tightened) else None
        if slopes:
            tree = Tighten({v: {n: Slopes(tuple(int(k) for k in rows), tuple(range(a.shape[-1])), a)
                                for n, a in by.items()} for v, (rows, by) in slopes.items()}, tree)
        trees.append(tree)
    return Certificate(tuple(files), run.engine, tuple(trees))


def certifies(query: VerifyQuery):
    """model -> whether the query certifies it (the planners' candidate check)."""
    def check(model) -> bool:
        try:
            query.certify(model)
            return True
        except ValidationError:
            return False
    return check


def start_split(query: VerifyQuery, n: int, backend: str, timeout: float | None = None,
                plan_share: float = 0.8, jobs: int = 1, engine: str | None = None,
                candidates: bool = True, slopes: bool = False) -> SplitRun:
    """Plan the split of the query's property (`plan_split`, candidates certified by the query)
    within `plan_share` of `timeout`, and return the run over what is left, its timeout the rest
    of `timeout` (bounds get most of it: on ACAS Xu they settle thousands of boxes a second,
    an exact leaf query takes 1-2 s). The run is already done when bounds decided the instance (every sub-box
    refuted, or a candidate passed the replay). `run.stats` says what planning did."""
    t0 = time.perf_counter()
    plan = plan_split(query.graph, query.prop, n, validate=certifies(query) if candidates else None, build=False,
                      lemmas=query.lemmas, slopes=slopes,
                      time_budget=None if timeout is None else plan_share * timeout)
    stats = {"plan_s": round(time.perf_counter() - t0, 4), "boxes": plan.boxes_explored,
             "refuted_by_bounds": plan.refuted, "subqueries": len(plan.subqueries)}
    stats |= {k: plan.stats[k] for k in ("attack_s", "bounds_s", "replay_s") if k in plan.stats}
    if plan.exhausted:
        stats["split_stopped"] = plan.exhausted
    left = None if timeout is None else timeout - (time.perf_counter() - t0)
    run = SplitRun(plan, query, backend, left, jobs, stats, engine or f"split({n})")
    run.t0 = t0
    if plan.candidate is not None:
        run.cex = query.certify({f"X_{i}": v for i, v in enumerate(plan.candidate)})
        run.stats["found_by"] = plan.stats.get("found_by", "bounds")
    return run
