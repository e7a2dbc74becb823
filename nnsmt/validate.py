"""Replay a solver's model through the network before anyone is told "sat"."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from .errors import ValidationError
from .interpret import evaluate_exact
from .ir import Graph

VNNCOMP_TOL = 1e-4


@dataclass(frozen=True)
class Counterexample:
    """A validated witness: exact input and outputs, and the float replay when one was run."""

    x: tuple[Fraction, ...]
    y: tuple[Fraction, ...]
    y_float: tuple[float, ...] | None = None
    float_replay: str = ""  # which float evaluator confirmed it, e.g. "onnxruntime"

    def vnncomp(self) -> str:
        """The VNN-COMP counterexample format ((X_0 v) ... (Y_0 v) ...)."""
        ys = self.y_float if self.y_float is not None else [float(v) for v in self.y]
        items = [f"(X_{i} {float(v)!r})" for i, v in enumerate(self.x)]
        items += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(ys)]
        return "(" + "\n ".join(items) + ")"


def _fmt(vals) -> str:
    return "[" + ", ".join(f"{float(v):.9g}" for v in vals) + "]"


def validate_counterexample(graph: Graph, prop, model: dict[str, Fraction],
                            float_eval: Callable[[np.ndarray], np.ndarray] | None = None,
                            float_name: str = "onnxruntime", tol: float = VNNCOMP_TOL) -> Counterexample:
    """Check a verify model: the exact replay must satisfy the property exactly; the float
    replay (inputs rounded to float32, as a VNN-COMP checker does) within `tol`.
    Raises ValidationError, showing both evaluations, when either fails."""
    inp = graph.inputs[0]
    out = graph.outputs[0]
    x = [model[f"X_{i}"] for i in range(inp.dim)]
    y = list(evaluate_exact(graph, {inp.name: x})[out])
    env = {f"X_{i}": v for i, v in enumerate(x)} | {f"Y_{j}": v for j, v in enumerate(y)}
    if not prop.holds(env):
        raise ValidationError(
            "solver model fails the exact replay: " + "; ".join(prop.violations(env))
            + f"\n  x = {_fmt(x)}\n  exact y = {_fmt(y)}")
    y_float = None
    if float_eval is not None:
        x32 = np.array([float(v) for v in x], dtype=np.float32)
        y_float = tuple(float(v) for v in np.asarray(float_eval(x32)).reshape(-1))
        fenv = {f"X_{i}": float(v) for i, v in enumerate(x32)} | \
               {f"Y_{j}": v for j, v in enumerate(y_float)}
        if not prop.holds(fenv, tol=tol):
            raise ValidationError(
                f"counterexample holds exactly but fails the {float_name} replay (tolerance {tol}): "
                + "; ".join(prop.violations(fenv, tol=tol))
                + f"\n  x = {_fmt(x)}\n  exact y = {_fmt(y)}\n  {float_name} y = {_fmt(y_float)}")
    return Counterexample(tuple(x), tuple(y), y_float, float_name if float_eval else "")
