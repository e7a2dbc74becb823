"""Backend registry: each solver is imported lazily, so a missing one costs nothing until asked."""

from __future__ import annotations

import importlib

from nnsmt.errors import BackendUnavailable

# name -> (module, class, what to install)
REGISTRY = {
    "z3": ("nnsmt.backends.z3_backend", "Z3Backend", "pip install z3-solver"),
    "cvc5": ("nnsmt.backends.cvc5_backend", "Cvc5Backend", "pip install cvc5"),
    "dreal": ("nnsmt.backends.dreal_backend", "DrealBackend",
              "dReal is optional: pip install dreal, plus the shared libraries it names"),
}

# kind -> (module, class, what to install): `kind:ARG` names, e.g. pysmt:z3, smt2:z3 -in, vnnlib:CMD
PARAMETRIC = {
    "pysmt": ("nnsmt.backends.pysmt_backend", "PysmtBackend", "pip install pysmt"),
    "smt2": ("nnsmt.backends.smt2_command", "Smt2CommandBackend", "a solver binary on PATH"),
    "vnnlib": ("nnsmt.backends.vnnlib_command", "VnnlibCommandBackend", "a VNN-LIB 2 verifier on PATH"),
    "milp": ("nnsmt.backends.milp_backend", "MilpBackend", "pip install highspy pyscipopt"),
}


def get_backend(name: str):
    """An instance of the named backend, or BackendUnavailable saying what is missing.

    Plain names come from REGISTRY; `pysmt:SOLVER` uses any solver pySMT has installed and
    `smt2:COMMAND` runs a solver binary on the SMT-LIB2 text (e.g. `smt2:z3 -in`);
    `vnnlib:COMMAND` runs a VNN-LIB 2 verifier's `verify` command (e.g. `vnnlib:my-verifier`);
    `milp:highs` / `milp:scip` a MILP solver whose answers are checked exactly (milp_backend).
    """
    kind, _, arg = name.partition(":")
    if arg and kind in PARAMETRIC:
        module, cls, hint = PARAMETRIC[kind]
        try:
            return getattr(importlib.import_module(module), cls)(arg)
        except ImportError as e:
            raise BackendUnavailable(f"backend {name!r} is not available: {e} ({hint})") from None
    if name not in REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}, "
                                 f"{', '.join(k + ':…' for k in PARAMETRIC)}")
    module, cls, hint = REGISTRY[name]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as e:
        raise BackendUnavailable(f"backend {name!r} is not available: {e} ({hint})") from None


def known(name: str) -> bool:
    """Whether `name` names a backend nnsmt knows (installed or not)."""
    kind, _, arg = name.partition(":")
    return name in REGISTRY or (bool(arg.strip()) and kind in PARAMETRIC)


def capabilities(name: str):
    """The named backend's `nnsmt.result.Capabilities` (loading it: BackendUnavailable if missing)."""
    return get_backend(name).capabilities


# parametric names worth listing (their argument is a fixed choice, not a command)
LISTED = ("milp:highs", "milp:scip")


def available() -> dict[str, str | None]:
    """Every known backend (REGISTRY's, and the MILP ones) -> None if it loads, else the
    reason it does not."""
    out = {}
    for name in (*REGISTRY, *LISTED):
        try:
            get_backend(name)
            out[name] = None
        except BackendUnavailable as e:
            out[name] = str(e)
    return out
