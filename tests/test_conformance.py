"""The VNN-LIB 2 conformance suite (`vnnlib-satisfactory`, the `test` extra) against `nnsmt`
through the standard command line: every generated case (about 178 over 41 operator and query
categories) must pass, but for the cases listed in DEVIATIONS, where nnsmt follows the standard
and the suite does not, or where nnsmt says plainly what it cannot do. Each deviation is checked
to happen exactly the way described, so a change in either direction fails the test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = shutil.which("vnnlib-satisfactory", path=str(Path(sys.executable).parent))
NNSMT = Path(sys.executable).parent / "nnsmt"

# test id -> (the suite's outcome, a phrase nnsmt's stderr must contain)
DEVIATIONS = {
    # the query declares N2's input float16 and the suite passes the float32 model for it: the
    # standard (5.3.2, error condition 2) requires an error; the suite expects unsat
    "network_isomorphic/network_isomorphic01": ("suspect", "is float32, but X2 is declared float16"),
    # 2^x (a constant base to an input-dependent power) has no exact IR node yet
    "pow/pow03": ("suspect", "b^x"),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if SUITE is None:
        pytest.skip("vnnlib-satisfactory is not installed (pip install -e '.[test]')")
    cwd = tmp_path_factory.mktemp("conformance")
    r = subprocess.run([SUITE, "run", "--solver", str(NNSMT), "--timeout", "60", "--no-verbose"],
                       cwd=cwd, capture_output=True, text=True, timeout=1500)
    path = cwd / ".vnnlib-satisfactory" / "report.json"
    assert path.exists(), f"no report: {r.stdout[-2000:]} {r.stderr[-2000:]}"
    return json.loads(path.read_text())


def test_every_case_passes_but_the_documented_deviations(report):
    results = {r["test_id"]: r for r in report["results"]}
    assert len(results) >= 170, f"the suite generated only {len(results)} cases"
    assert not report["skipped"], f"skipped: {[s for s in report['skipped']][:5]}"
    bad = {k: (r["outcome"], r["expected"], r["actual"], (r.get("stderr") or "").strip()[:300])
           for k, r in results.items() if r["outcome"] != "pass" and k not in DEVIATIONS}
    assert not bad, f"{len(bad)} cases do not pass: {bad}"


@pytest.mark.parametrize("case", sorted(DEVIATIONS))
def test_each_deviation_is_the_documented_one(report, case):
    r = next(x for x in report["results"] if x["test_id"] == case)
    outcome, phrase = DEVIATIONS[case]
    assert r["outcome"] == outcome and phrase in (r.get("stderr") or ""), r


def test_the_suite_reads_our_capabilities():
    """`supports` answers every capability the standard lists, one value a line, exit 0."""
    caps = ["--onnx-opset-versions", "--onnx-element-types", "--onnx-operators", "--vnnlib-versions",
            "--hidden-node-theories", "--multiple-input-output-theories", "--multiple-network-theories",
            "--multiple-node-comparison-theories", "--arithmetic-complexity-theories",
            "--optimised-disjunctive-reasoning", "--serialise-assignments"]
    for c in caps:
        r = subprocess.run([str(NNSMT), "supports", c], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() and not r.stderr, (c, r)
    if SUITE is not None:
        for check in ("opset", "vnnlib", "serialise-assignments"):
            r = subprocess.run([SUITE, "compliance", check, "--solver", str(NNSMT)],
                               capture_output=True, text=True)
            assert r.returncode == 0 and "FAIL" not in r.stdout, (check, r.stdout, r.stderr)
