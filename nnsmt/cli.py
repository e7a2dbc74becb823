"""The `nnsmt` command line: each subcommand lives in nnsmt/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands.common import EXIT_CODES
from .errors import NnsmtError

# subcommand modules, in the order --help lists them
COMMANDS = ["inspect", "compile", "verify", "estimate", "diff", "batch", "export", "import_ir",
            "train", "data", "stable", "compress"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="nnsmt", description="Compile neural networks into exact SMT queries.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"nnsmt {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nnsmt.commands.{name}").register(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NnsmtError as e:
        print(f"nnsmt: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nnsmt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
