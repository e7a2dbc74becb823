"""nnsmt import: read an IR JSON file (docs/ir-json.md), check it, print it or write ONNX."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nnsmt.errors import InputError

from .common import add_command


def schema() -> dict:
    """The JSON Schema of the IR JSON form, shipped with the package."""
    from importlib.resources import files
    return json.loads(files("nnsmt").joinpath("schema/ir.schema.json").read_text())


def validate_schema(doc, source: str) -> bool:
    """Check `doc` against the shipped JSON Schema; False if jsonschema is not installed.

    Raises:
        InputError: one line naming the file and the JSON path of the first violation.
    """
    try:
        import jsonschema
    except ImportError:
        return False
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(doc),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        msg = " ".join(e.message.split())
        raise InputError(f"{source}: {where}: {msg[:300]} (JSON Schema nnsmt-ir)")
    return True


def run(args) -> int:
    from nnsmt.serialize import graph_from_json
    path = args.file
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON: {' '.join(str(e).split())}") from None
    checked = validate_schema(doc, path)
    g = graph_from_json(doc, path)  # Graph.check: names, order, dimensions
    if not checked:
        print("note: jsonschema is not installed; checked with the reader's own rules only",
              file=sys.stderr)
    out = args.output
    if out is None:
        from nnsmt.pretty import format_graph
        print(format_graph(g))
    elif out.lower().endswith(".onnx"):
        from nnsmt.frontends.onnx_export import save_onnx
        exact = save_onnx(g, out, dtype=args.dtype)
        print(f"wrote {out}" + ("" if exact else f": some weights were rounded to {args.dtype}"),
              file=sys.stderr)
    elif out.lower().endswith(".json"):
        from nnsmt.serialize import save_json
        save_json(g, out)
        print(f"wrote {out}", file=sys.stderr)
    else:
        raise InputError(f"{out}: -o writes .onnx or .json")
    return 0


def register(sub):
    sp = add_command(sub, "import", "read an nnsmt IR JSON file (from another tool), check it "
                     "against the schema and the IR's invariants, and print it or write ONNX", run)
    sp.add_argument("file", help="IR JSON file (format nnsmt-ir)")
    sp.add_argument("-o", "--output", help="write OUT.onnx (or a normalised OUT.json) instead of "
                    "printing the IR")
    sp.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="onnx: tensor type of the weights (default float32)")
