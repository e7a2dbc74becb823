"""The `vnnlib:COMMAND` backend against the VNN-LIB stand-in verifier (PyPI vnnlib-test-solver),
configured per test to give each verdict and each kind of misbehaviour."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
from fractions import Fraction
from pathlib import Path

import pytest

from nnsmt import backends
from nnsmt.backends.smt2_command import find_binary
from nnsmt.errors import BackendUnavailable
from nnsmt.terms import And, Cmp, Num, Script, Var

from conftest import have, need_shared

SOLVER = find_binary("vnnlibTestSolver")
pytestmark = pytest.mark.skipif(SOLVER is None, reason="the stand-in verifier is not installed "
                                                       "(pip install vnnlib-test-solver)")
F = Fraction
# a counterexample of test_sat.onnx + test_prop.vnnlib (ACAS Xu property 3 on a small net):
# inside the input box, Y_0 is the smallest output by about 1e-3 (found by nnsmt, replayed)
SAT_X = [-0.30036014161403835, -0.004396749896388843, 0.49365155505430247, 0.3033055271057058,
         0.4626540478400545]


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON's escapes are TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def standin(tmp_path, result="sat", **rule) -> str:
    """A backend name for the stand-in answering every query with `result` and the rule's
    other keys (assignments, delay_seconds, stderr, exit_code, raw_stdout, crash)."""
    cfg = tmp_path / "standin.toml"
    lines = ['[solver]', 'name = "stand-in"', 'version = "2.0.1"', '', '[[rules]]', 'match = "*.vnnlib"',
             f"result = {_toml(result)}"] + [f"{k} = {_toml(v)}" for k, v in rule.items()]
    cfg.write_text("\n".join(lines) + "\n")
    return f"vnnlib:{shlex.quote(SOLVER)} --config {shlex.quote(str(cfg))}"


def bench(name):
    return str(need_shared("benchmarks", "vnncomp-test", name))


def script_of(net, prop):
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    return verify_script(load_onnx(bench(net)), load_vnnlib(bench(prop)))


@pytest.fixture(scope="module")
def tiny():
    """test_tiny.onnx with test_tiny.vnnlib (unsat: Y_0 >= 100 is out of reach): X [1], Y [1]."""
    return script_of("test_tiny.onnx", "test_tiny.vnnlib")


def solve(name, script, timeout=30.0):
    return backends.get_backend(name).solve(script, timeout=timeout)


# ---- the registry ----

def test_registered_and_refused_when_the_binary_is_missing(tmp_path):
    assert backends.known("vnnlib:anything --flag") and not backends.known("vnnlib:")
    with pytest.raises(BackendUnavailable, match="verifier 'no-such-verifier-xyz' not found on PATH"):
        backends.get_backend("vnnlib:no-such-verifier-xyz --fast")
    b = backends.get_backend(standin(tmp_path, "unsat"))
    assert b.argv[0] == SOLVER and b.argv[1:3] == ["--config", str(tmp_path / "standin.toml")]
    assert "vnnlib" in b.capabilities.features
    assert b.supports(frozenset({"nonlinear", "exp", "int", "optimize", "anything"})) is None


# ---- each verdict ----

def test_sat_gives_the_inputs_exactly_as_written(tmp_path, tiny):
    res = solve(standin(tmp_path, assignments={"X": [0.1], "Y": [-2.5]}, stderr="log: searching\nsat?"), tiny)
    assert res.status == "sat" and res.model == {"X_0": F(1, 10)}, res


def test_unsat_unknown_and_timed_out(tmp_path, tiny):
    res = solve(standin(tmp_path, "unsat"), tiny)
    assert res.status == "unsat" and res.reason == "", res
    res = solve(standin(tmp_path, "unknown"), tiny)
    assert (res.status, res.reason) == ("unknown", "the verifier said unknown")
    res = solve(standin(tmp_path, "timed-out"), tiny)
    assert (res.status, res.reason) == ("unknown", "timeout") and "killed" not in res.stats


def test_the_verifier_gets_whole_seconds_and_times_itself_out(tmp_path, tiny):
    """--timeout is an integer (the stand-in refuses 1.9 as a usage error): it waits 1 s of its
    5 s delay and answers timed-out before nnsmt's deadline (1.9 s + grace) kills it."""
    t0 = time.perf_counter()
    res = solve(standin(tmp_path, "sat", delay_seconds=5, assignments={"X": [0.5], "Y": [0.0]}), tiny,
                timeout=1.9)
    assert (res.status, res.reason) == ("unknown", "timeout") and "killed" not in res.stats, res
    assert 1.0 <= time.perf_counter() - t0 < 1.9 + 10


# ---- misbehaviour ----

@pytest.mark.parametrize("stdout, message", [
    ("sat\nX float32 [1]\n0.5\n0.7\nY float32 [1]\n0\n", "line 4: X is declared with 1 values, and this is one more"),
    ("sat\nY float32 [1]\n0\n", r"no values for input X float32 \[1\]"),
    ("sat\nX float32 [1]\nhalf\n", "line 3: value of X: 'half' is not a number"),
    ("sat\nX float32 [2]\n0.5\n0.5\n", r"line 2: X has shape \[2\], but the query declares \[1\]"),
    ("sat\nW float32 [1]\n0.5\n", "line 2: unknown variable 'W'"),
    ("sat\n", "no values for input X"),
    ("sat\nX float32 [1]\nnan\nY float32 [1]\n0\n", "line 3: value of X: 'nan' is not a number"),
])
def test_a_malformed_assignment_is_an_error_naming_the_line(tmp_path, tiny, stdout, message):
    res = solve(standin(tmp_path, "sat", raw_stdout=stdout), tiny)
    assert res.status == "error" and res.reason.startswith("malformed assignment on the verifier's stdout: "), res
    assert re.search(message, res.reason), res.reason


def test_an_exit_code_that_disagrees_with_the_verdict_is_an_error(tmp_path, tiny):
    res = solve(standin(tmp_path, "unsat", exit_code=3), tiny)
    assert (res.status, res.reason) == ("error", "exit code 3 disagrees with the verdict 'unsat'"), res
    res = solve(standin(tmp_path, "sat", exit_code=1, assignments={"X": [0.5], "Y": [0.0]}, stderr="oops"), tiny)
    assert res.status == "error" and res.reason == "exit code 1 disagrees with the verdict 'sat'; stderr: oops"
    res = solve(standin(tmp_path, "unsat", raw_stdout="", exit_code=2, stderr="license expired"), tiny)
    assert (res.status, res.reason) == ("error", "the verifier exited with code 2 without a verdict: license expired")


@pytest.mark.parametrize("stdout", ["I think it is fine\n", "", "SAT\n", "\nsat\n", "sat unsat\n"])
def test_unparseable_output_is_an_error(tmp_path, tiny, stdout):
    res = solve(standin(tmp_path, "unsat", raw_stdout=stdout), tiny)
    assert res.status == "error" and res.reason.startswith("unparseable verifier output: the first line"), res


def test_noise_on_stderr_does_not_matter(tmp_path, tiny):
    noise = "WARNING: sat\nunsat\nTraceback (most recent call last):\n" + "x" * 100_000
    assert solve(standin(tmp_path, "unsat", stderr=noise), tiny).status == "unsat"
    res = solve(standin(tmp_path, "sat", stderr=noise, assignments={"X": [-0.75], "Y": [1.0]}), tiny)
    assert res.status == "sat" and res.model == {"X_0": F(-3, 4)}


def test_a_crash_is_an_error_even_after_a_verdict(tmp_path, tiny):
    res = solve(standin(tmp_path, "unsat", crash=True, stderr="about to abort"), tiny)
    assert res.status == "error" and res.reason == "the verifier died of SIGABRT; stderr: about to abort", res
    res = solve(standin(tmp_path, "sat", crash=True, raw_stdout=""), tiny)
    assert (res.status, res.reason) == ("error", "the verifier died of SIGABRT")


def _gone(pid: int, within: float = 5.0) -> bool:
    """Whether process `pid` has exited (gone, or a zombie awaiting its reaper)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the verifier's processes")
@pytest.mark.parametrize("path", ["backend", "driver"])
def test_a_hang_past_the_timeout_is_killed_with_its_children(tmp_path, tiny, path):
    """A wrapper that drops --timeout and waits on the stand-in (60 s delay): at the deadline
    the whole process group goes, the stand-in (a grandchild holding stdout) included -- also
    through the driver, whose forked child is killed at the timeout plus its own grace."""
    standin(tmp_path, "sat", delay_seconds=60, assignments={"X": [0.5], "Y": [0.0]})  # writes the config
    cfg = tmp_path / "standin.toml"
    pidfile = tmp_path / "pid"
    # sh -c WRAPPER verify QUERY --network N=FILE --timeout 1: $1..$3 are the query and its network
    wrapper = (f"{shlex.quote(SOLVER)} --config {shlex.quote(str(cfg))} verify \"$1\" \"$2\" \"$3\" & "
               f"echo $! > {shlex.quote(str(pidfile))}; wait")
    name = f"vnnlib:sh -c {shlex.quote(wrapper)}"
    t0 = time.perf_counter()
    if path == "backend":
        res = solve(name, tiny, timeout=1.0)
        assert (res.status, res.reason) == ("unknown", "timeout") and res.stats.get("killed") == 1.0, res
    else:
        from nnsmt.engine.driver import solve as drive_one
        from nnsmt.frontends import load_onnx
        from nnsmt.queries.verify import VerifyQuery
        from nnsmt.vnnlib import load_vnnlib
        q = VerifyQuery(load_onnx(bench("test_tiny.onnx")), load_vnnlib(bench("test_tiny.vnnlib")))
        o = drive_one(q, name, timeout=1.0)
        assert (o.status, o.reason) == ("unknown", "timeout"), o
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0 + 10  # a bound, not a benchmark: not the stand-in's 60 s
    pid = int(pidfile.read_text())
    survived = not _gone(pid)
    if survived:
        os.kill(pid, signal.SIGKILL)  # do not leave it behind
    assert not survived, "the stand-in survived the deadline"


# ---- what the verifier is asked ----

def test_the_query_is_the_property_over_the_models_shapes(tmp_path):
    from nnsmt.backends.vnnlib_command import query_of
    from nnsmt.queries.verify import restrict
    script = script_of("test_sat.onnx", "test_prop.vnnlib")
    text, nets, decls = query_of(script)
    assert nets == {"N": str(Path(bench("test_sat.onnx")).resolve())}
    assert "(declare-input X float32 [1,1,1,5])" in text and "(declare-output Y float32 [1,5])" in text
    assert "(assert (<= X[0,0,0,0] -0.29855281193475053))" in text and "(assert (<= Y[0,0] Y[0,4]))" in text
    assert [(d.name, off) for d, off in decls] == [("X", 0), ("Y", 0)]
    box = ([F(-3, 10)] + [F(0)] * 4, [F(-299, 1000)] + [F(1, 2)] * 4)
    text2, _, _ = query_of(restrict(script, box, 1, 2))
    assert text2.startswith(text.rstrip("\n")) and text2.count("(assert ") == text.count("(assert ") + 1
    assert "(assert (and (>= X[0,0,0,0] -0.3) (<= X[0,0,0,0] -0.299) (>= X[0,0,0,1] 0.0)" in text2
    if have("vnnlib"):
        import vnnlib
        vnnlib.parse_query_string(text2)


VNNLIB2 = """(vnnlib-version <2.0>)
(declare-network f
    (declare-input A float32 [1])
    (declare-output B float32 [1]))
(declare-network g
    (declare-input C float32 [1])
    (declare-output D float32 [1]))
(assert (>= B[0] 100.0))
(assert (<= (+ A[0] C[0]) 1.0))
"""


def v2_script(tmp_path, asserts=()):
    """A VNN-LIB 2 script as the standard-query path builds it: two copies of test_tiny,
    inputs at X_0 (A) and X_1 (C), outputs at Y_0 (B) and Y_1 (D)."""
    q = tmp_path / "two.vnnlib"
    q.write_text(VNNLIB2)
    net = bench("test_tiny.onnx")
    meta = {"query": str(q), "networks": {"f": net, "g": net},
            "decls": [["A", "float32", [1], "input", "f", 0], ["B", "float32", [1], "output", "f", 0],
                      ["C", "float32", [1], "input", "g", 1], ["D", "float32", [1], "output", "g", 1]]}
    return Script(("X_0", "X_1"), (), tuple(asserts), meta=meta)


def test_a_vnnlib2_script_maps_each_variable_to_its_flat_names(tmp_path):
    """The stand-in checks --network names every declared network; A and C come back as X_0
    and X_1 (their offsets)."""
    name = standin(tmp_path, "sat", assignments={"A": [0.5], "B": [100.0], "C": [-0.25], "D": [0.0]})
    res = solve(name, v2_script(tmp_path))
    assert res.status == "sat" and res.model == {"X_0": F(1, 2), "X_1": F(-1, 4)}, res
    res = solve(standin(tmp_path, "sat", raw_stdout="sat\nC float32 [1]\n3\nA float32 [1]\n2\n"), v2_script(tmp_path))
    assert res.status == "sat" and res.model == {"X_0": F(2), "X_1": F(3)}, res


def test_a_vnnlib2_split_box_is_added_to_the_query(tmp_path):
    from nnsmt.backends.vnnlib_command import query_of
    box = And((Cmp(">=", Var("X_1"), Num(F(-1, 8))), Cmp("<=", Var("X_1"), Num(F(1, 4)))))
    text, nets, _ = query_of(v2_script(tmp_path, [("split_box", box)]))
    assert text.startswith(VNNLIB2) and text.endswith("(assert (and (>= C[0] -0.125) (<= C[0] 0.25)))\n")
    assert set(nets) == {"f", "g"}
    if have("vnnlib"):
        import vnnlib
        vnnlib.parse_query_string(text)


def test_scripts_it_cannot_ask_are_errors_not_exceptions(tmp_path, tiny):
    name = standin(tmp_path, "unsat")
    other = Script(("x",), (), (), meta={"query": "robustness"})
    res = solve(name, other)
    assert res.status == "error" and "answers verification queries; robustness scripts are not one" in res.reason
    not_onnx = Script(tiny.decls, tiny.defs, tiny.asserts, meta=tiny.meta | {"network": str(tmp_path / "net.pt")})
    res = solve(name, not_onnx)
    assert res.status == "error" and res.reason.startswith("cannot read the network"), res
    third = Script(tiny.decls, tiny.defs, (("prop_l3", Cmp("<=", Var("X_0"), Num(F(1, 3)))),), meta=tiny.meta)
    res = solve(name, third)
    assert res.status == "error" and "constant 1/3" in res.reason and "no exact decimal" in res.reason, res


# ---- the public path: the driver and the CLI ----

def test_through_the_driver_sat_is_replayed_and_a_wrong_one_is_not_sat(tmp_path):
    from nnsmt.engine.driver import solve as drive_one
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.verify import VerifyQuery
    from nnsmt.vnnlib import load_vnnlib
    q = VerifyQuery(load_onnx(bench("test_sat.onnx")), load_vnnlib(bench("test_prop.vnnlib")))
    o = drive_one(q, standin(tmp_path, "sat", assignments={"X": SAT_X, "Y": [0.0] * 5}), timeout=30)
    assert o.status == "sat" and [float(v) for v in o.witness.x] == SAT_X, o
    wrong = [0.0] + SAT_X[1:]  # X_0 = 0 is outside the property's box
    o = drive_one(q, standin(tmp_path, "sat", assignments={"X": wrong, "Y": [0.0] * 5}), timeout=30)
    assert o.status == "error" and "fails the replay" in o.reason, o
    tiny_q = VerifyQuery(load_onnx(bench("test_tiny.onnx")), load_vnnlib(bench("test_tiny.vnnlib")))
    assert drive_one(tiny_q, standin(tmp_path, "unsat"), timeout=30).status == "unsat"


def test_cli_verify_with_the_standin(tmp_path, capsys):
    from nnsmt.cli import main
    net, prop = bench("test_sat.onnx"), bench("test_prop.vnnlib")
    right = standin(tmp_path, "sat", assignments={"X": SAT_X, "Y": [0.0] * 5})
    code = main(["verify", net, prop, "--backend", right, "--engine", "plain", "--json", "--timeout", "30"])
    d = json.loads(capsys.readouterr().out)
    assert code == 10 and d["status"] == "sat" and d["backend"] == right
    assert d["counterexample"]["validated"] == ["exact", "onnxruntime"] and d["counterexample"]["x"] == SAT_X
    (tmp_path / "w").mkdir()
    wrong = standin(tmp_path / "w", "sat", assignments={"X": [0.0] + SAT_X[1:], "Y": [0.0] * 5})
    code = main(["verify", net, prop, "--backend", wrong, "--engine", "plain", "--json", "--timeout", "30"])
    d = json.loads(capsys.readouterr().out)
    assert code != 10 and d["status"] == "error" and "fails the replay" in d["reason"], d
