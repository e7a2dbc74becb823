"""IR -> ONNX -> IR: bit-exact for float32 weights, and onnxruntime agrees with the IR."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings, strategies as st

from nnsmt.frontends import load_onnx, ort_evaluator
from nnsmt.frontends.onnx_export import save_onnx
from nnsmt.interpret import evaluate
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sym

from strategies import mlp_graph, mlp_specs, points


@settings(max_examples=25, deadline=None)
@given(layers=mlp_specs(), data=st.data())
def test_round_trip(tmp_path_factory, layers, data):
    g = mlp_graph(layers)
    path = tmp_path_factory.mktemp("exp") / "m.onnx"
    assert save_onnx(g, path) is True
    h = load_onnx(path)
    for (_, _, p), (_, _, q) in zip(g.params(), h.params()):
        assert p.value.tobytes() == q.value.tobytes()
    x = np.array(data.draw(points(g.inputs[0].dim)), dtype=np.float32)
    y = evaluate(g, {"x": x.astype(np.float64)})[g.outputs[0]]
    assert np.allclose(ort_evaluator(path)(x), y, atol=1e-4, rtol=1e-4)


def test_rational_and_symbolic_parameters_are_rounded_and_flagged(tmp_path):
    g = Graph((Input("x", 1), Affine("a1", "x", Const(np.array([[Fraction(1, 3)]], dtype=object)), Const([0.0])),
               Relu("r1", "a1"), Affine("a2", "r1", Sym("w", (1, 1), nominal=[[2.0]]), Const([0.5]))), ("a2",)).check()
    assert save_onnx(g, tmp_path / "a.onnx") is False  # 1/3 is not a float32
    assert save_onnx(g, tmp_path / "b.onnx", params={"w": np.array([[4.0]])}, dtype="float64") is False
    assert ort_evaluator(tmp_path / "b.onnx")(np.array([3.0], np.float32))[0] == 4.5
