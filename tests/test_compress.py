"""Exact compression: removing stable ReLUs keeps the function on the domain (proved by the
equivalence query), writes valid ONNX and exact JSON IR."""

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.bounds import propagate_bounds, relu_states
from nnsmt.cli import main
from nnsmt.domain import InputDomain, parse_box_json
from nnsmt.interpret import evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Relu
from nnsmt.passes import _row_basis, remove_stable, size
from nnsmt.query import decide
from nnsmt.queries.compress import CompressOptions, EquivalenceQuery, compress, equivalence_script
from nnsmt.queries.stability import StabilityOptions
from nnsmt.result import SolveOptions

from conftest import have
from strategies import mlp_graph, mlp_specs
from helpers import BOX, hand_net


def _same_exactly(f, g, dom: InputDomain, n=20, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = dom.boxes[0]
    for _ in range(n):
        x = [l + (h - l) * Fraction(int(rng.integers(0, 17)), 16) for l, h in zip(lo, hi)]
        a = evaluate_exact(f, {f.inputs[0].name: x})[f.outputs[0]]
        b = evaluate_exact(g, {g.inputs[0].name: x})[g.outputs[0]]
        assert list(a) == list(b)


@settings(max_examples=40, deadline=None)
@given(mlp_specs(max_in=3, max_hidden=3, max_width=5), st.floats(0, 1.5, width=32))
def test_bounds_only_compression_preserves_outputs(layers, r):
    """States from sound bounds alone: the pass must keep every output exactly on the box."""
    g = mlp_graph(layers)
    n = layers[0][0].shape[1]
    dom = InputDomain(((tuple([Fraction(-r)] * n), tuple([Fraction(r)] * n)),))
    states = relu_states(g, propagate_bounds(g, dom.hull()))
    small = remove_stable(g, {k: v.astype(int) for k, v in states.items()}).check()
    assert size(small)["relus"] <= size(g)["relus"]
    _same_exactly(g, small, dom)


def test_row_basis_exact():
    W = np.array([[Fraction(1), Fraction(2)], [Fraction(2), Fraction(4)], [Fraction(0), Fraction(1, 3)]], dtype=object)
    B, M = _row_basis(W)
    assert B == [0, 2] and (M.dot(W[B]) == W).all()


def test_active_neurons_fold_to_a_basis():
    """x in [1, 2]: x, 2x, 3x are stably active and rank 1: one neuron is kept, the others
    are folded exactly into the next layer (y = x + 2x + 3x = 6x)."""
    g = Graph((Input("x", 1), Affine("a", "x", Const(np.array([[1.0], [2.0], [3.0]])), Const(np.zeros(3))),
               Relu("h", "a"), Affine("z", "h", Const(np.array([[1.0, 1.0, 1.0], [0.5, 0.0, -1.0]])),
                                      Const(np.zeros(2))), Relu("h2", "z"),
               Affine("y", "h2", Const(np.array([[1.0, 1.0]])), Const(np.zeros(1)))), ("y",)).check()
    small = remove_stable(g, {"h": np.array([1, 1, 1]), "h2": np.array([0, 0])}, merge=False)
    assert small.dims()["h"] == 1
    _same_exactly(g, small, parse_box_json('{"lo": [1], "hi": [2]}'))


def test_equivalence_query(backend):
    g = hand_net()

    def f(script, seconds=None, options=SolveOptions()):
        return backend.solve(script, seconds, options)
    r = compress(g, BOX, f, CompressOptions(StabilityOptions(timeout=30)))
    assert r.after["relus"] == r.before["relus"] - 1 and r.equivalence == "unsat"
    # a wrong compression (drop an unstable neuron) must be caught: the query is sat, and its
    # witness is an input of the box where the two networks differ (replayed exactly)
    wrong = remove_stable(g, {"r1": np.array([0, 0, 0]), "r2": np.array([-1, -1])})
    assert f(equivalence_script(g, wrong, BOX), 30).status == "sat"
    o = decide(EquivalenceQuery(g, wrong, BOX), f, 30)
    assert o.status == "sat" and BOX.contains(o.witness)
    yg, yw = (evaluate_exact(n, {"x": o.witness})[n.outputs[0]] for n in (g, wrong))
    assert any(a != b for a, b in zip(yg, yw))
    # a tolerance above the largest difference makes it unsat again: |y| <= 2*0.5 differs by <= 1
    assert f(equivalence_script(g, wrong, BOX, Fraction(1)), 30).status == "unsat"
    assert decide(EquivalenceQuery(g, wrong, BOX, Fraction(1)), f, 30).status == "unsat"


@pytest.mark.skipif(not have("onnxruntime"), reason="onnxruntime is not installed")
def test_cli_compress_writes_onnx_and_ir(tmp_path, capsys):
    from nnsmt.frontends import load_onnx
    from nnsmt.frontends.onnx_export import save_onnx
    from nnsmt.serialize import load_json
    net = tmp_path / "hand.onnx"
    save_onnx(hand_net(), net)
    box = tmp_path / "box.json"
    box.write_text('{"lo": [-1, -1], "hi": [1, 1]}')
    out = tmp_path / "small.onnx"
    code = main(["compress", str(net), "--domain", str(box), "-o", str(out), "--json", "--timeout", "30"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["equivalence"]["status"] == "unsat" and info["onnx_exact"]
    assert info["before"]["relus"] == 5 and info["after"]["relus"] == 4
    assert info["onnxruntime_spot_check_max_abs_diff"] == 0.0
    small = load_onnx(out)
    ir = load_json(tmp_path / "small.json")
    _same_exactly(small, ir, parse_box_json('{"lo": [-1, -1], "hi": [1, 1]}'))
    if have("highspy"):  # a MILP classifies (cvc5 confirming its claims) and proves (z3 confirming)
        code = main(["compress", str(net), "--domain", str(box), "-o", str(tmp_path / "m.onnx"), "--json",
                     "--timeout", "30", "--backend", "milp:highs"])
        m = json.loads(capsys.readouterr().out)
        assert code == 0 and m["equivalence"]["status"] == "unsat" and m["after"] == info["after"]
