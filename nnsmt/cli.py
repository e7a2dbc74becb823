"""The `nnsmt` command line: each subcommand lives in nnsmt/commands/<name>.py.

No failure shows a Python traceback: a problem with the input is one line `nnsmt: error: ...`
naming the file and the element at fault (exit 2), and anything unexpected is one line
`nnsmt: internal error: ...` (exit 1; NNSMT_DEBUG=1 shows the traceback). The exit codes are in
`nnsmt.commands.common.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .commands.common import EXIT_CODES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PIPE
from .errors import NnsmtError

# subcommand modules, in the order --help lists them
COMMANDS = ["inspect", "compile", "verify", "supports", "estimate", "diff", "batch", "export", "import_ir",
            "train", "data", "stable", "compress",
            "check_certificate"]
NAME = "nnsmt"  # `nnsmt --name`: the full name, as VNN-LIB 2's verifier interface asks


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error: `nnsmt: error: verify: argument --timeout: ...`
    (exit 2); the full usage is one `--help` away. Subparsers inherit the class."""

    def error(self, message):
        cmd = self.prog.split(None, 1)[1] if " " in self.prog else ""
        msg = " ".join(str(message).split())
        self.exit(2, f"nnsmt: error: {cmd + ': ' if cmd else ''}{msg} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = _Parser(prog="nnsmt", description="Compile neural networks into exact SMT queries.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=__version__,
                   help="print the version (semantic versioning) and exit")
    p.add_argument("--name", action="version", version=NAME, help="print the verifier's full name and exit")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nnsmt.commands.{name}").register(sub)
    return p


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def parse_args(argv=None) -> argparse.Namespace:
    """Parse a command line; options may come before, between or after the positionals
    (`nnsmt verify NET --timeout 60 PROP`).

    argparse's intermixed parsing refuses a parser with subparsers, so the command name is
    found first (the top-level parser has no option taking a value) and the command's own
    parser parses the rest intermixed. Anything else (no command, `--help`, `--version`, an
    unknown command) goes to the top-level parser, which prints help or the usage error.

    Raises:
        SystemExit: argparse's exit (0 for --help/--version, 2 for a usage error).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    subs = _subparsers(parser)
    i = next((k for k, a in enumerate(argv) if not a.startswith("-") or a == "-"), None)
    if i is None or argv[:i] or argv[i] not in subs:
        return parser.parse_args(argv)  # help, version, missing or unknown command
    args = subs[argv[i]].parse_intermixed_args(argv[i + 1:])
    args.cmd = argv[i]
    return args


def _debug() -> bool:
    return os.environ.get("NNSMT_DEBUG", "") not in ("", "0")


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left of standard output nowhere, so the interpreter's
    final flush does not complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def _quiet_floats(func, args):
    """func(args) with numpy's floating-point warnings off: bounds overflow to +-inf on purpose
    (sound, just uninformative) and a warning's two lines of source are noise to a user
    (NNSMT_DEBUG=1 keeps them)."""
    if _debug():
        return func(args)
    import numpy as np  # every command computes with it; imported here, not at start-up
    with np.errstate(all="ignore"):
        return func(args)


def main(argv=None) -> int:
    """Run one command line; returns the exit code (see EXIT_CODES)."""
    code = None
    try:
        try:
            args = parse_args(argv)
        except SystemExit as e:  # argparse: --help, --version (0) or a usage error (2)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        code = _quiet_floats(args.func, args)
        sys.stdout.flush()  # a closed pipe shows here when the output was buffered
        return code
    except NnsmtError as e:
        print(f"nnsmt: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nnsmt: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `nnsmt ... | head -1`: the reader is gone, nothing to tell it
        _quiet_stdout()
        return code if code is not None else EXIT_PIPE
    except Exception as e:  # noqa: BLE001 - the promise: no traceback, ever
        if _debug():
            raise
        msg = " ".join(str(e).split()) or "(no message)"
        if len(msg) > 500:
            msg = msg[:500] + "..."
        print(f"nnsmt: internal error: {type(e).__name__}: {msg} "
              "(set NNSMT_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
