"""VNN-LIB 1.0 properties (as used in VNN-COMP): exact parsing, evaluation and input boxes.

A property declares inputs `X_0..X_{n-1}` and outputs `Y_0..Y_{m-1}` (all Real) and asserts the
*unsafe* region over them. Numbers become exact rationals of the decimal as written; every
comparison is kept as written (a `<` stays strict).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Rational
from pathlib import Path
from typing import Mapping, Sequence

from .errors import InputError
from .printer import Printer, decimal
from .terms import CMP_OPS, Add, And, Bool, Cmp, Div, Dot, Floor, Ite, Mul, Not, Num, Or, Term, Var, linear_form

__all__ = ["Property", "parse_vnnlib", "load_vnnlib", "term_eval", "format_term"]

Box = tuple[list[Fraction | None], list[Fraction | None]]


@dataclass(frozen=True)
class Property:
    """A parsed VNN-LIB property.

    Attributes:
        n_inputs: number of inputs, declared as X_0..X_{n_inputs-1}.
        n_outputs: number of outputs, declared as Y_0..Y_{n_outputs-1}.
        asserts: (source line, boolean term) per `assert`, in file order.
        source: the file name the property came from (used in messages).
        split_dims: input splitting bisects only X_0..X_{split_dims-1} (None: every input);
            the others are rounding errors of float semantics (`nnsmt.vnnlib2.combine`).
        meta: what a verification script should say of its origin beyond `source` (a VNN-LIB 2
            query: "query_file", "networks", "decls"), for backends that re-ask the question.
    """

    n_inputs: int
    n_outputs: int
    asserts: tuple[tuple[int, Term], ...] = field(repr=False)  # MNIST has 1,569
    source: str = "<string>"
    split_dims: int | None = field(default=None, repr=False)
    meta: Mapping | None = field(default=None, repr=False, compare=False)

    def formula(self) -> And:
        """The conjunction of all asserts (the unsafe region)."""
        return And(tuple(t for _, t in self.asserts))

    def bind(self, x: Sequence, y: Sequence = ()) -> dict[str, Fraction]:
        """Name input values `x` and output values `y` as X_i / Y_j, converted exactly."""
        env = {f"X_{i}": _exact(v) for i, v in enumerate(x)}
        env.update((f"Y_{j}", _exact(v)) for j, v in enumerate(y))
        return env

    def holds(self, values: Mapping[str, Fraction | float], tol: float | Fraction = 0) -> bool:
        """Whether `values` (X_i and Y_j) satisfy every assert, in exact arithmetic.

        With `tol` > 0 each atom `a op b` is relaxed by `tol` (`a <= b + tol`, `a < b` also becomes
        `a <= b + tol`, `a = b` becomes `|a - b| <= tol`): VNN-COMP's counterexample check.
        """
        tol = _exact(tol)
        return all(_eval(t, values, tol) for _, t in self.asserts)

    def violations(self, values: Mapping[str, Fraction | float],
                   tol: float | Fraction = 0) -> list[str]:
        """The atoms that fail under `values` (same semantics as `holds`), one line each.

        E.g. `line 12: (<= Y_0 Y_1): 0.53 vs 0.21`, or for a disjunction
        `line 40: none of the 9 disjuncts of (or ...) holds`. Empty when the property holds.
        """
        tol = _exact(tol)
        out: list[str] = []
        for line, t in self.asserts:
            _explain(t, values, tol, line, out)
        return out

    def input_boxes(self) -> list[Box] | None:
        """The input region as a union of boxes, or None when it is not one.

        Each box is (lo, hi), one bound per input, None for unbounded. Asserts over X alone must
        be conjunctions of simple bounds (`X_i op c`, `c op X_i`, or any linear atom over one
        X_i), with at most one disjunction of such conjunctions (ACAS Xu property 6), else the
        result is None. Asserts that mention Y are not captured by the boxes: the property is
        the boxes AND those asserts. Bounds on X that a mixed assert states as top-level
        conjuncts (`(or (and (>= X_0 -1) ... (>= Y_0 100)))`) are implied, so they tighten the
        boxes too. Strict bounds are returned as their closure; a box may be empty (lo > hi).
        """
        n = self.n_inputs
        lo: list[Fraction | None] = [None] * n
        hi: list[Fraction | None] = [None] * n
        dnf: list[list] | None = None
        for _, t in self.asserts:
            only_x = all(v[0] == "X" for v in _var_names(t))
            for c in _conjuncts(t):
                b = _simple_bound(c)
                if b is False:
                    return []  # a conjunct that is false without any variable: empty region
                if b is True:
                    continue
                if b is not None:
                    _tighten(lo, hi, *b)
                elif not only_x:
                    continue  # stays in the mixed assert, which the caller asserts anyway
                elif isinstance(c, Or) and dnf is None:
                    dnf = []
                    for d in c.args:
                        bs = [_simple_bound(e) for e in _conjuncts(d)]
                        if None in bs:
                            return None
                        if False not in bs:  # a disjunct with a false constant is empty
                            dnf.append([b for b in bs if b is not True])
                else:
                    return None
        if dnf is None:
            return [(lo, hi)]
        boxes = []
        for bounds in dnf:
            blo, bhi = list(lo), list(hi)
            for b in bounds:
                _tighten(blo, bhi, *b)
            boxes.append((blo, bhi))
        return boxes

    def input_hull(self) -> Box:
        """A box containing the input region: the hull of `input_boxes` when the region is a
        union of boxes, else the simple bounds asserted as top-level conjuncts (any other
        input constraint only cuts the region further). None where an input is unbounded."""
        n = self.n_inputs
        boxes = self.input_boxes()
        if boxes:
            lo = [None if any(b[0][i] is None for b in boxes) else min(b[0][i] for b in boxes) for i in range(n)]
            hi = [None if any(b[1][i] is None for b in boxes) else max(b[1][i] for b in boxes) for i in range(n)]
            return lo, hi
        lo, hi = [None] * n, [None] * n
        for _, t in self.asserts:
            for c in _conjuncts(t):
                b = _simple_bound(c)
                if b not in (None, True, False):
                    _tighten(lo, hi, *b)
        return lo, hi

    def output_only(self) -> bool:
        """Whether some assert mentions only outputs (Y) and no inputs."""
        return any((vs := _var_names(t)) and all(v[0] == "Y" for v in vs)
                   for _, t in self.asserts)


# ---------------------------------------------------------------------------------------------
# Evaluation


def _exact(v) -> Fraction:
    if isinstance(v, Fraction):
        return v
    if isinstance(v, Rational):  # int, bool, numpy integers
        return Fraction(v)
    return Fraction(float(v))  # exact for float64 and float32 (numpy scalars included)


def term_eval(term: Term, env: Mapping[str, Fraction | float]) -> Fraction | bool:
    """Evaluate a term exactly: reals as Fractions (floats convert exactly), booleans as bool.

    Handles Var, Num, Add, Mul, Div, Floor, Dot, Ite, Cmp, And, Or, Not and Bool (not Exp:
    not rational). Raises KeyError for a variable `env` does not give, ZeroDivisionError for a
    division by 0, TypeError for Exp.
    """
    return _eval(term, env, Fraction(0))


def _eval(t, env, tol: Fraction):
    match t:
        case Var():
            return _exact(env[t.name])
        case Num():
            return t.value
        case Add():
            return sum((_eval(a, env, tol) for a in t.args), Fraction(0))
        case Mul():
            r = Fraction(1)
            for a in t.args:
                r *= _eval(a, env, tol)
            return r
        case Div():
            return _eval(t.num, env, tol) / _eval(t.den, env, tol)
        case Floor():
            return Fraction(math.floor(_eval(t.arg, env, tol)))
        case Cmp():
            a, b = _eval(t.lhs, env, tol), _eval(t.rhs, env, tol)
            return _compare(t.op, a, b, tol)
        case And():
            return all(_eval(a, env, tol) for a in t.args)
        case Or():
            return any(_eval(a, env, tol) for a in t.args)
        case Not():
            return not _eval(t.arg, env, tol)
        case Bool():
            return t.value
        case Ite():
            return _eval(t.then if _eval(t.cond, env, tol) else t.other, env, tol)
        case Dot():
            def vals(a):
                return [_exact(env[v]) if isinstance(v, str) else _exact(v) for v in a.ravel()]
            r = sum((w * x for w, x in zip(vals(t.w), vals(t.x))), Fraction(0))
            return r + _eval(t.bias, env, tol) if t.bias is not None else r
    raise TypeError(f"cannot evaluate {type(t).__name__} exactly")


def _compare(op: str, a: Fraction, b: Fraction, tol: Fraction) -> bool:
    if tol:  # VNN-COMP's relaxation: strictness is lost within the tolerance anyway
        if op in ("<=", "<"):
            return a <= b + tol
        if op in (">=", ">"):
            return a >= b - tol
        return abs(a - b) <= tol
    if op == "<=":
        return a <= b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    if op == ">":
        return a > b
    return a == b


def _approx(q) -> str:
    """A number for a message: 10 significant digits; beyond the float64 range it stays exact
    in magnitude (`1e+400`-like scientific form), never raising OverflowError."""
    try:
        return f"{float(q):.10g}"
    except OverflowError:
        q = Fraction(q)
        sign, q = ("-" if q < 0 else ""), abs(q)
        e = len(str(q.numerator)) - len(str(q.denominator))
        if Fraction(10) ** e > q:
            e -= 1
        m = f"{float(q / Fraction(10) ** e):.10g}"
        if m.startswith("10"):  # 9.99999999997 rounds up
            m, e = "1", e + 1
        return f"{sign}{m}e+{e}"


def _explain(t, env, tol, line: int, out: list[str]) -> None:
    """Append why `t` fails (nothing if it holds), descending through conjunctions."""
    if _eval(t, env, tol):
        return
    if isinstance(t, And):
        for a in t.args:
            _explain(a, env, tol, line, out)
    elif isinstance(t, Or) and len(t.args) == 1:
        _explain(t.args[0], env, tol, line, out)
    elif isinstance(t, Or):
        out.append(f"line {line}: none of the {len(t.args)} disjuncts of (or ...) holds")
    elif isinstance(t, Cmp):
        a, b = _eval(t.lhs, env, tol), _eval(t.rhs, env, tol)
        out.append(f"line {line}: {format_term(t)}: {_approx(a)} vs {_approx(b)}")
    else:
        out.append(f"line {line}: {format_term(t)} is false")


# ---------------------------------------------------------------------------------------------
# Printing


def _format_num(q: Fraction) -> str:
    """Exact decimal when there is one (`-0.5`, VNN-COMP style), else `(/ p q)`."""
    s = decimal(q)
    if s is not None:
        return s
    r = f"(/ {abs(q.numerator)} {q.denominator})"
    return f"(- {r})" if q < 0 else r


def format_term(t: Term) -> str:
    """VNN-LIB (SMT-LIB) text of a term, constants as decimals where they are (the one printer,
    `nnsmt.printer.Printer`, with this module's number format)."""
    return _PRINTER.term(t)


# ---------------------------------------------------------------------------------------------
# Input boxes


def _var_names(t) -> set[str]:
    out: set[str] = set()
    stack = [t]
    while stack:
        t = stack.pop()
        match t:
            case Var():
                out.add(t.name)
            case Add() | Mul() | And() | Or():
                stack.extend(t.args)
            case Cmp():
                stack += (t.lhs, t.rhs)
            case Not():
                stack.append(t.arg)
    return out


def _conjuncts(t) -> list:
    """Flatten nested `and`s; an `or` of one disjunct (VNN-COMP's `(or (and ...))`) is that one."""
    while isinstance(t, Or) and len(t.args) == 1:
        t = t.args[0]
    if not isinstance(t, And):
        return [t]
    return [c for a in t.args for c in _conjuncts(a)]


_FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<", "=": "="}


def _simple_bound(t):
    """(index, lo, hi) for an atom over one X_i; True/False for a variable-free atom; else None."""
    if not isinstance(t, Cmp):
        return t.value if isinstance(t, Bool) else None
    left, right = linear_form(t.lhs), linear_form(t.rhs)
    if left is None or right is None:
        return None
    coef = dict(left[0])
    for v, c in right[0].items():
        coef[v] = coef.get(v, 0) - c
    coef = {v: c for v, c in coef.items() if c}
    const = right[1] - left[1]  # atom is: sum(coef * var) op const
    if not coef:
        return _compare(t.op, Fraction(0), const, Fraction(0))
    if len(coef) != 1:
        return None
    (name, a), = coef.items()
    if name[0] != "X":
        return None
    op, c = (t.op if a > 0 else _FLIP[t.op]), const / a
    i = int(name[2:])
    return i, (c if op in (">=", ">", "=") else None), (c if op in ("<=", "<", "=") else None)


def _tighten(lo: list, hi: list, i: int, l, h) -> None:
    if l is not None and (lo[i] is None or l > lo[i]):
        lo[i] = l
    if h is not None and (hi[i] is None or h < hi[i]):
        hi[i] = h


# ---------------------------------------------------------------------------------------------
# Parsing

# One regex, one Python iteration per token (finditer skips whitespace in C). Group 1 is '(',
# 2 ')', 3 an atom, 4 a junk character (anything SMT-LIB's simple symbols cannot hold: `#`, `|`,
# `"`, `,`, non-ASCII, ...); comments match no group and are dropped.
_TOKEN = re.compile(r"(\()|(\))|([A-Za-z0-9~!@$%^&*_+=<>.?/:-]+)|;[^\n]*|(\S)", re.A)
_NUMBER = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\Z")
_LOOKS_NUMERIC = re.compile(r"[+-]?\.?\d")  # SMT-LIB symbols cannot start with a digit
_MAX_EXP = 10_000  # 10**exp is exact but a huge exponent would hang: no property needs one
_VAR = re.compile(r"([XY])_(0|[1-9]\d*)\Z")
_ARITH = ("+", "-", "*", "/")


class _List(list):
    """A parenthesised list of nodes (atoms are `(text, offset)` tuples)."""

    __slots__ = ("pos",)


class _Parser:
    def __init__(self, text: str, filename: str):
        self.text, self.filename = text, filename
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.vars: dict[str, int] = {}  # declared name -> offset of its declaration
        self.atoms: dict[str, Var | Num] = {}  # term of each declared name and seen number

    def where(self, pos: int) -> tuple[int, int]:
        line = bisect_right(self.newlines, pos - 1)  # newlines strictly before pos
        col = pos - (self.newlines[line - 1] + 1 if line else 0)
        return line + 1, col + 1

    def error(self, pos: int, msg: str) -> InputError:
        line, col = self.where(pos)
        return InputError(f"{self.filename}:{line}:{col}: {msg}")

    # -- S-expressions ----------------------------------------------------------------------

    def sexprs(self) -> list:
        top = _List()
        stack = [top]
        cur = top
        for m in _TOKEN.finditer(self.text):
            kind = m.lastindex
            if kind == 3:
                cur.append((m.group(), m.start()))
            elif kind == 1:
                node = _List()
                node.pos = m.start()
                cur.append(node)
                stack.append(node)
                cur = node
            elif kind == 2:
                if len(stack) == 1:
                    raise self.error(m.start(), "unexpected ')' with no matching '('")
                stack.pop()
                cur = stack[-1]
            elif kind == 4:
                raise self.error(m.start(), f"unexpected character {m.group()!r}")
        if len(stack) > 1:  # innermost unclosed '(' is the closest to the mistake
            raise self.error(stack[-1].pos, "'(' is never closed")
        return top

    # -- commands ---------------------------------------------------------------------------

    def parse(self) -> Property:
        asserts = []
        for cmd in self.sexprs():
            if not isinstance(cmd, list):
                raise self.error(cmd[1], f"expected a command in parentheses, got {cmd[0]!r}")
            if not cmd or isinstance(cmd[0], list):
                raise self.error(cmd.pos, "expected a command name after '('")
            name, pos = cmd[0]
            if name == "declare-const":
                self.declare(cmd)
            elif name == "assert":
                if len(cmd) != 2:
                    raise self.error(cmd.pos, f"assert takes one formula, got {len(cmd) - 1}")
                try:
                    term = self.boolean(cmd[1])
                except RecursionError:
                    raise self.error(cmd.pos, "formula nested too deeply") from None
                asserts.append((self.where(cmd.pos)[0], term))
            else:
                raise self.error(pos, f"unknown command {name!r} "
                                      "(VNN-LIB 1.0 has declare-const and assert)")
        return Property(self.count("X", "input"), self.count("Y", "output"), tuple(asserts),
                        self.filename)

    def declare(self, cmd: _List) -> None:
        if len(cmd) != 3:
            raise self.error(cmd.pos, "expected (declare-const NAME Real)")
        name, sort = cmd[1], cmd[2]
        if isinstance(name, list) or not _VAR.match(name[0]):
            pos = name.pos if isinstance(name, list) else name[1]
            text = "(...)" if isinstance(name, list) else name[0]
            raise self.error(pos, f"bad variable name {text!r}: VNN-LIB declares inputs X_i "
                                  "and outputs Y_j")
        if name[0] in self.vars:
            first = self.where(self.vars[name[0]])[0]
            raise self.error(name[1], f"{name[0]} declared twice (first at line {first})")
        if isinstance(sort, list) or sort[0] != "Real":
            pos = sort.pos if isinstance(sort, list) else sort[1]
            text = "(...)" if isinstance(sort, list) else sort[0]
            raise self.error(pos, f"wrong sort {text!r} for {name[0]}: VNN-LIB variables are Real")
        self.vars[name[0]] = name[1]
        self.atoms[name[0]] = Var(name[0])

    def count(self, prefix: str, what: str) -> int:
        """Number of X (or Y) variables, checking they are exactly prefix_0..prefix_{n-1}."""
        decls = sorted((int(n[2:]), pos) for n, pos in self.vars.items() if n[0] == prefix)
        if not decls:
            msg = "empty property: no declarations" if not self.vars else \
                f"no {what} variables declared ({prefix}_0, ...)"
            raise self.error(len(self.text) if self.vars else 0, msg)
        for expect, (i, pos) in enumerate(decls):
            if i != expect:
                raise self.error(pos, f"{prefix}_{i} declared but {prefix}_{expect} is not: "
                                      f"{what}s must be {prefix}_0..{prefix}_{{n-1}}")
        return len(decls)

    # -- formulas and terms -----------------------------------------------------------------

    def boolean(self, node):
        if not isinstance(node, list):
            text, pos = node
            if text in ("true", "false"):
                return Bool(text == "true")
            if text in self.vars:
                raise self.error(pos, f"expected a boolean, got real variable {text}")
            self.real(node)  # raises the right error: malformed number, undeclared, ...
            raise self.error(pos, f"expected a boolean, got number {text}")
        op, args = self.head(node)
        if op in CMP_OPS and len(args) == 2:  # the common case first: VNN-COMP files are bounds
            return Cmp(op, self.real(args[0]), self.real(args[1]))
        if op in ("and", "or"):
            if not args:
                raise self.error(node.pos, f"'{op}' needs at least one argument")
            parts = tuple(self.boolean(a) for a in args)
            return And(parts) if op == "and" else Or(parts)
        if op in CMP_OPS:
            if len(args) < 2:
                raise self.error(node.pos, f"'{op}' needs at least two arguments")
            terms = [self.real(a) for a in args]
            pairs = tuple(Cmp(op, a, b) for a, b in zip(terms, terms[1:]))
            return And(pairs)  # SMT-LIB chains: (<= a b c) is a <= b and b <= c
        if op in _ARITH:
            raise self.error(node.pos, f"expected a boolean, got a real '{op}' term")
        raise self.error(node[0][1], f"unknown operator {op!r}")

    def real(self, node):
        if not isinstance(node, list):
            text, pos = node
            if (term := self.atoms.get(text)) is not None:
                return term
            if (m := _NUMBER.match(text)) and (m[2] or m[3]):
                num = self.atoms[text] = Num(self.number(m, pos))
                return num
            if _LOOKS_NUMERIC.match(text):
                raise self.error(pos, f"malformed number {text!r}")
            if text in ("true", "false"):
                raise self.error(pos, f"expected a real, got boolean {text}")
            raise self.error(pos, f"undeclared variable {text!r}")
        op, args = self.head(node)
        if op not in _ARITH:
            if op in CMP_OPS or op in ("and", "or"):
                raise self.error(node.pos, f"expected a real, got a boolean '{op}' term")
            raise self.error(node[0][1], f"unknown operator {op!r}")
        if not args or (op == "/" and len(args) < 2):
            need = "two arguments" if op == "/" else "an argument"
            raise self.error(node.pos, f"'{op}' needs {need}")
        terms = [self.real(a) for a in args]
        consts = [isinstance(t, Num) for t in terms]
        if op == "+":
            return Num(sum(t.value for t in terms)) if all(consts) else \
                terms[0] if len(terms) == 1 else Add(tuple(terms))
        if op == "-":
            if len(terms) == 1:
                t = terms[0]
                return Num(-t.value) if consts[0] else Mul((Num(-1), t))
            if all(consts):
                return Num(terms[0].value - sum(t.value for t in terms[1:]))
            return Add((terms[0], *(Num(-t.value) if isinstance(t, Num) else Mul((Num(-1), t))
                                    for t in terms[1:])))
        if op == "*":
            if consts.count(False) > 1:
                raise self.error(node.pos, "nonlinear term: a product of two non-constants")
            c = Fraction(1)
            for t in terms:
                if isinstance(t, Num):
                    c *= t.value
            if all(consts):
                return Num(c)
            return Mul((Num(c), next(t for t in terms if not isinstance(t, Num))))
        # "/": every divisor must be a nonzero constant to stay linear
        if not all(consts[1:]):
            raise self.error(node.pos, "nonlinear term: division by a non-constant")
        d = Fraction(1)
        for t in terms[1:]:
            d *= t.value
        if d == 0:
            raise self.error(node.pos, "division by zero")
        return Num(terms[0].value / d) if consts[0] else Mul((Num(1 / d), terms[0]))

    def number(self, m: re.Match, pos: int) -> Fraction:
        """The exact rational of a decimal literal (never through float: 0.1 is 1/10)."""
        sign, whole, frac, exp = m.groups()
        frac = frac or ""
        try:  # int() refuses over 4,300 digits; such a literal is a mistake, not a traceback
            e = int(exp or 0) - len(frac)
            if abs(e) > _MAX_EXP:
                raise ValueError
            n = int(whole + frac or "0")
        except ValueError:
            raise self.error(pos, f"number {m[0][:30]!r} has too many digits or too large "
                                  "an exponent") from None
        q = Fraction(n * 10**e) if e >= 0 else Fraction(n, 10**-e)  # Fraction(str) is 3x slower
        return -q if sign == "-" else q

    def head(self, node: _List) -> tuple[str, list]:
        if not node or isinstance(node[0], list):
            raise self.error(node.pos, "expected an operator after '('")
        return node[0][0], node[1:]


def parse_vnnlib(text: str, filename: str = "<string>") -> Property:
    """Parse VNN-LIB 1.0 text.

    Raises:
        InputError: one line `filename:line:col: message` for any syntax or semantic error.
    """
    m = VERSION_HEADER.match(text)
    if m and int(m.group(1)) >= 2:
        raise InputError(f"{filename}: a VNN-LIB 2 query (it declares its networks): nnsmt verify "
                         f"{filename} --network NAME=MODEL.onnx (this command takes VNN-LIB 1.0)")
    return _Parser(text, filename).parse()


VERSION_HEADER = re.compile(r"\A(?:\s|;[^\n]*\n)*\(\s*vnnlib-version\s*<\s*([0-9]+)\.([0-9]+)\s*>\s*\)")
"""A file's `(vnnlib-version <M.m>)` header (after blank and comment lines): VNN-LIB 2 has one."""


def load_vnnlib(path) -> Property:
    """Read and parse a VNN-LIB file.

    Raises:
        InputError: the file is missing, unreadable, not UTF-8, or not valid VNN-LIB.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM is not a junk token
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(f"{path}: cannot read VNN-LIB file: {reason}") from None
    return parse_vnnlib(text, str(path))


_PRINTER = Printer(_format_num)
