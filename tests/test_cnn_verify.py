"""Known answers on small CNNs and a residual block (ONNX fixtures exported by torch: Conv, folded
BatchNorm, ReLU, MaxPool, a skip connection): properties whose answers follow from the exact
value at a point or from sound interval bounds, through `nnsmt verify` (default engine),
`compile`, `diff`, `batch`, `stable` and `compress`.

At a point x0 with exact output y0 (`evaluate_exact`): on the degenerate box X = x0,
"Y_0 >= y0_0" is sat (x0 itself, equality) and "Y_0 > y0_0" unsat. On a small box around x0,
"Y_0 >= t" is unsat for t above the box's interval upper bound of Y_0 (bounds are sound) and
sat for t below y0_0 (x0 is in the box).
"""

import csv
import json
from fractions import Fraction as F

import numpy as np
import pytest

from nnsmt.bounds import box_interval, propagate_bounds
from nnsmt.cli import main
from nnsmt.interpret import evaluate_exact

from conftest import ROOT, have, solver_backend

OPS = ROOT / "tests" / "fixtures" / "onnx_ops"
NETS = ["torch_residual_block", "torch_conv_bn_relu_maxpool"]
EPS = F(1, 64)  # half-width of the small box


def dec(q: F) -> str:
    """The exact decimal of a rational whose denominator is 2^a 5^b (VNN-LIB numbers are read
    exactly): a dyadic output of the network, or thousandths."""
    q = F(q)
    k = next(k for k in range(4096) if (10 ** k) % q.denominator == 0)
    digits = str(abs(q.numerator) * (10 ** k // q.denominator)).rjust(k + 1, "0")
    s = f"{digits[:-k]}.{digits[-k:]}" if k else digits
    return "-" + s if q < 0 else s


def prop(path, lo, hi, m: int, atom: str):
    n = len(lo)
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + [f"(declare-const Y_{j} Real)" for j in range(m)]
    for i in range(n):
        lines += [f"(assert (>= X_{i} {dec(lo[i])}))", f"(assert (<= X_{i} {dec(hi[i])}))"]
    path.write_text("\n".join(lines + [f"(assert {atom})"]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Per network: the point, its exact output, the thresholds and the four properties."""
    from nnsmt.frontends import load_onnx
    out = {}
    for name in NETS:
        d = tmp_path_factory.mktemp(name)
        g = load_onnx(OPS / f"{name}.onnx")
        n = g.inputs[0].dim
        x0 = [F((5 * i) % 16 - 8, 16) for i in range(n)]  # sixteenths in [-1/2, 1/2)
        y0 = evaluate_exact(g, {"x": x0})[g.outputs[0]]
        m = len(y0)
        lo, hi = [v - EPS for v in x0], [v + EPS for v in x0]
        iv = propagate_bounds(g, box_interval(lo, hi), "interval")[g.outputs[0]]
        above = F(int(np.ceil(iv.hi[0] * 1000)) + 1, 1000)  # beyond the sound upper bound
        below = F(int(np.floor(float(y0[0]) * 1000)) - 1, 1000)  # under the value at x0
        assert below < y0[0] <= iv.hi[0] < above
        out[name] = {
            "graph": g, "x0": x0, "y0": y0, "lo": lo, "hi": hi, "above": above, "below": below,
            "onnx": str(OPS / f"{name}.onnx"),
            "ge": prop(d / "ge.vnnlib", x0, x0, m, f"(>= Y_0 {dec(y0[0])})"),
            "gt": prop(d / "gt.vnnlib", x0, x0, m, f"(> Y_0 {dec(y0[0])})"),
            "box_unsat": prop(d / "box_unsat.vnnlib", lo, hi, m, f"(>= Y_0 {dec(above)})"),
            "box_sat": prop(d / "box_sat.vnnlib", lo, hi, m, f"(>= Y_0 {dec(below)})"),
        }
    return out


def verify(capsys, *argv) -> tuple[int, dict]:
    code = main(["verify", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def exact_y0(c, d) -> F:
    """The exact Y_0 of a verify witness (recomputed from its exact input)."""
    x = [F(v) for v in d["counterexample"]["x_exact"]]
    return evaluate_exact(c["graph"], {"x": x})[c["graph"].outputs[0]][0]


@pytest.mark.parametrize("name", NETS)
def test_a_point_reaches_its_own_output_and_nothing_above(name, cases, capsys):
    c = cases[name]
    code, d = verify(capsys, c["onnx"], c["ge"])
    assert code == 10 and d["status"] == "sat"
    assert d["counterexample"]["validated"] == ["exact", "onnxruntime"]
    assert [F(v) for v in d["counterexample"]["x_exact"]] == c["x0"]
    assert exact_y0(c, d) == c["y0"][0]  # the witness meets the bound with equality, exactly
    code, d = verify(capsys, c["onnx"], c["gt"])
    assert code == 0 and d["status"] == "unsat"


@pytest.mark.parametrize("name", NETS)
def test_thresholds_on_a_small_box_around_the_point(name, cases, capsys):
    c = cases[name]
    code, d = verify(capsys, c["onnx"], c["box_unsat"])
    assert code == 0 and d["status"] == "unsat"
    code, d = verify(capsys, c["onnx"], c["box_sat"])
    assert code == 10 and d["counterexample"]["validated"] == ["exact", "onnxruntime"]
    x = [F(v) for v in d["counterexample"]["x_exact"]]
    assert all(a <= v <= b for a, v, b in zip(c["lo"], x, c["hi"]))
    assert exact_y0(c, d) >= c["below"]


@pytest.mark.parametrize("engine, backend", [("bounded", "z3"), ("plain", "cvc5")])
def test_a_solver_query_finds_the_point_too(cases, capsys, engine, backend):
    """No candidates from bounds: the solver's own model is the witness (the degenerate box
    forces it to x0) and it replays exactly. (z3 on the plain encoding of this query does not
    finish in minutes; cvc5 takes a second.)"""
    solver_backend(backend)
    c = cases["torch_residual_block"]
    code, d = verify(capsys, c["onnx"], c["ge"], "--engine", engine, "--backend", backend, "--timeout", "120")
    assert code == 10 and d["counterexample"]["validated"] == ["exact", "onnxruntime"]
    assert not any("no solver ran" in n for n in d["notes"])
    assert exact_y0(c, d) == c["y0"][0]


def test_compile_diff_and_batch_agree_on_a_residual_cnn(cases, capsys, tmp_path):
    c = cases["torch_residual_block"]
    z3 = pytest.importorskip("z3")
    # compile: the SMT-LIB text, read by z3's own parser, decides the same way (the bounded
    # encoding: z3 does not finish the plain one of this network in minutes, see above)
    for key, want in (("gt", z3.unsat), ("box_sat", z3.sat)):
        out = tmp_path / f"{key}.smt2"
        assert main(["compile", c["onnx"], "--property", c[key], "--encoding", "bounded", "-o", str(out)]) == 0
        s = z3.Solver()
        s.set("timeout", 60_000)
        s.from_string(out.read_text())
        assert s.check() == want
        plain = tmp_path / f"{key}_plain.smt2"
        assert main(["compile", c["onnx"], "--property", c[key], "-o", str(plain)]) == 0
        assert len(z3.parse_smt2_string(plain.read_text())) > 0  # the plain text parses too
    capsys.readouterr()
    # diff: z3 and cvc5 agree, the sat model replays on both
    solver_backend("cvc5")
    for key, want in (("gt", "unsat"), ("box_sat", "sat")):
        code = main(["diff", c["onnx"], c[key], "--backends", "z3,cvc5", "--json"])
        d = json.loads(capsys.readouterr().out)
        assert d["consensus"] == want and not d["disagreement"] and code == {"unsat": 0, "sat": 10}[want]
        assert [r["status"] for r in d["rows"]] == [want, want]
    # batch: the same answers from a VNN-COMP instance list
    inst = tmp_path / "instances.csv"
    inst.write_text("".join(f"{c['onnx']},{c[k]},120\n" for k in ("gt", "box_sat", "ge", "box_unsat")))
    res = tmp_path / "results.csv"
    code = main(["batch", str(inst), "-o", str(res), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["counts"] == {"unsat": 2, "sat": 2}
    assert [r["status"] for r in csv.DictReader(open(res))] == ["unsat", "sat", "sat", "unsat"]


def box_file(tmp_path, c) -> str:
    p = tmp_path / "box.json"
    p.write_text(json.dumps({"lo": [dec(v) for v in c["lo"]], "hi": [dec(v) for v in c["hi"]]}))
    return str(p)


def test_stable_neurons_of_a_conv_network_hold_on_samples(cases, capsys, tmp_path):
    """`nnsmt stable` over the small box, and the API's per-neuron states checked against exact
    pre-activations at random points of the box (an independent oracle)."""
    from nnsmt.domain import load_domain
    from nnsmt.engine.driver import solver
    from nnsmt.queries.stability import ACTIVE, INACTIVE, StabilityOptions, classify
    c = cases["torch_conv_bn_relu_maxpool"]
    box = box_file(tmp_path, c)
    code = main(["stable", c["onnx"], "--domain", box, "--json", "--timeout", "60"])
    d = json.loads(capsys.readouterr().out)
    counts = d["results"][0]["counts"]
    assert code == 0 and counts["unknown"] == 0 and counts["total"] == 144 + 72 + 36
    g = c["graph"]
    st = classify(g, load_domain(box, g.inputs[0].dim), solver("z3"), StabilityOptions(timeout=60))
    assert st.counts() == counts
    rng = np.random.default_rng(0)
    pre = {n.name: n.x for n in g.nodes if n.name in st.states}
    for _ in range(20):
        x = [a + F(int(k), 64) * (b - a) for a, b, k in zip(c["lo"], c["hi"], rng.integers(0, 65, len(c["lo"])))]
        env = evaluate_exact(g, {"x": x})
        for r, s in st.states.items():
            v = env[pre[r]]
            assert all(v[i] >= 0 for i in np.flatnonzero(s == ACTIVE))
            assert all(v[i] <= 0 for i in np.flatnonzero(s == INACTIVE))


@pytest.mark.skipif(not have("onnxruntime"), reason="onnxruntime is not installed")
def test_compress_a_small_conv_network_exactly(tmp_path, capsys):
    """Conv(1->3, 3x3, pad 1) + BatchNorm -> ReLU -> Flatten -> Gemm(48 -> 3) on a box where most
    ReLUs are stable: the compressed network drops ReLUs, its equivalence proof passes (unsat),
    and the exact IR it writes equals the original at points of the box."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from nnsmt.domain import load_domain
    from nnsmt.serialize import load_json
    rng = np.random.default_rng(3)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(a, k) for k, a in (
        ("W", f32(3, 1, 3, 3)), ("B", f32(3)), ("g", np.float32([1.0, 0.5, 2.0])), ("b", f32(3)),
        ("m", f32(3)), ("v", np.float32([1.0, 2.0, 0.5])), ("D", f32(3, 48)), ("c", f32(3)))]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "D", "c"], ["y"], transB=1)]
    m = helper.make_model(helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits),
        opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    net = tmp_path / "cnn.onnx"
    onnx.save(m, net)
    x0 = [F((3 * i) % 8 - 4, 8) for i in range(16)]
    lo, hi = [v - F(1, 32) for v in x0], [v + F(1, 32) for v in x0]
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lo": [dec(v) for v in lo], "hi": [dec(v) for v in hi]}))
    out = tmp_path / "small.onnx"
    code = main(["compress", str(net), "--domain", str(box), "-o", str(out), "--json", "--timeout", "60"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["equivalence"]["status"] == "unsat"
    assert info["after"]["relus"] < info["before"]["relus"] == 48
    assert info["onnxruntime_spot_check_max_abs_diff"] < 1e-5
    from nnsmt.frontends import load_onnx
    g, small = load_onnx(net), load_json(tmp_path / "small.json")
    dom = load_domain(str(box), 16)
    assert dom.contains(x0)
    for k in range(5):
        x = [a + F(k, 4) * (b - a) for a, b in zip(lo, hi)]
        assert list(evaluate_exact(g, {"x": x})[g.outputs[0]]) == \
            list(evaluate_exact(small, {small.inputs[0].name: x})[small.outputs[0]])


def test_parameter_robustness_of_a_cnn_from_the_command_line(cases, capsys):
    """`nnsmt verify --params` on the conv/BN/max-pool network at x0 (72 inline values): δ = 0
    on the convolution (one variable per kernel entry) leaves every output where it was (ε = 0
    holds); δ = 1 on every parameter lets the labels move (sat, witness replayed exactly and in
    onnxruntime, one value per kernel entry within nominal ± 1)."""
    c = cases["torch_conv_bn_relu_maxpool"]
    point = "--point=" + ",".join(dec(v) for v in c["x0"])
    code, d = verify(capsys, c["onnx"], "--params", "delta=0", "--layers", "a1", "--property", "eps=0", point)
    assert code == 0 and d["status"] == "unsat" and d["verdict"] != "not robust"
    code, d = verify(capsys, c["onnx"], "--params", "delta=1", "--property", "label", point)
    assert code == 10 and d["verdict"] == "not robust" and d["witness"]["replayed"] == ["exact", "onnxruntime"]
    kernel = [F(v) for v in d["witness"]["params_exact"]["a1_W"]]
    nominal = c["graph"].node("a1").weight
    assert len(kernel) == 4 * 2 * 3 * 3
    first = {int(j): F(nominal.data[k]) for k, j in reversed(list(enumerate(nominal.tie)))}
    assert all(abs(kernel[j] - v) <= 1 for j, v in first.items())
