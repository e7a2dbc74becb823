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
    # one plain query each: the liar's unsat is one answer against cvc5's validated sat
    code, d = diff(capsys, NET, SAT, "--backends", "cvc5,liar", "--timeout", "60", "--engine", "plain")
    assert code == 4 and d["disagreement"]
    cvc5, liar = d["rows"]
    assert cvc5["status"] == "sat" and cvc5["validated"] and liar["status"] == "unsat"


def test_bad_model_and_crash_are_failures_not_answers(capsys, fakes):
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3,bogus,crashy", "--engine", "plain")
    rows = {r["backend"]: r for r in d["rows"]}
    assert rows["bogus"]["status"] == "error" and not rows["bogus"]["validated"]
    assert "FAILS REPLAY" in rows["bogus"]["notes"]
    assert rows["crashy"]["status"] == "error" and "exit code 139" in rows["crashy"]["notes"]
    assert d["consensus"] == "unsat" and not d["disagreement"] and code == 3


def test_unavailable_backend_is_a_row(capsys, monkeypatch):
    """A known backend that cannot be loaded here is a skipped row naming what is missing; an
    unknown name is a usage error."""
    from nnsmt import backends
    monkeypatch.setitem(backends.REGISTRY, "missing", ("no_such_module_here", "X", "pip install it"))
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3,missing")
    assert code == 0 and d["rows"][1]["status"] == "skipped" and "pip install it" in d["rows"][1]["notes"]
    assert main(["diff", NET, UNSAT, "--backends", "z3,yices9"]) == 2
    assert "unknown backend 'yices9'" in capsys.readouterr().err


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
    assert rows["bogus"]["status"] == "error" and not rows["bogus"]["validated"]
    assert d["query"] == "train" and d["disagreement"] and code == 4


# --- robustness and estimation queries ---------------------------------------------------------
# f(x) = x - 2 (one neuron, no activation), δ = 1/10 on its weight and bias:
#   f_p(x) - f_p0(x) = dw·x + db with |dw|, |db| <= 1/10.
# - at x0 = 2: |2 dw + db| <= 3/10, attained at dw = db = 1/10, so ε can exceed 0.29 (sat) but
#   not 0.3 (unsat: the query asks for a strict >);
# - at x0 = 2 the nominal output is 0, label 1 (f >= 0); dw = db = -1/10 gives -3/10: it flips (sat);
# - on [0, 1] the perturbed output is at most 1.1·1 - 1.9 = -0.8 < 0: label 0 everywhere (unsat);
# - σ above on [0, 4]: a nominal label 1 (x >= 2) flips iff (1 + dw) x - 2 + db < 0, i.e. at most
#   0.9 x - 2.1 < 0, x < 7/3: the distance x - 2 reaches every value below 1/3 but not 1/3.

@pytest.fixture
def neuron(tmp_path):
    import numpy as np
    from nnsmt.ir import Affine, Const, Graph, Input
    from nnsmt.serialize import save_json
    g = Graph((Input("x", 1), Affine("z", "x", Const(np.array([[1.0]])), Const(np.array([-2.0])))), ("z",)).check()
    save_json(g, tmp_path / "neuron.json")
    (tmp_path / "box01.json").write_text('{"lo": [0], "hi": [1]}')
    (tmp_path / "box04.json").write_text('{"lo": [0], "hi": [4]}')
    return tmp_path


def robust(capsys, folder, *argv, backends="z3,cvc5"):
    return diff(capsys, str(folder / "neuron.json"), "--params", "delta=0.1", *argv, "--backends", backends)


@pytest.mark.parametrize("argv, expected", [
    (("--mode", "robustness", "--point", "2", "--property", "eps=0.29"), "sat"),
    (("--mode", "robustness", "--point", "2", "--property", "eps=0.3"), "unsat"),
    (("--mode", "robustness", "--point", "2", "--property", "label"), "sat"),
    (("--mode", "robustness", "--domain", "box01.json", "--property", "label"), "unsat"),
    (("--mode", "estimate", "--point", "2", "--objective", "eps", "--threshold", "0.29"), "sat"),
    (("--mode", "estimate", "--point", "2", "--objective", "eps", "--threshold", "0.3"), "unsat"),
    (("--mode", "estimate", "--domain", "box04.json", "--objective", "sigma", "--threshold", "0.333"), "sat"),
    (("--mode", "estimate", "--domain", "box04.json", "--objective", "sigma", "--threshold", "1/3"), "unsat"),
])
def test_robustness_and_estimate_known_answers(capsys, neuron, argv, expected):
    argv = [str(neuron / a) if a.endswith(".json") else a for a in argv]
    code, d = robust(capsys, neuron, *argv)
    assert d["query"] == argv[1] and d["consensus"] == expected and not d["disagreement"]
    assert [r["status"] for r in d["rows"]] == [expected] * 2
    assert all(r["validated"] for r in d["rows"]) == (expected == "sat")
    assert code == (10 if expected == "sat" else 0)


def test_estimate_witness_value_is_reported(capsys, neuron):
    code, d = robust(capsys, neuron, "--mode", "estimate", "--point", "2", "--objective", "eps",
                     "--threshold", "0.29", backends="cvc5")
    note = d["rows"][0]["notes"]
    assert code == 10 and note.startswith("validated (exact+onnxruntime; eps >= ")
    assert 0.29 < float(note.split(">= ")[1].rstrip(")")) <= 0.3


def test_robustness_disagreement_and_bad_model(capsys, neuron, fakes):
    """cvc5's witness (ε > 0.29 at x0 = 2) against the liar's unsat is a disagreement; the bogus
    model (everything 1000) is outside the parameter box: not validated, never sat."""
    code, d = robust(capsys, neuron, "--mode", "robustness", "--point", "2", "--property", "eps=0.29",
                     backends="cvc5,liar,bogus")
    rows = {r["backend"]: r for r in d["rows"]}
    assert rows["cvc5"]["validated"] and rows["liar"]["status"] == "unsat"
    assert rows["bogus"]["status"] == "error" and not rows["bogus"]["validated"]
    assert "FAILS REPLAY" in rows["bogus"]["notes"]
    assert d["disagreement"] and code == 4
    code, d = robust(capsys, neuron, "--mode", "estimate", "--point", "2", "--objective", "eps",
                     "--threshold", "0.3", backends="z3,bogus")
    assert d["consensus"] == "unsat" and not d["disagreement"] and code == 3


@pytest.mark.parametrize("argv, msg", [
    (("--mode", "robustness", "--point", "2"), "--property label"),
    (("--mode", "estimate", "--point", "2", "--objective", "eps"), "--threshold"),
    (("--mode", "estimate", "--point", "2", "--objective", "eps", "--threshold", "x"), "not a number"),
    (("--mode", "robustness", "--property", "label"), "exactly one of --domain"),
])
def test_robustness_bad_options_exit_2(capsys, neuron, argv, msg):
    code = main(["diff", str(neuron / "neuron.json"), "--params", "delta=0.1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_vnnlib2_query_in_its_declared_semantics(capsys, fakes, tmp_path):
    """A VNN-LIB 2 query about one network: every backend answers it in float32 (a sat holds in
    onnxruntime in float32, validated), the semantics are in the record, a lying unsat is still
    a disagreement; an unsat of the real-valued query that does not prove the float16 one (it
    overflows) is unknown on every row; --arch does not apply."""
    from test_standard_cli import overflow16
    f32 = str(EXAMPLES / "class1_margin_f32.vnnlib")
    code, d = diff(capsys, NET, f32, "--backends", "z3,cvc5")
    assert code == 10 and d["consensus"] == "sat" and d["semantics"] == "float32"
    assert all(r["status"] == "sat" and r["validated"] for r in d["rows"])
    assert any("float32 semantics" in n for n in d["semantics_notes"])
    code, d = diff(capsys, NET, f32, "--backends", "cvc5,liar", "--engine", "plain")
    assert code == 4 and d["disagreement"]
    net, q = overflow16(tmp_path)
    code, d = diff(capsys, str(net), str(q), "--backends", "z3,cvc5", "--engine", "plain")
    assert code == 20 and d["semantics"] == "float16"
    assert [r["status"] for r in d["rows"]] == ["unknown"] * 2
    assert main(["diff", NET, f32, "--arch", "linear,relu,linear"]) == 2
    assert "--arch and --weights do not apply" in capsys.readouterr().err
    code, d = diff(capsys, NET, UNSAT, "--backends", "z3")
    assert d["semantics"] == "real" and d["semantics_notes"] == []
