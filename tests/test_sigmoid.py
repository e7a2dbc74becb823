"""Sigmoid: certified enclosures, monotone rewriting thresholds, the sound pwl relaxation,
the exact exp encoding, and enclosure replay of sigmoid networks."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.encode import encode_graph
from nnsmt.errors import UnsupportedError
from nnsmt.interpret import evaluate, evaluate_enclosure, evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Sigmoid
from nnsmt.sigmoid import exp_bounds, logit_bounds, pwl_segments, sigmoid_bounds
from nnsmt.terms import ScriptBuilder

from strategies import mlp_graph, mlp_specs, points

rationals = st.fractions(min_value=-60, max_value=60, max_denominator=10**6)


@settings(deadline=None)
@given(rationals)
def test_exp_bounds_are_consistent_and_tight(q):
    lo, hi = exp_bounds(q)
    assert 0 < lo <= hi
    # exp(q) * exp(-q) = 1 exactly: the product of the enclosures must contain 1
    nlo, nhi = exp_bounds(-q)
    assert lo * nlo <= 1 <= hi * nhi
    assert (hi - lo) / lo < Fraction(1, 2**80)
    f = math.exp(float(q))
    assert abs(float(lo) - f) <= 4e-15 * f  # agrees with libm to a few ulps


def test_exp_bounds_known_values():
    assert exp_bounds(0) == (1, 1)
    lo, hi = exp_bounds(1)
    assert lo < Fraction("2.718281828459045235360287471352662497757") < hi
    lo, hi = exp_bounds(-5000)  # far out: a crude but certified bound
    assert 0 <= lo < hi < Fraction(1, 2**4999)


@settings(deadline=None)
@given(rationals)
def test_sigmoid_bounds_symmetry(q):
    lo, hi = sigmoid_bounds(q)
    nlo, nhi = sigmoid_bounds(-q)
    # sigmoid(-q) = 1 - sigmoid(q)
    assert 1 - hi <= nhi and nlo <= 1 - lo
    assert lo <= hi and 0 < lo and hi < 1 or q > 36 or q < -36


@settings(deadline=None)
@given(st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(999, 1000), max_denominator=1000))
def test_logit_bounds_bracket_the_threshold(t):
    lo, hi = logit_bounds(t)
    if t == Fraction(1, 2):
        assert lo == hi == 0
        return
    assert sigmoid_bounds(lo)[1] < t < sigmoid_bounds(hi)[0]
    assert hi - lo < Fraction(1, 2**46) * max(1, abs(lo))


@settings(max_examples=25, deadline=None)
@given(st.floats(-12, 12), st.floats(0.01, 10), st.integers(1, 12), st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_pwl_segments_bound_the_sigmoid(a, width, pieces, ts):
    segs = pwl_segments(a, a + width, pieces)
    assert segs[0][0] == Fraction(a) and segs[-1][1] == Fraction(a + width)
    for (_, b1, _, _), (a2, _, _, _) in zip(segs, segs[1:]):
        assert b1 == a2  # contiguous
    for sa, sb, (kl, cl), (ku, cu) in segs:
        for t in ts:
            x = sa + (sb - sa) * Fraction(t)
            slo, shi = sigmoid_bounds(x)
            assert kl * x + cl <= shi and ku * x + cu >= slo
            # and not absurdly loose: the gap is the chord error of the segment (h^2/80) plus rounding
            assert (ku - kl) * x + (cu - cl) <= (sb - sa) ** 2 / 80 + Fraction(1, 2**26) * max(1, abs(sb))


def _sig_net():
    return Graph((Input("x", 2), Affine("a", "x", Const(np.array([[1.5, -2.0], [0.25, 1.0]])), Const(np.array([0.5, -1.0]))),
                  Sigmoid("s", "a"), Affine("o", "s", Const(np.array([[2.0, -3.0]])), Const(np.array([0.125]))),
                  Sigmoid("y", "o")), ("y",)).check()


@settings(deadline=None)
@given(points(2))
def test_enclosure_contains_the_float_value(x):
    g = _sig_net()
    enc = evaluate_enclosure(g, {"x": x})["y"]
    f = evaluate(g, {"x": x})["y"]
    assert enc[0][0] <= enc[1][0]
    assert float(enc[0][0]) - 1e-12 <= f[0] <= float(enc[1][0]) + 1e-12
    assert enc[1][0] - enc[0][0] < Fraction(1, 2**60)


@settings(max_examples=30, deadline=None)
@given(mlp_specs(), st.data())
def test_enclosure_is_exact_without_sigmoid(layers, data):
    g = mlp_graph(layers)
    x = data.draw(points(g.inputs[0].dim))
    enc = evaluate_enclosure(g, {"x": x})
    ex = evaluate_exact(g, {"x": x})
    for k in ex:
        assert list(enc[k][0]) == list(ex[k]) == list(enc[k][1])


def test_exact_domain_points_to_the_enclosure():
    with pytest.raises(UnsupportedError, match="evaluate_enclosure"):
        evaluate_exact(_sig_net(), {"x": [0, 0]})


def test_encodings_exp_and_pwl():
    g = _sig_net()
    b = ScriptBuilder()
    encode_graph(g, b)  # default: exact exp
    s = b.build()
    assert "exp" in s.features and s.logic == "QF_NRAT"
    b = ScriptBuilder()
    with pytest.raises(UnsupportedError, match="finite bounds"):
        encode_graph(g, b, sigmoid="pwl")
    from nnsmt.bounds import box_interval, propagate_bounds
    bounds = propagate_bounds(g, box_interval([-1, -1], [1, 1]), "interval")
    b = ScriptBuilder()
    encode_graph(g, b, sigmoid="pwl:4", sigmoid_bounds=bounds)
    s = b.build()
    assert "exp" not in s.features and s.logic == "QF_LRA"
    assert {n for n, _ in s.asserts} >= {"pwl_s_0", "pwl_s_1", "pwl_y_0"}
    with pytest.raises(UnsupportedError, match="unknown sigmoid encoding"):
        encode_graph(g, ScriptBuilder(), sigmoid="taylor")


def test_pwl_relaxation_contains_the_network(backend):
    """Fix the input: the relaxation must admit the true output (sat) and exclude values the
    enclosure rules out by more than the relaxation's gap (unsat)."""
    from nnsmt.bounds import box_interval, propagate_bounds
    from nnsmt.terms import Cmp, Num, Var
    g = _sig_net()
    x = [Fraction(1, 3), Fraction(-1, 2)]
    y = evaluate_enclosure(g, {"x": x})["y"]
    bounds = propagate_bounds(g, box_interval([-1, -1], [1, 1]), "interval")
    for op, val, want in (("=", None, "sat"), (">", y[1][0] + Fraction(1, 20), "unsat"),
                          ("<", y[0][0] - Fraction(1, 20), "unsat")):
        b = ScriptBuilder()
        encode_graph(g, b, sigmoid="pwl:16", sigmoid_bounds=bounds)
        b.assert_("x0", Cmp("=", Var("x_0"), Num(x[0])))
        b.assert_("x1", Cmp("=", Var("x_1"), Num(x[1])))
        if val is not None:
            b.assert_("claim", Cmp(op, Var("y_0"), Num(val)))
        assert backend.solve(b.build(), timeout=30).status == want
