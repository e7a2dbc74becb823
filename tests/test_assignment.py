"""VNN-LIB 2 assignments (the standard's 5.3.1 text, serialised TensorProtos) and VNN-LIB 1.0
properties written as VNN-LIB 2.0 queries (checked with the standard's own parser)."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.assignment import (AssignmentError, Decl, assertion_text, format_assignment, format_value,
                              parse_assignment, read_pb, tensor_bytes, vnnlib1_to_2, write_pb)
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.terms import Add, And, Bool, Cmp, Mul, Not, Num, Or, Var
from nnsmt.vnnlib import load_vnnlib, parse_vnnlib

from conftest import have, need_shared

# the standard's example (chapter 5, command-line assignment format): two networks
EXAMPLE_DECLS = [Decl("A", "float32", (2, 2), "input", "f"), Decl("B", "int32", (1,), "input", "f"),
                 Decl("H", "float32", (1, 2), "hidden", "f"), Decl("Y", "float32", (1,), "output", "f"),
                 Decl("C", "float32", (2, 2), "input", "g"), Decl("Z", "float32", (1,), "output", "g")]
EXAMPLE = """\
A float32 [2,2]
0.5
0.3
0.4
0.2
B int32 [1]
-1
H Real [1,2]
0.5
0.3
Y Real [1]
0.1
C Real [2,2]
1.0
0.3
0.4
0.2
Z Real [1]
0.0
"""
F = Fraction


def test_decl_size_header_and_refs():
    a = Decl("A", "float32", [2, 3], "input", "f")
    assert a.shape == (2, 3) and a.size == 6 and a.header == "A float32 [2,3]"
    assert [a.ref(k) for k in (0, 1, 3, 5)] == ["A[0,0]", "A[0,1]", "A[1,0]", "A[1,2]"]
    s = Decl("S", "real", (), "output")
    assert s.size == 1 and s.header == "S real []" and s.ref(0) == "S"
    with pytest.raises(InputError, match="kind 'weights'"):
        Decl("W", "float32", (1,), "weights")
    with pytest.raises(InputError, match="'float33' is not a VNN-LIB element type"):
        Decl("W", "float33", (1,), "input")


def test_the_standards_example_parses_exactly():
    got = parse_assignment(EXAMPLE, EXAMPLE_DECLS)
    assert got == {"A": [F(1, 2), F(3, 10), F(2, 5), F(1, 5)], "B": [F(-1)], "H": [F(1, 2), F(3, 10)],
                   "Y": [F(1, 10)], "C": [F(1), F(3, 10), F(2, 5), F(1, 5)], "Z": [F(0)]}


def test_format_writes_the_standards_example():
    """The example's first two variables, byte for byte (no spaces in the shape, 1.0 as 1.0)."""
    text = format_assignment([(EXAMPLE_DECLS[0], [0.5, 0.3, 0.4, 0.2]), (EXAMPLE_DECLS[1], [-1])])
    assert text == EXAMPLE.split("H Real")[0]
    assert format_assignment([(Decl("C", "float32", (2,), "input"), [1.0, F(3, 10)])]) == "C float32 [2]\n1.0\n0.3\n"


def test_any_order_spaces_in_shapes_and_optional_outputs():
    decls = EXAMPLE_DECLS
    text = "C float32 [2, 2]\n1\n2\n3\n4\n\nB int32 [ 1 ]\n7\nA float32 [2,2]\n1e-3\n-0.0\n.5\n2.\n"
    assert parse_assignment(text, decls) == {"C": [F(1), F(2), F(3), F(4)], "B": [F(7)],
                                             "A": [F(1, 1000), F(0), F(1, 2), F(2)]}


@pytest.mark.parametrize("dtype, np_t, width", [("float32", np.float32, 32), ("float16", np.float16, 16),
                                                ("float64", np.float64, 64)])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_float_values_round_trip_as_their_shortest_decimal(dtype, np_t, width, data):
    v = data.draw(st.floats(width=width, allow_nan=False, allow_infinity=False))
    text = format_value(v, dtype)
    assert re.fullmatch(r"-?\d+\.\d+", text), text  # positional: VNN-LIB 2 has no exponents
    assert text == np.format_float_positional(np_t(v), unique=True, trim="0")
    d = Decl("V", dtype, (), "input")
    (back,) = parse_assignment(format_assignment([(d, [v])]), [d])["V"]
    assert np_t(float(back)) == np_t(v) and back == Fraction(text)  # the value of that type, exactly as written


def test_shortest_float32_decimals():
    assert [format_value(v, "float32") for v in (1.0, 0.1, np.float32(0.1), -2.5, 1e30, F(1, 3))] == \
        ["1.0", "0.1", "0.1", "-2.5", "1000000000000000000000000000000.0", "0.33333334"]
    assert format_value(np.float32(0.1), "float64") == "0.10000000149011612"  # the float32 value, in float64
    assert format_value(65504, "float16") == "65500.0"  # the shortest decimal that rounds to it
    with pytest.raises(AssignmentError, match="outside the range of float16"):
        format_value(70000, "float16")
    with pytest.raises(AssignmentError, match="not a finite number"):
        format_value(float("nan"), "float32")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=6),
       st.lists(st.integers(0, 255), min_size=1, max_size=3))
def test_int_values_round_trip(xs, bs):
    d, u = Decl("I", "int32", (len(xs),), "input"), Decl("U", "uint8", (len(bs),), "input")
    text = format_assignment([(d, xs), (u, bs)])
    assert parse_assignment(text, [d, u]) == {"I": [F(x) for x in xs], "U": [F(b) for b in bs]}


def test_int_values_must_be_integers_in_range():
    with pytest.raises(AssignmentError, match="not a int32"):
        format_value(F(1, 2), "int32")
    with pytest.raises(AssignmentError, match="not a uint8"):
        format_value(256, "uint8")
    assert format_value(F(-3), "int64") == "-3" and format_value(True, "bool") == "1"


@settings(max_examples=200, deadline=None)
@given(st.fractions(max_denominator=10**6) | st.floats(allow_nan=False, allow_infinity=False).map(Fraction))
def test_real_values_round_trip_exactly_when_their_decimal_terminates(q):
    d = Decl("R", "real", (1,), "input")
    (back,) = parse_assignment(format_assignment([(d, [q])]), [d])["R"]
    den = q.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:
        assert back == q  # every float and every decimal: exact
    else:  # 1/3: its shortest float64 decimal (the documented rounding)
        assert float(back) == float(q) and back == Fraction(repr(float(q)))


def test_real_text_is_exact_for_float_rationals():
    from decimal import Decimal
    v = 0.3033055271057058
    assert format_value(Fraction(v), "real") == format(Decimal(v), "f")  # the float's exact decimal
    assert format_value(F(1, 3), "real") == "0.3333333333333333"
    assert format_value(F(-7), "real") == "-7" and format_value(F(-1, 8), "real") == "-0.125"


D2 = [Decl("A", "float32", (2, 2), "input"), Decl("B", "int32", (1,), "input"), Decl("Y", "float32", (1,), "output")]


@pytest.mark.parametrize("text, message", [
    ("A float32 [2,2]\n1\n2\n3\nB int32 [1]\n1\n", r"^line 1: A is declared float32 \[2,2\], so it needs 4 values, but 3 follow \(up to line 4\)"),
    ("B int32 [1]\n1\nA float32 [2,2]\n1\n2\n3\n", r"^line 3: A .* needs 4 values, but 3 follow \(up to line 6\)"),
    ("A float32 [2,2]\n1\n2\n3\n4\n5\nB int32 [1]\n1\n", r"^line 6: A is declared with 4 values, and this is one more \('5'\)"),
    ("A float32 [4]\n1\n2\n3\n4\nB int32 [1]\n1\n", r"^line 1: A has shape \[4\], but the query declares \[2,2\]"),
    ("A float32 [2,2]\n1\n2\n3\n4\nQ int32 [1]\n1\n", r"^line 6: unknown variable 'Q' \(the query declares A, B, Y\)"),
    ("A float32 [2,2]\n1\nabc\n3\n4\nB int32 [1]\n1\n", r"^line 3: value of A: 'abc' is not a number"),
    ("A float32 [2,2]\n1\ninf\n3\n4\nB int32 [1]\n1\n", r"^line 3: value of A: 'inf' is not a number \(an assignment value must be finite\)"),
    ("A float32 [2,2]\n1\n2\n3\n4\nB int32 [1]\nnan\n", r"^line 7: value of B: 'nan' is not a number"),
    ("A float32 [2,2]\n1\n2\n3\n4\nB int32 [1]\n1.5\n", r"^line 7: value of B: '1.5' is not an integer, but the variable is int32"),
    ("0.5\nA float32 [2,2]\n", r"^line 1: value '0.5' before any variable header"),
    ("A int32 [2,2]\n1\n2\n3\n4\n", r"^line 1: A has type int32, but the query declares it float32"),
    ("B int32 [1]\n1\nB int32 [1]\n1\n", r"^line 3: B is assigned twice"),
    ("A float32 2,2\n", r"^line 1: 'A float32 2,2' is neither a value nor a header"),
    ("A float32 [2,x]\n", r"^line 1: A: malformed dimensions \[2,x\]"),
    ("A float32 [2,2]\n1\n2\n3\n4\nY float32 [1]\n0\n", r"^no values for input B int32 \[1\] \(after line 7\)"),
    ("", r"^no values for input A float32 \[2,2\]"),
])
def test_each_error_names_its_line(text, message):
    with pytest.raises(AssignmentError, match=message) as e:
        parse_assignment(text, D2)
    assert isinstance(e.value, InputError) and e.value.exit_code == 2


def test_line_numbers_count_from_first_line():
    """After a verdict line the assignment starts at line 2 of stdout: messages say so."""
    with pytest.raises(AssignmentError, match="^line 4: value of A: 'x' is not a number"):
        parse_assignment("A float32 [2,2]\n1\nx\n", D2, first_line=2)


def test_format_refuses_the_wrong_number_of_values():
    with pytest.raises(AssignmentError, match=r"A float32 \[2,2\] needs 4 values, got 3"):
        format_assignment([(D2[0], [1, 2, 3])])


# ---- serialised TensorProtos ----

PB_CASES = [("float32", (2, 2), [0.5, F(1, 3), -2.0, 1e30], np.float32),
            ("float16", (3,), [0.1, -65504.0, 6e-8], np.float16),
            ("float64", (1, 2), [F(1, 3), -0.0], np.float64),
            ("real", (2,), [F(1, 10), 5e-324], np.float64),
            ("int32", (3,), [-1, 2**31 - 1, -2**31], np.int32),
            ("int64", (2,), [-2**63, 5], np.int64),
            ("uint8", (2,), [0, 255], np.uint8),
            ("uint64", (1,), [2**64 - 1], np.uint64),
            ("bool", (2,), [1, 0], np.bool_),
            ("int8", (), [-7], np.int8)]


@pytest.mark.parametrize("dtype, shape, values, np_t", PB_CASES)
def test_pb_round_trip_and_onnx_agrees(tmp_path, dtype, shape, values, np_t):
    d = Decl("V1", dtype, shape, "input")
    path = write_pb(tmp_path, d, values)
    assert path == tmp_path / "V1.pb"
    want = np.array([float(v) if np.issubdtype(np_t, np.floating) else int(v) for v in values]).astype(np_t)
    got = read_pb(path, d)
    assert got == [Fraction(v.item()) for v in want]
    if not have("onnx"):
        return
    import onnx
    from onnx import numpy_helper
    t = onnx.load_tensor(str(path))  # onnx reads nnsmt's bytes ...
    assert t.name == "V1" and tuple(t.dims) == shape
    assert np.array_equal(numpy_helper.to_array(t), want.reshape(shape))
    assert t.SerializeToString() == tensor_bytes(d, values)  # ... byte for byte as onnx writes them


@pytest.mark.skipif(not have("onnx"), reason="onnx is not installed")
@pytest.mark.parametrize("dtype, shape, values, np_t", PB_CASES)
def test_pb_reads_what_onnx_writes_raw_or_typed(tmp_path, dtype, shape, values, np_t):
    """onnx's own files, with raw_data and with the typed fields (float_data, int32_data with
    negative varints and float16 bits, int64_data, uint64_data, double_data)."""
    from onnx import helper, numpy_helper
    d = Decl("V", dtype, shape, "input")
    arr = np.array([float(v) if np.issubdtype(np_t, np.floating) else int(v) for v in values]).astype(np_t).reshape(shape)
    want = [Fraction(v.item()) for v in arr.reshape(-1)]
    raw = numpy_helper.from_array(arr, "V")
    (tmp_path / "raw.pb").write_bytes(raw.SerializeToString())
    assert read_pb(tmp_path / "raw.pb", d) == want
    typed = helper.make_tensor("V", raw.data_type, shape, arr.reshape(-1).tolist(), raw=False)
    (tmp_path / "typed.pb").write_bytes(typed.SerializeToString())
    assert read_pb(tmp_path / "typed.pb", d) == want


def test_pb_errors_name_the_file(tmp_path):
    d = Decl("A", "float32", (2,), "input")
    write_pb(tmp_path, d, [1, 2])
    with pytest.raises(AssignmentError, match=r"A.pb: A has shape \[2\], but the query declares \[1, 2\]"):
        read_pb(tmp_path / "A.pb", Decl("A", "float32", (1, 2), "input"))
    with pytest.raises(AssignmentError, match="A.pb: A has element type float32, but the query declares float64"):
        read_pb(tmp_path / "A.pb", Decl("A", "float64", (2,), "input"))
    (tmp_path / "cut.pb").write_bytes((tmp_path / "A.pb").read_bytes()[:-3])
    with pytest.raises(AssignmentError, match="cut.pb: truncated"):
        read_pb(tmp_path / "cut.pb", d)
    with pytest.raises(AssignmentError, match="missing.pb: cannot read"):
        read_pb(tmp_path / "missing.pb", d)
    write_pb(tmp_path, Decl("N", "float32", (1,), "input"), [0.0])
    nan = (tmp_path / "N.pb").read_bytes()[:-4] + np.array([np.nan], "<f4").tobytes()
    (tmp_path / "N.pb").write_bytes(nan)
    with pytest.raises(AssignmentError, match="N.pb: N holds nan, not a finite number"):
        read_pb(tmp_path / "N.pb", Decl("N", "float32", (1,), "input"))


# ---- VNN-LIB 1.0 -> 2.0 ----

def _terms_of(q, shapes):
    """The parsed VNN-LIB 2 query's assertions as nnsmt terms over X_i / Y_j (flat row-major
    indices), constants exact from their lexemes: an oracle independent of nnsmt's writer."""
    import vnnlib
    ops = {"LessEqual": "<=", "LessThan": "<", "GreaterEqual": ">=", "GreaterThan": ">", "Equal": "="}

    def conv(e):
        k = type(e).__name__
        if k == "Var":
            return Var(f"{e.name}_{int(np.ravel_multi_index(tuple(e.indices), shapes[e.name])) if e.indices else 0}")
        if k in ("Float", "Int"):
            return Num(Fraction(e.lexeme))
        if k in ops:
            return Cmp(ops[k], conv(e.lhs), conv(e.rhs))
        if k in ("And", "Or"):
            return (And if k == "And" else Or)(tuple(conv(a) for a in e.args))
        if k in ("Plus", "Multiply"):
            return (Add if k == "Plus" else Mul)(tuple(conv(a) for a in e.args))
        raise AssertionError(f"unexpected {k} in nnsmt's output")
    assert isinstance(q, vnnlib.Query)
    return [conv(a.expr) for a in q.assertions]


needs_parser = pytest.mark.skipif(not have("vnnlib"), reason="the vnnlib parser (pip install vnnlib) is missing")


@needs_parser
@pytest.mark.parametrize("path, in_shape, out_shape", [
    (("vnncomp-test", "test_small.vnnlib"), (1,), (1,)),
    (("vnncomp-test", "test_prop.vnnlib"), (1, 1, 1, 5), (1, 5)),
    (("acasxu", "prop_1.vnnlib"), (1, 1, 1, 5), (1, 5)),
    (("acasxu", "prop_6.vnnlib"), (1, 1, 1, 5), (1, 5)),
    (("acasxu", "prop_9.vnnlib"), (1, 1, 1, 5), (1, 5)),
    (("mnistfc", "prop_0_0.03.vnnlib"), (1, 784), (1, 10)),
])
def test_vnnlib1_to_2_parses_and_keeps_every_constant(path, in_shape, out_shape):
    import vnnlib
    prop = load_vnnlib(need_shared("benchmarks", *path))
    text = vnnlib1_to_2(prop, in_shape, out_shape)
    assert "(declare-input X float32 [" + ",".join(map(str, in_shape)) + "])" in text
    q = vnnlib.parse_query_string(text)
    assert [d.name for n in q.networks for d in (*n.inputs, *n.outputs)] == ["X", "Y"]
    assert list(q.networks[0].inputs[0].shape) == list(in_shape)
    assert _terms_of(q, {"X": in_shape, "Y": out_shape}) == [t for _, t in prop.asserts]


@needs_parser
def test_vnnlib1_to_2_rewrites_what_vnnlib2_lacks():
    """= becomes ==, not is pushed onto the comparisons, constant atoms are decided, integers
    get their decimal point (float types) or keep none (integer types)."""
    import vnnlib
    prop = parse_vnnlib("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                        "(assert (= X_0 (* 2 X_1)))\n(assert (<= 0 1))\n"
                        "(assert (or (<= 1 0) (>= Y_0 (- X_0 3))))\n", "p.vnnlib")
    text = vnnlib1_to_2(prop, (2,), (), network="net", x="In", y="Out")
    body = [line for line in text.splitlines() if line.startswith("(assert")]
    assert body == ["(assert (== In[0] (* 2.0 In[1])))",
                    "(assert (or (>= Out (+ In[0] -3.0))))"]
    vnnlib.parse_query_string(text)
    neg = Not(And((Cmp("=", Var("X_0"), Num(F(1, 4))), Or((Cmp("<", Var("X_1"), Num(2)), Bool(False))))))
    var = {"X_0": ("X[0]", "int32"), "X_1": ("X[1]", "int32")}.__getitem__
    with pytest.raises(UnsupportedError, match="constant 1/4 in a comparison of int32 values is not an integer"):
        assertion_text(neg, var)
    neg = Not(And((Cmp("=", Var("X_0"), Num(4)), Or((Cmp("<", Var("X_1"), Num(-2)), Bool(False))))))
    assert assertion_text(neg, var) == "(assert (or (!= X[0] 4) (and (>= X[1] -2))))"
    assert assertion_text(Or((Bool(True), Cmp("<", Var("X_0"), Num(1)))), var) is None


def test_vnnlib1_to_2_refuses_inexact_constants_and_bad_shapes():
    prop = parse_vnnlib("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n\n(assert (<= X_0 (/ 1 3)))\n",
                        "third.vnnlib")
    with pytest.raises(UnsupportedError, match=r"third.vnnlib:4: constant 1/3 \(about 0.3333333333333333[0-9]*\) "
                                               "has no exact decimal"):
        vnnlib1_to_2(prop, (1,), (1,))
    with pytest.raises(InputError, match=r"third.vnnlib has 1 inputs, but shape \[1, 2\] holds 2"):
        vnnlib1_to_2(prop, (1, 2), (1,))
    false = parse_vnnlib("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= 1 0))\n", "f.vnnlib")
    with pytest.raises(UnsupportedError, match="f.vnnlib:3: an assertion is false whatever the values"):
        vnnlib1_to_2(false, (1,), (1,))
