"""Input splitting and the bounded encoding: same answers as the plain encoding, independent
picklable sub-queries, refutation by bounds, validated counterexamples."""

import csv
import pickle

import pytest

from nnsmt.cli import main
from nnsmt.frontends import load_onnx, ort_evaluator
from nnsmt.queries.split import plan_split, solve_split, verify_split
from nnsmt.queries.verify import verify_script
from nnsmt.validate import validate_counterexample
from nnsmt.vnnlib import load_vnnlib

from conftest import EXAMPLES, need_shared


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
    status, _, _, log = solve_split(plan, lambda s, t: backend.solve(s, timeout=t),
                                    lambda m: validate_counterexample(g, p, m), timeout=60)
    assert status == "unsat" and len(log) == len(subs)


def test_split_finds_validated_counterexample(backend):
    g, p = load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    r = verify_split(g, p, 8, lambda s, t: backend.solve(s, timeout=t), 60, ort_evaluator(EXAMPLES / "classifier.onnx"))
    assert r["status"] == "sat" and r["counterexample"].float_replay == "onnxruntime"
    assert r["counterexample"].y[1] >= r["counterexample"].y[2] + 0.25


def test_vnncomp_full_acas_instances(backend):
    """test_sat / test_unsat (full ACAS Xu networks): the plain encoding needs minutes; split
    with bounds decides both in seconds."""
    folder = need_shared("benchmarks", "vnncomp-test")
    rows = [r for r in csv.DictReader(open(folder / "known.csv")) if r["onnx"] in ("test_sat.onnx", "test_unsat.onnx")]
    assert len(rows) == 2
    for r in rows:
        g, p = load_onnx(folder / r["onnx"]), load_vnnlib(folder / r["vnnlib"])
        res = verify_split(g, p, 64, lambda s, t: backend.solve(s, timeout=t), 60, ort_evaluator(folder / r["onnx"]))
        assert res["status"] == r["expected"], (r, res)


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
    assert code == 2 and "positive" in capsys.readouterr().err


def test_verify_split_solves_leftover_subqueries(backend):
    """A violated property cannot be refuted by bounds: with no candidate search (validate
    None) and n=1 the plan leaves one sub-query, built lazily, and the solver's model passes
    the exact and onnxruntime replays."""
    onnx = EXAMPLES / "classifier.onnx"
    g, p = load_onnx(onnx), load_vnnlib(EXAMPLES / "class1_margin.vnnlib")
    plan = plan_split(g, p, 1, samples=0, build=False)
    assert len(plan.subqueries) == 1 and plan.subqueries[0].script is None
    status, _, cex, log = solve_split(plan, lambda s, t: backend.solve(s, timeout=t),
                                      lambda m: validate_counterexample(g, p, m, ort_evaluator(onnx)), 60, (g, p))
    assert status == "sat" and len(log) == 1 and cex.float_replay == "onnxruntime"
