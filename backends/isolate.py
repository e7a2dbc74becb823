"""Run backends in child processes under a hard wall-clock deadline and a memory cap.

Solvers check their own time limits only now and then (cvc5 overshoots a 0.5 s limit by
seconds on ACAS Xu), and a crash or runaway allocation inside a solver's C++ code would take
the caller down with it; a forked child that is killed on expiry makes all of these harmless.
`Children` runs many such children, at most `jobs` at once, each with its own deadline; it is
the local executor's pool and the way `solve_many` races backends.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Hashable, Iterable, Iterator

from nnsmt.result import Result, SolveOptions
from nnsmt.terms import Script

from .base import NO_LIMIT_BEYOND_S

GRACE_S = 0.5  # past the solver's own limit before the child is killed


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this child when the process that forked it dies, so a worker that is
    killed (a cancelled Ray task) cannot leave its solver running. Elsewhere a no-op."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child(conn, backend_name, script, timeout, memory_mb, options, parent):
    _die_with_parent(parent)
    if memory_mb:
        import resource
        limit = int(memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from . import get_backend
    try:
        conn.send(get_backend(backend_name).solve(script, timeout=timeout, options=options))
    except MemoryError:
        conn.send(Result("unknown", backend_name, f"memory limit ({memory_mb} MB)"))
    except BaseException as e:  # report, never hang the parent
        conn.send(Result("error", backend_name, f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


@dataclass
class _Job:
    key: Hashable
    backend: str
    proc: object
    conn: object
    t0: float
    deadline: float | None
    memory_mb: int | None
    result: Result | None = None


def _ctx():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _start(key, backend_name, script, timeout, memory_mb, options=SolveOptions()) -> _Job:
    recv, send = _ctx().Pipe(duplex=False)
    proc = _ctx().Process(target=_child, args=(send, backend_name, script, timeout, memory_mb, options,
                                               os.getpid()),
                          daemon=True)
    proc.start()
    send.close()
    t0 = time.perf_counter()
    # beyond NO_LIMIT_BEYOND_S there is no deadline, as for the solver itself (a deadline
    # centuries away, --timeout 1e300, overflows the poll's clock)
    limited = timeout is not None and timeout <= NO_LIMIT_BEYOND_S
    return _Job(key, backend_name, proc, recv, t0, t0 + timeout + GRACE_S if limited else None, memory_mb)


def _finish(job: _Job) -> Result:
    if job.proc.is_alive():
        job.proc.kill()
    job.proc.join()
    job.conn.close()
    if job.result is not None:
        return job.result
    code = job.proc.exitcode
    why = f"solver process died (exit code {code}" + (f", signal {-code}" if code is not None and code < 0 else "") + ")"
    if job.memory_mb:
        why += f"; memory limit was {job.memory_mb} MB"
    return Result("error", job.backend, why, stats={"solve_s": time.perf_counter() - job.t0})


class Children:
    """Solver children forked from this process, at most `jobs` at once (default: the number
    of cores), each killed at its own deadline (its timeout + GRACE_S): unknown (timeout).
    A child that dies without answering: error."""

    def __init__(self, jobs: int | None = None):
        self.jobs = jobs or os.cpu_count() or 1
        self.running: dict = {}  # connection -> _Job

    def run(self, tasks: Iterable[tuple]) -> Iterator[tuple[Hashable, Result]]:
        """Yield (key, result) as children finish. `tasks` holds (key, backend, script,
        timeout, memory_mb[, options]) tuples and is read lazily, only when a slot is free (so a task's
        timeout can be chosen when it starts). Closing the iterator kills what still runs."""
        tasks = iter(tasks)
        more = True
        try:
            while True:
                while more and len(self.running) < self.jobs:
                    t = next(tasks, None)
                    if t is None:
                        more = False
                    else:
                        job = _start(*t)
                        self.running[job.conn] = job
                if not self.running:
                    if more:
                        continue  # everything was cancelled while we yielded: start more
                    return
                deadlines = [j.deadline for j in self.running.values() if j.deadline is not None]
                left = None if not deadlines else max(0.0, min(deadlines) - time.perf_counter())
                for conn in wait(list(self.running), timeout=left):
                    job = self.running.pop(conn, None)
                    if job is None:
                        continue  # cancelled meanwhile
                    try:
                        job.result = conn.recv()
                    except EOFError:
                        pass  # died without answering: _finish reports it
                    yield job.key, _finish(job)
                now = time.perf_counter()
                for conn, job in list(self.running.items()):
                    if job.deadline is not None and now >= job.deadline and conn in self.running:
                        del self.running[conn]
                        job.result = Result("unknown", job.backend, "timeout",
                                            stats={"solve_s": now - job.t0, "killed": 1.0})
                        yield job.key, _finish(job)
        finally:
            self.cancel()

    def cancel(self, keys: Iterable[Hashable] | None = None) -> None:
        """Kill the running children with these keys (all of them without keys); they yield nothing."""
        keys = None if keys is None else set(keys)
        for conn, job in list(self.running.items()):
            if keys is None or job.key in keys:
                del self.running[conn]
                job.proc.kill()
                _finish(job)


def solve_many(backend_names: list[str], script: Script, timeout: float | None,
               memory_mb: int | None = None, options: SolveOptions = SolveOptions()) -> list[Result]:
    """Solve the same script on several backends at once, each in its own child process.
    Past `timeout` + grace a child is killed: unknown (timeout). A child that dies: error."""
    out = dict(Children(len(backend_names) or 1).run(
        (i, b, script, timeout, memory_mb, options) for i, b in enumerate(backend_names)))
    return [out[i] for i in range(len(backend_names))]


def solve_isolated(backend_name: str, script: Script, timeout: float | None,
                   memory_mb: int | None = None, options: SolveOptions = SolveOptions()) -> Result:
    """Solve in a forked child; past `timeout` + grace the child is killed and the answer is
    unknown (timeout). A child that dies gives status error with its exit code."""
    return solve_many([backend_name], script, timeout, memory_mb, options)[0]
