"""What a backend returns, and the small interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from .terms import Script

STATUSES = ("sat", "unsat", "unknown", "delta-sat", "error")


@dataclass(frozen=True)
class Result:
    """A solver's answer. `model` maps the script's declared names to exact values (for sat);
    `reason` says why for unknown/error (e.g. "timeout"); `stats` holds timings in seconds;
    `core` names the assertions of an unsat core (when the script asked for one with
    `meta["want_core"] = True` and the backend gives cores)."""

    status: str
    backend: str
    reason: str = ""
    model: dict[str, Fraction] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    core: tuple[str, ...] = ()

    def __post_init__(self):
        assert self.status in STATUSES, self.status


class Backend(Protocol):
    name: str

    def supports(self, features: frozenset[str]) -> str | None:
        """None if the backend can decide scripts with these features, else the reason."""

    def solve(self, script: Script, timeout: float | None = None) -> Result:
        """Decide the script; a timeout (seconds) gives status unknown, reason "timeout"."""
