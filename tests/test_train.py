"""SMT training: hand-derived sat/unsat cases, exact checks, write-back, encodings agreeing.

The hand-derived cases solve in about a second; they solve in this process (`inproc`) with the
solver's own time limit: the driver's solver with a timeout solves in a forked child, and forking
a test process that other tests left with threads (onnxruntime, Ray) can hang the child."""

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from nnsmt.cli import main
from nnsmt.data import Dataset, save_csv
from nnsmt.errors import InputError
from nnsmt.ir import Const
from nnsmt.queries.train import TrainOptions, make_problem, misclassified, train, training_script
from nnsmt.result import SolveOptions
from nnsmt.queries.train_encode import homog_applies

from conftest import EXAMPLES, have, solver_backend
from strategies import mlp_graph, mlp_onnx

# XOR: (0,0) -> 0, (1,1) -> 0, (0,1) -> 1, (1,0) -> 1.
XOR = Dataset(np.array([[0., 0.], [1., 1.], [0., 1.], [1., 0.]]), np.array([0, 0, 1, 1]))


def _solver(name, run):
    """A `nnsmt.result.Solve` for `train` from run(script, options)."""
    from nnsmt.backends import capabilities

    def solve(script, seconds=None, options=SolveOptions()):
        return run(script, options)
    solve.backend, solve.capabilities = name, capabilities(name)
    return solve


def inproc(name="z3", limit=120.0):
    """A solver for `train` that runs in this process with the backend's own time limit (Z3 also
    picks its strategy for nonlinear queries by whether a limit is set: with none, the seed
    encoding of XOR 2-2-2 takes minutes instead of a second)."""
    from nnsmt.backends import get_backend
    b = get_backend(name)
    return _solver(name, lambda script, options: b.solve(script, limit, options))


def _solve_fresh(name, script, limit, options):
    from nnsmt.backends import get_backend
    return get_backend(name).solve(script, limit, options)


def fresh(name="z3", limit=60.0):
    """A solver for `train` in a freshly spawned interpreter. Z3's nonlinear search depends on
    the order of its internal term ids, so in a process that has already built other terms
    the same small query can take minutes instead of a second; a pristine process makes the
    hand-derived nonlinear cases as fast as they are alone."""
    import multiprocessing as mp

    def solve(script, options):
        with mp.get_context("spawn").Pool(1) as pool:
            return pool.apply(_solve_fresh, (name, script, limit, options))
    return _solver(name, solve)


def fit(problem, solve, **options):
    return train(problem, solve, TrainOptions(**options))


def net(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return mlp_graph([(rng.standard_normal((n, m)).astype(np.float32),
                       rng.standard_normal(n).astype(np.float32)) for m, n in zip(sizes, sizes[1:])])


# 2-1-2 is unsat: with one hidden unit the logit difference is c * relu(w.x + b) + d, a monotone
# function of the single linear form w.x, so the class-1 region {x : ... > 0} is a half-plane
# (or empty, or everything). XOR's classes are not linearly separable: (0,1) and (1,0) on one side
# would put their midpoint (1/2, 1/2) there too, which is also the midpoint of (0,0) and (1,1).
# 2-2-2 is sat: relu(x1 - x2) + relu(x2 - x1) - 1/2 is 1/2 on (0,1), (1,0) and -1/2 on the others.
# cvc5's nonlinear arithmetic is incomplete (it answers unknown on these NRA queries): it is
# exercised on the linear homog encoding, Z3 on all three.
CASES = [("z3", "seed"), ("z3", "margin"), ("z3", "homog"), ("cvc5", "homog")]


@pytest.mark.parametrize("backend_name,encoding", CASES)
def test_xor_one_hidden_unit_is_unsat(backend_name, encoding):
    solver_backend(backend_name)
    p = make_problem(net([2, 1, 2]), XOR)
    r = fit(p, (inproc if encoding == "homog" else fresh)(backend_name), encoding=encoding)
    assert r.status == "unsat", r
    assert r.statement.startswith("no 2-1-2 network classifies all of these points")
    assert r.core and set(r.core) <= {0, 1, 2, 3}


@pytest.mark.parametrize("backend_name,encoding", CASES)
def test_xor_two_hidden_units_is_sat_and_exact(backend_name, encoding):
    solver_backend(backend_name)
    p = make_problem(net([2, 2, 2]), XOR)
    r = fit(p, (inproc if encoding == "homog" else fresh)(backend_name), encoding=encoding)
    assert r.status == "sat", r
    assert misclassified(p, r.params, exact=True) == []


def test_xor_single_output_binary():
    # one output: label 1 iff logit > 0 (the same derivations hold for one logit)
    for sizes, want in (([2, 1, 1], "unsat"), ([2, 2, 1], "sat")):
        p = make_problem(net(sizes), XOR)
        assert p.binary_single and fit(p, fresh()).status == want


def test_free_last_layer_keeps_frozen_layer():
    # Hidden layer frozen to relu(x1 - x2), relu(x2 - x1): the last layer alone can fit XOR
    # (weights 1, 1, bias -1/2 as above); frozen to relu(x1), relu(x2) it cannot: the class-1
    # points (0,1), (1,0) have features (0,1), (1,0), class 0 (0,0), (1,1) the XOR of them again.
    good = mlp_graph([(np.array([[1, -1], [-1, 1]], np.float32), np.zeros(2, np.float32)),
                      (np.ones((2, 2), np.float32), np.zeros(2, np.float32))])
    p = make_problem(good, XOR, free="last")
    r = fit(p, inproc())
    assert p.free == ("a2",) and r.status == "sat" and set(r.params) == {"W_a2", "b_a2"}
    bad = mlp_graph([(np.eye(2, dtype=np.float32), np.zeros(2, np.float32)),
                     (np.ones((2, 2), np.float32), np.zeros(2, np.float32))])
    r = fit(make_problem(bad, XOR, free="2"), inproc())
    assert r.status == "unsat" and "with layers a1 frozen" in r.statement


def test_weight_bound_is_in_the_statement():
    r = fit(make_problem(net([2, 1, 2]), XOR, weight_bound=4), fresh())
    assert r.status == "unsat" and "free weights and biases in [-4, 4]" in r.statement
    assert r.encoding == "margin"  # homog needs unbounded weights
    # the box holds in sat models (last layer free over the |x1 - x2| features of the test above:
    # linear, so the answer does not hang on nonlinear search)
    good = mlp_graph([(np.array([[1, -1], [-1, 1]], np.float32), np.zeros(2, np.float32)),
                      (np.ones((2, 2), np.float32), np.zeros(2, np.float32))])
    r = fit(make_problem(good, XOR, free="last", weight_bound=4), inproc())
    assert r.status == "sat", r
    assert all(abs(v) <= 4 for a in r.params.values() for v in a.ravel())


def test_free_spec_errors(capsys, tmp_path):
    g = net([2, 2, 2])
    with pytest.raises(InputError, match="layer 3 does not exist"):
        make_problem(g, XOR, free="3")
    with pytest.raises(InputError, match="'b7' is not an affine layer"):
        make_problem(g, XOR, free="b7")
    assert make_problem(g, XOR, free="a1,last").free == ("a1", "a2")


def test_multiclass_deeper_net_trains_exactly():
    # three classes on a line: 0 | 1 | 2 -- a 1-2-3 net fits them (the middle class needs the
    # two ReLUs); the check is exact on every point
    d = Dataset(np.array([[-2.], [-1.], [0.], [1.], [2.]]), np.array([0, 0, 1, 2, 2]))
    p = make_problem(net([1, 2, 3]), d)
    assert homog_applies(p) is not None
    r = fit(p, fresh())
    assert r.status == "sat" and r.encoding == "margin" and misclassified(p, r.params) == []


@pytest.mark.skipif(not have("onnxruntime"), reason="onnxruntime is not installed")
def test_cli_trains_writes_onnx_and_onnxruntime_agrees(tmp_path, capsys):
    import onnx
    import onnxruntime as ort
    out = tmp_path / "trained.onnx"
    code = main(["train", str(EXAMPLES / "sphere_3_8_2.onnx"), "--data", str(EXAMPLES / "sphere_grid.csv"),
                 "-o", str(out), "--json", "--timeout", "60"])
    d = json.loads(capsys.readouterr().out)
    assert code == 10 and d["status"] == "sat" and d["output"]["accuracy_onnxruntime"] == 1.0
    assert d["output"]["same_graph"] is True
    src, new = onnx.load(str(EXAMPLES / "sphere_3_8_2.onnx")), onnx.load(str(out))
    assert [n.op_type for n in src.graph.node] == [n.op_type for n in new.graph.node]
    assert [t.name for t in src.graph.initializer] == [t.name for t in new.graph.initializer]
    # our own onnxruntime replay of the written file: 100% on the training points
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    from nnsmt.data import load_csv
    data = load_csv(EXAMPLES / "sphere_grid.csv")
    logits = np.array([sess.run(None, {"input": x.astype(np.float32)[None]})[0][0] for x in data.x])
    assert np.array_equal(np.argmax(logits, axis=1), data.y)
    assert all(l[y] > l[1 - y] for l, y in zip(logits, data.y))


def test_cli_unsat_prints_what_was_proved_and_the_core(tmp_path, capsys):
    p = tmp_path / "xor.csv"
    save_csv(p, XOR.x, XOR.y)
    model = tmp_path / "n.onnx"
    import onnx
    rng = np.random.default_rng(0)
    onnx.save(mlp_onnx([(rng.standard_normal((1, 2)).astype(np.float32), np.zeros(1, np.float32)),
                        (rng.standard_normal((2, 1)).astype(np.float32), np.zeros(2, np.float32))]), model)
    code = main(["train", str(model), "--data", str(p), "--backend", "cvc5"])
    out = capsys.readouterr().out
    assert code == 0  # unsat: no weights exist (as verify: unsat = no witness)
    assert out.startswith("unsat: no 2-1-2 network classifies all of these points correctly")
    assert "unsat core:" in out and f"{p}:2" in out


def test_json_and_safetensors_outputs(tmp_path, capsys):
    from safetensors.numpy import load_file  # the reference reader (a dependency: no skip)
    from nnsmt.serialize import load_json
    from nnsmt.interpret import evaluate_exact
    args = ["train", str(EXAMPLES / "sphere_3_8_2.onnx"), "--data", str(EXAMPLES / "sphere_grid.csv")]
    assert main(args + ["-o", str(tmp_path / "t.json")]) == 10
    g = load_json(tmp_path / "t.json")
    from nnsmt.data import load_csv
    data = load_csv(EXAMPLES / "sphere_grid.csv")
    for x, y in zip(data.x, data.y):  # exact rational weights: every point, exactly
        l = evaluate_exact(g, {"x": x})[g.outputs[0]]
        assert l[y] > l[1 - y]
    assert main(args + ["-o", str(tmp_path / "t.safetensors")]) == 10
    t = load_file(str(tmp_path / "t.safetensors"))
    assert sorted(t) == ["a1.bias", "a1.weight", "a2.bias", "a2.weight"]
    assert t["a1.weight"].shape == (8, 3) and t["a1.weight"].dtype == np.float32
    capsys.readouterr()


def test_training_script_parses_in_z3_and_cvc5():
    import cvc5
    import z3
    from nnsmt.backends.smtlib import to_smtlib
    for enc in ("seed", "margin", "homog"):
        text = to_smtlib(training_script(make_problem(net([2, 2, 2]), XOR), enc))
        assert len(z3.parse_smt2_string(text)) > 0
        tm = cvc5.TermManager()
        slv = cvc5.Solver(tm)
        sm = cvc5.SymbolManager(tm)
        parser = cvc5.InputParser(slv, sm)
        parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, text.replace("(check-sat)", "").replace(
            text[text.index("(get-value"):text.index("(exit)")], ""), "t")
        while not (cmd := parser.nextCommand()).isNull():
            cmd.invoke(slv, sm)
        assert len(slv.getAssertions()) > 0


def test_compile_mode_train_emits_seed_encoding(tmp_path, capsys):
    p = tmp_path / "xor.csv"
    save_csv(p, XOR.x, XOR.y)
    out = tmp_path / "t.smt2"
    model = tmp_path / "n.onnx"
    import onnx
    rng = np.random.default_rng(0)
    onnx.save(mlp_onnx([(rng.standard_normal((2, 2)).astype(np.float32), np.zeros(2, np.float32)),
                        (rng.standard_normal((2, 2)).astype(np.float32), np.zeros(2, np.float32))]), model)
    assert main(["compile", str(model), "--mode", "train", "--data", str(p), "-o", str(out)]) == 0
    text = out.read_text()
    # all weights free, one strict class constraint per point, products of unknowns: QF_NRA
    assert "(set-logic QF_NRA)" in text and text.count(":named pt") == 4
    assert "(> p2_a2_1 p2_a2_0)" in text and "(declare-const W_a2_1_1 Real)" in text
    assert main(["compile", str(model), "--mode", "train", "--data", str(p), "--encoding", "nope"]) == 2
    assert "choose from auto, seed, margin, homog" in capsys.readouterr().err


# ---- encodings agree, with the answer derived independently ----
#
# A 2-1-2 network fits a labelled point set iff its two classes are strictly linearly separable
# (the XOR argument above: the class-1 region of c * relu(w.x + b) + d is a half-plane, and a
# separating line w.x + b = t gives one). Two finite sets in the plane are strictly separable iff
# their convex hulls are disjoint: no point of one lies in the other's hull (in a triangle,
# segment or point of it: Caratheodory) and no two segments, one from each, meet. Exact integer
# geometry, no solver.

def _orient(a, b, c):
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(p, a, b):
    return _orient(a, b, p) == 0 and min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) \
        and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_meet(a, b, c, d):
    o1, o2, o3, o4 = _orient(a, b, c), _orient(a, b, d), _orient(c, d, a), _orient(c, d, b)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True
    return _on_segment(c, a, b) or _on_segment(d, a, b) or _on_segment(a, c, d) or _on_segment(b, c, d)


def _in_hull(p, pts):
    from itertools import combinations
    if p in pts or any(_on_segment(p, a, b) for a, b in combinations(pts, 2)):
        return True
    for a, b, c in combinations(pts, 3):
        s = (_orient(a, b, p), _orient(b, c, p), _orient(c, a, p))
        if _orient(a, b, c) != 0 and (min(s) >= 0 or max(s) <= 0):
            return True
    return False


def separable(a, b) -> bool:
    """Whether the finite point sets a, b (integer pairs) are strictly linearly separable."""
    from itertools import combinations
    if any(_in_hull(p, b) for p in a) or any(_in_hull(p, a) for p in b):
        return False
    return not any(_segments_meet(p, q, r, t) for p, q in combinations(a, 2) for r, t in combinations(b, 2))


def test_separability_oracle_by_hand():
    assert separable([(0, 0), (1, 1)], [(0, 1), (1, 0)]) is False  # XOR: the diagonals cross
    assert separable([(-1, 0), (1, 0)], [(0, 0)]) is False  # between two others on a line
    assert separable([(0, 0), (2, 0), (0, 2)], [(1, 1)]) is False  # on the hull's edge
    assert separable([(0, 0), (4, 0), (0, 4)], [(1, 1), (5, 5)]) is False  # inside the triangle
    assert separable([(0, 0), (4, 4)], [(0, 4), (3, 0)]) is False  # the segments cross at x = 12/7
    assert separable([(0, 0), (0, 1), (1, 0)], [(1, 1), (2, 2)]) is True  # x + y <= 1 vs >= 2
    assert separable([(0, 0), (0, 2)], [(1, 1)]) is True
    assert separable([(0, 0), (1, 1)], []) is True  # one class: a constant fits


POINT_SETS = st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.integers(0, 1)),
                      min_size=2, max_size=5, unique_by=lambda t: t[:2])


def _dataset(pts) -> Dataset:
    return Dataset(np.array([p[:2] for p in pts], dtype=float), np.array([p[2] for p in pts]))


def _classes(pts):
    return [p[:2] for p in pts if p[2] == 0], [p[:2] for p in pts if p[2] == 1]


# Every encoding decides 2-1-2 on up to 5 grid points within a second or so (measured: 25
# non-separable sets, all unsat in <= 1.1 s per encoding): an unknown is a failure.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POINT_SETS)
@example([(0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1)])  # XOR: unsat
@example([(-1, 0, 0), (0, 0, 1), (1, 0, 0), (2, 2, 1)])  # 0 1 0 on a line: unsat
@example([(-2, -2, 0), (-1, 0, 0), (1, 1, 1), (2, -1, 1)])  # separable: sat
def test_encodings_agree_with_separability(pts):
    p = make_problem(net([2, 1, 2]), _dataset(pts))
    want = "sat" if separable(*_classes(pts)) else "unsat"
    for enc in ("seed", "margin", "homog"):
        r = fit(p, inproc(limit=60), encoding=enc)
        assert r.status == want, (enc, pts, r.status, r.reason)
        if r.status == "sat":
            assert misclassified(p, r.params, exact=True) == []


# 2-2-2: no independent oracle for the non-separable sets, and Z3's nonlinear search on the seed
# and margin encodings takes from 1 s to over 30 s on them (measured): a benchmark. Every
# encoding must decide, all must agree, a separable set must fit, and every fit is exact.
@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POINT_SETS)
@example([(0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1)])  # XOR: sat with two hidden units
def test_encodings_agree_two_hidden_units(pts):
    p = make_problem(net([2, 2, 2]), _dataset(pts))
    verdicts = {}
    for enc in ("seed", "margin", "homog"):
        r = fit(p, fresh(limit=300), encoding=enc)
        assert r.status in ("sat", "unsat"), (enc, pts, r.status, r.reason)
        if r.status == "sat":
            assert misclassified(p, r.params, exact=True) == []
        verdicts[enc] = r.status
    assert len(set(verdicts.values())) == 1, (pts, verdicts)
    if separable(*_classes(pts)):
        assert verdicts["homog"] == "sat", pts


@pytest.mark.skipif(not have("onnxruntime"), reason="onnxruntime is not installed")
def test_folded_layer_falls_back_to_a_fresh_graph(tmp_path, capsys):
    # Gemm -> Relu -> Gemm -> Mul(2): the Mul folds into the last affine, so the trained layer
    # cannot be written into the Gemm's initializers alone: a fresh graph, said so, still 100%.
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((2, 2)).astype(np.float32), n) for n in ("W1", "W2")]
    inits += [numpy_helper.from_array(np.zeros(2, np.float32), n) for n in ("B1", "B2")]
    inits.append(numpy_helper.from_array(np.full(2, 2, np.float32), "two"))
    nodes = [helper.make_node("Gemm", ["in", "W1", "B1"], ["g1"], transB=1),
             helper.make_node("Relu", ["g1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "W2", "B2"], ["g2"], transB=1),
             helper.make_node("Mul", ["g2", "two"], ["out"])]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("in", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    model, data, out = tmp_path / "m.onnx", tmp_path / "xor.csv", tmp_path / "t.onnx"
    onnx.save(m, model)
    save_csv(data, XOR.x, XOR.y)
    code = main(["train", str(model), "--data", str(data), "-o", str(out), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 10 and d["output"]["same_graph"] is False
    assert "fresh ONNX graph" in d["output"]["note"] and d["output"]["accuracy_onnxruntime"] == 1.0


# ---- narrow first (train_widen) ----

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(2, 6), w=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_zero_padded_narrow_network_computes_the_same_function(h, w, seed):
    # The embedding claim of train_widen: a width-w fit, zero-padded to width h, gives the same
    # logits on every input (exact arithmetic), hence classifies the same points.
    from nnsmt.interpret import evaluate_exact
    from nnsmt.queries.train_widen import narrow, pad
    w = min(w, h - 1)
    rng = np.random.default_rng(seed)
    data = Dataset(rng.standard_normal((6, 3)), rng.integers(0, 2, 6))
    p = make_problem(net([3, h, 2], seed), data)
    q = narrow(p, w)
    assert q.arch() == f"3-{w}-2"
    small = {name: np.vectorize(lambda v: Fraction(int(v), 8), otypes=[object])(
        rng.integers(-16, 17, shape)) for name, shape in
        ((s.name, s.shape) for _, _, s in q.graph.params())}
    big = pad(p, small)
    for x in data.x:
        a = evaluate_exact(q.graph, {q.input: x}, small)[q.logits]
        b = evaluate_exact(p.graph, {p.input: x}, big)[p.logits]
        assert list(a) == list(b)


def test_narrow_first_fit_is_widened_and_exact():
    # XOR on 2-8-2: width 1 is unsat (above), width 2 is sat; the width-2 fit padded to 8 units
    # is reported, with a note saying so, and is exact on every point.
    p = make_problem(net([2, 8, 2]), XOR)
    r = fit(p, inproc())
    assert r.status == "sat", r
    assert r.params["W_a1"].shape == (8, 2) and r.params["W_a2"].shape == (2, 8)
    assert any("widened exactly to 8" in n for n in r.notes), r.notes
    assert any("1: unsat" in n for n in r.notes), r.notes
    assert misclassified(p, r.params, exact=True) == []
    r2 = fit(p, inproc(), widen=False)
    assert r2.status == "sat" and not any("widened" in n for n in r2.notes)


def test_narrow_unsat_is_never_the_answer():
    # Two copies of one point with different labels: unsat at every width. The unsat reported
    # is the full width's (its statement names 2-4-2), not a narrow attempt's.
    bad = Dataset(np.array([[0., 1.], [0., 1.], [1., 0.]]), np.array([0, 1, 1]))
    r = fit(make_problem(net([2, 4, 2]), bad), inproc())
    assert r.status == "unsat", r
    assert r.statement.startswith("no 2-4-2 network")
    assert any("1: unsat, 2: unsat" in n for n in r.notes), r.notes


def test_train_and_diff_exit_codes_agree(tmp_path, capsys):
    """One exit-code table: a fit is a witness (10, as verify's sat), no fit is unsat (0), for
    train and for diff --mode train alike (they used to disagree)."""
    import onnx
    p = tmp_path / "xor.csv"
    save_csv(p, XOR.x, XOR.y)
    rng = np.random.default_rng(0)
    for hidden, want in ((1, 0), (2, 10)):  # XOR: 2-1-2 cannot fit it, 2-2-2 can (above)
        model = tmp_path / f"n{hidden}.onnx"
        onnx.save(mlp_onnx([(rng.standard_normal((hidden, 2)).astype(np.float32), np.zeros(hidden, np.float32)),
                            (rng.standard_normal((2, hidden)).astype(np.float32), np.zeros(2, np.float32))]), model)
        args = [str(model), "--data", str(p)]
        assert main(["train", *args, "--encoding", "homog", "--timeout", "60"]) == want
        assert main(["diff", *args, "--mode", "train", "--encoding", "homog", "--backends", "z3"]) == want
        capsys.readouterr()


def test_train_help_documents_its_exit_codes(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes (train)" in out and "10  sat: weights exist" in out and "0   unsat: no network" in out


def test_training_refuses_dag_layers_clearly():
    """A residual (two-input) affine node or a sparse weight: one line naming the node."""
    import numpy as np
    from nnsmt.data import Dataset
    from nnsmt.errors import UnsupportedError
    from nnsmt.ir import Affine, Graph, Input, Relu, Sparse
    from nnsmt.queries.train import make_problem
    eye = np.eye(2)
    for extra, why in ((dict(more=(("r", Const(eye)),)), "several values"), ({}, "sparse")):
        w = Const(eye) if extra else Sparse.from_dense(eye)
        g = Graph((Input("x", 2), Affine("a", "x", Const(eye), Const(np.zeros(2))), Relu("r", "a"),
                   Affine("y", "r", w, Const(np.zeros(2)), **extra)), ("y",), {"source": "res.json"}).check()
        data = Dataset(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1]))
        with pytest.raises(UnsupportedError, match=f"res.json: training takes chains.*'y'.*{why}"):
            make_problem(g, data)
