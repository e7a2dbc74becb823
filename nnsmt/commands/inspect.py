"""nnsmt inspect: the IR one node a line, and a summary."""

from __future__ import annotations

from .common import add_command, add_model_args, load_model, show


def run(args) -> int:
    from nnsmt.pretty import format_graph, summary
    g = load_model(args)
    s = summary(g)
    show(args, {"summary": s, "meta": dict(g.meta)}, [] if args.json else [format_graph(g), ""] +
         [f"{k}: {v}" for k, v in s.items()])
    return 0


def register(sub):
    sp = add_command(sub, "inspect", "print the IR of a network, one node a line, and a summary", run, json="summary")
    add_model_args(sp)
