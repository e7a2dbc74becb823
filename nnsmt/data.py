"""Training data: the CSV format nnsmt reads, and the seed paper's sphere task.

CSV format: one point a line, `feature_1, ..., feature_d, label`; the label is an integer class
index 0..k-1 (a float like `1.0` is accepted when it is integral). An optional first line of
non-numeric column names is a header. Blank lines and lines starting with `#` are skipped.
Values are read as float64 and enter the solver as their exact rational values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Points `x` (n, d) float64, integer labels `y` (n,), and the file line of every point."""

    x: np.ndarray
    y: np.ndarray
    source: str = ""
    lines: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def where(self, i: int) -> str:
        """`file:line` of point i (or `point i` for data that did not come from a file)."""
        if self.source and self.lines:
            return f"{self.source}:{self.lines[i]}"
        return f"point {i}"


def _number(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def load_csv(path, n_features: int | None = None, n_classes: int | None = None) -> Dataset:
    """Read a data file (format in the module docstring).

    Args:
        path: the CSV file.
        n_features: the network's input size; a row with another number of features is refused.
        n_classes: labels must lie in 0..n_classes-1 (2 for a network with one output).

    Raises:
        InputError: one line naming `file:line` and what is wrong (missing file, empty file,
            non-numeric value, NaN/Inf, wrong number of columns, bad label).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: {'not a file' if p.exists() else 'no such file'}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    rows, lines, width = [], [], None
    header_seen = False
    for ln, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        vals = [_number(c) for c in cells]
        if not rows and not header_seen and all(v is None for v in vals):
            header_seen, width = True, len(cells)
            if n_features is not None and width != n_features + 1:
                raise InputError(f"{path}:{ln}: header has {width} columns, expected "
                                 f"{n_features + 1} ({n_features} features and the label)")
            continue
        for c, v in zip(cells, vals):
            if v is None:
                raise InputError(f"{path}:{ln}: {c!r} is not a number")
            if not math.isfinite(v):
                raise InputError(f"{path}:{ln}: {c!r} is not a finite number (NaN/Inf)")
        expected = width if width is not None else (None if n_features is None else n_features + 1)
        if len(cells) < 2:
            raise InputError(f"{path}:{ln}: a point needs at least one feature and a label")
        if expected is not None and len(cells) != expected:
            raise InputError(f"{path}:{ln}: {len(cells)} columns, expected {expected} "
                             f"({expected - 1} features and the label)")
        width = len(cells)
        label = vals[-1]
        if label != int(label) or label < 0:
            raise InputError(f"{path}:{ln}: label {cells[-1]!r} is not a class index 0, 1, ...")
        if n_classes is not None and label >= n_classes:
            raise InputError(f"{path}:{ln}: label {cells[-1][:30]} is outside the network's classes "
                             f"0..{n_classes - 1}")
        rows.append(vals)
        lines.append(ln)
    if not rows:
        raise InputError(f"{path}: no data points (empty file)")
    a = np.array(rows, dtype=np.float64)
    return Dataset(a[:, :-1].copy(), a[:, -1].astype(np.int64), str(path), tuple(lines))


def save_csv(path, x: np.ndarray, y: np.ndarray, header: bool = True) -> None:
    """Write points with `repr` floats (they read back bit-exactly) and a header `x1,...,label`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise InputError(f"{path}: points of shape {x.shape} and {len(y)} labels do not make a data set")
    out = []
    if header:
        out.append(",".join([f"x{i + 1}" for i in range(x.shape[1])] + ["label"]))
    out += [",".join(repr(float(v)) for v in row) + f",{int(c)}" for row, c in zip(x, y)]
    try:
        Path(path).write_text("\n".join(out) + "\n")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None


# ---- the sphere task of the seed paper ----

MAX_POINTS = 10_000_000  # 240 MB of float64 points; far more than an exact training query holds

def sphere_planes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The two random plane normals a, d (standard normal, seeded) of the sphere task."""
    if seed < 0:
        raise InputError(f"--seed must be an integer >= 0, got {seed}")
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the same planes for any --points
    return rng.standard_normal(3), rng.standard_normal(3)


def sphere_labels(x: np.ndarray, seed: int) -> np.ndarray:
    """1 where a·x > 0 and d·x > 0 (the positive side of both planes), else 0."""
    a, d = sphere_planes(seed)
    return ((x @ a > 0) & (x @ d > 0)).astype(np.int64)


def sphere_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform on the unit sphere in 3-D (normalised Gaussians), labelled by two planes."""
    if not 1 <= n <= MAX_POINTS:
        raise InputError(f"--points must be between 1 and {MAX_POINTS:,}, got {n}")
    if seed < 0:
        raise InputError(f"--seed must be an integer >= 0, got {seed}")
    g = np.random.default_rng([seed, 0]).standard_normal((n, 3))
    x = g / np.linalg.norm(g, axis=1, keepdims=True)
    return x, sphere_labels(x, seed)


def sphere_grid(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The 12-point angle grid: polar angle theta in {pi/4, pi/2, 3pi/4} times azimuth phi in
    {0, pi/2, pi, 3pi/2}; x = (sin t cos p, sin t sin p, cos t) in float64, labelled by the
    seeded planes. (Three latitudes by four longitudes: the grid of angles the seed sweeps.)"""
    th = np.array([1, 2, 3]) * np.pi / 4
    ph = np.arange(4) * np.pi / 2
    t, p = np.meshgrid(th, ph, indexing="ij")
    t, p = t.ravel(), p.ravel()
    x = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=1)
    return x, sphere_labels(x, seed)
