"""Optimised ReLU lower slopes (α-CROWN style) in `output_spec_bounds(..., alpha_steps=N)`:
sound on sampled points, never below the plain bound, better on a net with unstable ReLUs,
batch-independent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.bounds import Interval, _domain, _relaxed_point, box_interval, output_spec_bounds
from nnsmt.ir import Affine, Const, Graph, Input, Relu

from helpers import float_values
from strategies import mlp_graph, mlp_specs


def _affine(rng, name, ins, n):
    """An affine node over inputs [(value, width), ...] with random weights (several terms: a
    DAG join)."""
    (x, m), more = ins[0], ins[1:]
    return Affine(name, x, Const(rng.normal(size=(n, m)) / np.sqrt(m)), Const(rng.normal(size=n) * 0.3),
                  more=tuple((v, Const(rng.normal(size=(n, k)) / np.sqrt(k))) for v, k in more))


def dag_graph(rng, n_in, w1, w2, n_out) -> Graph:
    """x -> a1 -> r1; x -> a2 -> r2; a3 = W r1 + V r2 + U x + b -> r3; out = P r3 + Q r1 + c."""
    nodes = [Input("x", n_in),
             _affine(rng, "a1", [("x", n_in)], w1), Relu("r1", "a1"),
             _affine(rng, "a2", [("x", n_in)], w2), Relu("r2", "a2"),
             _affine(rng, "a3", [("r1", w1), ("r2", w2), ("x", n_in)], w2), Relu("r3", "a3"),
             _affine(rng, "out", [("r3", w2), ("r1", w1)], n_out)]
    return Graph(tuple(nodes), ("out",)).check()


def mlp(rng, sizes) -> Graph:
    nodes, x = [Input("x", sizes[0])], "x"
    for i, (m, n) in enumerate(zip(sizes, sizes[1:]), 1):
        nodes.append(_affine(rng, f"a{i}", [(x, m)], n))
        x = f"a{i}"
        if i < len(sizes) - 1:
            nodes.append(Relu(f"r{i}", x))
            x = f"r{i}"
    return Graph(tuple(nodes), (x,)).check()


def forward(g: Graph, X: np.ndarray) -> np.ndarray:
    """float64 values of the output at points X (N, n) (Affine/Relu graphs)."""
    return float_values(g, X)[g.outputs[0]]


def samples(rng, lo, hi, n=400):
    """Uniform points and random vertices of the box (where linear bounds are tight)."""
    u = rng.uniform(size=(n, len(lo)))
    corners = rng.integers(0, 2, size=(n, len(lo)))
    return np.vstack([lo + u * (hi - lo), np.where(corners, hi, lo), [lo, hi]])


def check_sound(g: Graph, rng, steps=15):
    n = g.inputs[0].dim
    out = g.dims()[g.outputs[0]]
    c = rng.uniform(-2, 2, size=n)
    r = rng.uniform(0.05, 1.5, size=n)
    lo, hi = c - r, c + r
    C = rng.normal(size=(int(rng.integers(1, 5)), out))
    plain, _, _ = output_spec_bounds(g, box_interval(lo, hi), C)
    opt, coeff, _ = output_spec_bounds(g, box_interval(lo, hi), C, alpha_steps=steps)
    assert opt.shape == plain.shape and coeff.shape == (len(C), n)
    assert np.all(opt >= plain)
    y = forward(g, samples(rng, lo, hi)) @ C.T
    margin = 1e-9 * (1 + np.abs(y))
    assert np.all(y + margin >= opt), (y.min(0), opt)


@settings(max_examples=40, deadline=None)
@given(mlp_specs(max_in=3, max_hidden=2, max_width=6, max_out=3), st.integers(0, 2 ** 32 - 1))
def test_optimised_bounds_sound_on_random_mlps(layers, seed):
    check_sound(mlp_graph(layers), np.random.default_rng(seed))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3),
       st.integers(0, 2 ** 32 - 1))
def test_optimised_bounds_sound_on_random_dags(n_in, w1, w2, n_out, seed):
    rng = np.random.default_rng(seed)
    check_sound(dag_graph(rng, n_in, w1, w2, n_out), rng)


def test_optimised_bounds_improve_on_unstable_net():
    rng = np.random.default_rng(0)
    g = mlp(rng, [5, 30, 30, 4])
    box = box_interval([-1] * 5, [1] * 5)
    C = rng.normal(size=(6, 4))
    dom = _domain(g, box, "linear", frozenset(["a3"]))
    unstable = sum(int(((dom.bounds[a].lo < 0) & (dom.bounds[a].hi > 0)).sum()) for a in ("a1", "a2"))
    assert unstable >= 20
    plain, _, _ = output_spec_bounds(g, box, C)
    opt, _, _ = output_spec_bounds(g, box, C, alpha_steps=20)
    assert np.all(opt >= plain)
    assert np.all(opt > plain + 0.1)  # observed: 0.9 .. 2.8 better on every row at this seed
    X = samples(rng, box.lo, box.hi, 2000)
    assert np.all(forward(g, X) @ C.T >= opt - 1e-9)


def test_optimised_bounds_improve_on_dag():
    rng = np.random.default_rng(3)
    g = dag_graph(rng, 4, 12, 12, 3)
    box = box_interval([-1] * 4, [1] * 4)
    C = rng.normal(size=(4, 3))
    plain, _, _ = output_spec_bounds(g, box, C)
    opt, _, _ = output_spec_bounds(g, box, C, alpha_steps=20)
    assert np.all(opt >= plain) and np.any(opt > plain + 1e-3)


def test_zero_steps_is_the_plain_bound():
    rng = np.random.default_rng(1)
    g = mlp(rng, [3, 8, 8, 2])
    box = box_interval([-1] * 3, [1] * 3)
    C = rng.normal(size=(3, 2))
    a = output_spec_bounds(g, box, C)
    b = output_spec_bounds(g, box, C, alpha_steps=0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_batched_boxes_match_single():
    rng = np.random.default_rng(2)
    g = mlp(rng, [4, 16, 16, 3])
    C = rng.normal(size=(5, 3))
    centres = rng.uniform(-1, 1, size=(4, 4))
    radii = rng.uniform(0.2, 1.0, size=(4, 4))
    batch = Interval(centres - radii, centres + radii)
    lower, coeff, _ = output_spec_bounds(g, batch, C, alpha_steps=15)
    assert lower.shape == (4, 5) and coeff.shape == (4, 5, 4)
    for i in range(4):
        one, c1, _ = output_spec_bounds(g, Interval(batch.lo[i], batch.hi[i]), C, alpha_steps=15)
        assert np.allclose(one, lower[i], rtol=1e-9, atol=1e-9)
        assert np.allclose(c1, coeff[i], rtol=1e-9, atol=1e-9)


def test_closed_form_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    g = mlp(rng, [4, 12, 12, 3])
    box = box_interval([-1] * 4, [1] * 4)
    C = rng.normal(size=(3, 3))
    dom = _domain(g, box, "linear", frozenset(["a3"]))
    alphas = {n: rng.uniform(size=(len(C),) + a.shape) for n, (a, _, _) in dom.relax.items()}
    rec: dict = {}
    low, _ = dom.backsub("a3", C, alphas, rec)
    vals = _relaxed_point(dom, "a3", rec, alphas)
    checked = 0
    for name, a in alphas.items():
        y = dom.bounds[dom.by_name[name].x]
        A, z = rec[name], vals[dom.by_name[name].x]
        grad = np.where((A > 0) & (y.lo < 0) & (y.hi > 0), A * z, 0.0)
        for i, j in zip(*np.nonzero(grad)):
            a2 = {k: v.copy() for k, v in alphas.items()}
            a2[name][i, j] += 1e-6
            l2, _ = dom.backsub("a3", C, a2)
            assert abs((l2[i] - low[i]) / 1e-6 - grad[i, j]) <= 1e-4 * (1 + abs(grad[i, j]))
            checked += 1
    assert checked >= 5


# ---- intermediate layers: `tightened_bounds` (α-CROWN per neuron) and its independent repeat

def _hints(g, slopes, junk=None):
    """`tightened_bounds`' slopes in `recheck`'s layout (NaN: default), or junk in their place."""
    dims = g.dims()
    out = {}
    for v, (rows, by) in slopes.items():
        for name, a in by.items():
            arr = np.full((1, 2 * dims[v], dims[name]), np.nan)
            arr[0, rows] = a if junk is None else junk(a.shape)
            out.setdefault(v, {})[name] = arr
    return out


@settings(max_examples=40, deadline=None)
@given(mlp_specs(max_in=3, max_hidden=3, max_width=6, max_out=2), st.integers(0, 2 ** 32 - 1))
def test_tightened_bounds_sound_no_looser_and_repeatable(layers, seed):
    from nnsmt.bounds import propagate_bounds, tightened_bounds
    from nnsmt.recheck import recheck
    g = mlp_graph(layers)
    rng = np.random.default_rng(seed)
    n = g.inputs[0].dim
    c, r = rng.uniform(-2, 2, size=n), rng.uniform(0.05, 1.5, size=n)
    box = box_interval(c - r, c + r)
    plain = propagate_bounds(g, box)
    tight, slopes = tightened_bounds(g, box, 10)
    vals = float_values(g, samples(rng, box.lo, box.hi))
    pre = [node.x for node in g.nodes if isinstance(node, Relu)]
    junk = lambda shape: rng.choice([np.nan, -3.0, 0.3, 1.0, 9.0, np.inf], size=shape)
    _, _, again = recheck(g, box.lo[None], box.hi[None], np.zeros((0, g.dims()[g.outputs[0]])),
                          tighten=_hints(g, slopes))
    _, _, wild = recheck(g, box.lo[None], box.hi[None], np.zeros((0, g.dims()[g.outputs[0]])),
                         tighten=_hints(g, slopes, junk))
    for v in pre:
        assert np.all(tight[v].lo >= plain[v].lo) and np.all(tight[v].hi <= plain[v].hi)
        x = vals[v]
        m = 1e-9 * (1 + np.abs(x))
        for iv in (tight[v], Interval(again[v].lo[0], again[v].hi[0]), Interval(wild[v].lo[0], wild[v].hi[0])):
            assert np.all(x + m >= iv.lo) and np.all(x - m <= iv.hi)
        # the checker, given the slopes, gets the engine's bounds back (up to its own rounding)
        tol = 1e-9 * (1 + np.abs(tight[v].lo) + np.abs(tight[v].hi))
        assert np.all(again[v].lo[0] >= tight[v].lo - tol) and np.all(again[v].hi[0] <= tight[v].hi + tol)


def test_tightened_bounds_improve_an_intermediate_layer():
    """On a 5-30-30-4 net over [-1, 1]^5 the second layer's plain bounds leave many neurons
    unstable; optimising each bound's slopes narrows them (the first layer's are exact)."""
    from nnsmt.bounds import propagate_bounds, tightened_bounds
    rng = np.random.default_rng(0)
    g = mlp(rng, [5, 30, 30, 4])
    box = box_interval([-1] * 5, [1] * 5)
    plain = propagate_bounds(g, box)
    tight, slopes = tightened_bounds(g, box, 30)
    assert set(slopes) == {"a2"} and set(slopes["a2"][1]) == {"r1"}
    assert np.array_equal(tight["a1"].lo, plain["a1"].lo)
    gain = (tight["a2"].lo - plain["a2"].lo) + (plain["a2"].hi - tight["a2"].hi)
    assert np.all(gain >= 0) and np.max(gain) > 0.05 and np.sum(gain > 1e-6) >= 5
    X = samples(rng, box.lo, box.hi, 2000)
    a2 = float_values(g, X)["a2"]
    assert np.all(a2 >= tight["a2"].lo - 1e-9) and np.all(a2 <= tight["a2"].hi + 1e-9)



@pytest.mark.parametrize("seed", range(40))
def test_a_prior_skips_its_stable_rows_and_stays_sound(seed):
    """With a prior, back-substitution skips the rows of the neurons the prior shows stable
    (they stay stable on a sub-region, and their relaxation is exact whatever their bounds).
    The spec's bound on a sub-box with phases fixed must still hold at every sampled point of
    the sub-box that satisfies the phases; it is looser than with every row only where an
    interval bound beat back-substitution (14 of 200 such networks, by at most 0.53 there)."""
    from nnsmt.bounds import propagate_bounds
    rng = np.random.default_rng(seed)
    sizes = [3, 6, 6, 6, 2]
    layers = [(rng.normal(size=(m, n)).astype(np.float32), rng.normal(size=m).astype(np.float32))
              for n, m in zip(sizes, sizes[1:])]
    g = mlp_graph(layers)
    relus = [x for x in g.nodes if isinstance(x, Relu)]
    prior = propagate_bounds(g, box_interval([-1.0] * 3, [1.0] * 3))
    lo = rng.uniform(-1, 0.5, 3)
    sub = box_interval(lo, lo + 0.5)
    phases = {r.name: rng.integers(-1, 2, 6).astype(np.int8) * (rng.random(6) < 0.1) for r in relus}
    x = rng.uniform(lo, lo + 0.5, (2000, 3))
    h, ok = x, np.ones(len(x), bool)
    for k, (w, b) in enumerate(layers):
        z = h @ w.astype(np.float64).T + b
        if k < len(relus):
            ph = phases[relus[k].name]
            ok &= np.all((ph == 0) | ((ph > 0) & (z >= 0)) | ((ph < 0) & (z <= 0)), axis=1)
            z = np.maximum(z, 0)
        h = z
    if not ok.any():  # no sampled point meets these phases: check the sub-box without them
        phases, ok = None, np.ones(len(x), bool)
    bound, _, _ = output_spec_bounds(g, sub, np.vstack([np.eye(2), -np.eye(2)]), phases=phases,
                                     prior={r.x: prior[r.x] for r in relus})
    assert np.all(np.hstack([h, -h])[ok] >= bound - 1e-9)
