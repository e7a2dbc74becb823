"""nnsmt inspect: the IR one node a line, and a summary."""

from __future__ import annotations

import json

from .common import add_command, add_model_args, load_model


def run(args) -> int:
    from nnsmt.pretty import format_graph, summary
    g = load_model(args)
    if args.json:
        print(json.dumps({"summary": summary(g), "meta": dict(g.meta)}, indent=2))
        return 0
    print(format_graph(g))
    print()
    for k, v in summary(g).items():
        print(f"{k}: {v}")
    return 0


def register(sub):
    sp = add_command(sub, "inspect", "print the IR of a network, one node a line, and a summary", run)
    add_model_args(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable summary")
