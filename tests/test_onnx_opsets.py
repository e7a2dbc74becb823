"""The newest opsets (19-21): a Pad/Conv/ReLU/MaxPool/Flatten/ReduceSum network built at each
opset loads and agrees with onnxruntime (the fixtures of test_onnx_ops.py cover opsets 9-18)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nnsmt.frontends import load_network  # noqa: E402
from nnsmt.interpret import evaluate  # noqa: E402


@pytest.mark.parametrize("opset", [19, 20, 21])
def test_newest_opsets_agree_with_onnxruntime(tmp_path, opset):
    rng = np.random.default_rng(opset)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64), "pads")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "W", "B"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("ReduceSum", ["f"], ["y"], keepdims=1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 9
    onnx.checker.check_model(m)
    path = tmp_path / f"op{opset}.onnx"
    onnx.save(m, path)
    graph = load_network(path)
    for _ in range(3):
        x = rng.random((1, 2, 6, 6)).astype(np.float32)
        want = ort.InferenceSession(str(path)).run(None, {"x": x})[0].reshape(-1)
        got = evaluate(graph, {graph.inputs[0].name: x.reshape(-1)})[graph.outputs[0]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
