"""Symbolic sparse parameters (conv layers under ±δ) and fast exact arrays: the frontend's ties
(one parameter per kernel entry, structure fixed), `make_symbolic` over them, every domain on a
`SparseSym` (float, exact, enclosure, intervals, solver terms), IR JSON, ONNX export of the
perturbed network, and robustness answers derivable by hand."""

from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.errors import InputError
from nnsmt.interpret import evaluate, evaluate_enclosure, evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sparse, SparseSym, exact_array
from nnsmt.params import Perturbation, assign, make_symbolic, nominal_graph, sym_params, within

from conftest import ROOT, solver_backend

OPS = ROOT / "tests" / "fixtures" / "onnx_ops"


def load(name) -> Graph:
    from nnsmt.frontends import load_onnx
    return load_onnx(OPS / f"{name}.onnx")


def point(g: Graph) -> list[F]:
    """A fixed input of rationals in [-1/2, 1/2)."""
    return [F((7 * i) % 11, 11) - F(1, 2) for i in range(g.inputs[0].dim)]


def draw_params(gs: Graph, rng) -> dict:
    """Exact values of every symbolic parameter, uniformly in its box (dyadic rationals)."""
    out = {}
    for p in sym_params(gs):
        lo, hi = Const(p.lo).fractions().ravel(), Const(p.hi).fractions().ravel()
        t = [F(int(k), 1024) for k in rng.integers(0, 1025, len(lo))]
        v = np.empty(len(lo), dtype=object)
        v[:] = [a + s * (b - a) for a, b, s in zip(lo, hi, t)]
        out[p.name] = v.reshape(p.var_names().shape)
    return out


# --- exact arrays ------------------------------------------------------------------------------

def _reference(values) -> np.ndarray:
    """exact_array as it was: one Fraction per element, then a float test on each."""
    a = np.asarray(values)
    flat = [F(v) for v in a.ravel()]
    try:
        is_float = all(not (v.denominator & (v.denominator - 1)) and float(v) == v for v in flat)
    except OverflowError:
        is_float = False
    if is_float:
        return np.array([float(v) for v in flat], dtype=np.float64).reshape(a.shape)
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = flat
    return out


EDGES = [F(1, 3), F(2 ** 53 + 1), F(2 ** 53), F(2 ** 1024), F(2 ** 1023), F(1, 2 ** 1074),
         F(3, 2 ** 1075), F(2 ** 53 - 1, 2 ** 1074), F(2 ** 53 + 1, 2 ** 1074), -F(2 ** 60 + 2 ** 7),
         F(0), 0.5, 3, np.float64(-1.25), F(2 ** 54 + 2), F(5e-324)]


@pytest.mark.parametrize("v", EDGES, ids=str)
def test_exact_array_keeps_a_float_only_when_it_is_one(v):
    a = np.empty(1, dtype=object)
    a[0] = v
    got, want = exact_array(a), _reference(a)
    assert got.dtype == want.dtype and list(got) == list(want)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.fractions(max_denominator=64), st.floats(-1e6, 1e6, width=32).map(F)),
                min_size=1, max_size=6), st.integers(1, 3000), st.randoms(use_true_random=False))
def test_exact_array_of_a_table_spread_by_index_is_the_elementwise_one(pool, n, rnd):
    """A table[idx] array (the shape of a convolution's values: few objects, many references),
    big enough for the de-duplicated path, equals the element-by-element conversion."""
    table = np.empty(len(pool), dtype=object)
    table[:] = pool
    a = table[np.array([rnd.randrange(len(pool)) for _ in range(n)])].reshape(n, 1)
    got, want = exact_array(a), _reference(a)
    assert got.dtype == want.dtype and got.shape == want.shape and list(got.ravel()) == list(want.ravel())


# --- ties from the ONNX frontend ---------------------------------------------------------------

def test_a_convolution_is_tied_per_kernel_entry_and_structure_stays_fixed():
    """Residual block: down = Conv(2->3, 1x1), c1/c2 = Conv(3->3, 3x3) with BN folded, skip =
    the identity. One variable per kernel entry (6, 81, 81 of 150, 1521, 1521 stored entries),
    the skip term's ones are structure; a max-pool's ReLU tree holds no parameter at all."""
    g = load("torch_residual_block")
    gs = make_symbolic(g, Perturbation(F(1, 100), which="weights"))
    sizes = {(n.name, x): (p.size, p.pattern.nnz) for n in gs.nodes if isinstance(n, Affine)
             for x, p in n.terms() if isinstance(p, SparseSym)}
    assert sizes == {("a1", "x"): (6, 150), ("a2", "a1"): (81, 1521), ("a3", "r2"): (81, 1521)}
    skip = gs.node("a3").more[0][1]
    assert isinstance(skip, Sparse) and skip.tie is not None and (skip.tie == -1).all()
    assert "entry by entry" not in gs.meta["perturbation"]
    mp = make_symbolic(load("torch_conv_bn_relu_maxpool"), Perturbation(F(1, 100)))
    assert isinstance(mp.node("a1").weight, SparseSym) and mp.node("a1").weight.size == 4 * 2 * 3 * 3
    for name in ("a2", "a3"):  # the max-pool's relu tree: weights, bias and all stay constant
        n = mp.node(name)
        assert all(isinstance(p, (Sparse, Const)) for _, p in n.terms()) and isinstance(n.bias, Const)


def test_a_zero_kernel_entry_is_kept_as_a_parameter(tmp_path):
    """A conv kernel with an exact zero: the entry is stored (and moves under absolute δ)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from nnsmt.frontends import load_onnx
    W = np.array([[[[1.0, 0.0], [0.0, -2.0]]]], dtype=np.float32)
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1, 2, 2])],
        [numpy_helper.from_array(W, "W")]), opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, tmp_path / "zero.onnx")
    g = load_onnx(tmp_path / "zero.onnx")
    S = g.node("a1").weight
    assert S.nnz == 16 and sorted(set(S.tie.tolist())) == [0, 1, 2, 3]
    p = make_symbolic(g, Perturbation(F(1, 4))).node("a1").weight
    assert p.size == 4 and list(p.nominal) == [1.0, 0.0, 0.0, -2.0] and list(p.hi) == [F(5, 4), F(1, 4), F(1, 4), F(-7, 4)]


# --- the domains on a SparseSym ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["torch_residual_block", "torch_conv_bn_relu_maxpool"])
def test_every_domain_reads_a_sparse_sym_as_its_instantiated_matrix(name):
    """Random parameters in the box: float and exact evaluation with `params` equal the
    evaluation of the assigned network; the enclosure is exact; interval bounds over the
    parameter box contain the exact values; nominal_graph gives back the network's values."""
    from nnsmt.bounds import box_interval, propagate_bounds
    g = load(name)
    gs = make_symbolic(g, Perturbation(F(1, 20)))
    x = point(g)
    rng = np.random.default_rng(0)
    params = draw_params(gs, rng)
    assert within(gs, params)
    ga = assign(gs, params)
    out = g.outputs[0]
    ex = evaluate_exact(gs, {"x": x}, params)
    assert list(ex[out]) == list(evaluate_exact(ga, {"x": x})[out])
    lo, hi = evaluate_enclosure(gs, {"x": x}, params)[out]
    assert list(lo) == list(hi) == list(ex[out])
    fl = evaluate(gs, {"x": np.array([float(v) for v in x])}, params)[out]
    assert np.allclose(fl, [float(v) for v in ex[out]], rtol=1e-9, atol=1e-12)
    assert list(evaluate_exact(nominal_graph(gs), {"x": x})[out]) == list(evaluate_exact(g, {"x": x})[out])
    bounds = propagate_bounds(gs, box_interval(x, x), "interval")
    for v, val in ex.items():
        assert bounds[v].contains([float(a) for a in val], slack=0), v
    shared = ga.node("a1").weight  # a kernel entry has one value wherever it is applied
    for j in set(shared.tie.tolist()):
        assert len({shared.data[k] for k in np.flatnonzero(shared.tie == j)}) == 1


def test_the_encoding_declares_one_variable_per_kernel_entry_and_forces_the_exact_output():
    """z3 with every parameter pinned to random values in its box must give the exact output
    of the perturbed network, and nothing else."""
    from nnsmt.encode import encode_graph
    from nnsmt.terms import And, Cmp, Not, Num, ScriptBuilder, Var
    backend = solver_backend("z3")
    g = load("torch_residual_block")
    gs = make_symbolic(g, Perturbation(F(1, 20), layers=("a2", "a3")))
    x = point(g)
    params = draw_params(gs, np.random.default_rng(1))
    want = evaluate_exact(gs, {"x": x}, params)[g.outputs[0]]

    def script(equal):
        b = ScriptBuilder()
        names = encode_graph(gs, b, {"x": x})
        pins = [Cmp("=", Var(n), Num(v)) for p in sym_params(gs)
                for n, v in zip(p.var_names().ravel(), params[p.name].ravel())]
        b.assert_("params", And(tuple(pins)))
        outs = tuple(Cmp("=", Var(n), Num(v)) for n, v in zip(names[g.outputs[0]], want))
        b.assert_("y", And(outs) if equal else Not(And(outs)))
        return b.build()

    s = script(True)
    assert sum(n.startswith("a2_W_") for n in s.decls) == 81  # 3x3x3x3 kernel entries, not 1521
    assert backend.solve(s, timeout=60).status == "sat"
    assert backend.solve(script(False), timeout=60).status == "unsat"


def test_json_round_trip_of_ties_and_sparse_sym_is_exact_and_schema_valid():
    import json
    import jsonschema
    from nnsmt.serialize import graph_from_json, graph_to_json, schema
    g = load("torch_residual_block")
    assert graph_to_json(g)["version"] == "2.0"  # ties alone need no 2.1 reader
    gs = make_symbolic(g, Perturbation(F(1, 3), relative=True))
    doc = json.loads(json.dumps(graph_to_json(gs)))
    assert doc["version"] == "2.1"
    jsonschema.validate(doc, schema())
    back = graph_from_json(doc)
    for (_, _, p), (_, _, q) in zip(gs.params(), back.params()):
        assert type(p) is type(q)
        if isinstance(p, SparseSym):
            assert p.name == q.name and list(p.nominal) == list(q.nominal) and list(p.lo) == list(q.lo)
            assert (p.pattern.tie == q.pattern.tie).all() and list(p.pattern.data) == list(q.pattern.data)
    w = doc["nodes"][1]["weight"]
    w["tie"]["data"] = json.loads(json.dumps(graph_to_json(g)))["nodes"][1]["weight"]["data"]["data"]
    w["tie"]["dtype"] = "float64"
    with pytest.raises(InputError, match=r"nodes/1/weight/tie"):
        graph_from_json(doc, "net.json")  # non-integer ties


def test_a_tie_holding_different_values_is_refused():
    with pytest.raises(InputError, match="entries tied to one parameter hold different values"):
        Sparse((1, 2), [0, 2], [0, 1], [1.0, 2.0], tie=[0, 0])
    S = Sparse((1, 2), [0, 2], [0, 1], [1.0, 1.0], tie=[0, -1])
    with pytest.raises(InputError, match="nominal values are not the pattern's"):
        SparseSym("w", S, [2.0])
    with pytest.raises(InputError, match="needs a tie"):
        SparseSym("w", Sparse((1, 2), [0, 2], [0, 1], [1.0, 1.0]), [1.0])


def test_onnx_export_of_the_perturbed_network_runs_like_the_exact_replay():
    ort = pytest.importorskip("onnxruntime")
    from nnsmt.frontends.onnx_export import graph_to_onnx
    g = load("torch_conv_bn_relu_maxpool")
    gs = make_symbolic(g, Perturbation(F(1, 10)))
    params = draw_params(gs, np.random.default_rng(2))
    x = point(g)
    want = evaluate_exact(gs, {"x": x}, params)[g.outputs[0]]
    for model in (graph_to_onnx(gs, params, "float64")[0], graph_to_onnx(assign(gs, params), None, "float64")[0]):
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": np.array([[float(v) for v in x]])})[0].reshape(-1)
        assert np.allclose(got, [float(v) for v in want], rtol=1e-9, atol=1e-12)


# --- robustness --------------------------------------------------------------------------------

def test_conv_robustness_known_answers_on_a_conv_bn_maxpool_network():
    """δ = 0: the perturbed network is the nominal one, so every output stays put (ε = 0 holds,
    unsat), layer by layer (each query is linear at a point). δ = 1 on every weight and bias:
    the first output can be driven anywhere, a label flips (sat), the witness replays exactly
    and in onnxruntime, moves each kernel entry once and stays in the box."""
    from nnsmt.engine.robustness import check, float_replay
    from nnsmt.queries.robustness import Question
    solver_backend("z3")
    g = load("torch_conv_bn_relu_maxpool")
    x = tuple(point(g))
    for layer in ("a1", "a4"):
        gs = make_symbolic(g, Perturbation(F(0), layers=(layer,)))
        assert check(gs, Question("eps", point=x, value=F(0)), "z3", timeout=120).status == "unsat"
    gs = make_symbolic(g, Perturbation(F(1)))
    o = check(gs, Question("label", point=x), "z3", timeout=120, float_check=float_replay(gs))
    assert o.status == "sat" and o.witness.holds is True
    assert o.witness.replayed == ["exact", "onnxruntime"]
    w = o.witness.params
    assert within(gs, w) and len(w["a1_W"]) == 72
    ga = assign(gs, w)
    assert list(evaluate_exact(ga, {"x": list(x)})[g.outputs[0]]) == list(o.witness.y_pert[0])


def _two_pixel_conv(tied: bool) -> Graph:
    """x (1x1x1x2) -> Conv 1x1 with kernel w = 1, no bias -> relu -> y = h0 - h1."""
    S = Sparse((2, 2), [0, 1, 2], [0, 1], [1.0, 1.0], tie=[0, 0] if tied else None)
    return Graph((Input("x", 2, shape=(1, 1, 1, 2)), Affine("c", "x", S, Const([0.0, 0.0])), Relu("h", "c"),
                  Affine("y", "h", Const([[1.0, -1.0]]), Const([0.0]))), ("y",), {"source": "two"}).check()


@pytest.mark.parametrize("tied", [True, False])
def test_a_shared_kernel_entry_moves_once(tied):
    """At x = (1, 1): y = relu(w) - relu(w) = 0 for every kernel w, so with the kernel entry
    shared ε = 0 holds for any δ (unsat). Moving the two copies independently, relu(w0) -
    relu(w1) != 0 is possible (sat): the witness has two different values, which no convolution
    realises -- the over-approximation the ties avoid."""
    from nnsmt.engine.robustness import check
    from nnsmt.queries.robustness import Question
    solver_backend("z3")
    gs = make_symbolic(_two_pixel_conv(tied), Perturbation(F(1, 2), layers=("c",), which="weights"))
    assert gs.node("c").weight.size == (1 if tied else 2)
    assert ("entry by entry" in gs.meta["perturbation"]) is not tied
    o = check(gs, Question("eps", point=(F(1), F(1)), value=F(0)), "z3", timeout=60)
    if tied:
        assert o.status == "unsat"
    else:
        assert o.status == "sat" and o.witness.holds is True
        w = list(o.witness.params["c_W"])
        assert w[0] != w[1] and all(F(1, 2) <= v <= F(3, 2) for v in w)
