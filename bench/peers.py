"""Peer runners shared by the benches (bench/acasxu.py, bench/mnistfc.py): nnsmt, nnenum, Marabou.

Every tool runs one instance in its own process (its own session, so the whole process group
is killed at timeout + 10 s) and returns (status, seconds, counterexample or None, note).
Status is sat / unsat / unknown / timeout / error; everything but sat and unsat counts as
unknown in the summaries. A sat answer counts only with a counterexample that passes the
VNN-COMP check (`vnncomp_check`: onnxruntime on the float32 input, property within 1e-4).

- nnsmt: `python -m nnsmt.cli verify NET PROP --timeout T --json [extra]` in this venv.
- marabou: maraboupy through its Python API in this venv (`pip install maraboupy`, the `bench`
  extra); skipped when maraboupy is not importable.
- nnenum: not on PyPI; used from a checkout named by NNENUM_DIR (its `src/nnenum`), run by the
  python of NNENUM_PYTHON (default `python3`, best its own venv; see bench/README.md), the way
  its VNN-COMP script runs it: `python -m nnenum.nnenum NET PROP TIMEOUT RESULTFILE` with
  OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1. A small wrapper records the counterexample nnenum
  finds (its result file holds only holds/violated/timeout/error). NNENUM_PROCESSES, if set, is
  passed as its process count (default: nnenum's, every core).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KILL_GRACE = 10.0  # a tool is killed at its timeout + this


def vnncomp_check(onnx_path, prop, x) -> bool:
    """The VNN-COMP counterexample check: onnxruntime on float32 x, property within 1e-4."""
    from nnsmt.frontends import ort_evaluator
    x32 = np.asarray(x, dtype=np.float32).reshape(-1)
    y = np.asarray(ort_evaluator(onnx_path)(x32)).reshape(-1)
    env = {f"X_{i}": float(v) for i, v in enumerate(x32)} | {f"Y_{j}": float(v) for j, v in enumerate(y)}
    return prop.holds(env, tol=1e-4)


def run_child(cmd, timeout, env=None, cwd=None) -> tuple[subprocess.CompletedProcess | None, float]:
    """Run cmd in its own session; on timeout + KILL_GRACE kill its whole process group.
    Returns (completed process, or None when killed; wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + KILL_GRACE)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        return None, time.perf_counter() - t0
    dt = time.perf_counter() - t0
    try:  # leftover workers (nnenum's multiprocessing) go with the group
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), dt


def _last_line(text: str, default: str = "no output") -> str:
    return (text.strip().splitlines() or [default])[-1][:120]


# ---------------------------------------------------------------- nnsmt

def run_nnsmt(onnx_path, vnn_path, timeout, extra=()) -> tuple[str, float, list | None, str]:
    cmd = [sys.executable, "-m", "nnsmt.cli", "verify", str(onnx_path), str(vnn_path),
           "--timeout", str(timeout), "--json", *extra]
    p, dt = run_child(cmd, timeout)
    if p is None:
        return "timeout", dt, None, "killed"
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        return "error", dt, None, _last_line(p.stderr)
    x = (out.get("counterexample") or {}).get("x")
    BREAKDOWN.append(breakdown(out, dt))
    return out["status"], dt, x, out.get("reason", "")


BREAKDOWN: list[dict] = []  # one per nnsmt run, in order: where its time went (`breakdown`)


def breakdown(out: dict, wall: float) -> dict:
    """Where one nnsmt run's time went, from its --json stats: attack, bounds, exact replay of
    candidates, branching (the rest of planning: scores, queues), the exact leaf queries (the
    solver's time, summed over workers), and how many leaves needed one."""
    st = out.get("stats", {})
    plan = float(st.get("plan_s", 0.0))
    parts = {k: float(st.get(k, 0.0)) for k in ("attack_s", "bounds_s", "replay_s")}
    return {"status": out.get("status"), "engine": out.get("engine", ""), "wall_s": wall, **parts,
            "branch_s": max(0.0, plan - sum(parts.values())), "smt_s": float(st.get("solve_s", 0.0)),
            "smt_leaves": int(st.get("subqueries", 0)), "smt_answered": int(st.get("answered", 0))}


def print_breakdown(rows: list[dict] | None = None) -> None:
    """nnsmt's time by phase over the runs of this bench, and the leaves that needed SMT."""
    rows = BREAKDOWN if rows is None else rows
    if not rows:
        return
    tot = {k: sum(r[k] for r in rows) for k in ("wall_s", "attack_s", "bounds_s", "replay_s", "branch_s", "smt_s")}
    print(f"\nnnsmt time by phase over {len(rows)} runs (seconds; SMT is solver time summed over workers):")
    print("  " + "  ".join(f"{k[:-2]} {v:.1f}" for k, v in tot.items()))
    smt = [r for r in rows if r["smt_leaves"]]
    print(f"  runs that left leaves to SMT: {len(smt)}; leaves {sum(r['smt_leaves'] for r in smt)}, "
          f"answered {sum(r['smt_answered'] for r in smt)}; runs decided by bounds, attack or replay "
          f"alone: {sum(1 for r in rows if not r['smt_leaves'] and r['status'] in ('sat', 'unsat'))}")


# ---------------------------------------------------------------- Marabou

MARABOU_CHILD = r"""
import json, sys, time
from fractions import Fraction
from maraboupy import Marabou, MarabouCore
from maraboupy.MarabouUtils import Equation
from nnsmt.vnnlib import load_vnnlib
from nnsmt.terms import And, Or, Cmp, linear_form
onnx, vnn, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
prop = load_vnnlib(vnn)
boxes = prop.input_boxes()
t0 = time.time()

def eq_of(atom, ovars):
    lf, rf = linear_form(atom.lhs), linear_form(atom.rhs)
    coef = {k: lf[0].get(k, 0) - rf[0].get(k, 0) for k in set(lf[0]) | set(rf[0])}
    const = lf[1] - rf[1]  # sum coef*Y + const  op  0
    if atom.op in ("<=", "<"):
        sign = 1
    elif atom.op in (">=", ">"):
        sign = -1
    else:
        raise SystemExit("equality atom")
    e = Equation(MarabouCore.Equation.LE)
    for k, v in coef.items():
        if v:
            e.addAddend(float(sign * v), int(ovars[int(k[2:])]))
    e.setScalar(float(-sign * const))
    return e

status, x = "unknown", None
for lo, hi in boxes:
    left = timeout - (time.time() - t0)
    if left <= 1:
        break
    n = Marabou.read_onnx(onnx)
    iv, ov = n.inputVars[0].reshape(-1), n.outputVars[0].reshape(-1)
    for i, v in enumerate(iv):
        n.setLowerBound(int(v), float(lo[i]))
        n.setUpperBound(int(v), float(hi[i]))
    for _, t in prop.asserts:
        names = set()
        stack = [t]
        while stack:
            s = stack.pop()
            if isinstance(s, (And, Or)):
                stack.extend(s.args)
            elif isinstance(s, Cmp):
                for side in (s.lhs, s.rhs):
                    f = linear_form(side)
                    names |= set(f[0]) if f else set()
        if not any(k.startswith("Y_") for k in names):
            continue
        conj = t.args if isinstance(t, And) else (t,)
        for c in conj:
            if isinstance(c, Cmp):
                n.addEquation(eq_of(c, ov))
            elif isinstance(c, Or):
                n.addDisjunctionConstraint([[eq_of(a, ov) for a in (d.args if isinstance(d, And) else (d,))]
                                            for d in c.args])
            else:
                raise SystemExit("unsupported assert")
    opts = Marabou.createOptions(timeoutInSeconds=max(1, int(left)), verbosity=0)
    res, vals, stats = n.solve(verbose=False, options=opts)
    if res == "sat":
        status, x = "sat", [vals[int(v)] for v in iv]
        break
    if res == "unsat":
        status = "unsat"
        continue
    status = "unknown"
    break
print(json.dumps({"status": status, "x": x}))
"""


def marabou_available() -> str | None:
    """None when usable, else the line saying why it is skipped."""
    if importlib.util.find_spec("maraboupy") is None:
        return "marabou: skipped, maraboupy is not importable (enable: pip install maraboupy, the `bench` extra)"
    return None


def run_marabou(onnx_path, vnn_path, timeout) -> tuple[str, float, list | None, str]:
    """Marabou gets the property through its Python API: input bounds, output atoms as
    (disjunctions of) inequalities (strict ones closed, as Marabou has no strict inequalities),
    and a disjunction of input boxes as one run per box."""
    p, dt = run_child([sys.executable, "-c", MARABOU_CHILD, str(onnx_path), str(vnn_path), str(timeout)], timeout)
    if p is None:
        return "timeout", dt, None, "killed"
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return "error", dt, None, _last_line(p.stderr)
    out = json.loads(lines[-1])
    return out["status"], dt, out["x"], ""


# ---------------------------------------------------------------- nnenum

# Runs nnenum's own entry point (nnenum.nnenum.main, as its VNN-COMP run_instance.sh does) and
# records what enumerate_network returned, for the counterexample: nnenum's result file says only
# holds/violated/timeout/error, and it prints the input only when it has at most 10 entries.
NNENUM_CHILD = r"""
import json, sys
import nnenum.nnenum as m
onnx, vnn, timeout, resfile, wfile = sys.argv[1:6]
seen = {}
orig = m.enumerate_network
def recording(init_box, network, spec):
    res = orig(init_box, network, spec)
    seen["result"] = res.result_str
    if res.result_str == "unsafe":
        seen["x"] = [float(v) for v in res.cinput]
    return res
m.enumerate_network = recording
sys.argv = ["nnenum", onnx, vnn, timeout, resfile] + sys.argv[6:]
try:
    m.main()
finally:
    with open(wfile, "w") as f:
        json.dump(seen, f)
"""


def nnenum_setup() -> tuple[str, Path] | str:
    """(python, checkout) when NNENUM_DIR names a checkout, else the line saying how to enable it."""
    d = os.environ.get("NNENUM_DIR")
    if not d:
        return ("nnenum: skipped, set NNENUM_DIR to a checkout of github.com/stanleybak/nnenum and "
                "NNENUM_PYTHON to a python with its dependencies (see bench/README.md)")
    path = Path(d).expanduser().resolve()
    if not (path / "src" / "nnenum" / "nnenum.py").is_file():
        return f"nnenum: skipped, NNENUM_DIR={d} has no src/nnenum/nnenum.py (see bench/README.md)"
    return os.environ.get("NNENUM_PYTHON", "python3"), path


def nnenum_available() -> str | None:
    s = nnenum_setup()
    return s if isinstance(s, str) else None


def nnenum_processes() -> str:
    return os.environ.get("NNENUM_PROCESSES", "") or f"default ({os.cpu_count()})"


def run_nnenum(onnx_path, vnn_path, timeout) -> tuple[str, float, list | None, str]:
    setup = nnenum_setup()
    if isinstance(setup, str):
        return "error", 0.0, None, setup
    python, path = setup
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env |= {"PYTHONPATH": str(path / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="nnenum-") as tmp:
        resfile, wfile = Path(tmp) / "result.txt", Path(tmp) / "witness.json"
        cmd = [python, "-c", NNENUM_CHILD, str(Path(onnx_path).resolve()), str(Path(vnn_path).resolve()),
               str(timeout), str(resfile), str(wfile)]
        if os.environ.get("NNENUM_PROCESSES"):
            cmd.append(os.environ["NNENUM_PROCESSES"])
        p, dt = run_child(cmd, timeout, env=env, cwd=tmp)
        if p is None:
            return "timeout", dt, None, "killed"
        word = resfile.read_text().strip() if resfile.is_file() else ""
        seen = json.loads(wfile.read_text() or "{}") if wfile.is_file() else {}
    if word == "holds":
        return "unsat", dt, None, ""
    if word == "violated":
        x = seen.get("x")
        return "sat", dt, x, "" if x is not None else f"no counterexample ({seen.get('result', '?')})"
    if word == "timeout":
        return "timeout", dt, None, ""
    if word == "error" or not word:
        return "error", dt, None, _last_line(p.stderr or p.stdout, "no result file")
    return "unknown", dt, None, word


# ---------------------------------------------------------------- running and summing up

RUNNERS = {"nnenum": run_nnenum, "marabou": run_marabou}
AVAILABLE = {"nnenum": nnenum_available, "marabou": marabou_available}


def asked_tools(ap, text: str, known) -> list[str]:
    """The comma-separated --tools, each one of `known` (else the parser's usage error)."""
    asked = [t.strip() for t in text.split(",") if t.strip()]
    if bad := [t for t in asked if t not in known]:
        ap.error(f"unknown tools: {', '.join(bad)} (choose from {', '.join(known)})")
    return asked


def timeout_label(given, timeouts) -> str:
    """How the header names the timeouts: the one given, or the competition's per instance."""
    if given is not None:
        return f"{given:.0f} s"
    return f"the competition's ({', '.join(sorted({f'{t:.0f}' for t in timeouts}))} s)"


def usable(tools: list[str]) -> list[str]:
    """The tools that can run here; prints one line for each skipped peer."""
    out = []
    for t in tools:
        why = AVAILABLE[t]() if t in AVAILABLE else None
        if why:
            print(f"  {why}")
        else:
            out.append(t)
    return out


def run_tool(tool, onnx_path, vnn_path, prop, timeout, nnsmt_extra=()):
    """One instance under one tool -> (status, seconds, counterexample ok, note)."""
    if tool.startswith("nnsmt"):
        st, dt, x, why = run_nnsmt(onnx_path, vnn_path, timeout, nnsmt_extra)
    else:
        st, dt, x, why = RUNNERS[tool](onnx_path, vnn_path, timeout)
    ok = True
    if st == "sat":
        ok = x is not None and vnncomp_check(onnx_path, prop, x)
    return st, dt, ok, why


def cell(st, dt, ok) -> str:
    return f"{st}{'' if ok else ' BADCEX'} {dt:7.1f}s"


def summarize(tools: list[str], res: dict, ref: str | None = None) -> None:
    """res[tool] = list of (status, seconds, cex ok, expected, note), one per instance, same order.

    Per tool: solved, sat, unsat, unknown (timeout, error, unknown), wrong (against the expected
    answer and against another tool's checked answer; a sat without a checked counterexample is
    wrong), total and median time; then per peer the ratio of total times against `ref` (the
    first nnsmt tool by default), over all instances and over those both solved."""
    if not tools:
        return
    n = len(res[tools[0]])
    print()
    print(f"  {'tool':12} {'solved':>6} {'sat':>4} {'unsat':>5} {'unknown':>7} {'wrong':>5} "
          f"{'total s':>9} {'median s':>8}")
    for t in tools:
        rs = res[t]
        wrong = 0
        for i, (st, dt, ok, exp, _) in enumerate(rs):
            bad = (st in ("sat", "unsat") and exp in ("sat", "unsat") and st != exp) or not ok
            for o in tools:  # only the other tool's checked answers count against this one
                if o == t:
                    continue
                so, _, o_ok = res[o][i][:3]
                bad |= st in ("sat", "unsat") and so in ("sat", "unsat") and so != st and o_ok
            wrong += bad
        solved = sum(st in ("sat", "unsat") for st, *_ in rs)
        times = [d for _, d, *_ in rs]
        print(f"  {t:12} {solved:6} {sum(s == 'sat' for s, *_ in rs):4} {sum(s == 'unsat' for s, *_ in rs):5} "
              f"{sum(s not in ('sat', 'unsat') for s, *_ in rs):7} {wrong:5} {sum(times):9.1f} "
              f"{float(np.median(times)) if times else 0.0:8.1f}")
    ref = ref or next((t for t in tools if t.startswith("nnsmt")), tools[0])
    for other in tools:
        if other == ref:
            continue
        t_ref, t_o = (sum(d for _, d, *_ in res[t]) for t in (ref, other))
        both = [i for i in range(n) if res[ref][i][0] in ("sat", "unsat") and res[other][i][0] in ("sat", "unsat")]
        b_ref = sum(res[ref][i][1] for i in both)
        b_o = sum(res[other][i][1] for i in both)
        on_both = (f"{b_o:.1f} / {b_ref:.1f} s = {b_o / max(b_ref, 1e-9):.2f}x" if both else "-")
        print(f"  {other} / {ref}: total time {t_o:.1f} / {t_ref:.1f} s = {t_o / max(t_ref, 1e-9):.2f}x; "
              f"on the {len(both)} both solved {on_both}")


CERTIFY_HELP = ("after the timed runs, write a certificate for each of nnsmt's unsat answers "
                "(verify --certificate, not timed above) and check it with check-certificate --no-fallback")


def certify(rows, backend: str | None = None) -> None:
    """rows: (network path, property path, name, timeout) of nnsmt's unsat answers. Each runs
    again with --certificate (not timed with the bench's runs), then check-certificate
    --no-fallback: every bounds leaf must check by the independent bounds alone, and the SMT
    leaves by a solver (`backend`, z3 by default)."""
    print(f"\ncertificates for nnsmt's {len(rows)} unsat answers (verify --certificate, then "
          "check-certificate --no-fallback):")
    print(f"  {'instance':26} {'verify':>8} {'leaves':>7} {'KB':>6} {'check':>8}  result")
    ok, t_check = 0, 0.0
    extra = ["--backend", backend] if backend else []
    with tempfile.TemporaryDirectory() as tmp:
        for net, prop, name, timeout in rows:
            cert = Path(tmp) / "c.json.gz"
            cert.unlink(missing_ok=True)
            p, dv = run_child([sys.executable, "-m", "nnsmt.cli", "verify", str(net), str(prop),
                               "--timeout", str(timeout), "--certificate", str(cert), *extra], timeout)
            if p is None or not cert.exists():
                why = "killed" if p is None else (p.stdout.splitlines() or [""])[0]
                print(f"  {name:26} {dv:7.1f}s {'':>7} {'':>6} {'':>8}  no certificate ({why})", flush=True)
                continue
            q, dc = run_child([sys.executable, "-m", "nnsmt.cli", "check-certificate", str(cert),
                               "--no-fallback", "--json", *extra], 10 * timeout)
            rep = json.loads(q.stdout) if q is not None and q.stdout.startswith("{") else {}
            t_check += dc
            ok += rep.get("status") == "valid"
            print(f"  {name:26} {dv:7.1f}s {rep.get('leaves', 0):7d} {cert.stat().st_size / 1024:6.0f} {dc:7.1f}s  "
                  f"{rep.get('status', 'error')} {rep.get('reason', '')}", flush=True)
    print(f"  valid without fallback: {ok} of {len(rows)}; checking took {t_check:.1f} s in all")
