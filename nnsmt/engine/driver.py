"""The one driver: every query on every backend goes through `drive` (or `solve`, its one-query
form), which owns where solvers run (in-process, forked children killed at a hard deadline, or
Ray), and how each answer is settled (certify the model, refine, or say why not).

A `Run` is one query being solved: it hands out scripts (one, or many sub-queries with their
share of the time) and takes answers in any order. `SingleRun` is a query with its refinement
rounds; `nnsmt.queries.split.SplitRun` is a verification split into sub-boxes. `drive` runs
many runs on one executor (that is `nnsmt batch`); `nnsmt diff` is `drive` over the same
query on several backends.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, Protocol

from nnsmt.backends import get_backend
from nnsmt.backends.executors import InlineExecutor, Task, get_executor
from nnsmt.errors import UnsupportedError
from nnsmt.query import Outcome, Query, settle  # settle: the policy lives with the protocol
from nnsmt.result import Result, SolveOptions
from nnsmt.terms import Script


class Run(Protocol):
    """A query being solved on one backend: scripts out, answers in, in any order."""

    backend: str
    outstanding: set[int]

    def take(self) -> tuple[int, Script, float | None, SolveOptions] | None:
        """The next script to solve (index, script, seconds, options), or None for now."""

    def record(self, index: int, res: Result) -> None:
        """An answer to the script handed out under `index`."""

    @property
    def done(self) -> bool:
        """Decided, or nothing running and nothing more to start."""

    def outcome(self) -> Outcome:
        """The answer, once done."""


class Deadline:
    """Seconds left of a time budget (None: no limit)."""

    def __init__(self, timeout: float | None):
        self.t0 = time.perf_counter()
        self.end = None if timeout is None else self.t0 + timeout

    def left(self) -> float | None:
        return None if self.end is None else self.end - time.perf_counter()

    def over(self) -> bool:
        return self.end is not None and time.perf_counter() >= self.end

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


class SingleRun:
    """One query and its refinement rounds, within one deadline."""

    def __init__(self, query: Query, backend: str, timeout: float | None = None, engine: str = "plain",
                 notes: tuple[str, ...] = (), stats: dict | None = None):
        self.query, self.backend, self.engine, self.notes = query, backend, engine, notes
        self.deadline = Deadline(timeout)
        self.outstanding: set[int] = set()
        self.rounds = 0
        self.stats = dict(stats or {})
        self.solver_s = 0.0
        self._waiting = True  # the current query is not handed out yet
        self._script: Script | None = None  # the current query's script, once compiled
        self._outcome: Outcome | None = None

    def on(self, backend: str) -> "SingleRun":
        """A fresh run of the same query on another backend (what `nnsmt diff` compares); the
        script compiled already is shared, not compiled again."""
        run = SingleRun(self.query, backend, self.deadline.left(), self.engine, self.notes, self.stats)
        run._script = self._script
        return run

    def script(self) -> Script:
        """The current query's script, compiled once (checking a backend's capabilities and
        handing the script out use the same one)."""
        if self._script is None:
            t = time.perf_counter()
            self._script = self.query.compile()
            self.stats["compile_s"] = self.stats.get("compile_s", 0.0) + time.perf_counter() - t
        return self._script

    def take(self):
        if self._outcome is not None or not self._waiting:
            return None
        left = self.deadline.left()
        if left is not None and left <= 0:
            self._finish(Outcome("unknown", self.query.kind, self.backend, reason="timeout"))
            return None
        self._waiting = False
        self.rounds += 1
        self.outstanding.add(self.rounds)
        return self.rounds, self.script(), left, self.query.options

    def record(self, index: int, res: Result) -> None:
        self.outstanding.discard(index)
        self.solver_s += sum(v for k, v in res.stats.items() if k in ("parse_s", "solve_s", "build_s"))
        for k in ("objective", "objective_strict", "delta"):
            if k in res.stats:
                self.stats[k] = res.stats[k]
        self.last = res
        got = settle(self.query, res)
        if isinstance(got, Outcome):
            self._finish(got)
        else:
            self.query, self._waiting, self._script = got, True, None

    def _finish(self, o: Outcome) -> None:
        stats = {k: round(v, 4) if isinstance(v, float) else v for k, v in self.stats.items()}
        stats |= {"solve_s": round(self.solver_s, 4), "total_s": round(self.deadline.elapsed(), 4)}
        self._outcome = Outcome(o.status, o.query, o.backend or self.backend, self.engine, o.reason,
                                o.witness, self.notes + o.notes, self.rounds, stats)

    @property
    def done(self) -> bool:
        if self._outcome is None and self._waiting and self.deadline.over():
            self.take()  # settles as a timeout
        return self._outcome is not None

    def outcome(self) -> Outcome:
        return self._outcome


def executor_for(timeout: float | None, jobs: int = 1, name: str = "local", address: str | None = None,
                 memory_mb: int | None = None):
    """Where solvers run: in this process when nothing needs enforcing (no deadline, no memory
    cap, one job), else forked children killed at their deadline, or Ray."""
    if name == "local" and timeout is None and memory_mb is None and jobs == 1:
        return InlineExecutor()
    return get_executor(name, jobs, address)


def drive(runs: Iterable[Run], executor, memory_mb: int | None = None) -> Iterator[tuple[Run, Outcome]]:
    """Solve runs on `executor`, yielding (run, outcome) as each finishes.

    Runs are read lazily (an instance is planned when a worker is free for it, so its time
    counts from then); a started run's scripts go first. When a run is decided, its scripts
    still running are cancelled (e.g. the other sub-boxes once one has a counterexample)."""
    source = iter(runs)
    live: dict[str, Run] = {}
    ready: list[Run] = []
    finished: list[Run] = []
    counter = iter(range(1 << 62))

    def start(run) -> None:
        key = str(next(counter))
        run._drive_key = key
        live[key] = run
        ready.append(run)

    def tasks():
        while True:
            for run in list(ready):
                item = run.take()
                if item is None:
                    ready.remove(run)
                    if run.done and run._drive_key in live:
                        del live[run._drive_key]
                        finished.append(run)
                    continue
                index, script, timeout, options = item
                ready.remove(run)  # round robin: the same query on several backends goes evenly
                ready.append(run)
                yield Task(f"{run._drive_key}#{index}", run.backend, script, timeout, memory_mb, options)
                break
            else:
                run = next(source, None)
                if run is None:
                    return
                start(run)

    while True:
        results = executor.run(tasks())
        try:
            for key, res in results:
                rk, index = key.rsplit("#", 1)
                run = live.get(rk)
                if run is None:
                    continue  # an answer for a run already decided
                run.record(int(index), res)
                if run.done:
                    executor.cancel([f"{rk}#{i}" for i in run.outstanding])
                    del live[rk]
                    if run in ready:
                        ready.remove(run)
                    yield run, run.outcome()
                elif run not in ready:
                    ready.append(run)
                while finished:
                    r = finished.pop(0)
                    yield r, r.outcome()
        finally:
            results.close()
        while finished:
            r = finished.pop(0)
            yield r, r.outcome()
        if not live:
            return
        for rk, run in list(live.items()):
            if run.done:
                del live[rk]
                yield run, run.outcome()
        ready = [r for r in live.values()]
        if not ready:
            return


def check_backend(name: str, features) -> None:
    """BackendUnavailable if `name` is not installed; UnsupportedError if it cannot take a
    script with these features (an explicit choice the query cannot honour: a usage error)."""
    why = get_backend(name).supports(frozenset(features))
    if why:
        raise UnsupportedError(f"backend {name!r} cannot decide this query: {why}")


def solve(query: Query, backend: str = "z3", timeout: float | None = None, *,
          memory_mb: int | None = None, engine: str = "plain", executor=None) -> Outcome:
    """Decide one query: compile, solve under the hard deadline, settle (certify or refine)."""
    run = SingleRun(query, backend, timeout, engine)
    check_backend(backend, run.script().features)
    ex = executor or executor_for(timeout, memory_mb=memory_mb)
    for _, outcome in drive([run], ex, memory_mb):
        return outcome
    return run.outcome()


def solver(backend: str, timeout: float | None = None, memory_mb: int | None = None):
    """A `nnsmt.result.Solve` for queries that call solvers in a loop (CEGIS, bisection,
    per-neuron questions): (script, seconds=None, options=SolveOptions()) -> Result, in this
    process without a time limit, else in a child killed at its deadline. `timeout` is the
    default limit per call."""
    be = get_backend(backend)

    def run(script: Script, seconds: float | None = timeout, options: SolveOptions = SolveOptions()) -> Result:
        if seconds is None and memory_mb is None:
            return be.solve(script, None, options)
        from nnsmt.backends.isolate import solve_isolated
        return solve_isolated(backend, script, seconds, memory_mb, options)
    run.backend = backend
    run.capabilities = be.capabilities
    return run


def claims_solver(solve, confirm: str | None = None):
    """(name, `solver`) of the exact backend that confirms a floating-point backend's claims
    (`nnsmt.queries.stability.classify`'s `confirm`), or (None, None): `confirm` when given,
    else cvc5 for a MILP (a `solve` that harvests), else none."""
    name = confirm or ("cvc5" if "harvest" in solve.capabilities.options else None)
    return name, (solver(name) if name else None)
