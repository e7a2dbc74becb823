"""What a backend returns, the typed options it takes, the capabilities it declares, and the
small interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Callable, Protocol

from .errors import InternalError
from .terms import Script

STATUSES = ("sat", "unsat", "unknown", "delta-sat", "error")

# the start of the `Result.reason` of a floating-point solver (MILP, LP) that found a script
# infeasible but could not confirm it exactly: the status is unknown, never unsat; a caller may
# take it as a hint and confirm by other means (rigorous bounds, an exact query)
UNCONFIRMED_INFEASIBLE = "infeasible in floating point, not confirmed exactly"

# what a script may need beyond linear real arithmetic (see nnsmt.terms.term_features)
FEATURES = ("nonlinear", "exp", "int", "optimize")


@dataclass(frozen=True)
class Result:
    """A solver's answer. `model` maps the script's declared names to exact values (for sat);
    `reason` says why for unknown/error (e.g. "timeout"); `stats` holds timings in seconds;
    `core` names the assertions of an unsat core (when `SolveOptions.want_core` asked for one
    and the backend gives cores); `models` holds the further solutions a backend met on the way
    (when `SolveOptions.harvest` asked for them): candidates only, each to be replayed exactly
    by whoever uses it, like `model`."""

    status: str
    backend: str
    reason: str = ""
    model: dict[str, Fraction] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    core: tuple[str, ...] = ()
    models: tuple[dict[str, Fraction], ...] = ()

    def __post_init__(self):
        if self.status not in STATUSES:
            raise InternalError(f"backend {self.backend!r} returned status {self.status!r}; "
                                f"expected one of {', '.join(STATUSES)}")


@dataclass(frozen=True)
class SolveOptions:
    """Options a query asks of a solver. A backend honours those its `Capabilities.options`
    name and ignores the rest (each is a hint about speed or output, never about meaning,
    except where noted).

    Attributes:
        want_core: name the assertions of an unsat core in `Result.core`.
        delta: precision of a δ-complete backend (None: the backend's default).
        margin: δ-complete backends: strengthen every comparison by this much (a < b becomes
            a < b - margin). Its unsat then says nothing about the script: the backend must
            answer unknown instead.
        simplex: "soi" asks for a sum-of-infeasibilities simplex where a backend has one.
        harvest: the name of an assertion that is a disjunction: a backend that honours it
            (a MILP) maximises how many of its disjuncts hold and returns every solution it
            meets on the way in `Result.models` (the seed's solution harvesting); `model` is
            the best one. Others ignore it (one model, as usual).
    """

    want_core: bool = False
    delta: float | None = None
    margin: float = 0.0
    simplex: str = "default"
    harvest: str | None = None


OPTION_NAMES = tuple(f.name for f in fields(SolveOptions))


@dataclass(frozen=True)
class Capabilities:
    """What a backend can decide and which `SolveOptions` it honours (pySMT's factory picks
    solvers by logic the same way). `features` are the script features of FEATURES it takes;
    `delta_complete` backends answer delta-sat instead of sat; `why_not` explains a missing
    feature in the backend's own words."""

    features: frozenset[str] = frozenset()
    options: frozenset[str] = frozenset()
    delta_complete: bool = False
    why_not: tuple[tuple[str, str], ...] = ()

    def refuses(self, name: str, features) -> str | None:
        """None if scripts with `features` are within these capabilities, else the reason."""
        missing = sorted(set(features) - set(self.features))
        if not missing:
            return None
        notes = dict(self.why_not)
        return "; ".join(notes.get(f, f"{name} cannot decide scripts with {f}") for f in missing)


class Backend(Protocol):
    """A solver. `solve` never raises for a solver's failure: it answers status "error"."""

    name: str
    capabilities: Capabilities

    def supports(self, features: frozenset[str]) -> str | None:
        """None if the backend can decide scripts with these features, else the reason."""

    def solve(self, script: Script, timeout: float | None = None,
              options: SolveOptions = SolveOptions()) -> Result:
        """Decide the script; a timeout (seconds) gives status unknown, reason "timeout"."""


# how queries with several solver calls (CEGIS, bisection, per-neuron questions) are handed a
# solver by the driver: (script, seconds or None, options) -> Result, deadline enforced
Solve = Callable[..., Result]
