"""ONNX lowering for VNN-LIB 2: hidden nodes (`keep`), float semantics (`float_ops`), and the
onnxruntime evaluator / type queries that replay them.

Every model is built here with onnx.helper; expected values come from numpy (float64, from the
same float32 weights) or from onnxruntime, never from the lowering itself.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import onnx
from onnx import TensorProto, helper, numpy_helper

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'nnsmt[test]')")

from nnsmt.errors import InputError, UnsupportedError  # noqa: E402
from nnsmt.frontends.onnx_frontend import (load_onnx, onnx_io_types, ort_evaluator,  # noqa: E402
                                           value_type)
from nnsmt.interpret import evaluate, evaluate_exact  # noqa: E402
from nnsmt.ir import Affine, Relu, Sparse  # noqa: E402

F = TensorProto.FLOAT


# ---- fixture builders ----

def _f32(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def _save(path, nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return str(path)


def _io(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def _init(params):
    return [numpy_helper.from_array(v, k) for k, v in params.items()]


def two_layer(path, seed=0):
    """x[1,5] -> Sub mu (s) -> MatMul W1 (m1) -> Add b1 (a1) -> Relu (r1) -> MatMul W2 (m2)
    -> Add b2 (y): the ACAS Xu shape. Returns (path, float32 parameters)."""
    rng = np.random.default_rng(seed)
    p = {"mu": _f32(rng, 5), "W1": _f32(rng, 5, 6), "b1": _f32(rng, 6), "W2": _f32(rng, 6, 3),
         "b2": _f32(rng, 3)}
    nodes = [helper.make_node("Sub", ["x", "mu"], ["s"]),
             helper.make_node("MatMul", ["s", "W1"], ["m1"]),
             helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("MatMul", ["r1", "W2"], ["m2"]),
             helper.make_node("Add", ["m2", "b2"], ["y"])]
    return _save(path, nodes, [_io("x", [1, 5])], [_io("y", [1, 3])], _init(p)), p


def two_layer_numpy(p, x):
    """Every tensor of `two_layer` in float64 from the float32 parameters (the exact value up
    to float64 rounding)."""
    q = {k: v.astype(np.float64) for k, v in p.items()}
    s = x - q["mu"]
    m1 = s @ q["W1"]
    a1 = m1 + q["b1"]
    r1 = np.maximum(a1, 0)
    m2 = r1 @ q["W2"]
    return {"x": x, "s": s, "m1": m1, "a1": a1, "r1": r1, "m2": m2, "y": m2 + q["b2"]}


def conv_bn_relu(path, seed=1):
    """x[1,2,5,5] -> Conv (c) -> BatchNormalization (bn) -> Relu (y)."""
    rng = np.random.default_rng(seed)
    p = {"W": _f32(rng, 3, 2, 3, 3), "B": _f32(rng, 3), "g": _f32(rng, 3), "beta": _f32(rng, 3),
         "mean": _f32(rng, 3), "var": np.abs(_f32(rng, 3)) + 0.5}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["bn"],
                              epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["y"])]
    return _save(path, nodes, [_io("x", [1, 2, 5, 5])], [_io("y", [1, 3, 5, 5])], _init(p))


def fractions(env, name):
    return [Fraction(v) for v in np.asarray(env[name]).ravel()]


def floats(env, name):
    return np.array([float(v) for v in np.asarray(env[name]).ravel()])


def x32(rng, n):
    """A random input that float32 represents (onnxruntime and the IR then see the same x)."""
    return rng.uniform(-2, 2, n).astype(np.float32).astype(np.float64)


def affines(g):
    return [n for n in g.nodes if isinstance(n, Affine)]


# ---- keep: hidden nodes ----

def test_kept_values_are_exact_ir_values_matching_onnxruntime(tmp_path):
    path, p = two_layer(tmp_path / "net.onnx")
    keep = ["m1", "r1", "a1"]
    g = load_onnx(path, keep=keep)
    names = g.onnx_names()
    assert g.outputs[1:] == tuple(names[k] for k in keep)
    assert isinstance(g.node(names["r1"]), Relu)
    assert g.meta["onnx_keep"] == "m1,r1,a1"
    shapes = g.shapes()
    assert [shapes[names[k]] for k in keep] == [(1, 6)] * 3
    ref = ort_evaluator(path, keep=keep)
    plain = load_onnx(path)
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = x32(rng, 5)
        env = evaluate_exact(g, {"x": x})
        want = two_layer_numpy(p, x)
        got_ort = ref(x)
        assert isinstance(got_ort, tuple) and len(got_ort) == 4
        for k, o, y_ort in zip(["y"] + keep, g.outputs, got_ort):
            got = floats(env, o)
            assert np.allclose(got, want[k].ravel(), rtol=1e-12, atol=1e-12), k
            assert np.allclose(got, y_ort, rtol=1e-5, atol=1e-5), k
        # keeping values does not change the outputs' exact values
        assert fractions(env, g.outputs[0]) == \
            fractions(evaluate_exact(plain, {"x": x}), plain.outputs[0])


def test_kept_pending_map_is_emitted_and_read_downstream(tmp_path):
    # Gemm -> Add -> Relu: the Gemm output is a pending map (Gemm and Add compose into one node)
    rng = np.random.default_rng(2)
    p = {"W": _f32(rng, 4, 3), "b": _f32(rng, 4), "c": _f32(rng, 4)}
    path = _save(tmp_path / "g.onnx",
                 [helper.make_node("Gemm", ["x", "W", "b"], ["gm"], transB=1),
                  helper.make_node("Add", ["gm", "c"], ["ad"]),
                  helper.make_node("Relu", ["ad"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 4])], _init(p))
    assert "gm" not in load_onnx(path).onnx_names()  # without keep it is no IR value
    g = load_onnx(path, keep=["gm", "ad"])
    names = g.onnx_names()
    assert g.outputs == (names["y"], names["gm"], names["ad"])
    assert [type(g.node(names[k])) for k in ("gm", "ad")] == [Affine, Affine]
    assert g.node(names["ad"]).x == names["gm"]  # the Add composes from the kept node
    assert g.node(names["y"]).x == names["ad"]
    x = x32(rng, 3)
    env = evaluate_exact(g, {"x": x})
    gm = x @ p["W"].T.astype(np.float64) + p["b"]
    assert np.allclose(floats(env, names["gm"]), gm, rtol=1e-12, atol=1e-12)
    assert np.allclose(floats(env, names["ad"]), gm + p["c"], rtol=1e-12, atol=1e-12)
    assert np.allclose(ort_evaluator(path, keep=["gm"])(x)[1], gm, rtol=1e-5, atol=1e-5)


def test_kept_value_held_by_another_node_gets_its_own(tmp_path):
    # Relu -> Identity (id) -> MatMul; x is kept too (its Input node), y both output and kept
    rng = np.random.default_rng(3)
    p = {"W": _f32(rng, 3, 2)}
    path = _save(tmp_path / "id.onnx",
                 [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["id"]),
                  helper.make_node("MatMul", ["id", "W"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 2])], _init(p))
    g = load_onnx(path, keep=["id", "x", "y"])
    names = g.onnx_names()
    assert names["r"] != names["id"] and isinstance(g.node(names["id"]), Affine)
    assert g.node(names["y"]).x == names["id"]  # later ops read the kept node
    assert g.outputs == (names["y"], names["id"], "x", names["y"])  # positions stay fixed
    x = x32(rng, 3)
    env = evaluate_exact(g, {"x": x})
    assert fractions(env, names["id"]) == [Fraction(max(v, 0.0)) for v in x]
    assert fractions(env, g.outputs[2]) == [Fraction(v) for v in x]


def test_kept_value_off_the_output_path_is_lowered(tmp_path):
    rng = np.random.default_rng(4)
    p = {"k": _f32(rng, 3), "W": _f32(rng, 3, 2)}
    path = _save(tmp_path / "side.onnx",
                 [helper.make_node("Mul", ["x", "k"], ["side"]),
                  helper.make_node("MatMul", ["x", "W"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 2])], _init(p))
    g = load_onnx(path, keep=["side"])
    x = x32(rng, 3)
    got = floats(evaluate_exact(g, {"x": x}), g.outputs[1])
    assert np.allclose(got, x * p["k"].astype(np.float64), rtol=1e-12, atol=1e-12)
    assert np.allclose(ort_evaluator(path, keep=["side"])(x)[1], got, rtol=1e-6, atol=1e-6)


def test_keep_errors_are_one_line_and_name_the_value(tmp_path):
    path, _ = two_layer(tmp_path / "net.onnx")
    with pytest.raises(InputError) as e:
        load_onnx(path, keep=["nope"])
    assert str(e.value) == f"{path}: no value named 'nope' in the model (hidden node)"
    # an initializer kept: a constant value of its own (zero weights, its values as the bias)
    g = load_onnx(path, keep=["W1"])
    node = g.node(g.outputs[-1])
    assert isinstance(node, Affine) and node.onnx == "W1" and isinstance(node.weight, Sparse)
    assert node.weight.data.size == 0
    w1 = numpy_helper.to_array(next(t for t in onnx.load(path).graph.initializer if t.name == "W1"))
    assert np.array_equal(node.bias.value, w1.astype(np.float64).ravel())
    with pytest.raises(InputError, match="no value named 'nope'"):
        ort_evaluator(path, keep=["nope"])


def test_keep_and_a_dropped_softmax(tmp_path):
    rng = np.random.default_rng(7)
    p = {"W": _f32(rng, 3, 4)}
    path = _save(tmp_path / "sm.onnx",
                 [helper.make_node("MatMul", ["x", "W"], ["logits"]),
                  helper.make_node("Softmax", ["logits"], ["prob"], axis=-1)],
                 [_io("x", [1, 3])], [_io("prob", [1, 4])], _init(p))
    g = load_onnx(path, keep=["logits"])  # the output stays the logits, as without keep
    assert g.meta["dropped_softmax"] == "true" and g.outputs[0] == g.outputs[1]
    x = x32(rng, 3)
    logits = x @ p["W"].astype(np.float64)
    assert np.allclose(floats(evaluate_exact(g, {"x": x}), g.outputs[1]), logits, atol=1e-12)
    # keeping the Softmax's own value lowers it exactly: the kept value is the probabilities
    g = load_onnx(path, keep=["prob"])
    assert "dropped_softmax" not in g.meta
    e = np.exp(logits - logits.max())
    assert np.allclose(evaluate(g, {"x": x})[g.outputs[1]], e / e.sum(), rtol=1e-9)
    assert np.allclose(ort_evaluator(path, keep=["prob"])(x)[1], e / e.sum(), rtol=1e-5)


# ---- float_ops: one rounding op per node ----

def _same_exact_values(path, graphs, n, seed=8, trials=3):
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        x = x32(rng, n)
        envs = [evaluate_exact(g, {"x": x}) for g in graphs]
        assert fractions(envs[0], graphs[0].outputs[0]) == fractions(envs[1], graphs[1].outputs[0])


def test_float_ops_cuts_the_acas_chain_at_every_rounding_op(tmp_path):
    path, _ = two_layer(tmp_path / "net.onnx")
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    assert len(affines(real)) == 2 and "float_ops" not in real.meta
    # Sub, MatMul + its bias Add, MatMul + its bias Add: a MatMul and the constant added to it
    # are one sum with one more term (any order of which the bound covers), so one node each
    assert [a.onnx for a in affines(fl)] == ["s", "a1", "y"]
    assert fl.meta["float_ops"] == "true"
    _same_exact_values(path, (real, fl), 5)


def test_float_ops_batchnorm_is_two_stages_after_the_conv(tmp_path):
    path = conv_bn_relu(tmp_path / "cbr.onnx")
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    assert len(affines(real)) == 1  # Conv and BatchNormalization fold into one map
    a = affines(fl)
    assert [n.onnx for n in a] == ["c", "", "bn"]
    # stage 1 is x - mean (a unit diagonal), stage 2 reads it with the per-channel scale
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    w1 = a[1].weight.dense() if hasattr(a[1].weight, "dense") else a[1].weight.value
    assert np.array_equal(np.asarray(w1, dtype=np.float64), np.eye(75))
    b1 = np.asarray(a[1].bias.value, dtype=np.float64).reshape(3, 25)
    assert np.array_equal(b1, -np.repeat(inits["mean"].astype(np.float64)[:, None], 25, axis=1))
    assert a[2].x == a[1].name and a[1].x == a[0].name
    _same_exact_values(path, (real, fl), 50)


def test_float_ops_structural_ops_compose_on_either_side(tmp_path):
    # Relu -> Transpose -> MatMul -> Reshape -> Add -> Relu: the Transpose composes into the
    # MatMul's node, the Reshape too, and the Add of a constant (the MatMul's bias: one more
    # term of the same sum, see the next test for a second rounding op)
    rng = np.random.default_rng(9)
    p = {"W": _f32(rng, 2, 4), "c": _f32(rng, 12), "shape": np.array([1, 12], np.int64)}
    path = _save(tmp_path / "st.onnx",
                 [helper.make_node("Relu", ["x"], ["r"]),
                  helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
                  helper.make_node("MatMul", ["t", "W"], ["m"]),
                  helper.make_node("Reshape", ["m", "shape"], ["rs"]),
                  helper.make_node("Add", ["rs", "c"], ["a"]),
                  helper.make_node("Relu", ["a"], ["y"])],
                 [_io("x", [2, 3])], [_io("y", [1, 12])], _init(p))
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    assert len(affines(real)) == 1
    assert [a.onnx for a in affines(fl)] == ["a"]
    assert affines(fl)[0].x == fl.onnx_names()["r"]
    _same_exact_values(path, (real, fl), 6)


def test_float_ops_piecewise_linear_identities_do_not_absorb_a_rounding_op(tmp_path):
    # Add c -> Clip(min=1): max(v, 1) = 1 + relu(v - 1) is exact in reals only; the Add's node
    # must hold x + c itself, not x + c - 1
    rng = np.random.default_rng(10)
    p = {"c": _f32(rng, 3), "lo": np.array(1.0, np.float32)}
    path = _save(tmp_path / "clip.onnx",
                 [helper.make_node("Add", ["x", "c"], ["a"]),
                  helper.make_node("Clip", ["a", "lo"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 3])], _init(p))
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    assert np.array_equal(np.asarray(affines(real)[0].bias.value, np.float64),
                          p["c"].astype(np.float64) - 1)
    first = affines(fl)[0]
    assert first.onnx == "a"
    assert np.array_equal(np.asarray(first.bias.value, np.float64), p["c"].astype(np.float64))
    _same_exact_values(path, (real, fl), 3)


def test_float_ops_sum_reads_distinct_values(tmp_path):
    # Sum(r, r, -r, x): composed, r's coefficients 1 + 1 - 1 would merge into one (a smaller
    # rounding bound than the float sum of four terms has); with float_ops each is its own term
    path = _save(tmp_path / "sum.onnx",
                 [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["nr"]),
                  helper.make_node("Sum", ["r", "r", "nr", "x"], ["s"]),
                  helper.make_node("Relu", ["s"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 3])])
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    (s,) = [a for a in affines(fl) if a.onnx == "s"]
    assert len(s.terms()) == 4 and len({x for x, _ in s.terms()}) == 4
    assert len(affines(real)[-1].terms()) == 2  # r and x, merged
    _same_exact_values(path, (real, fl), 3)


def test_float_ops_refuses_a_rounding_cast(tmp_path):
    def model(to):
        return _save(tmp_path / f"cast{to}.onnx",
                     [helper.make_node("Cast", ["x"], ["c"], to=to), helper.make_node("Relu", ["c"], ["r"]),
                      helper.make_node("Cast", ["r"], ["y"], to=F)],
                     [_io("x", [1, 3])], [_io("y", [1, 3])])
    narrow = model(TensorProto.FLOAT16)
    assert load_onnx(narrow).outputs  # real semantics: a cast is the identity
    with pytest.raises(UnsupportedError) as e:
        load_onnx(narrow, float_ops=True)
    assert "float32 to float16 may round" in str(e.value) and str(narrow) in str(e.value)
    wide = model(TensorProto.DOUBLE)  # float32 -> float64 -> (Relu) -> float32: the second rounds
    with pytest.raises(UnsupportedError, match="float64 to float32 may round"):
        load_onnx(wide, float_ops=True)
    same = model(F)
    assert load_onnx(same, float_ops=True).meta["float_ops"] == "true"


def test_float_ops_with_keep(tmp_path):
    path, p = two_layer(tmp_path / "net.onnx")
    g = load_onnx(path, keep=["m1", "r1"], float_ops=True)
    names = g.onnx_names()
    # s, m1 (kept, so its own node), a1 = m1 + b1, and m2 with its bias
    assert g.outputs[1:] == (names["m1"], names["r1"]) and len(affines(g)) == 4
    x = x32(np.random.default_rng(11), 5)
    want = two_layer_numpy(p, x)
    assert np.allclose(floats(evaluate_exact(g, {"x": x}), names["m1"]), want["m1"].ravel(),
                       rtol=1e-12, atol=1e-12)


# ---- onnxruntime evaluator and types ----

def test_ort_evaluator_without_optimisation(tmp_path, monkeypatch):
    path = conv_bn_relu(tmp_path / "cbr.onnx")
    levels = []
    real_session = ort.InferenceSession

    def spy(model, opts, **kw):
        levels.append(opts.graph_optimization_level)
        return real_session(model, opts, **kw)
    monkeypatch.setattr(ort, "InferenceSession", spy)
    fast, slow = ort_evaluator(path), ort_evaluator(path, optimize=False)
    assert levels[1] == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert levels[0] != ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    rng = np.random.default_rng(12)
    for _ in range(3):
        x = x32(rng, 50)
        a, b = fast(x), slow(x)
        assert isinstance(a, np.ndarray) and a.shape == (75,)  # one output: a vector, as before
        assert np.allclose(a, b, rtol=1e-5, atol=1e-5)
    both = ort_evaluator(path, keep=["c", "bn"], optimize=False)(x)
    assert len(both) == 3 and np.array_equal(both[0], np.maximum(both[2], 0))
    g = load_onnx(path, keep=["c", "bn"])
    env = evaluate(g, {"x": x})
    for o, y in zip(g.outputs, both):
        assert np.allclose(env[o], y, rtol=1e-5, atol=1e-5)


def _typed_model(path):
    """Inputs a: float32 [1,3], b: float64 [N,3], k: int64 [2] (unused); y = float64(a +
    float32(b))."""
    return _save(path,
                 [helper.make_node("Cast", ["b"], ["bc"], to=F), helper.make_node("Add", ["a", "bc"], ["s"]),
                  helper.make_node("Cast", ["s"], ["y"], to=TensorProto.DOUBLE)],
                 [_io("a", [1, 3]), _io("b", ["N", 3], TensorProto.DOUBLE),
                  _io("k", [2], TensorProto.INT64)],
                 [_io("y", ["N", 3], TensorProto.DOUBLE)],
                 [numpy_helper.from_array(np.zeros(3, np.float32), "unused_init")])


def test_onnx_io_types_and_value_type(tmp_path):
    path = _typed_model(tmp_path / "typed.onnx")
    m = onnx.load(path)
    m.graph.input.append(helper.make_tensor_value_info("unused_init", F, [3]))  # IR-3 style
    onnx.save(m, path)
    assert onnx_io_types(path) == {
        "inputs": [("a", "float32", (1, 3)), ("b", "float64", (None, 3)), ("k", "int64", (2,))],
        "outputs": [("y", "float64", (None, 3))]}
    assert value_type(path, "bc") == "float32" and value_type(path, "s") == "float32"
    assert value_type(path, "y") == "float64" and value_type(path, "b") == "float64"
    with pytest.raises(InputError, match="no value named 'zz'"):
        value_type(path, "zz")


def test_type_queries_on_unreadable_models(tmp_path):
    missing = tmp_path / "none.onnx"
    with pytest.raises(InputError, match="no such file") as e:
        onnx_io_types(missing)
    assert str(missing) in str(e.value)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model\xff" * 10)
    for f in (onnx_io_types, lambda p: value_type(p, "x")):
        with pytest.raises(InputError) as e:
            f(junk)
        assert str(junk) in str(e.value) and "\n" not in str(e.value)


def test_float_ops_a_second_constant_is_a_second_rounding_op(tmp_path):
    # MatMul -> Add c1 -> Add c2: the first Add is the MatMul's bias (one node); the second
    # rounds the biased sum again, so it reads a node of its own
    rng = np.random.default_rng(12)
    p = {"W": _f32(rng, 3, 2), "c1": _f32(rng, 2), "c2": _f32(rng, 2)}
    path = _save(tmp_path / "two_bias.onnx",
                 [helper.make_node("MatMul", ["x", "W"], ["m"]),
                  helper.make_node("Add", ["m", "c1"], ["a"]),
                  helper.make_node("Add", ["a", "c2"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 2])], _init(p))
    real, fl = load_onnx(path), load_onnx(path, float_ops=True)
    assert len(affines(real)) == 1
    assert [a.onnx for a in affines(fl)] == ["a", "y"]
    _same_exact_values(path, (real, fl), 3)
