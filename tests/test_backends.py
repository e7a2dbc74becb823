"""Backend registry, exact models, and hard deadlines in a child process."""

import time
from fractions import Fraction

import pytest

from nnsmt import backends
from nnsmt.backends.isolate import solve_isolated
from nnsmt.errors import BackendUnavailable

from helpers import third_script


def test_installed_dependencies_load():
    """z3-solver and cvc5 are dependencies of the package: both load, and say so."""
    av = backends.available()
    assert av["z3"] is None and av["cvc5"] is None, av
    assert backends.get_backend("z3").name == "z3" and backends.get_backend("cvc5").name == "cvc5"


def test_dreal_loads_or_says_what_is_missing():
    """dReal is optional: its entry is None (and it loads) or the reason it does not, naming
    what is missing; the reason is the one get_backend raises."""
    import importlib.util
    why = backends.available()["dreal"]
    if why is None:
        assert backends.get_backend("dreal").name == "dreal"
        return
    assert isinstance(why, str) and why.startswith("backend 'dreal' is not available: the Python package dreal is")
    assert "pip install dreal" in why
    if importlib.util.find_spec("dreal") is None:
        assert "the Python package dreal is not installed" in why
    else:  # installed: then the reason names the library or the import error
        assert "is installed" in why
    with pytest.raises(BackendUnavailable) as e:
        backends.get_backend("dreal")
    assert str(e.value) == why


def test_unknown_and_missing_backends_say_what_is_missing(monkeypatch):
    with pytest.raises(BackendUnavailable, match="unknown backend 'nope'; known: ") as e:
        backends.get_backend("nope")
    assert all(name in str(e.value) for name in list(backends.REGISTRY) + ["pysmt:", "smt2:"]), str(e.value)
    assert "nope" not in backends.available()
    monkeypatch.setitem(backends.REGISTRY, "ghost", ("no_such_module_xyz", "X", "pip install ghost-solver"))
    with pytest.raises(BackendUnavailable, match="No module named 'no_such_module_xyz'.*pip install ghost-solver"):
        backends.get_backend("ghost")
    assert "pip install ghost-solver" in backends.available()["ghost"]


def test_models_are_exact_rationals(backend):
    res = backend.solve(third_script(), timeout=10)
    assert res.status == "sat" and res.model == {"x": Fraction(1, 3)}


def test_isolated_matches_in_process(backend):
    res = solve_isolated(backend.name, third_script(), timeout=10)
    assert res.status == "sat" and res.model == {"x": Fraction(1, 3)}


def test_isolated_kills_a_stuck_solver(monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, "sleepy", ("fake_backends", "Sleepy", ""))
    t0 = time.perf_counter()
    res = solve_isolated("sleepy", third_script(), timeout=0.2)
    assert res.status == "unknown" and res.reason == "timeout"
    assert time.perf_counter() - t0 < 10  # killed, not slept through 60 s


def test_isolated_reports_a_crash(monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, "crashy", ("fake_backends", "Crashy", ""))
    res = solve_isolated("crashy", third_script(), timeout=5)
    assert res.status == "error" and "exit code 139" in res.reason
