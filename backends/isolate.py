"""Run a backend in a child process under a hard wall-clock deadline.

Solvers check their own time limits only now and then (cvc5 overshoots a 0.5 s limit by
seconds on ACAS Xu), and a crash inside a solver's C++ code would take the caller down with
it; a forked child that is killed on expiry makes both harmless.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from nnsmt.result import Result
from nnsmt.terms import Script

GRACE_S = 0.5  # past the solver's own limit before the child is killed


def _child(conn, backend_name, script, timeout):
    from . import get_backend
    try:
        conn.send(get_backend(backend_name).solve(script, timeout=timeout))
    except BaseException as e:  # report, never hang the parent
        conn.send(Result("error", backend_name, f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def solve_isolated(backend_name: str, script: Script, timeout: float | None) -> Result:
    """Solve in a forked child; past `timeout` + grace the child is killed and the answer is
    unknown (timeout). A child that dies gives status error with its exit code."""
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(send, backend_name, script, timeout), daemon=True)
    proc.start()
    send.close()
    deadline = None if timeout is None else timeout + GRACE_S
    try:
        ready = recv.poll(deadline)
        if ready:
            try:
                res = recv.recv()
            except EOFError:
                res = None
        else:
            res = Result("unknown", backend_name, "timeout",
                         stats={"solve_s": time.perf_counter() - t0, "killed": 1.0})
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if res is None:
        code = proc.exitcode
        return Result("error", backend_name, f"solver process died (exit code {code}"
                      f"{', signal ' + str(-code) if code is not None and code < 0 else ''})")
    return res
