"""nnsmt import: read an IR JSON file (docs/ir-json.md), check it, print it or write ONNX."""

from __future__ import annotations

import sys

from nnsmt.errors import InputError
# the schema and its check live in nnsmt.serialize (every IR JSON reader shares them); the
# names stay importable from here
from nnsmt.serialize import schema, validate_schema  # noqa: F401

from .common import add_command, check_output
from .options import add_onnx_dtype, wrote_onnx


def run(args) -> int:
    from nnsmt.pretty import format_graph
    from nnsmt.serialize import graph_from_json, read_json, save_json
    out = args.output
    if out is not None:
        if not out.lower().endswith((".onnx", ".json")):
            raise InputError(f"{out}: -o writes .onnx or .json")
        check_output(out)
    doc = read_json(args.file)
    # the reader first: a file every command refuses gets the same message here as in
    # `nnsmt verify FILE.json`; then what only the schema says (e.g. rational spellings)
    g = graph_from_json(doc, args.file)  # also Graph.check: names, order, dimensions
    if not validate_schema(doc, args.file):
        print("note: jsonschema is not installed; checked with the reader's own rules only", file=sys.stderr)
    if out is None:
        print(format_graph(g))
    elif out.lower().endswith(".onnx"):
        wrote_onnx(g, out, args.dtype)
    else:  # .json
        save_json(g, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def register(sub):
    sp = add_command(sub, "import", "read an nnsmt IR JSON file (from another tool), check it "
                     "against the schema and the IR's invariants, and print it or write ONNX", run)
    sp.add_argument("file", help="IR JSON file (format nnsmt-ir)")
    sp.add_argument("-o", "--output", help="write OUT.onnx (or a normalised OUT.json) instead of "
                    "printing the IR")
    add_onnx_dtype(sp)
