"""Branch and bound on ReLU phases (`nnsmt.queries.bab`) and phased bounds
(`nnsmt.bounds`, `phases=`): phased bounds hold on every sampled point that satisfies the
phases, infeasibility is claimed only when no point does; BaB verdicts equal the plain exact
encoding's on small random networks (sat and unsat, through bounds alone and through exact
leaf queries); a sat is a validated witness; MNIST-FC never answers against known.csv."""

from __future__ import annotations

import csv
import functools
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.backends.executors import InlineExecutor
from nnsmt.bounds import Interval, box_interval, infeasible, output_spec_bounds, propagate_bounds
from nnsmt.engine.driver import drive
from nnsmt.engine.verify import VerifyOptions, verify
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid
from nnsmt.queries.bab import BabRun, leaf_script, plan_bab
from nnsmt.queries.verify import VerifyQuery
from nnsmt.terms import variables
from nnsmt.vnnlib import parse_vnnlib

from conftest import need_shared, solver_backend
from helpers import float_values


def mlp(rng, sizes) -> Graph:
    nodes, x = [Input("x", sizes[0])], "x"
    for i, (m, n) in enumerate(zip(sizes, sizes[1:]), 1):
        nodes.append(Affine(f"a{i}", x, Const(rng.normal(size=(n, m)) / np.sqrt(m)),
                            Const(rng.normal(size=n) * 0.3)))
        x = f"a{i}"
        if i < len(sizes) - 1:
            nodes.append(Relu(f"r{i}", x))
            x = f"r{i}"
    return Graph(tuple(nodes), (x,)).check()


def prop(n_in, n_out, eps, thr):
    """Unsafe: Y_1 >= Y_0 or Y_2 >= Y_0 + thr, over the box [-eps, eps]^n_in."""
    t = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in))
    t += "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_out))
    t += "".join(f"(assert (>= X_{i} {-eps}))\n(assert (<= X_{i} {eps}))\n" for i in range(n_in))
    t += f"(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 (+ Y_0 {thr})))))\n"
    return parse_vnnlib(t)


# ------------------------------------------------------------------------------------------
# phased bounds

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5),
       st.lists(st.integers(-1, 1), min_size=10, max_size=10), st.integers(0, 8),
       st.sampled_from([0.0, 0.05, 1.0]))
def test_phased_bounds_hold_on_points_satisfying_the_phases(seed, n_in, w1, w2, ph, alpha, beta_lr):
    """With `beta_lr`, the split constraints' multipliers (β-CROWN) are optimised too: still
    sound on the points that satisfy the phases (and only there)."""
    rng = np.random.default_rng(seed)
    g = mlp(rng, [n_in, w1, w2, 2])
    lo, hi = -rng.uniform(0.2, 2, n_in), rng.uniform(0.2, 2, n_in)
    box = box_interval(lo.tolist(), hi.tolist())
    phases = {"r1": np.array(ph[:w1], dtype=np.int8), "r2": np.array(ph[5:5 + w2], dtype=np.int8)}
    X = np.vstack([rng.uniform(lo, hi, size=(3000, n_in)),
                   np.where(rng.random((200, n_in)) < 0.5, lo, hi)])
    v = float_values(g, X)
    keep = np.ones(len(X), dtype=bool)
    for r, a in (("r1", "a1"), ("r2", "a2")):
        p = phases[r]
        keep &= np.all(np.where(p > 0, v[a] >= 0, np.where(p < 0, v[a] <= 0, True)), axis=-1)
    b = propagate_bounds(g, box, phases=phases)
    C = np.array([[1.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])
    B = Interval(box.lo[None], box.hi[None])
    # a warm start anywhere (out-of-range and NaN entries included) is sound too
    init = {}
    for r, w in (("r1", w1), ("r2", w2)):
        init[r] = np.where(rng.random((1, 3, w)) < 0.2, np.nan, rng.uniform(-0.5, 1.5, (1, 3, w)))
        init["__beta__" + r] = np.where(rng.random((1, 3, w)) < 0.2, np.nan, rng.uniform(-1, 3, (1, 3, w)))
    low, _, bb = output_spec_bounds(g, B, C, alpha_steps=alpha, phases={k: p[None] for k, p in phases.items()},
                                    beta_lr=beta_lr, alphas_init=init if seed % 2 else None)
    empty, empty_spec = bool(infeasible(b)), bool(np.asarray(infeasible(bb))[0])
    if empty or empty_spec:
        assert not keep.any(), "phases reported infeasible, yet a sampled point satisfies them"
        if empty_spec:
            assert np.all(low == np.inf)
        return
    Xk = {k: x[keep] for k, x in v.items()}
    for name, iv in b.items():
        assert np.all(iv.lo - 1e-9 <= Xk[name]) and np.all(Xk[name] <= iv.hi + 1e-9), name
    assert np.all(low[0] <= (Xk["a3"] @ C.T).min(0, initial=np.inf) + 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5),
       st.lists(st.integers(-1, 1), min_size=10, max_size=10), st.floats(0, 50))
def test_any_nonnegative_beta_is_sound(seed, n_in, w1, w2, ph, scale):
    """The β term alone, with arbitrary multipliers >= 0 (no optimiser): the back-substituted
    bound holds on every sampled point that satisfies the phases."""
    from nnsmt.bounds import _domain
    rng = np.random.default_rng(seed)
    g = mlp(rng, [n_in, w1, w2, 2])
    lo, hi = -rng.uniform(0.2, 2, n_in), rng.uniform(0.2, 2, n_in)
    phases = {"r1": np.array(ph[:w1], dtype=np.int8)[None], "r2": np.array(ph[5:5 + w2], dtype=np.int8)[None]}
    C = np.array([[1.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])
    dom = _domain(g, Interval(lo[None], hi[None]), "linear", frozenset(["a3"]), phases)
    if np.any(infeasible(dom.bounds)):
        return
    betas = {r: scale * rng.random((1, len(C), p.shape[-1])) for r, p in phases.items()}
    low, _ = dom.backsub("a3", C, betas=betas)
    X = np.vstack([rng.uniform(lo, hi, size=(3000, n_in)), np.where(rng.random((200, n_in)) < 0.5, lo, hi)])
    v = float_values(g, X)
    keep = np.ones(len(X), dtype=bool)
    for r, a in (("r1", "a1"), ("r2", "a2")):
        p = phases[r][0]
        keep &= np.all(np.where(p > 0, v[a] >= 0, np.where(p < 0, v[a] <= 0, True)), axis=-1)
    assert np.all(low[0] <= (v["a3"][keep] @ C.T).min(0, initial=np.inf) + 1e-9)


def test_beta_uses_a_split_the_clamped_interval_cannot():
    """a1 = x0 - x1, r1 = relu(a1), out = x1 - x0 + 0 * r1 over [0, 1]^2. With r1 fixed active
    (a1 >= 0, i.e. x0 >= x1) the true minimum of -out = x0 - x1 is 0; the clamped interval of
    a1 says nothing about -out, whose plain bound is min(x0 - x1) = -1. With the multiplier of
    a1 >= 0 at 1 the form becomes (x0 - x1) - (x0 - x1) = 0: the bound 0 (up to rounding)."""
    g = Graph((Input("x", 2), Affine("a1", "x", Const(np.array([[1.0, -1.0]])), Const(np.array([0.0]))),
               Relu("r1", "a1"),
               Affine("out", "r1", Const(np.array([[0.0]])), Const(np.array([0.0])),
                      more=(("x", Const(np.array([[-1.0, 1.0]]))),))), ("out",)).check()
    B = Interval(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]]))
    ph = {"r1": np.array([[1]], np.int8)}
    plain, _, _ = output_spec_bounds(g, B, np.array([[-1.0]]), alpha_steps=20, phases=ph)
    beta, _, _ = output_spec_bounds(g, B, np.array([[-1.0]]), alpha_steps=20, phases=ph, beta_lr=0.2)
    assert plain[0, 0] == pytest.approx(-1.0)
    assert beta[0, 0] <= 0.0 and beta[0, 0] == pytest.approx(0.0, abs=1e-6)  # sound, and tight


def test_phases_none_unchanged_and_free_phases_unchanged():
    g = mlp(np.random.default_rng(3), [3, 6, 6, 2])
    box = box_interval([-1] * 3, [1] * 3)
    plain = propagate_bounds(g, box)
    for phases in (None, {"r1": np.zeros(6, dtype=np.int8), "r2": np.zeros(6, dtype=np.int8)}):
        b = propagate_bounds(g, box, phases=phases)
        for k in plain:
            assert np.array_equal(plain[k].lo, b[k].lo) and np.array_equal(plain[k].hi, b[k].hi)


def test_hand_made_infeasible_phases_detected():
    """a1 = x; a2 = relu(a1) - x - 0.1: with r1 active a2 = -0.1 < 0, so (r1 +1, r2 +1) is
    empty; (r1 -1, r2 +1) is not (x <= -0.1). A phase against a sign the box fixes is empty."""
    g = Graph((Input("x", 1), Affine("a1", "x", Const(np.array([[1.0]])), Const(np.array([0.0]))),
               Relu("r1", "a1"),
               Affine("a2", "r1", Const(np.array([[1.0]])), Const(np.array([-0.1])),
                      more=(("x", Const(np.array([[-1.0]]))),)),
               Relu("r2", "a2"), Affine("out", "r2", Const(np.array([[1.0]])), Const(np.array([0.0])))),
              ("out",)).check()
    box = box_interval([-1], [1])
    one = lambda s: np.array([s], dtype=np.int8)  # noqa: E731
    assert infeasible(propagate_bounds(g, box, phases={"r1": one(1), "r2": one(1)}))
    assert not infeasible(propagate_bounds(g, box, phases={"r1": one(-1), "r2": one(1)}))
    assert not infeasible(propagate_bounds(g, box, phases={"r1": one(1), "r2": one(-1)}))
    box2 = box_interval([0.5], [1])  # a1 > 0 on this box: inactive is empty
    assert infeasible(propagate_bounds(g, box2, phases={"r1": one(-1)}))
    # batched through output_spec_bounds: the empty element's bound is +inf, the other's finite
    B = Interval(np.array([[-1.0], [-1.0]]), np.array([[1.0], [1.0]]))
    low, _, _ = output_spec_bounds(g, B, np.array([[1.0]]), phases={"r1": np.array([[1], [-1]], np.int8),
                                                                  "r2": np.array([[1], [1]], np.int8)})
    assert low[0, 0] == np.inf and np.isfinite(low[1, 0])


# ------------------------------------------------------------------------------------------
# BaB verdicts

# (seed, sizes, eps, thr) -> the plain encoding's answer on Z3 (sat: 0/5/7 3-6-6-3; unsat: 1, 7
# by bounds, 3 through exact leaves; the 4-8-8-3 one branches ~2000 sub-problems deep)
CASES = [(0, (3, 6, 6, 3), 0.3, 0.0), (5, (3, 6, 6, 3), 0.6, 0.5), (7, (3, 6, 6, 3), 1.0, 1.0),
         (1, (3, 6, 6, 3), 0.3, 0.0), (3, (3, 6, 6, 3), 1.0, 1.0), (7, (3, 6, 6, 3), 0.6, 0.5)]
DEEP = (0, (4, 8, 8, 3), 0.5, 0.5)


@functools.cache
def instance(seed, sizes, eps, thr):
    g = mlp(np.random.default_rng(seed), list(sizes))
    p = prop(sizes[0], sizes[-1], eps, thr)
    exact = verify(g, p, VerifyOptions(engine="plain", backend="z3", timeout=60, jobs=1))
    assert exact.status in ("sat", "unsat")
    return g, p, exact.status


@pytest.mark.parametrize("case", CASES + [DEEP])
def test_bab_equals_plain_z3(case):
    solver_backend("z3")
    g, p, exact = instance(*case)
    o = verify(g, p, VerifyOptions(engine="bab", backend="z3", timeout=60, jobs=1))
    assert o.status == exact, (o.reason, o.stats)
    assert o.notes[0].startswith("engine bab(")
    if o.status == "sat":
        assert o.witness is not None  # certified by the query (exact replay)


@pytest.mark.parametrize("case", CASES)
def test_bab_leaves_alone_equal_plain(case):
    """Few nodes and no candidates: the exact leaf queries (phases asserted) decide; unsat only
    when every leaf is unsat, and a leaf's sat is a model that replays (no error)."""
    solver_backend("z3")
    g, p, exact = instance(*case)
    plan = plan_bab(g, p, 4, validate=None, max_nodes=5, build=False, samples=0, attack_budget=0)
    assert plan.candidate is None and len(plan.subqueries) <= 4
    run = BabRun(plan, VerifyQuery(g, p), "z3", 60, 1)
    [(_, o)] = list(drive([run], InlineExecutor()))
    assert o.status == exact, (o.reason, plan.stats)
    if o.status == "sat":
        assert o.witness is not None and len(o.witness.x) == g.inputs[0].dim


def test_leaf_script_asserts_its_phases_on_named_preactivations():
    g = mlp(np.random.default_rng(0), [4, 8, 8, 3])
    p = prop(4, 3, 0.5, 0.5)
    box = ((F(-1, 2),) * 4, (F(1, 2),) * 4)
    path = ((0, 1), (9, -1))  # a1_0 >= 0, a2_1 <= 0
    s = leaf_script(g, p, box, path)
    [(_, t)] = [(n, t) for n, t in s.asserts if n == "bab_phases"]
    assert variables(t) == {"a1_0", "a2_1"}
    assert {"a1_0", "a2_1"} <= {n for n, _ in s.defs} | set(s.decls)  # names the encoder defines
    assert any(n == "split_box" for n, _ in s.asserts)


def test_bab_falls_back_to_split_off_relu_networks():
    rng = np.random.default_rng(0)
    g = Graph((Input("x", 2), Affine("a", "x", Const(rng.normal(size=(3, 2))), Const(np.zeros(3))),
               Sigmoid("s", "a")), ("s",)).check()
    plan = plan_bab(g, prop(2, 3, 0.5, 0.5), 4, build=False, samples=0, attack_budget=0)
    assert "fallback" in plan.stats


def test_mnistfc_bab_never_against_known():
    folder = need_shared("benchmarks", "mnistfc")
    solver_backend("z3")
    from nnsmt.frontends import load_onnx, ort_evaluator
    from nnsmt.vnnlib import load_vnnlib
    known = {}
    if (folder / "known.csv").exists():
        known = {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(open(folder / "known.csv"))}
    net, vnn = "mnist-net_256x2.onnx", "prop_0_0.03.vnnlib"
    g, p = load_onnx(folder / net), load_vnnlib(folder / vnn)
    o = verify(g, p, VerifyOptions(engine="bab", backend="z3", timeout=20, jobs=1), ort_evaluator(folder / net))
    assert o.status in ("sat", "unsat", "unknown"), o.reason
    if (net, vnn) in known and o.status in ("sat", "unsat"):
        assert o.status == known[(net, vnn)]


@pytest.mark.parametrize("score", ["babsr", "intercept"])
def test_branching_scores_reach_the_same_verdict(score):
    solver_backend("z3")
    g, p, exact = instance(*CASES[4])  # unsat, needs branching
    plan = plan_bab(g, p, 8, validate=None, build=False, samples=0, attack_budget=0, score=score,
                    max_nodes=200)
    run = BabRun(plan, VerifyQuery(g, p), "z3", 60, 1)
    [(_, o)] = list(drive([run], InlineExecutor()))
    assert o.status == exact == "unsat", (o.reason, plan.stats)
    with pytest.raises(Exception):
        plan_bab(g, p, 8, score="nope")
