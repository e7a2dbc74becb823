"""ONNX op table: every supported op against onnxruntime, exact evaluation, random networks.

The fixtures (tests/fixtures/onnx_ops/, built by tests/fixtures/make_onnx_ops.py with onnx.helper
and torch.onnx.export) cover every op in SUPPORTED_OPS; hypothesis builds random convolutional
and residual networks with real PyTorch modules and random ONNX DAGs with onnx.helper.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import onnx
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'nnsmt[test]')")

from nnsmt.errors import InputError, UnsupportedError  # noqa: E402
from nnsmt.frontends import load_onnx, ort_evaluator  # noqa: E402
from nnsmt.frontends.onnx_ops import SUPPORTED_OPS  # noqa: E402
from nnsmt.interpret import evaluate, evaluate_exact  # noqa: E402
from nnsmt.ir import Affine, Argmax, Relu, Sigmoid, Sparse  # noqa: E402

FIX = Path(__file__).resolve().parent / "fixtures" / "onnx_ops"
FIXTURES = sorted(FIX.glob("*.onnx"))
RNG = np.random.default_rng(99)


def inputs_for(graph, rng=RNG, lo=-2.0, hi=2.0):
    return {i.name: rng.uniform(lo, hi, i.dim) for i in graph.inputs}


def reference(path, graph):
    """onnxruntime's outputs for IR inputs, a list in graph output order."""
    ref = ort_evaluator(path)

    def run(xs):
        y = ref(xs[graph.inputs[0].name] if len(graph.inputs) == 1 else xs)
        return list(y) if isinstance(y, tuple) else [y]
    return run


def check(path, trials=3, tol=1e-5, exact=True, rng=RNG):
    """IR float evaluation equals onnxruntime (float32) on random inputs; the exact evaluation
    equals the float one within rounding. Returns the graph."""
    graph = load_onnx(path)
    ref = reference(path, graph)
    for t in range(trials):
        xs = inputs_for(graph, rng)
        env = evaluate(graph, xs)
        want = ref(xs)
        for o, w in zip(graph.outputs, want):
            got = np.atleast_1d(np.asarray(env[o], dtype=np.float64)).ravel()
            assert got.shape == w.shape, (o, got.shape, w.shape)
            assert np.all(np.abs(got - w) <= tol * np.maximum(1.0, np.abs(w))), (o, got, w)
        if exact and t == 0 and not any(isinstance(n, Sigmoid) for n in graph.nodes):
            ex = evaluate_exact(graph, xs)
            for o in graph.outputs:
                if isinstance(graph.node(o), Argmax):
                    continue
                f = np.asarray(env[o], dtype=np.float64).ravel()
                e = np.array([float(v) for v in np.asarray(ex[o]).ravel()])
                assert np.allclose(e, f, rtol=1e-9, atol=1e-9), (o, e, f)
    return graph


# ---- every op, against onnxruntime ----

@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_matches_onnxruntime(path):
    g = check(path)
    for n in g.nodes:  # provenance: every node names the ONNX value it holds (or is internal)
        assert n.name.isidentifier()
    assert all(isinstance(n.onnx, str) for n in g.nodes)


def test_every_supported_op_has_a_fixture():
    seen = {n.op_type for p in FIXTURES for n in onnx.load(str(p)).graph.node}
    assert set(SUPPORTED_OPS) - seen == set()


# ---- structure: what folds into what ----

def affines(g):
    return [n for n in g.nodes if isinstance(n, Affine)]


def test_batchnorm_after_conv_folds_into_the_sparse_weights():
    p = FIX / "conv_batchnorm_relu.onnx"
    g = check(p)
    assert [type(n) for n in g.nodes[1:]] == [Affine, Relu]
    (a,) = affines(g)
    assert isinstance(a.weight, Sparse) and a.shape == (1, 3, 4, 4) and a.onnx == "n"
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64)
             for t in onnx.load(str(p)).graph.initializer}
    eps = float(np.float32(1e-3))
    scale = inits["g"] / np.sqrt(inits["v"] + eps)  # the float64 rounding, as for Gemm
    W = a.weight.dense()
    # output (c=1, 1, 1) reads input (k, 0..2, 0..2) with kernel W[1, k] times channel 1's scale
    row = 1 * 16 + 1 * 4 + 1
    for k in range(2):
        for i in range(3):
            for j in range(3):
                want = Fraction(float(inits["W"][1, k, i, j])) * Fraction(float(scale[1]))
                assert Fraction(W[row, k * 16 + i * 4 + j]) == want
    shift = Fraction(float(inits["b"][1])) + (Fraction(float(inits["B"][1])) - Fraction(
        float(inits["m"][1]))) * Fraction(float(scale[1]))
    assert Fraction(a.bias.fractions()[row]) == shift


def test_residual_add_is_one_two_input_affine():
    g = check(FIX / "torch_residual_block.onnx")
    adds = [a for a in affines(g) if len(a.terms()) == 2]
    assert len(adds) == 1 and adds[0].onnx.endswith("Add_output_0")
    assert [isinstance(w, Sparse) for _, w in adds[0].terms()] == [True, True]


def test_maxpool_is_a_relu_tree_vectorised_per_level():
    g = check(FIX / "maxpool.onnx")  # 2x2 windows: two levels, one relu node each
    assert sum(isinstance(n, Relu) for n in g.nodes) == 2
    assert g.node(g.outputs[0]).shape == (1, 2, 2, 2)


def test_layout_runs_compose_into_one_node():
    # Transpose, Reshape, Flatten and Gemm: one dense affine map
    g = check(FIX / "transpose_reshape_flatten.onnx")
    (a,) = affines(g)
    assert not a.more and a.weight.shape == (3, 24)
    g = check(FIX / "split_input_opset13.onnx")  # split, relu (of a selection), scale, concat
    assert [type(n) for n in g.nodes[1:]] == [Affine, Relu, Affine]
    assert [x for x, _ in g.nodes[-1].terms()] == ["x", "r1"]


def test_several_inputs_and_outputs_kept():
    p = FIX / "softmax_output_multi_io.onnx"
    g = check(p)
    assert [i.name for i in g.inputs] == ["x_in", "x_in2"] and len(g.outputs) == 2
    assert g.meta["dropped_softmax"] == "true" and g.meta["onnx_logits"] == "logits"
    assert g.onnx_names()["hidden"] == g.outputs[1] and g.onnx_names()["in2"] == "x_in2"
    with pytest.raises(UnsupportedError, match="one input and one output"):
        g.single_io("verify")


def test_argmax_output():
    g = check(FIX / "argmax_output.onnx")
    assert isinstance(g.node(g.outputs[0]), Argmax)


def test_every_value_keeps_its_onnx_name_and_shape():
    g = load_onnx(FIX / "torch_conv_bn_relu_maxpool.onnx")
    names = g.onnx_names()
    assert names["input"] == "x" and names["output"] == g.outputs[0]
    shapes = g.shapes()
    assert shapes["x"] == (1, 2, 6, 6) and shapes[names["/2/Relu_output_0"]] == (1, 4, 6, 6)
    assert shapes[g.outputs[0]] == (1, 5)


# ---- random networks from real builders ----

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'nnsmt[dev]')")
nn = torch.nn


def export(module, shape, path, opset=13):
    """torch.onnx.export (TorchScript exporter), BatchNorm kept as a node."""
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(*shape),), str(path), dynamo=False,
                          opset_version=opset, training=torch.onnx.TrainingMode.PRESERVE)
    return path


def _conv_out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


class Residual(nn.Module):
    def __init__(self, c, bn):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.b1, self.b2 = (nn.BatchNorm2d(c), nn.BatchNorm2d(c)) if bn else \
            (nn.Identity(), nn.Identity())

    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + x)


class Branches(nn.Module):
    """Two branches concatenated on channels, then a slice of the spatial axes."""

    def __init__(self, c, sl):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 1), nn.Conv2d(c, 1, 3, padding=1)
        self.sl = sl

    def forward(self, x):
        y = torch.cat([self.a(x), torch.relu(self.b(x)), x], dim=1)
        return y[:, :, self.sl:, ::2] if y.shape[3] > 1 else y[:, :, self.sl:]


def build_conv_network(draw, c, h, w):
    """1-3 blocks of convolutions (random strides, pads, dilations, groups, batch norm),
    residual blocks, pooling, concatenation with slicing, then a linear head; every spatial
    size stays >= 1."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "residual", "maxpool", "avgpool", "branches"]))
        if kind == "conv":
            g = draw(st.sampled_from([d for d in (1, 2, 3) if c % d == 0]))
            co = g * draw(st.integers(1, 2))
            k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
            p = draw(st.integers(0, k - 1))
            ho, wo = _conv_out(h, k, s, p, d), _conv_out(w, k, s, p, d)
            if min(ho, wo) < 1:
                continue
            layers.append(nn.Conv2d(c, co, k, stride=s, padding=p, dilation=d, groups=g,
                                    bias=draw(st.booleans())))
            if draw(st.booleans()):
                layers.append(nn.BatchNorm2d(co))
            layers.append(draw(st.sampled_from([nn.ReLU, nn.LeakyReLU, nn.Identity]))())
            c, h, w = co, ho, wo
        elif kind == "residual":
            layers.append(Residual(c, draw(st.booleans())))
        elif kind in ("maxpool", "avgpool"):
            k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
            p = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            d = draw(st.integers(1, 2)) if kind == "maxpool" else 1
            spans = [n + 2 * p - d * (k - 1) - 1 for n in (h, w)]
            if ceil and any(-(-sp // s) * s >= n + p for sp, n in zip(spans, (h, w))):
                # a last window starting in the end padding: the ONNX spec and PyTorch drop
                # it, onnxruntime keeps it (and pools nothing): no reference to compare with
                ceil = False
            out = [(-(-sp // s) if ceil else sp // s) + 1 for sp in spans]
            if not all(any(0 <= o * s - p + j * d < n for j in range(k))
                       for n, m in zip((h, w), out) for o in range(m)):
                continue  # a window of only padding: its max is -inf
            if min(out) < 1:
                continue
            layers.append(nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil) if kind == "maxpool"
                          else nn.AvgPool2d(k, s, p, ceil_mode=ceil,
                                            count_include_pad=draw(st.booleans())))
            h, w = out
        else:
            sl = draw(st.integers(0, h - 1))
            layers.append(Branches(c, sl))
            c, h, w = 2 * c + 1, h - sl, (w + 1) // 2 if w > 1 else w
    layers += [nn.Flatten(), nn.Linear(c * h * w, draw(st.integers(1, 4)))]
    return nn.Sequential(*layers)


def randomise(module, seed):
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d,)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.25, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.data.uniform_(-1, 1)
    return module


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_conv_networks_match_onnxruntime(data, tmp_path_factory):
    c, h, w = data.draw(st.integers(1, 3)), data.draw(st.integers(4, 8)), data.draw(st.integers(4, 8))
    net = randomise(build_conv_network(data.draw, c, h, w), data.draw(st.integers(0, 2 ** 31 - 1)))
    path = export(net, (1, c, h, w), tmp_path_factory.mktemp("conv") / "net.onnx")
    check(path, trials=2, tol=1e-4, rng=np.random.default_rng(0))


def _helper_model(nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(
        nodes, "dag", [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(s))
                       for k, s in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m, strict_mode=True)


@st.composite
def onnx_dags(draw):
    """Random DAGs of same-shape tensors (1, C, H, W) with fan-out: binary ops between any two
    earlier values, activations, same-size convolutions and pooling, batch norm, layout round
    trips; one or two inputs, one or two outputs."""
    C, H, W = draw(st.integers(1, 3)), draw(st.integers(2, 4)), draw(st.integers(2, 4))
    shape = (1, C, H, W)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    inputs = {"in": shape}
    if draw(st.booleans()):
        inputs["in2"] = shape
    vals, nodes, inits = list(inputs), [], {}

    def const(name, *s, lo=-1.0, hi=1.0):
        inits[name] = rng.uniform(lo, hi, s).astype(np.float32)
        return name

    for i in range(draw(st.integers(1, 7))):
        op = draw(st.sampled_from(["Add", "Sub", "Max", "Min", "Relu", "Abs", "LeakyRelu",
                                   "Clip", "Mul", "Conv", "BatchNormalization", "MaxPool",
                                   "AveragePool", "ConcatSlice", "Flip", "PadCrop",
                                   "Transpose"]))
        a, b = draw(st.sampled_from(vals)), draw(st.sampled_from(vals))
        o = f"v{i}"
        if op in ("Add", "Sub", "Max", "Min"):
            nodes.append(helper.make_node(op, [a, b], [o]))
        elif op in ("Relu", "Abs"):
            nodes.append(helper.make_node(op, [a], [o]))
        elif op == "LeakyRelu":
            nodes.append(helper.make_node(op, [a], [o], alpha=float(rng.uniform(-0.5, 0.5))))
        elif op == "Clip":
            nodes.append(helper.make_node(op, [a, const(f"lo{i}", lo=-1, hi=0),
                                               const(f"hi{i}", lo=0, hi=1)], [o]))
        elif op == "Mul":
            nodes.append(helper.make_node(op, [a, const(f"k{i}", 1, C, 1, 1)], [o]))
        elif op == "Conv":
            nodes.append(helper.make_node(op, [a, const(f"W{i}", C, C, 3, 3), const(f"B{i}", C)],
                                          [o], pads=[1, 1, 1, 1]))
        elif op == "BatchNormalization":
            nodes.append(helper.make_node(op, [a, const(f"g{i}", C), const(f"b{i}", C),
                                               const(f"m{i}", C), const(f"s{i}", C, lo=0.3, hi=2)],
                                          [o]))
        elif op == "MaxPool":
            nodes.append(helper.make_node(op, [a], [o], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        elif op == "AveragePool":
            nodes.append(helper.make_node(op, [a], [o], kernel_shape=[2, 3], pads=[0, 1, 1, 1],
                                          count_include_pad=draw(st.integers(0, 1))))
        elif op == "ConcatSlice":
            inits[f"st{i}"], inits[f"en{i}"], inits[f"ax{i}"] = \
                np.array([C], np.int64), np.array([2 * C], np.int64), np.array([1], np.int64)
            nodes += [helper.make_node("Concat", [a, b], [f"c{i}"], axis=1),
                      helper.make_node("Slice", [f"c{i}", f"st{i}", f"en{i}", f"ax{i}"], [o])]
        elif op == "Flip":
            inits[f"st{i}"], inits[f"en{i}"], inits[f"ax{i}"], inits[f"sp{i}"] = (
                np.array(v, np.int64) for v in ([-1], [-W - 1], [3], [-1]))
            nodes.append(helper.make_node("Slice", [a, f"st{i}", f"en{i}", f"ax{i}", f"sp{i}"],
                                          [o]))
        elif op == "PadCrop":
            inits[f"p{i}"] = np.array([0, 0, 1, 1, 0, 0, 0, -1], np.int64)
            inits[f"q{i}"] = np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64)
            nodes += [helper.make_node("Pad", [a, f"p{i}"], [f"pc{i}"]),
                      helper.make_node("Pad", [f"pc{i}", f"q{i}"], [o])]
        else:
            nodes += [helper.make_node("Transpose", [a], [f"t{i}"], perm=[0, 3, 2, 1]),
                      helper.make_node("Transpose", [f"t{i}"], [o], perm=[0, 3, 2, 1])]
        vals.append(o)
    outs = [vals[-1]]
    extra = [v for v in vals[len(inputs):-1]]
    if extra and draw(st.booleans()):
        outs.append(draw(st.sampled_from(extra)))
    if outs[0] in inputs:
        return None
    return _helper_model(nodes, inputs, outs, inits)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=onnx_dags())
def test_random_onnx_dags_match_onnxruntime(m, tmp_path_factory):
    path = tmp_path_factory.mktemp("dag") / "dag.onnx"
    onnx.save(m, str(path))
    g = check(path, trials=2, tol=1e-4, rng=np.random.default_rng(1))
    assert len(g.inputs) == len(m.graph.input) and len(g.outputs) == len(m.graph.output)


# ---- the pending maps: every composition equals the exact dense product ----

def fr(M):
    """Exact dense Fraction matrix of a map matrix."""
    d = M if isinstance(M, np.ndarray) else M.dense()
    out = np.empty(d.shape, dtype=object)
    out.ravel()[:] = [Fraction(v) for v in d.ravel()]
    return out


def fr_dot(A, B):
    out = np.empty((A.shape[0], B.shape[1]), dtype=object)
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            out[i, j] = sum((A[i, k] * B[k, j] for k in range(A.shape[1])), Fraction(0))
    return out


values = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 3.0]),
                   st.floats(-4, 4, allow_nan=False, width=32).map(float),
                   st.fractions(-4, 4, max_denominator=7))


@st.composite
def matrices(draw, rows, cols, kinds=("mono", "dense", "sparse")):
    from nnsmt.frontends.onnx_maps import Mono, Sp, unify
    kind = draw(st.sampled_from(kinds))
    vals = lambda n: unify(np.array(draw(st.lists(values, min_size=n, max_size=n)) or [0.0],
                                    dtype=object))[0][:n]
    if kind == "mono":
        col = np.array(draw(st.lists(st.integers(-1, cols - 1), min_size=rows, max_size=rows)))
        return Mono(cols, col, None if draw(st.booleans()) else vals(rows))
    if kind == "dense":
        return vals(rows * cols).reshape(rows, cols)
    nnz = draw(st.integers(0, rows * cols))
    r = np.array(draw(st.lists(st.integers(0, rows - 1), min_size=nnz, max_size=nnz)), np.int64)
    c = np.array(draw(st.lists(st.integers(0, cols - 1), min_size=nnz, max_size=nnz)), np.int64)
    return Sp.from_coo((rows, cols), r, c, vals(nnz))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), m=st.integers(1, 5), k=st.integers(1, 5))
def test_map_compositions_are_exact(data, n, m, k):
    from nnsmt.frontends.onnx_maps import Mono, left, madd, select, to_param
    M = data.draw(matrices(m, k))
    # a selection/scaling after M
    sel = data.draw(matrices(n, m, ("mono",)))
    assert (fr(select(M, sel.col, sel.val)) == fr_dot(fr(sel), fr(M))).all()
    # a dense or sparse op after M (None: refused, the caller emits M first)
    K = data.draw(matrices(n, m, ("dense", "sparse")))
    P = left(K, M)
    if P is not None:
        assert (fr(P) == fr_dot(fr(K), fr(M))).all()
    # sums, and the IR parameter of a matrix
    B = data.draw(matrices(m, k))
    assert (fr(madd(M, B)) == fr(M) + fr(B)).all()
    for alone in (True, False):
        p = to_param(M, alone)
        d = p.value if not isinstance(p, Sparse) else p.dense()
        assert (fr(np.asarray(d)) == fr(M)).all()
    assert isinstance(Mono.identity(3).dense(), np.ndarray)


# ---- what is not supported: one line naming the file, node, op and why ----

UNSUPPORTED = {
    "weights_from_input": ([helper.make_node("Conv", ["in", "in2"], ["out"], name="c")],
                           {}, {"in": (1, 1, 3, 3), "in2": (1, 1, 2, 2)},
                           "node 'c' (Conv): input 1 ('in2') must be a constant"),
    "gemm_of_products": ([helper.make_node("Gemm", ["in", "in"], ["out"], name="gm")], {},
                         {"in": (3, 3)}, "node 'gm' (Gemm): both operands depend on the input"),
    "maxpool_indices": ([helper.make_node("MaxPool", ["in"], ["p", "out"], name="mp",
                                          kernel_shape=[2, 2])], {}, None,
                        "node 'mp' (MaxPool): the Indices output is used"),
    "conv_transpose_output_shape": ([helper.make_node("ConvTranspose", ["in", "W"], ["out"],
                                                      name="ct", output_shape=[5, 5])],
                                    {"W": np.ones((2, 1, 2, 2), np.float32)}, None,
                                    "node 'ct' (ConvTranspose): only explicit pads"),
    "argmax_inside": ([helper.make_node("ArgMax", ["in"], ["a"], name="am", axis=1),
                       helper.make_node("Cast", ["a"], ["out"], to=TensorProto.FLOAT)],
                      {}, {"in": (1, 4)}, "node 'am' (ArgMax): ArgMax is only supported as a"),
    "log_of_input": ([helper.make_node("Log", ["in"], ["out"], name="lg")], {}, None,
                     "node 'lg' (Log): only supported on constants"),
    "cast_to_string": ([helper.make_node("Cast", ["in"], ["out"], name="cs", to=TensorProto.STRING)],
                       {}, None, "node 'cs' (Cast): casting a tensor that depends on the input"),
    "unknown_op": ([helper.make_node("LpNormalization", ["in"], ["out"], name="lp")], {}, None,
                   "node 'lp' (LpNormalization) is not supported; supported ops: Abs, Add"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_is_one_line(case, tmp_path):
    nodes, inits, inputs, needle = UNSUPPORTED[case]
    p = tmp_path / f"{case}.onnx"
    onnx.save(_helper_model(nodes, inputs or {"in": (1, 2, 4, 4)}, ["out"], inits), str(p))
    with pytest.raises(UnsupportedError) as e:
        load_onnx(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}: ") and needle in msg, msg


def test_custom_domain_op_is_unsupported(tmp_path):
    n = helper.make_node("FusedConv", ["in"], ["out"], name="fc", domain="com.microsoft")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("in", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    onnx.save(m, str(tmp_path / "c.onnx"))
    with pytest.raises(UnsupportedError, match=r"node 'fc' \(com.microsoft.FusedConv\) is not"):
        load_onnx(tmp_path / "c.onnx")


def test_window_of_only_padding_is_an_input_error(tmp_path):
    # one input column, kernel 2 dilated by 3, pads 2 and 2: the windows read columns -2 and 1,
    # then -1 and 2: nothing but padding
    n = helper.make_node("MaxPool", ["in"], ["out"], name="mp", kernel_shape=[1, 2],
                         dilations=[1, 3], pads=[0, 2, 0, 2])
    p = tmp_path / "m.onnx"
    onnx.save(_helper_model([n], {"in": (1, 1, 1, 1)}, ["out"], {}), str(p))
    with pytest.raises(InputError, match="node 'mp' \\(MaxPool\\): a window covers only padding"):
        load_onnx(p)
