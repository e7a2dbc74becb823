"""The triangle-relaxation LP (`nnsmt.lp`), a steer for counterexample search: its minimiser
lies in the box; with every ReLU fixed by phases it is the exact minimum over the region the
phases cut out (checked against sampled points of that region); and the descent from its
minimiser finds MNIST-FC's prop_0 eps 0.05 counterexample."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.bounds import box_interval, infeasible, propagate_bounds
from nnsmt.lp import relaxed_minimiser

from helpers import float_values
from test_bab import mlp


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5))
def test_minimiser_with_all_phases_fixed_is_the_region_minimum(seed, n_in, w1, w2):
    rng = np.random.default_rng(seed)
    g = mlp(rng, [n_in, w1, w2, 2])
    lo, hi = -rng.uniform(0.2, 2, n_in), rng.uniform(0.2, 2, n_in)
    X = np.vstack([rng.uniform(lo, hi, size=(4000, n_in)), np.where(rng.random((200, n_in)) < 0.5, lo, hi)])
    v = float_values(g, X)
    # the phases of a sampled point: a nonempty region
    phases = {"r1": np.where(v["a1"][0] >= 0, 1, -1).astype(np.int8),
              "r2": np.where(v["a2"][0] >= 0, 1, -1).astype(np.int8)}
    b = propagate_bounds(g, box_interval(lo.tolist(), hi.tolist()), phases=phases)
    assert not infeasible(b)
    c = rng.normal(size=2)
    x = relaxed_minimiser(g, lo, hi, b, c, phases)
    assert x is not None and np.all(lo <= x) and np.all(x <= hi)
    keep = np.all(np.where(phases["r1"] > 0, v["a1"] >= 0, v["a1"] <= 0), axis=1) & \
        np.all(np.where(phases["r2"] > 0, v["a2"] >= 0, v["a2"] <= 0), axis=1)
    y = float_values(g, x[None])["a3"][0]
    tol = 1e-6 * (1 + np.abs(v["a3"][keep] @ c).max())
    assert c @ y <= (v["a3"][keep] @ c).min() + tol  # no sampled point of the region is lower


def test_minimiser_of_the_relaxation_is_a_box_point():
    rng = np.random.default_rng(1)
    g = mlp(rng, [3, 6, 6, 2])
    lo, hi = -np.ones(3), np.ones(3)
    b = propagate_bounds(g, box_interval(lo.tolist(), hi.tolist()))
    x = relaxed_minimiser(g, lo, hi, b, np.array([1.0, -1.0]))
    assert x is not None and x.shape == (3,) and np.all(lo <= x) and np.all(x <= hi)


def test_lp_seeded_descent_finds_the_mnist_counterexample():
    """(The plain attack's best margin there is 0.97 after 10 s: see LP_AFTER_S in bab.py.)"""
    from conftest import need_shared
    mnist = need_shared("benchmarks", "mnistfc")
    from nnsmt.attack import margin_of, margins, refine
    from nnsmt.frontends import load_onnx
    from nnsmt.vnnlib import load_vnnlib
    g = load_onnx(mnist / "mnist-net_256x2.onnx")
    p = load_vnnlib(mnist / "prop_0_0.05.vnnlib")
    (lo, hi), = p.input_boxes()
    lo, hi = np.array([float(v) for v in lo]), np.array([float(v) for v in hi])
    net, mg = margin_of(g, p)
    b = propagate_bounds(g, box_interval(lo, hi))
    c = np.zeros(10)
    c[8], c[9] = 1.0, -1.0  # min Y_8 - Y_9: the atom Y_9 >= Y_8
    x = relaxed_minimiser(g, lo, hi, b, c)
    got = refine(g, p, lo, hi, x[None])
    assert got and margins(net, mg, np.array(got[:1]))[0] <= 0
