"""Unsat certificates: the format's I/O, the independent bounds of `nnsmt.recheck` (a property
test against sampled points), and `nnsmt check-certificate` on hand-built certificates for a
network whose answers are derived by hand (valid, and tampered in several ways)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt import certificate as cf
from nnsmt.certificate import Certificate, InputSplit, Leaf, ReluSplit, Slopes, tree_from_paths
from nnsmt.cli import main
from nnsmt.ir import Relu
from nnsmt.recheck import recheck

from helpers import float_values
from strategies import mlp_graph, mlp_onnx, mlp_specs


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the format

def _sample_cert():
    al = {"r": Slopes((0, 1), (2,), np.array([[0.25], [1.0]], dtype=np.float32))}
    tree = cf.Tighten({"a": al}, InputSplit(0, (Leaf("bounds", al),
                                                ReluSplit("r", 3, (Leaf("infeasible"), Leaf("smt", backend="z3"))))))
    return Certificate((("network", "n.onnx", "ab" * 32), ("property", "p.vnnlib", "cd" * 32)), "split", (tree,))


@pytest.mark.parametrize("name", ["c.json", "c.json.gz"])
def test_json_round_trip(tmp_path, name):
    c = _sample_cert()
    cf.write(c, tmp_path / name)
    assert cf.read(tmp_path / name) == c
    assert c.counts() == {"bounds": 1, "infeasible": 1, "smt": 1}


def test_read_errors_name_the_element(tmp_path):
    d = cf.to_json(_sample_cert())
    d["regions"][0]["child"]["children"][1]["index"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(cf.InputError, match=r"regions\.0\.0\.1"):
        cf.read(tmp_path / "bad.json")
    d = cf.to_json(_sample_cert())
    d["regions"][0]["tighten"]["a"]["r"]["slopes"] = "AAAA"
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(cf.InputError, match=r"regions\.0\.tighten\.a\.r: 3 slope bytes"):
        cf.read(tmp_path / "bad.json")


def test_tree_from_paths():
    a, b, c = Leaf("bounds"), Leaf("infeasible"), Leaf("smt")
    t = tree_from_paths([((("input", 0, 0),), a), ((("input", 0, 1), ("relu", "r", 2, 0)), b),
                         ((("input", 0, 1), ("relu", "r", 2, 1)), c)])
    assert t == InputSplit(0, (a, ReluSplit("r", 2, (b, c))))
    with pytest.raises(ValueError, match="misses child 1"):
        tree_from_paths([((("input", 0, 0),), a)])
    with pytest.raises(ValueError, match="two different splits"):
        tree_from_paths([((("input", 0, 0),), a), ((("input", 1, 1),), b)])
    with pytest.raises(ValueError, match="do not form a tree"):
        tree_from_paths([((), a), ((("input", 0, 1),), b)])


# ---- recheck soundness: sampled points satisfying the phases respect the bounds

@settings(max_examples=60, deadline=None)
@given(layers=mlp_specs(max_in=3, max_hidden=3, max_width=4, max_out=3), data=st.data())
def test_recheck_is_sound_on_samples(layers, data):
    g = mlp_graph(layers)
    n, n_out = layers[0][0].shape[1], layers[-1][0].shape[0]
    seed = data.draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    B, R = 3, 2
    lo = rng.uniform(-1, 1, (B, n))
    hi = lo + rng.uniform(0, 1, (B, n)) * (rng.random((B, n)) > 0.1)  # some flat dims
    dims = g.dims()
    relus = [x for x in g.nodes if isinstance(x, Relu)]
    phases = {r.name: rng.integers(-1, 2, (B, dims[r.name])).astype(np.int8) for r in relus}
    alphas = {r.name: np.where(rng.random((B, R, dims[r.name])) < 0.3, np.nan,
                               rng.uniform(0, 1, (B, R, dims[r.name]))) for r in relus}
    # β multipliers: any values, negative and NaN included (the checker clips them to >= 0)
    betas = {r.name: np.where(rng.random((B, R, dims[r.name])) < 0.1, np.nan,
                              rng.uniform(-1, 5, (B, R, dims[r.name]))) for r in relus}
    C = rng.uniform(-1, 1, (R, n_out))
    lower, infeasible, bounds = recheck(g, lo, hi, C, phases, alphas, betas)
    for b in range(B):
        X = lo[b] + rng.random((3000, n)) * (hi[b] - lo[b])
        X = np.vstack([X, lo[b], hi[b]])
        v = float_values(g, X)
        ok = np.ones(len(X), bool)
        for r in relus:
            z, ph = v[r.x], phases[r.name][b]
            ok &= np.all(np.where(ph > 0, z >= 0, np.where(ph < 0, z <= 0, True)), axis=1)
        if not ok.any():
            continue
        assert not infeasible[b], "a sampled point satisfies the phases"
        y = v[g.outputs[0]][ok] @ C.T
        assert np.all(y.min(0) >= lower[b] - 1e-9 * (1 + np.abs(y.min(0))))
        for name, iv in bounds.items():
            vals = v[name][ok]
            assert np.all(vals >= iv.lo[b] - 1e-9) and np.all(vals <= iv.hi[b] + 1e-9), name


def test_recheck_beta_carries_a_split_back():
    """a1 = x0 - x1, r = relu(a1), y = x1 - x0 + 0 * r on [0, 1]^2, r fixed active (x0 >= x1):
    min(-y) = 0 on the region. Without a multiplier the bound of -y is -1 (the clamp of a1
    says nothing about x); with β = 1 on the phase constraint the form is 0 (hand-derived)."""
    from nnsmt.ir import Affine, Const, Graph, Input
    g = Graph((Input("x", 2), Affine("a1", "x", Const(np.array([[1.0, -1.0]])), Const(np.array([0.0]))),
               Relu("r", "a1"),
               Affine("y", "r", Const(np.array([[0.0]])), Const(np.array([0.0])),
                      more=(("x", Const(np.array([[-1.0, 1.0]]))),))), ("y",)).check()
    lo, hi, C = np.zeros((1, 2)), np.ones((1, 2)), np.array([[-1.0]])
    ph = {"r": np.array([[1]], np.int8)}
    plain, _, _ = recheck(g, lo, hi, C, ph)
    with_beta, _, _ = recheck(g, lo, hi, C, ph, betas={"r": np.ones((1, 1, 1))})
    free, _, _ = recheck(g, lo, hi, C, {"r": np.array([[0]], np.int8)}, betas={"r": np.ones((1, 1, 1))})
    assert plain[0, 0] == pytest.approx(-1.0) and free[0, 0] == pytest.approx(-1.0)  # free: β unused
    assert -1e-12 < with_beta[0, 0] <= 0.0


def test_recheck_infeasible_only_when_empty():
    # y = relu(x) - relu(-x) = x on [-1, 2]; phases: x >= 0 and -x >= 0 is x = 0 only
    W1 = np.array([[1.0], [-1.0]], dtype=np.float32)
    g = mlp_graph([(W1, np.zeros(2, np.float32)), (np.array([[1.0, -1.0]], np.float32), np.zeros(1, np.float32))])
    lo, hi = np.array([[-1.0], [0.5]]), np.array([[2.0], [2.0]])
    ph = {"r1": np.array([[1, 1], [1, 1]], dtype=np.int8)}
    lower, inf, _ = recheck(g, lo, hi, np.array([[1.0], [-1.0]]), ph)
    assert not inf[0] and inf[1]  # x = 0 lies in [-1, 2], not in [0.5, 2]
    assert lower[0, 0] <= 0 <= -lower[0, 1] and np.all(np.isfinite(lower[0]))  # y = 0 at x = 0
    assert np.all(lower[1] == np.inf)


def _dag(rng, n, h):
    """x -> a1 (sparse) -> r1 -> a2 = W2 r1 + W3 x -> r2 -> y = W4 r2 + W5 r1 (skip terms)."""
    from nnsmt.ir import Affine, Const, Graph, Input, Sparse

    def w(o, i, sparse=False):
        a = rng.uniform(-2, 2, (o, i)) * (rng.random((o, i)) > 0.3)
        return Sparse.from_dense(a) if sparse else Const(a)
    b = lambda o: Const(rng.uniform(-1, 1, o))  # noqa: E731
    nodes = (Input("x", n), Affine("a1", "x", w(h, n, True), b(h)), Relu("r1", "a1"),
             Affine("a2", "r1", w(h, h), b(h), more=(("x", w(h, n, True)),)), Relu("r2", "a2"),
             Affine("y", "r2", w(2, h, True), b(2), more=(("r1", w(2, h)),)))
    return Graph(nodes, ("y",)).check()


def _dag_values(g, X):
    vals = {"x": X}
    for node in g.nodes[1:]:
        if isinstance(node, Relu):
            vals[node.name] = np.maximum(vals[node.x], 0.0)
            continue
        dense = [(v, np.asarray(W.dense() if hasattr(W, "dense") else W.value, dtype=np.float64))
                 for v, W in node.terms()]
        vals[node.name] = sum(vals[v] @ W.T for v, W in dense) + np.asarray(node.bias.value)
    return vals


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), n=st.integers(1, 3), h=st.integers(1, 5))
def test_recheck_is_sound_on_sparse_dags(seed, n, h):
    rng = np.random.default_rng(seed)
    g = _dag(rng, n, h)
    B = 3
    lo = rng.uniform(-1, 1, (B, n))
    hi = lo + rng.uniform(0, 1, (B, n))
    phases = {r: rng.choice(np.array([-1, 0, 0, 1], dtype=np.int8), (B, h)) for r in ("r1", "r2")}
    C = rng.uniform(-1, 1, (3, 2))
    lower, infeasible, _ = recheck(g, lo, hi, C, phases)
    for b in range(B):
        X = lo[b] + rng.random((3000, n)) * (hi[b] - lo[b])
        v = _dag_values(g, X)
        ok = np.ones(len(X), bool)
        for r, z in (("r1", "a1"), ("r2", "a2")):
            ph = phases[r][b]
            ok &= np.all(np.where(ph > 0, v[z] >= 0, np.where(ph < 0, v[z] <= 0, True)), axis=1)
        if ok.any():
            assert not infeasible[b]
            y = v["y"][ok] @ C.T
            assert np.all(y.min(0) >= lower[b] - 1e-9 * (1 + np.abs(y.min(0))))


# ---- check-certificate on a hand-derived network

W1 = np.array([[1.0, 1.0], [1.0, -1.0]], dtype=np.float32)
W2 = np.array([[1.0, 1.0]], dtype=np.float32)
BOX = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n" \
      "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"


@pytest.fixture
def case(tmp_path):
    """y = relu(x0 + x1) + relu(x0 - x1) on [-1, 1]^2: max 2 (at x0 = 1). Y_0 >= 2.5 is unsat;
    the root's linear bounds only give y <= x0 + 2 <= 3 (the triangle), so they cannot show it;
    with both phases fixed y is linear, at most 2. Y_0 >= 1.5 is sat (x = (1, 0))."""
    net = tmp_path / "net.onnx"
    onnx.save(mlp_onnx([(W1, np.zeros(2, np.float32)), (W2, np.zeros(1, np.float32))]), net)
    unsat = tmp_path / "unsat.vnnlib"
    unsat.write_text(BOX + "(assert (>= Y_0 2.5))\n")
    sat = tmp_path / "sat.vnnlib"
    sat.write_text(BOX + "(assert (>= Y_0 1.5))\n")
    from nnsmt.frontends import load_network
    relu = next(n.name for n in load_network(str(net)).nodes if isinstance(n, Relu))
    return tmp_path, net, unsat, sat, relu


def _cert(net, prop, tree, whole=None):
    files = (("network", str(net), cf.sha256(net)), ("property", str(prop), cf.sha256(prop)))
    return Certificate(files, "test", None if whole else (tree,), whole)


def _phase_tree(relu, leaf=lambda: Leaf("bounds")):
    return ReluSplit(relu, 0, tuple(ReluSplit(relu, 1, (leaf(), leaf())) for _ in range(2)))


def test_valid_certificate_accepted(case, capsys):
    d, net, unsat, _, relu = case
    cf.write(_cert(net, unsat, _phase_tree(relu)), d / "c.json")
    code, out, err = run(capsys, "check-certificate", d / "c.json", net, unsat, "--no-fallback")
    assert code == 0, out + err
    assert out.startswith("valid: unsat proved (4 leaves: 4 by bounds, 0 infeasible, 0 by SMT, 0 re-proved")
    # the recorded paths, and --json
    code, out, _ = run(capsys, "check-certificate", d / "c.json", "--json")
    rec = json.loads(out)
    assert code == 0 and rec["status"] == "valid" and rec["bounds"] == 4


def test_smt_leaves_and_fallback(case, capsys):
    d, net, unsat, _, relu = case
    cf.write(_cert(net, unsat, Leaf("smt", backend="z3")), d / "s.json")
    code, out, _ = run(capsys, "check-certificate", d / "s.json", net, unsat)
    assert code == 0 and "1 by SMT" in out
    # an inner split replaced by a bounds leaf the bounds cannot show
    cf.write(_cert(net, unsat, Leaf("bounds")), d / "b.json")
    code, out, _ = run(capsys, "check-certificate", d / "b.json", net, unsat, "--no-fallback")
    assert code == 5 and out.startswith("rejected: regions.0: the bounds leaf does not hold")
    code, out, _ = run(capsys, "check-certificate", d / "b.json", net, unsat)
    assert code == 0 and "1 re-proved by SMT" in out
    # an infeasible claim on a feasible region
    cf.write(_cert(net, unsat, ReluSplit(relu, 0, (Leaf("infeasible"), Leaf("smt")))), d / "i.json")
    code, out, _ = run(capsys, "check-certificate", d / "i.json", net, unsat, "--no-fallback")
    assert code == 5 and "regions.0.0: the infeasible leaf" in out


def test_tampered_files_rejected(case, capsys):
    d, net, unsat, sat, relu = case
    cf.write(_cert(net, unsat, _phase_tree(relu)), d / "c.json")
    unsat.write_text(unsat.read_text() + "; edited\n")
    code, out, _ = run(capsys, "check-certificate", d / "c.json", net, unsat)
    assert code == 5 and out.startswith("rejected: ") and "unsat.vnnlib (property) differs" in out
    # the certificate pointed at a sat property (hashes rewritten): the solver finds the leaf sat
    cert = _cert(net, sat, _phase_tree(relu))
    cf.write(cert, d / "t.json")
    code, out, _ = run(capsys, "check-certificate", d / "t.json", net, sat)
    assert code == 5 and "holds a counterexample" in out and "regions.0." in out
    cf.write(_cert(net, sat, Leaf("smt")), d / "t2.json")
    code, out, _ = run(capsys, "check-certificate", d / "t2.json", net, sat)
    assert code == 5 and "regions.0: the region holds a counterexample" in out


def test_malformed_trees_rejected(case, capsys):
    d, net, unsat, _, relu = case
    for tree, what in [(InputSplit(7, (Leaf("smt"), Leaf("smt"))), "input split on dim 7"),
                       (ReluSplit("nope", 0, (Leaf("smt"), Leaf("smt"))), "'nope' is not a ReLU"),
                       (ReluSplit(relu, 9, (Leaf("smt"), Leaf("smt"))), "not index 9")]:
        cf.write(_cert(net, unsat, tree), d / "m.json")
        code, out, err = run(capsys, "check-certificate", d / "m.json", net, unsat)
        assert code == 5 and what in out, out + err
    two = Certificate(_cert(net, unsat, Leaf("smt")).files, "t", (Leaf("smt"), Leaf("smt")))
    cf.write(two, d / "two.json")
    code, out, _ = run(capsys, "check-certificate", d / "two.json", net, unsat)
    assert code == 5 and "2 region trees for 1 nonempty" in out


def test_bad_input_exit_2_one_line(case, capsys):
    d, net, unsat, _, relu = case
    (d / "junk.json").write_text("{")
    code, out, err = run(capsys, "check-certificate", d / "junk.json", net, unsat)
    assert code == 2 and err.count("\n") == 1 and "junk.json" in err
    cf.write(_cert(net, unsat, Leaf("smt")), d / "c.json")
    code, out, err = run(capsys, "check-certificate", d / "c.json", d / "missing.onnx", unsat)
    assert code == 2 and err.count("\n") == 1 and "missing.onnx" in err
    code, out, err = run(capsys, "check-certificate", d / "nothere.json")
    assert code == 2 and err.count("\n") == 1 and "nothere.json" in err


# ---- end to end: nnsmt verify --certificate, then check-certificate

@pytest.mark.parametrize("engine,split", [(["--engine", "split", "--split", "8"], InputSplit),
                                          (["--engine", "bab", "--split", "4"], ReluSplit)])
def test_verify_writes_a_certificate_that_checks(case, capsys, engine, split):
    d, net, unsat, _, _ = case
    cert = d / "v.json.gz"
    code, out, err = run(capsys, "verify", net, unsat, *engine, "--certificate", cert)
    assert code == 0 and out.startswith("unsat"), out + err
    assert isinstance(cf.read(cert).regions[0], split)  # the root needs a split (see `case`)
    code, out, err = run(capsys, "check-certificate", cert, net, unsat, "--no-fallback")
    assert code == 0 and out.startswith("valid: unsat proved"), out + err
    code, out, _ = run(capsys, "check-certificate", cert)  # the recorded paths
    assert code == 0


def test_whole_region_and_vnnlib2(case, capsys):
    d, net, unsat, _, _ = case
    # not a box union (X_0 + X_1 <= 1): the certificate's `whole` is solved exactly
    whole = d / "whole.vnnlib"
    whole.write_text(BOX + "(assert (<= (+ X_0 X_1) 1))\n(assert (>= Y_0 2.5))\n")
    cf.write(_cert(net, whole, None, whole=Leaf("smt")), d / "w.json")
    code, out, _ = run(capsys, "check-certificate", d / "w.json", net, whole)
    assert code == 0 and "1 by SMT" in out
    cf.write(_cert(net, unsat, None, whole=Leaf("smt")), d / "w2.json")  # a box: trees needed
    code, out, _ = run(capsys, "check-certificate", d / "w2.json", net, unsat)
    assert code == 5 and "no region trees" in out
    # VNN-LIB 2: the query file and --network NAME=FILE
    q = d / "q.vnnlib"
    q.write_text("(vnnlib-version <2.0>)\n(declare-network f\n  (declare-input X real [1,2])\n"
                 "  (declare-output Y real [1,1])\n)\n(assert (and (>= X[0,0] -1.0) (<= X[0,0] 1.0) "
                 "(>= X[0,1] -1.0) (<= X[0,1] 1.0)))\n(assert (>= Y[0,0] 2.5))\n")
    files = (("property", str(q), cf.sha256(q)), ("network:f", str(net), cf.sha256(net)))
    cf.write(Certificate(files, "t", (InputSplit(0, (Leaf("bounds"), Leaf("smt"))),)), d / "q.json")
    code, out, err = run(capsys, "check-certificate", d / "q.json", q, "--network", f"f={net}")
    assert code == 0 and "1 by bounds" in out and "1 by SMT" in out, out + err
    code, out, _ = run(capsys, "check-certificate", d / "q.json", "--no-fallback")
    assert code == 0


def test_infeasible_leaf_accepted(case, capsys):
    """On x0 in [1/2, 1], x1 in [0, 1]: x0 + x1 >= 1/2, so `inactive` (<= 0) is empty."""
    d, net, unsat, _, relu = case
    s = Leaf("smt")
    inner = InputSplit(1, (s, ReluSplit(relu, 0, (Leaf("bounds"), Leaf("infeasible")))))
    tree = InputSplit(0, (s, InputSplit(0, (s, inner))))
    cf.write(_cert(net, unsat, tree), d / "inf.json")
    code, out, err = run(capsys, "check-certificate", d / "inf.json", "--no-fallback")
    assert code == 0 and "(5 leaves: 1 by bounds, 1 infeasible, 3 by SMT, 0 re-proved" in out, out + err


def test_alpha_hints_checked(case, capsys):
    d, net, unsat, _, relu = case
    ok = {relu: Slopes((0,), (0, 1), np.array([[0.5, 2.0]], dtype=np.float32))}  # 2.0 is clipped to 1
    cf.write(_cert(net, unsat, _phase_tree(relu, lambda: Leaf("bounds", ok))), d / "a.json")
    code, out, _ = run(capsys, "check-certificate", d / "a.json", "--no-fallback")
    assert code == 0 and "4 by bounds" in out
    for alpha, what in [({"nope": Slopes((0,), (0,), np.zeros((1, 1), np.float32))}, "'nope', not a ReLU"),
                        ({relu: Slopes((2,), (0,), np.zeros((1, 1), np.float32))}, "rows < 2"),
                        ({relu: Slopes((0,), (5,), np.zeros((1, 1), np.float32))}, "neurons < 2")]:
        cf.write(_cert(net, unsat, ReluSplit(relu, 0, (Leaf("bounds", alpha), Leaf("smt")))), d / "b.json")
        code, out, _ = run(capsys, "check-certificate", d / "b.json")
        assert code == 5 and "regions.0.0: alpha" in out and what in out, out
        cf.write(_cert(net, unsat, ReluSplit(relu, 0, (Leaf("bounds", beta=alpha), Leaf("smt")))), d / "c.json")
        code, out, _ = run(capsys, "check-certificate", d / "c.json")
        assert code == 5 and "regions.0.0: beta" in out and what in out, out
    # a multiplier of any sign or size is sound (clipped to >= 0); a huge one on a fixed neuron
    # only spoils its leaf's bound (pre in [0, 2] or [-2, 0]: -1e30 * 2), which is then rejected
    wild = {relu: Slopes((1,), (0, 1), np.array([[-3.0, 1e30]], dtype=np.float32))}  # row 1 decides Y_0 >= 2.5
    cf.write(_cert(net, unsat, _phase_tree(relu, lambda: Leaf("bounds", ok, beta=wild))), d / "w.json")
    code, out, _ = run(capsys, "check-certificate", d / "w.json", "--no-fallback")
    assert code == 5 and "regions.0.0.0" in out, out
    code, out, _ = run(capsys, "check-certificate", d / "w.json")  # the SMT fallback re-proves them
    assert code == 0, out


@settings(max_examples=30, deadline=None)
@given(layers=mlp_specs(max_in=3, max_hidden=3, max_width=5, max_out=3), seed=st.integers(0, 2 ** 31))
def test_recheck_is_as_tight_as_the_engine_bounds(layers, seed):
    """Not trivial: without phases or hints, the same CROWN bounds as nnsmt.bounds (up to the
    rounding terms), though computed independently."""
    from nnsmt.bounds import Interval, output_spec_bounds
    g = mlp_graph(layers)
    rng = np.random.default_rng(seed)
    n, n_out = layers[0][0].shape[1], layers[-1][0].shape[0]
    lo = rng.uniform(-1, 1, (2, n))
    hi = lo + rng.uniform(0, 1, (2, n))
    C = rng.uniform(-1, 1, (2, n_out))
    mine, _, _ = recheck(g, lo, hi, C)
    theirs, _, _ = output_spec_bounds(g, Interval(lo, hi), C)
    assert np.allclose(mine, theirs, rtol=1e-9, atol=1e-9)


def test_solver_timeout_is_incomplete(tmp_path, capsys):
    """A 3-10-10-2 network whose margin property is tight (unsat, z3 needs many seconds): one
    smt leaf at a 0.5 s limit is incomplete (exit 20), never valid."""
    rng = np.random.default_rng(3)
    sizes = [3, 10, 10, 2]
    layers = [(rng.normal(0, 0.7, (n, m)).astype(np.float32), rng.normal(0, 0.3, n).astype(np.float32))
              for m, n in zip(sizes, sizes[1:])]
    net = tmp_path / "mlp.onnx"
    onnx.save(mlp_onnx(layers), net)
    prop = tmp_path / "p.vnnlib"
    prop.write_text("".join(f"(declare-const X_{i} Real)\n" for i in range(3))
                    + "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                    + "".join(f"(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n" for i in range(3))
                    + "(assert (>= Y_0 (+ Y_1 0.0243)))\n")
    cf.write(_cert(net, prop, Leaf("smt")), tmp_path / "c.json")
    code, out, _ = run(capsys, "check-certificate", tmp_path / "c.json", "--timeout", "0.5")
    assert code == 20 and out.startswith("incomplete: regions.0: z3 answered unknown"), out


def test_recorded_relative_paths_found_beside_the_certificate(case, capsys, monkeypatch, tmp_path_factory):
    d, net, unsat, _, relu = case
    files = (("network", "net.onnx", cf.sha256(net)), ("property", "unsat.vnnlib", cf.sha256(unsat)))
    cf.write(Certificate(files, "t", (_phase_tree(relu),)), d / "rel.json")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    code, out, _ = run(capsys, "check-certificate", d / "rel.json")
    assert code == 0 and out.startswith("valid")


def test_no_certificate_for_sat_or_float_semantics(tmp_path, capsys):
    """A sat verdict writes no certificate (a note says why); a float-typed VNN-LIB 2 query is
    refused up front (exit 2, one line): its rounding-error widening is not in the format."""
    out = tmp_path / "c.json"
    code, text, err = run(capsys, "verify", "examples/classifier.onnx", "examples/class1_margin.vnnlib",
                          "--certificate", str(out))
    assert code == 10 and not out.exists() and "no certificate written: the verdict is sat" in text + err
    code, _, err = run(capsys, "verify", "examples/class1_margin_f32.vnnlib", "--network",
                       "classifier=examples/classifier.onnx", "--certificate", str(out))
    assert code == 2 and not out.exists()
    assert err.strip().count("\n") == 0 and "real-valued" in err


def test_split_leaves_settled_with_optimised_slopes_check_without_fallback(case, capsys, monkeypatch):
    """Input splitting switches to α-CROWN slopes after ALPHA_AFTER boxes; the leaves they
    settle carry those slopes as hints, and the independent checker reproduces every one."""
    import nnsmt.queries.split as split
    monkeypatch.setattr(split, "ALPHA_AFTER", 0)
    d, net, unsat, _, _ = case
    cert = d / "a.json"
    code, out, err = run(capsys, "verify", net, unsat, "--engine", "split", "--split", "64", "--certificate", cert)
    assert code == 0 and out.startswith("unsat"), out + err
    leaves = list(cf.read(cert).leaves())
    assert any(leaf.alpha for leaf in leaves) and all(leaf.by == "bounds" for leaf in leaves)
    code, out, err = run(capsys, "check-certificate", cert, net, unsat, "--no-fallback")
    assert code == 0 and out.startswith("valid: unsat proved"), out + err


def _random_bab_case(tmp_path, sizes, seed=0):
    """A random MLP on [-1, 1]^n and Y_1 >= Y_0 + thr, thr just above the sampled maximum of
    Y_1 - Y_0 (so unsat in all likelihood; the verify run decides it exactly)."""
    rng = np.random.default_rng(seed)
    layers = [((rng.normal(size=(n, m)) / np.sqrt(m)).astype(np.float32),
               (rng.normal(size=n) * 0.3).astype(np.float32)) for m, n in zip(sizes, sizes[1:])]
    net = tmp_path / "net.onnx"
    onnx.save(mlp_onnx(layers), net)
    X = rng.uniform(-1, 1, (20000, sizes[0]))
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W.T.astype(np.float64) + b
        h = np.maximum(h, 0) if i < len(layers) - 1 else h
    thr = round(float((h[:, 1] - h[:, 0]).max()) + 0.02, 4)
    prop = tmp_path / "p.vnnlib"
    n = sizes[0]
    prop.write_text("".join(f"(declare-const X_{i} Real)\n" for i in range(n))
                    + "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                    + "".join(f"(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n" for i in range(n))
                    + f"(assert (>= Y_1 (+ Y_0 {thr})))\n")
    return net, prop


def test_bab_leaves_with_beta_multipliers_check_without_fallback(tmp_path, capsys):
    """A random 3-10-10-2 MLP, Y_1 >= Y_0 + thr just above the sampled maximum: bab proves it
    with leaves whose bounds use the phase constraints' multipliers (β), recorded as hints;
    the independent checker (not the engine's bound code) reproduces every leaf. (The plain
    exact encoding agrees, but takes 45 s on Z3.)"""
    net, prop = _random_bab_case(tmp_path, [3, 10, 10, 2])
    cert = tmp_path / "c.json"
    code, out, err = run(capsys, "verify", net, prop, "--engine", "bab", "--split", "4", "--certificate", cert)
    assert code == 0 and out.startswith("unsat"), out + err
    leaves = list(cf.read(cert).leaves())
    assert any(leaf.beta for leaf in leaves)
    code, out, err = run(capsys, "check-certificate", cert, net, prop, "--no-fallback")
    assert code == 0 and out.startswith("valid: unsat proved"), out + err


def test_bab_tighten_node_is_what_the_leaves_need(tmp_path, capsys):
    """bab tightens the root's intermediate bounds (α-CROWN per neuron) and its leaves use them:
    the certificate's root is a Tighten node; the checker recomputes those bounds from its
    slopes and every leaf checks without fallback. The same tree without the Tighten node does
    not (at this seed: its first leaf fails), so the checker really uses them."""
    from dataclasses import replace
    net, prop = _random_bab_case(tmp_path, [3, 10, 10, 10, 2])
    cert = tmp_path / "c.json"
    code, out, err = run(capsys, "verify", net, prop, "--engine", "bab", "--split", "4", "--certificate", cert)
    assert code == 0 and out.startswith("unsat"), out + err
    c = cf.read(cert)
    (root,) = c.regions
    assert isinstance(root, cf.Tighten) and root.alpha
    assert c.counts()["smt"] == 0
    code, out, err = run(capsys, "check-certificate", cert, net, prop, "--no-fallback")
    assert code == 0 and out.startswith("valid: unsat proved"), out + err
    cf.write(replace(c, regions=(root.child,)), tmp_path / "bare.json")
    code, out, _ = run(capsys, "check-certificate", tmp_path / "bare.json", net, prop, "--no-fallback")
    assert code == 5 and "does not hold by the independent bounds" in out
    # other slopes (clipped to [0, 1], so still sound) give other, here looser, bounds: the
    # checker computes with what the certificate says, it does not take the node on trust
    other = {v: {r: Slopes(s.rows, s.neurons, np.full_like(s.values, -7.0)) for r, s in by.items()}
             for v, by in root.alpha.items()}
    cf.write(replace(c, regions=(cf.Tighten(other, root.child),)), tmp_path / "other.json")
    code, out, _ = run(capsys, "check-certificate", tmp_path / "other.json", net, prop, "--no-fallback")
    assert code == 5 and "does not hold by the independent bounds" in out


def test_bad_tighten_nodes_rejected_by_name(case, capsys):
    d, net, unsat, _, relu = case
    from nnsmt.frontends import load_network
    g = load_network(str(net))
    pre = next(n.x for n in g.nodes if isinstance(n, Relu))
    one = Slopes((0,), (0,), np.array([[0.5]], dtype=np.float32))
    for alpha, what in [({relu: {relu: one}}, "not the input of a ReLU"),
                        ({pre: {"nope": one}}, "'nope', not a ReLU"),
                        ({pre: {relu: Slopes((4,), (0,), one.values)}}, "rows < 4")]:
        cf.write(_cert(net, unsat, cf.Tighten(alpha, _phase_tree(relu))), d / "t.json")
        code, out, err = run(capsys, "check-certificate", d / "t.json", net, unsat)
        assert code == 5 and out.startswith("rejected: regions.0: tighten") and what in out, out + err
    # a Tighten with no slopes is plain bounds again: the hand-derived leaves still check
    cf.write(_cert(net, unsat, cf.Tighten({}, _phase_tree(relu))), d / "e.json")
    code, out, err = run(capsys, "check-certificate", d / "e.json", net, unsat, "--no-fallback")
    assert code == 0 and "4 by bounds" in out, out + err
