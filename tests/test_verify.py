"""Verification end to end: known answers on Z3 and cvc5, validated counterexamples."""

import csv
from fractions import Fraction

import numpy as np
import pytest

from nnsmt.errors import InputError, ValidationError
from nnsmt.frontends import load_onnx, ort_evaluator
from nnsmt.queries.verify import verify_script
from nnsmt.validate import validate_counterexample
from nnsmt.vnnlib import load_vnnlib, parse_vnnlib

from conftest import EXAMPLES, need_shared

# test_sat/test_unsat are full ACAS Xu networks (300 ReLUs); with the plain encoding the
# solvers need minutes, so they live in bench/compile_speed.py until bounds make them fast.
FAST = ("test_nano.onnx", "test_tiny.onnx", "test_small.onnx")


def known_instances():
    folder = need_shared("benchmarks", "vnncomp-test")
    return folder, [r for r in csv.DictReader(open(folder / "known.csv")) if r["onnx"] in FAST]


def decide(backend, onnx_path, vnn_path, timeout=60):
    g, prop = load_onnx(onnx_path), load_vnnlib(vnn_path)
    res = backend.solve(verify_script(g, prop), timeout=timeout)
    cex = None
    if res.status == "sat":
        cex = validate_counterexample(g, prop, res.model, ort_evaluator(onnx_path))
    return res, cex


def test_vnncomp_known_answers(backend):
    folder, rows = known_instances()
    assert len(rows) == 3
    for r in rows:
        res, _ = decide(backend, folder / r["onnx"], folder / r["vnnlib"])
        assert res.status == r["expected"], (r, res)


@pytest.mark.parametrize("prop, expected", [("class1_margin.vnnlib", "sat"), ("corner_robust.vnnlib", "unsat")])
def test_example_network(backend, prop, expected):
    res, cex = decide(backend, EXAMPLES / "classifier.onnx", EXAMPLES / prop)
    assert res.status == expected, (res.status, res.reason)
    assert (cex is not None) == (expected == "sat")
    if expected == "sat":  # validated: exact outputs satisfy Y_1 >= Y_2 + 0.25 and x is in the box
        assert cex.y[1] >= cex.y[2] + Fraction(1, 4)
        assert all(-1 <= v <= 1 for v in cex.x) and cex.float_replay == "onnxruntime"


def test_hand_derived_single_neuron(backend, tmp_path):
    """test_nano: y = relu(w x) on x in [-1, 1]; y >= 0 always, so 'y <= -1' is unsat, while
    'y >= w' is sat exactly at x = 1 (w > 0 there: checked on the weight itself)."""
    folder = need_shared("benchmarks", "vnncomp-test")
    g = load_onnx(folder / "test_nano.onnx")
    w = float(g.params()[0][2].value[0, 0])
    text = (folder / "test_nano.vnnlib").read_text().replace("(assert (<= Y_0 -1))", f"(assert (>= Y_0 {abs(w)!r}))")
    p = tmp_path / "p.vnnlib"
    p.write_text(text)
    res, cex = decide(backend, folder / "test_nano.onnx", p)
    assert res.status == "sat" and abs(cex.x[0]) == 1


def test_replay_rejects_a_wrong_model():
    """A model that does not satisfy the property is an error, never sat."""
    g = load_onnx(EXAMPLES / "classifier.onnx")
    prop = load_vnnlib(EXAMPLES / "corner_robust.vnnlib")
    with pytest.raises(ValidationError, match="exact replay"):
        validate_counterexample(g, prop, {"X_0": Fraction(9, 10), "X_1": Fraction(9, 10)})


def test_float_replay_disagreement_is_recorded_not_raised():
    """An exactly replayed witness is a counterexample of the real-valued network: a float
    replay that disagrees is noted in the Counterexample (float_ok False), not an error."""
    g = load_onnx(EXAMPLES / "classifier.onnx")
    prop = load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    from nnsmt.backends import get_backend
    res = get_backend("z3").solve(verify_script(g, prop))
    lying = lambda x: np.array([0.0, 0.0, 1.0])  # a float evaluator that disagrees
    cex = validate_counterexample(g, prop, res.model, lying, float_name="fake")
    assert not cex.float_ok and cex.float_replay == "" and cex.float_check.startswith("fake disagrees")


def test_size_mismatch():
    g = load_onnx(EXAMPLES / "classifier.onnx")
    prop = parse_vnnlib("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= Y_0 0))\n", "p.vnnlib")
    with pytest.raises(InputError, match="input size mismatch.*2 inputs.*declares 1"):
        verify_script(g, prop)


def test_timeout_is_unknown(backend):
    folder = need_shared("benchmarks", "acasxu")
    g = load_onnx(folder / "ACASXU_run2a_1_1_batch_2000.onnx")
    res = backend.solve(verify_script(g, load_vnnlib(folder / "prop_1.vnnlib")), timeout=0.5)
    assert res.status == "unknown" and res.reason == "timeout"


@pytest.mark.parametrize("atoms, contra", [
    ("(assert (> Y_0 Y_1))\n(assert (< Y_0 Y_1))", True),
    ("(assert (and (>= Y_0 (+ Y_1 1)) (<= Y_0 Y_1)))", True),
    ("(assert (> Y_0 Y_1))\n(assert (< Y_0 Y_2))", False),
    ("(assert (> Y_0 Y_1))", False),
])
def test_contradictory_property_is_one_plain_query(atoms, contra):
    """Output assertions that contradict each other (whatever the network computes): bounds
    judge each atom alone and cannot refute any box, so auto picks one plain query, which says
    unsat at once. The others keep input splitting."""
    from nnsmt.engine.verify import VerifyOptions, choose, contradictory, verify
    g = load_onnx(EXAMPLES / "classifier.onnx")
    text = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
        "".join(f"(declare-const Y_{j} Real)\n" for j in range(3)) + \
        "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n" + atoms
    p = parse_vnnlib(text)
    assert contradictory(p) == contra
    engine = choose(g, p, VerifyOptions())[0]
    assert engine == ("plain" if contra else "split")
    if contra:
        assert verify(g, p, VerifyOptions(timeout=30)).status == "unsat"
