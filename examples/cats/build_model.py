"""Write examples/cats/cats.onnx: the seed paper's logistic regression for the cats data.

    P(male) = sigmoid(c0 + c1 * Hwt + c2 * Bwt),  c0 = -3.51518067, c1 = 0.07577862, c2 = 1.18118408

The paper does not say which coefficient belongs to which feature. `fit` below settles it from
the data (../shared/data/cats.csv): with c1 on heart weight (g) and c2 on body weight (kg) the
model classifies 78.5% of the cats correctly (log-likelihood -74.8); the other way round it
calls every cat male (67.4%, log-likelihood -354). An L2-regularised fit (C = 1, intercept
penalised, as liblinear does) gives (-2.77, 0.073 on Hwt, 1.06 on Bwt): the same pattern.
So the input is x = (Hwt in g, Bwt in kg). Weights are stored as float64 (the decimal
coefficients rounded once to the nearest double; nnsmt then uses those doubles exactly).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from nnsmt.frontends.onnx_export import save_onnx
from nnsmt.ir import Affine, Const, Graph, Input, Sigmoid

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "cats.csv"
C0, C1, C2 = -3.51518067, 0.07577862, 1.18118408


def model() -> Graph:
    return Graph((Input("x", 2), Affine("z", "x", Const(np.array([[C1, C2]])), Const(np.array([C0]))),
                  Sigmoid("p_male", "z")), ("p_male",), {"source": "cats (seed paper)"}).check()


def load(path=DATA):
    rows = list(csv.DictReader(open(path)))
    y = np.array([r["Sex"] == "M" for r in rows], dtype=float)
    return np.array([float(r["Hwt"]) for r in rows]), np.array([float(r["Bwt"]) for r in rows]), y


def fit(l2: float = 0.0) -> np.ndarray:
    """Logistic regression (Newton's method) of Sex on (Hwt, Bwt); l2 penalises all weights."""
    h, b, y = load()
    X = np.c_[np.ones_like(h), h, b]
    w = np.zeros(3)
    for _ in range(100):
        p = 1 / (1 + np.exp(-X @ w))
        g = X.T @ (y - p) - l2 * w
        H = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(3)
        w += np.linalg.solve(H, g)
    return w


def assignment_report() -> str:
    h, b, y = load()
    out = []
    for name, f1, f2 in (("c1 on Hwt, c2 on Bwt", h, b), ("c1 on Bwt, c2 on Hwt", b, h)):
        p = 1 / (1 + np.exp(-(C0 + C1 * f1 + C2 * f2)))
        ll = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
        out.append(f"{name}: accuracy {np.mean((p >= 0.5) == y):.3f}, log-likelihood {ll:.1f}")
    mle, reg = fit(0.0), fit(1.0)
    out.append(f"maximum-likelihood fit (c0, Hwt, Bwt) = ({mle[0]:.3f}, {mle[1]:.4f}, {mle[2]:.3f})")
    out.append(f"L2 (C=1) fit (c0, Hwt, Bwt) = ({reg[0]:.3f}, {reg[1]:.4f}, {reg[2]:.3f})")
    return "\n".join(out)


if __name__ == "__main__":
    save_onnx(model(), HERE / "cats.onnx", dtype="float64")
    h, b, _ = load()
    (HERE / "box.json").write_text(
        '{"lo": ["%s", "%s"], "hi": ["%s", "%s"]}\n' % (h.min(), b.min(), h.max(), b.max()))
    print(assignment_report())
    print(f"wrote {HERE / 'cats.onnx'} and {HERE / 'box.json'}", file=sys.stderr)
