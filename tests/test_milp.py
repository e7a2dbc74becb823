"""The MILP backends (milp:highs, milp:scip): exact answers steered by a floating-point MILP.

A MILP solution is sat only after the script holds on it exactly; an infeasible MILP is unsat
only after z3 confirms it; anything else is unknown, never a wrong definite answer."""

import json
from fractions import Fraction

import numpy as np
import pytest

from nnsmt.backends import get_backend
from nnsmt.encode import encode_graph
from nnsmt.errors import BackendUnavailable
from nnsmt.interpret import evaluate_exact
from nnsmt.result import UNCONFIRMED_INFEASIBLE, Result, SolveOptions
from nnsmt.terms import Add, And, Cmp, Ite, Mul, Num, Or, ScriptBuilder, Var

from nnsmt.backends.milp_backend import exact_env
from nnsmt.vnnlib import term_eval

from conftest import EXAMPLES
from helpers import third_script
from strategies import mlp_graph

MODULES = {"highs": "highspy", "scip": "pyscipopt"}


@pytest.fixture(params=["highs", "scip"])
def milp(request):
    pytest.importorskip(MODULES[request.param], reason=f"milp:{request.param} needs "
                        f"pip install {MODULES[request.param]}")
    return get_backend(f"milp:{request.param}")


def random_mlp(rng, sizes):
    layers = [(rng.uniform(-2, 2, (n, m)).astype(np.float32), rng.uniform(-1, 1, n).astype(np.float32))
              for m, n in zip(sizes, sizes[1:])]
    return mlp_graph(layers)


def point_script(g, x):
    """The network with its inputs asserted equal to the point x (each input boxed by it)."""
    b = ScriptBuilder()
    names = encode_graph(g, b)
    b.assert_("at", And(tuple(Cmp("=", Var(n), Num(Fraction(v))) for n, v in zip(names["x"], x))))
    return b.build(), names


def test_forced_outputs_equal_exact_evaluation(milp):
    """Inputs pinned to a point: the MILP's own output columns (its big-M ReLUs) match the
    exact evaluation to float precision, and the answer's exact outputs equal it exactly."""
    from nnsmt.backends.milp_backend import RUNNERS, Lowering
    rng = np.random.default_rng(0)
    for trial in range(12):
        sizes = [int(rng.integers(1, 4))] + [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 3)))] \
            + [int(rng.integers(1, 4))]
        g = random_mlp(rng, sizes)
        x = rng.uniform(-3, 3, sizes[0]).astype(np.float32).astype(np.float64)
        script, names = point_script(g, x)
        res = milp.solve(script, timeout=30)
        assert res.status == "sat", (trial, res)
        want = evaluate_exact(g, {"x": np.array([Fraction(v) for v in x], dtype=object)})[g.outputs[0]]
        got = exact_env(script, res.model)  # the definitions, evaluated exactly on the model
        assert [got[n] for n in names[g.outputs[0]]] == list(want), trial
        m = Lowering(script)
        status, sol, _ = RUNNERS[milp.solver](m, 30, False)
        assert status == "feasible"
        for n, v in zip(names[g.outputs[0]], want):
            assert abs(sol[m.col[n]] - float(v)) <= 1e-6 * (1 + abs(float(v))), (trial, n)


def test_exact_rational_model(milp):
    """3x = 1, x > 0: the float MILP gives 0.333...; the answer is the exact 1/3."""
    res = milp.solve(third_script(), timeout=10)
    assert res.status == "sat" and res.model == {"x": Fraction(1, 3)}, res


@pytest.mark.parametrize("prop, want", [("class1_margin", "sat"), ("corner_robust", "unsat")])
def test_agrees_with_z3_on_examples(milp, prop, want):
    from nnsmt.api import verify
    net, p = EXAMPLES / "classifier.onnx", EXAMPLES / f"{prop}.vnnlib"
    z = verify(net, p, engine="plain", backend="z3", timeout=60)
    o = verify(net, p, engine="plain", backend=milp.name, timeout=60)
    assert z.status == want and o.status == want, (z, o)
    assert o.backend == milp.name
    if want == "unsat":
        assert "confirmed by z3" in o.reason


def infeasible_script():
    """x in [0, 1], x >= 2 or x <= -1: unsat."""
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("box", And((Cmp(">=", x, Num(0)), Cmp("<=", x, Num(1)))))
    b.assert_("far", Or((Cmp(">=", x, Num(2)), Cmp("<=", x, Num(-1)))))
    return b.build()


def test_unsat_needs_confirmation(milp, monkeypatch):
    res = milp.solve(infeasible_script(), timeout=10)
    assert res.status == "unsat" and "confirmed by z3" in res.reason and "confirm_s" in res.stats
    assert "milp_s" in res.stats
    res = milp.solve(infeasible_script(), timeout=10, options=SolveOptions(want_core=True))
    assert res.status == "unsat" and set(res.core) <= {"box", "far"} and res.core  # z3's core
    # the confirmation times out: never unsat
    monkeypatch.setattr(type(milp), "_z3", lambda self, s, t, o=None: Result("unknown", "z3", "timeout"))
    res = milp.solve(infeasible_script(), timeout=10)
    assert res.status == "unknown" and res.reason.startswith(UNCONFIRMED_INFEASIBLE), res


def test_wrong_infeasible_milp_gives_z3_sat(milp, monkeypatch):
    """A MILP wrongly infeasible (simulated): the exact confirmation finds the model."""
    from nnsmt.backends import milp_backend
    monkeypatch.setitem(milp_backend.RUNNERS, milp.solver, lambda m, t, c: ("infeasible", None, []))
    res = milp.solve(third_script(), timeout=10)
    assert res.status == "sat" and res.model == {"x": Fraction(1, 3)}, res


def test_below_tolerance_is_never_a_wrong_sat(milp):
    """0 < x <= 1e-12: below the MILP's tolerance (x = 0 passes in float, relaxed x >= 0);
    the exact check rejects that, and the answer is an exact model, never x = 0."""
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("tiny", And((Cmp(">", x, Num(0)), Cmp("<=", x, Num(Fraction(1, 10 ** 12))))))
    res = milp.solve(b.build(), timeout=10)
    assert res.status == "sat", res
    assert 0 < res.model["x"] <= Fraction(1, 10 ** 12)


def test_float_feasible_but_unsat_is_unsat(milp):
    """x - y >= 1e-10 and x - y <= 0: unsat, but within the MILP's tolerance (1e-9) x = y is
    feasible. The float solution fails the exact check, and z3 settles it: unsat, not sat."""
    from nnsmt.backends.milp_backend import RUNNERS, Lowering
    b = ScriptBuilder()
    x, y = b.declare("x"), b.declare("y")
    b.assert_("box", And((Cmp(">=", x, Num(0)), Cmp("<=", x, Num(1)), Cmp(">=", y, Num(0)), Cmp("<=", y, Num(1)))))
    d = Add((x, Mul((Num(-1), y))))
    b.assert_("gap", And((Cmp(">=", d, Num(Fraction(1, 10 ** 10))), Cmp("<=", d, Num(0)))))
    s = b.build()
    assert RUNNERS[milp.solver](Lowering(s), 10, False)[0] == "feasible"  # the float MILP is wrong
    res = milp.solve(s, timeout=10)
    assert res.status == "unsat" and "confirmed by z3" in res.reason, res


def test_exact_check_failure_is_unknown(milp, monkeypatch):
    """A MILP solution that fails the exact check, with no repair: unknown, never sat."""
    from nnsmt.backends import milp_backend
    monkeypatch.setitem(milp_backend.RUNNERS, milp.solver,
                        lambda m, t, c: ("feasible", np.zeros(len(m.lb)), []))
    monkeypatch.setattr(type(milp), "_z3", lambda self, s, t, o=None: Result("unknown", "z3", "timeout"))
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("pos", And((Cmp(">", x, Num(0)), Cmp("<=", x, Num(1)))))
    res = milp.solve(b.build(), timeout=10)
    assert res.status == "unknown" and res.reason.startswith("MILP solution fails the exact check"), res


def test_strict_violation_at_boundary_is_not_sat(milp, monkeypatch):
    """The relaxed MILP answers x = 0 for x > 0 and x <= 0 is infeasible in reals: every
    path must end in unsat (confirmed) or unknown."""
    b = ScriptBuilder()
    x = b.declare("x")
    b.assert_("both", And((Cmp(">", x, Num(0)), Cmp("<=", x, Num(0)))))
    res = milp.solve(b.build(), timeout=10)
    assert res.status == "unsat" and "confirmed by z3" in res.reason, res


def test_harvest_collects_models(milp):
    """x, y in [0, 4]; harvest a disjunction of which at most 3 disjuncts hold together
    (x <= 3 and x >= 7/2 exclude each other): the best model meets 3, and every harvested
    model is a candidate of exact rationals for the declared variables."""
    from nnsmt.backends.milp_backend import exact_failure
    b = ScriptBuilder()
    x, y = b.declare("x"), b.declare("y")
    b.assert_("box", And((Cmp(">=", x, Num(0)), Cmp("<=", x, Num(4)), Cmp(">=", y, Num(0)),
                          Cmp("<=", y, Num(4)))))
    disj = (Cmp(">=", x, Num(1)), Cmp(">=", y, Num(1)), Cmp("<=", x, Num(3)), Cmp(">=", x, Num(Fraction(7, 2))))
    b.assert_("goals", Or(disj))
    s = b.build()
    res = milp.solve(s, timeout=20, options=SolveOptions(harvest="goals"))
    assert res.status == "sat" and exact_failure(s, res.model) is None, res
    assert len(res.models) >= 1
    for m in res.models:
        assert set(m) == {"x", "y"} and all(isinstance(v, Fraction) for v in m.values())
    assert sum(term_eval(a, res.model) is True for a in disj) == 3


def test_harvest_several_models(milp):
    """A knapsack over 24 disjuncts x_i >= 1/2 (dyadic: float solutions are exact): the
    solver meets several incumbents on its way to the most disjuncts, each one replays."""
    from nnsmt.backends.milp_backend import exact_failure
    rng = np.random.default_rng(0)  # an instance where both solvers meet 2 incumbents
    n = 24
    b = ScriptBuilder()
    xs = [b.declare(f"x{i}") for i in range(n)]
    b.assert_("box", And(tuple(a for v in xs for a in (Cmp(">=", v, Num(0)), Cmp("<=", v, Num(1))))))
    w = rng.integers(1, 20, n)
    b.assert_("budget", Cmp("<=", Add(tuple(Mul((Num(int(c)), v)) for c, v in zip(w, xs))), Num(int(w.sum() // 3))))
    b.assert_("goals", Or(tuple(Cmp(">=", v, Num(Fraction(1, 2))) for v in xs)))
    s = b.build()
    res = milp.solve(s, timeout=30, options=SolveOptions(harvest="goals"))
    assert res.status == "sat" and exact_failure(s, res.model) is None, res
    held = [sum(v >= Fraction(1, 2) for v in m.values()) for m in res.models]
    assert len(res.models) >= 2 and len(set(held)) >= 2, held
    assert all(exact_failure(s, m) is None for m in res.models)
    assert sum(v >= Fraction(1, 2) for v in res.model.values()) == max(held)


def test_unknown_solver_and_capabilities():
    with pytest.raises(BackendUnavailable, match="unknown MILP solver 'nosuch'"):
        get_backend("milp:nosuch")
    pytest.importorskip("highspy", reason="milp:highs needs pip install highspy")
    be = get_backend("milp:highs")
    assert "MILP backends take piecewise-linear scripts only" in be.supports(frozenset({"nonlinear"}))
    assert be.supports(frozenset()) is None and "harvest" in be.capabilities.options


def test_unbounded_condition_is_steered_and_still_exact(milp):
    """An ite over a variable the script leaves unbounded: the MILP searches a steering box;
    the answers stay exact (sat checked, unsat confirmed)."""
    b = ScriptBuilder()
    x = b.declare("x")
    r = b.define("r", Ite(Cmp(">=", x, Num(0)), x, Num(0)))
    b.assert_("big", Cmp(">=", r, Num(5)))
    res = milp.solve(b.build(), timeout=10)
    assert res.status == "sat" and res.model["x"] >= 5
    b = ScriptBuilder()
    x = b.declare("x")
    r = b.define("r", Ite(Cmp(">=", x, Num(0)), x, Num(0)))
    b.assert_("neg", Cmp("<", r, Num(0)))
    res = milp.solve(b.build(), timeout=10)
    assert res.status == "unsat" and "confirmed by z3" in res.reason


# -- the command line --

def test_cli_exit_codes_match_z3(capsys):
    pytest.importorskip("highspy", reason="milp:highs needs pip install highspy")
    from nnsmt.cli import main
    for prop, want in (("class1_margin", 10), ("corner_robust", 0)):
        args = ["verify", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / f"{prop}.vnnlib"),
                "--engine", "plain", "--json"]
        assert main(args + ["--backend", "z3"]) == want
        capsys.readouterr()
        assert main(args + ["--backend", "milp:highs"]) == want
        d = json.loads(capsys.readouterr().out)
        assert d["backend"] == "milp:highs" and d["status"] == ("sat" if want == 10 else "unsat")


def test_cli_unknown_milp_solver_is_one_line(capsys):
    from nnsmt.cli import main
    code = main(["verify", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / "corner_robust.vnnlib"),
                 "--backend", "milp:nosuch"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "milp:nosuch" in err


def test_cli_train_on_milp(capsys, tmp_path):
    """The linear (homog) training encoding on the MILP backend: a fit checked on every point."""
    pytest.importorskip("highspy", reason="milp:highs needs pip install highspy")
    from nnsmt.cli import main
    code = main(["train", str(EXAMPLES / "sphere_3_8_2.onnx"), "--data", str(EXAMPLES / "sphere50.csv"),
                 "--backend", "milp:highs", "--timeout", "60", "--json", "-o", str(tmp_path / "t.onnx")])
    d = json.loads(capsys.readouterr().out)
    assert code == 10 and d["status"] == "sat" and d["backend"] == "milp:highs", d


def test_cli_diff_with_milp(capsys):
    pytest.importorskip("highspy", reason="milp:highs needs pip install highspy")
    from nnsmt.cli import main
    for prop, want, status in (("class1_margin", 10, "sat"), ("corner_robust", 0, "unsat")):
        code = main(["diff", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / f"{prop}.vnnlib"),
                     "--backends", "z3,milp:highs", "--engine", "plain", "--timeout", "60", "--json"])
        d = json.loads(capsys.readouterr().out)
        assert code == want and not d["disagreement"], d
        assert {r["backend"]: r["status"] for r in d["rows"]} == {"z3": status, "milp:highs": status}, d
        assert all(r["time_s"] > 0 for r in d["rows"])  # both solvers ran
