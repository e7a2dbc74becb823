"""DAG graphs built directly in the IR: chains with residual additions (`Affine.more`),
concatenations as block-sparse weights, dense and sparse (CSR) weights, float and rational,
ReLU and sigmoid. Every domain must agree with a dense numpy reference, exactly where it
claims exactness."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.interpret import evaluate, evaluate_enclosure, evaluate_exact, exact_matvec, float_matvec
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid, Sparse

f32 = st.floats(-2, 2, width=32, allow_subnormal=False)
FAST = settings(max_examples=50, deadline=None)


def _fractions(w: np.ndarray) -> np.ndarray:
    out = np.empty(w.shape, dtype=object)
    out.ravel()[:] = [Fraction(v) / 3 for v in w.ravel()]
    return out


@st.composite
def weights(draw, out: int, inp: int, rational: bool = True):
    """A (out, inp) weight: dense Const, or Sparse with a random pattern; float32 values,
    sometimes rationals that are not floats (thirds)."""
    w = np.array(draw(st.lists(f32, min_size=out * inp, max_size=out * inp)),
                 dtype=np.float64).reshape(out, inp)
    kind = draw(st.sampled_from(["dense", "sparse", "sparse"] + (["rational"] if rational else [])))
    if kind == "dense":
        return Const(w)
    mask = np.array(draw(st.lists(st.booleans(), min_size=out * inp, max_size=out * inp)),
                    dtype=bool).reshape(out, inp)
    w = np.where(mask, w, 0.0)
    return Sparse.from_dense(_fractions(w) if kind == "rational" else w)


def block(out: int, offset: int, d: int) -> Sparse:
    """The (out, d) matrix placing a d-vector at rows offset..offset+d (concatenation)."""
    return Sparse.from_coo((out, d), np.arange(offset, offset + d), np.arange(d), np.ones(d))


@st.composite
def dag_graphs(draw, sigmoid: bool = True, max_nodes: int = 6, rational: bool = True):
    """A random DAG: each node reads any earlier values."""
    n0 = draw(st.integers(1, 3))
    nodes: list = [Input("x", n0, shape=(1, n0), onnx="input")]
    vals = [("x", n0)]
    kinds = ["affine", "affine", "residual", "concat", "relu"] + (["sigmoid"] if sigmoid else [])
    for k in range(draw(st.integers(1, max_nodes))):
        name, kind = f"v{k}", draw(st.sampled_from(kinds))
        onnx = draw(st.sampled_from(["", f"t{k}"]))
        if kind in ("relu", "sigmoid"):
            x, d = draw(st.sampled_from(vals))
            nodes.append((Relu if kind == "relu" else Sigmoid)(name, x, onnx=onnx))
            vals.append((name, d))
            continue
        if kind == "affine":
            ins = draw(st.lists(st.sampled_from(vals), min_size=1, max_size=3))
            out = draw(st.integers(1, 4))
            terms = [(x, draw(weights(out, d, rational))) for x, d in ins]
        elif kind == "residual":  # y = u + w: identities on two values of one dimension
            u, d = draw(st.sampled_from(vals))
            w = draw(st.sampled_from([v for v, e in vals if e == d]))
            out = d
            terms = [(u, block(d, 0, d)), (w, draw(st.sampled_from([block(d, 0, d), Const(np.eye(d))])))]
        else:  # concat: block-sparse weights
            ins = draw(st.lists(st.sampled_from(vals), min_size=1, max_size=3))
            out = sum(d for _, d in ins)
            offs = np.cumsum([0] + [d for _, d in ins])
            terms = [(x, block(out, int(o), d)) for (x, d), o in zip(ins, offs)]
        b = np.array(draw(st.lists(f32, min_size=out, max_size=out)), dtype=np.float64)
        bias = Const(_fractions(b) if rational and draw(st.booleans()) else b)
        shape = draw(st.sampled_from([None, (out,), (1, out)]))
        nodes.append(Affine(name, terms[0][0], terms[0][1], bias, more=tuple(terms[1:]),
                            shape=shape, onnx=onnx))
        vals.append((name, out))
    outs = (nodes[-1].name,)
    if len(nodes) > 2 and draw(st.booleans()):
        extra = draw(st.sampled_from([n.name for n in nodes[1:-1]]))
        outs = outs + (extra,)
    return Graph(tuple(nodes), outs, {"source": "dag"}).check()


def dense_float(p) -> np.ndarray:
    return p.dense().astype(np.float64) if isinstance(p, Sparse) else p.floats()


def reference(g: Graph, x, magnitude: bool = False) -> dict[str, np.ndarray]:
    """Dense numpy evaluation; with `magnitude`, |W| |x| + |b| throughout (a bound on every
    |value| that also scales the rounding error of any summation order)."""
    env: dict[str, np.ndarray] = {}
    for n in g.nodes:
        match n:
            case Input():
                env[n.name] = np.abs(np.asarray(x, dtype=np.float64)) if magnitude else \
                    np.asarray(x, dtype=np.float64)
            case Affine():
                f = np.abs if magnitude else (lambda a: a)
                env[n.name] = sum(f(dense_float(w)) @ env[v] for v, w in n.terms()) + f(dense_float(n.bias))
            case Relu():
                env[n.name] = env[n.x] if magnitude else np.maximum(env[n.x], 0.0)
            case Sigmoid():
                env[n.name] = np.ones_like(env[n.x]) if magnitude else 1.0 / (1.0 + np.exp(-env[n.x]))
    return env


def tolerance(g: Graph, x) -> dict[str, np.ndarray]:
    """A generous bound on float rounding against the exact value, per element."""
    return {k: 1e-12 * (1.0 + v) for k, v in reference(g, x, magnitude=True).items()}


def point(dim):
    return st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=dim, max_size=dim)


@FAST
@given(dag_graphs(), st.data())
def test_float_evaluation_equals_a_dense_reference(g, data):
    x = data.draw(point(g.inputs[0].dim))
    got, ref, tol = evaluate(g, {"x": x}), reference(g, x), tolerance(g, x)
    for v in ref:
        assert got[v].shape == ref[v].shape
        assert np.all(np.abs(got[v] - ref[v]) <= tol[v]), v


@FAST
@given(dag_graphs(), st.data())
def test_exact_evaluation_agrees_with_float(g, data):
    x = data.draw(point(g.inputs[0].dim))
    fl, tol = evaluate(g, {"x": x}), tolerance(g, x)
    if any(isinstance(n, Sigmoid) for n in g.nodes):
        enc = evaluate_enclosure(g, {"x": x})
        for v, (lo, hi) in enc.items():
            assert all(a <= b for a, b in zip(lo, hi))
            assert np.all(np.array([float(a) for a in lo]) - tol[v] <= fl[v]), v
            assert np.all(fl[v] <= np.array([float(b) for b in hi]) + tol[v]), v
        return
    ex = evaluate_exact(g, {"x": x})
    enc = evaluate_enclosure(g, {"x": x})
    for v in ex:
        assert all(isinstance(a, Fraction) for a in ex[v])
        assert np.all(np.abs(np.array([float(a) for a in ex[v]]) - fl[v]) <= tol[v]), v
        assert list(enc[v][0]) == list(ex[v]) == list(enc[v][1])  # a point stays exact


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.data())
def test_sparse_matvec_equals_the_dense_one_exactly(out, inp, data):
    w = data.draw(weights(out, inp))
    x = np.array([Fraction(v) for v in data.draw(point(inp))], dtype=object)
    dense = w.dense() if isinstance(w, Sparse) else w.value
    assert list(exact_matvec(w, x)) == list(exact_matvec(Const(dense), x))
    assert np.allclose(float_matvec(w, x.astype(np.float64)), dense.astype(np.float64) @ x.astype(np.float64))


def test_a_residual_block_by_hand():
    """y = relu(W x) + x with W sparse: y = [relu(2 x0) + x0, x1]."""
    W = Sparse.from_dense(np.array([[2.0, 0.0], [0.0, 0.0]]))
    g = Graph((Input("x", 2), Affine("a", "x", W, Const([0.0, 0.0])), Relu("r", "a"),
               Affine("y", "r", block(2, 0, 2), Const([0.0, 0.0]), more=(("x", block(2, 0, 2)),))),
              ("y",)).check()
    x = [Fraction(3, 7), Fraction(-1, 3)]
    assert list(evaluate_exact(g, {"x": x})["y"]) == [Fraction(9, 7), Fraction(-1, 3)]
    assert list(evaluate_exact(g, {"x": [-1, 2]})["y"]) == [-1, 2]


def test_the_enclosure_of_a_box_is_sound_on_a_sparse_multi_input_node():
    W = Sparse.from_dense(np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]]))
    g = Graph((Input("x", 3), Affine("y", "x", W, Const([1.0, 0.0]), more=(("x", Const(np.ones((2, 3)))),))),
              ("y",)).check()
    from nnsmt.interpret import EnclosureDomain, interpret
    lo = np.array([Fraction(-1)] * 3, dtype=object)
    hi = np.array([Fraction(1)] * 3, dtype=object)
    env = interpret(g, EnclosureDomain(), {}, initial_env={"x": (lo, hi)})
    # y0 = 2 x0 + x1 - x2 + 1 in [-3, 5]; y1 = x0 + x1 + x2 in [-3, 3]
    assert list(env["y"][0]) == [-3, -3] and list(env["y"][1]) == [5, 3]


# --- bounds ------------------------------------------------------------------------------

def _exact_or_enclosure(g: Graph, x) -> dict[str, tuple[list, list]]:
    """Every value as exact (lo, hi) Fractions: a point without sigmoid, else an enclosure."""
    if any(isinstance(n, Sigmoid) for n in g.nodes):
        return {k: (list(lo), list(hi)) for k, (lo, hi) in evaluate_enclosure(g, {"x": x}).items()}
    return {k: (list(v), list(v)) for k, v in evaluate_exact(g, {"x": x}).items()}


@settings(max_examples=60, deadline=None)
@given(dag_graphs(), st.data())
def test_interval_and_linear_bounds_contain_sampled_points(g, data):
    """Two boxes at once (batched); exact values (or enclosures) of corners and random points
    of each box lie inside both methods' bounds, compared exactly."""
    from nnsmt.bounds import Interval, propagate_bounds
    n = g.inputs[0].dim
    lo = np.array([data.draw(point(n)) for _ in range(2)])
    hi = lo + np.array([data.draw(st.lists(st.floats(0, 2), min_size=n, max_size=n)) for _ in range(2)])
    bounds = {m: propagate_bounds(g, Interval(lo, hi), m) for m in ("interval", "linear")}
    for k in bounds["interval"]:  # up to the last bits: BLAS may sum the two methods' rows in
        # different orders (both are rigorous: each bound covers its own rounding)
        iv, lin = bounds["interval"][k], bounds["linear"][k]
        assert np.all(lin.lo >= iv.lo - 1e-13 * np.abs(iv.lo))
        assert np.all(lin.hi <= iv.hi + 1e-13 * np.abs(iv.hi))
    for b in range(2):
        pts = [lo[b], hi[b]] + [lo[b] + np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
                                * (hi[b] - lo[b]) for _ in range(3)]
        for x in pts:
            x = np.clip(x, lo[b], hi[b])
            env = _exact_or_enclosure(g, [Fraction(float(v)) for v in x])
            fl = evaluate(g, {"x": x})
            for m, bd in bounds.items():
                for v, (elo, ehi) in env.items():
                    blo, bhi = bd[v].lo[b], bd[v].hi[b]
                    assert all(Fraction(float(l)) <= a for l, a in zip(blo, ehi)), (m, v)
                    assert all(a <= Fraction(float(h)) for a, h in zip(elo, bhi)), (m, v)
                    assert np.all(blo - 1e-9 * (1 + np.abs(blo)) <= fl[v]), (m, v)
                    assert np.all(fl[v] <= bhi + 1e-9 * (1 + np.abs(bhi))), (m, v)


def test_back_substitution_sums_the_coefficients_of_a_value_with_several_consumers():
    """z = relu(x) - x on x in [1, 2]: relu is stably active, so z = 0. Intervals give
    [1 - 2, 2 - 1]; back-substitution must meet x from both paths and cancel it."""
    from nnsmt.bounds import Interval, propagate_bounds
    eye = block(2, 0, 2)
    g = Graph((Input("x", 2), Relu("r", "x"),
               Affine("z", "r", eye, Const([0.0, 0.0]), more=(("x", Const(-np.eye(2))),))), ("z",)).check()
    box = Interval(np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    iv = propagate_bounds(g, box, "interval")["z"]
    assert np.all(iv.lo <= -1) and np.all(iv.hi >= 1)
    lin = propagate_bounds(g, box, "linear")["z"]
    assert np.all(lin.lo <= 0) and np.all(lin.hi >= 0)  # sound
    assert np.all(lin.hi - lin.lo < 1e-12)  # and exact up to rounding


def test_bounds_of_a_wide_sparse_layer_touch_only_its_nonzeros():
    """A 'convolution' of 20000 outputs with 3 nonzeros each: bounds in a fraction of a second
    and as tight as the dense reference on each row."""
    from nnsmt.bounds import Interval, propagate_bounds
    n = 20000
    rows = np.repeat(np.arange(n), 3)
    cols = (rows + np.tile([0, 1, 2], n)) % n
    vals = np.tile([1.0, -2.0, 0.5], n)
    S = Sparse.from_coo((n, n), rows, cols, vals)
    g = Graph((Input("x", n), Affine("a", "x", S, Const(np.zeros(n))), Relu("r", "a"),
               Affine("y", "r", S, Const(np.ones(n)))), ("y",)).check()
    box = Interval(-np.ones(n), np.ones(n))
    bd = propagate_bounds(g, box, "interval")
    assert np.allclose(bd["a"].hi, 3.5) and np.allclose(bd["a"].lo, -3.5)
    assert np.allclose(bd["y"].hi, 1 + 3.5 * 1.5) and np.allclose(bd["y"].lo, 1 - 3.5 * 2)


# --- SMT encoding ---------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(dag_graphs(sigmoid=False, max_nodes=5), st.data())
def test_solver_forced_outputs_equal_the_exact_evaluation(g, data):
    """Fix the input to a point: z3 must force every output to exactly the exact evaluation
    (sat when they equal it, unsat when any differs)."""
    from conftest import solver_backend
    from nnsmt.encode import encode_graph
    from nnsmt.terms import And, Cmp, Not, Num, ScriptBuilder, Var
    backend = solver_backend("z3")
    x = [Fraction(v) for v in data.draw(point(g.inputs[0].dim))]
    env = evaluate_exact(g, {"x": x})

    def script(equal):
        b = ScriptBuilder()
        names = encode_graph(g, b)
        b.assert_("point", And(tuple(Cmp("=", Var(n), Num(v)) for n, v in zip(names["x"], x))))
        outs = tuple(Cmp("=", Var(n), Num(v)) for o in g.outputs for n, v in zip(names[o], env[o]))
        b.assert_("y", And(outs) if equal else Not(And(outs)))
        return b.build()

    assert backend.solve(script(True), timeout=30).status == "sat"
    assert backend.solve(script(False), timeout=30).status == "unsat"


@FAST
@given(dag_graphs(sigmoid=False, max_nodes=5), st.data())
def test_the_encoding_of_a_data_point_folds_to_the_exact_evaluation(g, data):
    from nnsmt.encode import encode_graph
    from nnsmt.terms import ScriptBuilder
    x = [Fraction(v) for v in data.draw(point(g.inputs[0].dim))]
    got = encode_graph(g, ScriptBuilder(), {"x": x})
    env = evaluate_exact(g, {"x": x})
    for o in g.outputs:
        assert [Fraction(v) for v in got[o]] == list(env[o])


def test_a_sparse_row_is_one_dot_over_its_nonzeros():
    from nnsmt.backends.smtlib import to_smtlib
    from nnsmt.encode import encode_graph
    from nnsmt.terms import Dot, ScriptBuilder
    n = 1000
    S = Sparse.from_coo((2, n), [0, 0, 1], [3, 997, 5], [1.0, -0.5, 2.0])
    first_two = Sparse.from_coo((2, n), [0, 1], [0, 1], [1.0, 1.0])
    g = Graph((Input("x", n), Affine("y", "x", S, Const([0.0, 1.0]), more=(("x", first_two),))),
              ("y",)).check()
    b = ScriptBuilder()
    encode_graph(g, b)
    s = b.build()
    (_, t0), (_, t1) = s.defs
    assert isinstance(t0, Dot) and t0.x.tolist() == ["x_3", "x_997", "x_0"]
    assert t1.x.tolist() == ["x_5", "x_1"]
    assert "(define-fun y_0 () Real (+ x_3 (* (- (/ 1 2)) x_997) x_0))" in to_smtlib(s)
    assert "(define-fun y_1 () Real (+ (* 2.0 x_5) x_1 1.0))" in to_smtlib(s)


# --- IR JSON 2.0 -------------------------------------------------------------------------------

def _param_bytes(p) -> tuple:
    if isinstance(p, Sparse):
        return ("sparse", p.shape, p.indptr.tobytes(), p.indices.tobytes(), p.data.dtype.str,
                p.data.tobytes() if p.is_float else tuple(p.data), None if p.tie is None else p.tie.tobytes())
    return ("const", p.value.dtype.str, p.value.shape,
            p.value.tobytes() if p.is_float else tuple(p.value.ravel()))


def same_graph(g: Graph, h: Graph) -> bool:
    """Node for node, field for field, parameters bit for bit."""
    if g.outputs != h.outputs or dict(g.meta) != dict(h.meta) or len(g.nodes) != len(h.nodes):
        return False
    for a, b in zip(g.nodes, h.nodes):
        if type(a) is not type(b) or a.name != b.name or a.onnx != b.onnx:
            return False
        if isinstance(a, Input) and (a.dim, a.shape) != (b.dim, b.shape):
            return False
        if isinstance(a, Affine):
            if (a.shape, [v for v, _ in a.terms()]) != (b.shape, [v for v, _ in b.terms()]):
                return False
            if [_param_bytes(p) for _, p in a.terms()] + [_param_bytes(a.bias)] != \
                    [_param_bytes(p) for _, p in b.terms()] + [_param_bytes(b.bias)]:
                return False
        if isinstance(a, (Relu, Sigmoid)) and a.x != b.x:
            return False
    return True


@settings(max_examples=40, deadline=None)
@given(dag_graphs())
def test_json_round_trip_is_bit_exact_and_schema_valid(g):
    import json
    import jsonschema
    from nnsmt.serialize import graph_from_json, graph_to_json, schema
    doc = json.loads(json.dumps(graph_to_json(g)))
    assert doc["version"] == "2.0"
    jsonschema.Draft202012Validator(schema()).validate(doc)
    h = graph_from_json(doc, "dag.json")
    assert same_graph(g, h)
    assert graph_to_json(h) == doc


def test_a_1x_file_still_loads():
    import json
    from nnsmt.serialize import graph_from_json, graph_to_json, validate_schema
    g = Graph((Input("x", 2), Affine("a", "x", Const([[1.0, 2.0]]), Const([0.5])), Relu("r", "a")), ("r",)).check()
    doc = json.loads(json.dumps(graph_to_json(g)))
    doc["version"] = "1.0"
    validate_schema(doc, "old.json")
    assert same_graph(graph_from_json(doc, "old.json"), g)


def _sparse_doc():
    from nnsmt.serialize import graph_to_json
    S = Sparse.from_coo((2, 3), [0, 0, 1], [0, 2, 1], [1.0, -1.0, 2.0])
    g = Graph((Input("x", 3), Affine("a", "x", S, Const([0.0, 0.0]))), ("a",)).check()
    return graph_to_json(g)


def _arr(values):
    from nnsmt.serialize import _arr_to_json
    return _arr_to_json(np.array(values, dtype=np.float64))


@pytest.mark.parametrize("edit, where, msg", [
    (lambda w: w.update(indptr=_arr([0, 2])), "nodes/1/weight/indptr/shape", "expected [3]"),
    (lambda w: w.update(indptr=_arr([1, 2, 3])), "nodes/1/weight/indptr", "start at 0"),
    (lambda w: w.update(indptr=_arr([0, 2, 1])), "nodes/1/weight/indptr", "never decrease"),
    (lambda w: w.update(indices=_arr([0, 2.5, 1])), "nodes/1/weight/indices/data/1", "not an integer"),
    (lambda w: w.update(indices=_arr([0, 3, 1])), "nodes/1/weight/indices/data/1", "out of range"),
    (lambda w: w.update(indices=_arr([2, 0, 1])), "nodes/1/weight/indices", "row 0: column indices must increase"),
    (lambda w: w.update(data=_arr([1.0, 2.0])), "nodes/1/weight/data/shape", "expected [3]"),
    (lambda w: w.update(shape=[2, 3, 1]), "nodes/1/weight/shape", "[out, in]"),
    (lambda w: w.pop("indices"), "nodes/1/weight/indices", "missing"),
    (lambda w: w.update(kind="dense"), "nodes/1/weight/kind", "'const', 'sparse', 'sym' or 'sparse_sym'"),
])
def test_a_bad_sparse_parameter_is_one_line_naming_the_element(edit, where, msg):
    from nnsmt.errors import InputError
    from nnsmt.serialize import graph_from_json
    doc = _sparse_doc()
    edit(doc["nodes"][1]["weight"])
    with pytest.raises(InputError) as e:
        graph_from_json(doc, "net.json")
    assert str(e.value).startswith(f"net.json: {where}: ") and msg in str(e.value), str(e.value)


def test_more_terms_are_checked_like_the_weight():
    from nnsmt.errors import InputError
    from nnsmt.serialize import graph_from_json
    doc = _sparse_doc()
    doc["nodes"][1]["more"] = [{"x": "x", "weight": doc["nodes"][1]["weight"]}, {"weight": {}}]
    with pytest.raises(InputError, match=r"net.json: nodes/1/more/1: missing field 'x'"):
        graph_from_json(doc, "net.json")
    doc["nodes"][1]["more"] = [{"x": "x", "weight": {"kind": "const", "value": _arr([[1.0, 2.0]])}}]
    with pytest.raises(InputError, match=r"net.json: invalid IR graph: affine 'a': weight shape \(1, 2\)"):
        graph_from_json(doc, "net.json")


# --- pretty printing and ONNX export -----------------------------------------------------------

def test_the_printer_shows_every_term_and_sparse_weights():
    from nnsmt.pretty import format_graph, summary
    S = Sparse.from_coo((2, 3), [0, 1], [0, 2], [1.0, 2.0])
    g = Graph((Input("x", 3, shape=(1, 3), onnx="input"), Affine("a", "x", S, Const([0.0, 0.0]), onnx="/conv"),
               Relu("r", "a"), Affine("y", "r", Const(np.eye(2)), Const([0.0, 0.0]), more=(("a", block(2, 0, 2)),))),
              ("y",)).check()
    text = format_graph(g)
    assert "x = input   # 3 [1, 3] onnx 'input'" in text
    assert "a = affine x  W=sparse[2, 3] nnz=2 b=const[2]   # 2 onnx '/conv'" in text
    assert "y = affine r  W=const[2, 2] + a  W=sparse[2, 2] nnz=2 b=const[2]   # 2" in text
    assert summary(g)["parameters"] == 2 + 2 + 4 + 2 + 2  # a sparse weight counts its nonzeros


@settings(max_examples=15, deadline=None)
@given(dag_graphs(rational=False), st.data())
def test_onnx_export_of_a_dag_runs_in_onnxruntime_like_the_ir(tmp_path_factory, g, data):
    ort = pytest.importorskip("onnxruntime")
    from nnsmt.frontends.onnx_export import save_onnx
    g = g.replace(outputs=g.outputs[:1]).check()
    path = tmp_path_factory.mktemp("dag") / "m.onnx"
    assert save_onnx(g, path, dtype="float64") is True  # float32 values, no rationals: exact
    x = np.array(data.draw(point(g.inputs[0].dim)))
    want = evaluate(g, {"x": x})[g.outputs[0]]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.reshape(1, -1)})[0].reshape(-1)
    tol = tolerance(g, x)[g.outputs[0]]
    assert np.all(np.abs(got - want) <= tol)


def test_onnx_export_refuses_a_huge_sparse_weight_naming_the_node():
    from nnsmt.errors import UnsupportedError
    from nnsmt.frontends.onnx_export import graph_to_onnx
    n = 1 << 12
    S = Sparse.from_coo((n, n), np.arange(n), np.arange(n), np.ones(n))
    g = Graph((Input("x", n), Affine("conv1", "x", S, Const(np.zeros(n)))), ("conv1",)).check()
    with pytest.raises(UnsupportedError, match=r"affine node 'conv1' has a sparse weight of shape "
                                               r"\[4096, 4096\] \(4096 nonzeros\)"):
        graph_to_onnx(g)


# --- passes, parameters and queries ------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(dag_graphs(sigmoid=False), st.floats(0.0625, 2, width=32), st.data())
def test_removing_stable_relus_keeps_a_dag_exactly(g, r, data):
    """States from sound bounds on a box: the pass keeps every value it keeps exactly there."""
    from nnsmt.bounds import Interval, propagate_bounds, relu_states
    from nnsmt.passes import remove_stable
    n = g.inputs[0].dim
    c = np.array(data.draw(point(n)))
    box = Interval(c - r, c + r)
    states = relu_states(g, propagate_bounds(g, box))
    small = remove_stable(g, {k: v.astype(int) for k, v in states.items()}).check()
    for _ in range(4):
        t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
        x = [Fraction(float(v)) for v in np.clip(c - r + 2 * r * t, c - r, c + r)]
        a, b = evaluate_exact(g, {"x": x}), evaluate_exact(small, {"x": x})
        for o in g.outputs:
            assert list(a[o]) == list(b[o])


def test_folding_keeps_the_consumers_other_terms_and_skips_shared_relus():
    """x in [1, 2]: a = (x, 2x) is stably active. z = V relu(a) + x (a residual term) folds
    exactly and keeps its `more` term, shape and ONNX name; a ReLU whose output is also read
    elsewhere (r2 feeds z2 and the output) is left alone."""
    from nnsmt.passes import remove_stable
    g = Graph((Input("x", 1), Affine("a", "x", Const([[1.0], [2.0]]), Const([0.0, 0.0])), Relu("r", "a"),
               Affine("z", "r", Const([[1.0, 1.0]]), Const([0.5]), more=(("x", Const([[1.0]])),),
                      shape=(1, 1), onnx="z_out"),
               Affine("a2", "z", Const([[1.0]]), Const([0.0])), Relu("r2", "a2"),
               Affine("z2", "r2", Const([[2.0]]), Const([0.0]))), ("z2", "r2")).check()
    small = remove_stable(g, {"r": np.array([1, 1]), "r2": np.array([1])}, merge=False)
    z = small.node("z")
    assert [v for v, _ in z.terms()] == ["r", "x"] and z.shape == (1, 1) and z.onnx == "z_out"
    assert small.dims()["r"] == 1  # 2x = 2 relu(x): folded into z
    assert small.node("r2") is g.node("r2") and small.node("z2") is g.node("z2")
    merged = remove_stable(g, {"r": np.array([1, 1]), "r2": np.array([1])})
    assert "r" not in [n.name for n in merged.nodes]
    assert [v for v, _ in merged.node("z").terms()] == ["x", "x"]
    for x in (Fraction(1), Fraction(3, 2), Fraction(2)):
        want = evaluate_exact(g, {"x": [x]})
        for h in (small, merged):
            got = evaluate_exact(h, {"x": [x]})
            assert list(got["z2"]) == list(want["z2"]) and list(got["r2"]) == list(want["r2"])


def test_make_symbolic_covers_every_term_dense_and_sparse():
    from nnsmt.ir import SparseSym
    from nnsmt.params import Perturbation, make_symbolic, nominal_graph, sym_params
    g = Graph((Input("x", 2), Affine("a", "x", Const(np.eye(2)), Const([0.0, 1.0]), onnx="a_out"), Relu("r", "a"),
               Affine("y", "r", Const([[1.0, -1.0]]), Const([0.0]), more=(("x", Const([[2.0, 0.5]])),))),
              ("y",), {"source": "res.onnx"}).check()
    gs = make_symbolic(g, Perturbation(Fraction(1, 10)))
    assert [p.name for p in sym_params(gs)] == ["a_W", "a_B", "y_W", "y_B", "y_W1"]
    assert gs.node("a").onnx == "a_out" and [v for v, _ in gs.node("y").terms()] == ["r", "x"]
    assert same_graph(nominal_graph(gs).replace(meta=g.meta), g)
    sparse = g.replace(nodes=g.nodes[:3] + (Affine("y", "r", Const([[1.0, -1.0]]), Const([0.0]),
                                                   more=(("x", Sparse.from_dense(np.array([[2.0, 0.0]]))),)),))
    gs = make_symbolic(sparse.check(), Perturbation(Fraction(1, 10)))
    p = gs.node("y").more[0][1]  # no tie: its one stored entry is one variable; the zero stays
    assert isinstance(p, SparseSym) and p.size == 1 and list(p.var_names()) == ["y_W1_0"]
    assert list(p.lo) == [Fraction(19, 10)] and list(p.hi) == [Fraction(21, 10)]
    assert "the sparse weights of y move entry by entry" in gs.meta["perturbation"]
    back = nominal_graph(gs).node("y").more[0][1]  # the nominal matrix, its entry a parameter
    assert list(back.data) == [2.0] and list(back.indices) == [0] and list(back.tie) == [0]
    only_a = make_symbolic(sparse.check(), Perturbation(Fraction(1, 10), layers=("a",)))
    assert [p.name for p in sym_params(only_a)] == ["a_W", "a_B"]
    biases = make_symbolic(sparse.check(), Perturbation(Fraction(1, 10), which="biases"))
    assert isinstance(biases.node("y").more[0][1], Sparse)


def _residual_net() -> Graph:
    """x in R^2 -> a = S x (sparse) -> r = relu(a) -> y = V r + x (residual) -> relu -> out."""
    S = Sparse.from_dense(np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]))
    return Graph((Input("x", 2), Affine("a", "x", S, Const([0.5, 0.0, -3.0])), Relu("r", "a"),
                  Affine("y", "r", Const([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), Const([0.0, 0.25]),
                         more=(("x", Sparse.from_coo((2, 2), [0, 1], [0, 1], [1.0, 1.0])),)),
                  Relu("h", "y"), Affine("out", "h", Const([[1.0, -1.0]]), Const([0.0]))),
                 ("out",), {"source": "res"}).check()


def test_stability_and_compression_of_a_residual_sparse_network():
    """x in [0, 1]^2: a0 = x0 + 1/2 > 0 (active), a1 = -x1 <= 0 (inactive), a2 = x0 + x1 - 3 < 0
    (inactive); y0 = relu(a0) + x0 >= 1/2 (active), y1 = x1 + 1/4 > 0 (active): everything
    is stable; the compressed network equals the original exactly (z3 proves it)."""
    from conftest import solver_backend
    from nnsmt.queries.compress import CompressOptions, compress
    from nnsmt.queries.stability import StabilityOptions, cone
    from nnsmt.result import SolveOptions
    backend = solver_backend("z3")
    g = _residual_net()
    dom = InputDomainBox([0, 0], [1, 1])

    def solve(script, seconds=None, options=SolveOptions()):
        return backend.solve(script, seconds, options)
    res = compress(g, dom, solve, CompressOptions(StabilityOptions(timeout=30)))
    assert res.stability.counts()["unstable"] == 0 and res.equivalence == "unsat"
    assert res.after["relus"] < res.before["relus"]
    sub, names = cone(g, {"y": [1]})
    assert names == {"y": ["y_1"]} and sub.node("y").weight.shape == (1, 3)
    assert isinstance(sub.node("y").more[0][1], Sparse) and sub.node("y").more[0][1].shape == (1, 2)
    x = [Fraction(1, 3), Fraction(2, 3)]
    assert list(evaluate_exact(sub, {"x": x})["y"]) == [evaluate_exact(g, {"x": x})["y"][1]]


def InputDomainBox(lo, hi):
    from nnsmt.domain import InputDomain
    return InputDomain(((tuple(Fraction(v) for v in lo), tuple(Fraction(v) for v in hi)),))


def test_robustness_of_a_residual_sparse_network_with_a_perturbed_dense_layer():
    """Perturb only `out` (dense): f_p(x) - f(x) = dw . h + db with |dw|, |db| <= δ; at
    x = (1/2, 1/2), h = (3/2, 3/4), so the largest change is δ (3/2 + 3/4 + 1) = 13/40 for δ = 1/10."""
    from conftest import solver_backend
    from nnsmt.engine.robustness import check
    from nnsmt.params import Perturbation, make_symbolic
    from nnsmt.queries.robustness import Question
    solver_backend("z3")
    g = _residual_net()
    x = (Fraction(1, 2), Fraction(1, 2))
    assert list(evaluate_exact(g, {"x": list(x)})["h"]) == [Fraction(3, 2), Fraction(3, 4)]
    gs = make_symbolic(g, Perturbation(Fraction(1, 10), layers=("out",)))
    assert check(gs, Question("eps", point=x, value=Fraction(13, 40)), "z3", timeout=30).status == "unsat"
    o = check(gs, Question("eps", point=x, value=Fraction(32, 100)), "z3", timeout=30)
    assert o.status == "sat" and o.witness.holds is True


@settings(max_examples=10, deadline=None)
@given(dag_graphs(sigmoid=False, max_nodes=5), st.data())
def test_relu_states_proved_on_a_dag_hold_at_sampled_points(g, data):
    """classify on [-1, 1]^n (bounds, guided corners, splitting, z3): every ACTIVE/INACTIVE
    neuron has the proved sign at exactly replayed points; witnesses replay."""
    from conftest import solver_backend
    from nnsmt.queries.stability import ACTIVE, INACTIVE, StabilityOptions, check_witnesses, classify
    from nnsmt.result import SolveOptions
    backend = solver_backend("z3")
    n = g.inputs[0].dim
    dom = InputDomainBox([-1] * n, [1] * n)
    st_ = classify(g, dom, lambda s, t=None, o=SolveOptions(): backend.solve(s, t, o),
                   StabilityOptions(timeout=20, samples=2, split=4))
    check_witnesses(g, st_)
    for _ in range(4):
        x = [Fraction(v) for v in data.draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))]
        env = evaluate_exact(g, {"x": x})
        for r, states in st_.states.items():
            pre = env[g.node(r).x]
            assert all(pre[i] >= 0 for i in np.flatnonzero(states == ACTIVE))
            assert all(pre[i] <= 0 for i in np.flatnonzero(states == INACTIVE))


def test_onnx_export_of_a_graph_with_two_inputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from nnsmt.frontends.onnx_export import save_onnx
    g = Graph((Input("u", 2), Input("v", 3),
               Affine("s", "u", Const([[1.0, 2.0]]), Const([0.5]),
                      more=(("v", Sparse.from_coo((1, 3), [0], [2], [-1.0])),)), Relu("r", "s")),
              ("r",)).check()
    assert save_onnx(g, tmp_path / "two.onnx") is True
    sess = ort.InferenceSession(str(tmp_path / "two.onnx"), providers=["CPUExecutionProvider"])
    u, v = np.array([[1.0, 1.0]], np.float32), np.array([[0.0, 0.0, 2.0]], np.float32)
    assert sess.run(None, {"u": u, "v": v})[0].tolist() == [[1.5]]
