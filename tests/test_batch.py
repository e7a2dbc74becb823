"""nnsmt batch: instance lists, result files, resumability, local and Ray executors agree."""

import csv
import json
import os

import pytest

from nnsmt.cli import main
from nnsmt.engine.batch import read_instances
from nnsmt.errors import InputError

from conftest import EXAMPLES, have, need_shared


def instances(tmp_path, mixed=False):
    """Five instances: four unsat, one sat (the example's class-1 margin); with `mixed` a sixth,
    unsat, that input splitting cannot settle by bounds (see mixed_margin)."""
    folder = need_shared("benchmarks", "vnncomp-test")
    rows = [(folder / f"test_{n}.onnx", folder / f"test_{n}.vnnlib", 30) for n in ("nano", "tiny", "small")]
    rows += [(EXAMPLES / "classifier.onnx", EXAMPLES / "corner_robust.vnnlib", 30),
             (EXAMPLES / "classifier.onnx", EXAMPLES / "class1_margin.vnnlib", 60)]
    if mixed:
        rows.append((EXAMPLES / "classifier.onnx", mixed_margin(tmp_path), 120))
    p = tmp_path / "instances.csv"
    p.write_text("".join(f"{os.path.relpath(a, tmp_path)},{os.path.relpath(b, tmp_path)},{t}\n" for a, b, t in rows))
    return p


def mixed_margin(tmp_path):
    """Y_1 - Y_2 >= 0.3172 + X_0/1000 on [-1, 1]^2: unsat (the lead peaks near 0.31517, see
    test_split), and an atom mixing X and Y is never refuted by bounds, so every sub-box of a
    split goes to a solver."""
    p = tmp_path / "mixed.vnnlib"
    p.write_text((EXAMPLES / "class1_margin.vnnlib").read_text().replace("0.25)", "0.3172 (* 0.001 X_0))"))
    return p


def run_batch(tmp_path, capsys, *extra, mixed=False):
    out = tmp_path / "results.csv"
    code = main(["batch", str(instances(tmp_path, mixed)), "-o", str(out), "--backend", "cvc5", "--json", *extra])
    summary = json.loads(capsys.readouterr().out)
    return code, out, summary


def test_local_batch_writes_vnncomp_results_and_resumes(tmp_path, capsys):
    code, out, summary = run_batch(tmp_path, capsys, "--jobs", "2")
    assert code == 0 and summary["counts"] == {"unsat": 4, "sat": 1}
    rows = list(csv.DictReader(open(out)))
    assert [r["status"] for r in rows] == ["unsat"] * 4 + ["sat"]
    sat_file = tmp_path / "results_results" / "classifier__class1_margin__cvc5.txt"
    text = sat_file.read_text()
    assert text.startswith("sat\n((X_0 ") and "(Y_2 " in text
    # resume: drop one record; only that instance runs again, the others are left untouched
    records = sorted((tmp_path / "results_results").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in records}
    records[0].unlink()
    code, out, summary = run_batch(tmp_path, capsys)
    assert code == 0 and summary["counts"] == {"unsat": 4, "sat": 1}
    after = {p: p.stat().st_mtime_ns for p in records[1:]}
    assert after == {p: before[p] for p in records[1:]} and records[0].exists()


def test_split_subqueries_spread_over_workers(tmp_path, capsys):
    """--split: each instance's sub-queries are tasks of the pool; same verdicts as without."""
    code, out, summary = run_batch(tmp_path, capsys, "--jobs", "2", "--split", "4", mixed=True)
    assert code == 0 and summary["counts"] == {"unsat": 5, "sat": 1}
    rows = list(csv.DictReader(open(out)))
    assert [r["status"] for r in rows] == ["unsat"] * 4 + ["sat", "unsat"]
    rec = json.loads((tmp_path / "results_results" / "classifier__mixed__cvc5.json").read_text())
    assert rec["stats"]["subqueries"] == rec["stats"]["answered"] == 4
    sat = (tmp_path / "results_results" / "classifier__class1_margin__cvc5.txt").read_text()
    assert sat.startswith("sat\n((X_0 ")


def test_bad_instance_is_an_error_row_not_the_end(tmp_path, capsys):
    p = tmp_path / "i.csv"
    p.write_text(f"missing.onnx,{EXAMPLES / 'corner_robust.vnnlib'},10\n"
                 f"{EXAMPLES / 'classifier.onnx'},{EXAMPLES / 'corner_robust.vnnlib'},30\n")
    code = main(["batch", str(p), "-o", str(tmp_path / "r.csv"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 3 and summary["counts"] == {"error": 1, "unsat": 1}


def test_query_list_with_header_and_backends(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text("network,property,backend\nnet.onnx,p.vnnlib,cvc5\nnet.onnx,q.vnnlib,\n")
    rows = read_instances(p, ["z3", "pysmt:z3"], 5.0)
    assert [(r["vnnlib"], r["backend"], r["timeout"]) for r in rows] == [
        ("p.vnnlib", "cvc5", 5.0), ("q.vnnlib", "z3", 5.0), ("q.vnnlib", "pysmt:z3", 5.0)]


@pytest.mark.parametrize("text, msg", [("", "no instances"), ("onnx,x\na,b\n", "vnnlib"),
                                       ("a.onnx,b.vnnlib,soon\n", "not a positive number"), ("a.onnx,b.vnnlib,-5\n", "not a positive number"), ("a.onnx\n", "columns")])
def test_bad_instance_lists(tmp_path, text, msg):
    p = tmp_path / "i.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=msg):
        read_instances(p, ["z3"], None)


@pytest.mark.skipif(not have("ray"), reason='ray is not installed (pip install "nnsmt[ray]")')
def test_ray_gives_the_same_results_as_local(tmp_path, capsys):
    import ray
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as e:  # no room to start Ray here: say so, don't fake it
        pytest.skip(f"Ray could not start: {e}")
    try:
        local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
        local_dir.mkdir(), ray_dir.mkdir()
        results = {}
        for d, ex in ((local_dir, "local"), (ray_dir, "ray")):
            code, out, summary = run_batch(d, capsys, "--executor", ex)
            assert code == 0
            results[ex] = [(r["onnx"], r["vnnlib"], r["status"]) for r in csv.DictReader(open(out))]
        assert results["local"] == results["ray"]
        assert [s for *_, s in results["ray"]] == ["unsat"] * 4 + ["sat"]
        split_dir = tmp_path / "ray_split"  # sub-queries as Ray tasks
        split_dir.mkdir()
        code, out, summary = run_batch(split_dir, capsys, "--executor", "ray", "--split", "4", mixed=True)
        assert code == 0 and [r["status"] for r in csv.DictReader(open(out))] == ["unsat"] * 4 + ["sat", "unsat"]
        rec = json.loads((split_dir / "results_results" / "classifier__mixed__cvc5.json").read_text())
        assert rec["stats"]["answered"] == 4
    finally:
        ray.shutdown()


def test_vnnlib2_rows_run_in_their_declared_semantics(tmp_path, capsys):
    """VNN-LIB 2 queries in a batch go the way of `nnsmt verify QUERY --network`: float32 here,
    the sat result file in the standard's assignment form, its values what onnxruntime computes
    in float32 (an independent replay); a query with two networks to give is an error row."""
    import numpy as np
    import onnxruntime as ort
    sat = EXAMPLES / "class1_margin_f32.vnnlib"
    unsat = tmp_path / "margin_half.vnnlib"  # the lead peaks near 0.315 (test_split): 0.5 is out of reach
    unsat.write_text(sat.read_text().replace("0.25)", "0.5)"))
    two = tmp_path / "two.vnnlib"
    text = sat.read_text()
    two.write_text(text.replace("(assert", "(declare-network other\n    (declare-input  U float32 [1,2])\n"
                                "    (declare-output V float32 [1,3])\n)\n\n(assert", 1))
    net = EXAMPLES / "classifier.onnx"
    p = tmp_path / "i.csv"
    p.write_text(f"{net},{sat},60\n{net},{unsat},60\n{net},{two},60\n")
    code = main(["batch", str(p), "-o", str(tmp_path / "r.csv"), "--backend", "cvc5", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 3 and summary["counts"] == {"sat": 1, "unsat": 1, "error": 1}
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [r["status"] for r in rows] == ["sat", "unsat", "error"]
    assert "declares 2 networks" in rows[2]["reason"] and "two.vnnlib" in rows[2]["reason"]
    lines = (tmp_path / "r_results" / "classifier__class1_margin_f32__cvc5.txt").read_text().split()
    assert lines[:4] == ["sat", "X", "float32", "[1,2]"] and lines[6:9] == ["Y", "float32", "[1,3]"]
    x = np.array([lines[4:6]], dtype=np.float32)
    y = np.array(lines[9:12], dtype=np.float32)
    sess = ort.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
    assert np.array_equal(y, want) and np.all(np.abs(x) <= 1) and y[1] >= y[2] + np.float32(0.25)
    rec = json.loads((tmp_path / "r_results" / "classifier__margin_half__cvc5.json").read_text())
    assert any("float32 semantics" in n for n in rec["notes"])


def test_a_row_given_twice_runs_once(tmp_path, capsys):
    """The same instance listed twice is one instance: one run, one summary row, counted once."""
    folder = need_shared("benchmarks", "vnncomp-test")
    row = f"{os.path.relpath(folder / 'test_tiny.onnx', tmp_path)},{os.path.relpath(folder / 'test_tiny.vnnlib', tmp_path)},30\n"
    (tmp_path / "twice.csv").write_text(row + row)
    out = tmp_path / "r.csv"
    code = main(["batch", str(tmp_path / "twice.csv"), "-o", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["counts"] == {"unsat": 1}
    assert len(list(csv.DictReader(open(out)))) == 1
