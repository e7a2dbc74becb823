"""Small networks, domains and scripts with hand-derived answers, shared by several test modules.

(Not a test module: test modules import from here, never from each other.)"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np

from nnsmt.domain import InputDomain, parse_box_json
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid
from nnsmt.terms import And, Cmp, Mul, Num, ScriptBuilder


def third_script():
    """3x = 1 and x > 0: the only model is the exact rational 1/3."""
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("third", And((Cmp("=", Mul((Num(3), x)), Num(1)), Cmp(">", x, Num(0)))))
    return b.build()


def neuron(w=1.0, b=-2.0, sigmoid=False) -> Graph:
    """f(x) = w*x + b (optionally sigmoid of it), one input."""
    nodes = [Input("x", 1), Affine("z", "x", Const(np.array([[w]])), Const(np.array([b])))]
    if sigmoid:
        nodes.append(Sigmoid("y", "z"))
    return Graph(tuple(nodes), (nodes[-1].name,)).check()


def box(lo, hi) -> InputDomain:
    """The input box [lo, hi] (values written exactly, as strings)."""
    return parse_box_json(json.dumps({"lo": [str(v) for v in lo], "hi": [str(v) for v in hi]}))


def hand_net() -> Graph:
    """x, y in [-1, 1]; layer 1: x + y, x - y, x (each takes both signs: unstable).
    Layer 2: relu(x+y) + relu(x-y) - 2.5 has exact maximum 2 - 2.5 = -0.5 (both active needs
    x >= |y|, sum 2x <= 2; one active: <= 2): stably inactive. The linear bounds only give
    relu(x+y) + relu(x-y) <= x + 2 <= 3, so they cannot decide it: an exact query must.
    relu(x) - 0.5 is 0.5 at x = 1 and -0.5 at x = 0: unstable."""
    w1 = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0]])
    w2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return Graph((Input("x", 2), Affine("a1", "x", Const(w1), Const(np.zeros(3))), Relu("r1", "a1"),
                  Affine("a2", "r1", Const(w2), Const(np.array([-2.5, -0.5]))), Relu("r2", "a2"),
                  Affine("y", "r2", Const(np.array([[1.0, -2.0]])), Const(np.array([0.25])))), ("y",)).check()


# hand_net's input box [-1, 1]^2
BOX = InputDomain(((tuple([Fraction(-1)] * 2), tuple([Fraction(1)] * 2)),))


def scalar_chain_onnx(path, weights, dtype="float32", relu=True) -> str:
    """A 1-1-...-1 ONNX network x -> w1 x -> relu -> w2 x ... (Gemm/Relu, no biases) at `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    np_t, onnx_t = {"float32": (np.float32, TensorProto.FLOAT),
                    "float64": (np.float64, TensorProto.DOUBLE)}[dtype]
    nodes, inits, cur = [], [], "x"
    for k, w in enumerate(weights):
        inits += [numpy_helper.from_array(np.array([[w]], np_t), f"W{k}"),
                  numpy_helper.from_array(np.array([0], np_t), f"B{k}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"B{k}"], [f"a{k}"], transB=1))
        cur = f"a{k}"
        if relu and k < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [cur], [f"r{k}"]))
            cur = f"r{k}"
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", onnx_t, [1, 1])],
                          [helper.make_tensor_value_info(cur, onnx_t, [1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return str(path)


def float_values(g: Graph, X: np.ndarray) -> dict:
    """float64 values of every node of an Affine/ReLU graph at points X (N, n): an oracle of
    its own, independent of nnsmt's domains."""
    vals = {g.inputs[0].name: X}
    for node in g.nodes[1:]:
        if isinstance(node, Affine):
            vals[node.name] = sum(vals[v] @ np.asarray(W.value, dtype=np.float64).T for v, W in node.terms()) \
                + np.asarray(node.bias.value, dtype=np.float64)
        else:
            vals[node.name] = np.maximum(vals[node.x], 0.0)
    return vals
