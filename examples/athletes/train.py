"""Train the athletes case study's two 2-3-1 MLPs and write them as ONNX (committed).

Rio 2016 athletes (../shared/data/athletes.csv): height (m) and weight (kg) -> P(male).
Both networks have 3 hidden units and a sigmoid output; `relu.onnx` has a ReLU hidden layer,
`linear.onnx` a linear one (so it is a logistic regression in disguise). Training: full-batch
Adam on the cross-entropy, inputs standardised, numpy only, fixed seed; the standardisation is
then folded into the first layer and the weights are rounded to float32 (the ONNX file is the
network nnsmt analyses, exactly). `box.json` is the data range.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from nnsmt.frontends.onnx_export import save_onnx
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "athletes.csv"


def load(path=DATA):
    rows = [r for r in csv.DictReader(open(path)) if r["height"] and r["weight"]]
    x = np.array([[float(r["height"]), float(r["weight"])] for r in rows])
    y = np.array([r["sex"] == "male" for r in rows], dtype=float)
    return x, y


def train(x, y, hidden: str, steps: int = 3000, seed: int = 0, lr: float = 0.02):
    rng = np.random.default_rng(seed)
    mu, sd = x.mean(0), x.std(0)
    xs = (x - mu) / sd
    p = {"W1": rng.normal(0, 0.7, (3, 2)), "b1": np.zeros(3), "w2": rng.normal(0, 0.7, (1, 3)), "b2": np.zeros(1)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    n = len(y)
    for t in range(1, steps + 1):
        a = xs @ p["W1"].T + p["b1"]
        h = np.maximum(a, 0) if hidden == "relu" else a
        z = (h @ p["w2"].T + p["b2"]).ravel()
        q = 0.5 * (1 + np.tanh(0.5 * z))
        dz = (q - y)[:, None] / n
        g = {"w2": dz.T @ h, "b2": dz.sum(0)}
        dh = dz @ p["w2"]
        da = dh * (a > 0) if hidden == "relu" else dh
        g["W1"] = da.T @ xs
        g["b1"] = da.sum(0)
        for k in p:  # Adam
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            p[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    # fold the standardisation into the first layer: W1 (x - mu) / sd + b1
    W1 = p["W1"] / sd
    b1 = p["b1"] - W1 @ mu
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    return f32(W1), f32(b1), f32(p["w2"]), f32(p["b2"])


def network(W1, b1, w2, b2, hidden: str) -> Graph:
    nodes = [Input("x", 2), Affine("fc1", "x", Const(W1), Const(b1))]
    nxt = "fc1"
    if hidden == "relu":
        nodes.append(Relu("h", "fc1"))
        nxt = "h"
    nodes += [Affine("fc2", nxt, Const(w2), Const(b2)), Sigmoid("p_male", "fc2")]
    return Graph(tuple(nodes), ("p_male",), {"source": f"athletes {hidden}"}).check()


def accuracy(g: Graph, x, y) -> float:
    from nnsmt.interpret import evaluate
    out = np.array([evaluate(g, {"x": xi})["p_male"][0] for xi in x])
    return float(np.mean((out >= 0.5) == y))


if __name__ == "__main__":
    x, y = load()
    for hidden in ("relu", "linear"):
        g = network(*train(x, y, hidden), hidden)
        exact = save_onnx(g, HERE / f"{hidden}.onnx")
        assert exact, "float32 weights are written exactly"
        print(f"{hidden}: training accuracy {accuracy(g, x, y):.3f} ({len(y)} athletes)")
    (HERE / "box.json").write_text('{"lo": ["%s", "%s"], "hi": ["%s", "%s"]}\n'
                                   % (x[:, 0].min(), x[:, 1].min(), x[:, 0].max(), x[:, 1].max()))
    print(f"wrote relu.onnx, linear.onnx and box.json in {HERE}", file=sys.stderr)
