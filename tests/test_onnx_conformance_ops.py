"""ONNX lowering of what the VNN-LIB 2 conformance suite exercises beyond the op table's fixtures:
outputs and kept values that do not depend on the input (Pow(x, 0), Shape(x), folded constants),
Pow with a different constant exponent per element, an integer Cast back to a float type with
`float_ops` (its exactness condition in `meta["float_exact_within"]`), the refusal of b^x, and
the tested opset range.

Models are built with onnx.helper; expected values come from onnxruntime and from exact
arithmetic on the float32 inputs (Fractions), never from the lowering itself.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

import onnx
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnxruntime",
                    reason="onnxruntime is not installed (pip install 'nnsmt[test]')")

from nnsmt.errors import UnsupportedError  # noqa: E402
from nnsmt.frontends import onnx_frontend  # noqa: E402
from nnsmt.frontends.onnx_frontend import OPSETS, load_onnx, ort_evaluator  # noqa: E402
from nnsmt.interpret import evaluate, evaluate_exact  # noqa: E402
from nnsmt.ir import Affine, Pow, Sparse, ToInt  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(2024)


def _save(path, nodes, inputs, outputs, inits=None, opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 8
    onnx.save(m, str(path))
    return str(path)


def _io(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def _x(n, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, n).astype(np.float32).astype(np.float64)


def _exact(g, x, name):
    return list(np.asarray(evaluate_exact(g, {"x": x})[name]).ravel())


def _outs(y):
    return list(y) if isinstance(y, tuple) else [y]


def _against_ort(path, g, x, keep=(), tol=1e-6):
    """IR float evaluation equals onnxruntime at x, output by output."""
    env = evaluate(g, {"x": x})
    want = _outs(ort_evaluator(path, keep=keep)(x))
    assert len(want) == len(g.outputs)
    for o, w in zip(g.outputs, want):
        got = np.asarray(env[o], dtype=np.float64).ravel()
        assert got.shape == w.shape and np.allclose(got, w, rtol=tol, atol=tol), (o, got, w)


def _constant_node(g, name):
    node = g.node(name)
    assert isinstance(node, Affine) and len(node.terms()) == 1
    assert isinstance(node.weight, Sparse) and node.weight.nnz == 0
    return node


# ---- outputs that do not depend on the input ----

def test_pow_zero_output_is_a_constant_node(tmp_path):
    path = _save(tmp_path / "p0.onnx", [helper.make_node("Pow", ["x", "e"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 3])], {"e": np.float32([0.0])})
    for float_ops in (False, True):
        g = load_onnx(path, float_ops=float_ops)
        node = _constant_node(g, g.outputs[0])
        assert node.onnx == "y" and tuple(node.shape) == (1, 3) and node.x == "x"
        for x in (_x(3), np.zeros(3)):  # 0 ** 0 = 1, as ONNX
            assert _exact(g, x, g.outputs[0]) == [Fraction(1)] * 3
            _against_ort(path, g, x)


def test_shape_output_is_an_int64_constant(tmp_path):
    path = _save(tmp_path / "shape.onnx", [helper.make_node("Shape", ["x"], ["y"])],
                 [_io("x", [2, 3])], [_io("y", [2], I64)])
    g = load_onnx(path)
    node = _constant_node(g, g.outputs[0])
    assert node.onnx == "y" and g.meta["onnx_output"] == "y"
    x = _x(6)
    assert _exact(g, x, g.outputs[0]) == [2, 3]
    _against_ort(path, g, x)
    # a scalar: Size(x)
    path = _save(tmp_path / "size.onnx", [helper.make_node("Size", ["x"], ["y"])],
                 [_io("x", [2, 3])], [_io("y", [], I64)])
    g = load_onnx(path)
    assert _exact(g, _x(6), g.outputs[0]) == [6]
    _against_ort(path, g, _x(6))


def test_folded_constant_output_beside_an_input_dependent_one(tmp_path):
    c1, c2 = np.float32([0.1, -3.5]), np.float32([2.25, 1e-3])
    path = _save(tmp_path / "two.onnx",
                 [helper.make_node("Add", ["c1", "c2"], ["k"]),
                  helper.make_node("Relu", ["x"], ["r"])],
                 [_io("x", [1, 2])], [_io("k", [2]), _io("r", [1, 2])], {"c1": c1, "c2": c2})
    g = load_onnx(path)
    k, r = g.outputs
    assert _constant_node(g, k).onnx == "k"
    x = _x(2)
    # the constant is the float32 sum the runtime computes, held exactly
    assert _exact(g, x, k) == [Fraction(float(v)) for v in (c1 + c2)]
    assert _exact(g, x, r) == [Fraction(max(v, 0.0)) for v in x]
    _against_ort(path, g, x)


def test_an_int64_constant_beyond_2_53_is_held_exactly(tmp_path):
    big = np.int64(2 ** 60 + 1)  # no float64
    path = _save(tmp_path / "big.onnx",
                 [helper.make_node("Shape", ["x"], ["s"]),
                  helper.make_node("Add", ["s", "c"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [2], I64)], {"c": np.array([big, -big])})
    g = load_onnx(path)
    assert _exact(g, _x(3), g.outputs[0]) == [2 ** 60 + 2, -(2 ** 60) + 2]


def test_a_constant_kept_value_is_a_node_of_its_own(tmp_path):
    rng = np.random.default_rng(6)
    u, v = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    path = _save(tmp_path / "keep.onnx",
                 [helper.make_node("Add", ["u", "v"], ["cst"]),
                  helper.make_node("Add", ["x", "cst"], ["y"])],
                 [_io("x", [1, 3])], [_io("y", [1, 3])], {"u": u, "v": v})
    for keep in (["cst"], ["u"]):  # a folded value, an initializer
        g = load_onnx(path, keep=keep)
        node = _constant_node(g, g.outputs[1])
        assert node.onnx == keep[0] and g.onnx_names()[keep[0]] == g.outputs[1]
        want = (u + v) if keep == ["cst"] else u
        x = _x(3)
        assert _exact(g, x, g.outputs[1]) == [Fraction(float(w)) for w in want]
        _against_ort(path, g, x, keep=keep)


# ---- Pow with an exponent per element ----

def _pow_model(tmp_path, xshape, e, name="pw"):
    return _save(tmp_path / f"{name}.onnx", [helper.make_node("Pow", ["x", "e"], ["y"], name="p")],
                 [_io("x", xshape)], [_io("y", list(np.broadcast_shapes(xshape, e.shape)))],
                 {"e": e})


def test_pow_with_exponents_two_and_three(tmp_path):
    e = np.float32([[2.0], [3.0]])
    path = _pow_model(tmp_path, [2, 1], e)
    for float_ops in (False, True):
        g = load_onnx(path, float_ops=float_ops)
        assert sorted(n.p for n in g.nodes if isinstance(n, Pow)) == [2, 3]
        out = g.node(g.outputs[0])
        assert isinstance(out, Affine) and out.onnx == "y" and tuple(out.shape) == (2, 1)
        for _ in range(3):
            x = _x(2)
            assert _exact(g, x, g.outputs[0]) == [Fraction(x[0]) ** 2, Fraction(x[1]) ** 3]
            _against_ort(path, g, x)


def test_pow_with_broadcast_exponents_including_zero_one_and_minus_one(tmp_path):
    e = np.float32([0.0, 1.0, 2.0, -1.0])  # along the last axis of x[2, 4]
    path = _pow_model(tmp_path, [2, 4], e, "bc")
    g = load_onnx(path)
    assert sorted(n.p for n in g.nodes if isinstance(n, Pow)) == [-1, 2]  # 0 and 1 need none
    for _ in range(3):
        x = _x(8, 0.5, 2.0) * RNG.choice([-1.0, 1.0], 8)  # no 0: x ** -1
        got = _exact(g, x, g.outputs[0])
        assert got == [Fraction(v) ** int(p) for v, p in zip(x, np.tile(e, 2))]
        _against_ort(path, g, x)


def test_pow_with_exponents_two_and_one_half(tmp_path):
    e = np.float32([2.0, 0.5, 0.5, 2.0])
    path = _pow_model(tmp_path, [4], e, "half")
    g = load_onnx(path)
    assert sorted(n.p for n in g.nodes if isinstance(n, Pow)) == [Fraction(1, 2), 2]
    for _ in range(3):
        x = _x(4, 0.0, 3.0)
        y = np.asarray(evaluate(g, {"x": x})[g.outputs[0]], dtype=np.float64)
        assert np.allclose(y, [x[0] ** 2, math.sqrt(x[1]), math.sqrt(x[2]), x[3] ** 2],
                           rtol=1e-12, atol=0)
        _against_ort(path, g, x)


def test_pow_refuses_an_inexact_exponent_among_several(tmp_path):
    path = _pow_model(tmp_path, [2], np.float32([2.0, 1 / 3]), "third")
    with pytest.raises(UnsupportedError, match=r"node 'p' \(Pow\): the exponent 0\.333"):
        load_onnx(path)


# ---- an integer cast back to a float type, with float_ops ----

_NP = {F: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64}


def _round_trip(tmp_path, to=F, add_int=False, name="rt"):
    """x -> Cast int64 (i) [-> Add 7 (j)] -> Cast `to` (f) -> Add 0.5 (y)."""
    nodes = [helper.make_node("Cast", ["x"], ["i"], to=I64)]
    inits = {"c": np.array([0.5], _NP[to])}
    src = "i"
    if add_int:
        nodes.append(helper.make_node("Add", ["i", "k"], ["j"]))
        inits["k"] = np.array([7], np.int64)
        src = "j"
    nodes += [helper.make_node("Cast", [src], ["f"], to=to),
              helper.make_node("Add", ["f", "c"], ["y"])]
    return _save(tmp_path / f"{name}.onnx", nodes, [_io("x", [1, 3])], [_io("y", [1, 3], to)],
                 inits)


def test_int_to_float_cast_is_exact_within_a_recorded_bound(tmp_path):
    path = _round_trip(tmp_path)
    g = load_onnx(path, float_ops=True)
    within = json.loads(g.meta["float_exact_within"])
    ((name, bound),) = within.items()
    assert bound == 2 ** 24 and isinstance(g.node(name), ToInt) and g.node(name).mode == "trunc"
    assert "float_exact_within" not in load_onnx(path).meta  # real semantics: no condition
    for _ in range(3):
        x = _x(3, -5.0, 5.0)
        assert _exact(g, x, name) == [Fraction(math.trunc(v)) for v in x]
        assert _exact(g, x, g.outputs[0]) == [Fraction(math.trunc(v)) + Fraction(1, 2) for v in x]
        _against_ort(path, g, x)


@pytest.mark.parametrize("to, bound", [(TensorProto.FLOAT16, 2 ** 11),
                                       (TensorProto.DOUBLE, 2 ** 53)])
def test_int_cast_bound_per_float_type(tmp_path, to, bound):
    g = load_onnx(_round_trip(tmp_path, to, name=f"t{to}"), float_ops=True)
    assert list(json.loads(g.meta["float_exact_within"]).values()) == [bound]


def test_int_cast_of_a_pending_integer_map_names_its_own_node(tmp_path):
    path = _round_trip(tmp_path, add_int=True, name="pending")
    g = load_onnx(path, float_ops=True)
    ((name, bound),) = json.loads(g.meta["float_exact_within"]).items()
    node = g.node(name)
    assert bound == 2 ** 24 and isinstance(node, Affine) and node.onnx == "j"
    x = _x(3, -5.0, 5.0)
    assert _exact(g, x, name) == [Fraction(math.trunc(v) + 7) for v in x]
    _against_ort(path, g, x)


def test_float_casts_that_widen_are_exact_and_narrowing_ones_refused(tmp_path):
    F16 = TensorProto.FLOAT16
    wide = _save(tmp_path / "wide.onnx",
                 [helper.make_node("Cast", ["x"], ["w"], to=F),
                  helper.make_node("Relu", ["w"], ["y"])],
                 [_io("x", [1, 3], F16)], [_io("y", [1, 3])])
    g = load_onnx(wide, float_ops=True)
    assert "float_exact_within" not in g.meta
    x = _x(3).astype(np.float16).astype(np.float64)
    assert _exact(g, x, g.outputs[0]) == [Fraction(max(v, 0.0)) for v in x]
    _against_ort(wide, g, x)
    narrow = _save(tmp_path / "narrow.onnx",
                   [helper.make_node("Cast", ["x"], ["n"], to=F16, name="cn"),
                    helper.make_node("Relu", ["n"], ["y"])],
                   [_io("x", [1, 3])], [_io("y", [1, 3], F16)])
    with pytest.raises(UnsupportedError,
                       match=r"node 'cn' \(Cast\): .*float32 to float16 may round"):
        load_onnx(narrow, float_ops=True)


# ---- refusals and the opset range ----

@pytest.mark.parametrize("base_const, phrase", [
    (True, "a constant base to an input-dependent power (b^x) is not supported"),
    (False, "an input-dependent base to an input-dependent power (x^y) is not supported")])
def test_input_dependent_exponent_is_refused_in_one_line(tmp_path, base_const, phrase):
    nodes = [helper.make_node("Pow", ["b" if base_const else "x", "x"], ["y"], name="pw")]
    path = _save(tmp_path / "bx.onnx", nodes, [_io("x", [1, 2])], [_io("y", [1, 2])],
                 {"b": np.float32([2.0])} if base_const else None)
    with pytest.raises(UnsupportedError) as e:
        load_onnx(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: node 'pw' (Pow): ") and phrase in msg, msg


def test_opsets_constant_is_the_tested_range(tmp_path):
    assert OPSETS == (9, 21) and "OPSETS" in onnx_frontend.__all__
    for opset in OPSETS:  # a per-element Pow and a Shape output load at both ends
        path = _save(tmp_path / f"o{opset}.onnx",
                     [helper.make_node("Pow", ["x", "e"], ["y"]),
                      helper.make_node("Shape", ["x"], ["s"])],
                     [_io("x", [2])], [_io("y", [2]), _io("s", [1], I64)],
                     {"e": np.float32([2.0, 3.0])}, opset=opset)
        g = load_onnx(path)
        x = _x(2)
        assert _exact(g, x, g.outputs[0]) == [Fraction(x[0]) ** 2, Fraction(x[1]) ** 3]
        assert _exact(g, x, g.outputs[1]) == [2]
        _against_ort(path, g, x)
