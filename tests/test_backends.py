"""Backend registry, exact models, and hard deadlines in a child process."""

import time
from fractions import Fraction

import pytest

from nnsmt import backends
from nnsmt.backends.isolate import solve_isolated
from nnsmt.errors import BackendUnavailable
from nnsmt.terms import And, Cmp, Mul, Num, ScriptBuilder


def third_script():
    """3x = 1 and x > 0: the only model is the exact rational 1/3."""
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("third", And((Cmp("=", Mul((Num(3), x)), Num(1)), Cmp(">", x, Num(0)))))
    return b.build()


def test_registry_lists_installed_backends():
    av = backends.available()
    assert set(av) >= {"z3", "cvc5"}


def test_unknown_and_missing_backends_say_what_is_missing(monkeypatch):
    with pytest.raises(BackendUnavailable, match="unknown backend 'nope'"):
        backends.get_backend("nope")
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
