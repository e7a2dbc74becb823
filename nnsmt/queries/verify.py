"""Verification query: does any input satisfy the VNN-LIB property (the unsafe region)?"""

from __future__ import annotations

from ..encode import encode_graph
from ..errors import InputError, UnsupportedError
from ..ir import Graph, Input
from ..terms import Script, ScriptBuilder, atoms, linear_form


def check_compatible(graph: Graph, prop) -> tuple[Input, str]:
    """The graph's single input node and output name, after checking sizes against the property."""
    ins = graph.inputs
    if len(ins) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError(f"{graph.meta.get('source', 'network')}: verification needs exactly one "
                               f"input and one output (has {len(ins)} and {len(graph.outputs)})")
    dims = graph.dims()
    out = graph.outputs[0]
    src = graph.meta.get("source", "network")
    if ins[0].dim != prop.n_inputs:
        raise InputError(f"input size mismatch: {src} has {ins[0].dim} inputs, "
                         f"{prop.source} declares {prop.n_inputs} (X_0..X_{prop.n_inputs - 1})")
    if dims[out] != prop.n_outputs:
        raise InputError(f"output size mismatch: {src} has {dims[out]} outputs, "
                         f"{prop.source} declares {prop.n_outputs} (Y_0..Y_{prop.n_outputs - 1})")
    if graph.meta.get("dropped_softmax") == "true":
        _check_softmax_invariant(prop)
    return ins[0], out


def _check_softmax_invariant(prop):
    """The IR output is the logits of a dropped softmax: only pairwise comparisons of outputs
    (c*(Y_i - Y_j) op 0) mean the same on logits as on probabilities."""
    for line, t in prop.asserts:
        for atom in atoms(t):
            lf = linear_form(atom.lhs)
            rf = linear_form(atom.rhs)
            if lf is None or rf is None:
                continue
            ys = {k: lf[0].get(k, 0) - rf[0].get(k, 0) for k in set(lf[0]) | set(rf[0])
                  if k.startswith("Y_")}
            ys = {k: v for k, v in ys.items() if v}
            if not ys:
                continue
            xs = [k for k in set(lf[0]) | set(rf[0]) if k.startswith("X_")]
            vals = sorted(ys.values())
            if xs or len(ys) != 2 or vals[0] != -vals[1] or lf[1] != rf[1]:
                raise UnsupportedError(
                    f"{prop.source}:{line}: the network ends in a softmax that nnsmt drops (its "
                    "argmax is kept); only comparisons between two outputs are preserved, not this one")


def verify_script(graph: Graph, prop, encoding: str = "plain", bounds=None,
                  lemmas: str = "bounds") -> Script:
    """Script that is sat iff some input satisfies every assertion of `prop`.

    Input elements are declared as X_i, output elements defined as Y_j (the VNN-LIB names);
    each property assertion is named `prop_l<line>` after its source line. With
    encoding="bounded", `bounds` (value name -> Interval, sound over the property's input
    region) default to linear bounds over that region (`nnsmt.domain.property_bounds`).
    """
    inp, out = check_compatible(graph, prop)
    b = ScriptBuilder()

    def names(node, dim):
        if node == inp.name:
            return [f"X_{i}" for i in range(dim)]
        if node == out:
            return [f"Y_{j}" for j in range(dim)]
        return None

    if out == inp.name:
        raise UnsupportedError("the network's output is its input; nothing to verify")
    if encoding == "bounded" and bounds is None:
        from ..domain import property_bounds
        bounds = property_bounds(graph, prop)
    encode_graph(graph, b, names=names, encoding=encoding, bounds=bounds, lemmas=lemmas)
    seen: dict[int, int] = {}
    for line, t in prop.asserts:
        k = seen[line] = seen.get(line, 0) + 1
        b.assert_(f"prop_l{line}" + (f"_{k}" if k > 1 else ""), t)
    b.meta.update({"query": "verify", "network": graph.meta.get("source", ""),
                   "property": prop.source, "encoding": encoding,
                   "inputs": [f"X_{i}" for i in range(inp.dim)]})
    return b.build()
