"""The command line: verdicts, exit codes, and one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnsmt.cli import main

from conftest import EXAMPLES, need_shared

NET = str(EXAMPLES / "classifier.onnx")
SAT = str(EXAMPLES / "class1_margin.vnnlib")
UNSAT = str(EXAMPLES / "corner_robust.vnnlib")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_sat_prints_validated_counterexample(capsys):
    code, out, err = run(capsys, "verify", NET, SAT)
    assert code == 10 and out.startswith("sat\n((X_0 ") and "(Y_2 " in out and "onnxruntime" in err


def test_verify_unsat_on_cvc5(capsys):
    code, out, _ = run(capsys, "verify", NET, UNSAT, "--backend", "cvc5")
    assert code == 0 and out == "unsat\n"


def test_verify_json(capsys):
    code, out, _ = run(capsys, "verify", NET, SAT, "--json")
    d = json.loads(out)
    assert code == 10 and d["status"] == "sat" and d["counterexample"]["validated"] == ["exact", "onnxruntime"]
    x = [float(v) for v in d["counterexample"]["x"]]
    assert all(-1 <= v <= 1 for v in x)


def test_verify_timeout_is_unknown(capsys):
    folder = need_shared("benchmarks", "acasxu")
    code, out, _ = run(capsys, "verify", str(folder / "ACASXU_run2a_1_1_batch_2000.onnx"),
                       str(folder / "prop_1.vnnlib"), "--timeout", "0.5", "--engine", "plain")
    assert code == 20 and out == "unknown (timeout)\n"


def test_compile_writes_deterministic_smt2(capsys, tmp_path):
    a, b = tmp_path / "a.smt2", tmp_path / "b.smt2"
    for p in (a, b):
        assert run(capsys, "compile", NET, "--property", SAT, "--mode", "verify", "--emit", "smt2", "-o", str(p))[0] == 0
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert "(set-logic QF_LRA)" in text and ":named prop_l" in text and "(check-sat)" in text
    code, out, _ = run(capsys, "compile", NET, "--property", SAT)
    assert code == 0 and out == text


def test_inspect(capsys):
    code, out, _ = run(capsys, "inspect", NET)
    assert code == 0 and "r1 = relu a1   # 8" in out and "relus: 16" in out and "inputs: {'x': 2}" in out


def bad_models(tmp_path):
    good = (EXAMPLES / "classifier.onnx").read_bytes()
    trunc = tmp_path / "truncated.onnx"
    trunc.write_bytes(good[: len(good) // 2])
    lrn = tmp_path / "lrn.onnx"  # an op the ONNX frontend does not lower
    g = helper.make_graph([helper.make_node("LRN", ["x"], ["y"], name="norm1", size=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])])
    onnx.save(helper.make_model(g), lrn)
    nan = tmp_path / "nan.onnx"
    m = onnx.load(EXAMPLES / "classifier.onnx")
    w = numpy_helper.to_array(m.graph.initializer[0]).copy()
    w[0, 0] = np.nan
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, m.graph.initializer[0].name))
    onnx.save(m, nan)
    return {"truncated": (trunc, "not a valid ONNX model"), "unsupported_op": (lrn, "LRN"),
            "nan": (nan, "NaN")}


@pytest.mark.parametrize("case", ["truncated", "unsupported_op", "nan"])
def test_bad_models_exit_2_with_one_line(capsys, tmp_path, case):
    path, msg = bad_models(tmp_path)[case]
    code, out, err = run(capsys, "verify", str(path), SAT)
    assert code == 2 and msg in err and err.count("\n") == 1 and str(path.name) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("text, where", [
    ("(declare-const X_0 Real)\n(assert (<= X_0 1)\n", "p.vnnlib:2:1"),
    ("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(assert (<= Z_0 1))\n", "p.vnnlib:4:13"),
])
def test_bad_vnnlib_exit_2_with_line_and_column(capsys, tmp_path, text, where):
    p = tmp_path / "p.vnnlib"
    p.write_text(text)
    code, _, err = run(capsys, "verify", NET, str(p))
    assert code == 2 and where in err and err.count("\n") == 1


def test_size_mismatch_exit_2(capsys, tmp_path):
    p = tmp_path / "p.vnnlib"
    p.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= Y_0 0))\n")
    code, _, err = run(capsys, "verify", NET, str(p))
    assert code == 2 and "input size mismatch" in err and err.count("\n") == 1


def test_missing_files_and_unknown_backend(capsys):
    assert run(capsys, "verify", "nope.onnx", SAT)[0] == 2
    assert run(capsys, "verify", NET, "nope.vnnlib")[0] == 2
    code, _, err = run(capsys, "verify", NET, SAT, "--backend", "yices9")
    assert code == 2 and "unknown backend" in err


def test_console_script_help_lists_exit_codes():
    out = subprocess.run([sys.executable, "-m", "nnsmt.cli", "verify", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "exit codes" in out.stdout and "10  verify: sat" in out.stdout
