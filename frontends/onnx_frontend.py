"""ONNX frontend: lower an ONNX graph (a DAG, opsets 9-21) to an exact nnsmt IR graph.

A tensor is its C-order flattening (as VNN-LIB's X_i / Y_j index it), with batch and symbolic
dims counted as 1. Each op is lowered by the op table (`onnx_ops`): constant subgraphs are folded,
linear ops become pending affine maps that compose (`onnx_maps`), and a pending map becomes ONE
exact `Affine` node (dense `Const` or `Sparse` weights, one term per IR value it reads) before a
ReLU/sigmoid, at a graph output, or where composing would no longer be exact and cheap. An output
(or kept value) that does not depend on the input (Shape(x), x ** 0, a folded constant) is an
`Affine` node reading the first input with all-zero (empty sparse) weights and the constant,
exactly, as its bias; an integer output keeps its integer value.

Exactness: float32/float64 initializers convert to float64 exactly, and the folded weights and
biases are the exact rational values of the composed maps (float64 where that is exact, else
`Fraction`s). The one exception is BatchNormalization: its scale gamma / sqrt(var + eps) is
irrational in general, so it is the float64 rounding of that expression (the shift
beta - mean * scale is then exact for that rounded scale). Constant subgraphs (shape arithmetic,
say) are folded as the runtime computes them, in their own dtype.

Hidden nodes (`keep`): a kept ONNX value is emitted as a node named by it when it is stored, and
later ops read that node, so the graph holds it exactly; it is a graph output after the model's.

Float semantics (`float_ops=True`): a float-typed query bounds each emitted Affine node's
rounding error per output element as if the node were ONE ONNX operation applied to its terms
(`γ_{nnz+8}·(Σ|w||x| + |b|)`). So an op that rounds in floating point (Add, Sub, Mul, Div,
MatMul, Gemm, Conv, ConvTranspose, Sum, Mean, ReduceSum, ReduceMean, AveragePool,
BatchNormalization, ...) and every other op that is not exact structure (`onnx_ops.STRUCTURAL`:
Reshape, Transpose, Slice, Gather, Concat, Pad, Neg, ... and Where with a constant condition)
reads only *plain* inputs (`Lin.plain`: each element +-1 times one element of an IR value that no
other element reads, or a zero); any other pending map is emitted as a node first. A pending
map then holds at most one rounding op, with structural ops on either side, and at most one
constant added to it (an Add/Sub of a constant to a map without one: a MatMul and its bias,
fl(fl(Σ w x) + c), is one evaluation order of the sum Σ w x + c, which the bound covers with
its one more term; a second constant is a second rounding op). Plain, not merely
"free of rounding": composing with a non-injective selection or a folded constant would merge
terms (|w1 + w2| < |w1| + |w2|) and shrink the bound below the float error, and the affine
identities of the piecewise-linear lowerings (max(a, b) = a + relu(b - a), ...) are exact in
reals only. BatchNormalization is two rounding stages, (x - mean) and then * scale + beta (the
same scale as above), each a node. A sum of more than two tensors, and Gemm's C with A @ B, read
distinct IR values (a copy node where two would share one). A Cast to a float type that could
round is refused (judged by its input's declared or inferred type: float32 -> float64 ->
float32 is refused too; a widening one is exact). A Cast of an integer to a float type is exact
while the integer's magnitude is at most 2^11 (float16), 2^8 (bfloat16), 2^24 (float32) or 2^53
(float64): the integer is emitted as an IR value of its own and the condition recorded in
`meta["float_exact_within"]`, a JSON object mapping that IR value's name to the bound (e.g.
`{"to_int1": 16777216}`), for the float semantics to check. The piecewise-linear identities
round nothing in float; their own nodes may get a (needless, sound) error term. The exact
semantics are unchanged; only where nodes are cut differs. `meta["float_ops"] == "true"`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnsmt.errors import BackendUnavailable, InputError, NnsmtError, UnsupportedError
from nnsmt.ir import OPS as IR_OPS, Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sparse

from .exact import (DENSE_FOLD_LIMIT, _Map, _add, _dot, _mul, _recip,  # noqa: F401 (re-exported)
                    fold_batchnorm)
from .onnx_maps import Lin, to_param
from .onnx_ops import (FLOAT_TYPES, OPS, SUPPORTED_OPS, Index, NodeError, bad, const_lin,
                       exact_in_float, prod, type_name, value_kind)

__all__ = ["load_onnx", "ort_evaluator", "value_types", "onnx_io_types", "value_type", "SUPPORTED_OPS", "OPSETS",
           "fold_batchnorm"]

# the lowest and highest ONNX opset the frontend is tested on (tests/fixtures/onnx_ops: 9-18,
# tests/test_onnx_opsets.py: 19-21)
OPSETS = (9, 21)
MAX_INPUT_ELEMENTS = 10**7  # an ImageNet image is 150,528; past this a shape is a typo or an attack


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s[:1].isalpha() or s[:1] == "_" else "_" + s


class _Node:
    """An ONNX node's fields as Python lists (protobuf field access is slow in the hot loop)."""

    __slots__ = ("name", "op_type", "domain", "input", "output", "attribute")

    def __init__(self, n):
        self.name, self.op_type, self.domain = n.name, n.op_type, n.domain
        self.input, self.output, self.attribute = list(n.input), list(n.output), n.attribute


class _Lowering:
    """One model's lowering: the ONNX values (constants or pending maps), the IR nodes so far,
    and the context every op lowering uses (value access, emission of nodes)."""

    def __init__(self, model: onnx.ModelProto, path, keep=(), float_ops=False):
        self.path, self.model, g = path, model, model.graph
        self.keep, self.float_ops = tuple(keep), bool(float_ops)
        self._types = None  # ONNX value -> element type, inferred when first asked
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        inits = {t.name: t for t in g.initializer}
        # IR version 3 models also list every initializer in graph.input
        real = [i for i in g.input if i.name not in inits]
        if not real:
            raise UnsupportedError(f"{path}: the model has no inputs (only initializers)")
        self.outs = [o.name for o in g.output]
        names = [_ident(i.name) for i in real]
        self.inputs = []  # (ONNX name, IR name, shape, numpy dtype)
        taken: set[str] = set()
        for i, ident in zip(real, names):
            tt = i.type.tensor_type
            if not i.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
                raise UnsupportedError(f"{path}: input {i.name!r} is not a float tensor")
            if not tt.HasField("shape"):
                raise InputError(f"{path}: input {i.name!r} has no shape")
            # the batch dim (the first) may be symbolic (dim_param, or 0): it counts as 1; a
            # later one has no size to give the IR's fixed-size values
            for k, d in enumerate(tt.shape.dim):
                if k and not (d.HasField("dim_value") and d.dim_value > 0):
                    what = f"is dynamic ({d.dim_param!r})" if d.dim_param else \
                        ("has size 0" if d.HasField("dim_value") else "has no size")
                    raise UnsupportedError(f"{path}: input {i.name!r}: dimension {k} {what}; only the "
                                           "first (batch) dimension may be dynamic")
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                          for d in tt.shape.dim)
            size = math.prod(shape)
            if size > MAX_INPUT_ELEMENTS:  # every input element becomes a solver variable
                raise UnsupportedError(f"{path}: input {i.name!r} has {size:,} elements "
                                       f"(shape {list(shape)}); nnsmt takes at most {MAX_INPUT_ELEMENTS:,}")
            name = "x" if len(real) == 1 else f"x_{ident}"
            while name in taken:
                name += "_"
            taken.add(name)
            self.inputs.append((i.name, name, shape, helper.tensor_dtype_to_np_dtype(tt.elem_type)))

        # keep only the nodes the outputs and kept values depend on; count each value's readers
        # (a kept value counts as one: it is read by the query)
        self.graph_nodes = list(g.node)
        if self.keep:
            known = {o for n in self.graph_nodes for o in n.output if o} | \
                {i.name for i in g.input} | inits.keys()
            for k in self.keep:
                if not isinstance(k, str) or k not in known:
                    raise InputError(f"{path}: no value named {k!r} in the model (hidden node)")
        self.needed = set(self.outs) | set(self.keep)
        self.live = []
        self.users: dict[str, int] = {}
        for o in self.outs + list(self.keep):
            self.users[o] = self.users.get(o, 0) + 1
        for k in reversed(range(len(self.graph_nodes))):
            n = self.graph_nodes[k]
            if any(o in self.needed for o in n.output if o):
                self.live.append(k)
                ins = [x for x in n.input if x]
                self.needed.update(ins)
                if n.op_type not in ("Shape", "Size"):
                    for x in ins:
                        self.users[x] = self.users.get(x, 0) + 1
        self.live.reverse()

        self.vals: dict = {}
        for name in self.needed & inits.keys():
            self.vals[name] = self.tensor(inits[name], f"initializer {name!r}")
        self.nodes: list = []
        for onnx_name, name, shape, _ in self.inputs:
            self.nodes.append(Input(name, prod(shape), shape=shape, onnx=onnx_name))
            self.vals[onnx_name] = Lin.of(name, shape)
        self.layer = 0
        self.emitted: dict = {}
        self.logits: dict[str, str] = {}  # graph output -> input of its dropped Softmax
        self.kinds: dict[str, str] = {}  # input-dependent ONNX value -> "bool" or "int" (else float)
        self.float_exact: dict[str, int] = {}  # IR value -> bound (meta["float_exact_within"])

    # -- constants --

    def tensor(self, t, what):
        try:
            a = numpy_helper.to_array(t)
        except Exception as e:  # bad data type, size or external data
            raise InputError(f"{self.path}: {what} is malformed: {_one_line(e)}") from None
        return self.checked(a, what)

    def checked(self, a, what):
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(f"{self.path}: {what} holds NaN or Inf")
        return a

    # -- the node loop --

    def run(self) -> Graph:
        for k in self.live:
            n = _Node(self.graph_nodes[k])
            label = f"{n.name!r}" if n.name else f"#{k}"
            entry = OPS.get(n.op_type) if n.domain in ("", "ai.onnx") else None
            if entry is None:
                op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                op = op if isinstance(op, str) and op.isprintable() else repr(op)
                raise UnsupportedError(f"{self.path}: node {label} ({op}) is not supported; "
                                       f"supported ops: {', '.join(SUPPORTED_OPS)}")
            fn, arity = entry
            try:
                ins = [x for x in n.input if x]
                if len(ins) < arity or not n.output or not n.output[0]:
                    raise bad(f"needs {arity} input(s) and an output")
                for x in ins:
                    if x not in self.vals:
                        raise bad(f"uses undefined tensor {x!r}")
                if self.float_ops and not exact_in_float(self, n) and not self._bias_add(n, ins):
                    # an op that rounds (or a piecewise-linear one) reads plain selections of IR
                    # values only: its node then holds one rounding op (module docstring)
                    for x in ins:
                        v = self.vals[x]
                        if type(v) is Lin and v.terms and not v.plain():
                            self.materialise_name(x)
                out = fn(self, n)
                outs = out if isinstance(out, list) else [out]
                for j, name in enumerate(n.output):
                    if name and name in self.needed:
                        if j >= len(outs):
                            raise NodeError(f"output {j} ({name!r}) is not supported")
                        if isinstance(outs[j], Lin) and value_kind(self, n) != "float":
                            self.kinds[name] = value_kind(self, n)
                        self.store(name, outs[j])
            except NodeError as e:
                raise e.cls(f"{self.path}: node {label} ({n.op_type}): {e}") from None
            except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as e:
                raise InputError(f"{self.path}: node {label} ({n.op_type}) is malformed: "
                                 f"{type(e).__name__}: {_one_line(e)}") from None
        results = []
        for o in self.outs:
            v = self.vals.get(o)
            if v is None:
                raise InputError(f"{self.path}: output {o!r} is not computed by any node")
            if isinstance(v, Index):
                results.append(v.name)
                continue
            if not isinstance(v, Lin):  # a constant output (Shape(x), x ** 0): a node of its own
                self.vals[o] = const_lin(v, np.shape(v))
            results.append(self.materialise_name(o))
        for k in self.keep:
            v = self.vals.get(k)
            if isinstance(v, Index):
                raise UnsupportedError(f"{self.path}: hidden node {k!r} is the index of an "
                                       "ArgMax, not a tensor")
            if not isinstance(v, Lin):  # a constant (an initializer, a folded value)
                self.vals[k] = const_lin(v, np.shape(v))
            results.append(self.hold(k))
        ins = [i[0] for i in self.inputs]
        meta = {"source": str(self.path), "format": "onnx", "onnx_input": ",".join(ins),
                "onnx_output": ",".join(self.outs),
                "input_shape": ",".join("x".join(map(str, i[2])) for i in self.inputs)}
        if self.logits:
            # outputs are the logits: same argmax and pairwise order, but not the same values
            meta.update(dropped_softmax="true", onnx_logits=",".join(self.logits.values()))
        if self.keep:
            meta["onnx_keep"] = ",".join(self.keep)
        if self.float_ops:
            meta["float_ops"] = "true"
        if self.float_exact:
            meta["float_exact_within"] = json.dumps(self.float_exact, sort_keys=True)
        return Graph(self.nodes, tuple(results), meta).check()

    def store(self, name, v):
        if type(v) is Lin:
            self.vals[name] = v
            # a pending dense or sparse map read by several nodes is emitted once, not copied
            if self.users.get(name, 0) > 1 and v.terms and not v.cheap():
                self.materialise_name(name)
            if v.terms and name in self.keep:
                self.hold(name)  # before its readers, so that they read the kept node
        else:
            self.vals[name] = v if isinstance(v, Index) else np.asarray(v)

    def hold(self, name) -> str:
        """The IR value of the kept ONNX value `name` (one that depends on the input): a node
        whose `onnx` is `name`. A pending map is emitted; a value another node already holds
        (an Identity's, a Reshape's) gets a copy of its own, which later ops read."""
        v = self.vals[name]
        base = self.materialise_name(name)
        i = next(i for i in reversed(range(len(self.nodes))) if self.nodes[i].name == base)
        node = self.nodes[i]
        if node.onnx == name:
            return base
        if isinstance(node, Affine) and not node.onnx and tuple(node.shape or ()) == v.shape:
            self.nodes[i] = dataclasses.replace(node, onnx=name)  # an unnamed map of this value
            return base
        self.vals[name] = self.copy(Lin.of(base, v.shape), onnx=name)
        return self.vals[name].base()

    # -- the context of the op lowerings --

    def value(self, n, i):
        """Input i of node n (a numpy constant, a Lin, an Index), or None if it is absent."""
        name = n.input[i] if i < len(n.input) else ""
        return self.vals[name] if name else None

    def values(self, n) -> list:
        return [self.vals[x] for x in n.input if x]

    def lin(self, n, i) -> Lin:
        v = self.value(n, i)
        if isinstance(v, Index):
            raise NodeError(f"input {i} is the index of an ArgMax; an ArgMax can only be a "
                            "graph output")
        if not isinstance(v, Lin):
            raise NodeError(f"input {i} must depend on the network input")
        return v

    def const(self, n, i) -> np.ndarray:
        v = self.value(n, i)
        if v is None or isinstance(v, (Lin, Index)):
            name = n.input[i] if i < len(n.input) else ""
            raise NodeError(f"input {i} ({name!r}) must be a constant")
        return np.asarray(v)

    def elem_type(self, name) -> int | None:
        """The ONNX element type of value `name` (onnx.shape_inference), None if unknown."""
        if self._types is None:
            self._types = _elem_types(self.model)
        return self._types.get(name)

    def kind(self, n, i) -> str:
        """The ONNX element kind of input i: "bool", "int" or "float" (the network's inputs are
        floats; a constant's is its dtype's; an input-dependent value's was recorded by the
        node loop, `onnx_ops.value_kind`)."""
        name = n.input[i] if i < len(n.input) else ""
        v = self.vals.get(name) if name else None
        if v is None or isinstance(v, Lin):
            return self.kinds.get(name, "float")
        if isinstance(v, Index):
            return "int"
        dt = np.asarray(v).dtype
        return "bool" if dt == bool else "int" if dt.kind in "iu" else "float"

    def attr(self, n, name, default=None):
        for a in n.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                if isinstance(v, float) and v != v:
                    raise bad(f"attribute {name!r} is NaN")
                return v
        return default

    def _bias_add(self, n, ins) -> bool:
        """With float_ops: Add/Sub of a constant to one rounding op's result that has no
        constant yet (MatMul then its bias). The node computes fl(fl(Σ w x) + c), one order
        of the sum Σ w x + c, whose error the same per-row bound covers (one more term)."""
        if n.op_type not in ("Add", "Sub") or len(ins) != 2:
            return False
        vals = [self.vals[x] for x in ins]
        lins = [v for v in vals if type(v) is Lin and v.terms]
        consts = [v for v in vals if isinstance(v, (np.ndarray, np.generic, int, float))]
        if len(lins) != 1 or len(consts) != 1:
            return False
        v = lins[0]
        return v.b is None or not np.asarray(v.b, dtype=object).astype(bool).any()

    def used(self, name) -> bool:
        return name in self.needed

    def is_final(self, name) -> bool:
        """A graph output that no other node reads."""
        return name in self.outs and self.users.get(name, 0) == self.outs.count(name)

    def drop_softmax(self, out, logits):
        self.logits[out] = logits

    def linear(self, n, i, build) -> Lin:
        """build(input i): a linear op's result; when composing is refused (None), input i is
        emitted as a node first and the op composes with that node."""
        y = build(self.lin(n, i))
        return build(self.materialise(n, i)) if y is None else y

    def materialise(self, n, i) -> Lin:
        self.lin(n, i)
        self.materialise_name(n.input[i])
        return self.vals[n.input[i]]

    def materialise_name(self, name) -> str:
        """Emit the pending map of ONNX value `name` (once); its IR value name."""
        v = self.vals[name]
        base = self.emit(v, onnx=name)
        if v.base() is None:
            self.vals[name] = Lin.of(base, v.shape)
        return base

    def emit(self, lin: Lin, onnx="") -> str:
        """IR value holding the pending map: its base, or a new Affine node."""
        base = lin.base()
        if base is not None:
            return base
        key = id(lin)
        if key in self.emitted:
            return self.emitted[key][1]
        name = self.affine(lin, onnx)
        self.emitted[key] = (lin, name)  # lin kept alive so its id stays unique
        return name

    def affine(self, lin: Lin, onnx="") -> str:
        """A new Affine node computing the pending map; its name. A map with no terms (a
        constant) reads the first input with all-zero (empty sparse) weights: exactly its bias."""
        self.layer += 1
        name = f"a{self.layer}"
        terms = list(lin.terms.items())
        params = [(x, to_param(M, len(terms) == 1)) for x, M in terms]
        if not params:
            _, x, shape, _ = self.inputs[0]
            params = [(x, Sparse((lin.n, prod(shape)), np.zeros(lin.n + 1, dtype=np.int64),
                                 np.zeros(0, dtype=np.int64), np.zeros(0)))]
        b = np.zeros(lin.n) if lin.b is None else lin.b
        self.nodes.append(Affine(name, params[0][0], params[0][1], Const(b),
                                 more=tuple(params[1:]), shape=lin.shape, onnx=onnx))
        return name

    def exact_within(self, name: str, bound: int):
        """Record that float semantics are exact only while |IR value `name`| <= bound (an
        integer cast to a float type): `meta["float_exact_within"]`."""
        self.float_exact[name] = min(bound, self.float_exact.get(name, bound))

    def stage(self, lin: Lin) -> Lin:
        """The pending map as an IR value (emitted unless it is one): a float rounding stage."""
        return Lin.of(self.emit(lin), lin.shape)

    def copy(self, lin: Lin, onnx="") -> Lin:
        """A new node holding the pending map, even when it is an IR value already."""
        return Lin.of(self.affine(lin, onnx), lin.shape)

    def activation(self, lin: Lin, cls, prefix, onnx_in="", onnx_out="") -> Lin:
        src = self.emit(lin, onnx_in)
        if not (self.nodes and self.nodes[-1].name == src == f"a{self.layer}"):
            self.layer += 1  # no affine of its own in this layer
        name = f"{prefix}{self.layer}"
        self.nodes.append(cls(name, src, onnx=onnx_out))
        return Lin.of(name, lin.shape)

    def relu(self, lin: Lin, onnx_in="", onnx_out="") -> Lin:
        return self.activation(lin, Relu, "r", onnx_in, onnx_out)

    def sigmoid(self, lin: Lin, onnx_in="", onnx_out="") -> Lin:
        return self.activation(lin, Sigmoid, "s", onnx_in, onnx_out)

    def elementwise(self, cls, lins, onnx_out="", **fields) -> Lin:
        """A new elementwise IR node of type `cls` (`nnsmt.ir.ELEMENTWISE`) over the pending
        maps `lins` (emitted first, each as its IR value), with the node's other `fields`."""
        names = [self.emit(lin) for lin in lins]
        self.layer += 1
        name = f"{IR_OPS[cls]}{self.layer}"
        self.nodes.append(cls(name, *names, **fields, onnx=onnx_out))
        return Lin.of(name, lins[-1].shape)

    def argmax(self, lin: Lin, onnx_out="") -> Index:
        src = self.emit(lin)
        self.layer += 1
        name = f"m{self.layer}"
        self.nodes.append(Argmax(name, src, onnx=onnx_out))
        return Index(name)


def _read(path) -> onnx.ModelProto:
    if not Path(path).is_file():
        raise InputError(f"{path}: {'not a file' if Path(path).exists() else 'no such file'}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf/onnx raise assorted types for corrupt files
        raise InputError(f"{path}: not a valid ONNX model: {_one_line(e)}") from None
    if not model.HasField("graph") or not model.graph.output:
        raise InputError(f"{path}: not a valid ONNX model: no graph with an output")
    return model


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """ONNX value name -> element type, of the inputs, outputs, initializers and the values
    onnx.shape_inference types (on a copy; what it cannot type is left out)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference rejects some models the lowering accepts: use what is declared
        inferred = model
    g = inferred.graph
    out = {t.name: t.data_type for t in g.initializer}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            out[vi.name] = vi.type.tensor_type.elem_type
    return out


def _keep(keep) -> tuple:
    return (keep,) if isinstance(keep, str) else tuple(keep)


def _lower(path, keep=(), float_ops=False) -> tuple[Graph, _Lowering]:
    model = _read(path)
    try:
        low = _Lowering(model, path, _keep(keep), float_ops)
        return low.run(), low
    except NnsmtError as e:
        if "\n" in str(e):  # garbage names from a corrupt file: keep the message one line
            raise type(e)(_one_line(e)) from None
        raise
    except NodeError as e:  # raised outside a node (an output's emission)
        raise e.cls(f"{path}: {e}") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError,
            MemoryError) as e:
        # a malformed model that parsed as protobuf: report it, never a traceback
        raise InputError(f"{path}: not a valid ONNX model: {type(e).__name__}: "
                         f"{_one_line(e)}") from None


def load_onnx(path, keep=(), float_ops=False) -> Graph:
    """Load an ONNX network as an exact IR graph.

    Args:
        path: an .onnx file: a DAG of the ops in `SUPPORTED_OPS` over float inputs.
        keep: ONNX value names a query constrains (hidden nodes). Each becomes an IR value of
            its own holding exactly that tensor (C-order flattened), on a node whose `onnx` is
            the name (`graph.onnx_names()[name]`); later ops read that node. The graph's
            outputs are the model's outputs followed by these values, in the order given (a
            name that is also a model output, or given twice, appears again: positions stay
            fixed). A network input is its `Input` node. Kept values are lowered even when no
            output depends on them. A kept final Softmax is lowered exactly, not dropped.
        float_ops: lower for float-typed queries: no node composes two ONNX ops that round in
            floating point (module docstring); `meta["float_ops"] == "true"`. The exact
            semantics are the same as without it.

    Returns:
        A checked `Graph`. Its input is `x` (the C-order flattened ONNX input, batch dims as 1;
        with several inputs, `x_<name>` each, in the model's order), then `a1, r1, a2, ...`
        (affine / relu, `s<k>` sigmoid, `m<k>` argmax; `mul<k>`, `div<k>`, `pow<k>`, `exp<k>`,
        `compare<k>`, `select<k>`, `to_int<k>` the elementwise nodes of products, quotients,
        powers, exp, comparisons, Where and casts), each with the ONNX tensor name it holds
        (`onnx`) and its shape; the outputs are the graph's, in order. `meta` has source, format
        ("onnx"), onnx_input, onnx_output and input_shape ("1x5"; comma-separated lists when
        there are several). A final Softmax is dropped: the output is then the logits,
        `meta["dropped_softmax"] == "true"` and `meta["onnx_logits"]` names that tensor. Argmax
        and pairwise comparisons of outputs are unchanged by this; thresholds are not. A
        Softmax anywhere else (or over several groups) is lowered exactly: exp, sums, division.
        With `keep`, `meta["onnx_keep"]` lists the kept names. An output or kept value that
        does not depend on the input is an Affine node with all-zero weights and the constant
        as its bias. With float_ops, `meta["float_exact_within"]` (when an integer is cast to
        a float type) is a JSON object: IR value name -> the largest magnitude (an int) at
        which that value's cast is exact (module docstring).

    Raises:
        InputError: missing or corrupt file, NaN/Inf constants, inconsistent shapes, a kept
            name that is no value of the model.
        UnsupportedError: an op or configuration outside `SUPPORTED_OPS` (one line naming the
            file and node); a kept value that is an ArgMax's index; with float_ops, a Cast
            between float types that could round.
    """
    return _lower(path, keep, float_ops)[0]


def ort_evaluator(path, keep=(), optimize=True) -> Callable:
    """onnxruntime reference for the IR of `load_onnx(path, keep)`.

    Args:
        path: the .onnx file.
        keep: ONNX value names, as for `load_onnx`: added as model outputs, their values
            returned after the outputs'.
        optimize: False runs the model op by op (`ORT_DISABLE_ALL`: no fusion of Conv and
            BatchNormalization, say, which changes float results), as float-typed queries
            replay it.

    Returns:
        f(x) taking the 1-D IR input vector and returning, as a flat float64 vector, the ONNX
        tensor the IR output stands for (the logits when a final Softmax was dropped). With
        several inputs x is a mapping from IR input name to vector; with several outputs (or
        any kept value) f returns a tuple of vectors, in the graph's output order.

    Raises:
        BackendUnavailable: onnxruntime is not installed.
        InputError: as `load_onnx`, or onnxruntime cannot load the model.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from None
    graph, low = _lower(path, keep)
    model = low.model
    targets = [low.logits.get(o, o) for o in low.outs] + list(low.keep)
    have = {o.name for o in model.graph.output}
    for t in targets:
        if t not in have:
            model.graph.output.append(helper.make_empty_tensor_value_info(t))
            have.add(t)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # IR-3 models warn about initializers listed as inputs
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own checks may reject what the lowering accepted
        raise InputError(f"{path}: onnxruntime cannot load the model: {_one_line(e)}") from None
    ins = low.inputs
    names = list(dict.fromkeys(targets))

    def feed(x, onnx_name, name, shape, dtype):
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size != prod(shape):
            raise InputError(f"{path}: expected an input vector of length {prod(shape)} for "
                             f"{name!r}, got {x.size}")
        return x.astype(dtype).reshape(shape)

    def evaluate(x):
        if len(ins) == 1:
            feeds = {ins[0][0]: feed(x, *ins[0])}
        else:
            feeds = {i[0]: feed(x[i[1]], *i) for i in ins}
        got = dict(zip(names, sess.run(names, feeds)))
        ys = [np.asarray(got[t], dtype=np.float64).ravel() for t in targets]
        return ys[0] if len(ys) == 1 else tuple(ys)

    return evaluate


def _value_info(vi) -> tuple:
    """(name, element type name or None, shape or None) of a graph input or output; a symbolic
    or unknown dimension is None."""
    if not vi.type.HasField("tensor_type"):
        return vi.name, None, None
    tt = vi.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim) \
        if tt.HasField("shape") else None
    return vi.name, type_name(tt.elem_type), shape


def onnx_io_types(path) -> dict:
    """The model's inputs and outputs with their element types, without lowering it.

    Returns:
        {"inputs": [(onnx_name, elem_type, shape)], "outputs": [...]}, in the model's order;
        inputs are the real ones (no initializers). elem_type is VNN-LIB's name of the ONNX
        type ("float32", "float64", "float16", "bfloat16", "int8", ..., "uint64", "bool"; None
        for a non-tensor value); shape a tuple with None for a symbolic or unknown dimension,
        or None when the model declares no shape.

    Raises:
        InputError: missing or unreadable model (naming the file).
    """
    g = _read(path).graph
    inits = {t.name for t in g.initializer}
    return {"inputs": [_value_info(i) for i in g.input if i.name not in inits],
            "outputs": [_value_info(o) for o in g.output]}


def value_type(path, onnx_name) -> str | None:
    """The element type of an ONNX value (a hidden node, an input or output), as
    `onnx_io_types` names it; None when onnx.shape_inference cannot tell.

    Raises:
        InputError: missing or unreadable model, or no value of that name in the model.
    """
    return value_types(path, [onnx_name])[onnx_name]


def value_types(path, onnx_names) -> dict:
    """`value_type` of several values, the model read and its types inferred once."""
    model = _read(path)
    g = model.graph
    known = {o for n in g.node for o in n.output if o} | {i.name for i in g.input} | \
        {t.name for t in g.initializer}
    for name in onnx_names:
        if name not in known:
            raise InputError(f"{path}: no value named {name!r} in the model (hidden node)")
    types = _elem_types(model) if onnx_names else {}
    return {name: type_name(types.get(name)) for name in onnx_names}
