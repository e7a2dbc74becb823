"""One module a subcommand; each has `register(subparsers)` (see nnsmt/cli.py)."""
