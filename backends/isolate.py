"""Run backends in child processes under a hard wall-clock deadline and a memory cap.

Solvers check their own time limits only now and then (cvc5 overshoots a 0.5 s limit by
seconds on ACAS Xu), and a crash or runaway allocation inside a solver's C++ code would take
the caller down with it; a forked child that is killed on expiry makes all of these harmless.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from nnsmt.result import Result
from nnsmt.terms import Script

GRACE_S = 0.5  # past the solver's own limit before the child is killed


def _child(conn, backend_name, script, timeout, memory_mb):
    if memory_mb:
        import resource
        limit = int(memory_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from . import get_backend
    try:
        conn.send(get_backend(backend_name).solve(script, timeout=timeout))
    except MemoryError:
        conn.send(Result("unknown", backend_name, f"memory limit ({memory_mb} MB)"))
    except BaseException as e:  # report, never hang the parent
        conn.send(Result("error", backend_name, f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


@dataclass
class _Job:
    backend: str
    proc: object
    conn: object
    t0: float
    result: Result | None = None


def _ctx():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _start(backend_name, script, timeout, memory_mb) -> _Job:
    recv, send = _ctx().Pipe(duplex=False)
    proc = _ctx().Process(target=_child, args=(send, backend_name, script, timeout, memory_mb), daemon=True)
    proc.start()
    send.close()
    return _Job(backend_name, proc, recv, time.perf_counter())


def _finish(job: _Job, memory_mb) -> Result:
    if job.proc.is_alive():
        job.proc.kill()
    job.proc.join()
    job.conn.close()
    if job.result is not None:
        return job.result
    code = job.proc.exitcode
    why = f"solver process died (exit code {code}" + (f", signal {-code}" if code is not None and code < 0 else "") + ")"
    if memory_mb:
        why += f"; memory limit was {memory_mb} MB"
    return Result("error", job.backend, why, stats={"solve_s": time.perf_counter() - job.t0})


def solve_many(backend_names: list[str], script: Script, timeout: float | None,
               memory_mb: int | None = None) -> list[Result]:
    """Solve the same script on several backends at once, each in its own child process.
    Past `timeout` + grace a child is killed: unknown (timeout). A child that dies: error."""
    jobs = [_start(b, script, timeout, memory_mb) for b in backend_names]
    deadline = None if timeout is None else time.perf_counter() + timeout + GRACE_S
    pending = {j.conn: j for j in jobs}
    while pending:
        left = None if deadline is None else max(0.0, deadline - time.perf_counter())
        ready = wait(list(pending), timeout=left)
        if not ready:
            break
        for conn in ready:
            job = pending.pop(conn)
            try:
                job.result = conn.recv()
            except EOFError:
                pass  # died without answering: _finish reports it
    for job in pending.values():
        job.result = Result("unknown", job.backend, "timeout",
                            stats={"solve_s": time.perf_counter() - job.t0, "killed": 1.0})
    return [_finish(j, memory_mb) for j in jobs]


def solve_isolated(backend_name: str, script: Script, timeout: float | None,
                   memory_mb: int | None = None) -> Result:
    """Solve in a forked child; past `timeout` + grace the child is killed and the answer is
    unknown (timeout). A child that dies gives status error with its exit code."""
    return solve_many([backend_name], script, timeout, memory_mb)[0]
