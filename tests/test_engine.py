"""The driver's settle policy, the runs it drives, and the auto engine's choices."""

import json
from dataclasses import dataclass, replace
from fractions import Fraction as F

import pytest

from nnsmt.backends.executors import InlineExecutor, LocalExecutor
from nnsmt.bounds import box_interval, propagate_bounds
from nnsmt.cli import main
from nnsmt.engine.driver import SingleRun, drive, settle, solve
from nnsmt.engine.verify import LOW_DIM, VerifyOptions, choose, verify
from nnsmt.errors import UnsupportedError, ValidationError
from nnsmt.frontends import load_network, ort_evaluator
from nnsmt.interpret import evaluate_enclosure
from nnsmt.result import Result, SolveOptions
from nnsmt.terms import Cmp, Num, ScriptBuilder, Var
from nnsmt.vnnlib import parse_vnnlib

from conftest import EXAMPLES, ROOT

FIXTURES = ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class Probe:
    """x >= lo: certify accepts models with x >= accept; refine raises lo to the rejected x + 1."""

    lo: int
    accept: int
    relaxed: bool = False
    kind: str = "probe"
    options: SolveOptions = SolveOptions()
    refinable: bool = False

    def compile(self):
        b = ScriptBuilder()
        b.declare("x")
        b.assert_("lo", Cmp(">=", Var("x"), Num(F(self.lo))))
        return b.build()

    def certify(self, model):
        if model["x"] < self.accept:
            raise ValidationError(f"x = {model['x']} < {self.accept}")
        return model["x"]

    def refine(self, model, error):
        return replace(self, lo=int(model["x"]) + 1) if self.refinable else None


def sat(x, status="sat"):
    return Result(status, "fake", "δ-sat with δ = 0.001" if status == "delta-sat" else "", {"x": F(x)})


def test_settle_policy():
    q = Probe(0, 5)
    assert settle(q, sat(7)).status == "sat" and settle(q, sat(7)).witness == 7
    assert settle(q, sat(3)).status == "error"  # an exact query's bad model is a solver failure
    assert settle(replace(q, relaxed=True), sat(3)).status == "unknown"
    assert settle(q, sat(3, "delta-sat")).status == "unknown"
    o = settle(q, sat(6, "delta-sat"))
    assert o.status == "sat" and "δ-sat" in o.notes[0]
    nxt = settle(replace(q, refinable=True), sat(3))
    assert isinstance(nxt, Probe) and nxt.lo == 4
    for st in ("unsat", "unknown", "error"):
        assert settle(q, Result(st, "fake", "why")).status == st


def test_refinement_rounds_reach_a_witness():
    """z3 answers x >= lo with some x; each rejected x raises lo, until x >= 5 is certified."""
    o = solve(Probe(0, 5, refinable=True), "z3")
    assert o.status == "sat" and o.witness >= 5 and 1 <= o.rounds <= 6


def test_unsupported_backend_is_refused():
    b = ScriptBuilder()
    b.declare("x")
    from nnsmt.terms import Exp
    b.assert_("e", Cmp(">=", Exp(Var("x")), Num(F(2))))
    from nnsmt.query import ScriptQuery
    with pytest.raises(UnsupportedError, match="exp"):
        solve(ScriptQuery(b.build(), lambda m: m), "z3")


@pytest.mark.parametrize("executor", [InlineExecutor, lambda: LocalExecutor(2)])
def test_drive_many_runs(executor):
    runs = [SingleRun(Probe(k, k), "z3", 30) for k in range(4)]
    got = {id(r): o for r, o in drive(runs, executor())}
    assert all(got[id(r)].status == "sat" and got[id(r)].witness >= k for k, r in enumerate(runs))


# --- the auto engine ----------------------------------------------------------------------------

def box_prop(n_in, n_out, tail):
    decl = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in))
    decl += "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_out))
    box = "".join(f"(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n" for i in range(n_in))
    return parse_vnnlib(decl + box + tail, "p.vnnlib")


def test_auto_choices():
    g = load_network(EXAMPLES / "classifier.onnx")
    p = box_prop(2, 3, "(assert (>= Y_0 100))\n")
    assert choose(g, p, VerifyOptions())[:2] == ("split", 4096)
    assert choose(g, p, VerifyOptions(split=8))[:2] == ("split", 8)
    assert choose(g, p, VerifyOptions(engine="plain"))[0] == "plain"
    sig = load_network(FIXTURES / "sig.onnx")
    assert choose(sig, box_prop(3, 2, "(assert (>= Y_0 2))\n"), VerifyOptions())[0] == "plain"
    assert LOW_DIM < 64  # the digits networks (64 inputs) get bounds and one bounded query


def test_auto_on_sigmoid_network_decides_both_ways():
    """sig.onnx ends in a sigmoid: the auto engine uses the sound pwl relaxation on z3 (which has
    no exp). Above the interval upper bound of Y_0 over the box, unsat is derivable; a point's
    own output (its certified enclosure) is reachable, so a threshold just below it is sat."""
    g = load_network(FIXTURES / "sig.onnx")
    hi = float(propagate_bounds(g, box_interval([F(-1)] * 3, [F(1)] * 3), "interval")[g.outputs[0]].hi[0])
    o = verify(g, box_prop(3, 2, f"(assert (>= Y_0 {hi + 1e-3!r}))\n"), VerifyOptions(timeout=60))
    assert o.status == "unsat" and o.engine == "plain"
    lo, _ = evaluate_enclosure(g, {g.inputs[0].name: [F(1, 2), F(-1, 4), F(0)]})[g.outputs[0]]
    t = float(lo[1]) - 1e-6
    o = verify(g, box_prop(3, 2, f"(assert (>= Y_1 {t!r}))\n"), VerifyOptions(timeout=60),
               ort_evaluator(FIXTURES / "sig.onnx"))
    assert o.status == "sat" and any("relaxation" in n for n in o.notes)
    assert float(o.witness.y[1]) >= t - 1e-9 and o.witness.float_replay == "onnxruntime"


def test_cli_json_says_which_engine_ran(capsys):
    net, prop = str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / "corner_robust.vnnlib")
    assert main(["verify", net, prop, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"] == "split(4096)" and d["notes"][0].startswith("engine split(4096)")
    assert main(["verify", net, "--engine", "plain", prop, "--json"]) == 0  # options before positionals
    assert json.loads(capsys.readouterr().out)["engine"] == "plain"


def test_symbolic_weights_from_the_ir_doc(tmp_path):
    """docs/ir-json.md's example: y = w2 · relu(W x + b) + 1/3 with w2 free. At x = 0,
    relu(b) = [0, 1], so y = w2[1] + 1/3 reaches 5 (sat); the witness's parameters replay."""
    text = (ROOT / "docs" / "ir-json.md").read_text().split("## Example")[1].split("```json")[1].split("```")[0]
    (tmp_path / "n.json").write_text(text)
    g = load_network(tmp_path / "n.json")
    o = verify(g, box_prop(2, 1, "(assert (>= Y_0 5))\n"), VerifyOptions(engine="plain", timeout=30))
    assert o.status == "sat" and float(o.witness.y[0]) >= 5
    assert any("symbolic parameters" in n for n in o.notes)
