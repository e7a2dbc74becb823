"""Where solving tasks run: local solver processes or a Ray cluster. Tasks are plain data (the
compiled script and its options), never open solver objects, so they can cross machines; every
task solves in a child process killed at its deadline (see isolate.py).

Both executors read their tasks lazily (a task is made when a worker is free, so its timeout
can be what is left of its instance's time), yield (key, Result) as tasks finish, and can
`cancel` running tasks, e.g. the other sub-queries of an instance once one has a validated
counterexample; closing the `run` iterator cancels everything still running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from nnsmt.errors import BackendUnavailable
from nnsmt.result import Result, SolveOptions
from nnsmt.terms import Script


@dataclass(frozen=True)
class Task:
    key: str
    backend: str
    script: Script
    timeout: float | None = None
    memory_mb: int | None = None
    options: SolveOptions = SolveOptions()


def run_task(task: Task) -> tuple[str, Result]:
    from .isolate import solve_isolated
    return task.key, solve_isolated(task.backend, task.script, task.timeout, task.memory_mb, task.options)


class InlineExecutor:
    """Solve in this process, one task at a time (nothing to enforce: no deadline, no memory
    cap). Used where forking a child per query would only cost time."""

    name = "inline"
    jobs = 1

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[str, Result]]:
        from . import get_backend
        for t in tasks:
            yield t.key, get_backend(t.backend).solve(t.script, t.timeout, t.options)

    def cancel(self, keys: Iterable[str] | None = None) -> None:
        pass


class LocalExecutor:
    """Solver processes forked from this one, at most `jobs` at once (default: the number of
    cores); a cancelled task's process is killed."""

    name = "local"

    def __init__(self, jobs: int | None = None):
        from .isolate import Children
        self._children = Children(jobs)
        self.jobs = self._children.jobs

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[str, Result]]:
        """Yield (key, result) as tasks finish, at most `jobs` running at once."""
        return self._children.run((t.key, t.backend, t.script, t.timeout, t.memory_mb, t.options)
                                  for t in tasks)

    def cancel(self, keys: Iterable[str]) -> None:
        self._children.cancel(keys)


class RayExecutor:
    """Ray tasks on a local instance (`ray.init()`) or a cluster (`address`, e.g. "auto" after
    `ray start --head`, or "ray://host:10001"). At most `jobs` tasks in flight (default: the
    cluster's CPUs). A cancelled task's worker is killed, and its solver process with it."""

    name = "ray"

    def __init__(self, jobs: int | None = None, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise BackendUnavailable('the Ray executor needs ray: pip install "nnsmt[ray]"') from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False, configure_logging=False)
        self.jobs = jobs or int(ray.cluster_resources().get("CPU", 1))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        self._running: dict = {}  # object ref -> Task

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[str, Result]]:
        try:
            for t in tasks:
                self._running[self._remote.remote(t)] = t
                while len(self._running) >= self.jobs:
                    yield from self._next()
            while self._running:
                yield from self._next()
        finally:
            self.cancel()

    def _next(self) -> Iterator[tuple[str, Result]]:
        done, _ = self.ray.wait(list(self._running), num_returns=1)
        for ref in done:
            t = self._running.pop(ref, None)
            if t is None:
                continue
            try:
                yield self.ray.get(ref)
            except Exception as e:  # a lost worker or node is this task's error, not the run's end
                yield t.key, Result("error", t.backend, f"Ray task failed: {type(e).__name__}: {e}")

    def cancel(self, keys: Iterable[str] | None = None) -> None:
        """Kill the running tasks with these keys (all without keys): force-cancelling kills the
        worker process, and the solver it forked dies with it (isolate._die_with_parent)."""
        keys = None if keys is None else set(keys)
        for ref, t in list(self._running.items()):
            if keys is None or t.key in keys:
                del self._running[ref]
                self.ray.cancel(ref, force=True)


def get_executor(name: str, jobs: int | None = None, address: str | None = None):
    if name == "local":
        return LocalExecutor(jobs)
    if name == "ray":
        return RayExecutor(jobs, address)
    raise BackendUnavailable(f"unknown executor {name!r} (local, ray)")


def indexed_runner(executor, backend: str, memory_mb: int | None = None) -> Callable:
    """Adapt an executor to `nnsmt.queries.split`: (index, script, timeout) triples in,
    (index, Result) out; closing the output cancels what still runs."""
    def run(items):
        results = executor.run(Task(str(i), backend, s, t, memory_mb) for i, s, t in items)
        try:
            for key, res in results:
                yield int(key), res
        finally:
            results.close()
    return run
