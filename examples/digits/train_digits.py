"""Train small ReLU MLPs on scikit-learn's bundled 8x8 digits, with and without L1, as ONNX.

    python examples/digits/train_digits.py            # writes digits_plain.onnx, digits_l1.onnx
    python examples/digits/train_digits.py --seed-nets [--only 2x100,5x100]
        # the seed's architectures (Serra et al. 2021): 2x100, 2x200, 2x400, 2x800 and 5x100,
        # each plain and with mild L1: digits_2x100_plain.onnx, digits_2x100_l1.onnx, ...

Needs the `dev` extra (scikit-learn, only for its bundled data set: no download). Training is
plain numpy (full-batch Adam on cross-entropy) because scikit-learn's MLPClassifier has no L1
penalty; with --l1 the loss adds l1 * sum|W| over all weight matrices. Inputs are the raw pixel
values in [0, 16]; the 1/16 scaling used in training is folded into the first layer (a power of
two, so float32 stays exact). Deterministic for a given --seed.

The seed networks (--seed-nets) are trained by mini-batch Adam (batch 64, learning rate decayed
linearly to 0): full-batch training of a 2x800 MLP costs minutes on two cores. The L1 runs add
l1 * sign(W) to the weights' gradient; Adam moves a weight the loss does not need by about the
learning rate around 0, so once training ends the weights the penalty drove below PRUNE are set
to 0 (the zeros the L1 optimum has and the subgradient only approaches); the accuracies printed
are those of the saved networks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# the seed's architectures (hidden widths) and the L1 strength of their regularised variants:
# the largest tried (1e-4, 3e-4, 1e-3, 3e-3 on 2x100) whose test accuracy stays within a point of the
# plain network's (the table in README.md)
SEED_NETS = {"2x100": (100, 100), "2x200": (200, 200), "2x400": (400, 400), "2x800": (800, 800),
             "5x100": (100,) * 5}
SEED_L1 = 1e-3
PRUNE = 1e-3


def _gradients(Ws, bs, x, onehot, l1):
    """Cross-entropy (softmax) plus l1 * sum|W| on a batch: the gradients, weights then biases."""
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
    return gW + gb


def train(x, y, sizes, l1: float, epochs: int, lr: float, seed: int):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, np.sqrt(2.0 / m), (n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [np.zeros(n) for n in sizes[1:]]
    params = Ws + bs
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    onehot = np.eye(sizes[-1])[y]
    for t in range(1, epochs + 1):
        grads = _gradients(Ws, bs, x, onehot, l1)
        for i, (prm, gr) in enumerate(zip(params, grads)):
            m1[i] = 0.9 * m1[i] + 0.1 * gr
            m2[i] = 0.999 * m2[i] + 0.001 * gr * gr
            prm -= lr * (m1[i] / (1 - 0.9**t)) / (np.sqrt(m2[i] / (1 - 0.999**t)) + 1e-8)
    return Ws, bs


def train_minibatch(x, y, sizes, l1: float, epochs: int, lr: float, seed: int, batch: int = 64):
    """Mini-batch Adam in float32 (deterministic for a seed); see the module docstring."""
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, np.sqrt(2.0 / m), (n, m)).astype(np.float32) for m, n in zip(sizes, sizes[1:])]
    bs = [np.zeros(n, np.float32) for n in sizes[1:]]
    params = Ws + bs
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    x, onehot = x.astype(np.float32), np.eye(sizes[-1], dtype=np.float32)[y]
    steps, t = epochs * -(-len(x) // batch), 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            t += 1
            idx = order[s:s + batch]
            grads = _gradients(Ws, bs, x[idx], onehot[idx], np.float32(l1))
            step = lr * (1 - (t - 1) / steps)
            for i, gr in enumerate(grads):
                m1[i] = 0.9 * m1[i] + 0.1 * gr
                m2[i] = 0.999 * m2[i] + 0.001 * gr * gr
                params[i] -= (step * (m1[i] / (1 - 0.9**t)) / (np.sqrt(m2[i] / (1 - 0.999**t)) + 1e-8)).astype(np.float32)
    if l1:
        for W in Ws:
            W[np.abs(W) < PRUNE] = 0
    return [W.astype(np.float64) for W in Ws], [b.astype(np.float64) for b in bs]


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
    ap.add_argument("--l1", type=float, default=None, help="L1 strength of the regularised models "
                    f"(default 2e-3; {SEED_L1} with --seed-nets)")
    ap.add_argument("--epochs", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-nets", action="store_true", help="train the seed's architectures instead "
                    f"({', '.join(SEED_NETS)}; plain and with --l1, default {SEED_L1} there)")
    ap.add_argument("--only", default="", help="with --seed-nets: these architectures only (e.g. 2x100,5x100)")
    ap.add_argument("--seed-epochs", type=int, default=40, help="with --seed-nets: epochs (default 40)")
    a = ap.parse_args()
    from sklearn.datasets import load_digits
    data = load_digits()
    x, y = data.data / 16.0, data.target
    rng = np.random.default_rng(a.seed)
    idx = rng.permutation(len(x))
    tr, te = idx[: int(0.8 * len(x))], idx[int(0.8 * len(x)):]
    if a.seed_nets:
        l1 = SEED_L1 if a.l1 is None else a.l1
        print("| network | l1 | train acc | test acc | weights | zero weights |\n|---|---|---|---|---|---|")
        for arch in (a.only.split(",") if a.only else SEED_NETS):
            sizes = [64, *SEED_NETS[arch], 10]
            for kind, lam in (("plain", 0.0), ("l1", l1)):
                Ws, bs = train_minibatch(x[tr], y[tr], sizes, lam, a.seed_epochs, 1e-3, a.seed)
                accs = [accuracy(Ws, bs, x[s], y[s]) for s in (tr, te)]
                nw = sum(W.size for W in Ws)
                nz = sum(int((W == 0).sum()) for W in Ws)
                Ws[0] = Ws[0] / 16.0
                save(Ws, bs, HERE / f"digits_{arch}_{kind}.onnx")
                print(f"| digits_{arch}_{kind} | {lam:g} | {accs[0]:.3f} | {accs[1]:.3f} | {nw} | {nz} |", flush=True)
        return
    sizes = [64] + [int(s) for s in a.hidden.split(",")] + [10]
    for name, l1 in (("digits_plain", 0.0), ("digits_l1", 2e-3 if a.l1 is None else a.l1)):
        Ws, bs = train(x[tr], y[tr], sizes, l1, a.epochs, a.lr, a.seed)
        Ws[0] = Ws[0].astype(np.float32).astype(np.float64)
        acc = accuracy(Ws, bs, x[te], y[te])
        Ws[0] = Ws[0] / 16.0  # raw pixels in [0, 16]: exact in float32 (power of two)
        save(Ws, bs, HERE / f"{name}.onnx")
        print(f"{name}: {'-'.join(map(str, sizes))}, l1={l1}, test accuracy {acc:.3f} -> {name}.onnx")


if __name__ == "__main__":
    main()
