"""The exact elementwise nodes (Mul, Div, Pow, Exp, Compare, Select, ToInt) through every domain.

Per ONNX fixture (tests/fixtures/make_elementwise.py): the float interpreter equals onnxruntime;
the exact evaluation (or, through exp and roots, the certified enclosure) contains the float
value; interval and linear bounds contain it; and a solver forced to the same input gives the
exact output (z3) or cannot leave the enclosure (z3 through roots, cvc5 through exp). Then the
network's domain at 0, known answers through `nnsmt verify`, the auto engine's choice, what is
refused, and the IR JSON round trip.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'nnsmt[test]')")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nnsmt.bounds import Interval, propagate_bounds  # noqa: E402
from nnsmt.cli import main  # noqa: E402
from nnsmt.encode import encode_graph  # noqa: E402
from nnsmt.errors import InputError, UnsupportedError, ValidationError  # noqa: E402
from nnsmt.frontends import load_onnx, ort_evaluator  # noqa: E402
from nnsmt.interpret import evaluate, evaluate_enclosure, evaluate_exact, root_bounds  # noqa: E402
from nnsmt.ir import (ELEMENTWISE, Affine, Compare, Const, Div, Exp, Graph, Input, Mul, Pow,  # noqa: E402
                      Relu, Select, ToInt, exact_rational)
from nnsmt.terms import And, Cmp, Num, Or, ScriptBuilder, Var  # noqa: E402

from conftest import solver_backend  # noqa: E402

FIX = Path(__file__).resolve().parent / "fixtures" / "elementwise"
FIXTURES = sorted(FIX.glob("*.onnx"))
BOX = 2.0  # fixtures are in their domain on [-2, 2]^n


def _points(g, rng, k):
    """k float32-representable inputs in the box (so onnxruntime sees the very same point)."""
    return [rng.uniform(-BOX, BOX, g.inputs[0].dim).astype(np.float32).astype(np.float64) for _ in range(k)]


def _exact_pair(g, x):
    """The output as exact (lo, hi) Fractions: a point when every node is rational."""
    inp, out = g.inputs[0].name, g.outputs[0]
    if all(exact_rational(n) for n in g.nodes):
        v = [Fraction(a) for a in evaluate_exact(g, {inp: x})[out]]
        return v, v
    lo, hi = evaluate_enclosure(g, {inp: x})[out]
    return [Fraction(a) for a in lo], [Fraction(a) for a in hi]


def _solver_agrees(g, x, lo, hi):
    """Force the inputs to x: an exact network's outputs are the model's values; otherwise the
    outputs can lie within the enclosure (sat) and nowhere else (unsat). Through exp the input is
    given as data (exp of a number: cvc5 does not decide exp of a sum of fixed variables in
    time); otherwise it is declared and asserted equal to x."""
    exact = lo == hi
    inp, out = g.inputs[0], g.outputs[0]
    b = ScriptBuilder()
    data = any(isinstance(n, Exp) for n in g.nodes)
    env = encode_graph(g, b, {inp.name: x} if data else None,
                       names=lambda v, d: [f"X_{i}" for i in range(d)] if v == inp.name else None)
    ys = []
    for j, v in enumerate(env[out]):
        ys.append(b.declare(f"Y_{j}", aux=not exact))
        b.assert_(f"net_{j}", Cmp("=", ys[-1], Var(v) if isinstance(v, str) else Num(Fraction(v))))
    if not data:
        b.assert_("at_x", And(tuple(Cmp("=", Var(f"X_{i}"), Num(Fraction(v))) for i, v in enumerate(x))))
    if exact:
        res = solver_backend("z3").solve(b.build(), 60)
        assert res.status == "sat", res.reason
        assert [res.model[f"Y_{j}"] for j in range(len(ys))] == lo
        return
    name = "cvc5" if "exp" in b.features else "z3"
    eps = [Fraction(1, 10**9) * max(1, abs(v)) for v in hi]
    inside = And(tuple(a for y, l, h, e in zip(ys, lo, hi, eps)
                       for a in (Cmp(">=", y, Num(l - e)), Cmp("<=", y, Num(h + e)))))
    outside = Or(tuple(a for y, l, h, e in zip(ys, lo, hi, eps)
                       for a in (Cmp("<", y, Num(l - e)), Cmp(">", y, Num(h + e)))))
    for t, want in ((inside, "sat"), (outside, "unsat")):
        s = b.build()
        s = type(s)(s.decls, s.defs, s.asserts + (("check", t),), s.features, None, s.meta, s.aux)
        res = solver_backend(name).solve(s, 60)
        assert res.status == want, (name, want, res.status, res.reason)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_through_every_domain(path):
    g = load_onnx(path)
    assert any(isinstance(n, ELEMENTWISE) for n in g.nodes)
    ref = ort_evaluator(path)
    rng = np.random.default_rng(7)
    inp, out = g.inputs[0].name, g.outputs[0]
    box = Interval(np.full(g.inputs[0].dim, -BOX), np.full(g.inputs[0].dim, BOX))
    bounds = {m: propagate_bounds(g, box, m)[out] for m in ("interval", "linear")}
    for k, x in enumerate(_points(g, rng, 4)):
        f = np.asarray(evaluate(g, {inp: x})[out], dtype=np.float64)
        want = ref(x)
        assert np.all(np.abs(f - want) <= 1e-5 * np.maximum(1.0, np.abs(want))), (f, want)
        if k >= 2:
            continue
        lo, hi = _exact_pair(g, x)
        for fl, a, b in zip(f, lo, hi):  # the float value is the exact one up to float64 rounding
            assert float(a) - 1e-9 * max(1, abs(fl)) <= fl <= float(b) + 1e-9 * max(1, abs(fl))
        for iv in bounds.values():
            assert all(l <= a and b <= h for l, h, a, b in zip(iv.lo, iv.hi, lo, hi))
        # cvc5 does not decide quotients of exps (a softmax) in minutes, even at a point
        if k == 0 and not (any(isinstance(n, Exp) for n in g.nodes) and any(isinstance(n, Div) for n in g.nodes)):
            _solver_agrees(g, x, lo, hi)


# ---- random graphs: bounds contain the exact (or certified) values ----

POWERS = [0, 1, 2, 3, -1, -2, Fraction(1, 2), Fraction(-1, 2), Fraction(2, 3)]
w32 = st.floats(-2, 2, width=32, allow_subnormal=False)


@st.composite
def elementwise_graphs(draw):
    """A random DAG over every elementwise node, affine maps and ReLUs (operands of one size)."""
    vals = [("x", draw(st.integers(1, 3)))]
    nodes: list = [Input("x", vals[0][1])]
    for k in range(draw(st.integers(1, 6))):
        name, (x, d) = f"v{k}", draw(st.sampled_from(vals))
        kind = draw(st.sampled_from(["affine", "relu", "mul", "div", "pow", "exp", "compare",
                                     "select", "to_int"]))
        other = draw(st.sampled_from([v for v, e in vals if e == d]))
        if kind == "affine":
            m = draw(st.integers(1, 3))
            w = np.array(draw(st.lists(w32, min_size=m * d + m, max_size=m * d + m)))
            nodes.append(Affine(name, x, Const(w[:m * d].reshape(m, d)), Const(w[m * d:])))
            vals.append((name, m))
            continue
        nodes.append({"relu": lambda: Relu(name, x), "mul": lambda: Mul(name, x, other),
                      "div": lambda: Div(name, x, other), "exp": lambda: Exp(name, x),
                      "pow": lambda: Pow(name, x, draw(st.sampled_from(POWERS))),
                      "compare": lambda: Compare(name, x, draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="]))),
                      "select": lambda: Select(name, other, x),
                      "to_int": lambda: ToInt(name, x, draw(st.sampled_from(["trunc", "floor", "ceil"])))}[kind]())
        vals.append((name, d))
    return Graph(tuple(nodes), (nodes[-1].name,)).check()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=elementwise_graphs(), data=st.data())
def test_bounds_contain_exact_values_on_random_graphs(g, data):
    n = g.inputs[0].dim
    lo = np.array(data.draw(st.lists(st.floats(-2, 1, width=32), min_size=n, max_size=n)), dtype=np.float64)
    hi = lo + np.array(data.draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)), dtype=np.float64)
    bounds = {m: propagate_bounds(g, Interval(lo, hi), m) for m in ("interval", "linear")}
    exact = all(exact_rational(node) for node in g.nodes)
    for _ in range(3):
        t = data.draw(st.lists(st.fractions(0, 1, max_denominator=64), min_size=n, max_size=n))
        x = [Fraction(a) + u * (Fraction(b) - Fraction(a)) for a, b, u in zip(lo, hi, t)]
        try:
            env = evaluate_exact(g, {"x": x}) if exact else evaluate_enclosure(g, {"x": x})
        except (InputError, ValidationError):  # off the domain, or an undecided comparison
            continue
        for name, v in env.items():
            vlo, vhi = (v, v) if exact else v
            for m, bd in bounds.items():
                iv = bd[name]
                assert all(l <= a for l, a in zip(iv.lo, vlo)), (m, name, iv.lo, vlo)
                assert all(b <= h for h, b in zip(iv.hi, vhi)), (m, name, iv.hi, vhi)
            if exact:  # the enclosure domain is exact on rational networks
                e = evaluate_enclosure(g, {"x": x})[name]
                assert list(e[0]) == list(v) == list(e[1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=elementwise_graphs(), data=st.data())
def test_z3_at_a_point_is_the_exact_value_on_random_graphs(g, data):
    """Rational networks: the solver's output at a point is the exact value; at a point off the
    network's domain (a divisor 0) there is no model at all."""
    from hypothesis import assume
    assume(all(exact_rational(node) for node in g.nodes))
    n = g.inputs[0].dim
    x = data.draw(st.lists(st.sampled_from([Fraction(0), Fraction(1), Fraction(-1, 2), Fraction(3, 4),
                                            Fraction(-2)]), min_size=n, max_size=n))
    try:
        want = list(evaluate_exact(g, {"x": x})[g.outputs[0]])
    except InputError:
        want = None
    b = ScriptBuilder()
    env = encode_graph(g, b, names=lambda v, d: [f"X_{i}" for i in range(d)] if v == "x" else None)
    out = env[g.outputs[0]]
    for j, v in enumerate(out):
        b.declare(f"Y_{j}")
        b.assert_(f"net_{j}", Cmp("=", Var(f"Y_{j}"), Var(v) if isinstance(v, str) else Num(Fraction(v))))
    b.assert_("at_x", And(tuple(Cmp("=", Var(f"X_{i}"), Num(v)) for i, v in enumerate(x))))
    res = solver_backend("z3").solve(b.build(), 60)
    if want is None:
        assert res.status == "unsat", res
    else:
        assert res.status == "sat", res
        assert [res.model[f"Y_{j}"] for j in range(len(out))] == want


# ---- the network's domain: division and roots are partial ----

def _net(*nodes, dim=1):
    return Graph((Input("x", dim),) + tuple(nodes), (nodes[-1].name,)).check()


def _prop(tmp_path, text, name="p.vnnlib"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_division_by_zero_is_outside_the_domain():
    g = _net(Div("q", "x", "x"))  # x / x is 1 on the domain, undefined at 0
    with pytest.raises(InputError, match=r"div 'q': element 0 divides by 0.*outside the network's domain"):
        evaluate_exact(g, {"x": [0]})
    assert evaluate_exact(g, {"x": [Fraction(-3, 7)]})["q"][0] == 1
    b = ScriptBuilder()
    env = encode_graph(g, b)
    # SMT-LIB's (/ x 0) is some real: without the domain assertion q = 5 at x = 0 would be sat
    b.assert_("at0", And((Cmp("=", Var("x_0"), Num(0)), Cmp("=", Var(env["q"][0]), Num(5)))))
    s = b.build()
    assert [n for n, _ in s.asserts][:1] == ["dom_q"]
    assert solver_backend("z3").solve(s, 30).status == "unsat"


def test_fractional_and_negative_powers():
    g = _net(Pow("r", "x", Fraction(1, 2)), Pow("i", "r", -3))  # x ** (-3/2) for x > 0
    with pytest.raises(UnsupportedError, match=r"pow 'r': x \*\* 1/2 has no exact rational value"):
        evaluate_exact(g, {"x": [4]})
    lo, hi = evaluate_enclosure(g, {"x": [4]})["i"]
    assert lo[0] == hi[0] == Fraction(1, 8)  # the root of 4 is rational: exact
    lo, hi = evaluate_enclosure(g, {"x": [2]})["i"]
    assert lo[0] ** 2 < Fraction(1, 8) < hi[0] ** 2 and hi[0] - lo[0] < Fraction(1, 2 ** 90)  # 2 ** -1.5
    with pytest.raises(InputError, match="pow 'r': element 0 raises a negative number"):
        evaluate_enclosure(g, {"x": [-1]})
    q = Fraction(10**30 + 7, 3)
    for n in (2, 3, 5):
        a, b = root_bounds(q, n, 64)
        assert a ** n <= q <= b ** n and (b - a) / a < Fraction(1, 2 ** 60)


def test_undecided_comparison_is_not_certified():
    # e - m > 0 for m the midpoint of e's certified enclosure: true or not, the enclosure cannot say
    from nnsmt.sigmoid import exp_bounds
    mid = sum(exp_bounds(1)) / 2
    g = _net(Exp("e", "x"), Affine("d", "e", Const(np.eye(1)), Const(np.array([-mid], dtype=object))),
             Compare("c", "d", ">"))
    with pytest.raises(ValidationError, match=r"compare 'c': the enclosure .* does not decide x > 0"):
        evaluate_enclosure(g, {"x": [1]})
    assert evaluate_enclosure(g, {"x": [Fraction(101, 100)]})["c"][0][0] == 1
    assert evaluate_enclosure(g, {"x": [0]})["e"][0][0] == 1  # exp(0) = 1: exact, decided


def test_interval_rules_are_sound_at_the_edges():
    box = Interval(np.array([-1.0]), np.array([2.0]))
    b = propagate_bounds(_net(Mul("m", "x", "x")), box, "interval")["m"]
    assert b.lo[0] <= 0 and b.lo[0] > -1e-300 and 4 <= b.hi[0] < 4 + 1e-12  # a square, not [-2, 4]
    b = propagate_bounds(_net(Div("q", "x", "x")), box, "linear")["q"]
    assert b.lo[0] == -np.inf and b.hi[0] == np.inf  # a divisor interval containing 0
    b = propagate_bounds(_net(Pow("p", "x", -2)), box, "interval")["p"]
    assert b.lo[0] == 0 and b.hi[0] == np.inf
    g = _net(Compare("c", "x", ">="), Select("s", "c", "x"), ToInt("t", "s", "ceil"))
    bd = propagate_bounds(g, Interval(np.array([0.5]), np.array([2.5])), "linear")
    assert (bd["c"].lo[0], bd["c"].hi[0], bd["t"].lo[0], bd["t"].hi[0]) == (1, 1, 1, 3)


# ---- verify: known answers, the auto engine, certification ----

PRODUCT = str(FIX / "product.onnx")
BOX_PROP = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n" \
           "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_product_known_answers_through_verify(capsys, tmp_path):
    """y = x0 * x1 on [-1, 1]^2: y >= 1 only at +-(1, 1) (sat, replayed), y > 1 never (unsat)."""
    sat = _prop(tmp_path, BOX_PROP + "(assert (>= Y_0 1))\n", "sat.vnnlib")
    code, out, err = run(capsys, "verify", PRODUCT, sat, "--json")
    d = json.loads(out)
    assert code == 10 and d["status"] == "sat" and d["engine"] == "plain", d
    assert any("mul nodes: one exact query" in n for n in d["notes"]), d["notes"]
    x = [Fraction(v) for v in d["counterexample"]["x_exact"]]
    assert abs(x[0]) == abs(x[1]) == 1 and x[0] * x[1] == 1
    assert d["counterexample"]["validated"] == ["exact", "onnxruntime"]
    unsat = _prop(tmp_path, BOX_PROP + "(assert (> Y_0 1))\n", "unsat.vnnlib")
    code, out, _ = run(capsys, "verify", PRODUCT, unsat)
    assert code == 0 and out == "unsat\n"


def test_auto_engine_choices(tmp_path):
    from nnsmt.engine.verify import VerifyOptions, choose
    from nnsmt.vnnlib import parse_vnnlib
    prop = parse_vnnlib(BOX_PROP + "(assert (>= Y_0 1))\n", "p")
    engine, _, why = choose(load_onnx(PRODUCT), prop, VerifyOptions())
    assert engine == "plain" and "mul" in why and "piecewise-linear" in why
    relu = Graph((Input("x", 2), Affine("a", "x", Const(np.ones((1, 2))), Const(np.zeros(1))),
                  Relu("y", "a")), ("y",)).check()
    assert choose(relu, prop, VerifyOptions())[:2] == ("split", 4096)  # ReLU networks: unchanged


def test_exp_network_is_certified_by_enclosures(capsys, tmp_path):
    """exp(x) >= 3/2 on [0, 1/2] (sat for x >= ln 1.5: cvc5, replayed with certified
    enclosures), exp(x) > 2 (unsat); Z3 refuses exp, saying why."""
    from nnsmt.serialize import save_json
    net = tmp_path / "exp.json"
    save_json(_net(Exp("y", "x")), net)
    head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 0.5))\n"
    sat = _prop(tmp_path, head + "(assert (>= Y_0 1.5))\n", "sat.vnnlib")
    code, out, err = run(capsys, "verify", str(net), sat, "--backend", "cvc5", "--timeout", "60", "--json")
    d = json.loads(out)
    assert code == 10 and d["status"] == "sat", d
    assert d["counterexample"]["validated"] == ["enclosure"]
    assert any("certified rational enclosures" in n for n in d["notes"])
    assert Fraction(405465, 10**6) <= Fraction(d["counterexample"]["x_exact"][0]) <= Fraction(1, 2)
    unsat = _prop(tmp_path, head + "(assert (> Y_0 2))\n", "unsat.vnnlib")
    assert run(capsys, "verify", str(net), unsat, "--backend", "cvc5", "--timeout", "60")[:2] == (0, "unsat\n")
    # Z3 has no exp: the default relaxes it piecewise-linearly (sound), the exact exp is refused
    assert run(capsys, "verify", str(net), unsat)[:2] == (0, "unsat\n")
    code, out, err = run(capsys, "verify", str(net), unsat, "--sigmoid", "exp")
    assert code == 2 and "Z3 has no exp" in err


def test_backends_declare_what_they_refuse():
    from nnsmt.result import Capabilities
    b = ScriptBuilder()
    encode_graph(_net(ToInt("t", "x", "trunc")), b)
    s = b.build()
    assert s.features == {"int"} and s.logic == "QF_LIRA"
    from nnsmt.backends.dreal_backend import DrealBackend
    from nnsmt.backends.pysmt_backend import PysmtBackend
    for caps, word in ((DrealBackend.capabilities, "dReal has no to_int"),
                       (PysmtBackend.capabilities, "no to_int")):
        assert isinstance(caps, Capabilities) and word in caps.refuses("b", s.features)
    assert solver_backend("z3").supports(s.features) is None


# ---- the frontend: what is refused ----

def _model(tmp_path, nodes, inits=None, dim=3):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
                          [helper.make_empty_tensor_value_info("out")],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    return p


@pytest.mark.parametrize("nodes, inits, needle", [
    ([helper.make_node("Pow", ["x", "e"], ["out"], name="p")], {"e": np.float32([1 / 3])},
     "node 'p' (Pow): the exponent 0.3333333432674408 is not a rational with numerator and denominator at most 64"),
    ([helper.make_node("Pow", ["e", "x"], ["out"], name="p")], {"e": np.float32([2.0])},
     "node 'p' (Pow): the exponent depends on the input"),
    ([helper.make_node("Log", ["x"], ["out"], name="l")], {}, "node 'l' (Log): only supported on constants"),
    ([helper.make_node("Round", ["x"], ["out"], name="r")], {}, "Log and Round have no exact form"),
], ids=["pow_one_third", "variable_exponent", "log", "round"])
def test_frontend_refusals_are_one_line(tmp_path, nodes, inits, needle):
    p = _model(tmp_path, nodes, inits)
    with pytest.raises(UnsupportedError) as e:
        load_onnx(p)
    assert "\n" not in str(e.value) and needle in str(e.value), str(e.value)


# ---- IR JSON ----

def test_ir_json_round_trip_and_schema():
    from nnsmt.pretty import format_graph
    from nnsmt.serialize import graph_from_json, graph_to_json, validate_schema
    g = Graph((Input("x", 2), Mul("m", "x", "x"), Div("d", "x", "m"), Pow("p", "m", Fraction(-1, 2)),
               Exp("e", "p"), Compare("c", "e", "!="), Select("s", "c", "d"), ToInt("t", "s", "floor")),
              ("t",), {"source": "hand"}).check()
    doc = json.loads(json.dumps(graph_to_json(g)))
    assert doc["version"] == "2.1" and doc["nodes"][3] == {"op": "pow", "name": "p", "x": "m", "p": "-1/2"}
    validate_schema(doc, "doc")
    back = graph_from_json(doc)
    assert format_graph(back) == format_graph(g) and graph_to_json(back) == doc
    doc["nodes"][5]["cmp"] = "=="
    with pytest.raises(InputError, match=r"nodes/5/cmp: \"==\" is not one of"):
        graph_from_json(doc)
    with pytest.raises(InputError, match="have dimensions 2 and 1"):
        Graph((Input("x", 2), Input("z", 1), Mul("m", "x", "z")), ("m",)).check()


@pytest.mark.parametrize("name", ["compare_where", "logic", "cast_int_bool", "pow_roots",
                                  "softmax_inside", "int_div", "sign_floor_ceil"])
def test_onnx_export_of_elementwise_nodes_runs_in_onnxruntime(name):
    import onnxruntime as ort

    from nnsmt.frontends.onnx_export import graph_to_onnx
    g = load_onnx(FIX / f"{name}.onnx")
    m, exact = graph_to_onnx(g, dtype="float64")
    assert exact
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for x in _points(g, np.random.default_rng(3), 3):
        want = evaluate(g, {g.inputs[0].name: x})[g.outputs[0]]
        got = sess.run(None, {g.inputs[0].name: x.reshape(1, -1)})[0].ravel()
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (got, want)
