"""exp on backends without exp (Z3): the sound piecewise-linear relaxation of Exp nodes
(tangents below, chords above), refined at rejected candidates, with known answers through
`verify` on softmax and exp networks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nnsmt.bounds import Interval  # noqa: E402
from nnsmt.encode import encode_graph  # noqa: E402
from nnsmt.engine.verify import VerifyOptions, choose, plan, relax_mode, verify  # noqa: E402
from nnsmt.errors import InputError, UnsupportedError  # noqa: E402
from nnsmt.frontends import load_onnx  # noqa: E402
from nnsmt.interpret import decide, evaluate_enclosure  # noqa: E402
from nnsmt.ir import Div, Exp, Graph, Input, Sigmoid  # noqa: E402
from nnsmt.queries.verify import VerifyQuery  # noqa: E402
from nnsmt.sigmoid import exp_bounds, exp_constraints, exp_relaxation  # noqa: E402
from nnsmt.terms import And, Cmp, Or, ScriptBuilder, Var, linear_form  # noqa: E402
from nnsmt.vnnlib import parse_vnnlib  # noqa: E402

from conftest import solver_backend  # noqa: E402

Z3 = VerifyOptions(backend="z3", timeout=120)


# ---- an independent check of the constraints: y ranges over a tight enclosure of exp(t) ----

def _holds(term, env) -> bool | None:
    """True / False / None (undecided) of a linear boolean term when each variable ranges over
    the interval `env` gives it: True means it holds for every value in the intervals."""
    if isinstance(term, And):
        vals = [_holds(a, env) for a in term.args]
        return False if False in vals else (None if None in vals else True)
    if isinstance(term, Or):
        vals = [_holds(a, env) for a in term.args]
        return True if True in vals else (None if None in vals else False)
    assert isinstance(term, Cmp), term
    coef, c = linear_form(term.lhs)
    rc, rk = linear_form(term.rhs)
    for k, v in rc.items():
        coef[k] = coef.get(k, 0) - v
    lo = hi = c - rk
    for k, w in coef.items():
        a, b = env[k]
        lo, hi = lo + min(w * a, w * b), hi + max(w * a, w * b)
    return decide(term.op, lo, hi)


def _true_exp(t) -> tuple[Fraction, Fraction]:
    return exp_bounds(t, 200)  # far tighter than the relaxation's 40-bit constants


ends = st.fractions(min_value=-30, max_value=30, max_denominator=2**12)


@settings(max_examples=60, deadline=None)
@given(ends, st.fractions(min_value=0, max_value=25, max_denominator=2**10), st.integers(1, 40),
       st.lists(st.fractions(0, 1, max_denominator=10**6), max_size=4),
       st.lists(st.fractions(0, 1, max_denominator=10**9), min_size=1, max_size=6))
def test_relaxation_holds_at_exp(lo, width, pieces, extra, ts):
    """Every asserted constraint holds at (t, exp(t)) for t in [lo, hi], with breakpoints from
    refinement anywhere (inside or not), and at the breakpoints themselves."""
    hi = lo + width
    extra = [lo + (width + 2) * e - 1 for e in extra]  # some outside [lo, hi]
    cons = And(tuple(exp_constraints(Var("t"), Var("y"), lo, hi, pieces, extra)))
    r = exp_relaxation(lo, hi, pieces, extra)
    pts = [lo + width * f for f in ts] + [a for a, *_ in r["chords"]] + [hi]
    for t in pts:
        assert _holds(cons, {"t": (t, t), "y": _true_exp(t)}) is True, (lo, hi, t)


@settings(max_examples=40, deadline=None)
@given(ends, st.fractions(min_value=Fraction(1, 100), max_value=20, max_denominator=2**10),
       st.integers(1, 40), st.lists(st.fractions(0, 1, max_denominator=10**6), min_size=1, max_size=5))
def test_relaxation_is_tight(lo, width, pieces, ts):
    """Not vacuous: between the best tangent and the piece's chord, the gap is the curvature
    term of the piece ((b - a)^2 / 4 * exp(b)) plus the constants' rounding."""
    hi = lo + width
    r = exp_relaxation(lo, hi, pieces)
    assert r["lo"] == lo and r["hi"] == hi and len(r["chords"]) >= pieces
    for f in ts:
        t = lo + width * f
        low = max(k * t + c for k, c in r["tangents"])
        a, b, k, c = next(s for s in r["chords"] if s[0] <= t <= s[1])
        e_b = _true_exp(b)[1]
        assert low <= _true_exp(t)[0] and k * t + c >= _true_exp(t)[1]
        assert k * t + c - low <= (b - a) ** 2 / 4 * e_b + Fraction(1, 2**24) * e_b * max(1, abs(t))


def test_relaxation_with_an_infinite_end():
    """An unbounded side keeps what stays sound: y > 0 and tangents (from the finite end and
    refinement points), no chord and no ceiling."""
    r = exp_relaxation(-np.inf, 1.0, 8, extra=[Fraction(-3), Fraction(2)])
    assert [(a, b) for a, b, *_ in r["chords"]] == [(-3, 1)] and r["chord"] is None
    assert r["ceil"] is not None and r["floor"] is None and len(r["tangents"]) == 2
    cons = And(tuple(exp_constraints(Var("t"), Var("y"), -np.inf, 1.0, 8, [Fraction(-3)])))
    for t in (Fraction(-50), Fraction(-3), Fraction(1, 3), Fraction(1)):
        assert _holds(cons, {"t": (t, t), "y": _true_exp(t)}) is True
    r = exp_relaxation(-np.inf, np.inf)
    assert r["tangents"] == r["chords"] == [] and r["floor"] is r["ceil"] is None


def _exp_net(dim=1):
    return Graph((Input("x", dim), Exp("y", "x")), ("y",)).check()


def test_encoding_modes():
    """pwl: linear, no exp, one `pwl_` assertion per element, checked at exact points; exp: the
    exact term, as before; pwl without bounds is refused."""
    g = _exp_net(2)
    bounds = {"x": Interval(np.array([-2.0, 0.0]), np.array([1.0, 3.0]))}
    b = ScriptBuilder()
    encode_graph(g, b, exp="pwl:6", sigmoid_bounds=bounds)
    s = b.build()
    assert "exp" not in s.features and s.logic == "QF_LRA"
    assert [n for n, _ in s.asserts] == ["pwl_y_0", "pwl_y_1"] and s.meta["relaxed"] == ["y_0", "y_1"]
    for t0, t1 in ((Fraction(-2), Fraction(3)), (Fraction(1, 7), Fraction(11, 5))):
        env = {"x_0": (t0, t0), "x_1": (t1, t1), "y_0": _true_exp(t0), "y_1": _true_exp(t1)}
        assert all(_holds(t, env) is True for _, t in s.asserts)
        # and it excludes values clearly off exp
        env["y_0"] = tuple(v * Fraction(11, 10) for v in env["y_0"])
        assert _holds(s.asserts[0][1], env) is False
    b = ScriptBuilder()
    encode_graph(g, b)
    assert "exp" in b.build().features
    with pytest.raises(UnsupportedError, match="needs bounds of its input"):
        encode_graph(g, ScriptBuilder(), exp="pwl")
    with pytest.raises(UnsupportedError, match="unknown exp encoding"):
        encode_graph(g, ScriptBuilder(), exp="pwl:x", sigmoid_bounds=bounds)


def test_z3_pins_the_relaxation_at_a_point():
    """With the input fixed, Z3 finds the relaxation admits exp(t) and rules out values 1%
    off it (32 pieces over [-10, 10]: the gap is about h^2/4 = 10%; refinement at t closes it)."""
    z3 = solver_backend("z3")
    t = Fraction(13, 10)
    lo, hi = exp_bounds(t)
    g = _exp_net()
    bounds = {"x": Interval(np.array([-10.0]), np.array([10.0]))}
    for extra, op, val, want in (((), ">=", lo, "sat"), ((), "<=", hi, "sat"),
                                 ([t], ">", hi * Fraction(101, 100), "unsat"),
                                 ([t], "<", lo * Fraction(99, 100), "unsat")):
        b = ScriptBuilder()
        encode_graph(g, b, exp="pwl", sigmoid_bounds=bounds, sigmoid_extra={("y", 0): extra})
        b.assert_("at", Cmp("=", Var("x_0"), _num(t)))
        b.assert_("claim", Cmp(op, Var("y_0"), _num(val)))
        assert z3.solve(b.build(), timeout=30).status == want, (extra, op)


def _num(q):
    from nnsmt.terms import Num
    return Num(Fraction(q))


# ---- verify: known answers on Z3 ----

def _save(tmp_path, name, nodes, n, inits=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, n])], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = tmp_path / name
    onnx.save(m, str(p))
    return load_onnx(p)


def softmax_net(tmp_path, n, tail="Identity"):
    """Softmax over n inputs, not the final op (a final one is dropped, keeping the logits)."""
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1)]
    inits = []
    if tail == "Reshape":
        nodes.append(helper.make_node("Reshape", ["s", "shape"], ["out"]))
        inits.append(numpy_helper.from_array(np.array([1, n], dtype=np.int64), "shape"))
    else:
        nodes.append(helper.make_node("Identity", ["s"], ["out"]))
    return _save(tmp_path, f"softmax{n}_{tail}.onnx", nodes, n, inits)


def explicit_softmax_net(tmp_path, n):
    """exp(x) / ReduceSum(exp(x)), written out."""
    nodes = [helper.make_node("Exp", ["x"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axes"], ["s"], keepdims=1),
             helper.make_node("Div", ["e", "s"], ["out"])]
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    return _save(tmp_path, f"explicit{n}.onnx", nodes, n, [axes])


def _prop(n_in, n_out, lo, hi, body):
    text = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in))
    text += "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_out))
    text += "".join(f"(assert (>= X_{i} {lo}))\n(assert (<= X_{i} {hi}))\n" for i in range(n_in))
    return parse_vnnlib(text + body, "p.vnnlib")


def _check_witness(g, o, ok):
    """The witness is in the box and the exact enclosure of the network's outputs at it
    satisfies `ok(lo, hi)` (checked here, independently of the certificate)."""
    assert o.status == "sat", o
    assert o.witness.replay == "enclosure"
    x = list(o.witness.x)
    lo, hi = evaluate_enclosure(g, {g.inputs[0].name: x})[g.outputs[0]]
    assert ok(x, [Fraction(v) for v in lo], [Fraction(v) for v in hi]), (x, lo, hi)


SOFTMAX_CASES = [(2, "Identity"), (4, "Reshape"), (4, "explicit")]


@pytest.mark.parametrize("n, tail", SOFTMAX_CASES, ids=[f"{n}-{t}" for n, t in SOFTMAX_CASES])
def test_softmax_known_answers_on_z3(tmp_path, n, tail):
    """Softmax over [-10, 10]^n: Y_0 + Y_1 <= 1 always (unsat above 1.01; for n = 2 the sum is
    exactly 1), 0 < Y_0 < 1 (unsat outside), 0.1 <= Y_0 <= 0.9 reachable (sat, certified)."""
    g = explicit_softmax_net(tmp_path, n) if tail == "explicit" else softmax_net(tmp_path, n, tail)
    assert any(isinstance(v, Exp) for v in g.nodes) and any(isinstance(v, Div) for v in g.nodes)
    assert g.meta.get("dropped_softmax") != "true"
    o = verify(g, _prop(n, n, -10, 10, "(assert (> (+ Y_0 Y_1) 1.01))\n"), Z3)
    assert o.status == "unsat", o
    assert o.engine == "plain" and any(v.startswith("exp by a sound piecewise-linear") for v in o.notes)
    o = verify(g, _prop(n, n, -10, 10, "(assert (or (< Y_0 0) (> Y_0 1)))\n"), Z3)
    assert o.status == "unsat", o
    o = verify(g, _prop(n, n, -10, 10, "(assert (>= Y_0 0.1))\n(assert (<= Y_0 0.9))\n"), Z3)
    _check_witness(g, o, lambda x, lo, hi: all(-10 <= v <= 10 for v in x) and
                   Fraction(1, 10) <= lo[0] and hi[0] <= Fraction(9, 10))


def test_softmax_narrow_band_needs_refinement(tmp_path):
    """Y_0 within 1e-5 of 0.3: the first relaxation's candidates miss the band (exp is off by up
    to several percent between breakpoints); refinement at them finds a certified one."""
    g = softmax_net(tmp_path, 2)
    o = verify(g, _prop(2, 2, -10, 10, "(assert (>= Y_0 0.3))\n(assert (<= Y_0 0.30001))\n"), Z3)
    _check_witness(g, o, lambda x, lo, hi: Fraction(3, 10) <= lo[0] and hi[0] <= Fraction(30001, 100000))
    assert o.rounds > 1
    # y_0 = 1 / (1 + exp(x_1 - x_0)): the band is x_0 - x_1 = logit(0.3) = -0.8473 to 4 digits
    assert abs(float(o.witness.x[0] - o.witness.x[1]) + 0.847298) < 1e-3


@pytest.mark.parametrize("body, want, near", [
    ("(assert (<= Y_0 2.7))\n", "sat", None),
    ("(assert (< Y_0 1))\n", "unsat", None),
    ("(assert (>= Y_0 2.71829))\n", "unsat", None),  # e = 2.7182818... < 2.71829
    ("(assert (>= Y_0 2.718281))\n", "sat", 1.0),  # only for x within 3e-7 of 1
    ("(assert (>= Y_0 2))\n(assert (<= Y_0 2.000001))\n", "sat", math.log(2)),  # within 5e-7
], ids=["le_2.7", "lt_1", "ge_2.71829", "ge_2.718281", "band_at_2"])
def test_exp_known_answers_on_z3(body, want, near):
    """exp(x) on [0, 1]; the tight sat cases need the candidate within 5e-7 of a point, so
    refinement, and each witness's exact enclosure satisfies the property."""
    g = _exp_net()
    prop = _prop(1, 1, 0, 1, body)
    o = verify(g, prop, Z3)
    assert o.status == want, o
    if want == "sat":
        x = o.witness.x
        lo, hi = evaluate_enclosure(g, {"x": list(x)})["y"]
        env = {"X_0": (x[0], x[0]), "Y_0": (Fraction(lo[0]), Fraction(hi[0]))}
        assert 0 <= x[0] <= 1 and all(_holds(t, env) is True for _, t in prop.asserts)
        if near is not None:
            assert abs(float(x[0]) - near) < 1e-6


# ---- planning: modes, engines, notes, refusals ----

def test_planning_picks_the_relaxation_where_exp_is_missing(tmp_path):
    g = softmax_net(tmp_path, 2)
    prop = _prop(2, 2, -10, 10, "(assert (> Y_0 0.5))\n")
    engine, _, why = choose(g, prop, VerifyOptions(backend="z3"))
    assert engine == "plain" and "exp relaxed piecewise-linearly" in why
    q = plan(g, prop, VerifyOptions(backend="z3")).query
    assert isinstance(q, VerifyQuery) and q.sigmoid == "pwl" and q.relaxed
    assert "x" in q.sigmoid_bounds and "exp" not in q.compile().features
    assert relax_mode(g, "z3", "exp") == "exp"
    # the exact encoding stays when asked for (and Z3 refuses it, saying why)
    q = VerifyQuery(g, prop, sigmoid="exp")
    assert not q.relaxed and "exp" in q.compile().features
    with pytest.raises(UnsupportedError, match="Z3 has no exp"):
        plan(g, prop, VerifyOptions(backend="z3", sigmoid="exp"))
    # an unbounded input region gives the relaxation nothing to work on
    open_prop = parse_vnnlib("(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
                             "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                             "(assert (>= X_0 0))\n(assert (> Y_0 0.5))\n", "open.vnnlib")
    with pytest.raises(InputError, match="piecewise-linear exp relaxation needs a bounded input region"):
        plan(g, open_prop, VerifyOptions(backend="z3"))


def test_backends_with_exp_keep_it_exact():
    """cvc5 has exp: an exp network stays exact there (a sigmoid network relaxes, as before)."""
    solver_backend("cvc5")
    sig = Graph((Input("x", 1), Sigmoid("s", "x"), Exp("y", "s")), ("y",)).check()
    assert [relax_mode(_exp_net(), be) for be in ("z3", "cvc5")] == ["pwl", "exp"]
    assert [relax_mode(sig, be) for be in ("z3", "cvc5")] == ["pwl", "pwl"]
    assert relax_mode(_exp_net(), "cvc5", "pwl") == "pwl"
    assert relax_mode(Graph((Input("x", 1), Sigmoid("s", "x")), ("s",)).check(), "z3") == "pwl"


def test_refine_adds_breakpoints_at_the_candidate(tmp_path):
    g = softmax_net(tmp_path, 2)
    prop = _prop(2, 2, -10, 10, "(assert (> Y_0 0.5))\n")
    q = plan(g, prop, VerifyOptions(backend="z3")).query
    exp_node = next(v for v in g.nodes if isinstance(v, Exp))
    q2 = q.refine({"X_0": Fraction(1, 3), "X_1": Fraction(-2)}, None)
    assert q2.round == 1
    assert Fraction(1, 3) in q2.sigmoid_extra[(exp_node.name, 0)]
    assert Fraction(-2) in q2.sigmoid_extra[(exp_node.name, 1)]
    def atoms_of(query):
        return {n: len(t.args) for n, t in query.compile().asserts if n.startswith("pwl_")}
    before, after = atoms_of(q), atoms_of(q2)
    assert set(before) == set(after) == {f"pwl_{exp_node.name}_0", f"pwl_{exp_node.name}_1"}
    assert all(after[k] > before[k] for k in before)  # new tangents and pieces at the candidate
    assert VerifyQuery(g, prop).refine({"X_0": 0, "X_1": 0}, None) is None  # exact: nothing to refine
