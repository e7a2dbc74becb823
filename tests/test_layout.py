"""Imports point inward: the core never loads a solver, onnx or onnxruntime by itself."""

import subprocess
import sys

from conftest import ROOT


def test_core_imports_no_solver_or_onnx():
    code = ("import sys, nnsmt, nnsmt.ir, nnsmt.interpret, nnsmt.encode, nnsmt.terms, nnsmt.serialize, "
            "nnsmt.validate, nnsmt.vnnlib, nnsmt.queries.verify, nnsmt.pretty, nnsmt.cli, nnsmt.commands.verify, nnsmt.commands.compile, nnsmt.commands.diff, nnsmt.backends, "
            "nnsmt.frontends, nnsmt.queries.network, nnsmt.commands.export, nnsmt.commands.import_ir\n"
            "bad = [m for m in ('z3', 'cvc5', 'onnx', 'onnxruntime', 'pysmt', 'torch', 'h5py', 'safetensors', 'keras') if m in sys.modules]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_core_sources_do_not_import_outward():
    for path in (ROOT / "nnsmt").rglob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import ", "from ")):  # module level only: lazy imports are indented
                assert not any(w in line.split() for w in ("z3", "cvc5", "onnx", "onnxruntime", "torch")), (path, line)
                assert "frontends" not in line and "backends" not in line, (path, line)
