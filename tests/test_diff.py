"""nnsmt diff: the same query on several backends; disagreements and bad models are flagged."""

import json

import pytest

from nnsmt import backends
from nnsmt.cli import main

from conftest import EXAMPLES

NET = str(EXAMPLES / "classifier.onnx")
SAT = str(EXAMPLES / "class1_margin.vnnlib")
UNSAT = str(EXAMPLES / "corner_robust.vnnlib")


@pytest.fixture
def fakes(monkeypatch):
    for name, cls in (("liar", "Liar"), ("bogus", "Bogus"), ("crashy", "Crashy")):
        monkeypatch.setitem(backends.REGISTRY, name, ("fake_backends", cls, ""))


def diff(capsys, *argv):
    code = main(["diff", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_consistent_unsat(capsys):
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3,cvc5,pysmt:z3")
    assert code == 0 and d["consensus"] == "unsat" and not d["disagreement"]
    assert [r["status"] for r in d["rows"]] == ["unsat"] * 3


def test_validated_sat_against_unsat_is_a_disagreement(capsys, fakes):
    code, d = diff(capsys, NET, SAT, "--backends", "cvc5,liar", "--timeout", "60")
    assert code == 4 and d["disagreement"]
    cvc5, liar = d["rows"]
    assert cvc5["status"] == "sat" and cvc5["validated"] and liar["status"] == "unsat"


def test_bad_model_and_crash_are_failures_not_answers(capsys, fakes):
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3,bogus,crashy")
    rows = {r["backend"]: r for r in d["rows"]}
    assert rows["bogus"]["status"] == "sat" and not rows["bogus"]["validated"]
    assert "FAILS REPLAY" in rows["bogus"]["notes"]
    assert rows["crashy"]["status"] == "error" and "exit code 139" in rows["crashy"]["notes"]
    assert d["consensus"] == "unsat" and not d["disagreement"] and code == 3


def test_unavailable_backend_is_a_row(capsys):
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3,yices9")
    assert code == 0 and d["rows"][1]["status"] == "skipped" and "unknown backend" in d["rows"][1]["notes"]


def test_table_output(capsys):
    assert main(["diff", NET, UNSAT, "--backends", "z3,cvc5"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("backend") and out.rstrip().endswith("consistent: unsat")


def test_training_query_models_are_checked_on_every_point(capsys, fakes):
    """3-1-2 on the 12-point grid is sat (its labels are one half-space there); a lying unsat is
    a disagreement, a model that misclassifies is a failure."""
    argv = [str(EXAMPLES / "sphere_3_1_2.onnx"), "--mode", "train", "--data", str(EXAMPLES / "sphere_grid.csv")]
    code, d = diff(capsys, *argv, "--backends", "cvc5,liar,bogus")
    rows = {r["backend"]: r for r in d["rows"]}
    assert rows["cvc5"]["status"] == "sat" and rows["cvc5"]["validated"]
    assert "all 12 points" in rows["cvc5"]["notes"]
    assert rows["bogus"]["status"] == "sat" and not rows["bogus"]["validated"]
    assert d["query"] == "train" and d["disagreement"] and code == 4
