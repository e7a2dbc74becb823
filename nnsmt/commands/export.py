"""nnsmt export: write a network as IR JSON, ONNX, or an SMT-LIB/VNN-LIB network file."""

from __future__ import annotations

from nnsmt.errors import InputError

from .common import add_command, add_model_args, add_output, check_output, load_model, put
from .options import add_onnx_dtype, wrote_onnx

FORMATS = ("ir-json", "onnx", "vnnlib")


def run(args) -> int:
    if args.to == "onnx" and not args.output:
        raise InputError("--to onnx writes a binary file: give -o OUT.onnx")
    if args.output:
        check_output(args.output)  # before any work: a directory or a missing folder is refused
    g = load_model(args)
    if args.to == "onnx":
        wrote_onnx(g, args.output, args.dtype)
        return 0
    from nnsmt.engine.export import network_text
    from nnsmt.vnnlib import load_vnnlib
    put(args.output, network_text(g, args.to, load_vnnlib(args.property) if args.property else None))
    return 0


def register(sub):
    sp = add_command(sub, "export", "write a network as IR JSON (docs/ir-json.md), ONNX, or "
                     "an SMT-LIB network file (vnnlib: X_i, Y_j declared, Y = network(X) "
                     "asserted exactly)", run)
    add_model_args(sp)
    sp.add_argument("--to", required=True, choices=FORMATS, help="output format")
    add_output(sp, " (required for onnx)")
    add_onnx_dtype(sp)
    sp.add_argument("--property", help="vnnlib: append this VNN-LIB property's assertions "
                    "(a complete query: sat iff some input violates it)")
