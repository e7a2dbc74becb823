"""Rebuild the example network and properties in this folder (deterministic).

    python examples/build_examples.py

classifier.onnx: a 2-8-8-3 ReLU classifier on the unit square, float32 weights from a fixed seed,
sampled on a grid, class 2 wins throughout the corner [0.5, 1]^2 and class 1 can lead class 2 by
about 0.3 elsewhere: one property of each kind below.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent


def build_classifier() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    sizes = [2, 8, 8, 3]
    inits, nodes, x = [], [], "input"
    for k, (m, n) in enumerate(zip(sizes, sizes[1:]), start=1):
        w = (rng.standard_normal((n, m)) / np.sqrt(m)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b, f"B{k}")]
        out = "logits" if k == len(sizes) - 1 else f"gemm{k}"
        nodes.append(helper.make_node("Gemm", [x, f"W{k}", f"B{k}"], [out], name=f"fc{k}", transB=1))
        if k < len(sizes) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"relu{k}"], name=f"relu{k}"))
            x = f"relu{k}"
    g = helper.make_graph(nodes, "classifier",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="nnsmt-examples")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


BOX = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)

; input box: {lo} <= X_i <= {hi}
(assert (>= X_0 {lo}))
(assert (<= X_0 {hi}))
(assert (>= X_1 {lo}))
(assert (<= X_1 {hi}))
"""

PROPERTIES = {
    # unsafe region: an input of the square where logit 1 beats logit 2 by at least 0.25
    "class1_margin.vnnlib": "; sat: somewhere in [-1, 1]^2 class 1 leads class 2 by 0.25 or more\n"
    + BOX.format(lo=-1, hi=1) + "\n(assert (>= Y_1 (+ Y_2 0.25)))\n",
    # in the corner class 2 must win: any other class at least as large is unsafe
    "corner_robust.vnnlib": "; unsat: in [0.5, 1]^2 class 2 is always the strict maximum\n"
    + BOX.format(lo=0.5, hi=1) + "\n(assert (or (>= Y_0 Y_2) (>= Y_1 Y_2)))\n",
}


if __name__ == "__main__":
    onnx.save(build_classifier(), HERE / "classifier.onnx")
    for name, text in PROPERTIES.items():
        (HERE / name).write_text(text)
    print("wrote", ", ".join(["classifier.onnx", *PROPERTIES]))
