"""Progress of long runs on standard error: a batch's instances (`BatchProgress`), a training
run's phases (`training_status`) and a stability classification's (`phase_status`); a rich
display on a terminal, plain lines or nothing elsewhere."""

from __future__ import annotations

import sys
import time


class BatchProgress:
    """One update per finished instance: a rich progress bar on a terminal, else one line each
    (none when `quiet`).

    Args:
        total: instances in the batch; done: those already finished (resumed).
        quiet: print nothing (e.g. with --json).
    """

    def __init__(self, total: int, done: int, quiet: bool):
        self.total, self.done, self.t0, self.quiet = total, done, time.perf_counter(), quiet
        self.counts: dict[str, int] = {}
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=done)

    def update(self, key: str, status: str) -> None:
        """Instance `key` finished with `status`."""
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=counts)
        elif not self.quiet:
            print(f"[{self.done}/{self.total} {time.perf_counter() - self.t0:6.1f}s] {status:8} {key}  ({counts})",
                  file=sys.stderr)

    def close(self) -> None:
        """Stop the bar (a no-op without one)."""
        if self.bar is not None:
            self.bar.stop()


TRAINING_EVENTS = {"hints": "float fit for phase hints", "narrow": "narrow first: hidden width {width} (of {full})",
                   "solve": "round {round}: solving {points}/{total} points ({logic})",
                   "check": "round {round}: exact check of every point", "replay": "{what}"}


def _status(quiet: bool):
    """(a rich status line on standard error, its start time), or (None, None) unless both
    standard output and error are a terminal and not `quiet`."""
    try:
        if quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
            raise ImportError
        from rich.console import Console
    except ImportError:
        return None, None
    return Console(stderr=True).status("loading", spinner="dots"), time.perf_counter()


def training_status(quiet: bool):
    """A rich status line on standard error for `nnsmt.queries.train.train`'s progress events,
    shown only on a terminal and when not `quiet`.

    Returns:
        (the rich status, a context manager, or None; the progress callback, a no-op without
        a status).
    """
    status, t0 = _status(quiet)
    if status is None:
        return None, (lambda *a, **k: None)

    def show(event, **k):
        if event in TRAINING_EVENTS:
            status.update(f"[{time.perf_counter() - t0:6.1f} s] " + TRAINING_EVENTS[event].format(**k))
    return status, show


def phase_status(quiet: bool):
    """A rich status line on standard error for progress callbacks `(phase, text)` (`nnsmt
    stable`'s classification), shown only on a terminal and when not `quiet`.

    Returns:
        (the rich status or None, as `training_status`; the callback).
    """
    status, t0 = _status(quiet)
    if status is None:
        return None, (lambda *a, **k: None)

    def show(phase, text=""):
        status.update(f"[{time.perf_counter() - t0:6.1f} s] {phase}" + (f": {text}" if text else ""))
    return status, show
