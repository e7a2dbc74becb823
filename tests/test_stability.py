"""ReLU stability: bounds first, then exact queries; both methods agree; witnesses replay."""

import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as hst

from nnsmt.cli import main
from nnsmt.domain import InputDomain, load_domain, parse_box_json
from nnsmt.errors import InputError, UnsupportedError, ValidationError
from nnsmt.interpret import evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Relu
from nnsmt.terms import Or
from nnsmt.queries.stability import (ACTIVE, INACTIVE, UNKNOWN, UNSTABLE, StabilityOptions, check_witnesses,
                                      classify, cone, refuted_by_splitting)
from nnsmt.result import SolveOptions

from conftest import EXAMPLES, need_shared, solver_backend
from helpers import BOX, hand_net
from strategies import mlp_graph, mlp_specs


def solve_with(backend):
    """A `nnsmt.result.Solve` on `backend` in this process (its own time limit)."""
    def solve(script, seconds=None, options=SolveOptions()):
        return backend.solve(script, seconds, options)
    solve.backend, solve.capabilities = backend.name, backend.capabilities
    return solve


@pytest.mark.parametrize("guided", [False, True])
@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_hand_derived_classification(backend, method, guided):
    g = hand_net()
    st = classify(g, BOX, solve_with(backend), StabilityOptions(method=method, timeout=30,
                  guided=guided, attack=64 if guided else 0, bab_first_s=0))
    assert list(st.states["r1"]) == [UNSTABLE] * 3
    assert list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    assert st.by_bounds == 0 and st.unsat >= 1  # the inactive one needed a proof
    check_witnesses(g, st)
    assert set(st.witnesses) == {("r1", 0), ("r1", 1), ("r1", 2), ("r2", 1)}
    if guided:
        # the corners the linear bounds point to show all four unstable neurons (layer 1 is
        # affine in the input: its bounds are exact, attained at those corners; relu(x) - 0.5
        # at x = 1 and x = -1): only "can r2[0] be active?" is left, and it is unsat
        assert st.by_samples == 4 and (st.queries, st.unsat) == (1, 1)
    else:
        assert st.by_samples == 0 and st.points == 0
        if method == "per-neuron":  # at most two questions per open neuron (5 open)
            assert 2 <= st.queries <= 10


@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_attack_shows_what_it_can(backend, method):
    """Without samples or corners, the gradient attack alone shows the hand net's four unstable
    neurons (each state holds on a quarter of the box or more); "can r2[0] be active?"
    stays for the one query, and its answer is unsat (r2[0] <= -0.5 everywhere)."""
    g = hand_net()
    st = classify(g, BOX, solve_with(backend), StabilityOptions(method, 30, guided=False, attack=16,
                                                                           bab_first_s=0))
    assert st.by_samples == st.by_attack == 4 and (st.queries, st.unsat) == (1, 1)
    assert list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    check_witnesses(g, st)


def test_methods_agree(backend):
    g = hand_net()
    f = solve_with(backend)
    a = classify(g, BOX, f, StabilityOptions("single", 30, guided=False, attack=0, bab_first_s=0))
    b = classify(g, BOX, f, StabilityOptions("per-neuron", 30, guided=False, attack=0, bab_first_s=0))
    assert a.same_as(b) and a.unknown == b.unknown == 0
    assert a.unsat == 1  # the harvest ends with the one unsat


def test_per_neuron_without_reuse_asks_two_questions_a_neuron(backend):
    g = hand_net()
    f = solve_with(backend)
    a = classify(g, BOX, f, StabilityOptions("per-neuron", 30, guided=False, attack=0, bab_first_s=0, reuse=False))
    assert a.queries == 10 and not a.reuse  # 5 open neurons, none decided by bounds
    assert a.same_as(classify(g, BOX, f, StabilityOptions("per-neuron", 30, guided=False, attack=0, bab_first_s=0)))
    check_witnesses(g, a)


def _fake_solver(model_x):
    from nnsmt.result import Result
    return lambda s, t=None, o=None: Result("sat", "fake", model={f"X_{i}": Fraction(v) for i, v in enumerate(model_x)})


@pytest.mark.parametrize("x, msg", [([2, 0], "outside the domain"),  # not in [-1, 1]^2
                                    ([0, 0], "fails the exact replay")])  # a = 0: shows nothing
@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_bad_models_are_refused(method, x, msg):
    with pytest.raises(ValidationError, match=msg):
        classify(hand_net(), BOX, _fake_solver(x), StabilityOptions(method, guided=False, attack=0, bab_first_s=0))


def test_queries_ask_for_the_soi_simplex():
    """Every stability query asks for the sum-of-infeasibilities simplex as a typed option
    (`SolveOptions(simplex="soi")`, nothing in the script's meta), which cvc5 declares it
    honours; asking for the default simplex instead classifies the same."""
    be = solver_backend("cvc5")
    seen = []

    def solve(script, seconds=None, options=SolveOptions()):
        seen.append(options)
        assert "solver_options" not in script.meta
        return be.solve(script, seconds, options)
    st = classify(hand_net(), BOX, solve, StabilityOptions(guided=False, attack=0, bab_first_s=0))
    assert seen and all(o.simplex == "soi" for o in seen)
    assert "simplex" in be.capabilities.options
    n = len(seen)
    assert classify(hand_net(), BOX, solve, StabilityOptions(guided=False, attack=0, bab_first_s=0, simplex="default")).same_as(st)
    assert all(o.simplex == "default" for o in seen[n:])


def test_cone_keeps_the_asked_rows():
    """The cone of r2[1]'s pre-activation is layer 1 and that one row, under its own name."""
    g = hand_net()
    c, names = cone(g, {"a2": [1]})
    assert [n.name for n in c.nodes] == ["x", "a1", "r1", "a2"] and names == {"a2": ["a2_1"]}
    assert c.node("a2").weight.shape == (1, 3)
    c, names = cone(g, {"a1": [0, 2], "a2": [1]})  # a1 feeds a2: kept whole
    assert c.node("a1").weight.shape == (3, 2) and names == {"a2": ["a2_1"]}
    x = [Fraction(1, 3), Fraction(-1, 2)]
    assert evaluate_exact(c, {"x": x})["a2"][0] == evaluate_exact(g, {"x": x})["a2"][1]


def test_bounds_decide_without_queries(backend):
    """On [0.5, 1]^2 every layer-1 neuron is decided by bounds (x+y > 0, x >= 0; x-y unstable)."""
    g = hand_net()
    dom = parse_box_json('{"lo": [0.5, 0.5], "hi": [1, 1]}')
    st = classify(g, dom, solve_with(backend), StabilityOptions("single", 30))
    assert st.states["r1"][0] == ACTIVE and st.states["r1"][2] == ACTIVE and st.by_bounds >= 2
    check_witnesses(g, st)


def test_zero_preactivation_is_stable(backend):
    """relu(x - 1) on x in [0, 1] reaches 0 only at x = 1 and is never positive: inactive."""
    g = Graph((Input("x", 1), Affine("a", "x", Const(np.array([[1.0]])), Const(np.array([-1.0]))),
               Relu("r", "a")), ("r",)).check()
    st = classify(g, parse_box_json('{"lo": [0], "hi": [1]}'), solve_with(backend))
    assert list(st.states["r"]) == [INACTIVE]


def test_box_json_formats(tmp_path):
    d = parse_box_json('{"lo": 0, "hi": 16, "dim": 3}')
    assert d.boxes[0] == ((0, 0, 0), (16, 16, 16))
    d = parse_box_json('{"lo": ["1/3", 0.5], "hi": [1, 2]}')
    assert d.boxes[0][0][0] == Fraction(1, 3) and d.dim == 2
    d = parse_box_json('{"boxes": [{"lo": [0], "hi": [1]}, {"lo": [2], "hi": [3]}]}')
    assert len(d.boxes) == 2 and d.contains([Fraction(5, 2)]) and not d.contains([Fraction(3, 2)])
    for bad, msg in [('{"lo": [1], "hi": [0]}', "lo 1 > hi 0"), ('{"lo": 0, "hi": 1}', "needs \"dim\""),
                     ('{"lo": ["x"], "hi": [1]}', r"lo\[0\]"), ("[1,", "invalid JSON")]:
        with pytest.raises(InputError, match=msg):
            parse_box_json(bad, "box.json")
    p = tmp_path / "b.json"
    p.write_text('{"lo": [0, 0], "hi": [1, 1]}')
    with pytest.raises(InputError, match="3"):
        load_domain(p, dim=3)


def test_domain_from_vnnlib():
    d = load_domain(EXAMPLES / "corner_robust.vnnlib", dim=2)
    assert d.dim == 2 and len(d.boxes) == 1


def test_cli_stable_json(capsys, tmp_path):
    from nnsmt.frontends.onnx_export import save_onnx
    net = tmp_path / "hand.onnx"
    save_onnx(hand_net(), net)
    box = tmp_path / "box.json"
    box.write_text('{"lo": [-1, -1], "hi": [1, 1]}')
    code = main(["stable", str(net), "--domain", str(box), "--method", "both", "--json", "--timeout", "30"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["identical"]
    assert out["results"][0]["counts"] == {"active": 0, "inactive": 1, "unstable": 4, "unknown": 0, "total": 5}


def test_cli_stable_bad_domain(capsys, tmp_path):
    box = tmp_path / "box.json"
    box.write_text('{"lo": [0], "hi": [1]}')
    code = main(["stable", str(EXAMPLES / "classifier.onnx"), "--domain", str(box)])
    assert code == 2 and "box.json" in capsys.readouterr().err


def _reference(g: Graph, dom: InputDomain, backend) -> dict:
    """Each neuron's state from two queries on the plain encoding of the whole network (no
    bounds, no cone, no pre-pass): what the optimised paths must reproduce."""
    from nnsmt.encode import encode_graph
    from nnsmt.terms import Cmp, Num, ScriptBuilder, Var
    out = {}
    for r in [n for n in g.nodes if isinstance(n, Relu)]:
        states = []
        for i in range(g.dims()[r.x]):
            sat = {}
            for sign in (">", "<"):
                b = ScriptBuilder()
                xs = [f"X_{j}" for j in range(dom.dim)]
                encode_graph(g, b, names=lambda n, d: xs if n == "x" else None)
                b.assert_("domain", dom.constraint(xs))
                b.assert_("ask", Cmp(sign, Var(f"{r.x}_{i}"), Num(Fraction(0))))
                res = backend.solve(b.build(), timeout=30)
                assert res.status in ("sat", "unsat")
                sat[sign] = res.status == "sat"
            states.append(UNSTABLE if sat[">"] and sat["<"] else INACTIVE if not sat[">"] else ACTIVE)
        out[r.name] = states
    return out


@pytest.mark.parametrize("name", ["z3", "cvc5"])
@settings(max_examples=25, deadline=None)
@given(mlp_specs(max_in=3, max_hidden=2, max_width=4),
       hst.lists(hst.tuples(hst.integers(-4, 4), hst.integers(0, 4)), min_size=3, max_size=3))
def test_cone_and_prepass_match_plain_queries(name, layers, box):
    """Property: per-neuron queries on cones with the bounded encoding, and the harvesting
    query, with or without the pre-pass, splitting and lemmas, classify exactly as plain
    whole-network queries do (random small MLPs and boxes; cvc5 with the options the queries
    set)."""
    be = solver_backend(name)
    g = mlp_graph(layers)
    n = layers[0][0].shape[1]
    dom = InputDomain(((tuple(Fraction(a, 2) for a, _ in box[:n]),
                        tuple(Fraction(a + w, 2) for a, w in box[:n])),))
    ref = _reference(g, dom, be)
    f = solve_with(be)
    for method, guided, samples, lemmas, split in [
            ("per-neuron", False, 0, "none", 0), ("per-neuron", True, 4, "triangle", 16),
            ("single", False, 0, "bounds", 0), ("single", True, 0, "none", 16)]:
        res = classify(g, dom, f, StabilityOptions(method, 30, samples=samples, guided=guided,
                                                   attack=64 if guided else 0, lemmas=lemmas, split=split))
        assert {k: list(v) for k, v in res.states.items()} == ref, (method, guided, lemmas, split)
        check_witnesses(g, res)


@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_split_refutes_what_the_bounds_cannot(method):
    """r2[0] of the hand net is inactive (max -0.5) but its linear bound over the whole box is
    positive; on sub-boxes the bounds refute "r2[0] > 0", so no query is needed at all."""
    g = hand_net()
    never = lambda *a: pytest.fail("no query expected")
    st = classify(g, BOX, never, StabilityOptions(method, split=64))
    assert st.by_split == 1 and st.queries == 0
    assert list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    assert not refuted_by_splitting(g, BOX, "a2", 1, ">", 64)  # relu(x) - 0.5 > 0 at x = 1


def test_cli_stable_split(capsys, tmp_path):
    from nnsmt.frontends.onnx_export import save_onnx
    net = tmp_path / "hand.onnx"
    save_onnx(hand_net(), net)
    box = tmp_path / "box.json"
    box.write_text('{"lo": [-1, -1], "hi": [1, 1]}')
    code = main(["stable", str(net), "--domain", str(box), "--split", "64", "--json"])
    out = json.loads(capsys.readouterr().out)["results"][0]
    assert code == 0 and out["refuted_by_split"] == 1 and out["queries"] == 0
    assert main(["stable", str(net), "--domain", str(box), "--split", "-1"]) == 2
    assert "--split" in capsys.readouterr().err


# --- a MILP (floating point, harvesting) steering; its infeasibilities are claims ------------

def _milp(name="milp:highs"):
    """The MILP backend as a Solve, or a skip that says what is missing."""
    from nnsmt.backends import BackendUnavailable, get_backend
    try:
        return solve_with(get_backend(name))
    except BackendUnavailable as e:
        pytest.skip(f"{name}: {e}")


def _states(st):
    return {k: list(v) for k, v in st.states.items()}


def _random_mlp(seed: int, sizes=(3, 6, 6, 2)) -> Graph:
    rng = np.random.default_rng(seed)
    nodes, cur = [Input("x", sizes[0])], "x"
    for k, (m, n) in enumerate(zip(sizes, sizes[1:]), 1):
        nodes.append(Affine(f"a{k}", cur, Const(rng.normal(size=(n, m)).round(2)), Const(rng.normal(size=n).round(2))))
        cur = f"a{k}"
        if k < len(sizes) - 1:
            nodes.append(Relu(f"r{k}", cur))
            cur = f"r{k}"
    return Graph(tuple(nodes), (cur,)).check()


@pytest.mark.parametrize("net", ["hand", 0, 1, 2])
@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_milp_classifies_as_smt(net, method):
    """The MILP (harvesting in `single`) and cvc5 classify alike, without the pre-pass (so the
    queries do the work), on the hand net and small random MLPs over [-1, 1]^3; the MILP's
    stable verdicts are exact (its unsat was confirmed, or its claims confirmed by splitting
    or cvc5)."""
    milp, smt = _milp(), solve_with(solver_backend("cvc5"))
    if net == "hand":
        g, dom = hand_net(), BOX
    else:
        g, dom = _random_mlp(net), parse_box_json('{"lo": -1, "hi": 1, "dim": 3}')
    opts = StabilityOptions(method, 30, guided=False, attack=0, bab_first_s=0)
    ref = classify(g, dom, smt, opts)
    st = classify(g, dom, milp, opts, confirm=smt)
    assert st.counts()["unknown"] == ref.counts()["unknown"] == 0
    assert _states(st) == _states(ref)
    assert st.harvest == (method == "single")
    check_witnesses(g, st)


def test_single_asks_one_state_at_a_time_after_a_harvest_timeout(backend):
    """An SMT solver that gives up on every question of more than one state: the harvesting
    question gets no answer, so each state is asked on its own, and the classification is
    the hand-derived one (nothing left unknown, nothing for bab: bab_s=0)."""
    real = solve_with(backend)

    def picky(script, seconds=None, options=SolveOptions()):
        from nnsmt.result import Result
        ask = dict(script.asserts)["ask"]
        if isinstance(ask, Or):
            return Result("unknown", backend.name, "timeout")
        return real(script, seconds, options)
    picky.backend, picky.capabilities = backend.name, backend.capabilities
    st = classify(hand_net(), BOX, picky, StabilityOptions("single", 30, guided=False, attack=0, bab_first_s=0, bab_s=0))
    assert list(st.states["r1"]) == [UNSTABLE] * 3 and list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    assert st.unknown == 1 and st.unsat == 1 and st.queries >= 2
    check_witnesses(hand_net(), st)


class _Claims:
    """A floating-point solver that calls every question infeasible without proof (wrongly
    for the unstable neurons of the hand net), harvesting declared."""

    backend = "fake-milp"
    capabilities = __import__("nnsmt.result", fromlist=["Capabilities"]).Capabilities(
        frozenset(), frozenset({"harvest"}))

    def __init__(self):
        self.calls = 0

    def __call__(self, script, seconds=None, options=SolveOptions()):
        from nnsmt.result import UNCONFIRMED_INFEASIBLE, Result
        self.calls += 1
        return Result("unknown", self.backend, f"{UNCONFIRMED_INFEASIBLE}: fake")


@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_unconfirmed_infeasibility_is_never_a_stable_verdict(method):
    """Every claim of a solver that answers "infeasible, unconfirmed" to everything: without a
    confirming solver (and no splitting) every open neuron stays unknown; with cvc5 confirming,
    the claims about the four unstable neurons are refuted by replayed models and the one
    true claim (r2[0] never active) is confirmed exactly (or, without a confirming solver, by
    branch and bound on the phases)."""
    g = hand_net()
    fake = _Claims()
    st = classify(g, BOX, fake, StabilityOptions(method, 30, guided=False, attack=0, bab_first_s=0, confirm_split=0, bab_s=0))
    assert fake.calls >= 1 and st.claims >= 1
    assert all(s not in (ACTIVE, INACTIVE) for v in st.states.values() for s in v)
    # branch and bound proves the one true claim on its own; the false ones stay open
    st = classify(g, BOX, _Claims(), StabilityOptions(method, 30, guided=False, attack=0, bab_first_s=0, confirm_split=0))
    assert st.by_bab == 1 and st.states["r2"][0] == INACTIVE
    assert sum(s in (ACTIVE, INACTIVE) for v in st.states.values() for s in v) == 1
    st = classify(g, BOX, _Claims(), StabilityOptions(method, 30, guided=False, attack=0, bab_first_s=0, confirm_split=0),
                  confirm=solve_with(solver_backend("cvc5")))
    assert list(st.states["r1"]) == [UNSTABLE] * 3 and list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    assert st.refuted_claims >= 1 and st.confirmed["exact"] >= 1
    check_witnesses(g, st)


def test_claims_confirmed_by_splitting():
    """The same lying solver, but with splitting allowed: "r2[0] > 0 is impossible" is
    confirmed by bounds on sub-boxes, the wrong claims are not (they stay unknown without
    bab; with it, its LP minimisers replay as the witnesses that refute them)."""
    opts = StabilityOptions("single", 30, guided=False, attack=0, bab_first_s=0, confirm_split=64, bab_s=0)
    st = classify(hand_net(), BOX, _Claims(), opts)
    assert st.confirmed["split"] >= 1
    assert st.states["r2"][0] == INACTIVE
    assert list(st.states["r1"]) == [UNKNOWN] * 3 and st.states["r2"][1] == UNKNOWN
    st = classify(hand_net(), BOX, _Claims(), replace(opts, bab_s=5))
    assert st.states["r2"][0] == INACTIVE and st.bab_shown >= 1
    assert list(st.states["r1"]) == [UNSTABLE] * 3 and st.states["r2"][1] == UNSTABLE
    check_witnesses(hand_net(), st)


def test_harvested_models_that_fail_the_replay_are_not_counted(backend):
    """A harvesting solver whose extra solutions lie outside the domain or lack inputs: they
    are skipped (never recorded, never counted), and the classification is the exact one."""
    from dataclasses import replace as dreplace
    inner = solve_with(backend)

    def solve(script, seconds=None, options=SolveOptions()):
        res = inner(script, seconds, options)
        assert options.harvest == "ask"
        bogus = ({f"X_{i}": Fraction(5) for i in range(2)}, {"nothing": Fraction(0)})
        return dreplace(res, models=bogus)
    solve.backend, solve.capabilities = "fake", _Claims.capabilities
    g = hand_net()
    st = classify(g, BOX, solve, StabilityOptions("single", 30, guided=False, attack=0, bab_first_s=0))
    ref = classify(g, BOX, inner, StabilityOptions("single", 30, guided=False, attack=0, bab_first_s=0))
    assert st.harvest and st.harvest_skipped == 2 * st.queries and st.harvested == 0
    assert _states(st) == _states(ref)
    check_witnesses(g, st)


def test_cli_stable_milp_json(capsys, tmp_path):
    _milp()
    from nnsmt.frontends.onnx_export import save_onnx
    net = tmp_path / "hand.onnx"
    save_onnx(hand_net(), net)
    box = tmp_path / "box.json"
    box.write_text('{"lo": [-1, -1], "hi": [1, 1]}')
    code = main(["stable", str(net), "--domain", str(box), "--backend", "milp:highs", "--method", "both",
                 "--no-guided", "--json", "--timeout", "30"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["identical"] and out["backend"] == "milp:highs" and out["confirm"] == "cvc5"
    single = out["results"][0]
    assert single["harvest"] and single["counts"] == {"active": 0, "inactive": 1, "unstable": 4, "unknown": 0,
                                                       "total": 5}
    assert set(single["phase_s"]) >= {"bounds", "prepass", "queries"}
    assert main(["stable", str(net), "--domain", str(box), "--confirm-split", "-1"]) == 2
    for bad in ("-1", "nan", "inf"):
        assert main(["stable", str(net), "--domain", str(box), "--bab-seconds", bad]) == 2
    assert "--bab-seconds needs a finite number of seconds" in capsys.readouterr().err
    # --method auto (the default): per-neuron on either backend; the default backend is cvc5,
    # each query 60 s unless --timeout says otherwise
    for args in (["--backend", "milp:highs"], [], ["--timeout", "7.5"]):
        assert main(["stable", str(net), "--domain", str(box), *args, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["results"][0]["method"] == "per-neuron"
        assert out["backend"] == (args[1] if args[:1] == ["--backend"] else "cvc5")
        assert out["timeout_s"] == (7.5 if "--timeout" in args else 60.0)
    assert main(["stable", str(net), "--domain", str(box)]) == 0
    assert "backend cvc5, 60 s per query" in capsys.readouterr().out.splitlines()[0]


def test_tightened_bounds_decide_more_and_change_nothing(backend):
    """A random 3-6-6-6-2 MLP on [-1, 1]^3 (seed 11): optimising each ReLU input's bounds per
    neuron (the default) shows 3 more neurons stable by bounds alone than plain linear bounds
    (16 -> 13 left unstable by bounds); the exact classification is the same either way."""
    from test_alpha_bounds import mlp
    g = mlp(np.random.default_rng(11), [3, 6, 6, 6, 2])
    dom = parse_box_json('{"lo": [-1, -1, -1], "hi": [1, 1, 1]}')
    f = solve_with(backend)
    plain = classify(g, dom, f, StabilityOptions("per-neuron", 60, tighten=0))
    tight = classify(g, dom, f, StabilityOptions("per-neuron", 60))
    assert tight.by_bounds == plain.by_bounds + 3
    assert tight.same_as(plain) and tight.unknown == plain.unknown == 0
    check_witnesses(g, tight)


@pytest.mark.parametrize("method", ["single", "per-neuron"])
def test_bab_proves_what_no_query_settled(method):
    """hand_net's r2[0] is stably inactive (a2[0] <= -0.5) and linear bounds cannot show it.
    With a solver that never answers, its question stays open; branch and bound on r1's
    phases then proves it (with both phases fixed a2[0] is linear, at most -0.5). Without that
    last step (bab_s=0) it is unknown. The unstable neurons come from the pre-pass."""
    from nnsmt.result import Result
    from nnsmt.queries.stability import UNKNOWN, refuted_by_bab

    def silent(script, seconds=None, options=None):
        return Result("unknown", "fake", reason="timeout")
    st = classify(hand_net(), BOX, silent, StabilityOptions(method, bab_first_s=0))
    assert st.states["r2"][0] == INACTIVE and st.by_bab == 1 and st.queries >= 1
    assert list(st.states["r1"]) == [UNSTABLE] * 3 and st.states["r2"][1] == UNSTABLE
    st0 = classify(hand_net(), BOX, silent, StabilityOptions(method, bab_s=0, bab_first_s=0))
    assert st0.states["r2"][0] == UNKNOWN and st0.by_bab == 0
    # the same bab before any query (the default): the solver is never asked
    never = lambda *a, **k: pytest.fail("no query expected")  # noqa: E731
    st1 = classify(hand_net(), BOX, never, StabilityOptions(method))
    assert st1.states["r2"][0] == INACTIVE and st1.by_bab == 1 and st1.queries == 0
    # never a proof of what is false: a2[1] = relu(x) - 0.5 > 0 at x = 1
    assert not refuted_by_bab(hand_net(), BOX, "a2", 1, ">", 5.0)
    assert refuted_by_bab(hand_net(), BOX, "a2", 0, ">", 5.0)


def test_reports_name_the_unknown_neurons():
    """A neuron no step decided is named in --json (`unknown_neurons`) and in the text."""
    from nnsmt.engine.reports import StabilityReport, stability_json, stability_lines
    from nnsmt.queries.stability import UNKNOWN, Stability
    st = Stability({"r1": np.array([ACTIVE, UNKNOWN], dtype=np.int8),
                    "r2": np.array([UNKNOWN, INACTIVE, UNSTABLE], dtype=np.int8)}, "per-neuron")
    assert stability_json(st)["unknown_neurons"] == ["r1[1]", "r2[0]"]
    lines = stability_lines(StabilityReport((st,), True), BOX, network="n.onnx", domain="box.json", backend="cvc5")
    assert "  unknown (per-neuron): r1[1] r2[0]" in lines
    st.states["r1"][1] = ACTIVE
    st.states["r2"][0] = ACTIVE
    assert stability_json(st)["unknown_neurons"] == []
    assert not any("unknown (" in x for x in stability_lines(StabilityReport((st,), True), BOX, network="n",
                                                             domain="b", backend="cvc5"))


def test_unknown_neurons_come_with_their_gap():
    """hand_net, a solver that never answers, no bab: r2[0] stays unknown on "can a2[0] > 0?".
    Its report gives the sound upper bound (positive: else the bounds would have decided) and
    the greatest value seen, which cannot exceed the exact maximum -0.5 (helpers.hand_net);
    the decided neurons have no gap."""
    from nnsmt.engine.reports import StabilityReport, stability_json, stability_lines
    from nnsmt.queries.stability import UNKNOWN
    from nnsmt.result import Result

    def silent(script, seconds=None, options=None):
        return Result("unknown", "fake", reason="timeout")
    st = classify(hand_net(), BOX, silent, StabilityOptions("per-neuron", samples=200, bab_s=0, bab_first_s=0))
    assert st.states["r2"][0] == UNKNOWN and list(st.gaps) == [("r2", 0)]
    q, (lo, hi), (least, most) = st.gaps[("r2", 0)]
    assert q == ">" and lo <= least <= most <= -0.5 < 0 < hi
    rec = stability_json(st)["unknown_gaps"]
    assert list(rec) == ["r2[0]"] and rec["r2[0]"]["open"] == ["a > 0?"] and rec["r2[0]"]["bounds"] == [lo, hi]
    lines = stability_lines(StabilityReport((st,), True), BOX, network="n", domain="b", backend="cvc5")
    assert f"    r2[0]: a > 0? (upper bound {hi:.4g}, greatest seen {most:.4g})" in lines


def test_progress_names_each_phase_and_question():
    """The progress callback hears the phases in order and each question asked (hand_net, a
    solver that never answers: r2[0]'s question goes to a query, then to the final bab)."""
    from nnsmt.result import Result
    seen = []

    def silent(script, seconds=None, options=None):
        return Result("unknown", "fake", reason="timeout")
    classify(hand_net(), BOX, silent, StabilityOptions("per-neuron", bab_first_s=0),
             progress=lambda phase, text="": seen.append((phase, text)))
    phases = [p for p, _ in seen]
    assert phases[0] == "bounds done" and phases.index("pre-pass") < phases.index("queries") < phases.index("bab")
    assert ("queries", "query 1: can a2[0] > 0?") in seen
    assert ("bab", "can a2[0] > 0? (after the queries)") in seen


def test_a_vnnlib2_query_gives_its_input_boxes_as_a_domain(tmp_path, capsys):
    """The float32 query and its VNN-LIB 1.0 original bound the inputs alike ([-1, 1]^2): the
    same domain. A query about two networks is refused, naming the file."""
    v2 = load_domain(EXAMPLES / "class1_margin_f32.vnnlib", 2)
    assert v2.boxes == load_domain(EXAMPLES / "class1_margin.vnnlib", 2).boxes
    assert v2.boxes == ((tuple([Fraction(-1)] * 2), tuple([Fraction(1)] * 2)),)
    # the same set of reals, but a user of the float32 query is told it is taken over the reals
    assert v2.declared == "float32" and "float32 inputs" in v2.notes[0] and "exactly" in v2.notes[0]
    assert load_domain(EXAMPLES / "class1_margin.vnnlib", 2).notes == ()
    code = main(["stable", str(EXAMPLES / "classifier.onnx"), "--domain", str(EXAMPLES / "class1_margin_f32.vnnlib"),
                 "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["notes"] == list(v2.notes)
    with pytest.raises(InputError, match="pair_margin.vnnlib: a domain comes from a query about one network"):
        load_domain(EXAMPLES / "pair_margin.vnnlib")


def test_bab_takes_the_bounds_classify_has():
    """refuted_by_bab / plan_bab with a prior. hand_net's layers with a3 = r2[0] - 0.1 on top:
    "a3 > 0?" needs a2[0] > 0.1, impossible (a2[0] <= -0.5, hand-derived, tests/helpers). Given
    that exact bound as r2's input prior, bab refutes it at the root; given plain linear bounds
    (which cannot show it), bab proves it by splitting r1; it never proves the false "a2[1] > 0"."""
    from nnsmt.bounds import Interval, propagate_bounds
    from nnsmt.queries.bab import plan_bab
    from nnsmt.queries.stability import _question, refuted_by_bab
    h = hand_net()
    g = Graph(h.nodes[:5] + (Affine("a3", "r2", Const(np.array([[1.0, 0.0]])), Const(np.array([-0.1]))),),
              ("a3",)).check()
    plain = propagate_bounds(g, BOX.intervals()[0])
    exact = dict(plain, a2=Interval(plain["a2"].lo, np.array([-0.5, plain["a2"].hi[1]])))
    assert plain["a2"].hi[0] > 0.1  # linear bounds alone leave it open
    q = _question(g, BOX, "a3", 0, ">")
    at_root = plan_bab(*q, 1, build=False, samples=0, prior=[exact])
    split = plan_bab(*q, 1, build=False, samples=0, prior=[plain])
    for plan in (at_root, split):
        assert not plan.subqueries and plan.candidate is None and not plan.exhausted
    assert [path for _, path, _ in at_root.proof] == [()]  # the root itself, no phase fixed
    assert all(path for _, path, _ in split.proof) and at_root.boxes_explored < split.boxes_explored
    assert refuted_by_bab(g, BOX, "a3", 0, ">", 5.0, plain)
    assert not refuted_by_bab(g, BOX, "a2", 1, ">", 5.0, plain)
    with pytest.raises(InputError, match="one bounds map per root box"):
        plan_bab(*q, 1, build=False, samples=0, prior=[exact, exact])


def test_bab_offers_its_lp_minimisers_as_witnesses():
    """hand_net's "can a2[1] > 0?" is possible. bab cannot refute it; with `found` it offers
    the LP minimisers of its sub-problems, and the first that replays exactly with a2[1] > 0
    ends the search (the recorder sees it; the caller records the witness)."""
    from nnsmt.queries.stability import refuted_by_bab
    seen = []

    def found(x):
        seen.append(x)
        return evaluate_exact(hand_net(), {"x": x})["a2"][1] > 0
    assert not refuted_by_bab(hand_net(), BOX, "a2", 1, ">", 5.0, found=found)
    assert seen and evaluate_exact(hand_net(), {"x": seen[-1]})["a2"][1] > 0 and BOX.contains(seen[-1])
    # a refuted question offers nothing that shows it
    assert refuted_by_bab(hand_net(), BOX, "a2", 0, ">", 5.0, found=found)


def test_fully_fixed_bab_leaves_are_settled_by_their_lp():
    """MNIST-FC 256x2 over prop_0's eps 0.03 box, "can a2[220] < 0?": 6 unstable ReLUs below
    it, and bab fixes all 6 phases with four leaves still open under 5 α,β steps (the pre-pass's
    least value is +0.023; cvc5 had not answered in 60 s). Each fully fixed leaf is an LP: its
    minimiser replays exactly with a2[220] < 0, so the question is answered, not unknown."""
    folder = need_shared("benchmarks", "mnistfc")
    from nnsmt.domain import region_bounds
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.stability import refuted_by_bab
    g = load_onnx(folder / "mnist-net_256x2.onnx")
    g = g.slice([n.name for n in g.nodes if isinstance(n, Relu)])
    dom = load_domain(folder / "prop_0_0.03.vnnlib")
    pre = [n for n in g.nodes if isinstance(n, Relu)][1].x
    prior = region_bounds(g, dom, tighten=60)
    assert prior[pre].lo[220] < 0 < prior[pre].hi[220]
    got = []

    def found(x):
        v = evaluate_exact(g, {g.inputs[0].name: x})[pre][220]
        got.append(v)
        return dom.contains(x) and v < 0
    assert not refuted_by_bab(g, dom, pre, 220, "<", 30.0, prior, found)
    assert got and got[-1] < 0


def test_bab_takes_over_when_queries_answer_nothing():
    """A solver that never answers: after `bab_after` queries (all timeouts, none answered)
    every question left gets bab for a query's time instead, which decides hand_net exactly
    (its LP minimisers show the unstable states, its bounds refute "can a2[0] > 0?"). With
    bab_after=0 every open question is asked."""
    from nnsmt.result import Result
    calls = []

    def silent(script, seconds=None, options=None):
        calls.append(seconds)
        return Result("unknown", "fake", reason="timeout")
    opts = StabilityOptions("per-neuron", 5, guided=False, attack=0, bab_first_s=0, bab_after=2)
    st = classify(hand_net(), BOX, silent, opts)
    assert st.queries == 2 == len(calls) and st.bab_instead >= 1
    assert list(st.states["r1"]) == [UNSTABLE] * 3 and list(st.states["r2"]) == [INACTIVE, UNSTABLE]
    check_witnesses(hand_net(), st)
    calls.clear()
    st0 = classify(hand_net(), BOX, silent, replace(opts, bab_after=0))
    assert st0.bab_instead == 0 and st0.queries == len(calls) > 2
    with pytest.raises(UnsupportedError):
        StabilityOptions(bab_after=-1)
