"""Human-readable IR: one node a line, like a jaxpr, and a summary. An affine node over several
inputs lists each input with its weight; a sparse weight shows its shape and nonzeros; the
elementwise nodes read as `mul a b`, `pow x 1/2`, `compare x > 0`, `to_int x trunc`."""

from __future__ import annotations

from .ir import (ELEMENTWISE, OPS, Affine, Argmax, Compare, Const, Div, Exp, Graph, Input, Mul, Pow,
                 Relu, Select, Sigmoid, Sparse, SparseSym, Sym, ToInt)


def _param(p) -> str:
    if isinstance(p, Const):
        kind = "const" if p.is_float else "const(rational)"
        return f"{kind}{list(p.shape)}"
    if isinstance(p, Sparse):
        kind = "sparse" if p.is_float else "sparse(rational)"
        return f"{kind}{list(p.shape)} nnz={p.nnz}"
    box = ""
    if p.lo is not None or p.hi is not None:
        box = " boxed"
    if isinstance(p, SparseSym):
        return f"sym {p.name} sparse{list(p.shape)} nnz={p.pattern.nnz} vars={p.size}{box}"
    return f"sym {p.name}{list(p.shape)}{box}"


def format_graph(g: Graph) -> str:
    dims, shapes = g.dims(), g.shapes()
    lines = []
    for n in g.nodes:
        match n:
            case Input():
                rhs = "input"
            case Affine():
                terms = " + ".join(f"{x}  W={_param(w)}" for x, w in n.terms())
                rhs = f"affine {terms} b={_param(n.bias)}"
            case Relu():
                rhs = f"relu {n.x}"
            case Sigmoid():
                rhs = f"sigmoid {n.x}"
            case Argmax():
                rhs = f"argmax {n.x}"
            case Mul() | Div():
                rhs = f"{OPS[type(n)]} {n.a} {n.b}"
            case Pow():
                rhs = f"pow {n.x} {n.p}"
            case Exp():
                rhs = f"exp {n.x}"
            case Compare():
                rhs = f"compare {n.x} {n.op} 0"
            case Select():
                rhs = f"select {n.c} {n.x}"
            case ToInt():
                rhs = f"to_int {n.x} {n.mode}"
        note = f"{dims[n.name]}"
        if shapes[n.name] != (dims[n.name],):
            note += f" {list(shapes[n.name])}"
        if n.onnx:
            note += f" onnx {n.onnx!r}"
        lines.append(f"{n.name} = {rhs}   # {note}")
    lines.append(f"return {', '.join(g.outputs)}")
    return "\n".join(lines)


def summary(g: Graph) -> dict:
    dims = g.dims()
    n_params = n_sym = 0
    for _, _, p in g.params():
        size = 1
        for s in p.shape:
            size *= s
        if isinstance(p, Sparse):
            size = p.nnz
        if isinstance(p, SparseSym):  # its stored entries; the symbolic ones are its variables
            size = p.pattern.nnz
        n_params += size
        n_sym += p.size if isinstance(p, SparseSym) else size if isinstance(p, Sym) else 0
    return {
        "inputs": {n.name: n.dim for n in g.inputs},
        "outputs": {o: dims[o] for o in g.outputs},
        "relus": sum(dims[n.name] for n in g.nodes if isinstance(n, Relu)),
        "sigmoids": sum(dims[n.name] for n in g.nodes if isinstance(n, Sigmoid)),
        **({"elementwise": {op: sum(dims[n.name] for n in g.nodes if OPS[type(n)] == op)
                            for op in dict.fromkeys(OPS[type(n)] for n in g.nodes
                                                    if isinstance(n, ELEMENTWISE))}}
           if any(isinstance(n, ELEMENTWISE) for n in g.nodes) else {}),
        "affine_layers": sum(isinstance(n, Affine) for n in g.nodes),
        "parameters": n_params,
        "symbolic_parameters": n_sym,
        **({"note": "final softmax dropped: outputs are logits (same argmax)"}
           if g.meta.get("dropped_softmax") == "true" else {}),
    }
