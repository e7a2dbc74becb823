"""Train small ReLU MLPs on scikit-learn's bundled 8x8 digits, with and without L1, as ONNX.

    python examples/digits/train_digits.py            # writes digits_plain.onnx, digits_l1.onnx

Needs the `dev` extra (scikit-learn, only for its bundled data set: no download). Training is
plain numpy (full-batch Adam on cross-entropy) because scikit-learn's MLPClassifier has no L1
penalty; with --l1 the loss adds l1 * sum|W| over all weight matrices. Inputs are the raw pixel
values in [0, 16]; the 1/16 scaling used in training is folded into the first layer (a power of
two, so float32 stays exact). Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def train(x, y, sizes, l1: float, epochs: int, lr: float, seed: int):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, np.sqrt(2.0 / m), (n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [np.zeros(n) for n in sizes[1:]]
    params = Ws + bs
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    onehot = np.eye(sizes[-1])[y]
    for t in range(1, epochs + 1):
        hs, zs = [x], []
        for k, (W, b) in enumerate(zip(Ws, bs)):
            z = hs[-1] @ W.T + b
            zs.append(z)
            hs.append(np.maximum(z, 0) if k < len(Ws) - 1 else z)
        logits = hs[-1] - hs[-1].max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(x)
        gW, gb = [None] * len(Ws), [None] * len(Ws)
        for k in reversed(range(len(Ws))):
            gW[k] = g.T @ hs[k] + l1 * np.sign(Ws[k])
            gb[k] = g.sum(0)
            if k:
                g = (g @ Ws[k]) * (zs[k - 1] > 0)
        grads = gW + gb
        for i, (prm, gr) in enumerate(zip(params, grads)):
            m1[i] = 0.9 * m1[i] + 0.1 * gr
            m2[i] = 0.999 * m2[i] + 0.001 * gr * gr
            prm -= lr * (m1[i] / (1 - 0.9**t)) / (np.sqrt(m2[i] / (1 - 0.999**t)) + 1e-8)
    return Ws, bs


def accuracy(Ws, bs, x, y) -> float:
    h = x
    for k, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if k < len(Ws) - 1:
            h = np.maximum(h, 0)
    return float((h.argmax(1) == y).mean())


def save(Ws, bs, path: Path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes, cur = [], [], "x"
    for k, (W, b) in enumerate(zip(Ws, bs), 1):
        inits += [numpy_helper.from_array(W.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(b.astype(np.float32), f"B{k}")]
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"B{k}"], [f"z{k}"], transB=1))
        cur = f"z{k}"
        if k < len(Ws):
            nodes.append(helper.make_node("Relu", [cur], [f"h{k}"]))
            cur = f"h{k}"
    g = helper.make_graph(nodes, "digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [1, Ws[-1].shape[0]])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="nnsmt-digits")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", default="16,16", help="hidden layer widths (default 16,16)")
    ap.add_argument("--l1", type=float, default=2e-3, help="L1 strength of the regularised model")
    ap.add_argument("--epochs", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from sklearn.datasets import load_digits
    data = load_digits()
    x, y = data.data / 16.0, data.target
    rng = np.random.default_rng(a.seed)
    idx = rng.permutation(len(x))
    tr, te = idx[: int(0.8 * len(x))], idx[int(0.8 * len(x)):]
    sizes = [64] + [int(s) for s in a.hidden.split(",")] + [10]
    for name, l1 in (("digits_plain", 0.0), ("digits_l1", a.l1)):
        Ws, bs = train(x[tr], y[tr], sizes, l1, a.epochs, a.lr, a.seed)
        Ws[0] = Ws[0].astype(np.float32).astype(np.float64)
        acc = accuracy(Ws, bs, x[te], y[te])
        Ws[0] = Ws[0] / 16.0  # raw pixels in [0, 16]: exact in float32 (power of two)
        save(Ws, bs, HERE / f"{name}.onnx")
        print(f"{name}: {'-'.join(map(str, sizes))}, l1={l1}, test accuracy {acc:.3f} -> {name}.onnx")


if __name__ == "__main__":
    main()
