"""The VNN-LIB 2 verifier interface (the standard's chapter 5) through the `nnsmt` command line:
`verify QUERY --network NAME=FILE` (verdict line, the 5.3.1 assignment or the serialised one,
logs on stderr, exit codes, the 5.3.2 error conditions), `supports --CAP`, `--name`,
`--version`, `compile QUERY --network ... --emit smt2` against z3, and VNN-LIB 1.0 properties
through the standard form against the old one.

Expected assignments are derived by hand from networks whose witnesses the constraints pin to
one point; sat answers are parsed back and replayed in onnxruntime.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nnsmt
from nnsmt.assignment import parse_assignment
from nnsmt.cli import main
from nnsmt.vnnlib import load_vnnlib
from nnsmt.vnnlib2 import load_query

from conftest import EXAMPLES, have, need_shared

F = Fraction
NNSMT = [sys.executable, "-m", "nnsmt.cli"]
ONNX_T = {"float16": (np.float16, TensorProto.FLOAT16), "float32": (np.float32, TensorProto.FLOAT),
          "float64": (np.float64, TensorProto.DOUBLE)}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def save_model(path, nodes, inputs, outputs, inits, dtype="float32", opset=13) -> str:
    npt, ot = ONNX_T[dtype]
    g = helper.make_graph(nodes, Path(path).stem,
                          [helper.make_tensor_value_info(n, ot, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, ot, s) for n, s in outputs],
                          [numpy_helper.from_array(np.asarray(v, npt), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


def lin(path, dtype="float32", opset=13) -> str:
    """h = x diag(2, 3) + (1, 0), y = relu(h); x, y of shape [1,2]."""
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])]
    return save_model(path, nodes, [("x", [1, 2])], [("y", [1, 2])],
                      {"W": [[2, 0], [0, 3]], "B": [1, 0]}, dtype, opset)


def margin(path, dtype="float32") -> str:
    """y = 0.25 x0 + 0.5 x1 + 0.125 x2 + 1 (>= 1 on [0, 1]^3)."""
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)]
    return save_model(path, nodes, [("x", [1, 3])], [("y", [1, 1])],
                      {"W": [[0.25, 0.5, 0.125]], "B": [1.0]}, dtype)


def cancel(path, big=1e8, dtype="float32") -> str:
    """y = (x + big) - big as two Adds: x over the reals, 0 in float32 for x in [0.1, 0.2]."""
    nodes = [helper.make_node("Add", ["x", "B"], ["h"]), helper.make_node("Add", ["h", "NB"], ["y"])]
    return save_model(path, nodes, [("x", [1])], [("y", [1])], {"B": [big], "NB": [-big]}, dtype)


def ort_run(path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in sess.run(None, feeds)]


# The queries. PAIR pins every input to one point: f at X = (0.5, -0.25) gives H = (2*0.5 + 1,
# 3*-0.25) = (2, -0.75), Y = relu(H) = (2, 0); its equal-to copy g at U = (-1, 0.25) gives
# (-1, 0.75) and V = (0, 0.75). Both asserts on outputs hold there.
PAIR = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X {t} [1,2])
  (declare-hidden H {t} [1,2] "h")
  (declare-output Y {t} [1,2])
)
(declare-network g
  (equal-to f)
  (declare-input U {t} [1,2])
  (declare-output V {t} [1,2])
)
(assert (and (>= X[0,0] 0.5) (<= X[0,0] 0.5) (>= X[0,1] -0.25) (<= X[0,1] -0.25)))
(assert (and (>= U[0,0] -1.0) (<= U[0,0] -1.0) (>= U[0,1] 0.25) (<= U[0,1] 0.25)))
(assert (>= Y[0,0] 1.5))
(assert (> V[0,1] 0.5))
"""

ONE = """(vnnlib-version <2.0>)
(declare-network f
  (declare-input X {t} [1,2])
  (declare-hidden H {t} [1,2] "h")
  (declare-output Y {t} [1,2])
)
(assert (and (>= X[0,0] 0.5) (<= X[0,0] 0.5) (>= X[0,1] -0.25) (<= X[0,1] -0.25)))
(assert (>= Y[0,0] 1.5))
"""

MARGIN = """(vnnlib-version <2.0>)
(declare-network N
  (declare-input X {t} [1,3])
  (declare-output Y {t} [1,1])
)
(assert (and (>= X[0,0] 0.0) (<= X[0,0] 1.0) (>= X[0,1] 0.0) (<= X[0,1] 1.0)))
(assert (and (>= X[0,2] 0.0) (<= X[0,2] 1.0)))
(assert (< Y[0,0] {c}))
"""

CANCEL = """(vnnlib-version <2.0>)
(declare-network N
  (declare-input X {t} [1])
  (declare-output Y {t} [1])
)
(assert (>= X[0] 0.1))
(assert (<= X[0] 0.2))
(assert ({op} Y[0] 0.05))
"""

GOLDEN_PAIR_REAL = """sat
X real [1,2]
0.5
-0.25
H real [1,2]
2
-0.75
Y real [1,2]
2
0
U real [1,2]
-1
0.25
V real [1,2]
0
0.75
"""

GOLDEN_ONE_F32 = """sat
X float32 [1,2]
0.5
-0.25
H float32 [1,2]
2.0
-0.75
Y float32 [1,2]
2.0
0.0
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("std")
    out = {"lin32": lin(d / "lin32.onnx"), "lin64": lin(d / "lin64.onnx", "float64"),
           "margin32": margin(d / "margin32.onnx"), "cancel32": cancel(d / "cancel32.onnx")}
    texts = {"pair_real": PAIR.format(t="real"), "pair_f32": PAIR.format(t="float32"),
             "one_f32": ONE.format(t="float32"), "one_real": ONE.format(t="real"),
             "margin_f32": MARGIN.format(t="float32", c="0.999"),
             "margin_real": MARGIN.format(t="real", c="0.999"),
             "cancel_f32_lt": CANCEL.format(t="float32", op="<"),
             "cancel_real_lt": CANCEL.format(t="real", op="<")}
    for k, t in texts.items():
        (d / f"{k}.vnnlib").write_text(t)
        out[k] = str(d / f"{k}.vnnlib")
    out["dir"] = d
    return out


# ---- verify: sat and its assignment -------------------------------------------------------------

@pytest.mark.parametrize("query, golden", [("pair_real", GOLDEN_PAIR_REAL), ("one_f32", GOLDEN_ONE_F32)])
def test_sat_prints_the_assignment(capsys, files, query, golden):
    """The verdict line, then every declared variable in declaration order (hidden values
    included): its header `name type [dims]` and its values one a line, row-major; real values
    as exact decimals, float32 ones as the shortest decimal of the float."""
    code, out, err = run(capsys, "verify", files[query], "--network", f"f={files['lin32']}")
    assert (code, out) == (0, golden)
    assert "nnsmt: sat" in err


def test_sat_of_two_float32_networks_prints_the_assignment(capsys, files):
    """PAIR in float32: every value is exact in float32, so the text is the real one with float
    decimals. (Regression: the float replay of two networks read g's outputs from f's.)"""
    golden = GOLDEN_PAIR_REAL.replace(" real ", " float32 ")
    for a, b in (("\n2\n", "\n2.0\n"), ("\n0\n", "\n0.0\n"), ("\n-1\n", "\n-1.0\n")):
        golden = golden.replace(a, b)
    code, out, _ = run(capsys, "verify", files["pair_f32"], "--network", f"f={files['lin32']}")
    assert (code, out) == (0, golden)


def test_sat_output_parses_back_and_replays_in_onnxruntime(capsys):
    """examples/class1_margin_f32.vnnlib: the printed X, run by onnxruntime in float32, gives
    the printed Y bit for bit, and the query holds on them (its constant 0.25 is exact)."""
    net, query = EXAMPLES / "classifier.onnx", EXAMPLES / "class1_margin_f32.vnnlib"
    code, out, _ = run(capsys, "verify", query, "--network", f"classifier={net}")
    verdict, rest = out.split("\n", 1)
    assert (code, verdict) == (0, "sat")
    decls = load_query(query).decls
    vals = parse_assignment(rest, decls, first_line=2)
    assert list(vals) == ["X", "Y"]
    # each printed value is the shortest decimal of a float32 (it reads back as that float)
    for line in rest.splitlines():
        if " " not in line:
            assert line == np.format_float_positional(np.float32(float(line)), unique=True, trim="0")
    x = np.array([float(v) for v in vals["X"]], np.float32).reshape(1, 2)
    y = ort_run(str(net), {"input": x})[0].ravel()
    assert y.dtype == np.float32
    assert [np.float32(float(v)) for v in vals["Y"]] == list(y)
    assert np.all(np.abs(x) <= 1) and F(float(y[1])) >= F(float(y[2])) + F(1, 4)


@pytest.mark.parametrize("query, dtype", [("one_f32", np.float32), ("pair_real", np.float64)])
def test_serialise_assignments_writes_one_tensor_per_variable(capsys, files, tmp_path, query, dtype):
    """stdout is just `sat`; DIR holds NAME.pb for every declared variable, each a TensorProto of
    the declared shape and type (`real` as double) holding the pinned values."""
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "verify", files[query], "--network", f"f={files['lin32']}",
                       "--serialise-assignments", out_dir)
    assert (code, out) == (0, "sat\n")
    want = {"X": [0.5, -0.25], "H": [2, -0.75], "Y": [2, 0], "U": [-1, 0.25], "V": [0, 0.75]}
    if query == "one_f32":
        want = {k: want[k] for k in ("X", "H", "Y")}
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{k}.pb" for k in want)
    for name, values in want.items():
        t = numpy_helper.to_array(onnx.load_tensor(str(out_dir / f"{name}.pb")))
        assert t.dtype == dtype and t.shape == (1, 2) and t.ravel().tolist() == values, name


def test_serialise_assignments_needs_a_folder(capsys, files, tmp_path):
    f = tmp_path / "a_file"
    f.write_text("")
    code, out, err = run(capsys, "verify", files["one_f32"], "--network", f"f={files['lin32']}",
                         "--serialise-assignments", f)
    assert code == 2 and out == "" and err.count("\n") == 1 and "a_file" in err


def test_serialise_assignments_writes_nothing_on_unsat(capsys, files, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "verify", files["margin_f32"], "--network", f"N={files['margin32']}",
                       "--serialise-assignments", out_dir)
    assert (code, out) == (0, "unsat\n") and not any(out_dir.iterdir())


def test_the_console_script_keeps_logs_off_stdout(files):
    """A subprocess, as a harness runs it: stdout is exactly the verdict and the assignment."""
    r = subprocess.run([*NNSMT, "verify", files["pair_real"], "--network", f"f={files['lin32']}"],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, GOLDEN_PAIR_REAL) and "nnsmt: sat" in r.stderr


# ---- verify: unsat, timed-out, unknown, solver errors, --json ----------------------------------

@pytest.mark.parametrize("query", ["margin_f32", "margin_real"])
def test_unsat_prints_the_verdict_only(capsys, files, query):
    """y >= 1 on the box, y < 0.999 asserted: unsat (float32: the rounding bound is below the
    margin)."""
    code, out, err = run(capsys, "verify", files[query], "--network", f"N={files['margin32']}")
    assert (code, out) == (0, "unsat\n")
    assert err.startswith("nnsmt: unsat by ")


def test_timed_out(files):
    """A 784-input, six-layer MNIST network and a 0.05 ball, one second: the verdict line is
    timed-out and the exit code 0."""
    folder = need_shared("benchmarks", "mnistfc")
    r = subprocess.run([*NNSMT, "verify", folder / "prop_1_0.05.vnnlib", "--network",
                        f"N={folder / 'mnist-net_256x6.onnx'}", "--timeout", "1"],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "timed-out\n"), r.stderr
    assert "timeout" in r.stderr


def overflow16(folder) -> tuple[str, Path]:
    """(model, query) in `folder`: float16 y = 1000 x on [0, 100], which overflows, so no
    rounding-error bound exists; the query asks y < -1 (unsat over the reals: y >= 0)."""
    net = save_model(folder / "big16.onnx", [helper.make_node("Mul", ["x", "K"], ["y"])],
                     [("x", [1])], [("y", [1])], {"K": [1000]}, "float16")
    q = folder / "big16.vnnlib"
    q.write_text("(vnnlib-version <2.0>)\n(declare-network N\n  (declare-input X float16 [1])\n"
                 "  (declare-output Y float16 [1])\n)\n(assert (>= X[0] 0.0))\n(assert (<= X[0] 100.0))\n"
                 "(assert (< Y[0] -1.0))\n")
    return net, q


def test_unknown_names_its_reason(capsys, tmp_path):
    """float16 y = 1000 x on [0, 100] overflows (`overflow16`): the real query's unsat proves
    nothing in float16: unknown, exit 0, the reason on stderr."""
    net, q = overflow16(tmp_path)
    code, out, err = run(capsys, "verify", q, "--network", f"N={net}")
    assert (code, out) == (0, "unknown\n")
    assert "does not prove the float16 one" in err and "inf" in err


def test_a_solver_failure_is_unknown_with_exit_3(capsys, monkeypatch):
    """A solver that dies (tests/fake_backends.Crashy): the verdict line says unknown, exit 3."""
    from nnsmt import backends
    monkeypatch.setitem(backends.REGISTRY, "crashy", ("fake_backends", "Crashy", ""))
    code, out, err = run(capsys, "verify", EXAMPLES / "pair_margin.vnnlib", "--network",
                         f"f={EXAMPLES / 'classifier.onnx'}", "--backend", "crashy", "--timeout", "30")
    assert (code, out) == (3, "unknown\n") and "died" in err


def test_json(capsys, files):
    code, out, _ = run(capsys, "verify", files["one_f32"], "--network", f"f={files['lin32']}", "--json")
    d = json.loads(out)
    assert code == 0 and d["verdict"] == "sat" and d["semantics"] == "float32"
    assert d["assignment"] == {"X": ["1/2", "-1/4"], "H": ["2", "-3/4"], "Y": ["2", "0"]}
    assert d["networks"] == {"f": files["lin32"]}
    code, out, _ = run(capsys, "verify", files["margin_real"], "--network", f"N={files['margin32']}", "--json")
    d = json.loads(out)
    assert code == 0 and d["verdict"] == "unsat" and d["semantics"] == "real" and "assignment" not in d


# ---- verify: the error conditions (5.3.2) and bad options ---------------------------------------

def _err_cases(files, tmp):
    q = files["pair_f32"]
    l32, l64 = files["lin32"], files["lin64"]

    def write(name, text):
        (tmp / name).write_text(text)
        return str(tmp / name)
    two = write("two.vnnlib", "(vnnlib-version <2.0>)\n(declare-network f (declare-input X real [1,2]) "
                "(declare-output Y real [1,2]))\n(declare-network g (declare-input U real [1,2]) "
                "(declare-output V real [1,2]))\n(assert (<= X[0,0] 1.0))\n")
    hid = write("hid.vnnlib", PAIR.format(t="float32").replace('"h"', '"nope"'))
    shp = write("shape.vnnlib", PAIR.format(t="float32").replace("X float32 [1,2]", "X float32 [1,3]")
                .replace("U float32 [1,2]", "U float32 [1,3]"))
    bf = write("bf16.vnnlib", PAIR.format(t="bfloat16"))
    parse = write("parse.vnnlib", PAIR.format(t="float32").replace("(> V[0,1] 0.5)", "(> W[0,1] 0.5)"))
    return {
        "no network at all": ([q], f"{q}: no --network for f"),
        "a network missing": ([two, "--network", f"f={l32}"], f"{two}: no --network for g"),
        "an undeclared network": ([q, "--network", f"f={l32}", "--network", f"k={l32}"], "declares no network 'k'"),
        "a model for an equal-to network": ([q, "--network", f"f={l32}", "--network", f"g={l32}"],
                                            "g is declared (equal-to f)"),
        "a model of another type": ([q, "--network", f"f={l64}"],
                                    f"{l64}: input 'x' is float64, but X is declared float32 (network f)"),
        "a hidden node not in the model": ([hid, "--network", f"f={l32}"], f"{l32}: no value named 'nope'"),
        "a shape the model does not have": ([shp, "--network", f"f={l32}"],
                                            f"{l32}: input 'x' has 2 elements, X is declared [1, 3]"),
        "a type nnsmt is not sound for": ([bf, "--network", f"f={l32}"], f"{bf}: X is declared bfloat16"),
        "a query that does not parse": ([parse, "--network", f"f={l32}"], f"{parse}:15: Undeclared variable 'W'"),
        "a missing model": ([q, "--network", f"f={tmp / 'nope.onnx'}"], "nope.onnx: no such file"),
        "a missing query": ([tmp / "nope.vnnlib", "--network", f"f={l32}"], "nope.vnnlib: cannot read"),
        "NAME alone": ([q, "--network", "f"], "--network f: give NAME=FILE"),
        "=FILE alone": ([q, "--network", f"={l32}"], f"--network ={l32}: give NAME=FILE"),
        "NAME= without a file": ([q, "--network", "f="], "--network f=: give NAME=FILE"),
        "a name given twice": ([q, "--network", f"f={l32}", "--network", f"f={l32}"], "--network f: given twice"),
    }


CASES = ["no network at all", "a network missing", "an undeclared network", "a model for an equal-to network",
         "a model of another type", "a hidden node not in the model", "a shape the model does not have",
         "a type nnsmt is not sound for", "a query that does not parse", "a missing model", "a missing query",
         "NAME alone", "=FILE alone", "NAME= without a file", "a name given twice"]


@pytest.mark.parametrize("case", CASES)
def test_each_error_is_one_line_on_stderr_with_exit_2(capsys, files, tmp_path, case):
    argv, phrase = _err_cases(files, tmp_path)[case]
    code, out, err = run(capsys, "verify", *argv)
    assert code == 2 and out == "", (code, out)
    assert err.startswith("nnsmt: error: ") and err.count("\n") == 1 and phrase in err, err


def test_errors_through_the_console_script(files):
    r = subprocess.run([*NNSMT, "verify", files["pair_f32"], "--network", f"f={files['lin64']}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "is float64, but X is declared float32" in r.stderr


# ---- supports, --name, --version ---------------------------------------------------------------

EXACT = {
    "hidden-node-theories": ["NH", "H"],
    "multiple-input-output-theories": ["SIO", "MIO"],
    "multiple-network-theories": ["SNET", "MENET", "MINET", "MNET"],
    "multiple-node-comparison-theories": ["SNC", "MNC"],
    "arithmetic-complexity-theories": ["BND", "OUTC", "LIN", "POLY"],
    "optimised-disjunctive-reasoning": ["true"],
    "serialise-assignments": ["true"],
    "onnx-element-types": ["float64", "float32", "float16", "int64", "int32", "int16", "int8",
                           "uint64", "uint32", "uint16", "uint8", "real"],
}


def _supports(capsys, cap):
    code, out, err = run(capsys, "supports", f"--{cap}")
    assert code == 0 and err == "" and out.endswith("\n")
    return out[:-1].split("\n")


@pytest.mark.parametrize("cap", sorted(EXACT))
def test_supports_answers_exactly(capsys, cap):
    assert _supports(capsys, cap) == EXACT[cap]


def _version(s):
    return tuple(int(p) for p in s.split("."))


def test_supports_versions_are_a_min_max_pair(capsys):
    ops = _supports(capsys, "onnx-opset-versions")
    vn = _supports(capsys, "vnnlib-versions")
    assert len(ops) == 2 and all(re.fullmatch(r"\d+", v) for v in ops) and int(ops[0]) <= int(ops[1])
    assert len(vn) == 2 and all(re.fullmatch(r"\d+\.\d+", v) for v in vn) and _version(vn[0]) <= _version(vn[1])
    assert vn[0] == "1.0" and _version(vn[1]) >= (2, 0)


def test_supports_operators_are_the_frontends_and_real_onnx_ops(capsys):
    from nnsmt.frontends.onnx_ops import SUPPORTED_OPS
    lines = _supports(capsys, "onnx-operators")
    assert lines == list(SUPPORTED_OPS) and len(set(lines)) == len(lines)
    assert all(onnx.defs.has(op) for op in lines)
    assert {"Gemm", "Relu", "Add", "MatMul", "Concat", "Conv"} <= set(lines)


@pytest.mark.parametrize("opset_end", [0, 1])
def test_the_reported_opsets_both_run(capsys, tmp_path, opset_end):
    """The lowest and the highest reported opset: a Gemm/Relu model of each verifies."""
    opset = int(_supports(capsys, "onnx-opset-versions")[opset_end])
    net = lin(tmp_path / f"lin_{opset}.onnx", "float32", opset)
    q = tmp_path / "q.vnnlib"
    q.write_text(ONE.format(t="float32"))
    code, out, _ = run(capsys, "verify", q, "--network", f"f={net}")
    assert (code, out) == (0, GOLDEN_ONE_F32)


@pytest.mark.parametrize("argv", [[], ["--onnx-operators", "--vnnlib-versions"]])
def test_supports_needs_exactly_one_capability(capsys, argv):
    code, out, err = run(capsys, "supports", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1


def test_every_capability_through_the_console_script():
    for cap in [*EXACT, "onnx-opset-versions", "vnnlib-versions", "onnx-operators"]:
        r = subprocess.run([*NNSMT, "supports", f"--{cap}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() and r.stderr == "", cap


def test_name_and_version(capsys):
    code, out, _ = run(capsys, "--name")
    assert code == 0 and out == "nnsmt\n"
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"{nnsmt.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", nnsmt.__version__)


# ---- compile: the script z3 solves answers as verify does ---------------------------------------

@pytest.mark.skipif(not have("z3"), reason="z3 is not installed")
@pytest.mark.parametrize("query, net, name, verdict, z3_says", [
    ("pair_real", "lin32", "f", "sat", "sat"),
    ("margin_real", "margin32", "N", "unsat", "unsat"),
    ("margin_f32", "margin32", "N", "unsat", "unsat"),     # the widened float query is unsat too
    ("one_f32", "lin32", "f", "sat", "sat"),
    ("cancel_real_lt", "cancel32", "N", "unsat", "unsat"),
    # float32: y = 0 for every x (sat); the script is the query widened by rounding errors, in
    # which z3 finds y < 0.05 too; the same question over the reals is unsat (above)
    ("cancel_f32_lt", "cancel32", "N", "sat", "sat"),
])
def test_compiled_script_answers_as_verify(capsys, files, tmp_path, query, net, name, verdict, z3_says):
    import z3
    out_file = tmp_path / "q.smt2"
    code, out, err = run(capsys, "compile", files[query], "--network", f"{name}={files[net]}",
                         "--emit", "smt2", "-o", out_file)
    assert (code, out) == (0, "") and f"wrote {out_file}" in err
    s = z3.Solver()
    s.add(z3.parse_smt2_file(str(out_file)))
    assert str(s.check()) == z3_says
    code, out, _ = run(capsys, "verify", files[query], "--network", f"{name}={files[net]}")
    assert code == 0 and out.split("\n", 1)[0] == verdict


def test_compile_reports_the_same_errors(capsys, files):
    code, out, err = run(capsys, "compile", files["pair_f32"], "--network", f"f={files['lin64']}")
    assert code == 2 and out == "" and "is float64, but X is declared float32" in err
    code, out, err = run(capsys, "compile", files["pair_f32"])
    assert code == 2 and out == "" and "no --network for f" in err


# ---- VNN-LIB 1.0 through the standard form -------------------------------------------------------

def _old_and_new(capsys, net, prop):
    code, out, _ = run(capsys, "verify", net, prop)
    old = {0: "unsat", 10: "sat", 20: "unknown"}[code]
    assert out.split("\n", 1)[0].split(" ")[0] == old
    code, out, _ = run(capsys, "verify", prop, "--network", f"N={net}")
    assert code == 0
    new, rest = out.split("\n", 1)
    return old, new, rest


@pytest.mark.parametrize("net, prop", [("test_tiny.onnx", "test_tiny.vnnlib"), ("test_small.onnx", "test_small.vnnlib"),
                                       ("test_sat.onnx", "test_prop.vnnlib"), ("test_unsat.onnx", "test_prop.vnnlib")])
def test_vnnlib1_through_the_standard_form_vnncomp(capsys, net, prop):
    folder = need_shared("benchmarks", "vnncomp-test")
    known = {(r[0], r[1]): r[2] for r in (line.split(",") for line in
                                          (folder / "known.csv").read_text().split()[1:])}
    old, new, rest = _old_and_new(capsys, folder / net, folder / prop)
    assert old == new == known[(net, prop)]
    if new == "sat":
        _check_v1_witness(folder / prop, rest)


@pytest.mark.parametrize("prop, verdict", [("class1_margin.vnnlib", "sat"), ("corner_robust.vnnlib", "unsat")])
def test_vnnlib1_through_the_standard_form_examples(capsys, prop, verdict):
    old, new, rest = _old_and_new(capsys, EXAMPLES / "classifier.onnx", EXAMPLES / prop)
    assert old == new == verdict
    if new == "sat":
        _check_v1_witness(EXAMPLES / prop, rest)


def _check_v1_witness(prop_path, text):
    """The printed X and Y (`real`, exact decimals) satisfy the 1.0 property exactly."""
    prop = load_vnnlib(prop_path)
    headers = [line.split(" ") for line in text.splitlines() if " " in line]
    assert [(h[0], h[1]) for h in headers] == [("X", "real"), ("Y", "real")]
    from nnsmt.assignment import Decl
    decls = [Decl("X", "real", tuple(int(s) for s in headers[0][2][1:-1].split(",")), "input"),
             Decl("Y", "real", tuple(int(s) for s in headers[1][2][1:-1].split(",")), "output")]
    vals = parse_assignment(text, decls, first_line=2)
    assert len(vals["X"]) == prop.n_inputs and len(vals["Y"]) == prop.n_outputs
    assert prop.holds(prop.bind(vals["X"], vals["Y"]))
