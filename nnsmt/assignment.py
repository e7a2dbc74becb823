"""VNN-LIB 2 assignments and queries: the verifier interface's command-line assignment format
(standard section 5.3.1), its serialised TensorProto files, and VNN-LIB 1.0 properties written
as VNN-LIB 2.0 queries.

Values read are exact: a decimal becomes the `Fraction` it writes (`0.1` is 1/10, whatever the
declared type), so nnsmt replays a verifier's assignment exactly and in onnxruntime as it
replays every solver's model. Values written are the shortest decimal that reads back as the
same value of the declared type (`real`: exact when the decimal terminates; see
`format_value`). The serialised format needs no `onnx` import: a TensorProto is a handful of
protobuf fields, encoded and decoded here (tests check both directions against onnx).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import InputError, UnsupportedError
from .printer import decimal
from .terms import Add, And, Bool, Cmp, Div, Dot, Exp, Floor, Ite, Mul, Not, Num, Or, Var, unknown_term

__all__ = ["Decl", "AssignmentError", "KINDS", "ONNX_TYPES", "format_value", "format_assignment",
           "parse_number", "parse_assignment", "tensor_bytes", "write_pb", "read_pb", "decimal",
           "assertion_text", "vnnlib1_to_2", "decls_of", "flat_names", "as_model"]

KINDS = ("input", "hidden", "output")

FLOAT_TYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64}
INT_TYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
             "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64}

# VNN-LIB element type -> ONNX TensorProto.DataType (onnx.proto); `real` is serialised as double
ONNX_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
              "int64": 7, "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13,
              "complex64": 14, "complex128": 15, "bfloat16": 16, "float8e4m3fn": 17,
              "float8e4m3fnuz": 18, "float8e5m2": 19, "float8e5m2fnuz": 20, "float4e2m1": 23,
              "real": 11}
VNNLIB_TYPES = frozenset(ONNX_TYPES)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # the grammar's VariableName


class AssignmentError(InputError):
    """A verifier's assignment (or one nnsmt was asked to write) that does not fit the
    declarations; the message names the line (or file) at fault."""


@dataclass(frozen=True)
class Decl:
    """One declared VNN-LIB 2 variable.

    Attributes:
        name: the variable's name in the query.
        dtype: its VNN-LIB element type: float32, float64, float16, real, int32, ...
        shape: its dimensions (`()` for a scalar).
        kind: "input", "hidden" or "output".
        network: the declaring network's name.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    kind: str
    network: str = ""

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.kind not in KINDS:
            raise InputError(f"variable {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.dtype not in VNNLIB_TYPES:
            raise InputError(f"variable {self.name}: {self.dtype!r} is not a VNN-LIB element type")
        if any(d < 0 for d in self.shape):
            raise InputError(f"variable {self.name}: negative dimension in {list(self.shape)}")

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def header(self) -> str:
        """The 5.3.1 header line: `name type [d1,d2]`, no spaces inside the brackets."""
        return f"{self.name} {self.dtype} [{','.join(map(str, self.shape))}]"

    def ref(self, k: int) -> str:
        """The query's reference to flat (row-major) element `k`: `X[0,3]`, or `X` for a scalar."""
        if not 0 <= k < self.size:
            raise InputError(f"element {k} is outside {self.name} {list(self.shape)}")
        if not self.shape:
            return self.name
        return f"{self.name}[{','.join(map(str, np.unravel_index(k, self.shape)))}]"


# ---------------------------------------------------------------------------------------------
# Numbers


def _exact(v) -> Fraction:
    if isinstance(v, (Fraction, int, np.integer)):
        return Fraction(v)
    f = float(v)
    if not math.isfinite(f):
        raise AssignmentError(f"value {f} is not a finite number")
    return Fraction(f)


def format_value(v, dtype: str) -> str:
    """One value as the 5.3.1 format writes it, in the declared type.

    float16/32/64: the shortest positional decimal that reads back as the same value of that
    type (`1.0`, `0.1`), after rounding `v` to the type (a Fraction converts correctly rounded:
    via float64, whose 53 bits make the double rounding innocuous). Integer types and bool:
    the integer (`v` must be one, in range). real: the exact decimal when `v` has a terminating
    one (every float and every decimal does), else the shortest float64 decimal of `v` -- the
    text format then rounds (nnsmt's `--json` keeps the exact rational).
    """
    if dtype in FLOAT_TYPES:
        f = float(v if isinstance(v, (float, np.floating)) else _exact(v))  # a float keeps -0.0
        if not math.isfinite(f):
            raise AssignmentError(f"value {f} is not a finite number")
        with np.errstate(over="ignore"):
            x = FLOAT_TYPES[dtype](f)
        if not np.isfinite(x):
            raise AssignmentError(f"value {f:g} is outside the range of {dtype}")
        return np.format_float_positional(x, unique=True, trim="0")
    if dtype in INT_TYPES or dtype == "bool":
        q = _exact(v)
        lo, hi = (0, 1) if dtype == "bool" else (np.iinfo(INT_TYPES[dtype]).min, np.iinfo(INT_TYPES[dtype]).max)
        if q.denominator != 1 or not lo <= q <= hi:
            raise AssignmentError(f"value {q} is not a {dtype}")
        return str(q.numerator)
    if dtype == "real":
        q = _exact(v)
        return decimal(q) or np.format_float_positional(float(q), unique=True, trim="0")
    raise UnsupportedError(f"nnsmt cannot write {dtype} values")


_NUMBER = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\Z")
_MAX_EXP = 10_000  # 10**exp is exact, but an absurd exponent would hang


def parse_number(text: str) -> Fraction:
    """The exact rational of a decimal (`-0.5`, `1e-3`, `.5`, `2.`); ValueError otherwise
    (inf and nan included: no exact value)."""
    m = _NUMBER.match(text)
    if not m or not (m[2] or m[3]):
        raise ValueError(f"{text[:40]!r} is not a number" + (
            " (an assignment value must be finite)" if text.lower().lstrip("+-") in ("inf", "infinity", "nan") else ""))
    sign, whole, frac, exp = m.groups()
    frac = frac or ""
    e = int(exp or 0) - len(frac)
    if abs(e) > _MAX_EXP or len(whole) + len(frac) > _MAX_EXP:
        raise ValueError(f"{text[:40]!r} has too many digits or too large an exponent")
    n = int(whole + frac or "0")
    q = Fraction(n * 10**e) if e >= 0 else Fraction(n, 10**-e)
    return -q if sign == "-" else q


# ---------------------------------------------------------------------------------------------
# The command-line format (5.3.1)


def format_assignment(items: Iterable[tuple[Decl, Sequence]]) -> str:
    """The 5.3.1 text of an assignment: per variable its header `name type [d1,d2]`, then one
    value per line in row-major order (`format_value`); ends with a newline. The caller lists
    the variables in declaration order, as the standard asks."""
    lines = []
    for decl, values in items:
        values = list(values)
        if len(values) != decl.size:
            raise AssignmentError(f"{decl.header} needs {decl.size} values, got {len(values)}")
        lines.append(decl.header)
        lines.extend(format_value(v, decl.dtype) for v in values)
    return "".join(line + "\n" for line in lines)


_HEADER = re.compile(r"\s*(\S+)\s+(\S+)\s*\[([^\]]*)\]\s*\Z")


def _value(token: str, dtype: str) -> Fraction:
    if dtype == "bool" and token.lower() in ("true", "false"):
        return Fraction(token.lower() == "true")
    q = parse_number(token)
    if (dtype in INT_TYPES or dtype == "bool") and q.denominator != 1:
        raise ValueError(f"{token!r} is not an integer, but the variable is {dtype}")
    return q


def parse_assignment(text: str, decls: Sequence[Decl], first_line: int = 1) -> dict[str, list[Fraction]]:
    """Read a 5.3.1 assignment (a verifier's stdout after its verdict line) exactly.

    Variables may come in any order; every input must be there, hidden and output variables
    may be left out (those present are returned too). A header may write its dimensions with
    spaces (`[2, 2]`), and its type may be `real`/`Real` whatever the declaration says (the
    standard's own example does that); blank lines are skipped. `first_line` numbers the first
    line of `text` in messages (2 when the verdict line came before it).

    Returns:
        name -> the variable's values in row-major order, as exact Fractions.

    Raises:
        AssignmentError: `line N: ...` for an unknown or repeated variable, a type or shape
            that is not the declared one, a value that is not a finite number (or not an integer
            for an integer type), too few or too many values, text before the first header;
            or the first input that has no values.
    """
    by_name = {d.name: d for d in decls}
    out: dict[str, list[Fraction]] = {}
    cur: Decl | None = None
    cur_line = 0

    def close(at: int):
        if cur is not None and len(out[cur.name]) != cur.size:
            raise AssignmentError(f"line {cur_line}: {cur.name} is declared {cur.header.split(' ', 1)[1]}, "
                                  f"so it needs {cur.size} values, but {len(out[cur.name])} follow "
                                  f"(up to line {at})")

    n = first_line - 1
    for n, raw in enumerate(text.splitlines(), first_line):
        line = raw.strip()
        if not line:
            continue
        if " " not in line and "\t" not in line:  # a value
            if cur is None:
                raise AssignmentError(f"line {n}: value {line[:40]!r} before any variable header "
                                      "(expected `name type [dims]`)")
            if len(out[cur.name]) == cur.size:
                raise AssignmentError(f"line {n}: {cur.name} is declared with {cur.size} values, "
                                      f"and this is one more ({line[:40]!r})")
            try:
                out[cur.name].append(_value(line, cur.dtype))
            except ValueError as e:
                raise AssignmentError(f"line {n}: value of {cur.name}: {e}") from None
            continue
        close(n - 1)
        m = _HEADER.match(line)
        if not m:
            raise AssignmentError(f"line {n}: {line[:60]!r} is neither a value nor a header "
                                  "`name type [dims]`")
        name, dtype, dims = m.groups()
        if name not in by_name:
            known = ", ".join(by_name) if len(by_name) <= 8 else ", ".join(list(by_name)[:8]) + ", ..."
            raise AssignmentError(f"line {n}: unknown variable {name!r} (the query declares {known})")
        if name in out:
            raise AssignmentError(f"line {n}: {name} is assigned twice")
        d = by_name[name]
        if dtype != d.dtype and dtype.lower() != "real":
            raise AssignmentError(f"line {n}: {name} has type {dtype}, but the query declares it {d.dtype}")
        try:
            shape = tuple(int(s) for s in dims.replace(" ", "").split(",")) if dims.strip() else ()
        except ValueError:
            raise AssignmentError(f"line {n}: {name}: malformed dimensions [{dims}]") from None
        if shape != d.shape:
            raise AssignmentError(f"line {n}: {name} has shape [{','.join(map(str, shape))}], but the "
                                  f"query declares [{','.join(map(str, d.shape))}]")
        cur, cur_line = d, n
        out[name] = []
    close(n)
    missing = [d for d in decls if d.kind == "input" and d.name not in out]
    if missing:
        raise AssignmentError(f"no values for input {missing[0].header} (after line {n}): a satisfying "
                              "assignment gives every input")
    return out


# ---------------------------------------------------------------------------------------------
# The serialised format: one TensorProto per variable (written and read without onnx)

# onnx.proto's TensorProto fields
_DIMS, _DATA_TYPE, _FLOAT_DATA, _INT32_DATA, _INT64_DATA, _NAME_F, _RAW, _DOUBLE_DATA, _UINT64_DATA = \
    1, 2, 4, 5, 7, 8, 9, 10, 11
_EXTERNAL_DATA, _DATA_LOCATION = 13, 14

_NUMPY = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
          9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64s are their two's complement (ten bytes)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _numpy_type(dtype: str):
    code = ONNX_TYPES.get(dtype)
    if code not in _NUMPY:
        raise UnsupportedError(f"nnsmt cannot serialise {dtype} values")
    return code, _NUMPY[code]


def tensor_bytes(decl: Decl, values: Sequence) -> bytes:
    """A serialised ONNX TensorProto of `values` (row-major) with the declaration's name,
    shape and element type (`real`: double), data in `raw_data` as onnx's own
    `numpy_helper.from_array` writes it."""
    code, np_t = _numpy_type(decl.dtype)
    values = list(values)
    if len(values) != decl.size:
        raise AssignmentError(f"{decl.header} needs {decl.size} values, got {len(values)}")
    if np_t in (np.float16, np.float32, np.float64):
        for v in values:  # the same range check as the text format
            format_value(v, "float64" if decl.dtype == "real" else decl.dtype)
        arr = np.array([float(_exact(v)) for v in values], dtype=np.float64).astype(np_t)
    else:
        arr = np.array([int(format_value(v, "bool" if np_t is np.bool_ else decl.dtype)) for v in values],
                       dtype=np_t)
    out = bytearray()
    for d in decl.shape:
        out += _key(_DIMS, 0) + _varint(d)
    out += _key(_DATA_TYPE, 0) + _varint(code)
    name = decl.name.encode()
    out += _key(_NAME_F, 2) + _varint(len(name)) + name
    raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    out += _key(_RAW, 2) + _varint(len(raw)) + raw
    return bytes(out)


def write_pb(folder, decl: Decl, values: Sequence) -> Path:
    """Write `<folder>/<name>.pb` (`tensor_bytes`); returns its path."""
    path = Path(folder) / f"{decl.name}.pb"
    path.write_bytes(tensor_bytes(decl, values))
    return path


def _fields(buf: bytes, where: str):
    """(field, wire type, value) of a protobuf message: ints for varints, bytes otherwise."""
    i, n = 0, len(buf)

    def varint():
        nonlocal i
        shift = r = 0
        while True:
            if i >= n or shift > 63:
                raise AssignmentError(f"{where}: truncated or malformed TensorProto")
            b = buf[i]
            i += 1
            r |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return r

    while i < n:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise AssignmentError(f"{where}: truncated TensorProto")
            yield field, wire, buf[i:i + size]
            i += size
        elif wire == 2:
            size = varint()
            if i + size > n:
                raise AssignmentError(f"{where}: truncated TensorProto")
            yield field, wire, buf[i:i + size]
            i += size
        else:
            raise AssignmentError(f"{where}: malformed TensorProto (wire type {wire})")


def _packed(b: bytes) -> bytes:
    """A packed varint run, re-keyed so `_fields` can read it (field 1, varint)."""
    out, start = bytearray(), 0
    for i, c in enumerate(b):
        if not c & 0x80:
            out += b"\x08" + b[start:i + 1]
            start = i + 1
    if start != len(b):
        raise AssignmentError("truncated packed varints in a TensorProto")
    return bytes(out)


def read_pb(path, decl: Decl) -> list[Fraction]:
    """The values of a serialised TensorProto (`raw_data` or the typed data fields), exactly,
    checked against the declaration's shape and element type (`real`: double).

    Raises:
        AssignmentError: an unreadable or malformed file, another shape or element type,
            external data, or a value that is not finite.
    """
    where = str(path)
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise AssignmentError(f"{where}: cannot read: {e.strerror or e}") from None
    dims: list[int] = []
    code = 0
    raw: bytes | None = None
    ints: list[int] = []
    floats = bytearray()
    doubles = bytearray()
    for field, wire, v in _fields(buf, where):
        if field == _DIMS:
            dims += [v] if wire == 0 else [u for _, _, u in _fields(_packed(v), where)]
        elif field == _DATA_TYPE and wire == 0:
            code = v
        elif field == _RAW and wire == 2:
            raw = v
        elif field in (_INT32_DATA, _INT64_DATA, _UINT64_DATA):
            ints += [v] if wire == 0 else [u for _, _, u in _fields(_packed(v), where)]
        elif field == _FLOAT_DATA:
            floats += v
        elif field == _DOUBLE_DATA:
            doubles += v
        elif field == _EXTERNAL_DATA or (field == _DATA_LOCATION and v == 1):
            raise AssignmentError(f"{where}: the tensor's data is stored externally; nnsmt reads it "
                                  "only from the file itself")
    dims = [d - (1 << 64) if d >= 1 << 63 else d for d in dims]
    if tuple(dims) != decl.shape:
        raise AssignmentError(f"{where}: {decl.name} has shape {dims}, but the query declares "
                              f"{list(decl.shape)}")
    want, np_t = _numpy_type(decl.dtype)
    if code != want:
        names = {c: t for t, c in ONNX_TYPES.items() if t != "real"}
        raise AssignmentError(f"{where}: {decl.name} has element type {names.get(code, code)}, but the "
                              f"query declares {decl.dtype}")
    if raw is not None:
        if len(raw) != decl.size * np.dtype(np_t).itemsize:
            raise AssignmentError(f"{where}: {len(raw)} bytes of raw data for {decl.size} {decl.dtype} values")
        arr = np.frombuffer(raw, dtype=np.dtype(np_t).newbyteorder("<"))
    elif np_t is np.float32:
        arr = np.frombuffer(bytes(floats), dtype="<f4")
    elif np_t is np.float64:
        arr = np.frombuffer(bytes(doubles), dtype="<f8")
    elif np_t is np.float16:  # int32_data holds the bits
        arr = np.array(ints, dtype=np.uint64).astype(np.uint16).view(np.float16)
    else:  # varints: two's complement (64 bits) for the signed types
        signed = np.issubdtype(np_t, np.signedinteger)
        arr = np.array([u - (1 << 64) if signed and u >= 1 << 63 else u for u in ints], dtype=object)
    if len(arr) != decl.size:
        raise AssignmentError(f"{where}: {len(arr)} values for {decl.header}")
    out = []
    for v in arr.tolist():
        if isinstance(v, float) and not math.isfinite(v):
            raise AssignmentError(f"{where}: {decl.name} holds {v}, not a finite number")
        out.append(Fraction(v))
    return out


# ---------------------------------------------------------------------------------------------
# VNN-LIB 2.0 queries

_NEGATE = {"<=": ">", "<": ">=", ">=": "<", ">": "<=", "=": "!=", "!=": "="}
_OPS = {"<=": "<=", "<": "<", ">=": ">=", ">": ">", "=": "==", "!=": "!="}


def _simplify(t):
    """`t` with negations pushed to the comparisons (VNN-LIB 2 has no `not`) and variable-free
    atoms decided: a Bool, or a formula without Bool and Not."""
    match t:
        case Bool():
            return t
        case Not():
            a = t.arg
            match a:
                case Bool():
                    return Bool(not a.value)
                case Not():
                    return _simplify(a.arg)
                case Cmp():
                    return _simplify(_NotEq(a.lhs, a.rhs) if a.op == "=" else Cmp(_NEGATE[a.op], a.lhs, a.rhs))
                case _NotEq():
                    return _simplify(Cmp("=", a.lhs, a.rhs))
                case And():
                    return _simplify(Or(tuple(Not(x) for x in a.args)))
                case Or():
                    return _simplify(And(tuple(Not(x) for x in a.args)))
            raise UnsupportedError(f"VNN-LIB 2 cannot write the negation of {type(a).__name__}")
        case Cmp() | _NotEq():
            if _has_var(t.lhs) or _has_var(t.rhs):
                return t
            a, b = _const(t.lhs), _const(t.rhs)
            return Bool(a != b if isinstance(t, _NotEq) else
                        {"<=": a <= b, "<": a < b, ">=": a >= b, ">": a > b, "=": a == b}[t.op])
        case And() | Or():
            unit = isinstance(t, And)  # the neutral element: true for and, false for or
            args = []
            for a in t.args:
                s = _simplify(a)
                if isinstance(s, Bool):
                    if s.value != unit:
                        return Bool(not unit)
                    continue
                args.append(s)
            return type(t)(tuple(args)) if args else Bool(unit)
    raise UnsupportedError(f"VNN-LIB 2 has no boolean {type(t).__name__} term")


@dataclass(frozen=True)
class _NotEq:
    lhs: object
    rhs: object
    op = "!="


def _const(t) -> Fraction:
    """The value of a variable-free arithmetic term."""
    match t:
        case Num():
            return t.value
        case Add():
            return sum((_const(a) for a in t.args), Fraction(0))
        case Mul():
            return math.prod((_const(a) for a in t.args), start=Fraction(1))
        case Div():
            d = _const(t.den)
            if d == 0:
                raise UnsupportedError("division by zero in a constant")
            return _const(t.num) / d
    unknown_term(t, "nnsmt.assignment._const")


def _has_var(t) -> bool:
    match t:
        case Var():
            return True
        case Num():
            return False
        case Add() | Mul():
            return any(_has_var(a) for a in t.args)
        case Div():
            return _has_var(t.num) or _has_var(t.den)
        case Dot():
            return True
        case Ite() | Exp() | Floor():
            return True  # refused when written
    unknown_term(t, "nnsmt.assignment._has_var")


class _Writer:
    """Terms as VNN-LIB 2 text; `var(name)` is (reference, element type) of an nnsmt name."""

    def __init__(self, var: Callable[[str], tuple[str, str]]):
        self.var = var

    def vars_of(self, t, out: set):
        match t:
            case Var():
                out.add(self.var(t.name)[1])
            case Add() | Mul():
                for a in t.args:
                    self.vars_of(a, out)
            case Div():
                self.vars_of(t.num, out)
                self.vars_of(t.den, out)
        return out

    def boolean(self, t) -> str:
        if isinstance(t, (Cmp, _NotEq)):
            types = self.vars_of(t.lhs, set()) | self.vars_of(t.rhs, set())
            if len(types) > 1:
                raise UnsupportedError(f"a comparison mixes element types {', '.join(sorted(types))}: "
                                       "VNN-LIB 2 does not coerce between them")
            dtype = types.pop()
            return f"({_OPS[t.op]} {self.real(t.lhs, dtype)} {self.real(t.rhs, dtype)})"
        if isinstance(t, (And, Or)):
            op = "and" if isinstance(t, And) else "or"
            return f"({op} {' '.join(self.boolean(a) for a in t.args)})"
        raise UnsupportedError(f"VNN-LIB 2 has no boolean {type(t).__name__} term")

    def real(self, t, dtype: str) -> str:
        match t:
            case Var():
                return self.var(t.name)[0]
            case Num():
                return self.num(t.value, dtype)
            case Add():
                return t.args and f"(+ {' '.join(self.real(a, dtype) for a in t.args)})" or self.num(Fraction(0), dtype)
            case Mul():
                return t.args and f"(* {' '.join(self.real(a, dtype) for a in t.args)})" or self.num(Fraction(1), dtype)
            case Div() if isinstance(t.den, Num) and t.den.value != 0:
                return f"(* {self.num(1 / t.den.value, dtype)} {self.real(t.num, dtype)})"
        raise UnsupportedError(f"VNN-LIB 2 arithmetic has +, - and * only: cannot write a "
                               f"{type(t).__name__} term")

    @staticmethod
    def num(q: Fraction, dtype: str) -> str:
        if dtype in INT_TYPES:
            if q.denominator != 1:
                raise UnsupportedError(f"constant {q} in a comparison of {dtype} values is not an integer")
            return str(q.numerator)
        s = decimal(q)
        if s is None:
            raise UnsupportedError(f"constant {q.numerator}/{q.denominator} (about {float(q):.17g}) has no "
                                   "exact decimal, and VNN-LIB 2 writes numbers as decimals only")
        return s if "." in s else s + ".0"  # a float type's constant needs its decimal point


def assertion_text(term, var: Callable[[str], tuple[str, str]]) -> str | None:
    """`(assert ...)` of a boolean term in VNN-LIB 2 syntax, or None when the term is true
    whatever the values. `var(name)` gives an nnsmt variable's reference in the query and its
    element type (`("X[0,3]", "float32")`). Constants are written exactly as decimals (with a
    decimal point for float and real types); `=` becomes `==`; negations are pushed onto the
    comparisons (VNN-LIB 2 has no `not`); comparisons between constants are decided (VNN-LIB 2
    cannot type them).

    Raises:
        UnsupportedError: a constant without an exact decimal (1/3), a term VNN-LIB 2 cannot
            write (ite, exp, division by a variable), a comparison mixing element types, or a
            formula that is false whatever the values.
    """
    t = _simplify(term)
    if isinstance(t, Bool):
        if t.value:
            return None
        raise UnsupportedError("an assertion is false whatever the values (the query is unsat), and "
                               "VNN-LIB 2 cannot write a constant formula")
    return f"(assert {_Writer(var).boolean(t)})"


def vnnlib1_to_2(prop, in_shape: Sequence[int], out_shape: Sequence[int], dtype: str = "float32",
                 network: str = "N", x: str = "X", y: str = "Y") -> str:
    """The text of a VNN-LIB 2.0 query asking what the VNN-LIB 1.0 `prop` asks.

    One network `network` declares input `x` and output `y` of element type `dtype` and the
    given shapes (the ONNX model's, dynamic dimensions made concrete); every `X_i` becomes the
    input element with flat row-major index i (`X[0,0,0,i]`), every `Y_j` the output's. The
    asserts keep their order and their constants exactly (`assertion_text`). Note that in a
    float query a constant means the nearest value of that type (the standard's semantics),
    where VNN-LIB 1.0 reads it as a real.

    Raises:
        InputError: shapes that do not hold the property's n_inputs / n_outputs, or names
            that are not VNN-LIB 2 variable names.
        UnsupportedError: what `assertion_text` cannot write (e.g. a constant 1/3).
    """
    xd = Decl(x, dtype, tuple(in_shape), "input", network)
    yd = Decl(y, dtype, tuple(out_shape), "output", network)
    for name in (network, x, y):
        if not _NAME.match(name):
            raise InputError(f"{name!r} is not a VNN-LIB 2 variable name")
    if x == y:
        raise InputError(f"input and output are both named {x!r}")
    for d, n, what in ((xd, prop.n_inputs, "inputs"), (yd, prop.n_outputs, "outputs")):
        if d.size != n:
            raise InputError(f"{prop.source} has {n} {what}, but shape {list(d.shape)} holds {d.size}")

    def var(name: str) -> tuple[str, str]:
        m = re.fullmatch(r"([XY])_(\d+)", name)
        if not m:
            raise InputError(f"{prop.source}: variable {name} is neither an input X_i nor an output Y_j")
        d = xd if m[1] == "X" else yd
        k = int(m[2])
        if k >= d.size:
            raise InputError(f"{prop.source}: {name} is beyond the {d.size} {d.kind}s")
        return d.ref(k), dtype

    src = str(prop.source).replace("\n", " ")
    lines = [f"; VNN-LIB 2.0 query written by nnsmt from the VNN-LIB 1.0 property {src}",
             "(vnnlib-version <2.0>)", "",
             f"(declare-network {network}",
             f"    (declare-input {xd.header})",
             f"    (declare-output {yd.header})",
             ")", ""]
    for line, t in prop.asserts:
        try:
            a = assertion_text(t, var)
        except UnsupportedError as e:
            raise UnsupportedError(f"{src}:{line}: {e}") from None
        if a is not None:
            lines.append(a)
    return "\n".join(lines) + "\n"


def decls_of(meta_decls: Iterable[Sequence]) -> list[tuple[Decl, int]]:
    """(Decl, offset) of each `[name, dtype, shape, kind, network, offset]` entry (the form a
    VNN-LIB 2 script's `meta["decls"]` takes)."""
    out = []
    for e in meta_decls:
        name, dtype, shape, kind, network, offset = e
        out.append((Decl(str(name), str(dtype), tuple(shape), str(kind), str(network)), int(offset)))
    return out


def flat_names(decls: Iterable[tuple[Decl, int]]) -> dict[str, tuple[Decl, int]]:
    """nnsmt's global flat name of every element -> (its declaration, its flat index there):
    inputs are X_{offset+k}, hidden and output values Y_{offset+k}."""
    out = {}
    for d, off in decls:
        p = "X" if d.kind == "input" else "Y"
        for k in range(d.size):
            out[f"{p}_{off + k}"] = (d, k)
    return out


def as_model(values: Mapping[str, Sequence[Fraction]], decls: Iterable[tuple[Decl, int]]) -> dict[str, Fraction]:
    """The input values of a parsed assignment under nnsmt's flat names (X_{offset+k})."""
    model = {}
    for d, off in decls:
        if d.kind == "input":
            for k, v in enumerate(values[d.name]):
                model[f"X_{off + k}"] = v
    return model
