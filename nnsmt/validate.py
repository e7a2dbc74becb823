"""Replay a solver's model through the network before anyone is told "sat".

Two replays, with different standing:

* The exact replay (rational arithmetic, the IR's real-valued semantics) decides: a model whose
  exact outputs do not satisfy the property is refused (`ValidationError`, never sat).
* The float replay (e.g. onnxruntime, inputs rounded to float32 as a VNN-COMP checker does) is
  a second opinion, recorded in the returned `Counterexample` (`float_ok`, `float_check`). A
  witness that replays exactly but not in floats is still a counterexample of the real-valued
  network; the caller reports sat with the note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from .errors import ValidationError
from .interpret import evaluate_exact
from .ir import Graph

VNNCOMP_TOL = 1e-4  # absolute tolerance on each atom of the property (VNN-COMP's checker)
VNNCOMP_RTOL = 1e-3  # relative tolerance of float outputs against the exact ones

__all__ = ["Counterexample", "validate_counterexample", "check_float_replay", "to_float",
           "VNNCOMP_TOL", "VNNCOMP_RTOL"]


def to_float(v) -> float:
    """The float nearest to a real `v` (Fraction, int or float), never raising: a value beyond
    the float64 range becomes +-inf, as IEEE round-to-nearest gives (`float()` of a huge
    Fraction raises OverflowError instead)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


@dataclass(frozen=True)
class Counterexample:
    """A witness that passed the exact replay, and what the float replay said of it.

    Attributes:
        x, y: exact input and outputs (the exact replay, which holds).
        y_float: the float evaluator's outputs at x rounded to float32 (None when no float
            replay was run).
        float_replay: the name of the float evaluator that confirmed the witness (e.g.
            "onnxruntime"); "" when none was run or when it did not confirm it.
        float_ok: False only when a float replay was run and failed both checks of
            `validate_counterexample` (the witness is still exact: the real-valued network
            violates the property).
        float_check: one line saying which float check passed, or why it failed, e.g.
            "onnxruntime: property holds within atol 0.0001",
            "onnxruntime: outputs within rtol 0.001 of exact",
            "onnxruntime disagrees: ..."; "" when no float replay was run.
        replay: how the outputs were checked: "exact" (rational arithmetic; y is exact) or
            "enclosure" (certified rational enclosures, through sigmoid, exp or roots: the
            property holds on all of them; y is their midpoint).
    """

    x: tuple[Fraction, ...]
    y: tuple[Fraction, ...]
    y_float: tuple[float, ...] | None = None
    float_replay: str = ""
    float_ok: bool = True
    float_check: str = ""
    replay: str = "exact"

    def vnncomp(self) -> str:
        """The VNN-COMP counterexample format ((X_0 v) ... (Y_0 v) ...).

        Outputs are the float replay's when it ran and gave finite values, else the exact
        outputs rounded to float64. A value beyond the float64 range prints as inf / -inf (what
        IEEE rounding gives and Python's float() reads back); nothing here raises."""
        ys = self.y_float if self.y_float is not None and all(map(math.isfinite, self.y_float)) \
            else [to_float(v) for v in self.y]
        items = [f"(X_{i} {to_float(v)!r})" for i, v in enumerate(self.x)]
        items += [f"(Y_{j} {to_float(v)!r})" for j, v in enumerate(ys)]
        return "(" + "\n ".join(items) + ")"


def _fmt(vals) -> str:
    return "[" + ", ".join(f"{to_float(v):.9g}" for v in vals) + "]"


def check_float_replay(prop, x, y, y_float, name: str = "onnxruntime", tol: float = VNNCOMP_TOL,
                rtol: float = VNNCOMP_RTOL) -> tuple[bool, str]:
    """(passed, note) of the float replay of an exactly replayed witness (see
    `validate_counterexample` for the rule). `x` is the float32-rounded input the float
    evaluator saw, `y` the exact outputs, `y_float` the evaluator's outputs."""
    bad = [j for j, v in enumerate(y_float) if not math.isfinite(v)]
    if bad:
        j = bad[0]
        return False, (f"{name} disagrees: output Y_{j} is {y_float[j]!r} in floating point "
                       f"(float overflow), exactly {to_float(y[j]):.9g}")
    bad_x = [i for i, v in enumerate(x) if not math.isfinite(v)]
    if bad_x:
        return False, f"{name} disagrees: input X_{bad_x[0]} is outside the float32 range"
    fenv = {f"X_{i}": v for i, v in enumerate(x)} | {f"Y_{j}": v for j, v in enumerate(y_float)}
    if prop.holds(fenv, tol=tol):
        return True, f"{name}: property holds within atol {tol:g}"
    a, r = Fraction(tol), Fraction(rtol)
    errs = [abs(Fraction(yf) - ye) for yf, ye in zip(y_float, y)]
    if len(y_float) == len(y) and all(e <= r * abs(ye) + a for e, ye in zip(errs, y)):
        return True, f"{name}: outputs within rtol {rtol:g} of exact"
    worst = max(range(len(errs)), key=lambda j: errs[j] - r * abs(y[j])) if errs else None
    detail = "; ".join(prop.violations(fenv, tol=tol))
    if worst is not None:
        detail += (f"; Y_{worst} = {y_float[worst]:.9g} in floating point, exactly "
                   f"{to_float(y[worst]):.9g}")
    return False, f"{name} disagrees: {detail} (atol {tol:g}, rtol {rtol:g})"


def validate_counterexample(graph: Graph, prop, model: dict[str, Fraction],
                            float_eval: Callable[[np.ndarray], np.ndarray] | None = None,
                            float_name: str = "onnxruntime", tol: float = VNNCOMP_TOL,
                            rtol: float = VNNCOMP_RTOL) -> Counterexample:
    """Replay a verify model through the network.

    The exact replay (the model's input, rational arithmetic) must satisfy the property
    exactly, else `ValidationError` (showing both evaluations). That is the only failure.

    The float replay, when `float_eval` is given, runs on the input rounded to float32 (as a
    VNN-COMP checker does) and passes when EITHER
      1. the property holds on the float outputs with every atom relaxed by the absolute
         tolerance `tol` (1e-4: `a <= b` becomes `a <= b + tol`, VNN-COMP's check), OR
      2. every float output agrees with its exact output within the relative tolerance
         `rtol` (1e-3): |y_float - y| <= rtol * |y| + tol (the float network computes the
         same outputs, so a large-output witness near the boundary is not refused for
         float32's rounding).
    Non-finite float outputs (float overflow) and inputs outside the float32 range fail it.
    A failed float replay is recorded (`float_ok=False`, `float_check` says why), not
    raised; `float_replay` names the evaluator only when it passed. An exception raised by
    the evaluator itself is recorded the same way.
    """
    inp = graph.inputs[0]
    out = graph.outputs[0]
    x = [model[f"X_{i}"] for i in range(inp.dim)]
    y = list(evaluate_exact(graph, {inp.name: x})[out])
    env = {f"X_{i}": v for i, v in enumerate(x)} | {f"Y_{j}": v for j, v in enumerate(y)}
    if not prop.holds(env):
        raise ValidationError(
            "solver model fails the exact replay: " + "; ".join(prop.violations(env))
            + f"\n  x = {_fmt(x)}\n  exact y = {_fmt(y)}")
    if float_eval is None:
        return Counterexample(tuple(x), tuple(y))
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.array([to_float(v) for v in x], dtype=np.float64).astype(np.float32)
        xf = [float(v) for v in x32]
        try:
            y_float = tuple(float(v) for v in np.asarray(float_eval(x32), dtype=np.float64).reshape(-1))
        except Exception as e:  # noqa: BLE001 - the exact replay stands; say why floats did not
            msg = " ".join(str(e).split())[:300]
            return Counterexample(tuple(x), tuple(y), None, "", False,
                                  f"{float_name} could not replay the witness: "
                                  f"{type(e).__name__}: {msg}")
    ok, note = check_float_replay(prop, xf, y, y_float, float_name, tol, rtol)
    return Counterexample(tuple(x), tuple(y), y_float, float_name if ok else "", ok, note)
