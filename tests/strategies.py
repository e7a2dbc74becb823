"""Hypothesis strategies: random small MLPs (as IR graphs and as ONNX models) and points."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from nnsmt.ir import Affine, Const, Graph, Input, Relu

f32 = st.floats(-2, 2, width=32, allow_subnormal=False)


@st.composite
def mlp_specs(draw, max_in=3, max_hidden=2, max_width=4, max_out=3):
    """[(W, b), ...] float32 layers of a ReLU MLP (ReLU between layers, none at the end)."""
    sizes = [draw(st.integers(1, max_in))]
    sizes += [draw(st.integers(1, max_width)) for _ in range(draw(st.integers(0, max_hidden)))]
    sizes.append(draw(st.integers(1, max_out)))
    layers = []
    for m, n in zip(sizes, sizes[1:]):
        w = np.array(draw(st.lists(f32, min_size=n * m, max_size=n * m)), dtype=np.float32)
        b = np.array(draw(st.lists(f32, min_size=n, max_size=n)), dtype=np.float32)
        layers.append((w.reshape(n, m), b))
    return layers


def mlp_graph(layers) -> Graph:
    nodes, x = [Input("x", layers[0][0].shape[1])], "x"
    for k, (w, b) in enumerate(layers, 1):
        nodes.append(Affine(f"a{k}", x, Const(w), Const(b)))
        x = f"a{k}"
        if k < len(layers):
            nodes.append(Relu(f"r{k}", x))
            x = f"r{k}"
    return Graph(tuple(nodes), (x,)).check()


def mlp_onnx(layers):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes, x = [], [], "in"
    for k, (w, b) in enumerate(layers, 1):
        inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b, f"B{k}")]
        nodes.append(helper.make_node("Gemm", [x, f"W{k}", f"B{k}"], [f"g{k}"], transB=1))
        x = f"g{k}"
        if k < len(layers):
            nodes.append(helper.make_node("Relu", [x], [f"r{k}"]))
            x = f"r{k}"
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("in", TensorProto.FLOAT, [1, layers[0][0].shape[1]])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, layers[-1][0].shape[0]])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def points(dim):
    return st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=dim, max_size=dim)
