"""No traceback, ever: malformed files and bad flags for every command give one line and a
documented exit code (nnsmt.commands.common.EXIT_CODES).

Each case runs `nnsmt.cli.main` in-process (a few run the console script) and checks the exit
code, that no "Traceback" or "internal error" shows, and that the message names the file.
A case a command outside the CLI's own files still gets wrong is marked xfail(strict=True) with
the reason, so its owner sees it turn green.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nnsmt.cli import COMMANDS, main
from nnsmt.commands.common import EXIT_CODES

from conftest import EXAMPLES, ROOT, solver_backend
from helpers import scalar_chain_onnx

FIX = ROOT / "tests" / "fixtures"
NET = str(EXAMPLES / "classifier.onnx")  # 2 inputs, 3 outputs
SAT = str(EXAMPLES / "class1_margin.vnnlib")
CATS = str(EXAMPLES / "cats" / "cats.onnx")  # 2 inputs, 1 sigmoid output
CATS_BOX = str(EXAMPLES / "cats" / "box.json")
SPHERE = str(EXAMPLES / "sphere_3_1_2.onnx")  # 3 inputs, 2 classes
SPHERE_DATA = str(EXAMPLES / "sphere_grid.csv")

FEW = settings(max_examples=8, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(*argv) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr captured; a SystemExit escaping main is a failure."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    o, e = out.getvalue(), err.getvalue()
    assert "Traceback" not in o + e, e
    return code, o, e


def usage_error(code, err, name=None, code_expected=2):
    """One line `nnsmt: error: ...` (naming `name` when given), the expected exit code."""
    assert code == code_expected, err
    assert err.startswith("nnsmt: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err
    if name is not None:
        assert str(name) in err, err


def files(tmp_path, name, data) -> str:
    p = tmp_path / name
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return str(p)


# --------------------------------------------------------------------------------------------
# the top level: exit codes, parsing, errors that are not the user's

def test_exit_code_table_lists_every_code():
    for code in ("0 ", "10 ", "20 ", "2 ", "3 ", "4 ", "1 ", "130 ", "141 "):
        assert f"\n  {code}" in EXIT_CODES


@pytest.mark.parametrize("argv, code", [(["--version"], 0), (["--help"], 0), ([], 2), (["nosuch"], 2),
                                        (["verify"], 2), (["-h", "verify"], 0)])
def test_top_level(argv, code):
    c, out, err = run(*argv)
    assert c == code
    if code == 2:
        usage_error(c, err)


@pytest.mark.parametrize("cmd", ["import" if c == "import_ir" else c.replace("_", "-") for c in COMMANDS])
def test_every_command_help(cmd):
    code, out, _ = run(cmd, "--help")
    assert code == 0 and out.startswith(f"usage: nnsmt {cmd}") and "exit codes" in out


def test_options_between_positionals():
    code, out, _ = run("verify", NET, "--timeout", "60", SAT)
    assert code == 10 and out.startswith("sat\n")
    code, out, _ = run("verify", "--timeout", "60", NET, SAT, "--backend", "z3")
    assert code == 10


def test_unexpected_exception_is_one_line_exit_1(monkeypatch):
    import nnsmt.commands.inspect as cmd
    monkeypatch.setattr(cmd, "run", lambda args: int("x"))
    monkeypatch.delenv("NNSMT_DEBUG", raising=False)
    code, _, err = run("inspect", NET)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("nnsmt: internal error: ValueError: invalid literal") and "NNSMT_DEBUG=1" in err
    monkeypatch.setenv("NNSMT_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["inspect", NET])


def test_interrupt_and_broken_pipe_in_process(monkeypatch):
    import nnsmt.commands.inspect as cmd

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cmd, "run", interrupted)
    code, _, err = run("inspect", NET)
    assert code == 130 and err == "nnsmt: interrupted\n"

    def pipe(args):
        raise BrokenPipeError
    monkeypatch.setattr(cmd, "run", pipe)
    code, _, err = run("inspect", NET)
    assert code == 141 and err == ""


def test_broken_pipe_console_script():
    """The reader is gone before nnsmt writes: no traceback, no 'Exception ignored', exit 141."""
    script = ("import os, sys, time\nr, w = os.pipe()\nos.close(r)\nos.dup2(w, 1)\n"
              "from nnsmt.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    p = subprocess.run([sys.executable, "-c", script, "verify", NET, SAT], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 141 and p.stderr == "", p.stderr


# --------------------------------------------------------------------------------------------
# bad flags

# Inputs that do not exist: a command that validates its flags stops at parsing (exit 2 naming
# the flag); one that does not fails on the missing file, fast, without naming the flag.
NOPE = ["nope.onnx", "nope.vnnlib"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "abc", "1e400"])
@pytest.mark.parametrize("cmd", [["verify", *NOPE], ["stable", "nope.onnx", "--domain", "nope.json"],
                                 ["train", "nope.onnx", "--data", "nope.csv"],
                                 ["estimate", "nope.onnx", "--objective", "eps", "--params", "delta=0.1"],
                                 ["compress", "nope.onnx", "--domain", "nope.json", "-o", "x.onnx"]])
def test_bad_timeout_is_a_usage_error(cmd, value):
    code, _, err = run(*cmd, "--timeout", value)
    usage_error(code, err, "--timeout")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
@pytest.mark.parametrize("cmd", [
    ["diff", *NOPE],
    ["batch", "nope.csv", "-o", "out.csv"],
])
def test_bad_timeout_elsewhere(cmd, value):
    code, _, err = run(*cmd, "--timeout", value)
    usage_error(code, err, "--timeout")


@pytest.mark.parametrize("argv, name", [
    (["verify", NET, SAT, "--backend", "nosuch"], "nosuch"),
    (["verify", NET, SAT, "--backend", ""], "backend"),
    (["verify", NET, SAT, "--backend", "smt2:/nonexistent/solver"], "/nonexistent/solver"),
    (["verify", NET, SAT, "--split", "0"], "--split"),
    (["verify", NET, SAT, "--split", "-3"], "--split"),
    (["verify", NET, SAT, "--encoding", "nosuch"], "nosuch"),
    (["stable", CATS, "--domain", CATS_BOX, "--backend", "nosuch"], "nosuch"),
    (["data", "sphere", "--points", "0"], "--points"),
    (["data", "sphere", "--points", "100000000000"], "--points"),
    (["data", "sphere", "--seed", "-1"], "--seed"),
    (["export", NET, "--to", "nosuch"], "--to"),
    (["verify", *NOPE, "--split", "2", "--jobs", "0"], "--jobs"),
    (["verify", *NOPE, "--split", "2", "--jobs", "-1"], "--jobs"),
    (["verify", *NOPE, "--split", "2", "--jobs", "1000000"], "1024"),
    (["data", "sphere", "--grid", "--points", "5"], "--grid"),
    (["diff", *NOPE, "--memory", "0"], "--memory"),
    (["stable", "nope.onnx", "--domain", "nope.json", "--samples", "-1"], "--samples"),
    (["train", "nope.onnx", "--data", "nope.csv", "--weight-bound", "nan"], "--weight-bound"),
    (["train", "nope.onnx", "--data", "nope.csv", "--coarse-bits", "-1"], "--coarse-bits"),
    (["compile", SPHERE, "--mode", "train", "--data", SPHERE_DATA, "--weight-bound", "inf"], "--weight-bound"),
    (["estimate", CATS, "--params", "delta=1e400", "--domain", CATS_BOX, "--objective", "eps",
      "--budget", "5"], "delta"),
    (["estimate", CATS, "--params", "delta=0.01", "--point", "1e400,1", "--objective", "eps", "--budget", "5"],
     "--point"),
])
def test_bad_flags(argv, name):
    code, _, err = run(*argv)
    usage_error(code, err, name)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_tolerance_not_positive_says_so_alike(value):
    """0 and -1 are refused with one message, naming the value."""
    code, _, err = run("estimate", CATS, "--params", "delta=0.01", "--domain", CATS_BOX, "--objective", "eps",
                       "--tolerance", value)
    usage_error(code, err, f"--tolerance must be > 0, got {value}")


def test_a_number_of_5000_digits_is_named_short():
    """Beyond int()'s digit limit: one short line, not the whole number echoed."""
    code, _, err = run("estimate", CATS, "--params", "delta=" + "1" * 5000, "--domain", CATS_BOX,
                       "--objective", "eps")
    usage_error(code, err, "too many digits")
    assert len(err) < 300


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--split", "-1"], ["--memory", "-5"]])
def test_batch_bad_counts(tmp_path, args):
    code, _, err = run("batch", "nope.csv", "-o", tmp_path / "out.csv", *args)
    usage_error(code, err, args[0])


# --------------------------------------------------------------------------------------------
# model files: every format, empty / truncated / random bytes

MODELS = {".onnx": EXAMPLES / "classifier.onnx", ".pt": FIX / "mlp.pt", ".safetensors": FIX / "mlp.safetensors",
          ".json": FIX / "mlp.json", ".keras": FIX / "mlp.keras", ".h5": FIX / "mlp_legacy.h5"}


@pytest.mark.parametrize("ext", sorted(MODELS))
@pytest.mark.parametrize("variant", ["empty", "truncated", "directory"])
def test_bad_model_files(tmp_path, ext, variant):
    good = MODELS[ext].read_bytes()
    if variant == "directory":
        (tmp_path / f"m{ext}").mkdir()
        path = str(tmp_path / f"m{ext}")
    else:
        path = files(tmp_path, f"m{ext}", b"" if variant == "empty" else good[: len(good) // 2])
    for argv in (["inspect", path], ["verify", path, SAT], ["export", path, "--to", "ir-json"]):
        code, _, err = run(*argv)
        usage_error(code, err, path)


@pytest.mark.parametrize("ext", sorted(MODELS))
@FEW
@given(data=st.binary(max_size=400))
def test_random_bytes_models(tmp_path_factory, ext, data):
    path = files(tmp_path_factory.mktemp("rnd"), f"m{ext}", data)
    code, _, err = run("inspect", path)
    usage_error(code, err, path)


@pytest.mark.parametrize("text", ["[1, 2]", "1e400", "NaN", '"abc"', '{"class_name": 5, "config": "x"}',
                                  '{"class_name": "Sequential", "config": {"layers": 5}}',
                                  '{"class_name": "Sequential", "config": {"layers": [5, "a", {"class_name": 7}]}}',
                                  "[" * 100000 + "]" * 100000])
def test_keras_json_wrong_types(tmp_path, text):
    path = files(tmp_path, "k.json", text)
    for extra in ([], ["--weights", str(FIX / "mlp.weights.h5")]):
        code, _, err = run("inspect", path, *extra)
        usage_error(code, err, path)


@pytest.mark.parametrize("weights", ["empty", "random"])
def test_bad_keras_weights(tmp_path, weights):
    w = files(tmp_path, "w.weights.h5", b"" if weights == "empty" else bytes(range(256)))
    code, _, err = run("inspect", FIX / "mlp.json", "--weights", w)
    usage_error(code, err, w)


def test_bad_arch_file(tmp_path):
    spec = files(tmp_path, "arch.json", bytes(range(128, 256)))
    code, _, err = run("inspect", FIX / "mlp.pt", "--arch", spec)
    usage_error(code, err, spec)


def test_overflowing_weights_are_sat_not_a_crash(tmp_path):
    """1-1-1 net, float64 weights 1e200: y = 1e400 exactly, inf in onnxruntime. The exact replay
    holds, so the answer is sat; the float replay's failure is a note, not an error."""
    net = scalar_chain_onnx(tmp_path / "big.onnx", [1e200, 1e200], "float64")
    prop = files(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                 "(assert (>= X_0 1))\n(assert (<= X_0 1))\n(assert (>= Y_0 1))\n")
    code, out, err = run("verify", net, prop)
    assert code == 10 and out.startswith("sat\n") and "(Y_0 inf)" in out and "internal error" not in err


def test_overflowing_weights_json(tmp_path):
    net = scalar_chain_onnx(tmp_path / "big.onnx", [1e200, 1e200], "float64")
    prop = files(tmp_path, "p.vnnlib", "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                 "(assert (>= X_0 1))\n(assert (<= X_0 1))\n(assert (>= Y_0 1))\n")
    code, out, err = run("verify", net, prop, "--json")
    assert code == 10 and json.loads(out)["status"] == "sat"


# --------------------------------------------------------------------------------------------
# IR JSON: wrong types everywhere; verify/inspect and import say the same thing

def _ir():
    from nnsmt.frontends import load_onnx
    from nnsmt.serialize import graph_to_json
    return graph_to_json(load_onnx(NET))


def _set(path, value):
    def edit(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return d
    return edit


IR_CASES = {
    "nodes_str": (_set(("nodes",), "abc"), "nodes"),
    "node_str": (_set(("nodes", 0), "abc"), "nodes/0"),
    "weight_str": (_set(("nodes", 1, "weight"), "abc"), "nodes/1/weight"),
    "value_str": (_set(("nodes", 1, "weight", "value"), "abc"), "nodes/1/weight/value"),
    "shape_str": (_set(("nodes", 1, "weight", "value", "shape"), "abc"), "nodes/1/weight/value/shape"),
    "dtype": (_set(("nodes", 1, "weight", "value", "dtype"), "float32"), "nodes/1/weight/value/dtype"),
    "data_short": (_set(("nodes", 1, "weight", "value", "data"), "AAAA"), "nodes/1/weight/value/data"),
    "dim_str": (_set(("nodes", 0, "dim"), "2"), "nodes/0/dim"),
    "dim_float": (_set(("nodes", 0, "dim"), 2.5), "nodes/0/dim"),
    "dim_bool": (_set(("nodes", 0, "dim"), True), "nodes/0/dim"),
    "name_num": (_set(("nodes", 1, "name"), 5), "nodes/1/name"),
    "name_bad": (_set(("nodes", 1, "name"), "1x"), "nodes/1/name"),
    "op_bad": (_set(("nodes", 1, "op"), "conv"), "nodes/1/op"),
    "meta_list": (_set(("meta",), [1]), "meta"),
    "outputs_str": (_set(("outputs",), "a"), "outputs"),
    "outputs_num": (_set(("outputs",), [1]), "outputs/0"),
    "version_num": (_set(("version",), 1), "version"),
    "version_3": (_set(("version",), "3.0"), "version"),
    "rational_nan": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [8], "data": ["nan"] * 8}),
                     "nodes/1/bias/value/data/0"),
    "rational_num": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [8], "data": [1] * 8}),
                     "nodes/1/bias/value/data/0"),
    "rational_huge": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [8],
                                                           "data": ["1" + "0" * 400] * 8}), "nodes/1/bias/value/data/0"),
    "rational_zero_den": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [8],
                                                               "data": ["1/0"] * 8}), "nodes/1/bias/value/data/0"),
    "shape_neg": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [-8], "data": ["1"] * 8}),
                  "nodes/1/bias/value/shape"),
    "shape_huge": (_set(("nodes", 1, "bias", "value"), {"dtype": "rational", "shape": [2**40, 2**40], "data": ["1"]}),
                   "nodes/1/bias/value/data"),
    "nan_float": (_set(("nodes", 1, "bias", "value"), {"dtype": "float64", "shape": [1],
                                                       "data": "AAAAAAAA+H8="}), "nodes/1/bias/value/data"),
    "lo_shape": (_set(("nodes", 0, "lo"), {"dtype": "rational", "shape": [3], "data": ["1", "2", "3"]}),
                 "nodes/0/lo"),
    "kind_bad": (_set(("nodes", 1, "weight", "kind"), "other"), "nodes/1/weight/kind"),
    "x_undefined": (_set(("nodes", 2, "x"), "a9"), "'a9'"),
    "x_missing": (lambda d: d["nodes"][1].pop("x") and d, "nodes/1"),
    "top_list": (lambda d: [d], "not an nnsmt IR file"),
}


@pytest.mark.parametrize("case", sorted(IR_CASES))
def test_ir_json_wrong_types(tmp_path, case):
    edit, where = IR_CASES[case]
    path = files(tmp_path, "net.json", json.dumps(edit(_ir())))
    code, _, err = run("import", path)
    usage_error(code, err, path)
    assert where in err
    if case == "top_list":  # a list is not IR: the .json loader reads it as a Keras config
        return
    for argv in (["verify", path, SAT], ["inspect", path]):
        code2, _, err2 = run(*argv)
        assert code2 == 2 and err2 == err  # the same message on every path


# --------------------------------------------------------------------------------------------
# VNN-LIB properties

HEAD = "".join(f"(declare-const X_{i} Real)\n" for i in range(2)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(3))
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"

VNNLIB_BAD = {
    "empty": "",
    "truncated": (EXAMPLES / "class1_margin.vnnlib").read_text()[:150],
    "nan": HEAD + BOX + "(assert (>= Y_0 nan))\n",
    "inf": HEAD + BOX + "(assert (>= Y_0 inf))\n",
    "deep": HEAD + BOX + "(assert " + "(and " * 5000 + "(>= Y_0 0)" + ")" * 5000 + ")\n",
    "huge_exponent": HEAD + BOX + "(assert (>= Y_0 1e99999))\n",
    "huge_digits": HEAD + BOX + "(assert (>= Y_0 " + "1" * 5000 + "))\n",
    "nul": HEAD + "\x00\n",
    "latin1": HEAD.encode() + b"; \xe9\xff\n",
    "sizes": "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= Y_0 0))\n",
}


@pytest.mark.parametrize("case", sorted(VNNLIB_BAD))
def test_bad_vnnlib(tmp_path, case):
    path = files(tmp_path, "p.vnnlib", VNNLIB_BAD[case])
    for argv in (["verify", NET, path], ["export", NET, "--to", "vnnlib", "--property", path]):
        code, _, err = run(*argv)
        usage_error(code, err, path)


@FEW
@given(data=st.binary(max_size=400))
def test_random_bytes_vnnlib(tmp_path_factory, data):
    path = files(tmp_path_factory.mktemp("rnd"), "p.vnnlib", data)
    code, _, err = run("verify", NET, path)
    if code != 2:  # a random file that parses must still be a property of the right sizes
        pytest.fail(f"exit {code}: {err}")
    usage_error(code, err, path)


@pytest.mark.parametrize("text, code", [
    (HEAD + BOX + "(assert (>= Y_0 1e400))\n", 0),
    (HEAD + BOX + "(assert (<= Y_0 1e400))\n", 10),
    (HEAD + "(assert (>= X_0 -1e400))\n(assert (<= X_0 1e400))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
     "(assert (>= Y_0 Y_1))\n", 10),
    (HEAD + "(assert (>= X_0 1))\n(assert (<= X_0 0))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
     "(assert (>= Y_0 Y_1))\n", 0),
])
def test_extreme_constants_decide(tmp_path, text, code):
    path = files(tmp_path, "p.vnnlib", text)
    c, out, err = run("verify", NET, path)
    assert c == code and "internal error" not in err


# --------------------------------------------------------------------------------------------
# box.json domains

BOX_BAD = {
    "empty": "", "list": "[1, 2]", "str_lo": '{"lo": "a", "hi": [1, 1]}',
    "nan": '{"lo": [NaN, 0], "hi": [1, 1]}', "inf": '{"lo": [-Infinity, 0], "hi": [1, 1]}',
    "e400": '{"lo": [-1e400, 0], "hi": [1, 1]}', "str_e400": '{"lo": ["-1e400", "0"], "hi": ["1", "1"]}',
    "lo_gt_hi": '{"lo": [2, 0], "hi": [1, 1]}', "missing": '{"lo": [0, 0]}',
    "dim_wrong": '{"lo": [0, 0, 0], "hi": [1, 1, 1]}', "bool": '{"lo": [true, 0], "hi": [1, 1]}',
    "boxes_bad": '{"boxes": [1, 2]}', "boxes_empty": '{"boxes": []}', "dim_str": '{"lo": 0, "hi": 1, "dim": "2"}',
    "dim_huge": '{"lo": 0, "hi": 1, "dim": 100000000000}', "nested": '{"lo": [[0], [0]], "hi": [1, 1]}',
    "zero_den": '{"lo": ["1/0", 0], "hi": [1, 1]}', "digits": '{"lo": ["' + "1" * 5000 + '", 0], "hi": [1, 1]}',
    "deep": "[" * 100000 + "]" * 100000, "latin1": b'{"lo": [0, 0], "hi": [1, 1]}\xe9',
}


@pytest.mark.parametrize("case", sorted(BOX_BAD))
def test_bad_box_json(tmp_path, case):
    path = files(tmp_path, "box.json", BOX_BAD[case])
    code, _, err = run("stable", CATS, "--domain", path)
    usage_error(code, err, path)
    assert len(err) < 400


@FEW
@given(data=st.binary(max_size=300))
def test_random_bytes_box_json(tmp_path_factory, data):
    path = files(tmp_path_factory.mktemp("rnd"), "box.json", data)
    code, _, err = run("stable", CATS, "--domain", path)
    usage_error(code, err, path)


# --------------------------------------------------------------------------------------------
# training data CSV

DATA_BAD = {
    "empty": "", "missing_column": "x1,x2,x3,label\n0.1,0.2,1\n", "nan": "0.1,nan,0.3,1\n",
    "inf": "0.1,inf,0.3,1\n", "e400": "0.1,1e400,0.3,1\n", "label_range": "0.1,0.2,0.3,7\n",
    "label_fraction": "0.1,0.2,0.3,0.5\n", "label_huge": "0.1,0.2,0.3,1e300\n", "header_only": "x1,x2,x3,label\n",
    "text": "a,b,c,d\n1,2,3,x\n", "nul": b"0.1,0.2\x00,0.3,1\n", "latin1": b"0.1,0.2,0.3,1\n\xe9\n",
    "one_column": "1\n2\n",
}


@pytest.mark.parametrize("case", sorted(DATA_BAD))
def test_bad_data_csv(tmp_path, case):
    path = files(tmp_path, "d.csv", DATA_BAD[case])
    code, _, err = run("train", SPHERE, "--data", path)
    usage_error(code, err, path)
    assert len(err) < 400


@FEW
@given(data=st.binary(max_size=300))
def test_random_bytes_data_csv(tmp_path_factory, data):
    path = files(tmp_path_factory.mktemp("rnd"), "d.csv", data)
    code, out, err = run("train", SPHERE, "--data", path, "--timeout", "5")
    if code == 2:
        usage_error(code, err, path)
    else:  # random bytes that happen to be a data set: trained or proven impossible
        assert code in (0, 10, 20) and "internal error" not in err


# --------------------------------------------------------------------------------------------
# batch instance lists

BATCH_BAD = {
    "empty": ("", None), "missing_column": ("classifier.onnx\n", None),
    "header_without_vnnlib": ("onnx,timeout\nclassifier.onnx,5\n", None),
    "timeout_nan": ("classifier.onnx,class1_margin.vnnlib,nan\n", None),
    "timeout_inf": ("classifier.onnx,class1_margin.vnnlib,inf\n", None),
    "timeout_negative": ("classifier.onnx,class1_margin.vnnlib,-1\n", None),
    "random": (bytes(range(128, 256)), None),
    "nul": (b"classifier.onnx,class1\x00.vnnlib,5\n", None),
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=why))
                                  if why else k for k, (_, why) in sorted(BATCH_BAD.items())])
def test_bad_batch_csv(tmp_path, case):
    path = files(tmp_path, "instances.csv", BATCH_BAD[case][0])
    code, _, err = run("batch", path, "-o", tmp_path / "out.csv", "--jobs", "1")
    usage_error(code, err, path)


# --------------------------------------------------------------------------------------------
# output paths

@pytest.mark.parametrize("argv", [
    ["export", NET, "--to", "onnx", "-o"], ["export", NET, "--to", "ir-json", "-o"],
    ["export", NET, "--to", "vnnlib", "-o"], ["data", "sphere", "-o"],
    ["compile", NET, "--property", SAT, "-o"],
    ["train", SPHERE, "--data", SPHERE_DATA, "--timeout", "5", "-o"],
    ["batch", "INSTANCES", "-o"],
])
@pytest.mark.parametrize("where", ["directory", "missing_dir"])
def test_unwritable_output(tmp_path, argv, where):
    ext = {"onnx": ".onnx", "ir-json": ".json", "vnnlib": ".smt2"}.get(argv[3] if len(argv) > 3 else "", ".out")
    out = str(tmp_path) if where == "directory" else str(tmp_path / "missing" / "dir" / f"x{ext}")
    if "INSTANCES" in argv:  # instances whose files are missing: each one is a quick error
        argv = [files(tmp_path, "i.csv", "nope.onnx,nope.vnnlib,5\n") if a == "INSTANCES" else a
                for a in argv]
    code, _, err = run(*argv, out)
    usage_error(code, err, out)


def test_import_output(tmp_path):
    ir = files(tmp_path, "net.json", json.dumps(_ir()))
    for out in (str(tmp_path), str(tmp_path / "missing" / "x.onnx"), str(tmp_path / "missing" / "x.json")):
        code, _, err = run("import", ir, "-o", out)
        usage_error(code, err, out)
    code, _, err = run("import", ir, "-o", tmp_path / "x.txt")
    usage_error(code, err, "x.txt")


# --------------------------------------------------------------------------------------------
# the console script itself: options interleaved, a closed pipe

def test_console_script_interleaved_and_piped():
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-m", "nnsmt.cli", "verify", NET, "--timeout", "60", SAT],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 10 and p.stdout.startswith("sat\n") and "Traceback" not in p.stderr


@pytest.mark.parametrize("backend", ["z3", "cvc5", "milp:highs"])
def test_huge_finite_timeout_is_no_limit(backend):
    """--timeout 1e300 passes the flag check (finite, > 0); each solver then runs without a
    limit instead of overflowing its own (32-bit ms, uint64 ms, the poll's clock)."""
    solver_backend(backend)
    code, out, err = run("verify", NET, SAT, "--engine", "plain", "--backend", backend, "--timeout", "1e300")
    assert out.startswith("sat") and code == 10, err


def test_huge_finite_timeout_compress(tmp_path):
    solver_backend("cvc5")
    code, out, err = run("compress", EXAMPLES / "digits" / "digits_l1.onnx", "--domain",
                         EXAMPLES / "digits" / "box.json", "-o", tmp_path / "c.onnx", "--timeout", "1e300")
    assert code == 0 and "equivalence: unsat" in out, out + err


def _e308(tmp_path):
    """A 1-1-1 chain and a domain whose float arithmetic overflows (x in [1e308, 1.7e308])."""
    net = scalar_chain_onnx(tmp_path / "n.onnx", [2.0, 3.0])
    dom = files(tmp_path, "d.json", '{"lo": [1e308], "hi": [1.7e308]}')
    return net, dom


def test_overflowing_domain_messages(tmp_path):
    """Bounds that overflow to inf are sound, not news: no numpy warning reaches the user;
    estimate, which needs a finite upper end, says so in one line naming the file; compress's
    onnxruntime spot check (float32 infs) says it tells nothing rather than "0"."""
    import warnings
    net, dom = _e308(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run("stable", net, "--domain", dom)
        assert code == 0 and err == "", err
        code, _, err = run("estimate", net, "--params", "delta=0.1", "--domain", dom, "--objective", "eps")
        usage_error(code, err, "n.onnx")
        assert "overflow" in err
        code, out, err = run("compress", net, "--domain", dom, "-o", tmp_path / "c.onnx", "--json")
        assert code == 0, err
        rec = json.loads(out)
        assert rec["onnxruntime_spot_check_max_abs_diff"] is None and "overflow" in rec["onnxruntime_spot_check_note"]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_export_refuses_weights_beyond_float32(tmp_path):
    net = scalar_chain_onnx(tmp_path / "big.onnx", [1e300, 1.0], "float64")
    code, _, err = run("export", net, "--to", "onnx", "-o", tmp_path / "b32.onnx")
    usage_error(code, err, "float32")
    assert not (tmp_path / "b32.onnx").exists()
    code, _, err = run("export", net, "--to", "onnx", "--dtype", "float64", "-o", tmp_path / "b64.onnx")
    assert code == 0, err


def test_ir_rational_with_zero_denominator(tmp_path):
    """A rational string n/0 in IR JSON is a bad value named by its path, not a crash."""
    from fractions import Fraction
    from nnsmt.ir import Affine, Const, Graph, Input
    from nnsmt.serialize import save_json
    path = tmp_path / "ir.json"
    w = np.array([[Fraction(1, 3)]], dtype=object)
    save_json(Graph((Input("x", 1), Affine("y", "x", Const(w), Const(np.array([Fraction(0)], dtype=object)))),
                    ("y",)).check(), path)
    text = path.read_text()
    assert '"1/3"' in text
    path.write_text(text.replace('"1/3"', '"1/0"'))
    code, _, err = run("import", path)
    usage_error(code, err, "ir.json")
    assert '"1/0" is not a rational string' in err


def test_sigma_with_a_point_says_sigma_is_global(tmp_path):
    net = scalar_chain_onnx(tmp_path / "n.onnx", [2.0, 3.0])
    code, _, err = run("estimate", net, "--params", "delta=0.1", "--objective", "sigma", "--point", "0.5")
    usage_error(code, err, "global")


def test_coarse_bits_beyond_float64_is_exact_data():
    from nnsmt.queries.train import coarse_coordinates
    x = np.array([[0.1, 3.0], [1e-300, -7.25]])
    assert np.array_equal(coarse_coordinates(x, 100000), x) and np.array_equal(coarse_coordinates(x, 53), x)
    assert not np.array_equal(coarse_coordinates(x, 4), x)


def test_nan_attribute_and_dynamic_dims_are_named(tmp_path):
    """A NaN attribute and a dynamic or empty non-batch input dimension: one line naming the
    file, the node or input, and what is wrong (not a Python exception's text)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def model(name, in_dims, alpha=1.0):
        w = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
        g = helper.make_graph([helper.make_node("Gemm", ["X", "W"], ["Y"], alpha=alpha)], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, in_dims)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])], [w])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.save(m, tmp_path / name)
        return tmp_path / name
    code, _, err = run("inspect", model("nan.onnx", [1, 2], alpha=float("nan")))
    usage_error(code, err, "nan.onnx")
    assert "attribute 'alpha' is NaN" in err
    code, _, err = run("inspect", model("dyn.onnx", ["N", "M"]))
    usage_error(code, err, "dyn.onnx")
    assert "dimension 1 is dynamic ('M')" in err
    code, _, err = run("inspect", model("zero.onnx", [1, 0]))
    usage_error(code, err, "zero.onnx")
    assert "dimension 1 has size 0" in err
    code, out, err = run("inspect", model("batch.onnx", ["N", 2]))
    assert code == 0, err
    code, _, err = run("inspect", model("huge.onnx", [1, 10**12]))  # was numpy's MemoryError text
    usage_error(code, err, "huge.onnx")
    assert "input 'X' has 1,000,000,000,000 elements" in err


def test_plot_without_domain_fails_before_solving(tmp_path):
    net = scalar_chain_onnx(tmp_path / "n.onnx", [2.0, 3.0])
    code, out, err = run("verify", net, "--plot", tmp_path / "p", "--params", "delta=0.1", "--point", "0",
                         "--property", "label")
    usage_error(code, err, "--plot")
    assert out == ""


def test_backend_error_names_the_backend():
    """`cat` as an SMT-LIB2 solver echoes the script and gives no verdict: an error naming it."""
    code, out, err = run("verify", NET, SAT, "--engine", "plain", "--backend", "smt2:cat")
    assert code == 3 and out == "error\n" and "smt2:cat: no verdict" in err, err
