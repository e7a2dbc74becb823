"""Regenerate the training examples: a 3-8-2 ReLU network (random float32 weights; nnsmt train
replaces them) and the seed paper's sphere data (12-point grid, and 50 random points).

    python examples/build_train_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nnsmt.data import save_csv, sphere_grid, sphere_points  # noqa: E402


def mlp(sizes, seed=0) -> onnx.ModelProto:
    """A Gemm/Relu MLP with the given layer sizes and random float32 weights."""
    rng = np.random.default_rng(seed)
    inits, nodes, x = [], [], "input"
    for k, (m, n) in enumerate(zip(sizes, sizes[1:]), 1):
        inits += [numpy_helper.from_array(rng.standard_normal((n, m)).astype(np.float32), f"fc{k}.weight"),
                  numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), f"fc{k}.bias")]
        nodes.append(helper.make_node("Gemm", [x, f"fc{k}.weight", f"fc{k}.bias"], [f"fc{k}"],
                                      name=f"fc{k}", transB=1))
        x = f"fc{k}"
        if k < len(sizes) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"relu{k}"], name=f"relu{k}"))
            x = f"relu{k}"
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, sizes[0]])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, sizes[-1]])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="nnsmt examples")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main():
    onnx.save(mlp([3, 8, 2]), HERE / "sphere_3_8_2.onnx")
    onnx.save(mlp([3, 1, 2]), HERE / "sphere_3_1_2.onnx")
    save_csv(HERE / "sphere_grid.csv", *sphere_grid(0))
    save_csv(HERE / "sphere50.csv", *sphere_points(50, 0))
    print("wrote examples/sphere_3_8_2.onnx, sphere_3_1_2.onnx, sphere_grid.csv, sphere50.csv")


if __name__ == "__main__":
    main()
