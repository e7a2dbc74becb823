"""Imports point inward: the core never loads a solver, onnx or onnxruntime by itself."""

import ast
import subprocess
import sys

from conftest import ROOT

HEAVY = ("z3", "cvc5", "pysmt", "dreal", "onnx", "onnxruntime", "torch", "keras", "h5py", "safetensors",
         "ray", "matplotlib")


def test_core_imports_no_solver_or_onnx():
    code = ("import sys, nnsmt, nnsmt.ir, nnsmt.interpret, nnsmt.encode, nnsmt.terms, nnsmt.serialize, "
            "nnsmt.validate, nnsmt.vnnlib, nnsmt.queries.verify, nnsmt.pretty, nnsmt.cli, nnsmt.commands.verify, nnsmt.commands.compile, nnsmt.commands.diff, nnsmt.backends, "
            "nnsmt.frontends, nnsmt.queries.network, nnsmt.commands.export, nnsmt.commands.import_ir, "
            "nnsmt.api, nnsmt.engine\n"
            f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def import_time_imports(tree):
    """(top-level module, line) of the imports that run when the module is imported: every
    statement but those inside a function (class bodies and top-level if/try blocks run)."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], node.lineno))
        todo.extend(ast.iter_child_nodes(node))
    return out


def test_no_solver_or_model_library_is_imported_at_import_time():
    """Nothing under nnsmt/ imports a solver, model or plotting library when it is imported:
    those imports are inside the functions that need them. (Which layer may import which is
    tests/test_layering.py.)"""
    bad = []
    paths = sorted((ROOT / "nnsmt").rglob("*.py"))
    assert len(paths) > 10
    for path in paths:
        for top, line in import_time_imports(ast.parse(path.read_text())):
            if top in HEAVY:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {top}")
    assert not bad, "\n".join(bad)


def test_import_time_checker_sees_class_bodies_and_skips_functions():
    src = "import z3\nclass A:\n    import onnx\ntry:\n    import torch\nexcept ImportError:\n    pass\n" \
          "def f():\n    import cvc5\n"
    assert sorted(import_time_imports(ast.parse(src))) == [("onnx", 3), ("torch", 5), ("z3", 1)]
