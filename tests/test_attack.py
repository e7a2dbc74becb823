"""The attack (nnsmt.attack): its hand-written gradient against finite differences, points in
the unsafe region where one exists, never a claim where none does, and through the split
engine on an ACAS Xu instance whose counterexample random points miss."""

import time
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from nnsmt.attack import Network, attack, margin_of, margins
from nnsmt.interpret import evaluate, evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Mul, Relu, Sigmoid, Sparse
from nnsmt.terms import Cmp, Mul as Mul_, Num, Var
from nnsmt.vnnlib import parse_vnnlib

from conftest import need_shared


def _dag(seed: int) -> Graph:
    """x (3) -> relu(A x + a), sigmoid(B x + b) -> y = C r + D s (sparse) + E x + c: two (three)
    values feed one node."""
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.normal(size=s)
    D = r(2, 4) * (rng.random((2, 4)) < 0.6)
    return Graph((Input("x", 3),
                  Affine("a", "x", Const(r(4, 3)), Const(r(4))), Relu("ra", "a"),
                  Affine("b", "x", Const(r(4, 3)), Const(r(4))), Sigmoid("sb", "b"),
                  Affine("y", "ra", Const(r(2, 4)), Const(r(2)),
                         more=(("sb", Sparse.from_dense(D)), ("x", Const(r(2, 3)))))),
                 ("y",)).check()


@pytest.mark.parametrize("seed", range(5))
def test_backward_matches_finite_differences(seed):
    g = _dag(seed)
    net = Network(g)
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=(6, 3))
    v = rng.normal(size=(6, 2))  # the output's cotangent
    env = net.forward(x)
    for i in range(len(x)):  # the batched forward is the float interpreter's, row by row
        np.testing.assert_allclose(env["y"][i], evaluate(g, {"x": x[i]})["y"], rtol=1e-12, atol=1e-12)
    grad = net.backward(env, v)
    eps = 1e-6
    fd = np.stack([((net.forward(x + eps * e)["y"] - net.forward(x - eps * e)["y"]) * v).sum(1) / (2 * eps)
                   for e in np.eye(3)], 1)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_margin_gradient_through_a_disjunction():
    """The margin (max over a conjunction, min over a disjunction) and its gradient, through
    the network, agree with finite differences."""
    g = _dag(7)
    prop = parse_vnnlib("""(declare-const X_0 Real)(declare-const X_1 Real)(declare-const X_2 Real)
        (declare-const Y_0 Real)(declare-const Y_1 Real)
        (assert (or (and (<= Y_0 Y_1) (>= Y_0 0.5)) (and (<= (+ Y_1 X_2) -1.0) (<= Y_0 2.0))))""")
    net, m = margin_of(g, prop)
    x = np.random.default_rng(3).normal(size=(8, 3))
    env = net.forward(x)
    val, atom, sign = m.value(x, env["y"])
    gy = sign[:, None] * m.Cy[atom]
    gx = sign[:, None] * m.Cx[atom] + net.backward(env, gy)
    eps = 1e-6
    fd = np.stack([(margins(net, m, x + eps * e) - margins(net, m, x - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
    np.testing.assert_allclose(gx, fd, rtol=1e-5, atol=1e-7)


# y = 10 relu(x_0 + x_1 - 1.9) on [0, 1]^2: positive only in the corner x_0 + x_1 > 1.9, at most
# 1 (at (1, 1)); y >= 0.5 exactly where x_0 + x_1 >= 1.95 (a triangle of area 1/800), y >= 1.5
# nowhere. Everywhere else the network is flat (gradient 0).
CORNER = Graph((Input("x", 2), Affine("h", "x", Const([[1.0, 0.0]]), Const([-1.9]),
                                      more=(("x", Const([[0.0, 1.0]])),)),
                Relu("r", "h"), Affine("y", "r", Const([[10.0]]), Const([0.0]))), ("y",)).check()


def _corner_prop(c: str):
    return parse_vnnlib(f"""(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)
        (assert (>= X_0 0.0))(assert (<= X_0 1.0))(assert (>= X_1 0.0))(assert (<= X_1 1.0))
        (assert (>= Y_0 {c}))""")


def _exact_holds(prop, x) -> bool:
    y = evaluate_exact(CORNER, {"x": x})["y"]
    return prop.holds(prop.bind(x, y))


@pytest.mark.parametrize("seed", range(3))
def test_attack_finds_the_corner(seed):
    prop = _corner_prop("0.5")
    pts = attack(CORNER, prop, np.zeros(2), np.ones(2), starts=16, steps=30, seed=seed)
    assert pts and all(np.all(p >= 0) and np.all(p <= 1) for p in pts)
    assert _exact_holds(prop, pts[0])
    assert pts == sorted(pts, key=lambda p: -p.sum())  # best (most violating) first
    # deterministic given the seed
    again = attack(CORNER, prop, np.zeros(2), np.ones(2), starts=16, steps=30, seed=seed)
    assert len(again) == len(pts) and all(np.array_equal(a, b) for a, b in zip(again, pts))


def test_attack_claims_nothing_on_an_unsat_property():
    prop = _corner_prop("1.5")
    pts = attack(CORNER, prop, np.zeros(2), np.ones(2), starts=32, steps=30, seed=0, time_budget=0.5)
    assert len(pts) <= 4  # the best few, for the caller to replay
    assert not any(_exact_holds(prop, p) for p in pts)


def test_attack_declines_what_it_cannot_differentiate():
    g = Graph((Input("x", 2), Mul("y", "x", "x")), ("y",)).check()
    prop = parse_vnnlib("""(declare-const X_0 Real)(declare-const X_1 Real)
        (declare-const Y_0 Real)(declare-const Y_1 Real)(assert (>= Y_0 0.5))""")
    assert attack(g, prop, np.zeros(2), np.ones(2)) == []
    base = _corner_prop("0.5")  # VNN-LIB 1 has no products of outputs; the IR's terms do
    square = Cmp(">=", Mul_((Var("Y_0"), Var("Y_0"))), Num(Fraction(1, 2)))
    nonlinear = replace(base, asserts=base.asserts[:-1] + ((0, square),))
    assert attack(CORNER, nonlinear, np.zeros(2), np.ones(2)) == []


def test_split_engine_finds_acas_1_9_prop_7_by_attack():
    """ACAS Xu 1_9 / prop 7 (sat): 200,000 random points all miss the unsafe region."""
    from nnsmt.engine.verify import VerifyOptions, verify
    from nnsmt.frontends import load_onnx, ort_evaluator
    from nnsmt.vnnlib import load_vnnlib
    folder = need_shared("benchmarks", "acasxu")
    onnx = folder / "ACASXU_run2a_1_9_batch_2000.onnx"
    t = time.perf_counter()
    o = verify(load_onnx(onnx), load_vnnlib(folder / "prop_7.vnnlib"), VerifyOptions(timeout=60, jobs=1),
               ort_evaluator(onnx))
    took = time.perf_counter() - t
    print(f"ACAS Xu 1_9 prop_7: {o.status} in {took:.2f} s, found by {o.stats.get('found_by')}")
    assert o.status == "sat" and o.witness.float_replay == "onnxruntime"
    assert o.stats.get("found_by") == "attack"
