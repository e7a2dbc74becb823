"""Compile speed: MNIST-FC 784-256-256-10 + one property to SMT-LIB2 text, nnsmt vs pySMT;
convolutional networks (an MNIST CNN and a CIFAR-sized residual block) at two sizes.

    python bench/compile_speed.py [--repeat 3] [--no-solve] [--no-cnn] [--timeout 60]

Both sides start from the same loaded IR and property, build the same formula (exact rational
constants, ReLU as ite) and print it as SMT-LIB2; the baseline uses pySMT's formula manager and
its SMT-LIB printer. Prints the ratio (target: nnsmt >= 20x faster, and under 1 s). Then prints
per-instance solve times of the vnncomp-test instances on every installed backend.

CNNs (`--no-cnn` skips them): an MNIST CNN as in VNN-COMP (1x28x28 -> Conv 16 ch stride 2 ->
ReLU -> Conv 32 ch stride 2 -> ReLU -> Dense 100 -> ReLU -> Dense 10, random weights) and a
CIFAR-sized residual block (3x32x32 -> Conv 16 -> ReLU -> Conv 16 + skip -> ReLU -> Dense 10),
each also at half the channels: ONNX -> SMT-LIB2 time and peak memory, each in its own process
(target for the CIFAR block: < 5 s and < 1 GB; time per nonzero about the same at both sizes),
against pySMT building and printing the same formula where it finishes within --pysmt-timeout.
Then one small CNN property (an L-inf ball around a point, "can class 1 beat class 0?") solved
by `nnsmt verify` with its default engine.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks"
sys.path.insert(0, str(ROOT))

from nnsmt.backends.smtlib import to_smtlib  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.ir import Affine, Relu, Sparse  # noqa: E402
from nnsmt.queries.verify import verify_script  # noqa: E402
from nnsmt.terms import And, Cmp, Num, Or, Var, Add, Mul  # noqa: E402
from nnsmt.vnnlib import load_vnnlib  # noqa: E402


def nnsmt_compile(graph, prop) -> str:
    return to_smtlib(verify_script(graph, prop))


def pysmt_compile(graph, prop) -> str:
    """The same query built term by term with pySMT and printed by its SMT-LIB printer."""
    from pysmt.shortcuts import GE, GT, LE, LT, And as PAnd, Equals, Ite, Or as POr, Plus, Real, Symbol, Times
    from pysmt.smtlib.script import smtlibscript_from_formula
    from pysmt.typing import REAL
    fr = {}

    def const(v):
        q = Fraction(v)
        c = fr.get(q)
        if c is None:
            c = fr[q] = Real(q)
        return c

    inp = graph.inputs[0]
    env = {inp.name: [Symbol(f"X_{i}", REAL) for i in range(inp.dim)]}
    for n in graph.nodes:
        if isinstance(n, Affine):
            b = n.bias.value
            rows = [[] for _ in range(len(b))]
            for xn, w in n.terms():  # dense or sparse weights, one or several inputs
                x = env[xn]
                for i in range(len(b)):
                    cols, vals = w.row(i) if isinstance(w, Sparse) else (range(w.shape[1]), w.value[i])
                    rows[i] += [Times(const(c), x[j]) for j, c in zip(cols, vals) if c != 0]
            env[n.name] = [Plus(r + [const(b[i])]) for i, r in enumerate(rows)]
        elif isinstance(n, Relu):
            zero = const(0)
            env[n.name] = [Ite(GE(a, zero), a, zero) for a in env[n.x]]
    ys = env[graph.outputs[0]]
    var = {f"X_{i}": v for i, v in enumerate(env[inp.name])} | {f"Y_{j}": v for j, v in enumerate(ys)}
    ops = {"<=": LE, "<": LT, ">=": GE, ">": GT, "=": Equals}

    def conv(t):
        if isinstance(t, Var):
            return var[t.name]
        if isinstance(t, Num):
            return const(t.value)
        if isinstance(t, Add):
            return Plus([conv(a) for a in t.args])
        if isinstance(t, Mul):
            return Times([conv(a) for a in t.args])
        if isinstance(t, Cmp):
            return ops[t.op](conv(t.lhs), conv(t.rhs))
        if isinstance(t, And):
            return PAnd([conv(a) for a in t.args])
        if isinstance(t, Or):
            return POr([conv(a) for a in t.args])
        raise TypeError(t)

    formula = PAnd([conv(t) for _, t in prop.asserts])
    buf = io.StringIO()
    smtlibscript_from_formula(formula, logic="QF_LRA").serialize(buf, daggify=True)
    return buf.getvalue()


def timed(f, *a, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f(*a)
        best = min(best, time.perf_counter() - t0)
    return best, out


def compile_bench(repeat: int):
    net = BENCH / "mnistfc" / "mnist-net_256x2.onnx"
    vnn = BENCH / "mnistfc" / "prop_0_0.03.vnnlib"
    t_load, graph = timed(load_onnx, net, repeat=repeat)
    t_prop, prop = timed(load_vnnlib, vnn, repeat=repeat)
    t_ours, text = timed(nnsmt_compile, graph, prop, repeat=repeat)
    t_base, base_text = timed(pysmt_compile, graph, prop)
    print(f"MNIST-FC 784-256-256-10 + {vnn.name} -> SMT-LIB2 (best of {repeat} for nnsmt)")
    print(f"  load ONNX            {t_load:8.3f} s")
    print(f"  parse VNN-LIB        {t_prop:8.3f} s")
    print(f"  nnsmt build+print    {t_ours:8.3f} s   ({len(text) / 1e6:.1f} MB)")
    print(f"  nnsmt end to end     {t_load + t_prop + t_ours:8.3f} s   (target < 1 s)")
    print(f"  pySMT build+print    {t_base:8.3f} s   ({len(base_text) / 1e6:.1f} MB)")
    print(f"  ratio pySMT / nnsmt  {t_base / t_ours:8.1f} x   (target >= 20x)")


def solve_bench(timeout: float):
    from nnsmt.backends import available
    from nnsmt.backends.isolate import solve_isolated
    from nnsmt.frontends import ort_evaluator
    from nnsmt.validate import validate_counterexample
    from nnsmt.errors import ValidationError
    folder = BENCH / "vnncomp-test"
    rows = list(csv.DictReader(open(folder / "known.csv")))
    backends = [b for b, why in available().items() if why is None]
    print(f"\nvnncomp-test instances, timeout {timeout:.0f} s each")
    print(f"  {'instance':34} {'expected':8} " + " ".join(f"{b:>20}" for b in backends))
    for r in rows:
        g = load_onnx(folder / r["onnx"])
        prop = load_vnnlib(folder / r["vnnlib"])
        script = verify_script(g, prop)
        cells = []
        for name in backends:
            t0 = time.perf_counter()
            res = solve_isolated(name, script, timeout)  # hard deadline, as `nnsmt verify --timeout`
            status = res.status
            if status == "sat":
                try:
                    validate_counterexample(g, prop, res.model, ort_evaluator(folder / r["onnx"]))
                except ValidationError:
                    status = "error"
            mark = "" if status in ("unknown",) or status == r["expected"] else " WRONG"
            cells.append(f"{status}{mark} {time.perf_counter() - t0:7.2f}s")
        print(f"  {r['onnx'] + ' ' + r['vnnlib']:34} {r['expected']:8} " + " ".join(f"{c:>20}" for c in cells))


# --- convolutional networks ----------------------------------------------------------------

def conv_model(kind: str, scale: int, seed: int = 0):
    """(ONNX model, input shape): `mnist` CNN or `cifar` residual block, channels / scale."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def w(name, *shape):
        fan = int(np.prod(shape[1:]))
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32), name))
        return name

    def conv(x, out, cin, cout, k, stride, pad):
        nodes.append(helper.make_node("Conv", [x, w(out + "_W", cout, cin, k, k), w(out + "_B", cout)], [out],
                                      strides=[stride, stride], pads=[pad] * 4))
        return out

    if kind == "mnist":
        shape, c1, c2 = [1, 1, 28, 28], 16 // scale, 32 // scale
        conv("x", "c1", 1, c1, 4, 2, 1)
        nodes.append(helper.make_node("Relu", ["c1"], ["r1"]))
        conv("r1", "c2", c1, c2, 4, 2, 1)
        nodes.append(helper.make_node("Relu", ["c2"], ["r2"]))
        nodes.append(helper.make_node("Flatten", ["r2"], ["f"]))
        nodes.append(helper.make_node("Gemm", ["f", w("d1_W", 100, c2 * 7 * 7), w("d1_B", 100)], ["d1"], transB=1))
        nodes.append(helper.make_node("Relu", ["d1"], ["r3"]))
        nodes.append(helper.make_node("Gemm", ["r3", w("d2_W", 10, 100), w("d2_B", 10)], ["y"], transB=1))
    else:
        shape, c = [1, 3, 32, 32], 16 // scale
        conv("x", "c1", 3, c, 3, 1, 1)
        nodes.append(helper.make_node("Relu", ["c1"], ["r1"]))
        conv("r1", "c2", c, c, 3, 1, 1)
        nodes.append(helper.make_node("Add", ["c2", "c1"], ["s"]))
        nodes.append(helper.make_node("Relu", ["s"], ["r2"]))
        nodes.append(helper.make_node("Flatten", ["r2"], ["f"]))
        nodes.append(helper.make_node("Gemm", ["f", w("d_W", 10, c * 32 * 32), w("d_B", 10)], ["y"], transB=1))
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    return m, shape


def ball_property(path: Path, x0: np.ndarray, eps: float, n_out: int = 10, target: int = 1) -> None:
    """VNN-LIB: X within eps of x0 (clipped to [0, 1]), and Y_target >= Y_0."""
    lines = [f"(declare-const X_{i} Real)" for i in range(x0.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x0.ravel().tolist()):
        lines += [f"(assert (>= X_{i} {max(v - eps, 0.0)!r}))", f"(assert (<= X_{i} {min(v + eps, 1.0)!r}))"]
    lines.append(f"(assert (>= Y_{target} Y_0))")
    path.write_text("\n".join(lines) + "\n")


ONE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
t0 = time.perf_counter()
if sys.argv[1] == "nnsmt":
    from nnsmt.backends.smtlib import to_smtlib
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    g, p = load_onnx(sys.argv[2]), load_vnnlib(sys.argv[3])
    t1 = time.perf_counter()
    text = to_smtlib(verify_script(g, p))
    nnz = sum(w.nnz if hasattr(w, "nnz") else w.value.size for n in g.nodes if hasattr(n, "terms")
              for _, w in n.terms())
else:
    sys.path.insert(0, sys.argv[4] + "/bench")
    from compile_speed import pysmt_compile
    from nnsmt.frontends import load_onnx
    from nnsmt.vnnlib import load_vnnlib
    g, p = load_onnx(sys.argv[2]), load_vnnlib(sys.argv[3])
    t1 = time.perf_counter()
    text = pysmt_compile(g, p)
    nnz = 0
t2 = time.perf_counter()
# peak resident memory of this process: VmHWM (ru_maxrss survives exec, so it would count the parent)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": t1 - t0, "emit_s": t2 - t1, "mb": len(text) / 1e6, "nnz": nnz, "peak_mb": peak}))
"""


def run_one(tool: str, net: Path, prop: Path, timeout: float) -> dict | None:
    import json
    import subprocess
    try:
        p = subprocess.run([sys.executable, "-c", ONE, tool, str(net), str(prop), str(ROOT)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        print(f"    {tool} failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def cnn_bench(pysmt_timeout: float, verify_timeout: float):
    import subprocess
    import tempfile
    import onnx
    out = Path(tempfile.mkdtemp(prefix="nnsmt-cnn-"))
    print("\nConvolutional networks -> SMT-LIB2 (each run in its own process; peak = its peak resident memory)")
    print(f"  {'network':24} {'nonzeros':>9} {'load':>7} {'emit':>7} {'us/nnz':>7} {'peak':>8} {'text':>8}"
          f" {'pySMT emit':>11} {'ratio':>7}")
    for kind in ("mnist", "cifar"):
        for scale in (2, 1):
            m, shape = conv_model(kind, scale)
            net, prop = out / f"{kind}{scale}.onnx", out / f"{kind}{scale}.vnnlib"
            onnx.save(m, net)
            ball_property(prop, np.random.default_rng(1).random(int(np.prod(shape))), 0.01)
            r = run_one("nnsmt", net, prop, 600)
            if r is None:
                print(f"  {kind} /{scale}: nnsmt did not finish")
                continue
            b = run_one("pysmt", net, prop, pysmt_timeout)
            base = f"{b['emit_s']:10.2f}s {b['emit_s'] / r['emit_s']:6.1f}x" if b else \
                f"{'> ' + format(pysmt_timeout, '.0f') + ' s':>11} {'-':>7}"
            name = f"{kind} ch/{scale}" if scale > 1 else f"{kind} (full)"
            print(f"  {name:24} {r['nnz']:9d} {r['load_s']:6.2f}s {r['emit_s']:6.2f}s "
                  f"{1e6 * r['emit_s'] / r['nnz']:7.2f} {r['peak_mb']:6.0f}MB {r['mb']:6.1f}MB {base}")
    m, shape = conv_model("mnist", 2)
    net, prop = out / "small.onnx", out / "small.vnnlib"
    onnx.save(m, net)
    import onnxruntime as ort
    x0 = np.random.default_rng(2).random(shape).astype(np.float32)
    y0 = ort.InferenceSession(str(net)).run(None, {"x": x0})[0].reshape(-1)
    a, b = int(np.argmax(y0)), int(np.argsort(y0)[-2])  # can the runner-up beat the winner?
    ball_property(prop, x0, 0.002, target=b)
    prop.write_text(prop.read_text().replace(f"(>= Y_{b} Y_0)", f"(>= Y_{b} Y_{a})"))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "nnsmt.cli", "verify", str(net), str(prop), "--timeout",
                        str(verify_timeout), "--json"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    import json
    try:
        d = json.loads(p.stdout)
        print(f"\nSmall CNN property (MNIST CNN ch/2, eps 0.002, Y_{b} >= Y_{a}): {d['status']} in {dt:.1f} s "
              f"by engine {d['engine']} ({'; '.join(d['notes'])})")
    except json.JSONDecodeError:
        print(f"\nSmall CNN property: verify failed: {p.stderr.strip()[-300:]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pysmt-timeout", type=float, default=300)
    ap.add_argument("--no-solve", action="store_true")
    ap.add_argument("--no-cnn", action="store_true")
    a = ap.parse_args()
    compile_bench(a.repeat)
    if not a.no_cnn:
        cnn_bench(a.pysmt_timeout, a.timeout)
    if not a.no_solve:
        solve_bench(a.timeout)
