"""VNN-LIB 2 queries end to end: models bound to the query's networks, checked against its
declarations (the standard's chapter 5 error conditions), lowered to one graph and property
(`nnsmt.vnnlib2.combine`), widened for float semantics (`nnsmt.floatsem`), verified by the
auto engine, and the answer as the standard's assignment.

Semantics follow the declared element types: `real` queries are exact over the reals;
float16/float32/float64 queries are sound for IEEE execution of the ONNX models in that type
(unsat over every evaluation order of sums; sat only when onnxruntime, running each model op by
op in that type, satisfies the property exactly at inputs of that type).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import numpy as np

from nnsmt.assignment import Decl
from nnsmt.bounds import down, up
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Graph
from nnsmt.query import Outcome
from nnsmt.vnnlib2 import FLOAT_TYPES, INT_TYPES, SOUND_TYPES, Part, Query2, combine, from_property, single_input

from .verify import VerifyOptions, plan as plan_verify, verify as verify_graph


@dataclass(frozen=True)
class Instance:
    """A query bound to its models and lowered: `graph`/`prop` for the engines, `float_eval`
    for the replay (declared inputs -> Y, in the query's types), `float_type` "" for `real`."""

    query: Query2
    files: Mapping[str, str]
    graph: Graph
    prop: object
    float_eval: Callable | None
    float_type: str = ""
    notes: tuple[str, ...] = ()
    errors: int = 0
    proves_unsat: str = ""  # why an unsat of the lowered query does not prove the query's


def bind_networks(query: Query2, given: Mapping[str, str]) -> dict[str, str]:
    """Each network's model file: the `--network NAME=FILE` pairs, checked against the
    declarations (every network but `equal-to` ones needs exactly one; no others)."""
    need = query.needs_file()
    names = [n.name for n in query.networks]
    for name in given:
        if name not in names:
            raise InputError(f"--network {name}=...: {query.source} declares no network {name!r} "
                             f"(it declares {', '.join(names)})")
        if name not in need:
            ref = next(n.equal_to for n in query.networks if n.name == name)
            raise InputError(f"--network {name}=...: {name} is declared (equal-to {ref}) in "
                             f"{query.source}: it takes {ref}'s model, give no file for it")
    missing = [n for n in need if n not in given]
    if missing:
        raise InputError(f"{query.source}: no --network for {', '.join(missing)} "
                         f"(give --network {missing[0]}=MODEL.onnx)")
    files = dict(given)
    for n in query.networks:
        if n.equal_to:
            files[n.name] = files[n.equal_to]
    return files


def semantics(query: Query2) -> dict[str, str]:
    """Network -> the type its float values run in (`real`, float16/32/64), checked: one float
    type per network (integer values beside it are exact), `real` for all or none, float or
    real inputs, and only types nnsmt is sound for (the standard's error condition 3)."""
    out = {}
    for net in query.networks:
        for d in net.decls:
            if d.dtype not in SOUND_TYPES:
                raise UnsupportedError(
                    f"{query.source}: {d.name} is declared {d.dtype}: nnsmt is sound only for "
                    f"{', '.join(SOUND_TYPES)} (see `nnsmt supports --onnx-element-types`)")
            if d.kind == "input" and d.dtype in INT_TYPES:
                raise UnsupportedError(f"{query.source}: input {d.name} is declared {d.dtype}: "
                                       "nnsmt takes float (or real) inputs")
        ts = [t for t in net.dtypes if t not in INT_TYPES]
        if len(ts) > 1:
            raise UnsupportedError(f"{query.source}: network {net.name} mixes element types "
                                   f"{', '.join(ts)}; nnsmt needs one float type per network")
        out[net.name] = ts[0] if ts else "real"
    kinds = {t == "real" for t in out.values()}
    if len(kinds) > 1:
        raise InputError(f"{query.source}: a query over `real` must use `real` throughout "
                         "(VNN-LIB 2, queries over real)")
    return out


def _check_types(net, path, io, dtype, value_types):
    """The standard's error condition 2: declared element types must be the model's."""
    if dtype == "real":
        return
    for kind, decls in (("inputs", net.inputs), ("outputs", net.outputs)):
        for d, (oname, et, _) in zip(decls, io[kind]):
            if et != d.dtype:
                raise InputError(f"{path}: {kind[:-1]} {oname!r} is {et}, but {d.name} is declared "
                                 f"{d.dtype} (network {net.name})")
    hidden = value_types(path, net.hidden_onnx)
    for d, oname in zip(net.hidden, net.hidden_onnx):
        et = hidden[oname]
        if et is not None and et != d.dtype:
            raise InputError(f"{path}: hidden value {oname!r} is {et}, but {d.name} is declared "
                             f"{d.dtype} (network {net.name})")


def _check_sizes(net, path, io, graph: Graph, kept: Sequence[str]):
    if len(io["inputs"]) != len(net.inputs):
        raise InputError(f"{path}: the model has {len(io['inputs'])} inputs, network {net.name} "
                         f"declares {len(net.inputs)}")
    if len(io["outputs"]) != len(net.outputs):
        raise InputError(f"{path}: the model has {len(io['outputs'])} outputs, network {net.name} "
                         f"declares {len(net.outputs)}")
    dims = graph.dims()
    for d, inp, (oname, _, _) in zip(net.inputs, graph.inputs, io["inputs"]):
        if inp.dim != d.size:
            raise InputError(f"{path}: input {oname!r} has {inp.dim} elements, {d.name} is "
                             f"declared {list(d.shape)} ({d.size}) in network {net.name}")
    for d, v, (oname, _, _) in zip(net.outputs, graph.outputs, io["outputs"]):
        if dims[v] != d.size:
            raise InputError(f"{path}: output {oname!r} has {dims[v]} elements, {d.name} is "
                             f"declared {list(d.shape)} ({d.size}) in network {net.name}")
    for d, v, oname in zip(net.hidden, kept, net.hidden_onnx):
        if dims[v] != d.size:
            raise InputError(f"{path}: hidden value {oname!r} has {dims[v]} elements, {d.name} is "
                             f"declared {list(d.shape)} ({d.size}) in network {net.name}")


def _structure(g: Graph) -> tuple:
    dims = g.dims()
    return tuple((type(n).__name__, dims[n.name]) for n in g.nodes)


def prepare(query: Query2, given: Mapping[str, str]) -> Instance:
    """Bind, check, load and lower `query` (InputError/UnsupportedError for every standard
    error condition, naming the file and the element)."""
    from nnsmt.floatsem import widen
    from nnsmt.frontends.onnx_frontend import load_onnx, onnx_io_types, ort_evaluator, value_types
    files = bind_networks(query, given)
    types = semantics(query)
    float_type = next(iter(set(types.values()))) if len(set(types.values())) == 1 else "mixed"
    if float_type == "real":
        float_type = ""
    # one load per file (equal-to networks share it), keeping every hidden value any of its
    # networks names
    keep: dict[str, list[str]] = {}
    for net in query.networks:
        keep.setdefault(files[net.name], [])
        keep[files[net.name]] += [h for h in net.hidden_onnx if h not in keep[files[net.name]]]
    exact_softmax = _needs_probabilities(query)
    loaded: dict[tuple, Graph] = {}
    ios: dict[str, dict] = {}
    parts, evals, notes = [], [], []
    hull = query.prop.input_hull()
    no_proof = ""
    x_off = 0
    for net in query.networks:
        path, dtype = files[net.name], types[net.name]
        fl = dtype in FLOAT_TYPES
        if path not in ios:  # equal-to networks share their file: read once
            ios[path] = onnx_io_types(path)
        io = ios[path]
        _check_types(net, path, io, dtype, value_types)
        n_model_out = len(io["outputs"])
        # a final softmax is dropped (its argmax kept) unless the property reads probabilities:
        # then the outputs are kept too, which keeps the softmax exact
        extra = ()
        for attempt in (0, 1):
            key = (path, fl, extra)
            if key not in loaded:
                loaded[key] = load_onnx(path, keep=tuple(keep[path]) + extra, float_ops=fl)
            g = loaded[key]
            if attempt or not exact_softmax or g.meta.get("dropped_softmax") != "true":
                break
            extra = tuple(o for o, _, _ in io["outputs"])
        onx = g.onnx_names()
        kept = []
        for h in net.hidden_onnx:
            if h not in onx:
                raise InputError(f"{path}: no value named {h!r} in the model (hidden node of {net.name})")
            kept.append(onx[h])
        if net.isomorphic_to:
            ref = files[net.isomorphic_to]
            gref = next((v for k, v in loaded.items() if k[0] == ref), None) or \
                load_onnx(ref, keep=tuple(keep[ref]), float_ops=fl)
            if _structure(gref) != _structure(g):
                raise InputError(f"{path}: network {net.name} is declared isomorphic-to "
                                 f"{net.isomorphic_to}, but its graph differs from {ref}'s")
        outs = list(g.outputs[-n_model_out:] if extra else g.outputs[:n_model_out])
        _check_sizes(net, path, io, g.replace(outputs=outs), kept)
        single = single_input(g, kept + outs)
        n_k = sum(d.size for d in net.inputs)
        part = Part(single, n_k)
        if fl:
            lo, hi = _input_range(hull, x_off, n_k, dtype)
            try:
                w = widen(single, lo, hi, dtype)
                # bounds rounded outward to float64: short denominators keep the bounds' and the
                # solver's arithmetic cheap (a rigorous bound stays one when widened)
                part = Part(w.graph, n_k, tuple(Fraction(down(v)) for v in w.err_lo),
                            tuple(Fraction(up(v)) for v in w.err_hi))
                notes += [f"{net.name}: {t}" for t in w.notes]
            except UnsupportedError as e:  # search over the reals, certify in float: no proofs
                no_proof = f"{net.name}: {e}"
        parts.append(part)
        evals.append((net, path, n_k, tuple(net.hidden_onnx) + extra, not fl, [i.name for i in g.inputs]))
        x_off += n_k
    graph, prop = combine(query, parts)
    n_err = prop.n_inputs - query.prop.n_inputs
    if float_type and not no_proof:
        notes.insert(0, f"{float_type} semantics: every rounding operation widened by a rigorous "
                        f"error bound ({n_err} error terms); a counterexample must hold in "
                        f"onnxruntime in {float_type}")
    elif float_type:
        notes.insert(0, f"{float_type} semantics without rounding-error bounds ({no_proof}): "
                        "a counterexample is searched over the reals and must hold in onnxruntime "
                        f"in {float_type}; unsat proves nothing here (answered unknown)")
    decls = [[d.name, d.dtype, list(d.shape), d.kind, d.network, query.offsets[d.name]]
             for d in query.decls]
    prop = replace(prop, meta={"query_file": query.source, "networks": dict(given), "decls": decls})
    return Instance(query, files, graph, prop, _float_eval(evals, ort_evaluator), float_type,
                    tuple(notes), n_err, no_proof)


def _needs_probabilities(query: Query2) -> bool:
    """Whether a dropped final softmax (logits kept: the same argmax, the same pairwise order)
    would change the question: any network beyond one, hidden nodes, or an output atom that is
    not a comparison of two outputs."""
    from nnsmt.queries.verify import _check_softmax_invariant
    if len(query.networks) > 1 or any(n.hidden for n in query.networks):
        return True
    try:
        _check_softmax_invariant(query.prop)
    except UnsupportedError:
        return True
    return False


def _input_range(hull, off: int, n: int, dtype: str):
    """Bounds of inputs off..off+n-1: the query's, or the type's finite range for an input
    it leaves unbounded (inputs of a float type are finite values of it)."""
    big = Fraction(float(np.finfo(np.dtype(dtype)).max))
    lo = [v if v is not None else -big for v in hull[0][off:off + n]]
    hi = [v if v is not None else big for v in hull[1][off:off + n]]
    return lo, hi


def _float_eval(evals, ort_evaluator) -> Callable:
    """x (the declared inputs, flat) -> Y (hidden then outputs per network), by onnxruntime:
    in the declared float type op by op (no graph optimisations) for float queries."""
    runners, sessions = [], {}
    for net, path, n_k, hidden, optimize, names in evals:
        key = (path, hidden, optimize)  # equal-to networks share one session
        if key not in sessions:
            sessions[key] = ort_evaluator(path, keep=hidden, optimize=optimize)
        runners.append((net, n_k, sessions[key], names))

    def run(x):
        x = np.asarray(x).reshape(-1)
        ys, off = [], 0
        for net, n_k, f, names in runners:
            xs = x[off:off + n_k]
            off += n_k
            if len(names) == 1:
                arg = xs
            else:  # the evaluator takes several inputs by IR input name
                arg, o = {}, 0
                for name, d in zip(names, net.inputs):
                    arg[name] = xs[o:o + d.size]
                    o += d.size
            out = f(arg)
            outs = list(out) if isinstance(out, tuple) else [out]
            n_out, n_hid = len(net.outputs), len(net.hidden)
            # evaluator order: model outputs, kept hidden values, then (when a final softmax
            # must stay exact) the outputs again, kept as probabilities; Y: hidden, outputs
            kept = outs[n_out:]
            ys += [np.asarray(v).reshape(-1) for v in kept[:n_hid]]
            last = kept[n_hid:] if len(kept) > n_hid else outs[:n_out]
            ys += [np.asarray(v).reshape(-1) for v in last]
        return np.concatenate(ys) if ys else np.zeros(0)
    return run


def plan(inst: Instance, opts: VerifyOptions):
    """The run answering the instance (see `nnsmt.engine.verify.plan`)."""
    return plan_verify(inst.graph, inst.prop, opts, inst.float_eval, inst.float_type)


def verify(inst: Instance, opts: VerifyOptions = VerifyOptions()) -> Outcome:
    """Decide the instance with the chosen engine (the notes say what semantics ran)."""
    return settle(inst, verify_graph(inst.graph, inst.prop, opts, inst.float_eval, inst.float_type))


def settle(inst: Instance, o: Outcome, notes: bool = True) -> Outcome:
    """The instance's outcome from its lowered query's: an unsat that does not prove the
    query's semantics becomes unknown, and (with `notes`) the instance's notes are added."""
    if o.status == "unsat" and inst.proves_unsat:
        o = replace(o, status="unknown", witness=None,
                    reason=f"the real-valued query is unsat, which does not prove the "
                           f"{inst.float_type} one ({inst.proves_unsat})")
    if notes and inst.notes:
        o = replace(o, notes=tuple(o.notes) + inst.notes)
    return o


def assignment(inst: Instance, witness) -> list[tuple[Decl, list]]:
    """(declaration, values) for every declared variable, in declaration order: inputs from
    the witness, hidden values and outputs as the replay computed them (onnxruntime for float
    queries; the exact replay for `real` ones)."""
    q = inst.query
    x = list(witness.x)
    y = list(witness.y)
    out = []
    for net in q.networks:
        for d in net.decls:
            off = q.offsets[d.name]
            src = x if d.kind == "input" else y
            out.append((d, src[off:off + d.size]))
    return out


def one_network(path, model) -> Instance:
    """A VNN-LIB 2 query about one network, bound to `model` (`nnsmt batch`'s rows name one
    model per query); InputError for a query that declares more than one network to give."""
    from nnsmt.vnnlib2 import load_query
    q = load_query(path)
    need = q.needs_file()
    if len(need) != 1:
        raise InputError(f"{path}: the query declares {len(need)} networks to give a model "
                         f"({', '.join(need)}); a batch row names one (use nnsmt verify QUERY "
                         "--network NAME=FILE ...)")
    return prepare(q, {need[0]: str(model)})


def query_from_v1(path, pairs: Mapping[str, str]) -> Query2:
    """A VNN-LIB 1.0 property through the 2.0 path: one network, its variables `real`
    (VNN-LIB 1.0 declares them Real)."""
    from nnsmt.frontends.onnx_frontend import onnx_io_types
    from nnsmt.vnnlib import load_vnnlib
    if len(pairs) != 1:
        raise InputError(f"{path}: a VNN-LIB 1.0 property is about one network; give exactly one "
                         f"--network NAME=FILE (got {len(pairs)})")
    (name, model), = pairs.items()
    prop = load_vnnlib(path)
    io = onnx_io_types(model)
    if len(io["inputs"]) != 1 or len(io["outputs"]) != 1:
        raise InputError(f"{model}: a VNN-LIB 1.0 property needs a model with one input and one output")
    return from_property(prop, name, io["inputs"][0][2], io["outputs"][0][2], "real")
