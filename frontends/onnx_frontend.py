"""ONNX frontend: lower a feed-forward ONNX network to an exact nnsmt IR graph.

The IR is vectors only: a tensor is its C-order flattening (as VNN-LIB's X_i / Y_j index it), with
batch and symbolic dims counted as 1. Every supported op is an affine map of the flattened vector
or an elementwise ReLU/sigmoid; each run of affine ops is folded into ONE exact `Affine` node.

Exactness: float32/float64 initializers convert to float64 exactly, and the folded weights and
biases are the exact rational values of the composed maps (float64 where that is exact, else
`Fraction`s). The one exception is BatchNormalization: its scale gamma / sqrt(var + eps) is
irrational in general, so it is the float64 rounding of that expression (the shift
beta - mean * scale is then exact for that rounded scale).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnsmt.errors import BackendUnavailable, InputError, NnsmtError, UnsupportedError
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid

from .exact import (DENSE_FOLD_LIMIT, _Map, _add, _dot, _mul, _recip,  # noqa: F401 (re-exported)
                    fold_batchnorm)

SUPPORTED_OPS = ("Add", "BatchNormalization", "Constant", "Div", "Dropout", "Flatten", "Gemm",
                 "Identity", "MatMul", "Mul", "Relu", "Reshape", "Sigmoid", "Softmax", "Squeeze",
                 "Sub", "Transpose", "Unsqueeze")

_MAX_KRON = 20_000_000  # entries of a MatMul map that repeats a weight over several rows/columns
_ARITY = {"Add": 2, "Sub": 2, "Mul": 2, "Div": 2, "MatMul": 2, "Gemm": 2,
          "BatchNormalization": 5, "Constant": 0}  # minimum inputs; 1 for the others

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}


class _Act(NamedTuple):
    """An activation tensor: pending map applied to the IR value `base`, with its ONNX shape."""
    base: str
    map: _Map
    shape: tuple


class _NodeError(Exception):
    """Raised by op handlers; the node loop adds the file and node to the message."""

    def __init__(self, msg, cls=UnsupportedError):
        super().__init__(msg)
        self.cls = cls


def _bad(msg):
    return _NodeError(msg, InputError)


def _prod(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ---- shape helpers (numpy matmul semantics) ----

def _matmul_map(W, sx, x_left):
    """Matrix of v -> v @ W (x_left) or W @ v on the C-order flattening of v (shape sx), with
    numpy/ONNX matmul rules for 1-D operands; returns (matrix, output shape)."""
    sx = tuple(sx)
    if W.ndim not in (1, 2) or len(sx) == 0:
        raise _NodeError(f"MatMul of shapes {list(W.shape)} and {list(sx)}: only 1-D/2-D "
                         "constant weights are supported")
    if x_left:
        w = W if W.ndim == 2 else W[:, None]
        xs = sx if len(sx) > 1 else (1,) + sx
        if xs[-1] != w.shape[0]:
            raise _bad(f"shapes {list(sx)} and {list(W.shape)} do not multiply")
        m = _prod(xs[:-1])
        blocks, blk = m, w.T
        out = xs[:-1] + (w.shape[1],)
        if len(sx) == 1:
            out = out[:-2] + out[-1:]
        if W.ndim == 1:
            out = out[:-1]
    else:
        w = W if W.ndim == 2 else W[None, :]
        xs = sx if len(sx) > 1 else sx + (1,)
        if xs[-2] != w.shape[1]:
            raise _bad(f"shapes {list(W.shape)} and {list(sx)} do not multiply")
        blocks, r = _prod(xs[:-2]), xs[-1]
        blk = w if r == 1 else np.kron(w, np.eye(r))
        out = xs[:-2] + (w.shape[0], r)
        if W.ndim == 1:
            out = out[:-2] + out[-1:]
        if len(sx) == 1:
            out = out[:-1]
    if blocks == 1:
        return blk, out
    if blocks * blocks * blk.size > _MAX_KRON:
        raise _NodeError(f"MatMul over shape {list(sx)} repeats the weight {blocks} times; "
                         "too large to lower")
    return np.kron(np.eye(blocks), blk), out


def _axes(axes, rank, what):
    out = sorted(int(a) + rank if a < 0 else int(a) for a in axes)
    if any(not 0 <= a < rank for a in out) or len(set(out)) != len(out):
        raise _bad(f"{what} axes {list(axes)} are invalid for rank {rank}")
    return out


# ---- the lowering ----

class _Lowering:
    def __init__(self, model: onnx.ModelProto, path):
        self.path, self.model, g = path, model, model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        inits = {t.name: t for t in g.initializer}
        # IR version 3 models also list every initializer in graph.input
        real = [i for i in g.input if i.name not in inits]
        if len(real) != 1:
            raise UnsupportedError(f"{path}: the model has {len(real)} inputs "
                                   f"{[i.name for i in real]}; exactly one is supported")
        if len(g.output) != 1:
            raise UnsupportedError(f"{path}: the model has {len(g.output)} outputs "
                                   f"{[o.name for o in g.output]}; exactly one is supported")
        self.inp, self.out = real[0], g.output[0].name
        tt = self.inp.type.tensor_type
        if not self.inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
            raise UnsupportedError(f"{path}: input {self.inp.name!r} is not a float tensor")
        if not tt.HasField("shape"):
            raise InputError(f"{path}: input {self.inp.name!r} has no shape")
        # batch and symbolic dims (dim_param or 0) count as 1
        self.in_shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                              for d in tt.shape.dim)
        self.in_dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)

        # keep only the nodes the output depends on
        self.used = {self.out}
        self.live = []
        for i in reversed(range(len(g.node))):
            if any(o in self.used for o in g.node[i].output if o):
                self.live.append(i)
                self.used.update(x for x in g.node[i].input if x)
        self.live.reverse()

        self.consts: dict[str, np.ndarray] = {}
        for name in self.used & inits.keys():
            if name != self.inp.name:
                self.consts[name] = self._array(inits[name], f"initializer {name!r}")
        self.acts = {self.inp.name: _Act("x", _Map(_prod(self.in_shape)), self.in_shape)}
        self.nodes: list = []
        self.layer = 0
        self.emitted: dict = {}
        self.logits = None  # input of a dropped final Softmax

    def _array(self, t, what):
        try:
            a = numpy_helper.to_array(t)
        except Exception as e:  # bad data type, size or external data
            raise InputError(f"{self.path}: {what} is malformed: {_one_line(e)}") from None
        return self._checked(a, what)

    def _checked(self, a, what):
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(f"{self.path}: {what} holds NaN or Inf")
        return a

    def run(self) -> Graph:
        g = self.model.graph
        for i in self.live:
            n = g.node[i]
            label = f"{n.name!r}" if n.name else f"#{i}"
            handler = getattr(self, f"_op_{n.op_type}", None)
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS or handler is None:
                op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                op = op if isinstance(op, str) and op.isprintable() else repr(op)
                raise UnsupportedError(f"{self.path}: node {label} ({op}) is not supported; "
                                       f"supported ops: {', '.join(SUPPORTED_OPS)}")
            try:
                arity = _ARITY.get(n.op_type, 1)
                if len([x for x in n.input if x]) < arity or not n.output or not n.output[0]:
                    raise _bad(f"needs {arity} input(s) and an output")
                for x in n.input:
                    if x and x not in self.acts and x not in self.consts:
                        raise _bad(f"uses undefined tensor {x!r}")
                handler(n)
            except _NodeError as e:
                raise e.cls(f"{self.path}: node {label} ({n.op_type}): {e}") from None
            except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as e:
                raise InputError(f"{self.path}: node {label} ({n.op_type}) is malformed: "
                                 f"{type(e).__name__}: {_one_line(e)}") from None
        if self.out in self.consts:
            raise UnsupportedError(f"{self.path}: output {self.out!r} does not depend on the input")
        if self.out not in self.acts:
            raise InputError(f"{self.path}: output {self.out!r} is not computed by any node")
        act = self.acts[self.out]
        result = self.emit(act)
        meta = {"source": str(self.path), "format": "onnx", "onnx_input": self.inp.name,
                "onnx_output": self.out, "input_shape": "x".join(map(str, self.in_shape))}
        if self.logits is not None:
            # outputs are the logits: same argmax and pairwise order, but not the same values
            meta.update(dropped_softmax="true", onnx_logits=self.logits)
        nodes = [Input("x", _prod(self.in_shape))] + self.nodes
        return Graph(nodes, (result,), meta).check()

    # -- emission --

    def emit(self, act: _Act) -> str:
        """IR value holding the activation: its base, or a new Affine node."""
        m = act.map
        if m.is_identity:  # identity with zero bias: nothing to emit
            return act.base
        key = (id(m), act.base)
        if key not in self.emitted:
            self.layer += 1
            name = f"a{self.layer}"
            b = np.zeros(m.n_out) if m.b is None else m.b
            self.nodes.append(Affine(name, act.base, Const(m.dense()), Const(b)))
            self.emitted[key] = (m, name)  # m kept alive so its id stays unique
        return self.emitted[key][1]

    def linear(self, x: _Act, M, shape) -> _Act:
        m = x.map.then(M)
        if m is None:  # too large to fold exactly: emit the pending map as its own layer
            base = self.emit(x)
            return _Act(base, _Map(M.shape[1]).then(M), tuple(shape))
        return _Act(x.base, m, tuple(shape))

    def activation(self, n, cls, prefix):
        x = self.act(n, 0)
        src = self.emit(x)
        if not (self.nodes and self.nodes[-1].name == src == f"a{self.layer}"):
            self.layer += 1  # no affine of its own in this layer
        name = f"{prefix}{self.layer}"
        self.nodes.append(cls(name, src))
        self.acts[n.output[0]] = _Act(name, _Map(_prod(x.shape)), x.shape)

    # -- operand access --

    def act(self, n, i) -> _Act:
        if i >= len(n.input) or n.input[i] not in self.acts:
            raise _NodeError(f"input {i} must depend on the network input")
        return self.acts[n.input[i]]

    def const(self, n, i, dtype=np.float64) -> np.ndarray:
        name = n.input[i] if i < len(n.input) else ""
        if name not in self.consts:
            raise _NodeError(f"input {i} ({name!r}) must be a constant")
        return self.consts[name].astype(dtype)

    def attr(self, n, name, default=None):
        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def unused_outputs(self, n, what):
        if any(o in self.used for o in n.output[1:] if o):
            raise _NodeError(f"{what} outputs are used; only inference mode is supported")

    def split(self, n):
        """(activation, constant, activation is the first operand) of a binary op."""
        a, b = (x in self.acts for x in n.input[:2])
        if a and b:
            raise _NodeError("both operands depend on the input; one must be a constant")
        if not (a or b):
            raise _NodeError("both operands are constants (constant subgraphs are not supported)")
        return (self.acts[n.input[0]], self.const(n, 1), True) if a else \
            (self.acts[n.input[1]], self.const(n, 0), False)

    # -- layout ops: no-ops on the flattened vector, but they change how MatMul applies --

    def layout(self, n, new_shape, perm=None):
        x = n.input[0]
        if x in self.consts:
            c = self.consts[x]
            c = c if perm is None else c.transpose(perm)
            self.consts[n.output[0]] = c.reshape(new_shape)
            return
        a = self.acts[x]
        m = a.map
        if perm is not None:
            m = m.gather(np.arange(m.n_out).reshape(a.shape).transpose(perm).ravel())
        self.acts[n.output[0]] = _Act(a.base, m, tuple(int(d) for d in new_shape))

    def shape_of(self, n, i=0):
        x = n.input[i]
        return tuple(self.consts[x].shape) if x in self.consts else self.acts[x].shape

    def _op_Identity(self, n):
        self.layout(n, self.shape_of(n))

    def _op_Dropout(self, n):
        self.unused_outputs(n, "mask")
        if len(n.input) > 2 and n.input[2] and self.const(n, 2).any():
            raise _NodeError("training_mode is true; only inference mode is supported")
        self.layout(n, self.shape_of(n))

    def _op_Flatten(self, n):
        s = self.shape_of(n)
        a = self.attr(n, "axis", 1)
        a = a + len(s) if a < 0 else a
        if not 0 <= a <= len(s):
            raise _bad(f"axis {self.attr(n, 'axis')} is invalid for shape {list(s)}")
        self.layout(n, (_prod(s[:a]), _prod(s[a:])))

    def _op_Reshape(self, n):
        s = self.shape_of(n)
        target = [int(t) for t in (self.const(n, 1, np.int64) if len(n.input) > 1
                                   else self.attr(n, "shape", []))]
        keep = not self.attr(n, "allowzero", 0)
        out = [s[i] if t == 0 and keep and i < len(s) else t for i, t in enumerate(target)]
        if out.count(-1) == 1:
            known = _prod([t for t in out if t != -1])
            if known and _prod(s) % known == 0:
                out[out.index(-1)] = _prod(s) // known
        if any(t < 0 for t in out) or _prod(out) != _prod(s):
            raise _bad(f"cannot reshape {list(s)} to {target}")
        self.layout(n, out)

    def _axes_arg(self, n):
        if len(n.input) > 1 and n.input[1]:
            return [int(a) for a in self.const(n, 1, np.int64).ravel()]
        return self.attr(n, "axes")

    def _op_Squeeze(self, n):
        s = self.shape_of(n)
        axes = self._axes_arg(n)
        axes = [i for i, d in enumerate(s) if d == 1] if axes is None else \
            _axes(axes, len(s), "Squeeze")
        if any(s[a] != 1 for a in axes):
            raise _bad(f"cannot squeeze axes {axes} of shape {list(s)}")
        self.layout(n, [d for i, d in enumerate(s) if i not in axes])

    def _op_Unsqueeze(self, n):
        s = list(self.shape_of(n))
        axes = self._axes_arg(n)
        if axes is None:
            raise _bad("no axes given")
        for a in _axes(axes, len(s) + len(axes), "Unsqueeze"):
            s.insert(a, 1)
        self.layout(n, s)

    def _op_Transpose(self, n):
        s = self.shape_of(n)
        perm = self.attr(n, "perm") or list(range(len(s)))[::-1]
        if sorted(perm) != list(range(len(s))):
            raise _bad(f"perm {list(perm)} is invalid for shape {list(s)}")
        self.layout(n, [s[p] for p in perm], perm)

    def _op_Constant(self, n):
        a = n.attribute[0] if len(n.attribute) == 1 else None
        if a is None or a.name not in ("value", "value_float", "value_floats", "value_int",
                                        "value_ints"):
            raise _NodeError("only a dense numeric value is supported")
        what, v = f"constant {n.output[0]!r}", helper.get_attribute_value(a)
        self.consts[n.output[0]] = self._array(v, what) if a.name == "value" else \
            self._checked(np.array(v, dtype=np.float32 if "float" in a.name else np.int64), what)

    # -- affine ops --

    def _op_Add(self, n):
        self.binary(n)

    _op_Sub = _op_Mul = _op_Div = _op_Add

    def binary(self, n):
        x, c, x_first = self.split(n)
        try:
            shape = np.broadcast_shapes(x.shape, c.shape)
        except ValueError:
            raise _bad(f"shapes {list(x.shape)} and {list(c.shape)} do not broadcast") from None
        m = x.map
        if _prod(shape) != m.n_out:  # the activation itself is broadcast (repeated)
            m = m.gather(np.broadcast_to(np.arange(m.n_out).reshape(x.shape), shape).ravel())
        c = np.broadcast_to(c, shape).ravel()
        op = n.op_type
        if op == "Add":
            m = m.shift(c)
        elif op == "Sub":
            m = m.shift(-c) if x_first else m.scale(np.full(len(c), -1.0)).shift(c)
        elif op == "Mul":
            m = m.scale(c)
        else:
            if not x_first:
                raise _NodeError("division by a tensor that depends on the input is not affine")
            if np.any(c == 0):
                raise _bad("divides by zero")
            m = m.scale(_recip(c))
        self.acts[n.output[0]] = _Act(x.base, m, tuple(shape))

    def _op_MatMul(self, n):
        x, W, x_left = self.split(n)
        M, shape = _matmul_map(W, x.shape, x_left)
        self.acts[n.output[0]] = self.linear(x, M, shape)

    def transposed(self, x: _Act) -> _Act:
        return _Act(x.base, x.map.gather(np.arange(x.map.n_out).reshape(x.shape).T.ravel()),
                    x.shape[::-1])

    def _op_Gemm(self, n):
        if len(n.input) > 2 and n.input[2] in self.acts:
            raise _NodeError("input C depends on the input; it must be a constant")
        x, W, x_is_a = self.split(n)
        ta, tb = self.attr(n, "transA", 0), self.attr(n, "transB", 0)
        if len(x.shape) != 2 or W.ndim != 2:
            raise _bad(f"operands must be 2-D, got {list(x.shape)} and {list(W.shape)}")
        if x_is_a:  # Y = A' @ B'
            x = self.transposed(x) if ta else x
            M, shape = _matmul_map(W.T if tb else W, x.shape, True)
        else:
            x = self.transposed(x) if tb else x
            M, shape = _matmul_map(W.T if ta else W, x.shape, False)
        y = self.linear(x, M, shape)
        m = y.map
        alpha, beta = float(self.attr(n, "alpha", 1.0)), float(self.attr(n, "beta", 1.0))
        if alpha != 1:
            m = m.scale(np.full(m.n_out, alpha))
        if len(n.input) > 2 and n.input[2] and beta != 0:
            C = self.const(n, 2)
            if np.broadcast_shapes(C.shape, shape) != tuple(shape):
                raise _bad(f"C of shape {list(C.shape)} does not broadcast to {list(shape)}")
            m = m.shift(np.broadcast_to(_mul(beta, C), shape).ravel())
        self.acts[n.output[0]] = _Act(y.base, m, y.shape)

    def _op_BatchNormalization(self, n):
        x = self.act(n, 0)
        if self.attr(n, "training_mode", 0) or self.attr(n, "spatial", 1) != 1:
            raise _NodeError("only inference mode with per-channel (spatial) statistics "
                             "is supported")
        self.unused_outputs(n, "training statistics")
        if len(x.shape) < 2:
            raise _bad(f"input of shape {list(x.shape)} has no channel axis")
        C = x.shape[1]
        gamma, beta, mean, var = (self.const(n, i) for i in range(1, 5))
        if any(p.shape != (C,) for p in (gamma, beta, mean, var)):
            raise _bad(f"parameters must have shape [{C}]")
        eps = float(self.attr(n, "epsilon", 1e-5))
        if np.any(var + eps <= 0):
            raise _bad("var + epsilon must be positive")
        s, t = fold_batchnorm(gamma, beta, mean, var, eps)
        inner, outer = _prod(x.shape[2:]), _prod(x.shape[:1])
        per = lambda v: np.tile(np.repeat(v, inner), outer)  # channel axis 1, C-order
        self.acts[n.output[0]] = _Act(x.base, x.map.scale(per(s)).shift(per(t)), x.shape)

    # -- nonlinear ops --

    def _op_Relu(self, n):
        self.activation(n, Relu, "r")

    def _op_Sigmoid(self, n):
        self.activation(n, Sigmoid, "s")

    def _op_Softmax(self, n):
        if n.output[0] != self.out:
            raise _NodeError("Softmax is only supported as the last node, producing the output")
        x = self.act(n, 0)
        s = x.shape
        axis = self.attr(n, "axis", 1 if self.opset < 13 else -1)
        a = axis + len(s) if axis < 0 else axis
        if not 0 <= a < max(len(s), 1):
            raise _bad(f"axis {axis} is invalid for shape {list(s)}")
        # opset < 13 normalises over dims [axis:], later opsets over dim axis alone
        groups = _prod(s[:a]) * (1 if self.opset < 13 else _prod(s[a + 1:]))
        if groups != 1:
            raise _NodeError(f"Softmax over axis {axis} of shape {list(s)} normalises {groups} "
                             "groups; only a softmax over all output elements can be dropped")
        # Dropped: the IR output is the logits (same argmax and pairwise order, not the same values)
        self.logits = n.input[0]
        self.acts[n.output[0]] = x


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


def _lower(path) -> tuple[Graph, _Lowering]:
    model = _read(path)
    try:
        low = _Lowering(model, path)
        return low.run(), low
    except NnsmtError as e:
        if "\n" in str(e):  # garbage names from a corrupt file: keep the message one line
            raise type(e)(_one_line(e)) from None
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as e:
        # a malformed model that parsed as protobuf: report it, never a traceback
        raise InputError(f"{path}: not a valid ONNX model: {type(e).__name__}: "
                         f"{_one_line(e)}") from None


def load_onnx(path) -> Graph:
    """Load an ONNX network as an exact IR graph.

    Args:
        path: an .onnx file with one float input and one output.

    Returns:
        A checked `Graph`: input `x` (the C-order flattened ONNX input, batch dims as 1), then
        `a1, r1, a2, ...` (affine / relu, `s<k>` sigmoid); its one output is the last value.
        `meta` has source, format ("onnx"), onnx_input, onnx_output (the graph's output name)
        and input_shape ("1x5"). A final Softmax is dropped: the output is then the logits,
        `meta["dropped_softmax"] == "true"` and `meta["onnx_logits"]` names that tensor. Argmax
        and pairwise comparisons of outputs are unchanged by this; thresholds are not.

    Raises:
        InputError: missing or corrupt file, NaN/Inf constants, inconsistent shapes.
        UnsupportedError: an op or configuration outside `SUPPORTED_OPS` (one line naming the
            file and node).
    """
    return _lower(path)[0]


def ort_evaluator(path) -> Callable[[np.ndarray], np.ndarray]:
    """onnxruntime reference for the IR of `load_onnx(path)`.

    Returns:
        f(x) taking the 1-D IR input vector and returning, as a flat float64 vector, the ONNX
        tensor the IR output stands for (the logits when a final Softmax was dropped).

    Raises:
        BackendUnavailable: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from None
    graph, low = _lower(path)
    model, target = low.model, low.logits or low.out
    if target not in [o.name for o in model.graph.output]:
        model.graph.output.append(helper.make_empty_tensor_value_info(target))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # IR-3 models warn about initializers listed as inputs
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own checks may reject what the lowering accepted
        raise InputError(f"{path}: onnxruntime cannot load the model: {_one_line(e)}") from None
    dim, name, shape, dtype = graph.inputs[0].dim, low.inp.name, low.in_shape, low.in_dtype

    def evaluate(x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size != dim:
            raise InputError(f"{path}: expected an input vector of length {dim}, got {x.size}")
        y = sess.run([target], {name: x.astype(dtype).reshape(shape)})[0]
        return np.asarray(y, dtype=np.float64).ravel()

    return evaluate
