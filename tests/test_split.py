"""Input splitting and the bounded encoding: same answers as the plain encoding, independent
picklable sub-queries, refutation by bounds, validated counterexamples."""

import csv
import json
import multiprocessing
import pickle
import time
from fractions import Fraction as F

import pytest

from nnsmt import backends
from nnsmt.backends import get_backend
from nnsmt.backends.executors import InlineExecutor, LocalExecutor
from nnsmt.bounds import box_interval, propagate_bounds
from nnsmt.cli import main
from nnsmt.frontends import load_onnx, ort_evaluator
from nnsmt.engine.driver import drive
from nnsmt.engine.verify import VerifyOptions, verify
from nnsmt.queries.split import SplitPlan, SplitRun, SubQuery, plan_split, subquery_script
from nnsmt.queries.verify import VerifyQuery, verify_script
from nnsmt.validate import validate_counterexample
from nnsmt.vnnlib import load_vnnlib

from conftest import EXAMPLES, have, need_shared, solver_backend


def solve_plan(plan, g, p, backend, executor, timeout, float_eval=None, jobs=1):
    """(status, reason, counterexample, per-query log) of a plan's sub-queries on an executor."""
    run = SplitRun(plan, VerifyQuery(g, p, float_eval=float_eval), backend, timeout, jobs)
    [(_, o)] = list(drive([run], executor))
    return o.status, o.reason, o.witness, run.log


@pytest.mark.parametrize("prop, expected, lemmas", [
    ("corner_robust.vnnlib", "unsat", "none"), ("corner_robust.vnnlib", "unsat", "bounds"),
    ("corner_robust.vnnlib", "unsat", "triangle"), ("class1_margin.vnnlib", "sat", "triangle")])
def test_bounded_encoding_same_answer(backend, prop, expected, lemmas):
    g, p = load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(EXAMPLES / prop)
    s = verify_script(g, p, encoding="bounded", lemmas=lemmas)
    assert s.meta["encoding"] == "bounded"
    res = backend.solve(s, timeout=60)
    assert res.status == expected
    if res.status == "sat":
        validate_counterexample(g, p, res.model, ort_evaluator(EXAMPLES / "classifier.onnx"))


def test_subqueries_are_independent_plain_data(backend):
    """Split without bounds refutation help: every sub-query is a complete picklable script;
    solved one by one (after a pickle round trip) they give the whole query's answer."""
    g, p = load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(EXAMPLES / "corner_robust.vnnlib")
    plan = plan_split(g, p, 4)
    assert plan.candidate is None and plan.refuted + len(plan.subqueries) >= 1
    subs = pickle.loads(pickle.dumps(plan.subqueries))
    assert len(subs) <= 4
    for sq in subs:  # each box lies inside the property's region
        assert any(n == "split_box" for n, _ in sq.script.asserts)
    plan = SplitPlan(subs)
    status, _, _, log = solve_plan(plan, g, p, backend.name, InlineExecutor(), 60)
    assert status == "unsat" and len(log) == len(subs)


def test_split_finds_validated_counterexample(backend):
    g, p = load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    o = verify(g, p, VerifyOptions(engine="split", split=8, backend=backend.name, timeout=60),
               ort_evaluator(EXAMPLES / "classifier.onnx"))
    assert o.status == "sat" and o.witness.float_replay == "onnxruntime"
    assert o.witness.y[1] >= o.witness.y[2] + 0.25


def test_vnncomp_full_acas_instances(backend):
    """test_sat / test_unsat (full ACAS Xu networks): the plain encoding needs minutes; split
    with bounds decides both in seconds."""
    folder = need_shared("benchmarks", "vnncomp-test")
    rows = [r for r in csv.DictReader(open(folder / "known.csv")) if r["onnx"] in ("test_sat.onnx", "test_unsat.onnx")]
    assert len(rows) == 2
    for r in rows:
        g, p = load_onnx(folder / r["onnx"]), load_vnnlib(folder / r["vnnlib"])
        res = verify(g, p, VerifyOptions(engine="split", split=64, backend=backend.name, timeout=60),
                     ort_evaluator(folder / r["onnx"]))
        assert res.status == r["expected"], (r, res)


def test_acas_prop1_unsat_by_splitting():
    folder = need_shared("benchmarks", "acasxu")
    g, p = load_onnx(folder / "ACASXU_run2a_1_1_batch_2000.onnx"), load_vnnlib(folder / "prop_1.vnnlib")
    plan = plan_split(g, p, 4096, samples=0)
    assert plan.candidate is None and not plan.subqueries and plan.refuted > 1  # all refuted by bounds


def test_disjunctive_input_region_splits_each_box():
    """ACAS Xu property 6 asserts two input boxes: each is a root of the split."""
    folder = need_shared("benchmarks", "acasxu")
    g, p = load_onnx(folder / "ACASXU_run2a_1_1_batch_2000.onnx"), load_vnnlib(folder / "prop_6.vnnlib")
    plan = plan_split(g, p, 2, samples=0)
    assert plan.stats["roots"] == 2
    assert {sq.meta["region"] for sq in plan.subqueries} <= {0, 1}


def test_cli_split(capsys):
    code = main(["verify", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / "corner_robust.vnnlib"),
                 "--split", "8", "--timeout", "60"])
    assert code == 0 and capsys.readouterr().out.startswith("unsat")
    code = main(["verify", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / "class1_margin.vnnlib"),
                 "--encoding", "bounded", "--backend", "cvc5"])
    assert code == 10


def test_cli_split_rejects_nonpositive(capsys):
    code = main(["verify", str(EXAMPLES / "classifier.onnx"), str(EXAMPLES / "corner_robust.vnnlib"),
                 "--split", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "--split" in err and ">= 1" in err


def test_verify_split_solves_leftover_subqueries(backend):
    """A violated property cannot be refuted by bounds: with no candidate search (validate
    None) and n=1 the plan leaves one sub-query, built lazily, and the solver's model passes
    the exact and onnxruntime replays."""
    onnx = EXAMPLES / "classifier.onnx"
    g, p = load_onnx(onnx), load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    plan = plan_split(g, p, 1, samples=0, build=False)
    assert len(plan.subqueries) == 1 and plan.subqueries[0].script is None
    status, _, cex, log = solve_plan(plan, g, p, backend.name, InlineExecutor(), 60, ort_evaluator(onnx))
    assert status == "sat" and len(log) == 1 and cex.float_replay == "onnxruntime"


# --- sub-queries on executors -------------------------------------------------------------------
# The example's class-1 lead Y_1 - Y_2 peaks at about 0.31517 on [-1, 1]^2 (a 401 x 401 grid;
# the plain encoding proves 0.3152 out of reach): a lead of 0.25 is sat, 0.3152 unsat.

def margin_case(tmp_path, margin):
    text = (EXAMPLES / "class1_margin.vnnlib").read_text().replace("0.25)", f"{margin})")
    (tmp_path / "m.vnnlib").write_text(text)
    return load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(tmp_path / "m.vnnlib")


def quarter_plan(g, p) -> SplitPlan:
    """The four quarters of [-1, 1]^2 as sub-queries, none refuted by bounds: the solver sees each."""
    subs = []
    for i, (a, b) in enumerate([(-1, -1), (-1, 0), (0, -1), (0, 0)]):
        box = ((F(a), F(b)), (F(a + 1), F(b + 1)))
        bounds = propagate_bounds(g, box_interval(*box))
        subs.append(SubQuery(i, subquery_script(g, p, box, bounds, index=i, of=4), box))
    return SplitPlan(subs)


def split_plans(tmp_path):
    """(name, plan, graph, property, expected): the quarters at both margins, and plan_split's own
    sub-queries (no candidate search, so the solver must find the counterexample)."""
    out = []
    for margin, expected in (("0.25", "sat"), ("0.3152", "unsat")):
        g, p = margin_case(tmp_path, margin)
        out.append((f"quarters {margin}", quarter_plan(g, p), g, p, expected))
    g, p = margin_case(tmp_path, "0.25")
    out.append(("plan_split 8", plan_split(g, p, 8, samples=0), g, p, "sat"))
    assert len(out[-1][1].subqueries) > 2
    return out


def same_verdicts_on(executor, jobs, tmp_path):
    solver_backend("cvc5")

    for name, plan, g, p, expected in split_plans(tmp_path):
        seq = solve_plan(plan, g, p, "cvc5", InlineExecutor(), 60)
        par = solve_plan(plan, g, p, "cvc5", executor, 60, jobs=jobs)
        assert seq[0] == par[0] == expected, name
        if expected == "sat":  # the workers' model passed the exact replay
            assert par[2].y[1] >= par[2].y[2] + 0.25
        else:
            assert sorted(i for i, *_ in par[3]) == [0, 1, 2, 3]  # every quarter was solved


def test_split_on_local_workers_matches_in_process(tmp_path):
    same_verdicts_on(LocalExecutor(2), 2, tmp_path)
    assert not multiprocessing.active_children()  # every solver process was reaped


class SatOrStuck:
    """cvc5's answer when it is sat; otherwise stuck (sleeps past any test), like a hard sub-box."""

    name = "sat-or-stuck"

    def supports(self, features):
        return None

    capabilities = get_backend("cvc5").capabilities

    def solve(self, script, timeout=None, options=None):
        res = get_backend("cvc5").solve(script, timeout=timeout)
        if res.status != "sat":
            time.sleep(600)
        return res


def test_validated_sat_cancels_the_other_subqueries(tmp_path, monkeypatch):
    """Four workers, four quarters: one is sat, three never answer. The sat is validated and the
    three are killed (cancelled, so they never report), not waited for."""
    solver_backend("cvc5")
    monkeypatch.setitem(backends.REGISTRY, "sat-or-stuck", ("test_split", "SatOrStuck", ""))
    g, p = margin_case(tmp_path, "0.25")
    plan = quarter_plan(g, p)
    status, _, cex, log = solve_plan(plan, g, p, "sat-or-stuck", LocalExecutor(4), 1200, jobs=4)
    assert status == "sat" and cex.y[1] >= cex.y[2] + 0.25
    assert [s for _, s, *_ in log] == ["sat"]
    assert not multiprocessing.active_children()


def test_instance_timeout_bounds_the_whole_split(tmp_path, monkeypatch):
    """Every sub-query stuck: each is killed at its share of the instance's timeout and the
    verdict is a timeout; nothing starts after the deadline."""
    monkeypatch.setitem(backends.REGISTRY, "sleepy", ("fake_backends", "Sleepy", ""))
    g, p = margin_case(tmp_path, "0.3152")
    plan = quarter_plan(g, p)
    status, reason, _, log = solve_plan(plan, g, p, "sleepy", LocalExecutor(2), 1.0, jobs=2)
    assert status == "unknown" and reason.endswith("(timeout)")
    assert len(log) == 2 and all(r == "timeout" for _, _, r, _ in log)  # the other two never started


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_split_jobs(tmp_path, capsys, jobs):
    """An atom mixing X and Y is never refuted by bounds, so every sub-box goes to the workers:
    Y_1 - Y_2 >= 0.3172 + X_0/1000 is out of reach (0.31517 + 0.001 < 0.3172), >= 0.25 + X_0/1000
    is not."""
    net = str(EXAMPLES / "classifier.onnx")
    for margin, code, status in (("0.3172", 0, "unsat"), ("0.25", 10, "sat")):
        margin_case(tmp_path, f"{margin} (* 0.001 X_0)")
        assert main(["verify", net, str(tmp_path / "m.vnnlib"), "--split", "4", "--jobs", jobs,
                     "--backend", "cvc5", "--timeout", "120", "--json"]) == code
        out = json.loads(capsys.readouterr().out)
        assert out["status"] == status and out["executor"] == {"name": "local", "jobs": int(jobs)}
        if status == "unsat":
            assert out["stats"]["subqueries"] == out["stats"]["answered"] == 4


@pytest.mark.skipif(not have("ray"), reason='ray is not installed (pip install "nnsmt[ray]")')
def test_split_on_ray_matches_in_process(tmp_path):
    import ray
    from nnsmt.backends.executors import RayExecutor
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as e:  # no room to start Ray here: say so, don't fake it
        pytest.skip(f"Ray could not start: {e}")
    try:
        same_verdicts_on(RayExecutor(2), 2, tmp_path)
    finally:
        ray.shutdown()
