"""nnsmt export: write a network as IR JSON, ONNX, or an SMT-LIB/VNN-LIB network file."""

from __future__ import annotations

import sys

from nnsmt.errors import InputError

from .common import add_command, add_model_args, check_output, load_model, model_options, write_output

FORMATS = ("ir-json", "onnx", "vnnlib")


def run(args) -> int:
    if args.to == "onnx" and not args.output:
        raise InputError("--to onnx writes a binary file: give -o OUT.onnx")
    if args.output:
        check_output(args.output)  # before any work: a directory or a missing folder is refused
    g = load_model(args.model, **model_options(args))
    if args.to == "ir-json":
        import json
        from nnsmt.serialize import graph_to_json
        _write(args.output, json.dumps(graph_to_json(g), indent=1) + "\n")
    elif args.to == "onnx":
        from nnsmt.frontends.onnx_export import save_onnx
        exact = save_onnx(g, args.output, dtype=args.dtype)
        print(f"wrote {args.output}" + ("" if exact else
              f": some weights are not {args.dtype} values (e.g. a folded BatchNorm or a "
              f"rational constant) and were rounded to {args.dtype}"
              + ("; --dtype float64 keeps more of them exact" if args.dtype == "float32" else "")),
              file=sys.stderr)
        if g.meta.get("dropped_softmax") == "true":
            print("note: the source's final softmax was dropped; the ONNX output is the logits",
                  file=sys.stderr)
    else:
        from nnsmt.backends.smtlib import to_smtlib
        from nnsmt.queries.network import network_script
        prop = None
        if args.property:
            from nnsmt.vnnlib import load_vnnlib
            prop = load_vnnlib(args.property)
        _write(args.output, to_smtlib(network_script(g, prop)))
    return 0


def _write(out, text):
    if out:
        write_output(out, text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def register(sub):
    sp = add_command(sub, "export", "write a network as IR JSON (docs/ir-json.md), ONNX, or "
                     "an SMT-LIB network file (vnnlib: X_i, Y_j declared, Y = network(X) "
                     "asserted exactly)", run)
    sp.add_argument("model", help="network file (.onnx, .pt, .safetensors, .json, .keras, .h5)")
    add_model_args(sp)
    sp.add_argument("--to", required=True, choices=FORMATS, help="output format")
    sp.add_argument("-o", "--output", help="write here instead of standard output "
                    "(required for onnx)")
    sp.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="onnx: tensor type of the weights (default float32; the command says "
                         "when a weight had to be rounded)")
    sp.add_argument("--property", help="vnnlib: append this VNN-LIB property's assertions "
                    "(a complete query: sat iff some input violates it)")
