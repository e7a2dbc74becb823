"""Where solving tasks run: a local process pool or a Ray cluster. Tasks are plain data (the
compiled script and its options), never open solver objects, so they can cross machines; every
task solves in a child process killed at its deadline (see isolate.py)."""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterable, Iterator

from nnsmt.errors import BackendUnavailable
from nnsmt.result import Result
from nnsmt.terms import Script


@dataclass(frozen=True)
class Task:
    key: str
    backend: str
    script: Script
    timeout: float | None = None
    memory_mb: int | None = None


def run_task(task: Task) -> tuple[str, Result]:
    from .isolate import solve_isolated
    return task.key, solve_isolated(task.backend, task.script, task.timeout, task.memory_mb)


class LocalExecutor:
    """A pool of `jobs` worker processes (default: the number of cores)."""

    name = "local"

    def __init__(self, jobs: int | None = None):
        self.jobs = jobs or os.cpu_count() or 1

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[str, Result]]:
        """Yield (key, result) as tasks finish, at most `jobs` running at once."""
        tasks = iter(tasks)
        with ProcessPoolExecutor(self.jobs) as pool:
            running = set()
            for t in tasks:
                running.add(pool.submit(run_task, t))
                if len(running) >= self.jobs:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)


class RayExecutor:
    """Ray tasks on a local instance (`ray.init()`) or a cluster (`address`, e.g. "auto" after
    `ray start --head`, or "ray://host:10001"). At most `jobs` tasks in flight (default: the
    cluster's CPUs)."""

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
        self._remote = ray.remote(num_cpus=1)(run_task)

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[str, Result]]:
        ray = self.ray
        tasks = iter(tasks)
        running = []
        for t in tasks:
            running.append(self._remote.remote(t))
            if len(running) >= self.jobs:
                done, running = ray.wait(running, num_returns=1)
                yield from ray.get(done)
        while running:
            done, running = ray.wait(running, num_returns=1)
            yield from ray.get(done)


def get_executor(name: str, jobs: int | None = None, address: str | None = None):
    if name == "local":
        return LocalExecutor(jobs)
    if name == "ray":
        return RayExecutor(jobs, address)
    raise BackendUnavailable(f"unknown executor {name!r} (local, ray)")
