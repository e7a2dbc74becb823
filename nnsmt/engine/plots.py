"""Figures for 2-D input networks under parameter perturbation (matplotlib, imported lazily).

Left panel: the nominal decision boundary over the box, the σ band (where labels may flip, from
σ brackets' upper ends), and sample points coloured by whether their label can flip for some
parameters within δ (one local δ-robustness query each: unsat = cannot flip). Right panel
(optional): a heat map of the local ε (certified upper end of a coarse bracket) over the box.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import evaluate
from nnsmt.params import nominal_graph
from nnsmt.queries.robustness import Question, analyse

from .robustness import check, estimate


def _mpl():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UnsupportedError("plots need matplotlib: pip install 'nnsmt[plot]'") from None
    return plt


def flip_map(gs, points: Sequence, backend: str = "z3", timeout: float = 10.0,
             sigmoid: str = "auto") -> list[str]:
    """For each point: "flips" (sat: some parameters within δ change its label), "robust"
    (unsat) or "unknown"."""
    out = []
    for p in points:
        o = check(gs, Question("label", point=tuple(Fraction(float(v)) for v in p)), backend, timeout,
                  sigmoid=sigmoid)
        out.append({"sat": "flips", "unsat": "robust"}.get(o.status, "unknown"))
    return out


def eps_heatmap(gs, domain, n: int = 8, backend: str = "z3", tolerance=Fraction(1, 1000),
            budget_each: float = 5.0, sigmoid: str = "auto"):
    """(xs, ys, hi) with hi[j, i] the certified upper end of local ε at (xs[i], ys[j])."""
    lo, hi = domain.boxes[0]
    xs = np.linspace(float(lo[0]), float(hi[0]), n)
    ys = np.linspace(float(lo[1]), float(hi[1]), n)
    out = np.zeros((n, n))
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            b = estimate(gs, "eps", point=(Fraction(float(x)), Fraction(float(y))), backend=backend,
                         tolerance=tolerance, budget=budget_each, sigmoid=sigmoid)[0]
            out[j, i] = float(b.hi.value)
    return xs, ys, out


def robustness_figure(gs, domain, path, *, backend: str = "z3", sigmoid: str = "auto",
                      sigma: Sequence | None = None, eps_map: bool = False, points=None,
                      labels=None, grid: int = 12, eps_grid: int = 8, title: str = "",
                      axis_names=("x0", "x1")) -> None:
    """Draw the figure (module docstring) to `path`.

    Args:
        gs: network with symbolic parameters (2 inputs, 1 output or argmax labels).
        domain: InputDomain (its first box is drawn).
        sigma: (σ above, σ below) to draw the band f = l ± σ (binary networks).
        eps_map: add the local-ε heat map (eps_grid² estimates: slow on big networks).
        points: sample points (default a grid × grid lattice over the box); labels: their data
            labels, drawn as marker shapes.
    """
    if gs.inputs[0].dim != 2:
        raise UnsupportedError(f"--plot draws networks with 2 inputs; this one has {gs.inputs[0].dim}")
    plt = _mpl()
    head = analyse(gs)
    g0 = nominal_graph(gs)
    lo, hi = domain.boxes[0]
    x0, x1, y0, y1 = float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])
    if points is None:
        points = [(a, b) for a in np.linspace(x0, x1, grid) for b in np.linspace(y0, y1, grid)]
    points = np.asarray(points, dtype=np.float64)
    n = 200
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    f = np.array([evaluate(g0, {gs.inputs[0].name: (a, b)})[head.out] for a, b in
                  zip(gx.ravel(), gy.ravel())])
    ncols = 2 if eps_map else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 5.2), squeeze=False)
    ax = axes[0, 0]
    if head.binary:
        fz = f[:, 0].reshape(gx.shape)
        im = ax.contourf(gx, gy, fz, levels=20, cmap="RdBu_r", alpha=0.35)
        fig.colorbar(im, ax=ax, label="nominal output f(x)")
        ax.contour(gx, gy, fz, levels=[float(head.level)], colors="k", linewidths=1.5)
        if sigma is not None:
            levels = sorted({float(head.level) - float(sigma[1]), float(head.level) + float(sigma[0])})
            ax.contour(gx, gy, fz, levels=levels, colors="k", linestyles="--", linewidths=1)
    else:
        lab = f.argmax(1).reshape(gx.shape)
        ax.contourf(gx, gy, lab, levels=np.arange(f.shape[1] + 1) - 0.5, cmap="tab10", alpha=0.3)
    status = flip_map(gs, points, backend, sigmoid=sigmoid)
    colours = {"flips": "#d62728", "robust": "#2ca02c", "unknown": "#7f7f7f"}
    markers = ["o", "^"]
    for st in ("robust", "flips", "unknown"):
        sel = np.array([s == st for s in status])
        if not sel.any():
            continue
        if labels is None:
            ax.scatter(points[sel, 0], points[sel, 1], s=18, c=colours[st], label=f"label {'can flip' if st == 'flips' else st}",
                       edgecolors="k", linewidths=0.3)
        else:
            lab = np.asarray(labels)
            for k in sorted(set(lab.tolist())):
                s2 = sel & (lab == k)
                if s2.any():
                    ax.scatter(points[s2, 0], points[s2, 1], s=18, c=colours[st], marker=markers[int(k) % 2],
                               edgecolors="k", linewidths=0.3,
                               label=f"class {int(k)}: {'can flip' if st == 'flips' else st}")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    band = " and σ band (dashed)" if sigma is not None else ""
    ax.set_title((title + "\n" if title else "") + f"decision boundary (solid){band}", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    if eps_map:
        xs, ys, e = eps_heatmap(gs, domain, eps_grid, backend, sigmoid=sigmoid)
        ax2 = axes[0, 1]
        im2 = ax2.pcolormesh(xs, ys, e, shading="nearest", cmap="viridis")  # cells centred on the points
        fig.colorbar(im2, ax=ax2, label="local ε (certified upper bound)")
        ax2.set_xlabel(axis_names[0])
        ax2.set_ylabel(axis_names[1])
        ax2.set_title(f"max |f_p(x) - f_p0(x)| over the δ box ({eps_grid}×{eps_grid} points)", fontsize=10)
    fig.suptitle(gs.meta.get("perturbation", ""), fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as e:
        raise InputError(f"{path}: cannot write the figure: {e.strerror}") from None
    finally:
        plt.close(fig)
