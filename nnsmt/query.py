"""The query protocol every query type implements, and the one result type of the driver.

A query compiles itself to a solver-neutral `Script`, certifies a model of that script (an
exact replay, and a float replay where the source runs in onnxruntime), and may refine itself
after a rejected candidate (a piecewise-linear sigmoid relaxation, CEGIS, δ-sat margins).
`nnsmt.engine.driver` runs any query on any backend and returns an `Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping, Protocol

from .result import SolveOptions
from .terms import Script

# what every command reports: sat (a certified witness), unsat (a proof for the query's
# semantics), unknown (timeout, δ-sat that did not replay, an undecided relaxation), error (a
# solver failed, or an exact query's model failed the replay: never reported as sat)
OUTCOMES = ("sat", "unsat", "unknown", "error")


class Query(Protocol):
    """What the driver needs of a query.

    Attributes:
        kind: "verify", "train", "robustness", ... (reported in `Outcome.query`).
        options: the `SolveOptions` this query asks of solvers.
        relaxed: a model of the compiled script need not be a witness (a sound relaxation):
            a model that fails `certify` and cannot be refined is unknown, not an error.
    """

    kind: str
    options: SolveOptions
    relaxed: bool

    def compile(self) -> Script:
        """The solver-neutral script: sat iff (for exact queries) the question has a witness."""

    def certify(self, model: Mapping[str, Fraction]) -> Any:
        """The witness a model gives, checked; raises `nnsmt.errors.ValidationError` if none."""

    def refine(self, model: Mapping[str, Fraction], error: Exception) -> "Query | None":
        """A stronger query after `model` failed `certify` with `error`, or None."""


@dataclass(frozen=True)
class Outcome:
    """The driver's answer to one query, whichever engine and backend ran it.

    Attributes:
        status: one of OUTCOMES.
        query: the query's kind.
        backend: the backend that answered ("" when no solver was needed, e.g. bounds).
        engine: how the answer was reached, e.g. "plain", "bounded", "split(4096)", "bounds".
        reason: why, for unknown/error (e.g. "timeout").
        witness: the certified witness of a sat (e.g. `nnsmt.validate.Counterexample`).
        notes: what an answer means where it is not plain (a relaxation, δ-sat, float checks).
        rounds: solver calls made (refinement rounds, sub-queries).
        stats: timings in seconds and counters.
    """

    status: str
    query: str
    backend: str = ""
    engine: str = "plain"
    reason: str = ""
    witness: Any = None
    notes: tuple[str, ...] = ()
    rounds: int = 0
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON-ready fields every command prints with --json (the witness is the query's)."""
        return {"status": self.status, "query": self.query, "engine": self.engine,
                "backend": self.backend, "reason": self.reason, "notes": list(self.notes),
                "rounds": self.rounds, "stats": dict(self.stats)}


@dataclass(frozen=True)
class ScriptQuery:
    """A query given as a compiled script and a check of its models (`certify(model)` returns
    a witness or raises ValidationError): for scripts built outside a query type."""

    script: Script
    check: Any
    kind: str = "script"
    relaxed: bool = False
    options: SolveOptions = SolveOptions()

    def compile(self) -> Script:
        return self.script

    def certify(self, model):
        return self.check(model)

    def refine(self, model, error):
        return None
