"""The network alone as an SMT-LIB script: `Y = network(X)`, exactly, for other verifiers.

VNN-LIB 1.0 has no syntax for networks (a property file names X_i / Y_j and leaves the network to
an ONNX file), so `nnsmt export --to vnnlib` writes the network itself in the same SMT-LIB
vocabulary: X_i and Y_j are declared as in VNN-LIB, every hidden value is a `define-fun` of the
same encoding `nnsmt verify` uses (exact rational weights, ReLU as `ite`), and assertions
`net_Y_j` state Y_j = output j. Appending any VNN-LIB property's asserts gives a complete query.
"""

from __future__ import annotations

from ..encode import encode_graph
from ..errors import UnsupportedError
from ..ir import Graph
from ..terms import Cmp, Script, ScriptBuilder, Var


def network_script(graph: Graph, prop=None, encoding: str = "plain") -> Script:
    """Script declaring X_i and Y_j and asserting Y_j = network(X)_j exactly.

    Args:
        graph: a network with one input and one output.
        prop: an optional parsed VNN-LIB property (`nnsmt.vnnlib`); its assertions are added,
            named `prop_l<line>`, after the sizes are checked as `nnsmt verify` checks them.
        encoding: the ReLU encoding (see `nnsmt.encode`); "plain" is self-contained.

    Raises:
        UnsupportedError: several inputs or outputs, or an output that is the input.
        InputError: the property's sizes do not match the network.
    """
    src = graph.meta.get("source", "network")
    if prop is not None:
        from .verify import check_compatible
        inp, out = check_compatible(graph, prop)
    else:
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise UnsupportedError(f"{src}: exporting needs exactly one input and one output "
                                   f"(has {len(graph.inputs)} and {len(graph.outputs)})")
        inp, out = graph.inputs[0], graph.outputs[0]
    if out == inp.name:
        raise UnsupportedError(f"{src}: the network's output is its input; nothing to export")
    b = ScriptBuilder()

    def names(node, dim):
        return [f"X_{i}" for i in range(dim)] if node == inp.name else None

    env = encode_graph(graph, b, names=names, encoding=encoding)
    ys = env[out]
    for j, v in enumerate(ys):
        b.declare(f"Y_{j}")
        b.assert_(f"net_Y_{j}", Cmp("=", Var(f"Y_{j}"), Var(v)))
    if prop is not None:
        seen: dict[int, int] = {}
        for line, t in prop.asserts:
            k = seen[line] = seen.get(line, 0) + 1
            b.assert_(f"prop_l{line}" + (f"_{k}" if k > 1 else ""), t)
    b.meta.update({"query": "network", "network": src, "encoding": encoding,
                   "inputs": [f"X_{i}" for i in range(inp.dim)],
                   "outputs": [f"Y_{j}" for j in range(len(ys))]})
    if prop is not None:
        b.meta["property"] = prop.source
    if graph.meta.get("dropped_softmax") == "true":
        b.meta["note"] = "Y are the logits of a dropped final softmax (same argmax)"
    return b.build()
