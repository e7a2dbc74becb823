"""The pySMT bridge and `smt2:COMMAND` backends: same verdicts, exact models, honest errors."""

import io
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from nnsmt.backends import get_backend
from nnsmt.backends.smt2_command import parse_sexprs, value_of
from nnsmt.backends.smtlib import to_smtlib
from nnsmt.errors import BackendUnavailable
from nnsmt.frontends import load_onnx
from nnsmt.queries.verify import verify_script
from nnsmt.validate import validate_counterexample
from nnsmt.vnnlib import load_vnnlib

from conftest import EXAMPLES
from helpers import third_script

Z3_BIN = Path(sys.executable).parent / "z3"  # the z3-solver wheel ships the binary
SMT2_Z3 = f"smt2:{Z3_BIN} -in"

# A fixed list: pySMT's z3 and cvc5 bindings (z3-solver, cvc5 and pysmt are dependencies) and
# the z3 binary through smt2:COMMAND. One that is missing here skips, saying what is missing.
BRIDGES = ["pysmt:z3", "pysmt:cvc5", "smt2:z3 binary"]


def bridge(label):
    """The bridge backend named by `label`, or a skip naming what is missing."""
    if label.startswith("pysmt:"):
        from nnsmt.backends.pysmt_backend import installed_solvers
        solver = label.partition(":")[2]
        have = installed_solvers()
        if solver not in have:
            pytest.skip(f"pySMT finds no {solver} solver here (it has: {', '.join(have) or 'none'})")
        return get_backend(label)
    if not Z3_BIN.exists():
        pytest.skip(f"no z3 binary at {Z3_BIN} (the z3-solver wheel ships one)")
    return get_backend(SMT2_Z3)


@pytest.mark.parametrize("label", BRIDGES)
def test_exact_model(label):
    res = bridge(label).solve(third_script(), timeout=20)
    assert res.status == "sat" and res.model == {"x": Fraction(1, 3)}


@pytest.mark.parametrize("label", BRIDGES)
def test_example_unsat(label):
    g = load_onnx(EXAMPLES / "classifier.onnx")
    res = bridge(label).solve(verify_script(g, load_vnnlib(EXAMPLES / "corner_robust.vnnlib")), timeout=60)
    assert res.status == "unsat"


@pytest.mark.parametrize("label", BRIDGES)
def test_example_sat_validates(label):
    g = load_onnx(EXAMPLES / "classifier.onnx")
    p = load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    res = bridge(label).solve(verify_script(g, p), timeout=60)
    assert res.status == "sat"
    validate_counterexample(g, p, res.model)


def test_pysmt_reads_our_smtlib_back():
    """nnsmt's SMT-LIB2 output goes through pySMT's own parser."""
    from pysmt.smtlib.parser import SmtLibParser
    g = load_onnx(EXAMPLES / "classifier.onnx")
    text = to_smtlib(verify_script(g, load_vnnlib(EXAMPLES / "corner_robust.vnnlib")))
    script = SmtLibParser().get_script(io.StringIO(text))
    assert script.contains_command("check-sat")
    f = script.get_last_formula()
    names = {s.symbol_name() for s in f.get_free_variables()}
    assert {"X_0", "X_1"} <= names


@pytest.mark.parametrize("text, value", [("3", 3), ("3.0", 3), ("0.25", Fraction(1, 4)), ("(- 2.5)", Fraction(-5, 2)),
                                         ("(/ 1 3)", Fraction(1, 3)), ("(/ (- 1.0) 3.0)", Fraction(-1, 3))])
def test_solver_value_syntax(text, value):
    assert value_of(parse_sexprs(text)[0]) == value


def test_smt2_missing_binary_and_timeout(tmp_path):
    with pytest.raises(BackendUnavailable, match="not found on PATH"):
        get_backend("smt2:no-such-solver-xyz")
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    res = get_backend(f"smt2:{slow}").solve(third_script(), timeout=0.2)
    assert res.status == "unknown" and res.reason == "timeout"


def test_smt2_solver_error_is_an_error(tmp_path):
    fake = tmp_path / "fake.sh"
    fake.write_text('#!/bin/sh\ncat >/dev/null\necho \'(error "line 3: unknown logic")\'\necho sat\n')
    fake.chmod(0o755)
    res = get_backend(f"smt2:{fake}").solve(third_script(), timeout=5)
    assert res.status == "error" and "unknown logic" in res.reason


def test_unknown_pysmt_solver():
    with pytest.raises(BackendUnavailable, match="pySMT has no solver 'yices9'"):
        get_backend("pysmt:yices9")


def test_smt2_finds_the_binary_beside_python(monkeypatch):
    """An unactivated venv: z3-solver's `z3` binary is beside sys.executable, not on PATH."""
    import sys
    from pathlib import Path
    from nnsmt.backends.smt2_command import Smt2CommandBackend
    if not (Path(sys.executable).parent / "z3").exists():
        pytest.skip("z3-solver installed no z3 binary beside this Python")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert Smt2CommandBackend("z3 -in").argv[0] == str(Path(sys.executable).parent / "z3")
