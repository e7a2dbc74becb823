"""The ONNX op table: op type -> lowering function, over a symbolic tensor abstraction.

Every ONNX value is a constant numpy array (folded as the runtime computes it, in its own dtype)
or a `Lin`: a pending affine map of IR values with a tensor shape. A linear op returns a new
`Lin`, composed with its input's (`onnx_maps`); a nonlinear op asks the lowering (`ctx`) to emit
the pending map as an IR `Affine` node and adds a `Relu` or `Sigmoid` node after it:
max(a, b) = a + relu(b - a), min(a, b) = a - relu(a - b), |x| = 2 relu(x) - x,
leaky(x) = a x + (1 - a) relu(x), tanh(x) = 2 sigmoid(2x) - 1, all exact.

Beyond piecewise-linear maps, the exact elementwise IR nodes (`nnsmt.ir`), operands broadcast to
one shape by selection maps first: Mul and Div of two input-dependent tensors are `Mul`/`Div`
nodes, `c / x` is `c * Pow(x, -1)`, MatMul of two such tensors one `Mul` of every pair of
factors and a sparse sum; Pow with a constant rational exponent (numerator and
denominator at most `POW_MAX`; a float32 like 1/3 is not one) is `Pow`, Sqrt `Pow(x, 1/2)`,
Reciprocal `Pow(x, -1)`; Exp is `Exp`; a comparison `a op b` is `Compare(a - b, op)` (booleans
are 0/1 reals); And, Or, Xor of booleans are `relu(a + b - 1)` combinations, Not is `1 - a`;
`Where(c, a, b)` is `b + Select(c, a - b)` (affine in c when a and b are constants); Cast to an
integer type is `ToInt(x, "trunc")` (ONNX truncates toward zero; the integer type's range is not
modelled), to bool `Compare(x, "!=")`; Floor and Ceil are `ToInt`; Sign is
`Compare(x, ">") - Compare(x, "<")`; integer Div truncates its real quotient (`ToInt`); a Softmax
that is not the network's last node (or normalises several groups) is
`Div(Exp(x), S Exp(x))` with S the affine map summing each group. A Pow whose constant exponent
differs between elements is one `Pow` node per distinct exponent over the elements that take it,
gathered back by one affine map. Log, Round and input-dependent exponents are refused.

A lowering function takes the lowering context and the node and returns the node's output
value(s). It raises `NodeError` for an unsupported configuration (the caller prefixes the file,
node and op); `bad(...)` makes it an InputError (a malformed model).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from onnx import TensorProto, helper

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import POW_MAX, Compare, Div, Exp, Mul, Pow, Select, ToInt

from .exact import _add, _mul, _recip, fold_batchnorm
from .onnx_maps import Lin, Sp

FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
# float type -> the float types that hold each of its values (a Cast to one of them is exact)
_HOLDS = {TensorProto.FLOAT16: {TensorProto.FLOAT16, TensorProto.FLOAT, TensorProto.DOUBLE},
          TensorProto.BFLOAT16: {TensorProto.BFLOAT16, TensorProto.FLOAT, TensorProto.DOUBLE},
          TensorProto.FLOAT: {TensorProto.FLOAT, TensorProto.DOUBLE},
          TensorProto.DOUBLE: {TensorProto.DOUBLE}}
# float type -> the largest integer magnitude up to which it holds every integer (2^(p), p the
# significand's bits): a Cast of an integer to it is exact within that bound
INT_EXACT = {TensorProto.FLOAT16: 2 ** 11, TensorProto.BFLOAT16: 2 ** 8,
             TensorProto.FLOAT: 2 ** 24, TensorProto.DOUBLE: 2 ** 53}
MAX_ENTRIES = 100_000_000  # nonzeros of one lowered linear map (a convolution, a batched MatMul)


class NodeError(Exception):
    """Raised by a lowering; the node loop adds the file and node to the message."""

    def __init__(self, msg, cls=UnsupportedError):
        super().__init__(msg)
        self.cls = cls


def bad(msg) -> NodeError:
    return NodeError(msg, InputError)


class Index:
    """The value of an ArgMax lowered to an IR `Argmax` node: an index, not a tensor."""

    def __init__(self, name):
        self.name = name


def type_name(elem_type) -> str | None:
    """An ONNX element type as VNN-LIB names it (float32, float64, float16, bfloat16, int8, ...,
    uint64, bool; the other types their ONNX name in lower case); None for an unknown code."""
    if elem_type == TensorProto.FLOAT:
        return "float32"
    if elem_type == TensorProto.DOUBLE:
        return "float64"
    try:
        name = TensorProto.DataType.Name(int(elem_type))
    except (ValueError, TypeError):
        return None
    return None if name == "UNDEFINED" else name.lower()


# Ops exact in floating point that only move, copy, drop, negate or fill elements (or pass them
# through): with `float_ops`, they compose with any pending map, a rounding op's included. A Cast
# to a float type is the identity on its value (one that could round is refused, one of an
# integer exact within a recorded bound, `_exact_float_cast`); to an integer or bool type an
# elementwise node, which emits its input as a node of its own.
STRUCTURAL = frozenset({"Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                        "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements",
                        "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Neg", "Shape",
                        "Size", "Cast", "CastLike"})


def exact_in_float(ctx, n) -> bool:
    """Whether node n composes with a pending map that already rounds (`float_ops`): the ops of
    STRUCTURAL, and Where with a constant condition (a selection of its two values)."""
    if n.op_type == "Where":
        return not isinstance(ctx.value(n, 0), Lin)
    return n.op_type in STRUCTURAL


def prod(shape) -> int:
    return math.prod(map(int, shape))


def shape_of(v) -> tuple:
    return v.shape if isinstance(v, Lin) else tuple(np.shape(v))


def exact(a, what="constant") -> np.ndarray:
    """A numeric constant as exact float64 (float16/32/64 and integers convert exactly)."""
    a = np.asarray(a)
    if a.dtype == object:
        return a
    if a.dtype.kind not in "fiub" and a.dtype.name != "bfloat16":
        raise NodeError(f"a {a.dtype} {what} cannot be used as a number")
    if a.dtype.kind in "iu" and a.size and (a.max() > 2 ** 53 or a.min() < -2 ** 53):
        return _int_fractions(a)  # beyond 2^53 an integer may be no float64
    out = a.astype(np.float64)
    if not np.isfinite(out).all():
        raise bad(f"{what} holds NaN or Inf")
    return out


def _int_fractions(a) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [Fraction(int(v)) for v in a.ravel().tolist()]
    return out


def norm_axis(axis, rank, what="axis") -> int:
    a = int(axis)
    a = a + rank if a < 0 else a
    if not 0 <= a < max(rank, 1):
        raise bad(f"{what} {axis} is invalid for rank {rank}")
    return a


def norm_axes(axes, rank, what) -> list[int]:
    out = sorted(int(a) + rank if a < 0 else int(a) for a in axes)
    if any(not 0 <= a < rank for a in out) or len(set(out)) != len(out):
        raise bad(f"{what} axes {list(axes)} are invalid for rank {rank}")
    return out


def broadcast_shape(*shapes) -> tuple:
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise bad(f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast") \
            from None


# ---- structural ops: selections of elements, for constants and pending maps alike ----

def structural(vals, f):
    """Apply the selection `f` (a numpy function that only moves, copies, drops or fills
    elements: reshape, transpose, concatenate, take, pad, broadcast, where, ...) to constants
    or pending maps. Constants are folded by `f` itself; otherwise `f` runs on index arrays and
    the result selects elements of the inputs (constants become the shift)."""
    if not any(isinstance(v, Lin) for v in vals):
        return np.asarray(f(*vals))
    idx, pool, lins, off, poff = [], [], [], 0, 0
    for v in vals:
        if isinstance(v, Lin):
            idx.append(np.arange(off, off + v.n, dtype=np.int64).reshape(v.shape))
            lins.append((off, v))
            off += v.n
        else:
            a = np.asarray(v)
            idx.append((-1 - poff - np.arange(a.size, dtype=np.int64)).reshape(a.shape))
            pool.append(exact(a).ravel())
            poff += a.size
    R = np.asarray(f(*idx))
    flat = R.ravel()
    out = None
    for o, v in lins:
        m = (flat >= o) & (flat < o + v.n)
        if m.any():
            part = v.select(np.where(m, flat - o, -1), shape=R.shape)
            out = part if out is None else out.plus(part)
    neg = flat < 0
    consts = np.concatenate(pool) if pool else np.zeros(0)
    if out is None:  # only constant elements were selected
        return consts[-flat - 1].reshape(R.shape)
    if neg.any():
        c = np.zeros(len(flat))
        c[neg] = consts[-flat[neg] - 1]
        out = out.shift(c)
    return out


def bcast(v, shape):
    shape = tuple(shape)
    if shape_of(v) == shape:
        return v
    return structural([v], lambda x: np.broadcast_to(x, shape))


def const_lin(c, shape) -> Lin:
    """A constant as a map with no terms (only ever summed into a map that has some)."""
    return Lin(shape, {}, np.broadcast_to(exact(c), shape).ravel().copy())


def as_lin(v, shape) -> Lin:
    return bcast(v, shape) if isinstance(v, Lin) else const_lin(v, shape)


# ---- the table ----

OPS: dict = {}  # op type -> (lowering, minimum number of inputs)


def op(*names, arity=1):
    def register(fn):
        for name in names:
            OPS[name] = (fn, arity)
        return fn
    return register


def _no_training_outputs(ctx, n, what):
    if any(ctx.used(o) for o in n.output[1:] if o):
        raise NodeError(f"{what} outputs are used; only inference mode is supported")


# -- pass-through --

@op("Identity")
def _identity(ctx, n):
    return ctx.value(n, 0)


@op("Dropout")
def _dropout(ctx, n):
    _no_training_outputs(ctx, n, "mask")
    if ctx.value(n, 2) is not None and ctx.const(n, 2).any():
        raise NodeError("training_mode is true; only inference mode is supported")
    return ctx.value(n, 0)


@op("Cast", "CastLike")
def _cast(ctx, n):
    x = ctx.value(n, 0)
    if n.op_type == "Cast":
        to = ctx.attr(n, "to")
        dtype = helper.tensor_dtype_to_np_dtype(to)
        is_float = to in FLOAT_TYPES
    else:
        t = ctx.value(n, 1)
        dtype = np.dtype(_KIND_DTYPE[ctx.kind(n, 1)]) if isinstance(t, Lin) else np.asarray(t).dtype
        is_float = dtype.kind == "f" or dtype.name == "bfloat16"
    if isinstance(x, Lin):
        src = ctx.kind(n, 0)
        if is_float and ctx.float_ops:
            if n.op_type == "CastLike":
                to = ctx.elem_type(n.input[1]) if isinstance(t, Lin) else \
                    helper.np_dtype_to_tensor_dtype(dtype)
            x = _exact_float_cast(ctx, n, src, to)
        # real semantics: a float cast of a real value is the value; 0/1 and integers stay
        if is_float or dtype == bool and src == "bool" or dtype.kind in "iu" and src != "float":
            return x
        if dtype == bool:
            return ctx.elementwise(Compare, (x,), op="!=", onnx_out=n.output[0])
        if dtype.kind in "iu":  # toward zero, as ONNX; the integer type's range is not modelled
            return ctx.elementwise(ToInt, (x,), mode="trunc", onnx_out=n.output[0])
        raise NodeError(f"casting a tensor that depends on the input to {dtype} is not "
                        "supported (float, integer and bool types are)")
    return np.asarray(x).astype(dtype)


def _exact_float_cast(ctx, n, src, to) -> Lin:
    """With `float_ops`, input 0 of a Cast to the float type `to`, refused where the cast could
    round (the rounding is not modelled): allowed from bool, from a float type whose values
    `to` all holds (a widening), and from an integer type on the condition that the integer's
    magnitude is at most `INT_EXACT[to]`: the integer is emitted as an IR value of its own and
    the condition recorded (`ctx.exact_within`) for the float semantics to check."""
    x = ctx.value(n, 0)
    if src == "bool":
        return x
    if src == "int" and to in INT_EXACT:
        x = ctx.materialise(n, 0)
        ctx.exact_within(x.base(), INT_EXACT[to])
        return x
    frm = ctx.elem_type(n.input[0]) if src == "float" else None
    if frm in _HOLDS and to in _HOLDS[frm]:
        return x
    raise NodeError(f"casting a tensor that depends on the input from "
                    f"{type_name(frm) or src} to {type_name(to) or 'an unknown type'} may round; "
                    "with float_ops that rounding is not modelled")


_KIND_DTYPE = {"bool": np.bool_, "int": np.int64, "float": np.float32}
BOOL_OPS = ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Not")


def value_kind(ctx, n) -> str:
    """The ONNX element kind ("bool", "int" or "float") of node n's output when it depends on
    the input: comparisons and logic give bool, Cast its target, CastLike and Where their
    value's; every other op keeps its first input's (ONNX ops are homogeneous in their type)."""
    if n.op_type in BOOL_OPS:
        return "bool"
    if n.op_type == "Cast":
        dt = np.dtype(helper.tensor_dtype_to_np_dtype(ctx.attr(n, "to")))
        return "bool" if dt == bool else "int" if dt.kind in "iu" else "float"
    return ctx.kind(n, 1 if n.op_type in ("CastLike", "Where") else 0)


def _int_result(ctx, n, y: Lin) -> Lin:
    """y, truncated toward zero when the node divides integers (ONNX integer Div)."""
    if ctx.kind(n, 0) != "int":
        return y
    return ctx.elementwise(ToInt, (y,), mode="trunc", onnx_out=n.output[0])


# -- constants and shapes --

@op("Constant", arity=0)
def _constant(ctx, n):
    a = n.attribute[0] if len(n.attribute) == 1 else None
    if a is None or a.name not in ("value", "value_float", "value_floats", "value_int",
                                    "value_ints"):
        raise NodeError("only a dense numeric value is supported")
    what, v = f"constant {n.output[0]!r}", helper.get_attribute_value(a)
    if a.name == "value":
        return ctx.tensor(v, what)
    return ctx.checked(np.array(v, dtype=np.float32 if "float" in a.name else np.int64), what)


@op("ConstantOfShape")
def _constant_of_shape(ctx, n):
    shape = ctx.const(n, 0).astype(np.int64)
    v = ctx.attr(n, "value")
    v = np.zeros(1, np.float32) if v is None else ctx.tensor(v, "value")
    if np.any(shape < 0) or v.size != 1:
        raise bad(f"shape {shape.tolist()} or value of {v.size} elements is invalid")
    return np.full(tuple(shape.tolist()), v.ravel()[0], dtype=v.dtype)


@op("Shape")
def _shape(ctx, n):
    s = shape_of(ctx.value(n, 0))
    start, end = ctx.attr(n, "start", 0), ctx.attr(n, "end", None)
    return np.array(s[start:end], dtype=np.int64)


@op("Size")
def _size(ctx, n):
    return np.array(prod(shape_of(ctx.value(n, 0))), dtype=np.int64)


@op("Range", arity=3)
def _range(ctx, n):
    start, limit, delta = (ctx.const(n, i) for i in range(3))
    if delta == 0:
        raise bad("delta is 0")
    return np.arange(start, limit, delta).astype(np.asarray(start).dtype)


# -- elementwise arithmetic --

def _fold_div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise bad("integer division by zero")
        q = np.abs(a) // np.abs(b)
        return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))
    return np.divide(a, b)


_FOLD2 = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _fold_div,
          "Equal": np.equal, "Greater": np.greater, "Less": np.less,
          "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal,
          "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
          "Pow": lambda a, b: np.power(a.astype(np.float64), b).astype(a.dtype)}


def _fold(fn, *vals):
    with np.errstate(all="ignore"):
        return np.asarray(fn(*(np.asarray(v) for v in vals)))


@op("Add", "Sub", "Mul", "Div", arity=2)
def _arith(ctx, n):
    a, b = ctx.value(n, 0), ctx.value(n, 1)
    kind = n.op_type
    if not isinstance(a, Lin) and not isinstance(b, Lin):
        return _fold(_FOLD2[kind], a, b).astype(np.result_type(np.asarray(a), np.asarray(b)))
    shape = broadcast_shape(shape_of(a), shape_of(b))
    if isinstance(a, Lin) and isinstance(b, Lin):
        A, B = bcast(a, shape), bcast(b, shape)
        if kind in ("Mul", "Div"):  # exact products and quotients (Div: defined where b != 0)
            whole = kind == "Mul" or ctx.kind(n, 0) != "int"
            y = ctx.elementwise(Mul if kind == "Mul" else Div, (A, B),
                                onnx_out=n.output[0] if whole else "")
            return y if kind == "Mul" else _int_result(ctx, n, y)
        return A.plus(B if kind == "Add" else B.neg())
    x_first = isinstance(a, Lin)
    x, c = (a, b) if x_first else (b, a)
    X = bcast(x, shape)
    c = np.broadcast_to(exact(c), shape).ravel()
    if kind == "Add":
        return X.shift(c)
    if kind == "Sub":
        return X.shift(-c) if x_first else X.neg().shift(c)
    if kind == "Mul":
        return X.scale(c)
    if not x_first:  # c / x = c * x ** -1, defined where x != 0
        return _int_result(ctx, n, ctx.elementwise(Pow, (X,), p=-1).scale(c))
    if np.any(c == 0):
        raise bad("divides by zero")
    return _int_result(ctx, n, X.scale(_recip(c)))


@op("Neg")
def _neg(ctx, n):
    x = ctx.value(n, 0)
    return x.neg() if isinstance(x, Lin) else np.negative(x)


@op("Sum", "Mean")
def _sum(ctx, n):
    vals = ctx.values(n)
    if not any(isinstance(v, Lin) for v in vals):
        out = vals[0]
        for v in vals[1:]:
            out = np.add(out, v)
        return out / len(vals) if n.op_type == "Mean" else np.asarray(out)
    shape = broadcast_shape(*(shape_of(v) for v in vals))
    lins = [as_lin(v, shape) for v in vals]
    if ctx.float_ops and len(vals) > 2:
        lins = _separate(ctx, n, lins)
    out = lins[0]
    for v in lins[1:]:
        out = out.plus(v)
    if n.op_type == "Mean" and len(vals) > 1:
        out = out.scale(np.broadcast_to(_recip(np.array([float(len(vals))])), (out.n,)), fixed=True)
    return out


def _separate(ctx, n, lins):
    """With `float_ops`, the summands of a sum of more than two (one rounding op) read distinct
    IR values and hold at most one constant: merged terms could cancel (|w1 + w2| < |w1| +
    |w2|) and shrink the rounding-error bound. A summand reading an IR value an earlier one
    reads is copied into a node of its own."""
    if sum(not v.terms for v in lins) > 1:
        raise NodeError("with float_ops, a sum of more than two tensors may add at most one "
                        "constant (the rounding of adding several is not modelled)")
    seen: set = set()
    out = []
    for v in lins:
        if seen & v.terms.keys():
            v = ctx.copy(v)
        seen |= v.terms.keys()
        out.append(v)
    return out


@op("Pow", arity=2)
def _pow(ctx, n):
    a, b = ctx.value(n, 0), ctx.value(n, 1)
    if not isinstance(a, Lin) and not isinstance(b, Lin):
        return _fold(_FOLD2["Pow"], a, b)
    if isinstance(b, Lin):
        raise NodeError("the exponent depends on the input: " + (
            "an input-dependent base to an input-dependent power (x^y) is not supported"
            if isinstance(a, Lin) else
            "a constant base to an input-dependent power (b^x) is not supported"))
    a = ctx.lin(n, 0)
    shape = broadcast_shape(a.shape, np.shape(b))
    X = bcast(a, shape)
    e = np.broadcast_to(exact(b, "exponent"), shape).ravel()
    if not e.size:
        raise NodeError("the tensor is empty")
    ps = np.unique(e)
    if len(ps) == 1:
        return _pow_one(ctx, X, _exponent(ps[0]), n.output[0])
    # one Pow node per distinct exponent over the elements that take it (selections), the pieces
    # gathered back in element order: exact, as each piece is
    out, ones = None, np.zeros(X.n)
    for v in ps:
        idx = np.flatnonzero(e == v)
        y = _pow_one(ctx, X.select(idx, shape=(len(idx),), fixed=True), _exponent(v))
        if not isinstance(y, Lin):  # x ** 0 = 1
            ones[idx] = 1.0
            continue
        col = np.full(X.n, -1, dtype=np.int64)
        col[idx] = np.arange(len(idx))
        part = y.select(col, shape=shape, fixed=True)
        out = part if out is None else out.plus(part)
    return out.shift(ones)


def _exponent(v) -> Fraction:
    """A Pow exponent as the rational nnsmt lowers, or a refusal."""
    p = Fraction(v)
    if abs(p.numerator) > POW_MAX or p.denominator > POW_MAX:
        raise NodeError(f"the exponent {float(v)!r} is not a rational with numerator and "
                        f"denominator at most {POW_MAX} (a float like 1/3 is not one third): "
                        "x ** p has no exact form nnsmt lowers")
    return p


def _pow_one(ctx, X: Lin, p: Fraction, onnx_out=""):
    """X ** p elementwise: X itself for p = 1, the constant 1 for p = 0 (also at 0, as ONNX),
    else a `Pow` node."""
    if p == 1:
        return X
    if p == 0:
        return np.ones(X.shape, dtype=np.float32)
    return ctx.elementwise(Pow, (X,), p=p, onnx_out=onnx_out)


@op("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", arity=2)
def _compare(ctx, n):
    a, b = ctx.value(n, 0), ctx.value(n, 1)
    if not isinstance(a, Lin) and not isinstance(b, Lin):
        return _fold(_FOLD2[n.op_type], a, b)
    shape = broadcast_shape(shape_of(a), shape_of(b))
    A, B = as_lin(a, shape), as_lin(b, shape)
    if n.op_type in _CMP:  # a op b is (a - b) op 0, exactly
        return ctx.elementwise(Compare, (A.plus(B.neg()),), op=_CMP[n.op_type],
                               onnx_out=n.output[0])
    # booleans are 0/1: with s = a + b, and = relu(s - 1), or = s - and, xor = s - 2 and
    s = A.plus(B)
    both = ctx.relu(s.shift(np.full(s.n, -1.0)))
    if n.op_type == "And":
        return both
    return s.plus(both.scale(np.full(s.n, -1.0 if n.op_type == "Or" else -2.0)))


_CMP = {"Equal": "=", "Greater": ">", "Less": "<", "GreaterOrEqual": ">=", "LessOrEqual": "<="}


_FOLD1 = {"Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Exp": np.exp, "Log": np.log,
          "Floor": np.floor, "Ceil": np.ceil, "Round": np.round, "Sign": np.sign,
          "Not": np.logical_not}


@op(*_FOLD1)
def _unary_const(ctx, n):
    x = ctx.value(n, 0)
    if isinstance(x, Lin):
        return _unary_lin(ctx, n, x)
    x = np.asarray(x)
    out = _fold(_FOLD1[n.op_type], x.astype(np.float64) if x.dtype.kind in "iu" and
                n.op_type in ("Sqrt", "Exp", "Log", "Reciprocal") else x)
    return out if n.op_type == "Not" else out.astype(x.dtype)


def _unary_lin(ctx, n, x: Lin):
    """Exp, Sqrt, Reciprocal, Floor, Ceil, Sign and Not of a tensor that depends on the input."""
    op, out = n.op_type, n.output[0]
    if op == "Exp":
        return ctx.elementwise(Exp, (x,), onnx_out=out)
    if op in ("Sqrt", "Reciprocal"):
        return ctx.elementwise(Pow, (x,), p=Fraction(1, 2) if op == "Sqrt" else -1, onnx_out=out)
    if op in ("Floor", "Ceil"):
        return ctx.elementwise(ToInt, (x,), mode=op.lower(), onnx_out=out)
    if op == "Sign":
        pos = ctx.elementwise(Compare, (x,), op=">")
        return pos.plus(ctx.elementwise(Compare, (x,), op="<").neg())
    if op == "Not":  # of a boolean: 1 - x
        return x.neg().shift(np.ones(x.n))
    raise NodeError("only supported on constants (folded), not on a tensor that depends on the "
                    "input (Exp, Sqrt, Reciprocal, Floor, Ceil, Sign and Not are; Log and Round "
                    "have no exact form nnsmt lowers)")


@op("Where", arity=3)
def _where(ctx, n):
    cond = ctx.value(n, 0)
    if isinstance(cond, Lin):
        return _select(ctx, n, cond, ctx.value(n, 1), ctx.value(n, 2))
    cond = np.asarray(cond).astype(bool)
    return structural([ctx.value(n, 1), ctx.value(n, 2)], lambda x, y: np.where(cond, x, y))


def _select(ctx, n, cond: Lin, a, b):
    """Where(c, a, b) for a condition that depends on the input (a 0/1 value: every boolean the
    lowering makes is one): b + Select(c, a - b), or, when a and b are constants, the affine
    b + (a - b) c."""
    shape = broadcast_shape(shape_of(cond), shape_of(a), shape_of(b))
    C, A, B = bcast(cond, shape), as_lin(a, shape), as_lin(b, shape)
    D = A.plus(B.neg())
    if not D.terms:
        return C.scale(D.b).shift(B.b)
    return ctx.elementwise(Select, (C, D)).plus(B)


# -- layout ops --

def _reshape(v, shape):
    shape = tuple(int(d) for d in shape)
    return v.reshaped(shape) if isinstance(v, Lin) else np.asarray(v).reshape(shape)


@op("Reshape")
def _reshape_op(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    target = [int(t) for t in (ctx.const(n, 1).astype(np.int64) if ctx.value(n, 1) is not None
                               else ctx.attr(n, "shape", []))]
    keep = not ctx.attr(n, "allowzero", 0)
    out = [s[i] if t == 0 and keep and i < len(s) else t for i, t in enumerate(target)]
    if out.count(-1) == 1:
        known = prod([t for t in out if t != -1])
        if known and prod(s) % known == 0:
            out[out.index(-1)] = prod(s) // known
    if any(t < 0 for t in out) or prod(out) != prod(s):
        raise bad(f"cannot reshape {list(s)} to {target}")
    return _reshape(x, out)


@op("Flatten")
def _flatten(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    a = ctx.attr(n, "axis", 1)
    a = a + len(s) if a < 0 else a
    if not 0 <= a <= len(s):
        raise bad(f"axis {ctx.attr(n, 'axis')} is invalid for shape {list(s)}")
    return _reshape(x, (prod(s[:a]), prod(s[a:])))


def _axes_arg(ctx, n, i=1):
    if ctx.value(n, i) is not None:
        return [int(a) for a in ctx.const(n, i).astype(np.int64).ravel()]
    return ctx.attr(n, "axes")


@op("Squeeze")
def _squeeze(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    axes = _axes_arg(ctx, n)
    axes = [i for i, d in enumerate(s) if d == 1] if axes is None else \
        norm_axes(axes, len(s), "Squeeze")
    if any(s[a] != 1 for a in axes):
        raise bad(f"cannot squeeze axes {axes} of shape {list(s)}")
    return _reshape(x, [d for i, d in enumerate(s) if i not in axes])


@op("Unsqueeze")
def _unsqueeze(ctx, n):
    x = ctx.value(n, 0)
    s = list(shape_of(x))
    axes = _axes_arg(ctx, n)
    if axes is None:
        raise bad("no axes given")
    for a in norm_axes(axes, len(s) + len(axes), "Unsqueeze"):
        s.insert(a, 1)
    return _reshape(x, s)


@op("Transpose")
def _transpose(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    perm = ctx.attr(n, "perm") or list(range(len(s)))[::-1]
    if sorted(perm) != list(range(len(s))):
        raise bad(f"perm {list(perm)} is invalid for shape {list(s)}")
    return structural([x], lambda a: np.transpose(a, perm))


@op("Concat")
def _concat(ctx, n):
    vals = ctx.values(n)
    rank = len(shape_of(vals[0]))
    axis = norm_axis(ctx.attr(n, "axis", 0), rank)
    shapes = [shape_of(v) for v in vals]
    if any(len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
           for s in shapes):
        raise bad(f"shapes {[list(s) for s in shapes]} do not concatenate on axis {axis}")
    return structural(vals, lambda *xs: np.concatenate(xs, axis=axis))


@op("Split")
def _split(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    axis = norm_axis(ctx.attr(n, "axis", 0), len(s))
    k = len(n.output)
    if ctx.value(n, 1) is not None:
        sizes = [int(v) for v in ctx.const(n, 1).astype(np.int64).ravel()]
    elif ctx.attr(n, "split") is not None:
        sizes = list(ctx.attr(n, "split"))
    else:
        k = ctx.attr(n, "num_outputs", k)
        step = -(-s[axis] // k)
        sizes = [min(step, s[axis] - i * step) for i in range(k)]
    if len(sizes) != len(n.output) or sum(sizes) != s[axis] or min(sizes) < 0:
        raise bad(f"split {sizes} does not divide axis {axis} of {list(s)} into "
                  f"{len(n.output)} outputs")
    starts = np.cumsum([0] + sizes)
    return [structural([x], lambda a, i=i: np.take(a, np.arange(starts[i], starts[i + 1]),
                                                   axis=axis)) for i in range(len(sizes))]


def _slice_index(start, end, step, d):
    if step == 0:
        raise bad("a slice step is 0")
    start = start + d if start < 0 else start
    end = end + d if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    return np.arange(start, end, step)


@op("Slice")
def _slice(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    if len(n.input) > 1:
        starts, ends = (ctx.const(n, i).astype(np.int64).ravel().tolist() for i in (1, 2))
        axes = ctx.const(n, 3).astype(np.int64).ravel().tolist() \
            if ctx.value(n, 3) is not None else list(range(len(starts)))
        steps = ctx.const(n, 4).astype(np.int64).ravel().tolist() \
            if ctx.value(n, 4) is not None else [1] * len(starts)
    else:
        starts, ends = ctx.attr(n, "starts"), ctx.attr(n, "ends")
        axes = ctx.attr(n, "axes") or list(range(len(starts)))
        steps = [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise bad("starts, ends, axes and steps differ in length")
    picks = [(norm_axis(a, len(s)), _slice_index(b, e, st, s[norm_axis(a, len(s))]))
             for a, b, e, st in zip(axes, starts, ends, steps)]

    def f(a):
        for ax, ix in picks:
            a = np.take(a, ix, axis=ax)
        return a
    return structural([x], f)


def _indices(ctx, n, i, dim):
    ind = ctx.value(n, i)
    if isinstance(ind, Lin):
        raise NodeError("the indices depend on the input; only constant indices are supported")
    ind = np.asarray(ind).astype(np.int64)
    if np.any(ind < -dim) or np.any(ind >= dim):
        raise bad(f"an index is out of range for a dimension of {dim}")
    return np.where(ind < 0, ind + dim, ind)


@op("Gather", arity=2)
def _gather(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    axis = norm_axis(ctx.attr(n, "axis", 0), len(s))
    ind = _indices(ctx, n, 1, s[axis])
    return structural([x], lambda a: np.take(a, ind, axis=axis))


@op("GatherElements", arity=2)
def _gather_elements(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    axis = norm_axis(ctx.attr(n, "axis", 0), len(s))
    ind = _indices(ctx, n, 1, s[axis])
    if ind.ndim != len(s):
        raise bad("indices and data differ in rank")
    return structural([x], lambda a: np.take_along_axis(a, ind, axis=axis))


@op("Expand", arity=2)
def _expand(ctx, n):
    x = ctx.value(n, 0)
    shape = broadcast_shape(shape_of(x), tuple(ctx.const(n, 1).astype(np.int64).tolist()))
    return bcast(x, shape)


@op("Tile", arity=2)
def _tile(ctx, n):
    x = ctx.value(n, 0)
    reps = ctx.const(n, 1).astype(np.int64).ravel().tolist()
    if len(reps) != len(shape_of(x)) or min(reps, default=1) < 0:
        raise bad(f"repeats {reps} do not match the rank of {list(shape_of(x))}")
    return structural([x], lambda a: np.tile(a, reps))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@op("Pad")
def _pad(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    mode = ctx.attr(n, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode not in _PAD_MODES:
        raise NodeError(f"mode {mode!r} is not supported (constant, reflect, edge, wrap)")
    if ctx.value(n, 1) is not None:
        pads = ctx.const(n, 1).astype(np.int64).ravel().tolist()
        value = ctx.value(n, 2)
        if isinstance(value, Lin):
            raise NodeError("the pad value depends on the input; it must be a constant")
        value = np.zeros((), np.float32) if value is None else np.asarray(value).ravel()[:1]
        axes = ctx.const(n, 3).astype(np.int64).ravel().tolist() \
            if ctx.value(n, 3) is not None else list(range(len(s)))
    else:
        pads = list(ctx.attr(n, "pads", []))
        value = np.array(ctx.attr(n, "value", 0.0), np.float32)
        axes = list(range(len(s)))
    axes = [norm_axis(a, len(s)) for a in axes]
    if len(pads) != 2 * len(axes):
        raise bad(f"{len(pads)} pads for {len(axes)} axes")
    widths = [[0, 0] for _ in s]
    for k, a in enumerate(axes):
        widths[a] = [pads[k], pads[k + len(axes)]]
    crop = [(max(-b, 0), d + max(b, 0) + e) for (b, e), d in zip(widths, s)]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    if any(hi - lo < 0 for lo, hi in crop):
        raise bad(f"pads {pads} crop away a whole axis of {list(s)}")
    if mode != "constant" and any(d == 0 for d in s):
        raise bad("cannot reflect or repeat an empty axis")

    def f(a, v):
        if mode == "constant":
            a = np.pad(a, grow, mode="constant", constant_values=np.asarray(v).ravel()[0])
        else:
            a = np.pad(a, grow, mode=_PAD_MODES[mode])
        return a[tuple(slice(lo, hi) for lo, hi in crop)]
    return structural([x, np.asarray(value).reshape(())], f)


def _blocks(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    bs = int(ctx.attr(n, "blocksize"))
    if len(s) != 4 or bs <= 0:
        raise bad(f"needs a 4-D input and a positive blocksize, got {list(s)} and {bs}")
    return x, s, bs


@op("DepthToSpace")
def _depth_to_space(ctx, n):
    x, (b, c, h, w), bs = _blocks(ctx, n)
    if c % (bs * bs):
        raise bad(f"{c} channels are not a multiple of blocksize^2")
    crd = (ctx.attr(n, "mode", b"DCR") in (b"CRD", "CRD"))

    def f(a):
        if crd:
            a = a.reshape(b, c // bs ** 2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            a = a.reshape(b, bs, bs, c // bs ** 2, h, w).transpose(0, 3, 4, 1, 5, 2)
        return a.reshape(b, c // bs ** 2, h * bs, w * bs)
    return structural([x], f)


@op("SpaceToDepth")
def _space_to_depth(ctx, n):
    x, (b, c, h, w), bs = _blocks(ctx, n)
    if h % bs or w % bs:
        raise bad(f"spatial shape {[h, w]} is not a multiple of the blocksize")
    return structural([x], lambda a: a.reshape(b, c, h // bs, bs, w // bs, bs)
                      .transpose(0, 3, 5, 1, 2, 4).reshape(b, c * bs * bs, h // bs, w // bs))


# -- dense linear ops --

def matmul_matrix(sx, W, x_left):
    """(matrix, output shape) of v -> v @ W (x_left) or W @ v for v of shape sx, with numpy's
    matmul rules (1-D operands, broadcast batch dimensions). One block is the dense weight
    (transposed for v @ W), as the chain frontends fold it; several are a sparse matrix."""
    sx = tuple(sx)
    if W.ndim == 0 or len(sx) == 0:
        raise bad("MatMul operands must have rank >= 1")
    sa, sb = (sx, W.shape) if x_left else (W.shape, sx)
    a1, b1 = len(sa) == 1, len(sb) == 1
    As, Bs = ((1,) + sa if a1 else sa), (sb + (1,) if b1 else sb)
    if As[-1] != Bs[-2]:
        raise bad(f"shapes {list(sa)} and {list(sb)} do not multiply")
    batch = broadcast_shape(As[:-2], Bs[:-2])
    m, k, p = As[-2], As[-1], Bs[-1]
    out = list(batch + (m, p))
    if b1:
        del out[-1]
    if a1:
        del out[-2 if not b1 else -1]
    nb = prod(batch)
    if x_left and nb * m == 1 and prod(sx) == k:
        return W.reshape(k, p).T, tuple(out)
    if not x_left and nb * p == 1 and prod(sx) == k:
        return W.reshape(m, k), tuple(out)
    n_out = nb * m * p
    if n_out * k > MAX_ENTRIES:
        raise NodeError(f"MatMul of shapes {list(sa)} and {list(sb)} has {n_out * k} "
                        "entries; too large to lower")
    IA = np.broadcast_to(np.arange(prod(As)).reshape(As), batch + (m, k))
    IB = np.broadcast_to(np.arange(prod(Bs)).reshape(Bs), batch + (k, p))
    ia = np.broadcast_to(IA[..., :, None, :], batch + (m, p, k))
    ib = np.broadcast_to(np.swapaxes(IB, -1, -2)[..., None, :, :], batch + (m, p, k))
    cols, vidx = (ia, ib) if x_left else (ib, ia)
    K = Sp((n_out, prod(sx)), np.arange(0, n_out * k + 1, max(k, 1))[:n_out + 1] if k else
           np.zeros(n_out + 1, np.int64), cols.ravel(), vidx.ravel(), W.ravel(), "weights")
    return K, tuple(out)


@op("MatMul", arity=2)
def _matmul(ctx, n):
    a, b = ctx.value(n, 0), ctx.value(n, 1)
    if not isinstance(a, Lin) and not isinstance(b, Lin):
        return np.matmul(np.asarray(a), np.asarray(b))
    if isinstance(a, Lin) and isinstance(b, Lin):
        return _bilinear_matmul(a, b, ctx)
    x_left = isinstance(a, Lin)
    W = exact(b if x_left else a, "weight")
    K, shape = matmul_matrix(shape_of(a if x_left else b), W, x_left)
    return ctx.linear(n, 0 if x_left else 1, lambda X: X.then(K, shape))


def _bilinear_matmul(a: Lin, b: Lin, ctx) -> Lin:
    """A @ B for two input-dependent tensors (attention's Q K^T, say), with numpy's matmul rules:
    every product A[.., i, k] B[.., k, j] is one element of a Mul node over selections of A and
    B, summed over k by a sparse map."""
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise bad("MatMul operands must have rank >= 1")
    As, Bs = ((1,) + sa if len(sa) == 1 else sa), (sb + (1,) if len(sb) == 1 else sb)
    if As[-1] != Bs[-2] or As[-1] == 0:
        raise bad(f"shapes {list(sa)} and {list(sb)} do not multiply")
    batch = broadcast_shape(As[:-2], Bs[:-2])
    m, k, p = As[-2], As[-1], Bs[-1]
    out = list(batch + (m, p))
    if len(sb) == 1:
        del out[-1]
    if len(sa) == 1:
        del out[-2 if len(sb) != 1 else -1]
    n_out = prod(batch) * m * p
    if n_out * k > MAX_ENTRIES:
        raise NodeError(f"MatMul of shapes {list(sa)} and {list(sb)} needs {n_out * k} products; "
                        "too large to lower")
    IA = np.broadcast_to(np.arange(prod(As)).reshape(As), batch + (m, k))
    IB = np.broadcast_to(np.arange(prod(Bs)).reshape(Bs), batch + (k, p))
    ia = np.broadcast_to(IA[..., :, None, :], batch + (m, p, k)).ravel()
    ib = np.broadcast_to(np.swapaxes(IB, -1, -2)[..., None, :, :], batch + (m, p, k)).ravel()
    P = ctx.elementwise(Mul, (a.select(ia, shape=(len(ia),)), b.select(ib, shape=(len(ib),))))
    K = Sp((n_out, len(ia)), np.arange(0, len(ia) + 1, k), np.arange(len(ia)),
           np.zeros(len(ia), np.int64), np.ones(1))
    return P.then(K, tuple(out))


def _transposed(X: Lin) -> Lin:
    return X.select(np.arange(X.n).reshape(X.shape).T.ravel(), shape=X.shape[::-1])


@op("Gemm", arity=2)
def _gemm(ctx, n):
    a, b, c = ctx.value(n, 0), ctx.value(n, 1), ctx.value(n, 2)
    ta, tb = ctx.attr(n, "transA", 0), ctx.attr(n, "transB", 0)
    alpha, beta = float(ctx.attr(n, "alpha", 1.0)), float(ctx.attr(n, "beta", 1.0))
    if not isinstance(a, Lin) and not isinstance(b, Lin):
        if isinstance(c, Lin):
            raise NodeError("C depends on the input but A and B are constants")
        A, B = np.asarray(a), np.asarray(b)
        y = np.matmul(A.T if ta else A, B.T if tb else B) * A.dtype.type(alpha)
        return y + A.dtype.type(beta) * np.asarray(c) if c is not None and beta else y
    if isinstance(a, Lin) and isinstance(b, Lin):
        raise NodeError("both operands depend on the input; one must be a constant "
                        "(the product of two such tensors is not affine)")
    x_is_a = isinstance(a, Lin)
    W = exact(b if x_is_a else a, "weight")
    if len(shape_of(a)) != 2 or len(shape_of(b)) != 2:
        raise bad(f"operands must be 2-D, got {list(shape_of(a))} and {list(shape_of(b))}")
    if x_is_a:
        xs = a.shape[::-1] if ta else a.shape
        K, shape = matmul_matrix(xs, W.T if tb else W, True)
    else:
        xs = b.shape[::-1] if tb else b.shape
        K, shape = matmul_matrix(xs, W.T if ta else W, False)
    t = ta if x_is_a else tb
    y = ctx.linear(n, 0 if x_is_a else 1,
                   lambda X: (_transposed(X) if t else X).then(K, shape))
    if alpha != 1:
        y = y.scale(np.full(y.n, alpha))
    if c is not None and beta != 0:
        if broadcast_shape(shape_of(c), shape) != tuple(shape):
            raise bad(f"C of shape {list(shape_of(c))} does not broadcast to {list(shape)}")
        if isinstance(c, Lin):
            C = bcast(c, shape)
            if ctx.float_ops:
                C = _separate(ctx, n, [y, C])[1]
            y = y.plus(C.scale(np.full(y.n, beta)))
        else:
            y = y.shift(np.broadcast_to(_mul(beta, exact(c)), shape).ravel())
    return y


def _per_channel(v, shape):
    """A per-channel vector (axis 1) repeated over the tensor, C-order flattened."""
    return np.broadcast_to(np.asarray(v).reshape((1, -1) + (1,) * (len(shape) - 2)),
                           shape).ravel()


@op("BatchNormalization", arity=5)
def _batchnorm(ctx, n):
    x = ctx.value(n, 0)
    if ctx.attr(n, "training_mode", 0) or ctx.attr(n, "spatial", 1) != 1:
        raise NodeError("only inference mode with per-channel (spatial) statistics "
                        "is supported")
    _no_training_outputs(ctx, n, "training statistics")
    s = shape_of(x)
    if len(s) < 2:
        raise bad(f"input of shape {list(s)} has no channel axis")
    C = s[1]
    gamma, beta, mean, var = (exact(ctx.const(n, i), "a parameter") for i in range(1, 5))
    if any(p.shape != (C,) for p in (gamma, beta, mean, var)):
        raise bad(f"parameters must have shape [{C}]")
    eps = float(ctx.attr(n, "epsilon", 1e-5))
    if np.any(var + eps <= 0):
        raise bad("var + epsilon must be positive")
    if not isinstance(x, Lin):
        x = np.asarray(x)
        sh = (1, C) + (1,) * (len(s) - 2)
        return ((x - mean.reshape(sh).astype(x.dtype)) / np.sqrt(var.reshape(sh) + eps)
                .astype(x.dtype) * gamma.reshape(sh).astype(x.dtype)
                + beta.reshape(sh).astype(x.dtype)).astype(x.dtype)
    sc, t = fold_batchnorm(gamma, beta, mean, var, eps)
    if ctx.float_ops:  # two rounding ops, each its own node: (x - mean), then * scale + beta
        d = x.shift(_per_channel(-mean, s))
        d = d if d is x else ctx.stage(d)
        return d.scale(_per_channel(sc, s)).shift(_per_channel(beta, s))
    return x.scale(_per_channel(sc, s)).shift(_per_channel(t, s))


# -- convolutions and pooling: sparse matrices by index arithmetic --

def _ints(ctx, n, name, default, D, what=None):
    v = ctx.attr(n, name)
    v = list(default) if v is None else [int(a) for a in v]
    if len(v) != (2 * D if name == "pads" else D):
        raise bad(f"{what or name} {v} does not match {D} spatial dimensions")
    return v


def _geometry(ctx, n, isp, ks, strides, dil, ceil=False):
    """(output spatial shape, padding at the start of each axis) of a windowed op."""
    D = len(isp)
    auto = ctx.attr(n, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    eff = [(k - 1) * d + 1 for k, d in zip(ks, dil)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-i // s) for i, s in zip(isp, strides)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, eff, isp)]
        pb = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    elif auto == "VALID":
        pb = [0] * D
        out = [(i - e) // s + 1 for i, e, s in zip(isp, eff, strides)]
    elif auto == "NOTSET":
        pads = _ints(ctx, n, "pads", [0] * (2 * D), D)
        pb, pe = pads[:D], pads[D:]
        if min(pads, default=0) < 0:
            raise bad(f"pads {pads} are negative")
        out = []
        for i, b, e, k, s in zip(isp, pb, pe, eff, strides):
            span = i + b + e - k
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= i + b:  # the last window would start in the end padding
                o -= 1
            out.append(o)
    else:
        raise bad(f"auto_pad {auto!r} is invalid")
    if min(out, default=1) < 1:
        raise bad(f"the window does not fit: output shape {out}")
    return tuple(out), pb


def _window_positions(isp, osp, ks, strides, pb, dil, lead):
    """Input positions under every window: (flat spatial index, in-bounds mask), shaped
    (1,)*lead + osp + ks, by broadcasting (no loop over output positions)."""
    D = len(isp)
    flat = np.zeros((1,) * (lead + 2 * D), dtype=np.int64)
    valid = np.ones_like(flat, dtype=bool)
    for d in range(D):
        o = np.arange(osp[d]).reshape((1,) * (lead + d) + (-1,) + (1,) * (2 * D - d - 1))
        k = np.arange(ks[d]).reshape((1,) * (lead + D + d) + (-1,) + (1,) * (D - d - 1))
        p = o * strides[d] - pb[d] + k * dil[d]
        valid = valid & (p >= 0) & (p < isp[d])
        flat = flat * isp[d] + p
    return flat, valid


def _conv_attrs(ctx, n, D, ks):
    ksa = ctx.attr(n, "kernel_shape")
    if ksa is not None and list(ksa) != list(ks):
        raise bad(f"kernel_shape {list(ksa)} does not match the weight's {list(ks)}")
    strides = _ints(ctx, n, "strides", [1] * D, D)
    dil = _ints(ctx, n, "dilations", [1] * D, D)
    if min(strides + dil, default=1) < 1:
        raise bad(f"strides {strides} and dilations {dil} must be positive")
    return strides, dil


def _conv_operands(ctx, n):
    """(input map, exact weight, bias value, spatial rank D, batch N, channels C, spatial shape)
    of a Conv or ConvTranspose node."""
    x = ctx.lin(n, 0)
    W = exact(ctx.const(n, 1), "weight")
    B = ctx.value(n, 2)
    xs = x.shape
    D = len(xs) - 2
    if D < 1 or W.ndim != D + 2:
        raise bad(f"input {list(xs)} and weight {list(W.shape)} are not a convolution")
    return x, W, B, D, xs[0], xs[1], xs[2:]


@op("Conv", arity=2)
def _conv(ctx, n):
    x, W, B, D, N, C, isp = _conv_operands(ctx, n)
    M, Cg, ks = W.shape[0], W.shape[1], W.shape[2:]
    group = int(ctx.attr(n, "group", 1))
    if group < 1 or Cg * group != C or M % group:
        raise bad(f"weight {list(W.shape)} with group {group} does not fit {C} input channels")
    strides, dil = _conv_attrs(ctx, n, D, ks)
    osp, pb = _geometry(ctx, n, isp, ks, strides, dil)
    n_out = N * M * prod(osp)
    if n_out * Cg * prod(ks) > MAX_ENTRIES:
        raise NodeError(f"the convolution has {n_out * Cg * prod(ks)} entries; too large")
    # axes: N, M, *osp, Cg, *ks
    lead = 2
    pos, valid = _window_positions(isp, osp, ks, strides, pb, dil, lead)
    pos = np.expand_dims(pos, lead + D)  # the kernel-channel axis before the kernel offsets
    valid = np.expand_dims(valid, lead + D)
    full = (N, M) + tuple(osp) + (Cg,) + tuple(ks)
    nn_ = np.arange(N).reshape((N,) + (1,) * (len(full) - 1))
    m = np.arange(M).reshape((1, M) + (1,) * (len(full) - 2))
    cg = np.arange(Cg).reshape((1,) * (2 + D) + (Cg,) + (1,) * D)
    chan = (m // (M // group)) * Cg + cg
    cols = (nn_ * C + chan) * prod(isp) + pos
    kflat = np.arange(prod(ks)).reshape((1,) * (3 + D) + tuple(ks))
    vidx = (m * Cg + cg) * prod(ks) + kflat
    valid = np.broadcast_to(valid, full)
    counts = valid.reshape(n_out, -1).sum(axis=1)
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    K = Sp((n_out, x.n), indptr, np.broadcast_to(cols, full)[valid],
           np.broadcast_to(vidx, full)[valid], W.ravel(), "weights")  # one table entry per kernel entry
    shape = (N, M) + tuple(osp)
    y = ctx.linear(n, 0, lambda X: X.then(K, shape))
    if B is not None:
        y = y.shift(_per_channel(exact(ctx.const(n, 2), "bias"), shape))
    return y


@op("ConvTranspose", arity=2)
def _conv_transpose(ctx, n):
    x, W, B, D, N, C, isp = _conv_operands(ctx, n)
    Mg, ks = W.shape[1], W.shape[2:]
    group = int(ctx.attr(n, "group", 1))
    if group < 1 or W.shape[0] != C or C % group:
        raise bad(f"weight {list(W.shape)} with group {group} does not fit {C} input channels")
    M = Mg * group
    auto = ctx.attr(n, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if ctx.attr(n, "output_shape") is not None or auto not in ("NOTSET", "VALID"):
        raise NodeError("only explicit pads are supported (no output_shape, no SAME auto_pad)")
    strides, dil = _conv_attrs(ctx, n, D, ks)
    pads = [0] * (2 * D) if auto == "VALID" else _ints(ctx, n, "pads", [0] * (2 * D), D)
    opad = _ints(ctx, n, "output_padding", [0] * D, D, "output_padding")
    pb, pe = pads[:D], pads[D:]
    osp = tuple(s * (i - 1) + op_ + (k - 1) * d + 1 - b - e for s, i, op_, k, d, b, e in
                zip(strides, isp, opad, ks, dil, pb, pe))
    if min(osp) < 1 or min(pads, default=0) < 0:
        raise bad(f"output shape {list(osp)} is empty or pads {pads} are negative")
    if x.n * Mg * prod(ks) > MAX_ENTRIES:
        raise NodeError("the transposed convolution is too large to lower")
    # axes: N, C, *isp, Mg, *ks ; output position o = i * s - pb + k * d
    full = (N, C) + tuple(isp) + (Mg,) + tuple(ks)
    r = len(full)
    out_flat = np.zeros((1,) * r, dtype=np.int64)
    valid = np.ones((1,) * r, dtype=bool)
    for d in range(D):
        i = np.arange(isp[d]).reshape((1,) * (2 + d) + (-1,) + (1,) * (r - 3 - d))
        k = np.arange(ks[d]).reshape((1,) * (3 + D + d) + (-1,) + (1,) * (D - d - 1))
        o = i * strides[d] - pb[d] + k * dil[d]
        valid = valid & (o >= 0) & (o < osp[d])
        out_flat = out_flat * osp[d] + o
    nn_ = np.arange(N).reshape((N,) + (1,) * (r - 1))
    c = np.arange(C).reshape((1, C) + (1,) * (r - 2))
    mg = np.arange(Mg).reshape((1,) * (2 + D) + (Mg,) + (1,) * D)
    rows = (nn_ * M + (c // (C // group)) * Mg + mg) * prod(osp) + out_flat
    cols = np.arange(x.n).reshape((N, C) + tuple(isp) + (1,) * (D + 1))
    vidx = (c * Mg + mg) * prod(ks) + np.arange(prod(ks)).reshape((1,) * (3 + D) + tuple(ks))
    valid = np.broadcast_to(valid, full)
    rows, cols, vidx = (np.broadcast_to(a, full)[valid] for a in (rows, cols, vidx))
    order = np.lexsort((cols, rows))
    shape = (N, M) + osp
    K = Sp.from_rows((prod(shape), x.n), rows[order], cols[order], vidx[order], W.ravel(), "weights")
    y = ctx.linear(n, 0, lambda X: X.then(K, shape))
    if B is not None:
        y = y.shift(_per_channel(exact(ctx.const(n, 2), "bias"), shape))
    return y


def _pool_setup(ctx, n, x, global_=False):
    xs = x.shape
    D = len(xs) - 2
    if D < 1:
        raise bad(f"input {list(xs)} has no spatial axes")
    isp = xs[2:]
    if global_:
        ks, strides, dil, osp, pb = isp, [1] * D, [1] * D, (1,) * D, [0] * D
    else:
        ks = ctx.attr(n, "kernel_shape")
        if ks is None or len(ks) != D:
            raise bad(f"kernel_shape {ks} does not match {D} spatial dimensions")
        ks = [int(k) for k in ks]
        strides = _ints(ctx, n, "strides", [1] * D, D)
        dil = _ints(ctx, n, "dilations", [1] * D, D)
        if min(strides + dil + ks) < 1:
            raise bad("kernel_shape, strides and dilations must be positive")
        osp, pb = _geometry(ctx, n, isp, ks, strides, dil, ceil=bool(ctx.attr(n, "ceil_mode", 0)))
    return xs, isp, ks, strides, dil, osp, pb


@op("AveragePool", "GlobalAveragePool")
def _average_pool(ctx, n):
    x = ctx.lin(n, 0)
    g = n.op_type.startswith("Global")
    xs, isp, ks, strides, dil, osp, pb = _pool_setup(ctx, n, x, g)
    D = len(isp)
    lead = 2
    pos, valid = _window_positions(isp, osp, ks, strides, pb, dil, lead)
    NC = xs[0] * xs[1]
    full = (xs[0], xs[1]) + tuple(osp) + tuple(ks)
    n_out = NC * prod(osp)
    if n_out * prod(ks) > MAX_ENTRIES:
        raise NodeError("the pooling is too large to lower")
    valid = np.broadcast_to(valid, full)
    if ctx.attr(n, "count_include_pad", 0) and not g:
        _, pe = _pads_end(ctx, n, isp, ks, strides, dil, osp, pb)
        inside = np.ones((1,) * len(full), dtype=bool)  # positions before the end padding's end
        for d in range(D):
            o = np.arange(osp[d]).reshape((1,) * (lead + d) + (-1,) + (1,) * (2 * D - d - 1))
            k = np.arange(ks[d]).reshape((1,) * (lead + D + d) + (-1,) + (1,) * (D - d - 1))
            inside = inside & (o * strides[d] - pb[d] + k * dil[d] < isp[d] + pe[d])
        count = np.broadcast_to(inside, full).reshape(n_out, -1).sum(axis=1)
    else:
        count = valid.reshape(n_out, -1).sum(axis=1)
    if not count.all():
        raise bad("a window covers only padding (its average would divide by 0)")
    chan = np.arange(NC).reshape((xs[0], xs[1]) + (1,) * (2 * D))
    cols = np.broadcast_to(chan * prod(isp) + pos, full)[valid]
    per_row = valid.reshape(n_out, -1).sum(axis=1)
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    u, inv = np.unique(count, return_inverse=True)
    K = Sp((n_out, x.n), indptr, cols, np.repeat(inv, per_row), _recip(u.astype(np.float64)), "fixed")
    shape = (xs[0], xs[1]) + tuple(osp)
    return ctx.linear(n, 0, lambda X: X.then(K, shape))


def _pads_end(ctx, n, isp, ks, strides, dil, osp, pb):
    auto = ctx.attr(n, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    D = len(isp)
    if auto == "NOTSET":
        pads = _ints(ctx, n, "pads", [0] * (2 * D), D)
        return pads[:D], pads[D:]
    eff = [(k - 1) * d + 1 for k, d in zip(ks, dil)]
    total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(osp, strides, eff, isp)]
    return pb, [t - b for t, b in zip(total, pb)]


def max_tree(ctx, leaves, sign=1):
    """Elementwise max (sign 1) or min (-1) of pending maps of one shape, as a balanced tree:
    one Affine + Relu pair per level for all pairs, max(a, b) = a + relu(b - a),
    min(a, b) = a - relu(a - b)."""
    while len(leaves) > 1:
        pairs = [(leaves[i], leaves[i + 1]) for i in range(0, len(leaves) - 1, 2)]
        diffs = [(b.plus(a.neg()) if sign > 0 else a.plus(b.neg())) for a, b in pairs]
        shape = leaves[0].shape
        D = diffs[0] if len(diffs) == 1 else \
            structural(diffs, lambda *xs: np.stack(xs))
        R = ctx.relu(D)
        nxt = []
        for i, (a, _) in enumerate(pairs):
            r = R if len(pairs) == 1 else R.select(i * a.n + np.arange(a.n), shape=shape)
            nxt.append(a.plus(r if sign > 0 else r.neg()))
        leaves = nxt + ([leaves[-1]] if len(leaves) % 2 else [])
    return leaves[0]


def _cheap_input(ctx, n, i=0) -> Lin:
    """Input i, emitted first unless its pending map is monomial (a max reads it many times)."""
    x = ctx.lin(n, i)
    return x if x.cheap() else ctx.materialise(n, i)


@op("MaxPool", "GlobalMaxPool")
def _max_pool(ctx, n):
    x = ctx.lin(n, 0)
    if any(ctx.used(o) for o in n.output[1:] if o):
        raise NodeError("the Indices output is used; only the pooled values are supported")
    g = n.op_type.startswith("Global")
    xs, isp, ks, strides, dil, osp, pb = _pool_setup(ctx, n, x, g)
    D = len(isp)
    pos, valid = _window_positions(isp, osp, ks, strides, pb, dil, 2)
    full = (xs[0], xs[1]) + tuple(osp) + tuple(ks)
    if prod(full) > MAX_ENTRIES:
        raise NodeError("the pooling is too large to lower")
    chan = np.arange(xs[0] * xs[1]).reshape((xs[0], xs[1]) + (1,) * (2 * D))
    col = np.broadcast_to(chan * prod(isp) + pos, full).reshape(-1, prod(ks))
    valid = np.broadcast_to(valid, full).reshape(-1, prod(ks))
    if not valid.any(axis=1).all():
        raise bad("a window covers only padding (its maximum would be -inf)")
    # an out-of-bounds offset repeats the window's first valid element (max is unchanged)
    first = np.take_along_axis(col, valid.argmax(axis=1)[:, None], axis=1)
    col = np.where(valid, col, first)
    X = _cheap_input(ctx, n)
    shape = (xs[0], xs[1]) + tuple(osp)
    cols = list({c.tobytes(): c for c in col.T}.values())  # distinct selections only
    return max_tree(ctx, [X.select(c, shape=shape) for c in cols])


def _reduce_axes(ctx, n, s):
    axes = _axes_arg(ctx, n)
    if not axes:
        if ctx.attr(n, "noop_with_empty_axes", 0):
            return None
        return list(range(len(s)))
    return norm_axes(axes, len(s), n.op_type)


def _reduced_shape(s, axes, keep):
    return tuple((1 if i in axes else d) for i, d in enumerate(s) if keep or i not in axes)


_REDUCE_FOLD = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max,
                "ReduceMin": np.min}


@op(*_REDUCE_FOLD)
def _reduce(ctx, n):
    x = ctx.value(n, 0)
    s = shape_of(x)
    axes = _reduce_axes(ctx, n, s)
    if axes is None:
        return x
    keep = bool(ctx.attr(n, "keepdims", 1))
    shape = _reduced_shape(s, axes, keep)
    if not isinstance(x, Lin):
        x = np.asarray(x)
        return np.asarray(_REDUCE_FOLD[n.op_type](x, axis=tuple(axes), keepdims=keep)
                          ).astype(x.dtype)
    r = prod([s[a] for a in axes])
    if r == 0:
        raise bad("reduces over an empty axis")
    idx = np.moveaxis(np.arange(x.n).reshape(s), axes, list(range(-len(axes), 0)))
    idx = idx.reshape(-1, r)
    if n.op_type in ("ReduceMax", "ReduceMin"):
        X = _cheap_input(ctx, n)
        return max_tree(ctx, [X.select(c, shape=shape) for c in idx.T],
                        1 if n.op_type == "ReduceMax" else -1)
    n_out = idx.shape[0]
    table = np.ones(1) if n.op_type == "ReduceSum" else _recip(np.array([float(r)]))
    K = Sp((n_out, x.n), np.arange(0, n_out * r + 1, r), idx.ravel(),
           np.zeros(n_out * r, np.int64), table, "fixed")
    return ctx.linear(n, 0, lambda X: X.then(K, shape))


# -- nonlinear ops --

@op("Relu")
def _relu(ctx, n):
    x = ctx.value(n, 0)
    if not isinstance(x, Lin):
        return np.maximum(x, 0).astype(np.asarray(x).dtype)
    return ctx.relu(ctx.materialise(n, 0), onnx_out=n.output[0])


def _sigmoid_const(x):
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


@op("Sigmoid")
def _sigmoid(ctx, n):
    x = ctx.value(n, 0)
    if not isinstance(x, Lin):
        return _sigmoid_const(x)
    return ctx.sigmoid(ctx.materialise(n, 0), onnx_out=n.output[0])


@op("Tanh")
def _tanh(ctx, n):
    x = ctx.value(n, 0)
    if not isinstance(x, Lin):
        return np.tanh(x)
    # tanh(x) = 2 sigmoid(2x) - 1, exactly
    s = ctx.sigmoid(x.scale(np.full(x.n, 2.0), fixed=True), onnx_in="")
    return s.scale(np.full(x.n, 2.0), fixed=True).shift(np.full(x.n, -1.0))


def max_const(ctx, x: Lin, c, onnx_out="") -> Lin:
    """max(x, c) for a constant c (broadcast to x): relu(x) when c is 0, else c + relu(x - c)."""
    c = np.broadcast_to(exact(c), x.shape).ravel()
    if not np.any(c):
        return ctx.relu(x, onnx_out=onnx_out)
    return ctx.relu(x.shift(-c)).shift(c)


def min_const(ctx, x: Lin, c) -> Lin:
    """min(x, c) = x - relu(x - c)."""
    c = np.broadcast_to(exact(c), x.shape).ravel()
    return x.plus(ctx.relu(x.shift(-c)).neg())


@op("Clip")
def _clip(ctx, n):
    x = ctx.value(n, 0)
    if len(n.input) > 1 or ctx.opset >= 11:
        lo, hi = ctx.value(n, 1), ctx.value(n, 2)
        if isinstance(lo, Lin) or isinstance(hi, Lin):
            raise NodeError("the bounds depend on the input; they must be constants")
    else:
        lo, hi = ctx.attr(n, "min"), ctx.attr(n, "max")
    if not isinstance(x, Lin):
        x = np.asarray(x)
        out = x if lo is None else np.maximum(x, lo)
        return (out if hi is None else np.minimum(out, hi)).astype(x.dtype)
    lo = None if lo is None or np.all(np.asarray(lo) <= -np.finfo(np.float32).max) else lo
    hi = None if hi is None or np.all(np.asarray(hi) >= np.finfo(np.float32).max) else hi
    if lo is not None and hi is not None and np.any(np.asarray(lo) > np.asarray(hi)):
        raise NodeError("min > max is not supported")
    # x is read twice by min(x, hi) = x - relu(x - hi), and relu(x) needs x as a node: emit a
    # dense or sparse pending map first; max(x, lo) = lo + relu(x - lo) composes it instead
    if (lo is None and not x.cheap()) or (lo is not None and not np.any(lo)):
        x = ctx.materialise(n, 0)
    y = x if lo is None else max_const(ctx, x, lo, onnx_out=n.output[0] if hi is None else "")
    return y if hi is None else min_const(ctx, y, hi)


@op("HardSigmoid")
def _hard_sigmoid(ctx, n):
    x = ctx.lin(n, 0)
    alpha = float(ctx.attr(n, "alpha", 0.2))
    beta = float(ctx.attr(n, "beta", 0.5))
    y = x.scale(np.full(x.n, alpha)).shift(np.full(x.n, beta))
    return min_const(ctx, max_const(ctx, y, 0.0), 1.0)


def _leaky(ctx, n, slope):
    X = ctx.materialise(n, 0)
    a = np.broadcast_to(exact(slope, "slope"), X.shape).ravel()
    if not np.any(a):
        return ctx.relu(X, onnx_out=n.output[0])
    # leaky(x) = a x + (1 - a) relu(x), exactly (a is exact; 1 - a an exact sum)
    R = ctx.relu(X)
    return X.scale(a).plus(R.scale(_add(np.ones(len(a)), -a)))


@op("LeakyRelu")
def _leaky_relu(ctx, n):
    x = ctx.value(n, 0)
    alpha = np.float32(ctx.attr(n, "alpha", 0.01))
    if not isinstance(x, Lin):
        x = np.asarray(x)
        return np.where(x >= 0, x, x * alpha).astype(x.dtype)
    return _leaky(ctx, n, alpha)


@op("PRelu", arity=2)
def _prelu(ctx, n):
    x, slope = ctx.value(n, 0), ctx.value(n, 1)
    if isinstance(slope, Lin):
        raise NodeError("the slope depends on the input; it must be a constant")
    if not isinstance(x, Lin):
        x = np.asarray(x)
        return np.where(x >= 0, x, x * slope).astype(x.dtype)
    if broadcast_shape(x.shape, np.shape(slope)) != x.shape:
        raise bad(f"slope of shape {list(np.shape(slope))} does not broadcast to {list(x.shape)}")
    return _leaky(ctx, n, slope)


@op("Abs")
def _abs(ctx, n):
    x = ctx.value(n, 0)
    if not isinstance(x, Lin):
        return np.abs(x)
    X = ctx.materialise(n, 0)
    # |x| = 2 relu(x) - x: one relu per element (relu(x) + relu(-x) would need two)
    return ctx.relu(X).scale(np.full(X.n, 2.0), fixed=True).plus(X.neg())


@op("Max", "Min")
def _max_min(ctx, n):
    vals = ctx.values(n)
    if not any(isinstance(v, Lin) for v in vals):
        fn = np.maximum if n.op_type == "Max" else np.minimum
        out = np.asarray(vals[0])
        for v in vals[1:]:
            out = fn(out, v)
        return out
    shape = broadcast_shape(*(shape_of(v) for v in vals))
    sign = 1 if n.op_type == "Max" else -1
    consts = [np.broadcast_to(exact(v), shape) for v in vals if not isinstance(v, Lin)]
    lins = [bcast(ctx.lin(n, i) if ctx.lin(n, i).cheap() else ctx.materialise(n, i), shape)
            for i, v in enumerate(vals) if isinstance(v, Lin)]
    y = max_tree(ctx, lins, sign)
    if consts:
        c = consts[0]
        for v in consts[1:]:
            c = np.maximum(c, v) if sign > 0 else np.minimum(c, v)
        y = max_const(ctx, y, c) if sign > 0 else min_const(ctx, y, c)
    return y


@op("Softmax")
def _softmax(ctx, n):
    x = ctx.lin(n, 0)
    s = x.shape
    axis = ctx.attr(n, "axis", 1 if ctx.opset < 13 else -1)
    a = axis + len(s) if axis < 0 else axis
    if not 0 <= a < max(len(s), 1):
        raise bad(f"axis {axis} is invalid for shape {list(s)}")
    # opset < 13 normalises over dims [axis:], later opsets over dim axis alone
    groups = prod(s[:a]) * (1 if ctx.opset < 13 else prod(s[a + 1:]))
    if groups != 1 or not ctx.is_final(n.output[0]):
        return _softmax_exact(ctx, n, x, a)
    # dropped: the IR output is the logits (same argmax and pairwise order, not the same values)
    ctx.drop_softmax(n.output[0], n.input[0])
    return x


def _softmax_exact(ctx, n, x: Lin, a: int) -> Lin:
    """softmax(x)_i = exp(x_i) / sum of exp(x_j) over i's group, exactly: Exp, the affine map
    summing each group (broadcast back to every member), Div (its divisor is never 0)."""
    s = x.shape
    if ctx.opset < 13:  # the 2-D coercion at axis: a group is a row of [prod(s[:a]), prod(s[a:])]
        gid = np.arange(x.n) // prod(s[a:])
    else:  # the elements that differ only in axis a
        coords = np.indices(s)
        coords[a] = 0
        gid = np.ravel_multi_index(tuple(coords), s).ravel()
    _, gid = np.unique(gid, return_inverse=True)
    r = x.n // (int(gid.max()) + 1)
    if x.n * r > MAX_ENTRIES:
        raise NodeError(f"the Softmax's group sums have {x.n * r} entries; too large to lower")
    members = np.argsort(gid, kind="stable").reshape(-1, r)  # each group's elements, ascending
    K = Sp((x.n, x.n), np.arange(0, x.n * r + 1, r), members[gid].ravel(),
           np.zeros(x.n * r, np.int64), np.ones(1))
    E = ctx.elementwise(Exp, (x,))
    return ctx.elementwise(Div, (E, E.then(K, s)), onnx_out=n.output[0])


@op("ArgMax")
def _argmax(ctx, n):
    x = ctx.lin(n, 0)
    if not ctx.is_final(n.output[0]):
        raise NodeError("ArgMax is only supported as a graph output")
    if ctx.attr(n, "select_last_index", 0):
        raise NodeError("select_last_index is not supported (ties pick the first index)")
    axis = norm_axis(ctx.attr(n, "axis", 0), len(x.shape))
    if x.shape[axis] != x.n:
        raise NodeError(f"ArgMax over axis {axis} of shape {list(x.shape)}: only an argmax "
                        "over all elements is supported")
    return ctx.argmax(ctx.materialise(n, 0), onnx_out=n.output[0])


SUPPORTED_OPS = tuple(sorted(OPS))
