"""One query on several backends (`nnsmt diff`): every backend's outcome as a row, the
consensus, whether two answers cannot both be right, and the verdict the exit code follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nnsmt.errors import BackendUnavailable, UnsupportedError
from nnsmt.query import Outcome

from .driver import Run, SingleRun, check_backend, drive, executor_for


@dataclass(frozen=True)
class Row:
    """One backend's answer.

    Attributes:
        backend: the backend's name.
        status: the outcome's status, or "skipped" (the backend is missing or cannot take the script).
        validated: a sat whose model was certified (replayed).
        notes: how a sat was validated, why a row is skipped or failed, the outcome's reason.
        time_s: solver seconds (None when skipped).
    """

    backend: str
    status: str
    validated: bool = False
    notes: str = ""
    time_s: float | None = None

    def to_json(self) -> dict:
        """The row as `nnsmt diff --json` prints it."""
        return {"backend": self.backend, "status": self.status, "time_s": self.time_s,
                "validated": self.validated, "notes": self.notes}


def row(backend: str, o: Outcome) -> Row:
    """The row of `backend`'s outcome: a sat says how its witness was validated; an error from a model
    that fails the replay says so first."""
    notes = o.reason
    if o.status == "sat":
        how = o.witness if isinstance(o.witness, str) else "exact" + (
            f"+{o.witness.float_replay}" if getattr(o.witness, "float_replay", "") else "")
        notes = f"validated ({'; '.join((how,) + o.notes)})"
    elif o.status == "error" and o.reason.startswith("solver model fails the replay"):
        notes = "MODEL FAILS REPLAY: " + o.reason.split(": ", 1)[1].splitlines()[0]
    return Row(backend, o.status, o.status == "sat", notes, round(o.stats.get("solve_s", 0.0), 3))


def compare(rows) -> tuple[bool, str]:
    """(disagreement, consensus): a validated sat and an unsat disagree; else the consensus is
    sat if some row has a validated sat, unsat if some row is unsat, otherwise unknown."""
    valid_sat = any(r.status == "sat" and r.validated for r in rows)
    unsat = any(r.status == "unsat" for r in rows)
    if valid_sat and unsat:
        return True, "disagreement"
    return False, "sat" if valid_sat else "unsat" if unsat else "unknown"


@dataclass(frozen=True)
class Report:
    """The rows of one query on several backends, and what they add up to.

    Attributes:
        rows: one per backend, in the order asked.
        engine: the engine that planned the (sub-)queries ("plain" for one query).
        consensus: "sat", "unsat", "unknown", or "disagreement" (see `compare`).
        disagreement: a validated sat and an unsat for the same query.
    """

    rows: tuple[Row, ...]
    engine: str = "plain"
    consensus: str = "unknown"
    disagreement: bool = False

    @property
    def failed(self) -> bool:
        """Some backend failed (an error, or a sat whose model failed the replay)."""
        return any(r.status == "error" for r in self.rows)

    @property
    def verdict(self) -> str:
        """What the exit code follows: "disagreement", else "error" if some backend failed,
        else the consensus."""
        return "disagreement" if self.disagreement else "error" if self.failed else self.consensus


def verify_runs(graph, prop, backends: list[str], options, float_eval=None, float_type: str = "") -> list[Run]:
    """The verification query planned once (`nnsmt.engine.verify.plan` with `options`, for the
    first backend, without candidate points: every sat should come from a solver; `float_eval`
    replays models in onnxruntime; `float_type` as for `plan`); each backend gets the same
    compiled (sub-)queries."""
    from dataclasses import replace

    from nnsmt.backends import capabilities
    from nnsmt.errors import NnsmtError
    from .verify import plan
    def verifier(b) -> bool:  # a VNN-LIB verifier answers whole questions: one each
        try:
            return "vnnlib" in capabilities(b).features
        except NnsmtError:  # unavailable: its row says why
            return False
    whole = [b for b in backends if verifier(b)]
    solvers = [b for b in backends if b not in whole]
    runs = {}
    if solvers:
        run = plan(graph, prop, replace(options, backend=solvers[0], candidates=False), float_eval, float_type)
        runs = {b: run.on(b) for b in solvers}
    for b in whole:
        runs[b] = plan(graph, prop, replace(options, backend=b, engine="plain", candidates=False), float_eval,
                       float_type)
    return [runs[b] for b in backends]


def diff(runs: list[Run], timeout: float | None = None, memory_mb: int | None = None,
         settle: Callable[[Outcome], Outcome] = lambda o: o) -> Report:
    """Drive the runs (the same query on different backends), each solver in its own process,
    and compare the answers. A backend that is missing or cannot take the script is a skipped
    row, not the end. `settle` maps each outcome to the answer of the question asked (a VNN-LIB
    2 query's, `nnsmt.engine.standard.settle`) before it is compared."""
    skipped: dict[int, str] = {}
    for run in runs:
        try:  # split sub-queries are piecewise linear: no features beyond linear arithmetic
            check_backend(run.backend, run.script().features if isinstance(run, SingleRun) else frozenset())
        except (BackendUnavailable, UnsupportedError) as e:
            skipped[id(run)] = str(e)
    live = [r for r in runs if id(r) not in skipped]
    ex = executor_for(timeout, max(1, len(live)), memory_mb=memory_mb)
    outcomes = {id(r): settle(o) for r, o in drive(live, ex, memory_mb)}
    rows = tuple(Row(r.backend, "skipped", notes=skipped[id(r)]) if id(r) in skipped
                 else row(r.backend, outcomes[id(r)]) for r in runs)
    disagree, consensus = compare(rows)
    return Report(rows, getattr(runs[0], "engine", "plain") if runs else "", consensus, disagree)


def diff_query(query, backends: list[str], timeout: float | None = None, memory_mb: int | None = None) -> Report:
    """`diff` of one query (with its refinement rounds) on each of `backends`."""
    runs = [SingleRun(query, b, timeout) for b in backends[:1]]  # compiled once, shared by .on
    return diff(runs + [runs[0].on(b) for b in backends[1:]], timeout, memory_mb)
