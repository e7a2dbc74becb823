"""The replay of a witness: exact decides, the float replay (VNN-COMP's rule) is a recorded note.

Every case is a 1-input network small enough to derive the expected outcome by hand.
"""

from fractions import Fraction

import numpy as np
import pytest

from nnsmt.errors import ValidationError
from nnsmt.frontends import load_onnx, ort_evaluator
from nnsmt.interpret import evaluate
from nnsmt.validate import Counterexample, validate_counterexample
from nnsmt.vnnlib import parse_vnnlib

from helpers import scalar_chain_onnx

THIRD = Fraction(1, 3)  # not a float: the float replay sees float32(1/3) = 1/3 + 9.93e-9


def chain(path, weights, dtype="float32", relu=True):
    """The IR and onnxruntime replay of `helpers.scalar_chain_onnx`."""
    path = scalar_chain_onnx(path, weights, dtype, relu)
    return load_onnx(path), ort_evaluator(path)


def point_property(x: str, out_atom: str):
    """X_0 fixed to the VNN-LIB constant `x`, and one assertion on Y_0."""
    return parse_vnnlib(f"(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                        f"(assert (>= X_0 {x}))\n(assert (<= X_0 {x}))\n(assert {out_atom})\n", "p.vnnlib")


@pytest.mark.parametrize("scale", [10**3, 10**4, 10**5, 10**6, 10**7, 10**8])
def test_large_outputs_pass_the_float_replay(tmp_path, scale):
    """y = scale * x at x = 1/3, property Y_0 <= scale/3: holds exactly (with equality). In
    float32, y = scale * float32(1/3) is about scale * 9.9e-9 too high: within atol 1e-4 for
    1e3, beyond it from 1e5 on, where the outputs still agree within rtol 1e-3."""
    g, ort = chain(tmp_path / "n.onnx", [scale])
    prop = point_property("(/ 1 3)", f"(<= Y_0 (/ {scale} 3))")
    cex = validate_counterexample(g, prop, {"X_0": THIRD}, ort)
    assert cex.y == (Fraction(scale, 3),)
    assert cex.float_ok and cex.float_replay == "onnxruntime"
    if scale == 10**3:
        assert cex.float_check == "onnxruntime: property holds within atol 0.0001"
    if scale >= 10**5:
        assert cex.float_check == "onnxruntime: outputs within rtol 0.001 of exact"
    assert "(Y_0 " in cex.vnncomp()


def test_huge_property_coefficient(tmp_path):
    """3.9e36 * Y_0 <= 3.9e36 / 3 with y = x = 1/3: equality exactly; in floats the atom is off
    by 3.9e36 * 9.9e-9 ~ 3.9e28 (far beyond atol 1e-4), but y_float agrees with y within rtol."""
    g, ort = chain(tmp_path / "n.onnx", [1.0])
    prop = point_property("(/ 1 3)", "(<= (* 3.9e36 Y_0) (/ 3.9e36 3))")
    cex = validate_counterexample(g, prop, {"X_0": THIRD}, ort)
    assert cex.float_ok and cex.float_check == "onnxruntime: outputs within rtol 0.001 of exact"


def test_exact_only_pass_is_recorded_not_raised(tmp_path):
    """y = x at x = 1/3 with Y_0 <= 1/3: an evaluator answering 1 fails both float checks
    (|1 - 1/3| is neither within atol of the bound nor within rtol of y)."""
    g, _ = chain(tmp_path / "n.onnx", [1.0])
    prop = point_property("(/ 1 3)", "(<= Y_0 (/ 1 3))")
    cex = validate_counterexample(g, prop, {"X_0": THIRD}, lambda x: np.array([1.0]), float_name="fake")
    assert isinstance(cex, Counterexample) and cex.y == (THIRD,)
    assert not cex.float_ok and cex.float_replay == ""
    assert cex.float_check.startswith("fake disagrees: line 5: (<= Y_0 (/ 1 3))")
    assert cex.y_float == (1.0,)


def test_no_float_replay():
    cex = Counterexample((Fraction(1),), (Fraction(2),))
    assert cex.float_ok and cex.float_check == "" and cex.float_replay == ""
    assert cex.vnncomp() == "((X_0 1.0)\n (Y_0 2.0))"


def test_exact_failure_still_raises(tmp_path):
    g, ort = chain(tmp_path / "n.onnx", [1.0])
    prop = point_property("(/ 1 3)", "(<= Y_0 0)")
    with pytest.raises(ValidationError, match="exact replay.*line 5"):
        validate_counterexample(g, prop, {"X_0": THIRD}, ort)


def test_overflowing_weights_do_not_crash(tmp_path):
    """1-1-1 net with float64 weights 1e200: y = 1e400 at x = 1, beyond float64. The exact
    replay holds (Y_0 >= 1); onnxruntime gives inf: a failed float check with a note, and
    the VNN-COMP output prints inf instead of raising OverflowError."""
    g, ort = chain(tmp_path / "n.onnx", [1e200, 1e200], dtype="float64")
    prop = point_property("1", "(>= Y_0 1)")
    cex = validate_counterexample(g, prop, {"X_0": Fraction(1)}, ort)
    assert cex.y == (Fraction(1e200) ** 2,)
    assert not cex.float_ok and "float overflow" in cex.float_check and "Y_0" in cex.float_check
    assert cex.vnncomp() == "((X_0 1.0)\n (Y_0 inf))"
    # the same through nnsmt's own float64 interpreter, and a negative overflow
    g2, _ = chain(tmp_path / "m.onnx", [1e200, -1e200], dtype="float64")
    prop2 = point_property("1", "(<= Y_0 1)")
    with np.errstate(over="ignore"):
        cex2 = validate_counterexample(g2, prop2, {"X_0": Fraction(1)},
                                       lambda x: evaluate(g2, {g2.inputs[0].name: x})[g2.outputs[0]],
                                       float_name="float64")
    assert not cex2.float_ok and cex2.vnncomp().endswith("(Y_0 -inf))")


def test_exact_failure_message_with_huge_values(tmp_path):
    """The refusal message prints values beyond float64 without OverflowError."""
    g, _ = chain(tmp_path / "n.onnx", [1e200, 1e200], dtype="float64")
    prop = point_property("1", "(<= Y_0 1)")
    with pytest.raises(ValidationError, match=r"1e\+400 vs 1"):
        validate_counterexample(g, prop, {"X_0": Fraction(1)})


def test_evaluator_exception_is_a_note(tmp_path):
    g, _ = chain(tmp_path / "n.onnx", [1.0])
    prop = point_property("(/ 1 3)", "(<= Y_0 1)")

    def broken(x):
        raise RuntimeError("session died")
    cex = validate_counterexample(g, prop, {"X_0": THIRD}, broken, float_name="fake")
    assert not cex.float_ok and "could not replay" in cex.float_check and "session died" in cex.float_check
