"""nnsmt data: generate training data sets (the seed paper's sphere task)."""

from __future__ import annotations

import sys

import numpy as np

from nnsmt.errors import InputError

from .common import add_command, add_output, check_output, nonnegative_int, positive_int


DEFAULT_POINTS = 200


def run(args) -> int:
    from nnsmt.data import save_csv, sphere_grid, sphere_points
    if args.grid and args.points is not None:
        raise InputError("--grid is the fixed 12-point grid: give --grid or --points, not both")
    if args.output:
        check_output(args.output)  # before any work: a directory or a missing folder is refused
    x, y = sphere_grid(args.seed) if args.grid else sphere_points(args.points or DEFAULT_POINTS, args.seed)
    if args.output:
        save_csv(args.output, x, y)
        print(f"wrote {args.output}: {len(y)} points, {int(np.sum(y == 1))} labelled 1, "
              f"{int(np.sum(y == 0))} labelled 0", file=sys.stderr)
    else:
        import tempfile
        from pathlib import Path
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "data.csv"
            save_csv(p, x, y)
            sys.stdout.write(p.read_text())
    return 0


def register(sub):
    sp = add_command(sub, "data", "generate a training data set (CSV: x1,x2,x3,label)", run)
    sp.add_argument("task", choices=["sphere"], help="sphere: points on the unit sphere in 3-D, label 1 on the "
                    "positive side of two random planes a.x > 0 and d.x > 0 (seeded), else 0")
    sp.add_argument("--points", type=positive_int, default=None,
                    help=f"number of uniform random points (default {DEFAULT_POINTS}, at most 10,000,000)")
    sp.add_argument("--grid", action="store_true", help="instead, the 12-point angle grid: polar angle pi/4, "
                    "pi/2, 3pi/4 times azimuth 0, pi/2, pi, 3pi/2")
    sp.add_argument("--seed", type=nonnegative_int, default=0,
                    help="seed of the points and the planes, an integer >= 0 (default 0)")
    add_output(sp)
