"""vnncomp/*.sh, the VNN-COMP tool scripts: verdicts on instances with published answers, sat
counterexamples checked independently (onnxruntime on the float32 inputs, then the property
within VNN-COMP's 1e-4), gzipped instances, timeouts, leftover processes, and the mapping of
nnsmt's output (JSON for VNN-LIB 1.0, the standard CLI's stdout for VNN-LIB 2) through a stand-in
nnsmt."""

import csv
import gzip
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nnsmt.vnnlib import load_vnnlib

from conftest import ROOT, have, need_shared

SCRIPTS = ROOT / "vnncomp"
VENV = Path(sys.prefix)  # the scripts run the nnsmt of the environment running the tests
TAG = f"pytest{os.getpid()}"  # marks this session's verifier processes (prepare_instance.sh's pkill)


@pytest.fixture(autouse=True)
def _installed():
    if not (VENV / "bin" / "nnsmt").exists():
        pytest.skip(f"no nnsmt in {VENV}/bin (the scripts need an installed venv)")


def script(name, *args, cwd, venv=VENV, timeout=120, env=None):
    e = dict(os.environ, NNSMT_VNNCOMP_VENV=str(venv), NNSMT_VNNCOMP_TAG=TAG, **(env or {}))
    return subprocess.run(["bash", str(SCRIPTS / name), *map(str, args)], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


def run_instance(tmp_path, onnx, vnnlib, timeout=60, venv=VENV, env=None, category="test"):
    """prepare_instance.sh then run_instance.sh, from tmp_path with relative paths; the result
    file is pre-filled with junk (it must be replaced). Returns (result text, elapsed s)."""
    rel = lambda p: os.path.relpath(p, tmp_path)
    prep = script("prepare_instance.sh", "v1", category, rel(onnx), rel(vnnlib), cwd=tmp_path, venv=venv, env=env)
    assert prep.returncode == 0, prep.stderr
    result = tmp_path / "out" / "result.txt"
    result.parent.mkdir(exist_ok=True)
    result.write_text("junk\n")
    t0 = time.monotonic()
    run = script("run_instance.sh", "v1", category, rel(onnx), rel(vnnlib), "out/result.txt", timeout,
                 cwd=tmp_path, venv=venv, env=env)
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert not [p for p in result.parent.iterdir() if p != result], "a temporary file was left"
    return result.read_text(), elapsed


def parse_counterexample(text):
    """{name: value} of the ((X_0 v) ... (Y_0 v)) block after `sat`."""
    lines = text.splitlines()
    assert lines[0] == "sat"
    body = "\n".join(lines[1:]).strip()
    assert body.startswith("((") and body.endswith("))"), body
    pairs = re.findall(r"\(\s*([XY]_\d+)\s+(\S+?)\s*\)", body)
    assert len(pairs) == body.count("_"), body
    return {k: float(v) for k, v in pairs}


def onnx_outputs(onnx, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    (y,) = sess.run(None, {inp.name: np.asarray(x, dtype=np.float32).reshape(shape)})
    return [float(v) for v in np.asarray(y).ravel()]


def check_counterexample(onnx, vnnlib, values):
    """The VNN-COMP check, independently of nnsmt's: the X values rounded to float32 through
    onnxruntime; the reported Y close to those outputs; the property within 1e-4."""
    prop = load_vnnlib(vnnlib)
    assert sorted(values) == sorted([f"X_{i}" for i in range(prop.n_inputs)] + [f"Y_{j}" for j in range(prop.n_outputs)])
    x = np.array([values[f"X_{i}"] for i in range(prop.n_inputs)], dtype=np.float32)
    y = onnx_outputs(onnx, x)
    assert np.allclose([values[f"Y_{j}"] for j in range(prop.n_outputs)], y, rtol=1e-3, atol=1e-4)
    env = prop.bind([float(v) for v in x], y)
    assert prop.holds(env, tol=1e-4), prop.violations(env, tol=1e-4)


def known(folder, pairs=None):
    rows = [(r["onnx"], r["vnnlib"], r["expected"]) for r in csv.DictReader(open(folder / "known.csv"))]
    if pairs is not None:
        rows = [r for r in rows if r[:2] in pairs]
        assert len(rows) == len(pairs)
    return [(folder / a, folder / b, want) for a, b, want in rows]


# ACAS Xu instances nnsmt settles in about half a second (one sat, one unsat)
ACAS = {("ACASXU_run2a_1_9_batch_2000.onnx", "prop_4.vnnlib"), ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_4.vnnlib")}


def known_instances():
    out = []
    for name, pairs in (("vnncomp-test", None), ("acasxu", ACAS)):
        folder = ROOT.parent / "shared" / "benchmarks" / name
        if (folder / "known.csv").exists():
            out += [pytest.param(o, v, want, id=f"{o.stem}-{v.stem}") for o, v, want in known(folder, pairs)]
    return out or [pytest.param(None, None, None, id="missing")]


@pytest.mark.parametrize("onnx,vnnlib,want", known_instances())
def test_known_answers(tmp_path, onnx, vnnlib, want):
    if onnx is None:
        need_shared("benchmarks", "vnncomp-test")
    text, _ = run_instance(tmp_path, onnx, vnnlib, category=onnx.parent.name)
    assert text.splitlines()[0] == want, text
    if want == "sat":
        check_counterexample(onnx, vnnlib, parse_counterexample(text))
    else:
        assert text == f"{want}\n"


def test_gzipped_instance(tmp_path):
    folder = need_shared("benchmarks", "vnncomp-test")
    for name in ("test_sat.onnx", "test_prop.vnnlib"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
    text, _ = run_instance(tmp_path, tmp_path / "test_sat.onnx.gz", tmp_path / "test_prop.vnnlib.gz")
    assert text.startswith("sat\n")
    check_counterexample(folder / "test_sat.onnx", folder / "test_prop.vnnlib", parse_counterexample(text))


@pytest.mark.parametrize("which", ["onnx", "vnnlib", "gzip"])
def test_prepare_refuses_a_missing_file(tmp_path, which):
    folder = need_shared("benchmarks", "vnncomp-test")
    onnx, vnnlib = folder / "test_small.onnx", folder / "test_small.vnnlib"
    if which == "onnx":
        onnx = bad = tmp_path / "nowhere.onnx"
    elif which == "vnnlib":
        vnnlib = bad = tmp_path / "nowhere.vnnlib"
    else:
        vnnlib = bad = tmp_path / "broken.vnnlib.gz"
        bad.write_bytes(b"not gzip")
    r = script("prepare_instance.sh", "v1", "test", onnx, vnnlib, cwd=tmp_path)
    assert r.returncode != 0
    assert len(r.stderr.splitlines()) == 1 and str(bad) in r.stderr, r.stderr


@pytest.mark.parametrize("name,nargs", [("install_tool.sh", 0), ("prepare_instance.sh", 3), ("run_instance.sh", 5)])
def test_version_string_and_arguments_are_checked(tmp_path, name, nargs):
    args = ["a"] * nargs
    for argv in (["v2", *args], ["v1", *args, "extra"] if name == "install_tool.sh" else ["v1"]):
        r = script(name, *argv, cwd=tmp_path)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (argv, r.stderr)
    if name == "run_instance.sh":
        r = script(name, "v1", "test", "a.onnx", "a.vnnlib", tmp_path / "r.txt", "soon", cwd=tmp_path)
        assert r.returncode == 1 and "TIMEOUT" in r.stderr and not (tmp_path / "r.txt").exists()


def test_short_timeout_on_a_hard_instance(tmp_path):
    folder = need_shared("benchmarks", "mnistfc")
    text, elapsed = run_instance(tmp_path, folder / "mnist-net_256x6.onnx", folder / "prop_0_0.05.vnnlib",
                                 timeout=1, category="mnistfc")
    assert text in ("timeout\n", "unknown\n")
    assert elapsed < 8  # hard stop at TIMEOUT + 1 s, KILL 2 s later; generous for a loaded machine
    assert not marked_processes(TAG)


def marked_processes(tag):
    r = subprocess.run(["pgrep", "-f", f"-X nnsmt_vnncomp_run={tag}( |$)"], capture_output=True, text=True)
    return r.stdout.split()


def test_prepare_ends_leftovers_of_its_own_tag_only(tmp_path):
    if shutil.which("pkill") is None:
        pytest.skip("no pkill")
    folder = need_shared("benchmarks", "vnncomp-test")
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    other = f"{TAG}x"
    mine = subprocess.Popen([sleep[0], "-X", f"nnsmt_vnncomp_run={TAG}", *sleep[1:]])
    theirs = subprocess.Popen([sleep[0], "-X", f"nnsmt_vnncomp_run={other}", *sleep[1:]])
    try:
        time.sleep(0.2)
        r = script("prepare_instance.sh", "v1", "test", folder / "test_small.onnx", folder / "test_small.vnnlib", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert mine.wait(timeout=5) != 0
        assert theirs.poll() is None
    finally:
        for p in (mine, theirs):
            if p.poll() is None:
                p.kill()
                p.wait()


# --- the mapping of nnsmt's output, through a stand-in nnsmt ----------------------------------

FAKE_NNSMT = """\
import os, sys, time
with open(os.environ["FAKE_LOG"], "w") as f:
    f.write("\\n".join([" ".join(f"{k}={v}" for k, v in sys._xoptions.items())] + sys.argv[1:]))
sys.stdout.write(os.environ.get("FAKE_STDOUT", ""))
sys.stdout.flush()
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
sys.exit(int(os.environ.get("FAKE_RC", "0")))
"""


@pytest.fixture
def fake(tmp_path):
    """A venv whose nnsmt prints FAKE_STDOUT, sleeps FAKE_SLEEP s, exits FAKE_RC, and logs its
    -X options (first line) and arguments (one a line) to FAKE_LOG."""
    venv = tmp_path / "fakevenv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "nnsmt").write_text(FAKE_NNSMT)
    (venv / "bin" / "nnsmt").chmod(0o755)
    (tmp_path / "net.onnx").write_bytes(b"stand-in")
    (tmp_path / "v1.vnnlib").write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= Y_0 0))\n")
    log = tmp_path / "argv.log"

    def go(stdout, vnnlib="v1.vnnlib", timeout=60, sleep=0, rc=0):
        env = {"FAKE_LOG": str(log), "FAKE_STDOUT": stdout, "FAKE_SLEEP": str(sleep), "FAKE_RC": str(rc)}
        text, elapsed = run_instance(tmp_path, tmp_path / "net.onnx", tmp_path / vnnlib, timeout, venv=venv, env=env)
        return text, log.read_text().splitlines() if log.exists() else None, elapsed
    return go


SAT_JSON = ('{"status": "sat", "reason": "", "counterexample": {"x": [0.5, -1e-07], "y": [2.0, 3.0], '
            '"y_onnxruntime": %s}}')


@pytest.mark.parametrize("stdout,want", [
    ('{"status": "unsat", "reason": ""}', "unsat\n"),
    ('{"status": "unknown", "reason": "1 of 4 sub-queries undecided (timeout)"}', "timeout\n"),
    ('{"status": "unknown", "reason": "timeout"}', "timeout\n"),
    ('{"status": "unknown", "reason": "the solver gave up (incomplete)"}', "unknown\n"),
    ('{"status": "error", "reason": "the solver failed"}', "error\n"),
    ('{"status": "sat", "reason": ""}', "unknown\n"),  # a sat without its witness is not reported
    (SAT_JSON % "[2.5, 3.5]", "sat\n((X_0 0.5)\n (X_1 -1e-07)\n (Y_0 2.5)\n (Y_1 3.5))\n"),
    (SAT_JSON % "null", "sat\n((X_0 0.5)\n (X_1 -1e-07)\n (Y_0 2.0)\n (Y_1 3.0))\n"),
    ("", "error\n"),
    ("nnsmt: oops", "error\n"),
])
def test_vnnlib1_json_mapping(fake, stdout, want):
    text, argv, _ = fake(stdout, timeout=60)
    assert text == want
    assert argv[0] == f"nnsmt_vnncomp_run={TAG}"
    assert argv[1] == "verify" and argv[2].endswith("net.onnx") and argv[3].endswith("v1.vnnlib") and "--json" in argv
    soft = float(argv[argv.index("--timeout") + 1])
    assert 55 <= soft < 60  # a margin below TIMEOUT
    assert "--engine" not in argv


def test_a_hung_verifier_is_killed_and_answers_timeout(fake):
    text, _, elapsed = fake("", timeout=1, sleep=60)
    assert text == "timeout\n"
    assert elapsed < 8
    assert not marked_processes(TAG)


V2_QUERY = """\
; a comment first
(vnnlib-version <2.0>)
(declare-network acas
    (declare-input X float32 [1,2])
    (declare-output Y float32 [1,1])
)
(assert (<= X[0,0] 1.0))
"""


@pytest.mark.parametrize("stdout,want", [
    ("timed-out\n", "timeout\n"),
    ("unsat\n", "unsat\n"),
    ("unknown\n", "unknown\n"),
    ("sat\nX float32 [1,2]\n0.5\n-0.25\nY float32 [1,1]\n3.0\n", "sat\nX float32 [1,2]\n0.5\n-0.25\nY float32 [1,1]\n3.0\n"),
    ("sat\n", "unknown\n"),
    ("", "error\n"),
])
def test_vnnlib2_runs_the_standard_cli(fake, tmp_path, stdout, want):
    (tmp_path / "q.vnnlib").write_text(V2_QUERY)
    text, argv, _ = fake(stdout, vnnlib="q.vnnlib", timeout=30)
    assert text == want
    assert argv[1] == "verify" and argv[2].endswith("q.vnnlib")
    assert argv[argv.index("--network") + 1] == f"acas={os.path.relpath(tmp_path / 'net.onnx', tmp_path)}"
    assert argv[argv.index("--timeout") + 1] in ("27", "28")  # whole seconds, below TIMEOUT
    assert "--json" not in argv


# --- VNN-LIB 2 through the real CLI -------------------------------------------------------------

def vnnlib2_cli():
    if not have("vnnlib"):
        pytest.skip("no vnnlib (the VNN-LIB 2 standard's parser) installed")
    r = subprocess.run([str(VENV / "bin" / "nnsmt"), "verify", "--help"], capture_output=True, text=True)
    if "--network" not in r.stdout:
        pytest.skip("nnsmt verify has no --network yet (the VNN-LIB 2 command-line interface)")


def acas_query_v2(v1_path):
    """test_prop.vnnlib (VNN-LIB 1.0, X_0..X_4, Y_0..Y_4) as a VNN-LIB 2 query over test_sat.onnx's
    [1,1,1,5] input and [1,5] output."""
    body = re.sub(r"\(declare-const [XY]_\d+ Real\)", "", v1_path.read_text())
    body = re.sub(r"X_(\d)", r"X[0,0,0,\1]", body)
    body = re.sub(r"Y_(\d)", r"Y[0,\1]", body)
    return textwrap.dedent("""\
        (vnnlib-version <2.0>)
        (declare-network acas
            (declare-input X float32 [1,1,1,5])
            (declare-output Y float32 [1,5])
        )
        """) + body


def parse_v2_assignment(lines):
    values, name, i = {}, None, 0
    for line in lines:
        m = re.fullmatch(r"(\w+) (\w+) \[([\d,]*)\]", line.strip())
        if m:
            name, i = m.group(1), 0
        else:
            values[f"{name}_{i}"] = float(line)
            i += 1
    return values


@pytest.mark.parametrize("net,want", [("test_sat.onnx", "sat"), ("test_unsat.onnx", "unsat")])
def test_vnnlib2_query_end_to_end(tmp_path, net, want):
    vnnlib2_cli()
    folder = need_shared("benchmarks", "vnncomp-test")
    text = acas_query_v2(folder / "test_prop.vnnlib")
    if want == "sat":  # gzipped, as VNN-COMP ships some queries
        query = tmp_path / "prop_v2.vnnlib.gz"
        query.write_bytes(gzip.compress(text.encode()))
    else:
        query = tmp_path / "prop_v2.vnnlib"
        query.write_text(text)
    text, _ = run_instance(tmp_path, folder / net, query)
    lines = text.splitlines()
    assert lines[0] == want, text
    if want == "sat":
        assert re.fullmatch(r"X \w+ \[1,1,1,5\]", lines[1]), text
        check_counterexample(folder / net, folder / "test_prop.vnnlib", parse_v2_assignment(lines[1:]))
