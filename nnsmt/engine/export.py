"""Networks written out (`nnsmt export`, `nnsmt import -o`): ONNX, saying what the file does not
keep exactly, and the text formats (IR JSON, an SMT-LIB network file)."""

from __future__ import annotations

from pathlib import Path

from nnsmt.ir import Graph


def write_onnx(graph: Graph, path, dtype: str = "float32") -> tuple[str, list[str]]:
    """Write `graph` as ONNX with `dtype` weights.

    Returns:
        (rounded, notes): why some weights are not exact ("" when all are), and what else the
        file does not keep (symbolic parameters' boxes, a dropped final softmax).
    """
    from nnsmt.frontends.onnx_export import save_onnx
    from nnsmt.params import sym_params
    exact = save_onnx(graph, Path(path), dtype=dtype)
    rounded = "" if exact else (
        f"some weights are not {dtype} values (e.g. a folded BatchNorm or a rational constant) and "
        f"were rounded to {dtype}" + ("; --dtype float64 keeps more of them exact" if dtype == "float32" else ""))
    notes = []
    sym = [p.name for p in sym_params(graph)]
    if sym:
        notes.append(f"symbolic parameter(s) {', '.join(sym)} written at their nominal values; their "
                     "boxes are not in the ONNX file (keep the IR JSON for them)")
    if graph.meta.get("dropped_softmax") == "true":
        notes.append("the source's final softmax was dropped; the ONNX output is the logits")
    return rounded, notes


def network_text(graph: Graph, to: str, prop=None) -> str:
    """`graph` as "ir-json" (docs/ir-json.md) or "vnnlib" (an SMT-LIB file declaring X_i, Y_j and
    asserting Y = network(X) exactly, with the assertions of the VNN-LIB property `prop`)."""
    if to == "ir-json":
        import json
        from nnsmt.serialize import graph_to_json
        return json.dumps(graph_to_json(graph), indent=1) + "\n"
    from nnsmt.backends.smtlib import to_smtlib
    from nnsmt.queries.network import network_script
    return to_smtlib(network_script(graph, prop))
