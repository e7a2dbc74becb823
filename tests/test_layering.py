"""Layering, read from the source: every import of every module (function-level ones included,
relative ones resolved) must point inward.

    core        nnsmt/*.py but __init__, cli and api: no queries, commands, engine, backends,
                frontends, and no third-party solver / model / plotting library
    queries     no commands, engine, backends, frontends, and none of those libraries
    backends    no queries, commands, engine, frontends
    frontends   no queries, commands, engine, backends
    engine      no commands
    commands    no other command module (nnsmt.commands.common and .options are shared)

Every violation of a rule is listed ("module: imports X (line N)") before the rule's test fails.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

THIRD_PARTY = ("onnx", "onnxruntime", "z3", "cvc5", "pysmt", "dreal", "torch", "keras", "h5py",
               "safetensors", "ray", "matplotlib")
SHELL = ("nnsmt", "nnsmt.cli", "nnsmt.api")  # the outer shell: may import anything


@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name
    line: int


@dataclass(frozen=True)
class Module:
    name: str
    is_package: bool
    source: str


# ---- the checker ----

def package_roots() -> dict[str, Path]:
    """Package name -> source folder: nnsmt/ and pyproject's package-dir mappings (backends/ is
    installed as nnsmt.backends, frontends/ as nnsmt.frontends)."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = {"nnsmt": ROOT / "nnsmt", "nnsmt.backends": ROOT / "backends",
             "nnsmt.frontends": ROOT / "frontends"}
    for pkg, folder in conf.get("tool", {}).get("setuptools", {}).get("package-dir", {}).items():
        if pkg.startswith("nnsmt"):
            roots[pkg] = ROOT / folder
    return roots


def discover() -> dict[str, Module]:
    """Every module of the package, by dotted name."""
    roots = package_roots()
    out: dict[str, Module] = {}
    for pkg, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [pkg] + list(path.relative_to(folder).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join(parts)
            # a subfolder whose package is mapped to another folder is not that package
            if any(other != pkg and under(name, other) and not under(pkg, other) for other in roots):
                continue
            out[name] = Module(name, is_package, path.read_text())
    return out


def resolve(module: str, is_package: bool, level: int, base: str | None) -> str:
    """The absolute name of `from <level dots><base> import ...` written in `module`."""
    if level == 0:
        return base or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package) - 1:
        raise ValueError(f"{module}: relative import beyond the top-level package")
    anchor = package[:len(package) - (level - 1)]
    return ".".join(anchor + ([base] if base else []))


def imports_of(mod: Module, known: set[str]) -> list[Import]:
    """Every import in the module's source, at any depth: `import a.b`, `from x import y` (as
    x.y when that is a module, else x), and importlib.import_module / __import__ of a literal."""
    out = []
    for node in ast.walk(ast.parse(mod.source)):
        if isinstance(node, ast.Import):
            out += [Import(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(mod.name, mod.is_package, node.level, node.module)
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append(Import(full if full in known else base, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append(Import(node.args[0].value, node.lineno))
    return sorted(set(out), key=lambda i: (i.line, i.target))


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class Rule:
    """Modules for which `applies(module)` holds may import nothing under `internal` nor a
    `third_party` top level; `extra(name, target)` is a further test (True: a violation)."""

    applies: Callable[[Module], bool]
    internal: tuple[str, ...] = ()
    third_party: tuple[str, ...] = ()
    extra: Callable[[str, str], bool] | None = None

    def broken_by(self, module: str, target: str) -> bool:
        return (any(under(target, p) for p in self.internal)
                or target.split(".")[0] in self.third_party
                or (self.extra is not None and self.extra(module, target)))


def is_core(m: Module) -> bool:
    """nnsmt/*.py: a plain module directly in the package, not the shell."""
    return m.name.count(".") == 1 and under(m.name, "nnsmt") and not m.is_package \
        and m.name not in SHELL


def in_package(prefix: str) -> Callable[[Module], bool]:
    return lambda m: under(m.name, prefix)


def other_command(module: str, target: str) -> bool:
    return under(target, "nnsmt.commands") and target != module \
        and target not in ("nnsmt.commands", "nnsmt.commands.common", "nnsmt.commands.options")


RULES = {
    "core": Rule(is_core, ("nnsmt.backends", "nnsmt.frontends", "nnsmt.queries", "nnsmt.commands",
                           "nnsmt.engine"), THIRD_PARTY),
    "queries": Rule(in_package("nnsmt.queries"),
                    ("nnsmt.commands", "nnsmt.engine", "nnsmt.backends", "nnsmt.frontends"), THIRD_PARTY),
    "backends": Rule(in_package("nnsmt.backends"),
                     ("nnsmt.queries", "nnsmt.commands", "nnsmt.engine", "nnsmt.frontends")),
    "frontends": Rule(in_package("nnsmt.frontends"),
                      ("nnsmt.queries", "nnsmt.commands", "nnsmt.engine", "nnsmt.backends")),
    "engine": Rule(in_package("nnsmt.engine"), ("nnsmt.commands",)),
    "commands": Rule(in_package("nnsmt.commands"), extra=other_command),
}


def violations(rule: Rule, modules: dict[str, Module]) -> list[str]:
    """"module: imports X (line N)" for every import of every module the rule covers."""
    known = set(modules)
    return [f"{name}: imports {i.target} (line {i.line})"
            for name, mod in sorted(modules.items()) if rule.applies(mod)
            for i in imports_of(mod, known) if rule.broken_by(name, i.target)]


# ---- the rules, on the real source ----

MODULES = discover()


def test_the_package_is_found():
    """The checker reads the real tree: core, queries, commands, backends and frontends modules."""
    assert "nnsmt.ir" in MODULES and "nnsmt.cli" in MODULES
    for rule in ("core", "queries", "backends", "frontends", "commands"):
        assert any(RULES[rule].applies(m) for m in MODULES.values()), f"no module for rule {rule}"
    assert "nnsmt.backends.z3_backend" in MODULES and "nnsmt.frontends.onnx_frontend" in MODULES


@pytest.mark.parametrize("rule", list(RULES))
def test_layer(rule):
    if not any(RULES[rule].applies(m) for m in MODULES.values()):
        pytest.skip(f"no nnsmt.{rule} modules in the tree yet (nothing to check)")
    bad = violations(RULES[rule], MODULES)
    assert not bad, f"{len(bad)} import(s) break the {rule} rule:\n" + "\n".join(bad)


# ---- the checker itself, on synthetic sources ----

KNOWN = {"nnsmt", "nnsmt.errors", "nnsmt.ir", "nnsmt.queries", "nnsmt.queries.verify",
         "nnsmt.queries.fake", "nnsmt.backends", "nnsmt.backends.isolate", "nnsmt.commands",
         "nnsmt.commands.common", "nnsmt.commands.verify", "nnsmt.commands.train"}

FAKE_QUERY = """\
import os
from ..errors import InputError
from . import verify
import numpy as np


def solve():
    from .. import backends
    from ..backends.isolate import solve_isolated
    import z3.z3util
    return importlib.import_module("onnxruntime")


class Later:
    def m(self):
        from nnsmt.frontends import load_onnx
"""


def fake(name, source, is_package=False):
    return {name: Module(name, is_package, source)} | {
        k: Module(k, False, "") for k in KNOWN if k != name}


def test_checker_resolves_relative_and_nested_imports():
    mods = fake("nnsmt.queries.fake", FAKE_QUERY)
    got = [(i.target, i.line) for i in imports_of(mods["nnsmt.queries.fake"], set(mods))]
    assert got == [("os", 1), ("nnsmt.errors", 2), ("nnsmt.queries.verify", 3), ("numpy", 4),
                   ("nnsmt.backends", 8), ("nnsmt.backends.isolate", 9), ("z3.z3util", 10),
                   ("onnxruntime", 11), ("nnsmt.frontends", 16)]
    # in a package's __init__, one dot is the package itself
    init = Module("nnsmt.queries", True, "from . import verify\nfrom .. import ir\nfrom .x import y\n")
    assert [i.target for i in imports_of(init, KNOWN)] == ["nnsmt.queries.verify", "nnsmt.ir",
                                                            "nnsmt.queries.x"]
    with pytest.raises(ValueError, match="beyond the top-level package"):
        imports_of(Module("nnsmt.ir", False, "from ... import x\n"), KNOWN)


def test_checker_reports_every_violation_of_a_rule():
    assert violations(RULES["queries"], fake("nnsmt.queries.fake", FAKE_QUERY)) == [
        "nnsmt.queries.fake: imports nnsmt.backends (line 8)",
        "nnsmt.queries.fake: imports nnsmt.backends.isolate (line 9)",
        "nnsmt.queries.fake: imports z3.z3util (line 10)",
        "nnsmt.queries.fake: imports onnxruntime (line 11)",
        "nnsmt.queries.fake: imports nnsmt.frontends (line 16)"]
    # the same source is fine for the backends rule but for the import of a frontend
    assert violations(RULES["backends"], fake("nnsmt.backends.fake", FAKE_QUERY.replace(
        "from . import verify\n", "\n"))) == ["nnsmt.backends.fake: imports nnsmt.frontends (line 16)"]


def test_checker_commands_and_core_rules():
    src = ("from . import common\nfrom .common import x\nfrom . import train\nfrom nnsmt.commands.verify import y\n"
           "from .options import z\n")
    assert violations(RULES["commands"], fake("nnsmt.commands.verify", src)) == [
        "nnsmt.commands.verify: imports nnsmt.commands.train (line 3)"]
    core = "import numpy\nfrom .ir import Graph\n\ndef f():\n    import matplotlib.pyplot as plt\n"
    assert violations(RULES["core"], fake("nnsmt.plots", core)) == [
        "nnsmt.plots: imports matplotlib.pyplot (line 5)"]
    assert violations(RULES["core"], fake("nnsmt.cli", core)) == []  # the shell may
    assert [is_core(Module(n, p, "")) for n, p in [("nnsmt.ir", False), ("nnsmt", True), ("nnsmt.api", False),
                                                   ("nnsmt.engine", True), ("nnsmt.queries.verify", False)]] \
        == [True, False, False, False, False]
