"""Input splitting on edge cases: an empty input region, constants beyond float64."""

import pytest

from nnsmt.cli import main
from nnsmt.frontends import load_onnx
from nnsmt.queries.split import plan_split
from nnsmt.vnnlib import parse_vnnlib

from conftest import EXAMPLES

NET = EXAMPLES / "classifier.onnx"  # 2 inputs, 3 outputs, outputs bounded on [-1, 1]^2

HEAD = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(3))
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"

CASES = {  # name: (property text, verdict, exit code)
    "empty_lo_gt_hi": (HEAD + "(assert (>= X_0 1))\n(assert (<= X_0 0))\n(assert (>= X_1 -1))\n"
                       "(assert (<= X_1 1))\n(assert (>= Y_0 Y_1))\n", "unsat", 0),
    "empty_false": (HEAD + BOX + "(assert (<= 1 0))\n(assert (>= Y_0 Y_1))\n", "unsat", 0),
    "empty_union": (HEAD + "(assert (or (and (>= X_0 1) (<= X_0 0) (>= X_1 0) (<= X_1 1)) "
                    "(and (>= X_0 2) (<= X_0 -2) (>= X_1 0) (<= X_1 1))))\n(assert (>= Y_0 Y_1))\n",
                    "unsat", 0),
    "const_1e400_unreachable": (HEAD + BOX + "(assert (>= Y_0 1e400))\n", "unsat", 0),
    "const_1e400_everywhere": (HEAD + BOX + "(assert (<= Y_0 1e400))\n", "sat", 10),
    "coef_1e400": (HEAD + BOX + "(assert (>= (* 1e400 Y_0) (* -1e400 1e400)))\n", "sat", 10),
    "input_bound_1e400": (HEAD + "(assert (>= X_0 -1e400))\n(assert (<= X_0 1e400))\n(assert (>= X_1 -1))\n"
                          "(assert (<= X_1 1))\n(assert (>= Y_0 Y_1))\n", "sat", 10),
    "const_neg_1e400": (HEAD + BOX + "(assert (>= Y_0 (- 1e400)))\n(assert (<= Y_1 -1e400))\n", "unsat", 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plan_split_edge(name):
    text, verdict, _ = CASES[name]
    plan = plan_split(load_onnx(NET), parse_vnnlib(text, f"{name}.vnnlib"), 4, validate=lambda m: True)
    if name == "input_bound_1e400":  # bounds beyond float64: one sub-query, the whole property
        assert len(plan.subqueries) == 1 and plan.exhausted
    elif verdict == "unsat":  # nothing left for a solver: no input, or every box refuted by bounds
        assert plan.subqueries == [] and plan.candidate is None
    else:
        assert plan.candidate is not None


def test_coefficient_beyond_float64_is_left_to_the_solver():
    """Y_0 <= -1e400 written with a coefficient 1e400: no float bound arithmetic on that atom
    (it stays unknown, sound), so sub-queries remain and no candidate passes."""
    text = HEAD + BOX + "(assert (<= (* 1e400 Y_0) (* -1e400 1e400)))\n"
    plan = plan_split(load_onnx(NET), parse_vnnlib(text, "p.vnnlib"), 4, validate=lambda m: True)
    assert plan.subqueries and plan.candidate is None


@pytest.mark.parametrize("split", [[], ["--split", "4"]])
@pytest.mark.parametrize("name", sorted(CASES))
def test_verify_edge(capsys, tmp_path, name, split):
    text, verdict, code = CASES[name]
    p = tmp_path / f"{name}.vnnlib"
    p.write_text(text)
    rc = main(["verify", str(NET), str(p), *split])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err
    assert rc == code and out.splitlines()[0].startswith(verdict)
