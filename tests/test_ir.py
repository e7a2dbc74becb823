"""IR invariants, evaluation domains, and the JSON form (bit-exact round trip)."""

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.errors import InputError
from nnsmt.interpret import evaluate, evaluate_exact
from nnsmt.ir import Affine, Argmax, Const, Graph, Input, Relu, Sym
from nnsmt.pretty import format_graph, summary
from nnsmt.serialize import graph_from_json, graph_to_json, load_json, save_json

from strategies import mlp_graph, mlp_specs, points


def small():
    return Graph((Input("x", 2),
                  Affine("a1", "x", Const([[1.0, -2.0], [0.5, 0.25]]), Const([0.0, 1.0])),
                  Relu("r1", "a1"),
                  Affine("a2", "r1", Sym("w2", (1, 2), lo=-1, hi=1, nominal=[[1.0, 1.0]]), Const([Fraction(1, 3)])),
                  Argmax("c", "a2")), ("a2", "c")).check()


@pytest.mark.parametrize("mutate, msg", [
    (lambda n: n[:1] + (Affine("a1", "x", Const(np.ones((2, 3))), Const([0, 0])),), "does not take"),
    (lambda n: n[:1] + (Affine("a1", "x", Const(np.ones((2, 2))), Const([0, 0, 0])),), "bias shape"),
    (lambda n: n[:1] + (Relu("r", "nope"),), "before it is defined"),
    (lambda n: n + (Relu("a1", "x"),), "defined twice"),
    (lambda n: n[:1] + (Relu("bad-name", "x"),), "not an identifier"),
    (lambda n: n[:1] + (Argmax("c", "x"), Relu("r", "c")), "index"),
])
def test_check_rejects(mutate, msg):
    base = (Input("x", 2), Affine("a1", "x", Const(np.eye(2)), Const([0.0, 0.0])))
    with pytest.raises(InputError, match=msg):
        Graph(mutate(base), ("x",)).check()


def test_const_rejects_nan_and_keeps_fractions():
    with pytest.raises(InputError, match="NaN"):
        Const([1.0, float("nan")])
    c = Const(np.array([Fraction(1, 3), Fraction(1, 2)], dtype=object))
    assert not c.is_float and c.value[0] == Fraction(1, 3)
    assert Const(np.array([Fraction(1, 2)], dtype=object)).is_float  # exact floats collapse


def test_exact_and_float_evaluation_agree_by_hand():
    g = small()
    ex = evaluate_exact(g, {"x": [Fraction(1), Fraction(2)]})
    # a1 = (1 - 4, 0.5 + 0.5 + 1) = (-3, 2); r1 = (0, 2); a2 = 0 + 2 + 1/3 with nominal w2 = (1, 1)
    assert list(ex["a1"]) == [-3, 2] and list(ex["a2"]) == [Fraction(7, 3)]
    assert evaluate(g, {"x": [1, 2]})["a2"][0] == pytest.approx(7 / 3)
    assert list(evaluate_exact(g, {"x": [1, 2]}, params={"w2": np.array([[0.0, -1.0]])})["a2"]) == [Fraction(-5, 3)]


@settings(max_examples=40, deadline=None)
@given(mlp_specs(), st.data())
def test_exact_evaluation_matches_float(layers, data):
    g = mlp_graph(layers)
    x = data.draw(points(g.inputs[0].dim))
    ex = evaluate_exact(g, {"x": x})[g.outputs[0]]
    fl = evaluate(g, {"x": x})[g.outputs[0]]
    assert np.allclose([float(v) for v in ex], fl, atol=1e-9, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(mlp_specs())
def test_json_round_trip_is_bit_exact(layers):
    g = mlp_graph(layers)
    d = json.loads(json.dumps(graph_to_json(g)))
    h = graph_from_json(d)
    assert [type(n) for n in h.nodes] == [type(n) for n in g.nodes] and h.outputs == g.outputs
    for (_, _, p), (_, _, q) in zip(g.params(), h.params()):
        assert p.value.tobytes() == q.value.tobytes()


def test_json_round_trip_sym_and_rational(tmp_path):
    g = small()
    save_json(g, tmp_path / "g.json")
    h = load_json(tmp_path / "g.json")
    assert graph_to_json(h) == graph_to_json(g)
    w = h.node("a2").weight
    assert isinstance(w, Sym) and w.lo[0, 0] == -1 and h.node("a2").bias.value[0] == Fraction(1, 3)
    d = graph_to_json(g)
    assert d["version"] == "2.0" and d["format"] == "nnsmt-ir"


@pytest.mark.parametrize("edit, msg", [
    (lambda d: d.update(version="3.0"), "version"),
    (lambda d: d.update(format="other"), "not an nnsmt IR"),
    (lambda d: d["nodes"][1].update(op="conv"), "unknown op"),
    (lambda d: d["nodes"][1]["weight"]["value"].update(data="AAAA"), "bad array"),
    (lambda d: d["nodes"][1].pop("x"), "missing"),
])
def test_json_bad_input(edit, msg):
    d = graph_to_json(small())
    edit(d)
    with pytest.raises(InputError, match=msg):
        graph_from_json(d, "g.json")


def test_printer_and_summary():
    text = format_graph(small())
    assert "r1 = relu a1   # 2" in text and "sym w2[1, 2] boxed" in text and text.endswith("return a2, c")
    s = summary(small())
    assert s["relus"] == 2 and s["parameters"] == 9 and s["symbolic_parameters"] == 2
