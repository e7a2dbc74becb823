"""nnsmt export: write a network as IR JSON, ONNX, or an SMT-LIB/VNN-LIB network file."""

from __future__ import annotations

import sys

from nnsmt.errors import InputError

from .common import add_command, add_model_args, check_output, load_model, write_output
from .options import wrote_onnx

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
    prop = None
    if args.property:
        from nnsmt.vnnlib import load_vnnlib
        prop = load_vnnlib(args.property)
    text = network_text(g, args.to, prop)
    if args.output:
        write_output(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub):
    sp = add_command(sub, "export", "write a network as IR JSON (docs/ir-json.md), ONNX, or "
                     "an SMT-LIB network file (vnnlib: X_i, Y_j declared, Y = network(X) "
                     "asserted exactly)", run)
    add_model_args(sp)
    sp.add_argument("--to", required=True, choices=FORMATS, help="output format")
    sp.add_argument("-o", "--output", help="write here instead of standard output "
                    "(required for onnx)")
    sp.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="onnx: tensor type of the weights (default float32; the command says "
                         "when a weight had to be rounded)")
    sp.add_argument("--property", help="vnnlib: append this VNN-LIB property's assertions "
                    "(a complete query: sat iff some input violates it)")
