"""ReLU stability: bounds first, then exact queries; both methods agree; witnesses replay."""

import json
from fractions import Fraction

import numpy as np
import pytest

from nnsmt.cli import main
from nnsmt.domain import InputDomain, load_domain, parse_box_json
from nnsmt.errors import InputError
from nnsmt.ir import Affine, Const, Graph, Input, Relu
from nnsmt.queries.stability import ACTIVE, INACTIVE, UNSTABLE, check_witnesses, classify

from conftest import EXAMPLES


def hand_net() -> Graph:
    """x, y in [-1, 1]; layer 1: x + y, x - y, x (each takes both signs: unstable).
    Layer 2: relu(x+y) + relu(x-y) - 2.5 has exact maximum 2 - 2.5 = -0.5 (both active needs
    x >= |y|, sum 2x <= 2; one active: <= 2): stably inactive. The linear bounds only give
    relu(x+y) + relu(x-y) <= x + 2 <= 3, so they cannot decide it: an exact query must.
    relu(x) - 0.5 is 0.5 at x = 1 and -0.5 at x = 0: unstable."""
    w1 = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0]])
    w2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return Graph((Input("x", 2), Affine("a1", "x", Const(w1), Const(np.zeros(3))), Relu("r1", "a1"),
                  Affine("a2", "r1", Const(w2), Const(np.array([-2.5, -0.5]))), Relu("r2", "a2"),
                  Affine("y", "r2", Const(np.array([[1.0, -2.0]])), Const(np.array([0.25])))), ("y",)).check()


BOX = InputDomain(((tuple([Fraction(-1)] * 2), tuple([Fraction(1)] * 2)),))


@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_hand_derived_classification(backend, method):
    g = hand_net()
    st = classify(g, BOX, lambda s, t: backend.solve(s, timeout=t), method=method, timeout=30)
    assert list(st.states["r1"]) == [UNSTABLE] * 3
    assert list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    assert st.by_bounds == 0 and st.unsat >= 1  # the inactive one needed a proof
    check_witnesses(g, st)
    assert set(st.witnesses) == {("r1", 0), ("r1", 1), ("r1", 2), ("r2", 1)}
    if method == "per-neuron":  # two questions per open neuron (5 open)
        assert st.queries == 10


def test_methods_agree_and_harvest_is_cheaper(backend):
    g = hand_net()
    f = lambda s, t: backend.solve(s, timeout=t)
    a, b = classify(g, BOX, f, "single", 30), classify(g, BOX, f, "per-neuron", 30)
    assert a.same_as(b) and a.queries < b.queries


def test_bounds_decide_without_queries(backend):
    """On [0.5, 1]^2 every layer-1 neuron is decided by bounds (x+y > 0, x >= 0; x-y unstable)."""
    g = hand_net()
    dom = parse_box_json('{"lo": [0.5, 0.5], "hi": [1, 1]}')
    st = classify(g, dom, lambda s, t: backend.solve(s, timeout=t), "single", 30)
    assert st.states["r1"][0] == ACTIVE and st.states["r1"][2] == ACTIVE and st.by_bounds >= 2
    check_witnesses(g, st)


def test_zero_preactivation_is_stable(backend):
    """relu(x - 1) on x in [0, 1] reaches 0 only at x = 1 and is never positive: inactive."""
    g = Graph((Input("x", 1), Affine("a", "x", Const(np.array([[1.0]])), Const(np.array([-1.0]))),
               Relu("r", "a")), ("r",)).check()
    st = classify(g, parse_box_json('{"lo": [0], "hi": [1]}'), lambda s, t: backend.solve(s, timeout=t))
    assert list(st.states["r"]) == [INACTIVE]


def test_box_json_formats(tmp_path):
    d = parse_box_json('{"lo": 0, "hi": 16, "dim": 3}')
    assert d.boxes[0] == ((0, 0, 0), (16, 16, 16))
    d = parse_box_json('{"lo": ["1/3", 0.5], "hi": [1, 2]}')
    assert d.boxes[0][0][0] == Fraction(1, 3) and d.dim == 2
    d = parse_box_json('{"boxes": [{"lo": [0], "hi": [1]}, {"lo": [2], "hi": [3]}]}')
    assert len(d.boxes) == 2 and d.contains([Fraction(5, 2)]) and not d.contains([Fraction(3, 2)])
    for bad, msg in [('{"lo": [1], "hi": [0]}', "lo 1 > hi 0"), ('{"lo": 0, "hi": 1}', "needs \"dim\""),
                     ('{"lo": ["x"], "hi": [1]}', r"lo\[0\]"), ("[1,", "invalid JSON")]:
        with pytest.raises(InputError, match=msg):
            parse_box_json(bad, "box.json")
    p = tmp_path / "b.json"
    p.write_text('{"lo": [0, 0], "hi": [1, 1]}')
    with pytest.raises(InputError, match="3"):
        load_domain(p, dim=3)


def test_domain_from_vnnlib():
    d = load_domain(EXAMPLES / "corner_robust.vnnlib", dim=2)
    assert d.dim == 2 and len(d.boxes) == 1


def test_cli_stable_json(capsys, tmp_path):
    from nnsmt.frontends.onnx_export import save_onnx
    net = tmp_path / "hand.onnx"
    save_onnx(hand_net(), net)
    box = tmp_path / "box.json"
    box.write_text('{"lo": [-1, -1], "hi": [1, 1]}')
    code = main(["stable", str(net), "--domain", str(box), "--method", "both", "--json", "--timeout", "30"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["identical"]
    assert out["results"][0]["counts"] == {"active": 0, "inactive": 1, "unstable": 4, "unknown": 0, "total": 5}


def test_cli_stable_bad_domain(capsys, tmp_path):
    box = tmp_path / "box.json"
    box.write_text('{"lo": [0], "hi": [1]}')
    code = main(["stable", str(EXAMPLES / "classifier.onnx"), "--domain", str(box)])
    assert code == 2 and "box.json" in capsys.readouterr().err
