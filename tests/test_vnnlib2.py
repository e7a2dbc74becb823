"""VNN-LIB 2 queries at the library level (`nnsmt.vnnlib2`, `nnsmt.engine.standard`).

Parsing is checked against layouts and values derived by hand (flat names, row-major indices,
constants rounded to the declared type, checked against numpy where numpy is exact and by hand
where it is not) and against Python predicates written from the query text. The lowering of
several networks onto one graph is checked against onnxruntime running each model on its own
(hidden values added as outputs of a copy). Float semantics are checked against an exhaustive
IEEE oracle: every float of the input interval, run op by op in numpy.
"""

from __future__ import annotations

import functools
import tempfile
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from nnsmt.engine.standard import assignment, prepare, verify
from nnsmt.engine.verify import VerifyOptions
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import evaluate_exact
from nnsmt.vnnlib2 import load_query, parse_query

from conftest import EXAMPLES

F = Fraction
ONNX_T = {"float16": (np.float16, TensorProto.FLOAT16), "float32": (np.float32, TensorProto.FLOAT),
          "float64": (np.float64, TensorProto.DOUBLE)}
OPTS = VerifyOptions(backend="z3", timeout=60)


# ---- models, built here with onnx.helper ---------------------------------------------------------

def save_model(path, nodes, inputs, outputs, inits, dtype="float32") -> str:
    """An opset-13 model at `path`: inputs/outputs as [(name, shape)], inits {name: array}."""
    npt, ot = ONNX_T[dtype]
    g = helper.make_graph(nodes, Path(path).stem,
                          [helper.make_tensor_value_info(n, ot, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, ot, s) for n, s in outputs],
                          [numpy_helper.from_array(np.asarray(v, npt), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


def mlp(path, w1, b1, w2, b2, dtype="float64") -> str:
    """x [1,n] -> a1 = Gemm(x) -> h = Relu(a1) -> y = Gemm(h)."""
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["a1"], transB=1),
             helper.make_node("Relu", ["a1"], ["h"]),
             helper.make_node("Gemm", ["h", "W2", "B2"], ["y"], transB=1)]
    return save_model(path, nodes, [("x", [1, w1.shape[1]])], [("y", [1, w2.shape[0]])],
                      {"W1": w1, "B1": b1, "W2": w2, "B2": b2}, dtype)


def two_in(path, wu, wv, b, wo, dtype="float32") -> str:
    """Inputs u [1,m], v [1,k]: r = Relu(Gemm(u) + MatMul(v, wv^T)); outputs o1 = Gemm(r),
    o2 = Concat(r, v)."""
    nodes = [helper.make_node("Gemm", ["u", "WU", "B"], ["gu"], transB=1),
             helper.make_node("MatMul", ["v", "WVT"], ["gv"]),
             helper.make_node("Add", ["gu", "gv"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Gemm", ["r", "WO", "BO"], ["o1"], transB=1),
             helper.make_node("Concat", ["r", "v"], ["o2"], axis=1)]
    n = wu.shape[0]
    return save_model(path, nodes, [("u", [1, wu.shape[1]]), ("v", [1, wv.shape[1]])],
                      [("o1", [1, wo.shape[0]]), ("o2", [1, n + wv.shape[1]])],
                      {"WU": wu, "B": b, "WVT": wv.T, "WO": wo, "BO": np.zeros(wo.shape[0])}, dtype)


def cancel(path, big, dtype) -> str:
    """y = (x + big) + (-big), two ONNX Adds (h = x + big is a value of its own): y = x over
    the reals, 0 in float for |x| below half an ulp of big."""
    nodes = [helper.make_node("Add", ["x", "B"], ["h"]), helper.make_node("Add", ["h", "NB"], ["y"])]
    return save_model(path, nodes, [("x", [1])], [("y", [1])], {"B": [big], "NB": [-big]}, dtype)


def ort_run(path, feeds: dict, extra=()) -> dict:
    """onnxruntime on a copy of the model with `extra` values added as outputs, op by op (no
    graph optimisations); name -> flat float64 array."""
    import onnxruntime as ort
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    for name in extra:
        if name not in have:
            m.graph.output.append(helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in m.graph.output]
    return {n: np.asarray(v, np.float64).ravel() for n, v in zip(names, sess.run(names, feeds))}


def all_floats(lo, hi, T) -> np.ndarray:
    """Every finite value of float type T in [lo, hi] (0 < lo < hi), in order."""
    bits = {np.float16: np.uint16, np.float32: np.uint32}[T]
    a, b = np.array([lo], T).view(bits)[0], np.array([hi], T).view(bits)[0]
    return np.arange(a, b + 1, dtype=bits).view(T)


def nearest(q: Fraction, T) -> Fraction:
    """The value of float type T nearest to q, as a Fraction (numpy's conversion of the float64
    nearest to q: exact unless float64 rounds q onto a midpoint of T, which the cases avoid)."""
    return F(float(T(float(q))))


# ---- parsing: flat names, offsets, indices ----------------------------------------------------

MULTI = """(vnnlib-version <2.0>)
(declare-network A
  (declare-input X real [2,3])
  (declare-input S real [])
  (declare-hidden H real [2] "h")
  (declare-output Y real [3])
)
(declare-network B
  (declare-input U real [1,2])
  (declare-hidden G real [] "g")
  (declare-output V real [2])
  (declare-output W real [1])
)
(assert (<= X[1,2] 0.1))
(assert (>= (* 2.0 S S) (+ U[0,1] 1.0)))
(assert (or (!= H[1] G) (== V[1] W[0])))
(assert (and (> Y[2] -3.0) (< (- V[0] 0.5) 0.001) (<= (- S) X[0,0])))
"""


def test_flat_names_and_offsets_across_networks():
    """Inputs in declaration order across networks: X (6) -> X_0..5, S -> X_6, U -> X_7..8.
    Hidden and outputs network by network, hidden first: H -> Y_0..1, Y -> Y_2..4 (A), then
    G -> Y_5, V -> Y_6..7, W -> Y_8 (B)."""
    q = parse_query(MULTI, "multi.vnnlib")
    assert dict(q.offsets) == {"X": 0, "S": 6, "U": 7, "H": 0, "Y": 2, "G": 5, "V": 6, "W": 8}
    assert (q.prop.n_inputs, q.prop.n_outputs) == (9, 9)
    assert [d.name for d in q.decls] == ["X", "S", "H", "Y", "U", "G", "V", "W"]
    assert [(d.kind, d.network, d.shape) for d in q.decls][:4] == [
        ("input", "A", (2, 3)), ("input", "A", ()), ("hidden", "A", (2,)), ("output", "A", (3,))]
    assert [n.hidden_onnx for n in q.networks] == [("h",), ("g",)]
    assert [line for line, _ in q.prop.asserts] == [14, 15, 16, 17]
    assert q.theories() == {"hidden": "H", "io": "MIO", "networks": "MNET"}
    assert q.needs_file() == ("A", "B")


def _semantics_of_multi(x, y) -> bool:
    """MULTI's asserts written directly in Python over the flat values (x: 9, y: 9)."""
    X, S, U = x[0:6], x[6], x[7:9]
    H, Y, G, V, W = y[0:2], y[2:5], y[5], y[6:8], y[8]
    return (X[1 * 3 + 2] <= F(1, 10) and 2 * S * S >= U[1] + 1
            and (H[1] != G or V[1] == W) and Y[2] > -3 and V[0] - F(1, 2) < F(1, 1000)
            and -S <= X[0])


SMALL = st.sampled_from([F(-3), F(-1), F(0), F(1, 10), F(1, 2), F(1), F(3)])


@settings(max_examples=300, deadline=None)
@given(st.lists(SMALL, min_size=9, max_size=9), st.lists(SMALL, min_size=9, max_size=9))
def test_connectives_comparisons_and_polynomials_mean_what_they_say(x, y):
    """!=, ==, and, or, <, <=, >, >=, unary and binary minus, products of variables: the lowered
    property holds exactly where the Python transcription of the query does (values from a
    small set, so equalities happen)."""
    q = _multi()
    assert q.prop.holds(q.prop.bind(x, y)) == _semantics_of_multi(x, y)


@functools.cache
def _multi():
    return parse_query(MULTI, "multi.vnnlib")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).flatmap(
    lambda shape: st.tuples(st.just(shape), st.tuples(*[st.integers(0, d - 1) for d in shape]))))
def test_multi_index_is_row_major(case):
    """X[i,j,k] of shape [a,b,c] is X_{off + i*b*c + j*c + k}, after a first input of 2."""
    shape, idx = case
    strides = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        strides[k] = strides[k + 1] * shape[k + 1]
    flat = 2 + sum(i * s for i, s in zip(idx, strides))
    text = ("(vnnlib-version <2.0>)\n(declare-network N\n  (declare-input A real [2])\n"
            f"  (declare-input X real [{','.join(map(str, shape))}])\n  (declare-output Y real [1])\n)\n"
            f"(assert (<= X[{','.join(map(str, idx))}] 1.0))\n")
    q = parse_query(text)
    (_, t), = q.prop.asserts
    assert t.lhs.name == f"X_{flat}"
    env = {f"X_{k}": F(2) for k in range(q.prop.n_inputs)} | {"Y_0": F(0)}
    assert not q.prop.holds(env) and q.prop.holds(env | {f"X_{flat}": F(1)})


def test_scalar_variables():
    """Shape [] declares one element, referenced without brackets."""
    q = parse_query("(vnnlib-version <2.0>)\n(declare-network N\n  (declare-input X real [])\n"
                    "  (declare-input Z real [2])\n  (declare-output Y real [])\n)\n"
                    "(assert (<= X Z[1]))\n(assert (>= Y 0.5))\n", "s.vnnlib")
    assert [(d.name, d.shape, d.size) for d in q.decls] == [("X", (), 1), ("Z", (2,), 2), ("Y", (), 1)]
    assert dict(q.offsets) == {"X": 0, "Z": 1, "Y": 0}
    assert q.prop.holds(q.prop.bind([1, 0, 1], [F(1, 2)]))
    assert not q.prop.holds(q.prop.bind([1, 0, F(1, 2)], [1]))   # X <= Z[1] fails
    assert not q.prop.holds(q.prop.bind([0, 0, 1], [F(1, 4)]))   # Y >= 0.5 fails


# ---- parsing: constants -----------------------------------------------------------------------

def _const_query(dtype: str, lexeme: str) -> str:
    return (f"(vnnlib-version <2.0>)\n(declare-network N\n  (declare-input X {dtype} [1])\n"
            f"  (declare-output Y {dtype} [2])\n)\n(assert (<= X[0] {lexeme}))\n"
            f"(assert (>= Y[0] (+ Y[1] {lexeme})))\n")


def _consts(dtype: str, lexeme: str) -> tuple[Fraction, Fraction]:
    """The constant of X[0] <= c and of Y[0] >= Y[1] + c."""
    q = parse_query(_const_query(dtype, lexeme), "c.vnnlib")
    (_, a), (_, b) = q.prop.asserts
    return a.rhs.value, b.rhs.args[1].value


def _exact_decimal(s: str) -> Fraction:
    return F(Decimal(s))


@pytest.mark.parametrize("lexeme", ["0.1", "0.2", "-3.3", "100.1", "0.333333333333333333333333333333",
                                    "123456789.123456789", "0.0"])
def test_real_constants_are_the_exact_decimal(lexeme):
    assert _consts("real", lexeme) == (_exact_decimal(lexeme), _exact_decimal(lexeme))
    assert _consts("real", "0.1")[0] == F(1, 10)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("lexeme", ["0.1", "0.2", "-3.3", "100.1", "0.333333333333333333333333333333",
                                    "1.7", "-0.0001", "6.0"])
def test_float_constants_are_the_nearest_value_of_the_type(dtype, lexeme):
    """In a float-typed comparison (with a variable on either side, or beside an output sum)
    a constant is the value of that type nearest to its decimal (numpy's, for these lexemes)."""
    T = ONNX_T[dtype][0]
    want = nearest(_exact_decimal(lexeme), T)
    assert _consts(dtype, lexeme) == (want, want)
    if lexeme in ("0.1", "0.2", "-3.3", "1.7"):
        assert want != _exact_decimal(lexeme)  # not a value of the type: the rounding is visible


def test_float_constant_rounding_is_exact_from_the_lexeme():
    """Hand-derived: ties go to even, and rounding is done once from the decimal (a route
    through float64 would round 1 + 2^-24 + 2^-60 onto the float32 midpoint 1 + 2^-24 and then
    to 1; the nearest float32 is 1 + 2^-23)."""
    assert _consts("float32", "16777217.0")[0] == 2 ** 24             # tie: 2^24 (even)
    assert _consts("float32", "16777219.0")[0] == 2 ** 24 + 4         # tie: 16777220 (even)
    assert _consts("float16", "2049.0")[0] == 2048                    # tie: even
    assert _consts("float16", "2051.0")[0] == 2052                    # tie: even
    getcontext().prec = 100
    above_mid = Decimal(1) + Decimal(2) ** -24 + Decimal(2) ** -60
    lex = format(above_mid, "f")
    assert F(float(np.float32(float(lex)))) == 1                       # the double rounding
    assert _consts("float32", lex)[0] == 1 + F(1, 2 ** 23)
    below_mid = Decimal(1) + Decimal(2) ** -24 - Decimal(2) ** -60
    assert _consts("float32", format(below_mid, "f"))[0] == 1


@pytest.mark.parametrize("dtype, lexeme, want", [
    ("float16", "65504.0", 65504), ("float16", "65519.0", 65504), ("float16", "-65504.0", -65504),
    ("float32", "340282346638528859811704183484516925440.0", F(float(np.finfo(np.float32).max)))])
def test_constants_at_the_largest_finite_value(dtype, lexeme, want):
    """Hand-derived: 65519 is below the midpoint 65520 between 65504 and 2^16 (inf)."""
    assert _consts(dtype, lexeme)[0] == want


def test_a_constant_beyond_the_type_is_refused():
    """70000 rounds to +inf in float16 (above 65520): no finite float16 element."""
    with pytest.raises(InputError, match="70000.*float16"):
        parse_query(_const_query("float16", "70000.0"), "c.vnnlib")


def test_a_constant_beyond_the_type_names_file_and_line(tmp_path):
    p = tmp_path / "c.vnnlib"
    p.write_text(_const_query("float16", "70000.0"))
    with pytest.raises(InputError, match=r"c\.vnnlib:6"):
        load_query(p)


def test_integer_lexeme_against_a_real_variable_is_a_type_error(tmp_path):
    """The standard's typing: `1` is an integer constant, a real comparison needs `1.0`."""
    p = tmp_path / "i.vnnlib"
    p.write_text(_const_query("real", "1"))
    with pytest.raises(InputError, match=r"i\.vnnlib:6"):
        load_query(p)


# ---- parsing: errors name the file and line ---------------------------------------------------

HEAD = "(vnnlib-version <2.0>)\n(declare-network N\n  (declare-input X {t} [2,3])\n  (declare-output Y {t} [2])\n)\n"


@pytest.mark.parametrize("tail, line, phrase", [
    ("(assert (<= X[0,0] 1.0))\n(assert (<= Z[0] 1.0))\n", 7, "Undeclared variable 'Z'"),
    ("(assert (<= X[0,0] 1.0))\n(assert (<= X[2,0] 1.0))\n", 7, "out of bounds"),
    ("(assert (<= X[0,0] 1.0))\n(assert (<= X[0,3] 1.0))\n", 7, "out of bounds"),
    ("(assert (<= X[0,0] 1.0))\n(assert (<= X[0,0,0] 1.0))\n", 7, "indices"),
    ("(assert (<= X[0,0] 1.0))\n(assert (<= X[0,0] 1.0)\n", 7, "syntax error"),
    ("(assert (<= X[0,0] 1.0))\n(assert (<= X[0,0] 1.0 2.0))\n", 7, ""),
])
def test_parse_errors_name_file_and_line(tmp_path, tail, line, phrase):
    p = tmp_path / "bad.vnnlib"
    p.write_text(HEAD.format(t="real") + tail)
    with pytest.raises(InputError) as e:
        load_query(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}:") and phrase in msg and "\n" not in msg


def test_real_spelled_with_a_capital_is_real():
    q = parse_query(HEAD.format(t="Real") + "(assert (<= X[1,2] 0.1))\n")
    assert {d.dtype for d in q.decls} == {"real"}
    (_, t), = q.prop.asserts
    assert t.rhs.value == F(1, 10)  # real: exact


def test_an_unknown_type_is_refused(tmp_path):
    p = tmp_path / "t.vnnlib"
    p.write_text(HEAD.format(t="float31") + "(assert (<= X[1,2] 0.1))\n")
    with pytest.raises(InputError, match=r"t\.vnnlib.*X.*'float31'"):
        load_query(p)


def test_version_header():
    body = HEAD.format(t="real").split("\n", 1)[1] + "(assert (<= X[1,2] 0.1))\n"
    with pytest.raises(InputError, match=r"q:1: not a VNN-LIB 2 query"):
        parse_query(body, "q")
    with pytest.raises(UnsupportedError, match="3.0"):
        parse_query("(vnnlib-version <3.0>)\n" + body, "q")
    assert parse_query("(vnnlib-version <2.1>)\n" + body).version == "2.1"


def test_duplicate_variable_names_are_refused():
    text = ("(vnnlib-version <2.0>)\n(declare-network N (declare-input X real [2]) (declare-output Y real [1]))\n"
            "(declare-network M (declare-input X real [2]) (declare-output V real [1]))\n(assert (<= X[0] 1.0))\n")
    with pytest.raises(InputError, match=r"q:3: Duplicate variable declaration 'X'"):
        parse_query(text, "q")


def test_duplicate_network_names_are_refused():
    text = ("(vnnlib-version <2.0>)\n(declare-network N (declare-input X real [2]) (declare-output Y real [1]))\n"
            "(declare-network N (declare-input U real [2]) (declare-output V real [1]))\n(assert (<= X[0] 1.0))\n")
    with pytest.raises(InputError, match="N"):
        parse_query(text, "q")


# ---- lowering: the combined graph against onnxruntime, model by model -------------------------

QUERY4 = """(vnnlib-version <2.0>)
(declare-network A
  (declare-input X real [1,{n}])
  (declare-hidden H real [1,{k}] "h")
  (declare-output Y real [1,{p}])
)
(declare-network B
  (equal-to A)
  (declare-input X2 real [1,{n}])
  (declare-output Y2 real [1,{p}])
)
(declare-network C
  (isomorphic-to A)
  (declare-input X3 real [1,{n}])
  (declare-hidden H3 real [1,{k}] "a1")
  (declare-output Y3 real [1,{p}])
)
(declare-network D
  (declare-input U real [1,{m}])
  (declare-input V real [1,{j}])
  (declare-hidden R real [1,{r}] "r")
  (declare-output O1 real [1,{q}])
  (declare-output O2 real [1,{rj}])
)
(assert (<= X[0,0] 1000.0))
"""

weights = st.floats(-2, 2, allow_nan=False, allow_subnormal=False, width=32)


def arr(draw, *shape):
    n = int(np.prod(shape))
    return np.array(draw(st.lists(weights, min_size=n, max_size=n)), np.float64).reshape(shape)


@st.composite
def four_networks(draw):
    n, k, p = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    m, j, r, q = (draw(st.integers(1, 3)) for _ in range(4))
    A = (arr(draw, k, n), arr(draw, k), arr(draw, p, k), arr(draw, p))
    C = (arr(draw, k, n), arr(draw, k), arr(draw, p, k), arr(draw, p))
    D = (arr(draw, r, m), arr(draw, r, j), arr(draw, r), arr(draw, q, r))
    xs = arr(draw, 3 * n + m + j)
    return dict(n=n, k=k, p=p, m=m, j=j, r=r, q=q, rj=r + j), A, C, D, xs


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(four_networks())
def test_combined_graph_equals_each_model_in_onnxruntime(case):
    """Four networks: A (float64 MLP, a hidden node), B equal-to A (its own input), C
    isomorphic-to A (another file, other weights, the pre-activation as hidden node), D
    independent with two inputs (Gemm + MatMul + Add), a hidden node and two outputs (Gemm;
    Concat of the hidden node and an input), a float32 model in a `real` query. At a random
    point the exact value of the combined graph is, slice by slice, what onnxruntime computes
    for each model on its own input slice."""
    dims, A, C, D, xs = case
    n, k, p, m, j, r, q = (dims[c] for c in "nkpmjrq")
    with tempfile.TemporaryDirectory() as tmp:
        fa = mlp(f"{tmp}/a.onnx", *A)
        fc = mlp(f"{tmp}/c.onnx", *C)
        fd = two_in(f"{tmp}/d.onnx", *D)
        query = parse_query(QUERY4.format(**dims), "four.vnnlib")
        inst = prepare(query, {"A": fa, "C": fc, "D": fd})
        # hand-derived layout: X, X2, X3, U, V; then H, Y | Y2 | H3, Y3 | R, O1, O2
        assert dict(query.offsets) == {
            "X": 0, "X2": n, "X3": 2 * n, "U": 3 * n, "V": 3 * n + m,
            "H": 0, "Y": k, "Y2": k + p, "H3": k + 2 * p, "Y3": 2 * k + 2 * p,
            "R": 2 * k + 3 * p, "O1": 2 * k + 3 * p + r, "O2": 2 * k + 3 * p + r + q}
        assert inst.prop.n_inputs == 3 * n + m + j and not inst.float_type
        y = np.array(evaluate_exact(inst.graph, {"x": xs})["y"], dtype=object)
        assert len(y) == 2 * k + 3 * p + 2 * r + q + j
        x1, x2, x3 = xs[:n], xs[n:2 * n], xs[2 * n:3 * n]
        u, v = xs[3 * n:3 * n + m], xs[3 * n + m:]
        ra = ort_run(fa, {"x": x1.reshape(1, n)}, ["h"])
        rb = ort_run(fa, {"x": x2.reshape(1, n)})
        rc = ort_run(fc, {"x": x3.reshape(1, n)}, ["a1"])
        rd = ort_run(fd, {"u": u.astype(np.float32).reshape(1, m), "v": v.astype(np.float32).reshape(1, j)}, ["r"])
    want64 = np.concatenate([ra["h"], ra["y"], rb["y"], rc["a1"], rc["y"]])
    got64 = np.array([float(v) for v in y[:len(want64)]])
    np.testing.assert_allclose(got64, want64, rtol=1e-9, atol=1e-9)
    # D is float32 in onnxruntime (its inputs rounded to float32 there): a float32 tolerance
    want32 = np.concatenate([rd["r"], rd["o1"], rd["o2"]])
    got32 = np.array([float(v) for v in y[len(want64):]])
    np.testing.assert_allclose(got32, want32, rtol=1e-4, atol=1e-4)
    # and exactly: V is copied into O2 unchanged
    assert list(y[-j:]) == [F(float(t)) for t in v]


def test_equal_to_networks_share_the_model_but_not_the_input(tmp_path):
    """Hand-derived: y = relu(2x + 1) elementwise on [x0, x1] with weights diag(2, 3), bias
    (1, 0); f at (0.5, -1) and its equal-to copy g at (-1, 0.25)."""
    f = _lin(tmp_path / "lin.onnx", "float32")
    q = parse_query(PAIR.format(t="real", h="h"), "pair.vnnlib")
    inst = prepare(q, {"f": f})
    y = evaluate_exact(inst.graph, {"x": [F(1, 2), F(-1), F(-1), F(1, 4)]})["y"]
    # H = (2*0.5 + 1, 3*-1) = (2, -3); Y = relu(H) = (2, 0); V = relu(-2 + 1, 0.75) = (0, 0.75)
    assert list(y) == [2, -3, 2, 0, 0, F(3, 4)]


def _lin(path, dtype="float32", name="x") -> str:
    nodes = [helper.make_node("Gemm", [name, "W", "B"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])]
    return save_model(path, nodes, [(name, [1, 2])], [("y", [1, 2])],
                      {"W": [[2, 0], [0, 3]], "B": [1, 0]}, dtype)


PAIR = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X {t} [1,2])
  (declare-hidden H {t} [1,2] "{h}")
  (declare-output Y {t} [1,2])
)
(declare-network g
  (equal-to f)
  (declare-input U {t} [1,2])
  (declare-output V {t} [1,2])
)
(assert (and (>= X[0,0] 0.0) (<= X[0,0] 1.0) (>= X[0,1] 0.0) (<= X[0,1] 1.0)))
(assert (and (>= U[0,0] 0.0) (<= U[0,0] 1.0) (>= U[0,1] 0.0) (<= U[0,1] 1.0)))
(assert (< Y[0,0] 0.5))
"""


# ---- float semantics differ from the reals ---------------------------------------------------

CANCEL = """(vnnlib-version <2.0>)
(declare-network N
  (declare-input X {t} [1])
  (declare-hidden H {t} [1] "h")
  (declare-output Y {t} [1])
)
(assert (>= X[0] 0.1))
(assert (<= X[0] 0.2))
(assert ({op} Y[0] 0.05))
"""


def _ieee_cancel(T, big):
    """y = fl(fl(x + big) - big) for every x of type T in [nearest(0.1), nearest(0.2)]."""
    xs = all_floats(T(0.1), T(0.2), T)
    with np.errstate(all="raise"):
        return xs, (xs + T(big)) + T(-big)


@pytest.fixture(scope="module")
def cancel32(tmp_path_factory):
    return cancel(tmp_path_factory.mktemp("c") / "c32.onnx", 1e8, "float32")


def _run(text, networks):
    inst = prepare(parse_query(text, "q.vnnlib"), networks)
    return inst, verify(inst, OPTS)


def test_the_exhaustive_oracle_of_the_cancellation_network():
    """IEEE float32: x + 1e8 is 1e8 for every float32 x in [0.1, 0.2] (an ulp of 1e8 is 8), so
    y = 0 throughout; float16 with 2048 (an ulp of 2) likewise. Over the reals y = x."""
    for T, big in ((np.float32, 1e8), (np.float16, 2048.0)):
        xs, ys = _ieee_cancel(T, big)
        assert len(xs) > 1000 and not ys.any()


def test_cancellation_over_the_reals_is_unsat(cancel32):
    """real: y = x >= 0.1, so y < 0.05 is unsat."""
    inst, o = _run(CANCEL.format(t="real", op="<"), {"N": cancel32})
    assert o.status == "unsat" and not inst.float_type


def test_cancellation_in_float32_is_sat_and_onnxruntime_confirms(cancel32):
    """float32: y = 0 < 0.05 for every x (the oracle above): sat, and the witness is a float32
    x in the (rounded) box whose op-by-op run, in onnxruntime and in numpy, gives y = 0."""
    inst, o = _run(CANCEL.format(t="float32", op="<"), {"N": cancel32})
    assert o.status == "sat", o.reason
    (dx, x), (dh, h), (dy, y) = assignment(inst, o.witness)
    assert [d.name for d in (dx, dh, dy)] == ["X", "H", "Y"]
    x32 = np.float32(float(x[0]))
    assert F(float(x32)) == F(x[0]) and np.float32(0.1) <= x32 <= np.float32(0.2)
    run = ort_run(cancel32, {"x": np.array([x32])}, ["h"])
    assert F(float(h[0])) == F(run["h"][0]) == F(1e8) and F(y[0]) == F(run["y"][0]) == 0
    assert (x32 + np.float32(1e8)) + np.float32(-1e8) == 0
    assert any("float32 semantics" in n for n in o.notes)


def test_cancellation_in_float32_is_never_a_wrong_sat(cancel32):
    """float32: y > 0.05 holds for no float32 x in the box (the exhaustive oracle): sat would be
    wrong; the rounding-error bound of x + 1e8 (~8) exceeds the margin, so nnsmt cannot prove
    unsat either: this checks soundness (unsat or unknown, with its reason). Over the reals
    y = x > 0.05 is sat, with an exact witness."""
    inst, o = _run(CANCEL.format(t="float32", op=">"), {"N": cancel32})
    assert o.status in ("unsat", "unknown"), o.status
    assert o.status == "unsat" or o.reason
    inst, o = _run(CANCEL.format(t="real", op=">"), {"N": cancel32})
    assert o.status == "sat"
    (_, x), (_, h), (_, y) = assignment(inst, o.witness)
    assert F(y[0]) == F(x[0]) > F(1, 20) and F(h[0]) == F(x[0]) + F(10 ** 8)


def _margin_net(path, dtype):
    """y = 0.25 x0 + 0.5 x1 + 0.125 x2 + 1 >= 1 on [0, 1]^3 (exact weights)."""
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)]
    return save_model(path, nodes, [("x", [1, 3])], [("y", [1, 1])],
                      {"W": [[0.25, 0.5, 0.125]], "B": [1.0]}, dtype)


MARGIN = """(vnnlib-version <2.0>)
(declare-network N
  (declare-input X {t} [1,3])
  (declare-output Y {t} [1,1])
)
(assert (and (>= X[0,0] 0.0) (<= X[0,0] 1.0) (>= X[0,1] 0.0) (<= X[0,1] 1.0)))
(assert (and (>= X[0,2] 0.0) (<= X[0,2] 1.0)))
(assert (< Y[0,0] {c}))
"""


@pytest.mark.parametrize("dtype, c", [("float32", "0.999"), ("float64", "0.999999"), ("float16", "0.95")])
def test_float_widening_proves_unsat_with_margin(tmp_path, dtype, c):
    """y >= 1 over the reals; in float, every partial sum of nonnegative terms is >= 1 after
    rounding too (rounding is monotone), and the rigorous bound (a few ulps of 2) is below the
    margin (1e-3, 1e-6, 5e-2): unsat in every type, over the reals too."""
    net = _margin_net(tmp_path / f"m_{dtype}.onnx", dtype)
    inst, o = _run(MARGIN.format(t=dtype, c=c), {"N": net})
    assert inst.float_type == dtype and inst.errors > 0
    assert o.status == "unsat", (o.status, o.reason)
    assert _run(MARGIN.format(t="real", c=c), {"N": net})[1].status == "unsat"


def test_float_margin_sat_replays(tmp_path):
    """y < 1.0625 (float32) holds at x = 0 (y = 1 exactly): sat with a witness whose onnxruntime
    float32 run satisfies it."""
    net = _margin_net(tmp_path / "m.onnx", "float32")
    inst, o = _run(MARGIN.format(t="float32", c="1.0625"), {"N": net})
    assert o.status == "sat"
    (_, x), (_, y) = assignment(inst, o.witness)
    run = ort_run(net, {"x": np.array([[float(v) for v in x]], np.float32)})
    assert F(run["y"][0]) == F(y[0]) < F(17, 16)


@pytest.fixture(scope="module")
def cancel16(tmp_path_factory):
    return cancel(tmp_path_factory.mktemp("c") / "c16.onnx", 2048.0, "float16")


def test_cancellation_in_float16_is_never_unsat(cancel16):
    """float16, (x + 2048) - 2048 with x in [0.1, 0.2]: y = 0 < 0.05 for every x (the oracle),
    so the answer is sat: unsat would be wrong. A sat witness must be a float16 x of the box
    with y = 0 op by op."""
    inst, o = _run(CANCEL.format(t="float16", op="<"), {"N": cancel16})
    assert o.status != "unsat"
    assert o.status == "sat" or o.reason
    if o.status == "sat":
        (_, x), _, (_, y) = assignment(inst, o.witness)
        x16 = np.float16(float(x[0]))
        assert (x16 + np.float16(2048)) + np.float16(-2048) == 0 == F(y[0])


def test_cancellation_in_float16_is_never_a_wrong_sat(cancel16):
    _, o = _run(CANCEL.format(t="float16", op=">"), {"N": cancel16})
    assert o.status in ("unsat", "unknown"), o.status


# ---- prepare: the standard's error conditions (5.3.2) -----------------------------------------

@pytest.fixture(scope="module")
def lin(tmp_path_factory):
    d = tmp_path_factory.mktemp("lin")
    return {t: _lin(d / f"lin_{t}.onnx", t) for t in ("float32", "float64", "float16")}


def _prep(text, networks):
    return prepare(parse_query(text, "pair.vnnlib"), networks)


def test_every_network_but_equal_to_ones_needs_exactly_one_model(lin):
    q = PAIR.format(t="float32", h="h")
    with pytest.raises(InputError, match=r"pair\.vnnlib: no --network for f"):
        _prep(q, {})
    with pytest.raises(InputError, match="declares no network 'h'"):
        _prep(q, {"f": lin["float32"], "h": lin["float32"]})
    with pytest.raises(InputError, match=r"g is declared \(equal-to f\).*give no file"):
        _prep(q, {"f": lin["float32"], "g": lin["float32"]})
    inst = _prep(q, {"f": lin["float32"]})
    assert inst.files == {"f": lin["float32"], "g": lin["float32"]}


def test_model_types_must_be_the_declared_ones(lin, tmp_path):
    with pytest.raises(InputError) as e:
        _prep(PAIR.format(t="float32", h="h"), {"f": lin["float64"]})
    assert str(e.value) == f"{lin['float64']}: input 'x' is float64, but X is declared float32 (network f)"
    with pytest.raises(InputError, match=r"lin_float32\.onnx: input 'x' is float32, but X is declared float16"):
        _prep(PAIR.format(t="float16", h="h"), {"f": lin["float32"]})
    # an output of another type: float32 in, y cast to float64
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1),
             helper.make_node("Cast", ["h"], ["y"], to=TensorProto.DOUBLE)]
    g = helper.make_graph(nodes, "cast", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 2])],
                          [numpy_helper.from_array(np.eye(2, dtype=np.float32), "W"),
                           numpy_helper.from_array(np.zeros(2, np.float32), "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "cast.onnx")
    with pytest.raises(InputError, match=r"cast\.onnx: output 'y' is float64, but Y is declared float32"):
        _prep(PAIR.format(t="float32", h="h"), {"f": str(tmp_path / "cast.onnx")})


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_real_accepts_any_model_type(lin, dtype):
    """A `real` query reads every model over the reals: the same exact values whatever the
    model's type (its weights 2, 3, 1 are exact in every type)."""
    inst = _prep(PAIR.format(t="real", h="h"), {"f": lin[dtype]})
    assert not inst.float_type and inst.errors == 0
    y = evaluate_exact(inst.graph, {"x": [F(1, 2), F(-1), F(-1), F(1, 4)]})["y"]
    assert list(y) == [2, -3, 2, 0, 0, F(3, 4)]


@pytest.mark.parametrize("old, new, phrase", [
    ("X {t} [1,2]", "X {t} [1,3]", "input 'x' has 2 elements, X is declared [1, 3] (3) in network f"),
    ("H {t} [1,2]", "H {t} [2,2]", "hidden value 'h' has 2 elements, H is declared [2, 2] (4) in network f"),
    ("Y {t} [1,2]", "Y {t} [1]", "output 'y' has 2 elements, Y is declared [1] (1) in network f"),
])
def test_declared_shapes_must_fit_the_model(lin, old, new, phrase):
    text = PAIR.replace(old, new)
    if old.startswith("X"):
        text = text.replace("U {t} [1,2]", "U {t} [1,3]")
    if old.startswith("Y"):
        text = text.replace("V {t} [1,2]", "V {t} [1]").replace("Y[0,0]", "Y[0]")
    with pytest.raises(InputError) as e:
        _prep(text.format(t="float32", h="h"), {"f": lin["float32"]})
    assert str(e.value) == f"{lin['float32']}: {phrase}"


def test_a_hidden_node_must_be_a_value_of_the_model(lin):
    with pytest.raises(InputError, match=r"lin_float32\.onnx: no value named 'nope' in the model"):
        _prep(PAIR.format(t="float32", h="nope"), {"f": lin["float32"]})
    with pytest.raises(InputError, match=r"lin_float32\.onnx: no value named 'nope' in the model"):
        _prep(PAIR.format(t="real", h="nope"), {"f": lin["float32"]})


def test_types_nnsmt_is_not_sound_for_are_refused(lin):
    """5.3.2, error condition 3: bfloat16 (no rounding-error model), integer inputs; a query
    mixing `real` and float networks has no one semantics."""
    with pytest.raises(UnsupportedError, match=r"pair\.vnnlib: X is declared bfloat16"):
        _prep(PAIR.format(t="bfloat16", h="h"), {"f": lin["float32"]})
    text = PAIR.format(t="int32", h="h").replace("0.0", "0").replace("1.0", "1").replace("0.5", "1")
    with pytest.raises(UnsupportedError, match="input X is declared int32"):
        _prep(text, {"f": lin["float32"]})
    mixed = ("(vnnlib-version <2.0>)\n(declare-network f (declare-input X float32 [1,2]) (declare-output Y float32 [1,2]))\n"
             "(declare-network g (declare-input U real [1,2]) (declare-output V real [1,2]))\n(assert (<= X[0,0] 1.0))\n")
    with pytest.raises(InputError, match="real.*throughout"):
        _prep(mixed, {"f": lin["float32"], "g": lin["float32"]})


def test_isomorphic_networks_must_have_the_same_structure(lin, tmp_path):
    text = ("(vnnlib-version <2.0>)\n(declare-network f (declare-input X real [1,2]) (declare-output Y real [1,2]))\n"
            "(declare-network g (isomorphic-to f) (declare-input U real [1,2]) (declare-output V real [1,2]))\n"
            "(assert (<= X[0,0] 1.0))\n")
    other = mlp(tmp_path / "other.onnx", np.eye(2), np.zeros(2), np.eye(2), np.zeros(2), "float32")
    with pytest.raises(InputError, match=r"other\.onnx: network g is declared isomorphic-to f"):
        _prep(text, {"f": lin["float32"], "g": other})
    same = _lin(tmp_path / "same.onnx", "float64")  # same structure, another type: real reads both
    assert _prep(text, {"f": lin["float32"], "g": same}).prop.n_inputs == 4


def test_the_number_of_model_inputs_must_be_the_declared_one(tmp_path):
    d = two_in(tmp_path / "d.onnx", np.eye(2), np.eye(2), np.zeros(2), np.eye(2))
    text = ("(vnnlib-version <2.0>)\n(declare-network D (declare-input U float32 [1,2]) "
            "(declare-output O1 float32 [1,2]) (declare-output O2 float32 [1,4]))\n(assert (<= U[0,0] 1.0))\n")
    with pytest.raises(InputError, match=r"d\.onnx: the model has 2 inputs, network D declares 1"):
        _prep(text, {"D": d})


# ---- assignment ---------------------------------------------------------------------------------

def test_assignment_is_in_declaration_order_with_hidden_values(lin):
    """PAIR over the reals with Y[0,0] < 0.5 (x0 < -0.25: impossible on [0, 1]) replaced by
    Y[0,0] >= 2.5 and V[0,1] <= 0.5: sat; the assignment lists X, H, Y (f) then U, V (g), and
    each value is the exact network value at the witness (weights diag(2, 3), bias (1, 0))."""
    text = PAIR.format(t="real", h="h").replace("(< Y[0,0] 0.5)", "(>= Y[0,0] 2.5)") + "(assert (<= V[0,1] 0.5))\n"
    inst = _prep(text, {"f": lin["float32"]})
    o = verify(inst, OPTS)
    assert o.status == "sat"
    items = assignment(inst, o.witness)
    assert [(d.name, d.kind, d.network) for d, _ in items] == [
        ("X", "input", "f"), ("H", "hidden", "f"), ("Y", "output", "f"), ("U", "input", "g"), ("V", "output", "g")]
    vals = {d.name: [F(v) for v in vs] for d, vs in items}

    def net(x):
        h = [2 * x[0] + 1, 3 * x[1]]
        return h, [max(t, F(0)) for t in h]
    h, y = net(vals["X"])
    assert vals["H"] == h and vals["Y"] == y and y[0] >= F(5, 2)
    assert vals["V"] == net(vals["U"])[1] and vals["V"][1] <= F(1, 2)


def test_float_replay_of_several_networks_is_each_models_run(lin, cancel32, tmp_path):
    """f: y = x (exact), g: the cancellation network (0 in float32 on [0.1, 0.2]); V > 0.05 is
    unsat in float32 (the exhaustive oracle) whatever X is. The replay must give, slice by slice,
    each model's own onnxruntime run; and nnsmt must not answer sat. (Regression: the replay
    once returned each model's outputs twice, read g's V from f's Y, and answered sat.)"""
    ident = save_model(tmp_path / "id.onnx", [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)],
                       [("x", [1, 1])], [("y", [1, 1])], {"W": [[1.0]], "B": [0.0]}, "float32")
    text = ("(vnnlib-version <2.0>)\n(declare-network f (declare-input X float32 [1,1]) (declare-output Y float32 [1,1]))\n"
            "(declare-network g (declare-input U float32 [1]) (declare-output V float32 [1]))\n"
            "(assert (and (>= X[0,0] 0.1) (<= X[0,0] 0.2)))\n(assert (and (>= U[0] 0.1) (<= U[0] 0.2)))\n"
            "(assert (> V[0] 0.05))\n")
    inst = _prep(text, {"f": ident, "g": cancel32})
    x = np.array([0.15, 0.125], np.float32)
    assert list(inst.float_eval(x)) == [np.float32(0.15), 0.0]
    assert verify(inst, OPTS).status != "sat"


def test_examples_float32_assignment_is_onnxruntimes(tmp_path):
    """examples/class1_margin_f32.vnnlib: the assignment's Y is onnxruntime's float32 run at X
    (bit for bit), and the property holds on it with the float32 constant 0.25."""
    net = str(EXAMPLES / "classifier.onnx")
    q = load_query(EXAMPLES / "class1_margin_f32.vnnlib")
    inst = prepare(q, {"classifier": net})
    o = verify(inst, OPTS)
    assert o.status == "sat"
    (dx, x), (dy, y) = assignment(inst, o.witness)
    assert (dx.name, dx.dtype, dx.shape, dy.name, dy.shape) == ("X", "float32", (1, 2), "Y", (1, 3))
    x32 = np.array([[float(v) for v in x]], np.float32)
    assert [F(float(v)) for v in x32.ravel()] == [F(v) for v in x]
    run = ort_run(net, {"input": x32})["logits"]
    assert [F(v) for v in run] == [F(v) for v in y]
    assert all(-1 <= v <= 1 for v in x32.ravel()) and F(y[1]) >= F(y[2]) + F(1, 4)
