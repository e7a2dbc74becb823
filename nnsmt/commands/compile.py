"""nnsmt compile: write a query as SMT-LIB2 text.

Each mode is a function args -> Script, registered in MODES; a mode's own options are added
to the parser in `register`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nnsmt.errors import InputError

from .common import add_command


def verify_mode(args):
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    from .common import load_model
    if args.property is None:
        raise InputError("--mode verify needs --property P.vnnlib")
    return verify_script(load_model(args.model), load_vnnlib(args.property), encoding=args.encoding or "plain")


MODES = {"verify": verify_mode}


def run(args) -> int:
    from nnsmt.backends.smtlib import to_smtlib
    t0 = time.perf_counter()
    script = MODES[args.mode](args)
    text = to_smtlib(script)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(script.decls)} declarations, {len(script.defs)} "
              f"definitions, {len(script.asserts)} assertions, logic {script.logic} "
              f"({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub):
    sp = add_command(sub, "compile", "compile a query to SMT-LIB2 text", run)
    sp.add_argument("model", help="network file (.onnx)")
    sp.add_argument("--mode", default="verify", choices=sorted(MODES), help="query to compile (default verify)")
    sp.add_argument("--emit", default="smt2", choices=["smt2"], help="output format (default smt2)")
    sp.add_argument("-o", "--output", help="write here instead of standard output")
    sp.add_argument("--property", help="VNN-LIB property (--mode verify)")
    sp.add_argument("--encoding", default=None,
                    help="encoding; each mode lists its own (verify: plain, the default)")
