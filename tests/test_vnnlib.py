"""VNN-LIB parser: the VNN-COMP benchmarks, exact numbers and semantics, errors, round trips."""

from __future__ import annotations

import functools
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.errors import InputError
from nnsmt.terms import Add, And, Cmp, Dot, Ite, Mul, Num, Or, Var
from nnsmt.vnnlib import format_term, load_vnnlib, parse_vnnlib, term_eval

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
FILES = sorted(BENCH.glob("*/*.vnnlib")) if BENCH.is_dir() else []
needs_bench = pytest.mark.skipif(not FILES, reason=f"no VNN-COMP benchmarks in {BENCH}")
DECL = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"


def prop(body: str, decl: str = DECL):
    return parse_vnnlib(decl + body, "p.vnnlib")


# --- the VNN-COMP files -----------------------------------------------------------------------

@needs_bench
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_benchmark_files_parse(path):
    p = load_vnnlib(path)
    expected = {"acasxu": [(5, 5)], "mnistfc": [(784, 10)], "vnncomp-test": [(1, 1), (5, 5)]}
    assert (p.n_inputs, p.n_outputs) in expected[path.parent.name]
    assert p.asserts and p.source == str(path)
    assert p.input_boxes() is not None


@needs_bench
def test_acasxu_boxes():
    (lo, hi), = load_vnnlib(BENCH / "acasxu" / "prop_1.vnnlib").input_boxes()
    assert lo == [F("0.6"), F("-0.5"), F("-0.5"), F("0.45"), F("-0.5")]
    assert hi == [F("0.679857769"), F("0.5"), F("0.5"), F("0.5"), F("-0.45")]

    boxes = load_vnnlib(BENCH / "acasxu" / "prop_6.vnnlib").input_boxes()
    assert len(boxes) == 2
    (lo0, hi0), (lo1, hi1) = boxes
    assert (lo0[1], hi0[1]) == (F("0.11140846"), F("0.499999896"))
    assert (lo1[1], hi1[1]) == (F("-0.499999896"), F("-0.11140846"))
    assert lo0[0] == lo1[0] == F("-0.129289109") and hi0[4] == hi1[4] == F("0.5")


@needs_bench
def test_mnist_box():
    # parse speed is measured by bench/compile_speed.py, not asserted here
    p = parse_vnnlib((BENCH / "mnistfc" / "prop_0_0.03.vnnlib").read_text())
    (lo, hi), = p.input_boxes()
    assert len(lo) == len(hi) == 784 and None not in lo and None not in hi
    assert all(0 <= a <= b <= 1 for a, b in zip(lo, hi))
    assert p.output_only()
    x = [(a + b) / 2 for a, b in zip(lo, hi)]
    y = [0.0] * 10
    assert p.holds(p.bind(x, y))  # ties: every class scores the same, so 8 is not the argmax
    y[8] = 1.0
    assert not p.holds(p.bind(x, y))
    assert p.violations(p.bind(x, y)) == [
        "line 3155: none of the 9 disjuncts of (or ...) holds"]


@needs_bench
def test_mixed_assert_bounds_tighten_boxes():
    p = load_vnnlib(BENCH / "vnncomp-test" / "test_tiny.vnnlib")
    assert p.input_boxes() == [([F(-1)], [F(1)])]
    assert not p.output_only()


# --- numbers and semantics --------------------------------------------------------------------

@needs_bench
def test_negative_literal_is_exact():
    p = load_vnnlib(BENCH / "vnncomp-test" / "test_prop.vnnlib")
    line, atom = p.asserts[0]
    assert line == 17
    assert atom == Cmp("<=", Var("X_0"), Num(F("-0.29855281193475053")))
    assert atom.rhs.value != F(-0.29855281193475053)  # not the nearest float


@pytest.mark.parametrize("text, value", [
    ("0.1", F(1, 10)), ("-0.29855281193475053", F("-0.29855281193475053")), ("1e-5", F(1, 10**5)),
    ("2.5E+3", F(2500)), ("3", F(3)), (".5", F(1, 2)), ("5.", F(5)), ("+2", F(2)),
    ("-1.5e2", F(-150)), ("(- 0.5)", F(-1, 2)), ("(/ 1 3)", F(1, 3)), ("(- 1 0.25 0.5)", F(1, 4)),
    ("(* 2 0.5 3)", F(3)), ("(+ 0.1 0.2)", F(3, 10)), ("(/ 1 2 4)", F(1, 8)),
])
def test_numbers_exact_and_folded(text, value):
    (_, atom), = prop(f"(assert (<= X_0 {text}))").asserts
    assert atom.rhs == Num(value)


def test_linear_terms_as_written():
    (_, a), = prop("(assert (>= (+ (* 2 X_0) (- Y_0) (/ X_0 4) (* X_0 3)) (- Y_0 X_0 1)))").asserts
    assert a == Cmp(">=", Add((Mul((Num(2), Var("X_0"))), Mul((Num(-1), Var("Y_0"))),
                               Mul((Num(F(1, 4)), Var("X_0"))), Mul((Num(3), Var("X_0"))))),
                    Add((Var("Y_0"), Mul((Num(-1), Var("X_0"))), Num(-1))))


def test_strictness():
    lt, le = prop("(assert (< X_0 1))"), prop("(assert (<= X_0 1))")
    assert lt.holds({"X_0": 0.5}) and not lt.holds({"X_0": 1})
    assert le.holds({"X_0": 1}) and not le.holds({"X_0": F(1) + F(1, 10**30)})
    gt, eq = prop("(assert (> X_0 1))"), prop("(assert (= X_0 1))")
    assert not gt.holds({"X_0": 1}) and gt.holds({"X_0": 1.5})
    assert eq.holds({"X_0": 1}) and not eq.holds({"X_0": 0.999})


def test_float_values_convert_exactly():
    p = prop("(assert (<= X_0 0.1))")
    assert p.holds({"X_0": F(1, 10)})
    assert not p.holds({"X_0": 0.1})  # float 0.1 is slightly above 1/10
    assert p.holds({"X_0": np.float32(0.0999)})


@pytest.mark.parametrize("op", ["<=", "<", ">=", ">", "="])
def test_tolerance(op):
    p = prop(f"(assert ({op} Y_0 X_0))")
    sign = -1 if op in (">=", ">") else 1  # Y_0 = X_0 + sign * d violates op by d
    for d, ok in [(5e-5, True), (2e-4, False)]:
        env = {"X_0": 1, "Y_0": 1 + sign * F(d)}
        assert not p.holds(env)
        assert p.holds(env, tol=1e-4) is ok
        assert (p.violations(env, tol=1e-4) == []) is ok
    if op == "=":  # equality is relaxed both ways
        assert p.holds({"X_0": 1, "Y_0": 1 + F(5e-5)}, tol=1e-4)


def test_disjunctions_and_violations():
    p = prop("(assert (or (and (<= Y_0 0) (>= X_0 1)) (and (>= Y_0 5))))\n"
             "(assert (or (and (<= Y_0 X_0))))\n")
    assert p.holds({"X_0": 1, "Y_0": 0})  # first disjunct
    assert p.holds({"X_0": 6, "Y_0": 5})  # second
    assert not p.holds({"X_0": 0, "Y_0": 0})  # neither: X_0 >= 1 fails in the first
    assert p.violations({"X_0": 0, "Y_0": 0}) == [
        "line 3: none of the 2 disjuncts of (or ...) holds"]
    assert p.violations({"X_0": 0.25, "Y_0": 5.5}) == ["line 4: (<= Y_0 X_0): 5.5 vs 0.25"]
    assert p.formula() == And(tuple(t for _, t in p.asserts))


def test_chained_comparison_is_a_conjunction():
    (_, a), = prop("(assert (<= 0 X_0 Y_0 1))").asserts
    assert a == And((Cmp("<=", Num(0), Var("X_0")), Cmp("<=", Var("X_0"), Var("Y_0")),
                     Cmp("<=", Var("Y_0"), Num(1))))
    p = prop("(assert (<= 0 X_0 Y_0 1))")
    assert p.holds({"X_0": 0.5, "Y_0": 0.5}) and not p.holds({"X_0": 0.5, "Y_0": 0.25})
    assert p.violations({"X_0": 0.5, "Y_0": 2}) == ["line 3: (<= Y_0 1): 2 vs 1"]


def test_declarations_in_any_order_and_comments():
    p = parse_vnnlib("; c (((\n(declare-const Y_1 Real) ; )\n(declare-const X_0 Real)\n"
                     "(declare-const Y_0 Real)(assert(<= X_0 Y_1));x\n")
    assert (p.n_inputs, p.n_outputs, p.asserts[0][0]) == (1, 2, 4)


def test_term_eval():
    env = {"a": F(1, 3), "b": 0.5}
    assert term_eval(Add((Var("a"), Mul((Num(3), Var("b"))))), env) == F(11, 6)
    assert term_eval(Ite(Cmp("<", Var("a"), Var("b")), Num(1), Num(2)), env) == 1
    dot = Dot(np.array([2.0, 0.25]), np.array(["a", "b"], dtype=object), Num(1))
    assert term_eval(dot, env) == F(2, 3) + F(1, 8) + 1
    assert term_eval(Or((Cmp("=", Var("a"), Num(F(1, 3))),)), env) is True


# --- input boxes ------------------------------------------------------------------------------

DECL2 = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"


@pytest.mark.parametrize("body, boxes", [
    ("", [([None, None], [None, None])]),
    ("(assert (>= X_0 -1))(assert (<= X_0 2))(assert (< 0.5 X_1))", [([-1, F(1, 2)], [2, None])]),
    ("(assert (and (<= X_0 1) (<= X_0 0.5) (= X_1 3)))", [([None, 3], [F(1, 2), 3])]),
    ("(assert (>= (* -2 X_0) 1))(assert (<= (+ X_1 1) (- 3)))", [([None, None], [F(-1, 2), -4])]),
    ("(assert (<= 0 X_0 1))", [([0, None], [1, None])]),
    ("(assert (<= X_0 1))(assert (or (and (>= X_1 0) (<= X_1 1)) (and (>= X_1 2) (<= X_0 0))))",
     [([None, 0], [1, 1]), ([None, 2], [0, None])]),
    ("(assert (<= X_0 Y_0))(assert (<= Y_0 2))", [([None, None], [None, None])]),
    ("(assert (or (and (<= X_0 Y_0) (>= X_1 3))))", [([None, 3], [None, None])]),
    ("(assert (or (and (<= X_0 1) (<= 1 0)) (and (>= X_0 2))))", [([2, None], [None, None])]),
    ("(assert (<= 1 0))", []),
    ("(assert (<= (+ X_0 X_1) 1))", None),
    ("(assert (or (<= X_0 1) (>= X_0 2)))(assert (or (<= X_1 1) (>= X_1 2)))", None),
    ("(assert (or (and (<= X_0 1)) (and (<= (+ X_0 X_1) 1))))", None),
])
def test_input_boxes(body, boxes):
    assert parse_vnnlib(DECL2 + body).input_boxes() == boxes


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, where, message", [
    (DECL + "(assert (<= X_0 1)\n(assert (>= X_0 0))\n", "3:1", "'(' is never closed"),
    (DECL + "(assert (<= X_0 1\n", "3:9", "'(' is never closed"),
    (DECL + "(assert (<= X_0 1)))\n", "3:20", "unexpected ')'"),
    (DECL + "(check-sat)\n", "3:2", "unknown command 'check-sat'"),
    (DECL + "assert\n", "3:1", "expected a command in parentheses"),
    (DECL + "()\n", "3:1", "expected a command name"),
    (DECL + "(assert (foo X_0 1))\n", "3:10", "unknown operator 'foo'"),
    (DECL + "(assert (<= (exp X_0) 1))\n", "3:14", "unknown operator 'exp'"),
    (DECL + "(assert (<= X_1 1))\n", "3:13", "undeclared variable 'X_1'"),
    (DECL + "  (declare-const X_0 Real)\n", "3:18", "X_0 declared twice (first at line 1)"),
    ("(declare-const X_0 Int)\n", "1:20", "wrong sort 'Int' for X_0"),
    ("(declare-const X_0 (Array Int Real))\n", "1:20", "wrong sort"),
    ("(declare-const Z_0 Real)\n", "1:16", "bad variable name 'Z_0'"),
    ("(declare-const X_01 Real)\n", "1:16", "bad variable name 'X_01'"),
    ("(declare-const X_0 Real Real)\n", "1:1", "expected (declare-const NAME Real)"),
    (DECL + "(assert 0.5)\n", "3:9", "expected a boolean, got number 0.5"),
    (DECL + "(assert X_0)\n", "3:9", "expected a boolean, got real variable X_0"),
    (DECL + "(assert (+ X_0 1))\n", "3:9", "expected a boolean, got a real '+' term"),
    (DECL + "(assert (<= (and (<= X_0 1)) 1))\n", "3:13", "expected a real, got a boolean 'and'"),
    (DECL + "(assert (<= X_0 true))\n", "3:17", "expected a real, got boolean true"),
    (DECL + "(assert (<= (* X_0 Y_0) 1))\n", "3:13", "nonlinear term"),
    (DECL + "(assert (<= (/ 1 X_0) 1))\n", "3:13", "nonlinear term"),
    (DECL + "(assert (<= (/ X_0 0) 1))\n", "3:13", "division by zero"),
    (DECL + "(assert (<= X_0))\n", "3:9", "'<=' needs at least two arguments"),
    (DECL + "(assert (and))\n", "3:9", "'and' needs at least one argument"),
    (DECL + "(assert (<= X_0 1) (<= X_0 2))\n", "3:1", "assert takes one formula, got 2"),
    ("", "1:1", "empty property: no declarations"),
    ("; only a comment\n\n", "1:1", "empty property: no declarations"),
    ("(declare-const X_0 Real)\n", "2:1", "no output variables declared"),
    ("(declare-const Y_0 Real)", "1:25", "no input variables declared"),
    ("(declare-const X_0 Real)\n(declare-const X_2 Real)\n(declare-const Y_0 Real)\n", "2:16",
     "X_2 declared but X_1 is not"),
    ("(declare-const Y_1 Real)\n(declare-const X_0 Real)\n", "1:16", "Y_1 declared but Y_0"),
    (DECL + "(assert (<= X_0 #1))\n", "3:17", "unexpected character '#'"),
    (DECL + "(assert (<= X_0 1,5))\n", "3:18", "unexpected character ','"),
    (DECL + "(assert (<= |X_0| 1))\n", "3:13", "unexpected character '|'"),
    (DECL + "(assert (<= X_0 1.2.3))\n", "3:17", "malformed number '1.2.3'"),
    (DECL + "(assert (<= X_0 1e99999))\n", "3:17", "too large an exponent"),
    (DECL + "(assert (<= X_0 0." + "1" * 5000 + "))\n", "3:17", "too many digits"),
    (DECL + "(assert (<= X_0 1e" + "1" * 5000 + "))\n", "3:17", "too large an exponent"),
    (DECL + "(assert (<= (/ X_0) 1))\n", "3:13", "'/' needs two arguments"),
    (DECL + "(assert " + "(and " * 5000 + "(<= X_0 1)" + ")" * 5001 + "\n", "3:1", "too deeply"),
])
def test_errors(text, where, message):
    with pytest.raises(InputError) as e:
        parse_vnnlib(text, "bad.vnnlib")
    msg = str(e.value)
    assert msg.startswith(f"bad.vnnlib:{where}: ") and message in msg and "\n" not in msg


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["(", ")", " ", "\n", "; c\n", "assert", "declare-const", "Real",
                                 "Int", "X_0", "Y_0", "X_1", "<=", "<", "=", "and", "or", "+",
                                 "-", "*", "/", "0", "-1.5", "1e3", "1.2.3", "#", "|"]),
                max_size=30))
def test_garbage_gives_input_error_or_property(tokens):
    text = DECL + " ".join(tokens)
    try:
        p = parse_vnnlib(text, "g.vnnlib")
    except InputError as e:
        assert str(e).startswith("g.vnnlib:") and "\n" not in str(e)
    else:
        assert p.n_inputs in (1, 2) and p.n_outputs == 1
        p.input_boxes()  # whatever was parsed, the helpers must cope
        env = p.bind([0] * p.n_inputs, [0.5] * p.n_outputs)
        assert (p.violations(env) == []) == p.holds(env)


def test_load(tmp_path):
    with pytest.raises(InputError, match="missing.vnnlib"):
        load_vnnlib(tmp_path / "missing.vnnlib")
    with pytest.raises(InputError, match="cannot read"):
        load_vnnlib(tmp_path)
    (tmp_path / "latin1.vnnlib").write_bytes(b"; caf\xe9\n")
    with pytest.raises(InputError, match="latin1.vnnlib"):
        load_vnnlib(tmp_path / "latin1.vnnlib")
    (tmp_path / "bom.vnnlib").write_bytes(b"\xef\xbb\xbf" + DECL.encode())
    p = load_vnnlib(tmp_path / "bom.vnnlib")
    assert repr(p) == f"Property(n_inputs=1, n_outputs=1, source={str(tmp_path / 'bom.vnnlib')!r})"


# --- round trip of random linear properties ---------------------------------------------------

# A test-side model: expressions are ("var", name) | ("num", Fraction, style) |
# (op, [args]) for + - | ("*", c, e, left) | ("/", e, c); formulas are ("cmp", op, [e...]) |
# ("and"|"or", [f...]). It has its own printer and evaluator, so the parser is checked against
# an independent reading of the same text.

def _decimal(q: F, style: int) -> str:
    """q (a finite decimal) written as a plain, scientific or `(- ...)` literal."""
    k = 0
    while (q * 10**k).denominator != 1:
        k += 1
    m = int(q * 10**k)
    if style == 1:
        return f"{m}e-{k}" if k else f"{m}E+0"
    if style == 2 and q < 0:
        return f"(- {_decimal(-q, 0)})"
    digits = str(abs(m)).rjust(k + 1, "0")
    s = f"{digits[:-k]}.{digits[-k:]}" if k else digits
    return ("-" if m < 0 else "") + s


def _show(e) -> str:
    tag = e[0]
    if tag == "var":
        return e[1]
    if tag == "num":
        return _decimal(e[1], e[2]) if e[2] < 3 else f"(/ {e[1].numerator} {e[1].denominator})"
    if tag == "*":
        c, t = _show(("num", e[1], 0)), _show(e[2])
        return f"(* {c} {t})" if e[3] else f"(* {t} {c})"
    if tag == "/":
        return f"(/ {_show(e[1])} {_show(('num', e[2], 0))})"
    if tag == "cmp":
        return f"({e[1]} {' '.join(_show(a) for a in e[2])})"
    return f"({tag} {' '.join(_show(a) for a in e[1])})"


def _value(e, env, tol):
    tag = e[0]
    if tag == "var":
        return env[e[1]]
    if tag == "num":
        return e[1]
    if tag == "+":
        return sum((_value(a, env, tol) for a in e[1]), F(0))
    if tag == "-":
        vals = [_value(a, env, tol) for a in e[1]]
        return -vals[0] if len(vals) == 1 else vals[0] - sum(vals[1:])
    if tag == "*":
        return e[1] * _value(e[2], env, tol)
    if tag == "/":
        return _value(e[1], env, tol) / e[2]
    if tag == "cmp":
        vals = [_value(a, env, tol) for a in e[2]]
        return all(_holds(e[1], a, b, tol) for a, b in zip(vals, vals[1:]))
    results = [_value(a, env, tol) for a in e[1]]
    return all(results) if tag == "and" else any(results)


def _holds(op, a, b, tol):
    if op in ("<=", "<"):
        return a <= b + tol if tol or op == "<=" else a < b
    if op in (">=", ">"):
        return a >= b - tol if tol or op == ">=" else a > b
    return abs(a - b) <= tol


decimals = st.builds(lambda m, k: F(m, 10**k), st.integers(-40, 40), st.integers(0, 2))
grid = st.sampled_from([F(k, 4) for k in range(-12, 13)])  # coarse, so ties do occur


@functools.cache  # building the recursive strategies once per shape keeps the test fast
def _formulas(names: tuple[str, ...]):
    leaf = st.one_of(st.sampled_from(names).map(lambda v: ("var", v)),
                     st.tuples(st.just("num"), decimals, st.integers(0, 2)),
                     st.tuples(st.just("num"), st.fractions(-3, 3, max_denominator=7),
                               st.just(3)))
    expr = st.recursive(leaf, lambda e: st.one_of(
        st.tuples(st.just("+"), st.lists(e, min_size=1, max_size=3)),
        st.tuples(st.just("-"), st.lists(e, min_size=1, max_size=3)),
        st.tuples(st.just("*"), decimals, e, st.booleans()),
        st.tuples(st.just("/"), e, decimals.filter(bool))), max_leaves=5)
    atom = st.tuples(st.just("cmp"), st.sampled_from(["<=", "<", ">=", ">", "="]),
                     st.lists(expr, min_size=2, max_size=3))
    return st.recursive(atom, lambda f: st.tuples(st.sampled_from(["and", "or"]),
                                                  st.lists(f, min_size=1, max_size=3)),
                        max_leaves=4)


@st.composite
def properties(draw):
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    names = tuple([f"X_{i}" for i in range(n_in)] + [f"Y_{j}" for j in range(n_out)])
    asserts = draw(st.lists(_formulas(names), min_size=1, max_size=3))
    order = draw(st.permutations(names))
    text = "".join(f"(declare-const {v} Real)\n" for v in order)
    text += "".join(f"; assert {i}\n(assert {_show(a)})\n" for i, a in enumerate(asserts))
    points = draw(st.lists(st.lists(grid, min_size=len(names), max_size=len(names)),
                           min_size=4, max_size=4))
    return n_in, n_out, asserts, text, names, points


@settings(max_examples=60, deadline=None)
@given(properties())
def test_round_trip_evaluates_identically(case):
    n_in, n_out, asserts, text, names, points = case
    p = parse_vnnlib(text)
    assert (p.n_inputs, p.n_outputs, len(p.asserts)) == (n_in, n_out, len(asserts))
    # printing the parsed terms and parsing again gives the same text (a one-argument and/or
    # prints as its argument) and the same truth values
    decls = "".join(f"(declare-const {v} Real)\n" for v in names)
    again = parse_vnnlib(decls + "".join(f"(assert {format_term(t)})\n" for _, t in p.asserts))
    assert [format_term(t) for _, t in again.asserts] == [format_term(t) for _, t in p.asserts]
    for point in points:
        env = dict(zip(names, point))
        assert again.holds(env) == p.holds(env)
        for tol in (0, F(1, 4)):
            expected = all(_value(a, env, tol) for a in asserts)
            assert p.holds(env, tol) == expected
            assert (p.violations(env, tol) == []) == expected


def test_term_eval_division_and_floor_exactly():
    """Div and Floor evaluate exactly (the MILP backend's exact check uses `term_eval`)."""
    from nnsmt.terms import Div, Floor
    assert term_eval(Div(Var("a"), Num(F(3))), {"a": F(1)}) == F(1, 3)
    assert term_eval(Floor(Num(F(-1, 2))), {}) == -1 and term_eval(Floor(Num(F(7, 2))), {}) == 3
    with pytest.raises(ZeroDivisionError):
        term_eval(Div(Num(F(1)), Var("z")), {"z": 0.0})
