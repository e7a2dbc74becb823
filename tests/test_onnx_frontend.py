"""ONNX frontend: every op against onnxruntime, exact folding, benchmark networks, bad input."""

from __future__ import annotations

import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import onnx  # a dependency of nnsmt: no skip
from onnx import TensorProto, helper, numpy_helper

# every op is compared with onnxruntime (the test extra)
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'nnsmt[test]')")

from nnsmt.errors import BackendUnavailable, InputError, UnsupportedError  # noqa: E402
from nnsmt.frontends import load_network, load_onnx, ort_evaluator  # noqa: E402
from nnsmt.interpret import evaluate, evaluate_exact  # noqa: E402
from nnsmt.ir import Affine, Relu, Sigmoid  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
BENCH_NETS = sorted(BENCH.glob("*/*.onnx")) if BENCH.is_dir() else []
RNG = np.random.default_rng(1234)


def f32(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def save(path, nodes, inits=None, in_shape=(1, 3), opset=13, out_shape=None):
    """Write a one-input ('in'), one-output ('out') model; inits maps name -> array."""
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("in", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def run(graph, x):
    return evaluate(graph, {"x": x})[graph.outputs[0]]


def assert_matches_ort(path, trials=4, tol=1e-5, lo=-2.0, hi=2.0):
    """IR (float64) equals onnxruntime (float32) on random inputs; returns the graph."""
    graph = load_onnx(path)
    ref = ort_evaluator(path)
    for _ in range(trials):
        x = RNG.uniform(lo, hi, graph.inputs[0].dim)
        got, want = run(graph, x), ref(x)
        assert got.shape == want.shape
        assert np.all(np.abs(got - want) <= tol * np.maximum(1.0, np.abs(want))), (got, want)
    return graph


def node(op, ins, outs="out", name="", **attrs):
    return helper.make_node(op, list(ins), [outs] if isinstance(outs, str) else list(outs),
                            name=name or None, **attrs)


# ---- every op and attribute variant, against onnxruntime ----

def I64(*v):
    return np.array(v, dtype=np.int64)


OP_CASES = {
    "gemm": ([node("Gemm", ["in", "W", "C"])], {"W": f32(3, 4), "C": f32(4)}, (1, 3), 13),
    "gemm_alpha_beta_transB": ([node("Gemm", ["in", "W", "C"], alpha=0.3, beta=-1.7, transB=1)],
                               {"W": f32(4, 3), "C": f32(1, 4)}, (1, 3), 13),
    "gemm_transA": ([node("Gemm", ["in", "W", "C"], transA=1)], {"W": f32(3, 2), "C": f32(2)},
                    (3, 1), 11),
    "gemm_act_as_B": ([node("Gemm", ["W", "in", "C"], transA=1, beta=0.5)],
                      {"W": f32(3, 4), "C": f32(2)}, (3, 2), 13),
    "gemm_act_as_B_transB": ([node("Gemm", ["W", "in"], transB=1, alpha=2.0)], {"W": f32(4, 3)},
                             (2, 3), 13),
    "gemm_rows": ([node("Gemm", ["in", "W", "C"])], {"W": f32(3, 2), "C": f32(3, 2)}, (3, 3), 13),
    "matmul_x_W": ([node("MatMul", ["in", "W"])], {"W": f32(5, 3)}, (1, 5), 13),
    "matmul_W_x": ([node("MatMul", ["W", "in"])], {"W": f32(2, 3)}, (3,), 13),
    "matmul_1d_x": ([node("MatMul", ["in", "W"])], {"W": f32(4, 3)}, (4,), 13),
    "matmul_1d_W": ([node("MatMul", ["in", "W"])], {"W": f32(4)}, (2, 4), 13),
    "matmul_rows": ([node("MatMul", ["in", "W"])], {"W": f32(3, 4)}, (1, 2, 3), 13),
    "matmul_W_cols": ([node("MatMul", ["W", "in"])], {"W": f32(2, 3)}, (3, 2), 13),
    "add_broadcast": ([node("Add", ["in", "c"])], {"c": f32(4)}, (1, 2, 4), 13),
    "add_const_first": ([node("Add", ["c", "in"])], {"c": f32(2, 1)}, (1, 2, 3), 13),
    "add_repeats_x": ([node("Add", ["in", "c"], "t"), node("MatMul", ["t", "W"])],
                      {"c": f32(2, 3), "W": f32(3, 2)}, (1, 3), 13),
    "sub_x_c": ([node("Sub", ["in", "c"])], {"c": f32(3)}, (1, 3), 13),
    "sub_c_x": ([node("Sub", ["c", "in"], "t"), node("MatMul", ["t", "W"])],
                {"c": f32(1, 1), "W": f32(3, 2)}, (1, 3), 13),
    "mul": ([node("Mul", ["in", "c"], "t"), node("Gemm", ["t", "W"])],
            {"c": f32(3), "W": f32(3, 2)}, (1, 3), 13),
    "mul_const_first": ([node("Mul", ["c", "in"])], {"c": f32(2, 1)}, (2, 3), 13),
    "div": ([node("Gemm", ["in", "W"], "t"), node("Div", ["t", "c"])],
            {"W": f32(3, 4), "c": f32(4, lo=0.5, hi=3)}, (1, 3), 13),
    "flatten_axis2": ([node("Flatten", ["in"], "t", axis=2), node("MatMul", ["t", "W"])],
                      {"W": f32(3, 2)}, (1, 2, 3), 13),
    "flatten_neg_axis": ([node("Flatten", ["in"], "t", axis=-1), node("MatMul", ["t", "W"])],
                         {"W": f32(3, 2)}, (2, 3), 13),
    "flatten_axis0": ([node("Flatten", ["in"], "t", axis=0), node("MatMul", ["t", "W"])],
                      {"W": f32(6, 2)}, (2, 3), 9),
    "reshape_zero_minus1": ([node("Reshape", ["in", "s"], "t"), node("MatMul", ["t", "W"])],
                            {"s": I64(0, -1, 3), "W": f32(3, 2)}, (1, 6), 13),
    "reshape_column": ([node("Reshape", ["in", "s"], "t"), node("MatMul", ["W", "t"])],
                       {"s": I64(4, 1), "W": f32(3, 4)}, (1, 4), 13),
    "squeeze_attr_opset11": ([node("Squeeze", ["in"], "t", axes=[1]),
                              node("MatMul", ["t", "W"])], {"W": f32(4, 2)}, (1, 1, 4), 11),
    "squeeze_input_opset13": ([node("Squeeze", ["in", "a"], "t"), node("MatMul", ["t", "W"])],
                              {"a": I64(0), "W": f32(4, 2)}, (1, 4), 13),
    "squeeze_all": ([node("Squeeze", ["in"], "t"), node("MatMul", ["W", "t"])],
                    {"W": f32(2, 4)}, (1, 4, 1), 13),
    "unsqueeze_attr_opset11": ([node("Unsqueeze", ["in"], "t", axes=[-1]),
                                node("MatMul", ["W", "t"])], {"W": f32(2, 4)}, (4,), 11),
    "unsqueeze_input_opset13": ([node("Unsqueeze", ["in", "a"], "t"),
                                 node("MatMul", ["t", "W"])],
                                {"a": I64(0), "W": f32(4, 2)}, (4,), 13),
    "identity": ([node("Identity", ["in"], "t"), node("Gemm", ["t", "W"])], {"W": f32(3, 2)},
                 (1, 3), 13),
    "dropout_mask_unused": ([node("Dropout", ["in", "r"], ["t", "mask"]),
                             node("Gemm", ["t", "W"])],
                            {"r": np.array(0.5, np.float32), "W": f32(3, 2)}, (1, 3), 13),
    "dropout_opset10": ([node("Dropout", ["in"], "t", ratio=0.3), node("Relu", ["t"])], {},
                        (1, 3), 10),
    "constant": ([node("Constant", [], "c", value=numpy_helper.from_array(f32(3))),
                  node("Constant", [], "k", value_float=2.5),
                  node("Sub", ["in", "c"], "t"), node("Mul", ["t", "k"])], {}, (1, 3), 13),
    "batchnorm": ([node("BatchNormalization", ["in", "g", "b", "m", "v"], "t", epsilon=1e-3),
                   node("Relu", ["t"])],
                  {"g": f32(3), "b": f32(3), "m": f32(3), "v": f32(3, lo=0.1, hi=2)},
                  (1, 3, 2), 13),
    "batchnorm_after_gemm": ([node("Gemm", ["in", "W", "C"], "h", transB=1),
                              node("BatchNormalization", ["h", "g", "b", "m", "v"], "t"),
                              node("Relu", ["t"], "u"), node("Gemm", ["u", "W2"])],
                             {"W": f32(4, 3), "C": f32(4), "g": f32(4), "b": f32(4),
                              "m": f32(4), "v": f32(4, lo=0.1, hi=2), "W2": f32(4, 2)}, (1, 3),
                             11),
    "relu_sigmoid": ([node("Gemm", ["in", "W", "C"], "h"), node("Sigmoid", ["h"], "s"),
                      node("Gemm", ["s", "W2"], "h2"), node("Relu", ["h2"])],
                     {"W": f32(3, 4), "C": f32(4), "W2": f32(4, 2)}, (1, 3), 13),
    "relu_on_input": ([node("Relu", ["in"], "r"), node("Relu", ["r"], "r2"),
                       node("MatMul", ["r2", "W"])], {"W": f32(3, 2)}, (1, 3), 13),
    "transpose": ([node("Transpose", ["in"], "t", perm=[0, 2, 1]), node("MatMul", ["t", "W"])],
                  {"W": f32(2, 2)}, (1, 2, 3), 13),
    "only_identity": ([node("Identity", ["in"])], {}, (1, 3), 13),
    "symbolic_batch": ([node("Gemm", ["in", "W", "C"], transB=1)], {"W": f32(2, 3), "C": f32(2)},
                       ("N", 3), 13),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_matches_onnxruntime(tmp_path, case):
    nodes, inits, shape, opset = OP_CASES[case]
    graph = assert_matches_ort(save(tmp_path / f"{case}.onnx", nodes, inits, shape, opset))
    assert graph.meta["format"] == "onnx" and graph.meta["onnx_input"] == "in"
    assert sum(isinstance(n, Affine) for n in graph.nodes) <= 2  # runs of affine ops folded


def test_structure_names_and_meta(tmp_path):
    g = load_onnx(save(tmp_path / "m.onnx", *OP_CASES["relu_sigmoid"][:3]))
    assert [n.name for n in g.nodes] == ["x", "a1", "s1", "a2", "r2"]
    assert g.outputs == ("r2",) and g.inputs[0].lo is None and g.inputs[0].hi is None
    assert dict(g.meta) == {"source": str(tmp_path / "m.onnx"), "format": "onnx",
                            "onnx_input": "in", "onnx_output": "out", "input_shape": "1x3"}
    g = load_onnx(save(tmp_path / "r.onnx", *OP_CASES["relu_on_input"][:3]))
    assert [type(n) for n in g.nodes[1:]] == [Relu, Relu, Affine]
    assert load_onnx(save(tmp_path / "i.onnx", *OP_CASES["only_identity"][:3])).outputs == ("x",)


@pytest.mark.parametrize("opset,axis", [(13, None), (13, -1), (11, None), (11, 1)])
def test_final_softmax_dropped(tmp_path, opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    p = save(tmp_path / "s.onnx", [node("Gemm", ["in", "W", "C"], "logits"),
                                   node("Softmax", ["logits"], **attrs)],
             {"W": f32(3, 4), "C": f32(4)}, (1, 3), opset)
    g = assert_matches_ort(p)  # ort_evaluator returns the logits
    assert g.meta["dropped_softmax"] == "true" and g.meta["onnx_logits"] == "logits"
    assert not any(isinstance(n, Sigmoid) for n in g.nodes)


def test_sigmoid_layer_names(tmp_path):
    p = save(tmp_path / "s.onnx", [node("Sigmoid", ["in"], "s"), node("Gemm", ["s", "W"])],
             {"W": f32(3, 2)})
    assert [n.name for n in load_onnx(p).nodes] == ["x", "s1", "a2"]


def test_large_dense_pair_not_folded(tmp_path):
    # 120*120*120 > DENSE_FOLD_LIMIT: two Affine nodes; small pairs fold into one
    big = save(tmp_path / "big.onnx", [node("Gemm", ["in", "W1"], "h"), node("Gemm", ["h", "W2"])],
               {"W1": f32(120, 120), "W2": f32(120, 120)}, (1, 120))
    assert [n.name for n in assert_matches_ort(big, tol=1e-4).nodes] == ["x", "a1", "a2"]
    small = save(tmp_path / "small.onnx", [node("Gemm", ["in", "W1"], "h"),
                                           node("Gemm", ["h", "W2", "C"])],
                 {"W1": f32(3, 4), "W2": f32(4, 2), "C": f32(2)})
    g = assert_matches_ort(small)
    assert [n.name for n in g.nodes] == ["x", "a1"]
    W1, W2, C = (numpy_helper.to_array(t) for t in onnx.load(str(small)).graph.initializer)
    assert (g.node("a1").weight.fractions() == fracs(W2).T.dot(fracs(W1).T)).all()


# ---- exactness ----

def fracs(a):
    return np.array([[Fraction(float(v)) for v in row] for row in np.atleast_2d(a)], dtype=object)


def test_div_by_three_is_exact(tmp_path):
    W, C = f32(3, 2), f32(2)
    p = save(tmp_path / "d.onnx", [node("Gemm", ["in", "W", "C"], "h"), node("Div", ["h", "c"])],
             {"W": W, "C": C, "c": np.array([3.0], np.float32)})
    (a,) = [n for n in load_onnx(p).nodes if isinstance(n, Affine)]
    assert not a.weight.is_float  # 1/3 is not a float: Fractions
    assert (a.weight.fractions() == fracs(W).T / 3).all()
    assert (a.bias.fractions() == fracs(C)[0] / 3).all()


def test_weights_bit_exact_without_arithmetic(tmp_path):
    W, C = f32(4, 3), f32(4)
    p = save(tmp_path / "g.onnx", [node("Sub", ["in", "z"], "t"), node("Flatten", ["t"], "f"),
                                   node("Gemm", ["f", "W", "C"], transB=1)],
             {"z": np.zeros((1, 3), np.float32), "W": W, "C": C})
    (a,) = [n for n in load_onnx(p).nodes if isinstance(n, Affine)]
    assert a.weight.is_float and np.array_equal(a.weight.value, W.astype(np.float64))
    assert np.array_equal(a.bias.value, C.astype(np.float64))


@pytest.mark.skipif(not BENCH_NETS, reason=f"{BENCH} is missing")
def test_acas_weights_bit_exact():
    acas = next(p for p in BENCH_NETS if p.name.startswith("ACASXU"))
    w = numpy_helper.to_array(next(t for t in onnx.load(str(acas)).graph.initializer
                                   if t.name == "Operation_1_MatMul_W"))
    assert np.array_equal(load_onnx(acas).node("a1").weight.value, w.T.astype(np.float64))


def test_mean_subtraction_bias_exact(tmp_path):
    # bias = C - W c must be the exact rational, not a float64 rounding
    W, C, c = f32(3, 5), f32(5), f32(1, 3)
    p = save(tmp_path / "m.onnx", [node("Sub", ["in", "c"], "t"), node("Mul", ["t", "k"], "u"),
                                   node("Gemm", ["u", "W", "C"])],
             {"W": W, "C": C, "c": c, "k": np.array([0.1], np.float32)})
    (a,) = [n for n in load_onnx(p).nodes if isinstance(n, Affine)]
    k = Fraction(float(np.float32(0.1)))
    want_w = fracs(W).T * k
    want_b = fracs(C)[0] - fracs(W).T.dot(fracs(c)[0]) * k
    assert (a.weight.fractions() == want_w).all() and (a.bias.fractions() == want_b).all()
    assert_matches_ort(p)


def test_exact_evaluation_matches_ort(tmp_path):
    p = save(tmp_path / "e.onnx", *OP_CASES["batchnorm_after_gemm"][:3])
    g, ref = load_onnx(p), ort_evaluator(p)
    x = RNG.uniform(-1, 1, 3)
    exact = evaluate_exact(g, {"x": x})[g.outputs[0]]
    assert np.allclose([float(v) for v in exact], ref(x), rtol=1e-5, atol=1e-5)


def test_batchnorm_fold_is_float64_rounding(tmp_path):
    g_, b_, m_, v_ = f32(3), f32(3), f32(3), f32(3, lo=0.1, hi=2)
    p = save(tmp_path / "bn.onnx", [node("BatchNormalization", ["in", "g", "b", "m", "v"],
                                         epsilon=1e-3)],
             {"g": g_, "b": b_, "m": m_, "v": v_}, (1, 3))
    (a,) = [n for n in load_onnx(p).nodes if isinstance(n, Affine)]
    s = g_.astype(float) / np.sqrt(v_.astype(float) + float(np.float32(1e-3)))
    assert np.array_equal(np.diag(a.weight.value), s)
    want = [Fraction(b) - Fraction(m) * Fraction(sc)
            for b, m, sc in zip(b_.astype(float), m_.astype(float), s)]
    assert (a.bias.fractions() == want).all()


finite = st.floats(-1e150, 1e150, allow_nan=False, allow_infinity=False, allow_subnormal=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite, st.booleans()), min_size=1, max_size=8))
def test_exact_arithmetic_helpers(rows):
    # the vectorised float fast paths (two-product, two-sum, scaled ints) equal Fractions
    from nnsmt.frontends.onnx_frontend import _add, _dot, _mul, _recip
    a = np.array([r[0] for r in rows])
    b = np.empty(len(rows), dtype=object)  # some values non-dyadic, to cover the rational paths
    b[:] = [Fraction(r[1]) / 3 if r[2] else Fraction(r[1]) for r in rows]
    for y in (np.array([r[1] for r in rows]), b):
        Y = [Fraction(v) for v in y]
        assert [Fraction(v) for v in _mul(a, y)] == [Fraction(x) * v for x, v in zip(a, Y)]
        assert [Fraction(v) for v in _add(a, y)] == [Fraction(x) + v for x, v in zip(a, Y)]
        assert Fraction(_dot(a[None, :], y)[0]) == sum(Fraction(x) * v for x, v in zip(a, Y))
        nz = [v for v in Y if v != 0 and abs(v) > 1e-300]
        if nz:
            assert all(Fraction(r) * v == 1 for r, v in zip(_recip(np.array(nz, dtype=object)), nz))


# ---- random MLPs ----

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), widths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       style=st.sampled_from(["gemm", "gemm_transB", "matmul_add", "matmul_left"]))
def test_random_mlp_matches_onnxruntime(seed, widths, style):
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], {}, "in"
    for k, (m, n) in enumerate(zip(widths, widths[1:])):
        W = rng.standard_normal((m, n)).astype(np.float32)
        inits[f"b{k}"] = rng.standard_normal(n).astype(np.float32)
        y = "out" if k == len(widths) - 2 else f"h{k}"
        if style == "gemm":
            inits[f"W{k}"] = W
            nodes.append(node("Gemm", [x, f"W{k}", f"b{k}"], f"z{k}"))
        elif style == "gemm_transB":
            inits[f"W{k}"] = np.ascontiguousarray(W.T)
            nodes.append(node("Gemm", [x, f"W{k}", f"b{k}"], f"z{k}", transB=1))
        elif style == "matmul_add":
            inits[f"W{k}"] = W
            nodes += [node("MatMul", [x, f"W{k}"], f"m{k}"),
                      node("Add", [f"m{k}", f"b{k}"], f"z{k}")]
        else:  # W^T @ x on 1-D vectors, as the VNN-COMP test networks
            inits[f"W{k}"] = np.ascontiguousarray(W.T)
            nodes += [node("MatMul", [f"W{k}", x], f"m{k}"),
                      node("Add", [f"m{k}", f"b{k}"], f"z{k}")]
        if y == "out":
            nodes.append(node("Identity", [f"z{k}"], "out"))
        else:
            nodes.append(node("Relu", [f"z{k}"], y))
        x = y
    shape = (widths[0],) if style == "matmul_left" else (1, widths[0])
    with tempfile.TemporaryDirectory() as d:
        graph = assert_matches_ort(save(Path(d) / "mlp.onnx", nodes, inits, shape), trials=3)
    assert sum(isinstance(n, Relu) for n in graph.nodes) == len(widths) - 2


# ---- the benchmark networks ----

@pytest.mark.skipif(not BENCH_NETS, reason=f"{BENCH} is missing")
@pytest.mark.parametrize("net", BENCH_NETS, ids=lambda p: p.name)
def test_benchmark_network_matches_onnxruntime(net):
    lo, hi = (0.0, 1.0) if "mnist" in net.name else (-1.0, 1.0)
    assert_matches_ort(net, trials=3, tol=1e-4, lo=lo, hi=hi)


@pytest.mark.skipif(not BENCH_NETS, reason=f"{BENCH} is missing")
def test_mnist_layers():
    # load speed is measured by bench/compile_speed.py, not asserted here
    g = load_network(BENCH / "mnistfc" / "mnist-net_256x2.onnx")
    assert [n.weight.shape for n in g.nodes if isinstance(n, Affine)] == [(256, 784), (256, 256),
                                                                          (10, 256)]
    assert g.meta["input_shape"] == "1x784x1"


# ---- bad input: one-line InputErrors naming the file (and node) ----

def one_line_error(path, cls=InputError, *needles):
    with pytest.raises(cls) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for s in needles:
        assert s in msg, msg
    return msg


@pytest.mark.skipif(not BENCH_NETS, reason=f"{BENCH} is missing")
def test_truncated_file(tmp_path):
    p = tmp_path / "trunc.onnx"
    p.write_bytes(BENCH_NETS[0].read_bytes()[:100])
    one_line_error(p, InputError, "not a valid ONNX model")


def test_random_bytes_and_missing_file(tmp_path):
    p = tmp_path / "noise.onnx"
    p.write_bytes(np.random.default_rng(7).bytes(2000))
    one_line_error(p)
    one_line_error(tmp_path / "absent.onnx")


@pytest.mark.skipif(not BENCH_NETS, reason=f"{BENCH} is missing")
def test_corrupted_models_fail_cleanly(tmp_path):
    # byte flips often still parse as protobuf: every failure must be a one-line InputError
    src = (BENCH / "vnncomp-test" / "test_small.onnx").read_bytes()
    rng = np.random.default_rng(3)
    for i in range(150):
        b = bytearray(src)
        b[rng.integers(len(b))] = rng.integers(256)
        p = tmp_path / f"flip{i}.onnx"
        p.write_bytes(bytes(b))
        try:
            load_onnx(p)
        except InputError as e:
            assert "\n" not in str(e) and str(p) in str(e)


def test_unsupported_op(tmp_path):
    p = save(tmp_path / "lrn.onnx", [node("LRN", ["in"], name="norm1", size=1)], {}, (1, 1, 2, 2))
    msg = one_line_error(p, UnsupportedError, "node 'norm1' (LRN) is not supported",
                         "supported ops: Abs, Add, And, ArgMax, AveragePool")
    assert msg.startswith(f"{p}: ")
    p = save(tmp_path / "unnamed.onnx", [node("Relu", ["in"], "r"), node("Erf", ["r"])])
    one_line_error(p, UnsupportedError, "node #1 (Erf)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_initializer(tmp_path, bad):
    W = f32(3, 2)
    W[1, 1] = bad
    p = save(tmp_path / "nan.onnx", [node("Gemm", ["in", "Wbad"])], {"Wbad": W})
    one_line_error(p, InputError, "initializer 'Wbad'", "NaN or Inf")


def test_unsupported_configurations(tmp_path):
    p = save(tmp_path / "mm.onnx", [node("Gemm", ["in", "in"], name="sq")], {}, (3, 3))
    one_line_error(p, UnsupportedError, "node 'sq' (Gemm)", "both operands")
    # a softmax inside the network or over several groups and c / x lower to exact
    # elementwise nodes (tests/test_elementwise.py)
    from nnsmt.ir import ELEMENTWISE
    for p in (save(tmp_path / "sm.onnx", [node("Softmax", ["in"], "s", name="soft"), node("Relu", ["s"])]),
              save(tmp_path / "sm2.onnx", [node("Softmax", ["in"], axis=-1)], {}, (2, 3)),
              save(tmp_path / "cx.onnx", [node("Div", ["c", "in"], name="inv")], {"c": f32(3)})):
        assert any(isinstance(n, ELEMENTWISE) for n in load_onnx(p).nodes)
    p = save(tmp_path / "dz.onnx", [node("Div", ["in", "c"])], {"c": np.zeros(3, np.float32)})
    one_line_error(p, InputError, "divides by zero")
    p = save(tmp_path / "do.onnx", [node("Dropout", ["in"], ["t", "out"], name="d")], {}, (1, 3),
             out_shape=None)
    one_line_error(p, UnsupportedError, "node 'd' (Dropout)", "mask")


def test_load_network_dispatch(tmp_path):
    p = save(tmp_path / "m.onnx", *OP_CASES["gemm"][:3])
    assert load_network(p).meta["format"] == "onnx"
    with pytest.raises(InputError, match=r"unsupported model format '\.tflite' \(supported: .*\.onnx"):
        load_network(tmp_path / "m.tflite")


def test_ort_evaluator_without_onnxruntime(tmp_path, monkeypatch):
    p = save(tmp_path / "m.onnx", *OP_CASES["gemm"][:3])
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime"):
        ort_evaluator(p)
