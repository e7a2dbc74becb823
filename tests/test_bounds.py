"""Bounds are sound: sampled points (and sampled parameters) stay inside; linear is tighter."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.bounds import (Interval, box_interval, count_states, down, lin_lower, propagate_bounds,
                          relu_relaxation, relu_states, up)
from nnsmt.interpret import evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sym

from strategies import mlp_graph, mlp_specs


def _box(draw_lo, width):
    lo = np.array(draw_lo)
    return Interval(lo, lo + np.array(width))


@st.composite
def net_and_box(draw):
    layers = draw(mlp_specs(max_in=3, max_hidden=3, max_width=5))
    g = mlp_graph(layers)
    n = layers[0][0].shape[1]
    lo = draw(st.lists(st.floats(-3, 3, width=32), min_size=n, max_size=n))
    w = draw(st.lists(st.floats(0, 2, width=32), min_size=n, max_size=n))
    return g, _box(lo, w)


def _inside(iv: Interval, v) -> bool:
    """Exact containment: every Fraction value lies in [lo, hi]."""
    return all(Fraction(float(l)) <= a <= Fraction(float(h)) for l, a, h in zip(iv.lo, v, iv.hi))


@settings(max_examples=60, deadline=None)
@given(net_and_box(), st.data())
def test_sampled_points_inside_both_methods(nb, data):
    g, box = nb
    bounds = {m: propagate_bounds(g, box, m) for m in ("interval", "linear")}
    corners = [box.lo, box.hi]
    for _ in range(8):
        t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(box.lo), max_size=len(box.lo))))
        corners.append(box.lo + t * (box.hi - box.lo))
    for x in corners:
        x = np.clip(x, box.lo, box.hi)
        env = evaluate_exact(g, {"x": [Fraction(float(v)) for v in x]})  # exact values
        for m, bd in bounds.items():
            for name, iv in bd.items():
                assert _inside(iv, env[name]), (m, name)


@settings(max_examples=40, deadline=None)
@given(net_and_box())
def test_linear_at_least_as_tight_as_interval(nb):
    """Linear bounds are intersected with the intervals, so they can only be tighter."""
    g, box = nb
    a, b = propagate_bounds(g, box, "interval"), propagate_bounds(g, box, "linear")
    for k in a:
        assert np.all(b[k].lo >= a[k].lo) and np.all(b[k].hi <= a[k].hi)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3), st.lists(st.floats(0, 5), min_size=3, max_size=3),
       st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_relu_relaxation_is_sound(l, w, t):
    l = np.array(l)
    u = l + np.array(w)
    alpha, s, tt = relu_relaxation(l, u)
    y = l + np.array(t) * (u - l)
    r = np.maximum(y, 0)
    for i in range(3):  # exact check of alpha*y <= relu(y) <= s*y + t
        yi, ri = Fraction(float(y[i])), Fraction(float(r[i]))
        assert Fraction(float(alpha[i])) * yi <= ri <= Fraction(float(s[i])) * yi + Fraction(float(tt[i]))


def test_outward_rounding_of_rationals():
    q = Fraction(1, 10)
    assert Fraction(down(q)) <= q <= Fraction(up(q)) and down(q) < up(q)
    assert down(Fraction(1, 2)) == up(Fraction(1, 2)) == 0.5
    # the rounding error of a sum is covered: 0.1 + 0.2 summed in float is not 0.3
    A = np.array([[1.0, 1.0]])
    box = Interval(np.array([0.1, 0.2]), np.array([0.1, 0.2]))
    lo = lin_lower(A, box)[0]
    assert Fraction(lo) <= Fraction(0.1) + Fraction(0.2)


def test_hand_derived_stability():
    """y = relu(x - 2) on x in [0, 1] is stably inactive; relu(x + 1) stably active;
    relu(x - 0.5) unstable."""
    g = Graph((Input("x", 1), Affine("a", "x", Const(np.array([[1.0], [1.0], [1.0]])),
                                     Const(np.array([-2.0, 1.0, -0.5]))), Relu("h", "a")), ("h",)).check()
    bd = propagate_bounds(g, box_interval([0], [1]))
    assert list(relu_states(g, bd)["h"]) == [-1, 1, 0]
    assert count_states(relu_states(g, bd)) == {"active": 1, "inactive": 1, "unstable": 1, "total": 3}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_symbolic_parameters_with_boxes(data):
    """Sampled weights within their boxes and sampled inputs stay inside the interval bounds."""
    w0 = np.array(data.draw(st.lists(st.floats(-2, 2, width=32), min_size=4, max_size=4))).reshape(2, 2)
    d = data.draw(st.floats(0, 0.5, width=32))
    g = Graph((Input("x", 2), Affine("a", "x", Sym("w", (2, 2), w0 - d, w0 + d, w0), Const(np.zeros(2))),
               Relu("h", "a"), Affine("y", "h", Const(np.array([[1.0, -1.0]])), Sym("c", (1,), -1, 1))),
              ("y",)).check()
    box = box_interval([-1, -1], [1, 1])
    bd = propagate_bounds(g, box, "linear")
    for _ in range(5):
        t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=4, max_size=4))).reshape(2, 2)
        w = (w0 - d) + t * 2 * d
        c = np.array([data.draw(st.floats(-1, 1))])
        x = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=2, max_size=2)))
        env = evaluate_exact(g, {"x": list(x)}, params={"w": w, "c": c})
        for name, iv in bd.items():
            assert _inside(iv, env[name]), name


def test_unboxed_symbolic_parameter_is_unbounded():
    g = Graph((Input("x", 1), Affine("a", "x", Sym("w", (1, 1)), Const(np.zeros(1)))), ("a",)).check()
    bd = propagate_bounds(g, box_interval([1], [2]))
    assert bd["a"].lo[0] == -np.inf and bd["a"].hi[0] == np.inf


def test_batched_bounds_match_single():
    from nnsmt.frontends import load_onnx
    from conftest import EXAMPLES
    g = load_onnx(EXAMPLES / "classifier.onnx")
    boxes = [box_interval([-1, -1], [0, 0]), box_interval([0, -1], [1, 1])]
    batch = Interval(np.stack([b.lo for b in boxes]), np.stack([b.hi for b in boxes]))
    bb = propagate_bounds(g, batch)
    for i, b in enumerate(boxes):
        single = propagate_bounds(g, b)
        for k in single:
            assert np.allclose(single[k].lo, bb[k].lo[i]) and np.allclose(single[k].hi, bb[k].hi[i])


def test_unknown_method_and_ambiguous_box_are_nnsmt_errors():
    from nnsmt.errors import UnsupportedError
    g = Graph((Input("x", 1), Input("y", 1), Relu("r", "x")), ("r",), {"source": "two.json"}).check()
    with pytest.raises(UnsupportedError, match="unknown bound method 'exact'"):
        propagate_bounds(g, None, "exact")
    with pytest.raises(UnsupportedError, match="two.json: one input box for 2 inputs"):
        propagate_bounds(g, box_interval([0], [1]))
    assert propagate_bounds(g, {"x": box_interval([-1], [1]), "y": box_interval([0], [0])})["r"].hi[0] == 1
