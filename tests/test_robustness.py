"""The five robustness definitions as queries: hand-derived answers on one- and two-neuron
networks, witnesses replayed exactly, parameters made symbolic correctly, and the CLI."""

import json
import subprocess
import sys
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Sym
from nnsmt.params import Perturbation, assign, make_symbolic, nominal_graph, parse_delta, select_layers
from nnsmt.engine.robustness import check
from nnsmt.queries.robustness import Question, build, replay

from conftest import EXAMPLES
from helpers import box, neuron
from strategies import mlp_graph, mlp_specs

D = F(1, 10)


def test_make_symbolic_boxes_and_names():
    g = neuron(0.5, -0.25)
    gs = make_symbolic(g, Perturbation(F("0.005")))
    w, b = gs.nodes[1].weight, gs.nodes[1].bias
    assert isinstance(w, Sym) and w.name == "z_W" and isinstance(b, Sym) and b.name == "z_B"
    assert F(w.lo[0, 0]) == F(1, 2) - F(1, 200) and F(w.hi[0, 0]) == F(1, 2) + F(1, 200)
    rel = make_symbolic(g, Perturbation(F(1, 10), relative=True))
    assert F(rel.nodes[1].bias.lo[0]) == F(-1, 4) - F(1, 40)  # |p0| * δ
    only_b = make_symbolic(g, Perturbation(D, which="biases"))
    assert isinstance(only_b.nodes[1].weight, Const) and isinstance(only_b.nodes[1].bias, Sym)
    assert nominal_graph(gs).nodes[1].weight.value[0, 0] == 0.5
    assert assign(gs, {"z_W": np.array([[F(1, 3)]], dtype=object)}).nodes[1].weight.value[0, 0] == F(1, 3)


def test_layer_selection_and_bad_options():
    g = mlp_graph([(np.ones((2, 2), np.float32), np.zeros(2, np.float32)),
                   (np.ones((1, 2), np.float32), np.zeros(1, np.float32))])
    assert select_layers(g, ["-1"]) == ["a2"] and select_layers(g, ["1", "a2"]) == ["a1", "a2"]
    with pytest.raises(InputError, match="no affine layer 'fc9'"):
        select_layers(g, ["fc9"])
    with pytest.raises(InputError, match="out of range"):
        select_layers(g, ["3"])
    assert parse_delta("delta=0.005") == F(1, 200)
    for bad in ("delta=abc", "-1"):
        with pytest.raises(InputError):
            parse_delta(bad)
    with pytest.raises(InputError, match="exactly one"):
        Question("label")


# --- definition 1: (δ, ε) local -------------------------------------------------------------
# f(x) = x - 2 at x0 = 2, δ = 1/10 on w and b: f_p(2) - f_p0(2) = 2 dw + db, |.| <= 3δ = 3/10,
# attained at dw = db = δ. So ε = 0.29 is violated (sat) and ε = 0.3 holds (unsat: strict >).
def test_local_eps_known_answer(backend):
    gs = make_symbolic(neuron(), Perturbation(D))
    o = check(gs, Question("eps", point=(F(2),), value=F(29, 100)), backend.name, timeout=30)
    assert o.status == "sat" and o.witness.value > F(29, 100)
    assert o.witness.holds is True
    assert check(gs, Question("eps", point=(F(2),), value=F(3, 10)), backend.name, timeout=30).status == "unsat"


# --- definition 2: (δ, ε) global ------------------------------------------------------------
# x in [1, 3]: |dw x + db| <= δ (3 + 1) = 2/5, attained at x = 3.
def test_global_eps_known_answer():
    gs = make_symbolic(neuron(), Perturbation(D))
    dom = box([1], [3])
    assert check(gs, Question("eps", domain=dom, value=F(2, 5)), "z3", timeout=30).status == "unsat"
    o = check(gs, Question("eps", domain=dom, value=F(39, 100)), "z3", timeout=30)
    assert o.status == "sat" and F(1) <= o.witness.x[0] <= F(3)


# --- definition 3: δ local ------------------------------------------------------------------
# f0(2.5) = 0.5 > 0 (label 1). min f_p(2.5) = 0.9*2.5 - 2.1 = 0.15 > 0: robust for δ = 0.1;
# with δ = 0.2: 0.8*2.5 - 2.2 = -0.2 < 0: the label flips.
def test_local_label_known_answer(backend):
    g = neuron()
    assert check(make_symbolic(g, Perturbation(D)), Question("label", point=(F(5, 2),)),
                 backend.name, timeout=30).status == "unsat"
    o = check(make_symbolic(g, Perturbation(F(1, 5))), Question("label", point=(F(5, 2),)),
              backend.name, timeout=30)
    assert o.status == "sat"
    y = evaluate_exact(assign(make_symbolic(g, Perturbation(F(1, 5))), o.witness.params), {"x": [F(5, 2)]})["z"]
    assert y[0] < 0  # the perturbed network really says label 0


# --- definition 4: δ global, with argmax labels -----------------------------------------------
# y = (x, -x) on x in [1/2, 1]: label 0. Perturbed, y0 - y1 >= (2 - 2δ) x - 2δ >= 1 - 3δ (at
# x = 1/2). A flip needs y1 > y0 strictly (ties go to the first index): possible iff δ > 1/3.
def test_global_label_argmax_known_answer(backend):
    from nnsmt.ir import Argmax
    g = Graph((Input("x", 1), Affine("y", "x", Const(np.array([[1.0], [-1.0]])), Const(np.zeros(2))),
               Argmax("label", "y")), ("label",)).check()
    dom = box([F(1, 2)], [1])
    assert check(make_symbolic(g, Perturbation(F(1, 3))), Question("label", domain=dom),
                 backend.name, timeout=30).status == "unsat"
    o = check(make_symbolic(g, Perturbation(F(34, 100))), Question("label", domain=dom), backend.name, timeout=30)
    assert o.status == "sat" and o.witness.holds


# --- definition 5: δσ global --------------------------------------------------------------------
# f0(x) = x - 2 on [0, 4], level 0, δ = 1/10. Above (f0 >= 0, f_p < 0): min f_p = 0.9x - 2.1 < 0
# iff x < 7/3, so flips reach f0 up to 1/3 (not attained). Below (f0 < 0, f_p >= 0):
# max f_p = 1.1x - 1.9 >= 0 iff x >= 19/11, f0 = -3/11 (attained).
def test_sigma_known_answer(backend):
    gs = make_symbolic(neuron(), Perturbation(D))
    dom = box([0], [4])

    def st_(s, sides=("above", "below")):
        return check(gs, Question("sigma", domain=dom, value=s, sides=sides), backend.name, timeout=30).status
    assert st_(F(1, 3), ("above",)) == "unsat"
    assert st_(F(33, 100), ("above",)) == "sat"
    assert st_(F(3, 11), ("below",)) == "sat"  # attained: distance >= 3/11 is reachable
    assert st_(F(3, 11) + F(1, 10**6), ("below",)) == "unsat"
    assert st_(F(1, 3)) == "unsat"


def test_sigma_with_sigmoid_uses_the_monotone_rewrite():
    """Same neuron behind a sigmoid: flips reach f0 = sigmoid(1/3) above the level 1/2; the
    query compares pre-activations (no exp, no relaxation)."""
    from nnsmt.sigmoid import sigmoid_bounds
    gs = make_symbolic(neuron(sigmoid=True), Perturbation(D))
    dom = box([0], [4])
    lo, hi = sigmoid_bounds(F(1, 3))
    s = build(gs, Question("sigma", domain=dom, value=hi - F(1, 2), sides=("above",)))
    assert "exp" not in s.features and s.meta["sigmoid"] == "none"
    assert check(gs, Question("sigma", domain=dom, value=hi - F(1, 2), sides=("above",)), "z3").status == "unsat"
    o = check(gs, Question("sigma", domain=dom, value=lo - F(1, 2) - F(1, 10**4), sides=("above",)), "z3")
    assert o.status == "sat" and o.witness.side == "above"


def test_eps_with_sigmoid_relaxation_is_labelled_and_certified():
    """ε on a sigmoid output needs the sigmoid: Z3 gets the pwl relaxation, the answer says so,
    and a sat witness is certified by the enclosure. Local at x0 = 2: z0 = 0 and z_p ranges over
    [-3/10, 3/10], so ε = sigmoid(3/10) - 1/2 ~ 0.0744."""
    from nnsmt.sigmoid import sigmoid_bounds
    gs = make_symbolic(neuron(sigmoid=True), Perturbation(D))
    lo, hi = sigmoid_bounds(F(3, 10))
    o = check(gs, Question("eps", point=(F(2),), value=F(7, 100)), "z3", timeout=30)
    assert o.status == "sat" and "piecewise-linear relaxation" in " ".join(o.notes)
    assert o.witness.value > F(7, 100)
    o = check(gs, Question("eps", point=(F(2),), value=hi - F(1, 2) + F(1, 10**6)), "z3", timeout=30)
    assert o.status == "unsat" and "piecewise-linear relaxation" in " ".join(o.notes)


def test_replay_refutes_a_wrong_witness():
    gs = make_symbolic(neuron(), Perturbation(D))
    w = replay(gs, Question("label", point=(F(5, 2),)), [F(5, 2)], {"z_W": np.array([[F(1)]], dtype=object),
                                                                    "z_B": np.array([F(-2)], dtype=object)})
    assert w.holds is False  # nominal parameters: no flip
    w = replay(gs, Question("label", point=(F(5, 2),)), [F(5, 2)], {"z_W": np.array([[F(2)]], dtype=object),
                                                                    "z_B": np.array([F(-9)], dtype=object)})
    assert w.holds is False  # flips, but the parameters leave the δ box


def test_sigma_needs_a_binary_network():
    g = mlp_graph([(np.ones((2, 1), np.float32), np.zeros(2, np.float32))])
    with pytest.raises(UnsupportedError, match="one output"):
        build(make_symbolic(g, Perturbation(D)), Question("sigma", domain=box([0], [1]), value=F(0)))


@settings(max_examples=15, deadline=None)
@given(mlp_specs(max_in=2, max_hidden=1, max_width=3, max_out=2), st.data())
def test_local_label_agrees_with_sampling(layers, data):
    """Random ReLU MLPs: an unsat local δ-robustness answer means no sampled parameter vector in
    the box changes the label; a sat answer's witness changes it (exact replay). These networks
    are tiny (at most 2-3-2): Z3 decides each in well under a second (300 drawn: max 0.17 s), so
    an undecided answer within 20 s is a failure, not a pass."""
    g = mlp_graph(layers)
    x0 = tuple(F(v) for v in data.draw(st.lists(st.integers(-2, 2), min_size=g.inputs[0].dim,
                                                max_size=g.inputs[0].dim)))
    gs = make_symbolic(g, Perturbation(F(1, 4)))
    o = check(gs, Question("label", point=x0), "z3", timeout=20)
    assert o.status in ("sat", "unsat"), (o.status, o.reason)
    if o.status == "sat":
        assert o.witness.holds is True
    elif o.status == "unsat":
        from nnsmt.interpret import evaluate
        rng = np.random.default_rng(0)
        out = g.outputs[0]
        lab = lambda y: int(y[0] >= 0) if len(y) == 1 else int(np.argmax(y))  # noqa: E731
        base = lab(evaluate(g, {"x": [float(v) for v in x0]})[out])
        for _ in range(20):
            params = {}
            for _, _, p in gs.params():
                params[p.name] = p.nominal + rng.uniform(-0.24, 0.24, p.shape)
            assert lab(evaluate(gs, {"x": [float(v) for v in x0]}, params)[out]) == base


# --- the CLI -------------------------------------------------------------------------------------

def nnsmt(*args):
    return subprocess.run([sys.executable, "-m", "nnsmt.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_verify_robustness_cats():
    cats, dom = EXAMPLES / "cats" / "cats.onnx", EXAMPLES / "cats" / "box.json"
    r = nnsmt("verify", cats, "--params", "delta=0.005", "--domain", dom, "--property", "sigma=0.025")
    assert r.returncode == 0 and r.stdout.startswith("unsat: δσ robust globally"), r.stdout + r.stderr
    r = nnsmt("verify", cats, "--params", "delta=0.005", "--domain", dom, "--property", "sigma=0.02", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 10 and out["status"] == "sat" and out["verdict"] == "not robust"
    assert out["witness"]["value"] >= 0.02 and "onnxruntime" in out["witness"]["replayed"]
    r = nnsmt("verify", cats, "--params", "delta=0.005", "--point", "10,3", "--property", "label")
    assert r.returncode == 0 and "δ robust locally" in r.stdout


def test_cli_bad_robustness_input(tmp_path):
    cats, dom = EXAMPLES / "cats" / "cats.onnx", EXAMPLES / "cats" / "box.json"
    cases = [
        (["--params", "delta=x", "--domain", dom, "--property", "label"], "delta=<number>"),
        (["--params", "delta=0.1", "--property", "label"], "exactly one of --domain"),
        (["--params", "delta=0.1", "--point", "1,2,3", "--property", "label"], "has 2 inputs"),
        (["--params", "delta=0.1", "--domain", dom, "--property", "eps"], "expected label, eps=E"),
        (["--params", "delta=0.1", "--domain", dom], "--property label|eps=E|sigma=S is required"),
        (["--params", "delta=0.1", "--point", "1,2", "--property", "sigma=0.1"], "σ robustness is global"),
        (["--params", "delta=0.1", "--domain", dom, "--layers", "fc7", "--property", "label"], "no affine layer"),
        ([], "give a VNN-LIB property, or --params"),
    ]
    for extra, msg in cases:
        r = nnsmt("verify", cats, *extra)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    (tmp_path / "p.csv").write_text("1,2\n3,4\n")
    r = nnsmt("verify", cats, "--params", "delta=0.1", "--point", tmp_path / "p.csv", "--property", "label")
    assert r.returncode == 2 and "one row" in r.stderr


def test_compile_robustness_and_estimate_modes(tmp_path):
    import z3
    cats, dom = EXAMPLES / "cats" / "cats.onnx", EXAMPLES / "cats" / "box.json"
    r = nnsmt("compile", cats, "--mode", "robustness", "--params", "delta=0.005", "--domain", dom,
              "--property", "sigma=0.02")
    assert r.returncode == 0 and "(set-logic QF_NRA)" in r.stdout and ":named negation" in r.stdout
    s = z3.Solver()
    s.from_string(r.stdout.replace("(check-sat)", "").replace("(exit)", "").split("(get-value")[0])
    assert s.check() == z3.sat
    r = nnsmt("compile", cats, "--mode", "robustness", "--params", "delta=0.005", "--domain", dom,
              "--property", "eps=0.01")
    assert "(exp " in r.stdout and "QF_NRAT" in r.stdout  # exact sigmoid
    r = nnsmt("compile", EXAMPLES / "athletes" / "relu.onnx", "--mode", "estimate", "--params", "delta=0.005",
              "--point", "1.8,80", "--objective", "eps", "--sigmoid", "pwl", "-o", tmp_path / "e.smt2")
    text = (tmp_path / "e.smt2").read_text()
    assert r.returncode == 0 and "(maximize " in text and "(exp" not in text


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the test extra installs it)")
    from nnsmt.frontends import load_onnx
    from nnsmt.domain import load_domain
    from nnsmt.engine.plots import robustness_figure
    gs = make_symbolic(load_onnx(EXAMPLES / "cats" / "cats.onnx"), Perturbation(F("0.005")))
    out = tmp_path / "f.png"
    robustness_figure(gs, load_domain(EXAMPLES / "cats" / "box.json", 2), out, grid=3, sigma=[F(1, 40), F(1, 50)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UnsupportedError, match="2 inputs"):
        robustness_figure(make_symbolic(neuron(), Perturbation(D)), box([0], [1]), out)


# --- the query's refinements, settled by the driver's policy ------------------------------------

def _fake_solve(answers, caps):
    """A `Solve` that answers from a list, recording the options of every call."""
    from nnsmt.result import SolveOptions
    calls = []

    def solve(script, seconds=None, options=SolveOptions()):
        calls.append(options)
        return answers[len(calls) - 1]
    solve.backend, solve.capabilities, solve.calls = "fake", caps, calls
    return solve


# at x0 = 2, δ = 1/10: w = 11/10, b = -19/10 moves f by 3/10 > 29/100 (a witness); the nominal
# parameters move it by 0 (a δ-sat candidate that does not replay)
WITNESS = {"z_W_0_0": F(11, 10), "z_B_0": F(-19, 10)}
NOMINAL = {"z_W_0_0": F(1), "z_B_0": F(-2)}


@pytest.mark.parametrize("second, want", [("unknown", "unknown"), ("delta-sat", "sat")])
def test_delta_complete_candidate_is_retried_with_a_margin(second, want):
    """On a δ-complete solver (declared capabilities, no name), a δ-sat candidate that does not
    replay is asked again once with comparisons strengthened by 100·δ (a typed SolveOption, not
    script meta); that query's unknown stays unknown, its replaying candidate is sat."""
    from nnsmt.queries.robustness import check as check_with
    from nnsmt.result import Capabilities, Result
    caps = Capabilities(frozenset({"nonlinear", "exp", "optimize"}), frozenset({"delta", "margin"}),
                        delta_complete=True)
    gs = make_symbolic(neuron(), Perturbation(D))
    answers = [Result("delta-sat", "fake", "δ-sat", model=NOMINAL),
               Result(second, "fake", "no box", model=WITNESS if second == "delta-sat" else {})]
    solve = _fake_solve(answers, caps)
    o = check_with(gs, Question("eps", point=(F(2),), value=F(29, 100)), solve, "exp")
    assert o.status == want and o.rounds == 2
    first, retry = solve.calls
    assert (first.delta, first.margin) == (1e-6, 0.0) and (retry.delta, retry.margin) == (1e-6, 100 * 1e-6)
    if want == "sat":
        assert o.witness.value == F(3, 10) and "δ-sat" in o.notes[-1]


def test_exact_solver_model_that_fails_the_replay_is_an_error():
    """Without a relaxation or δ-completeness there is nothing to refine: a model that does not
    replay is the solver's error, never sat, and is not retried."""
    from nnsmt.queries.robustness import check as check_with
    from nnsmt.result import Capabilities, Result
    solve = _fake_solve([Result("sat", "fake", model=NOMINAL)], Capabilities(frozenset({"nonlinear"})))
    o = check_with(make_symbolic(neuron(), Perturbation(D)), Question("eps", point=(F(2),), value=F(29, 100)), solve)
    assert o.status == "error" and "fails the replay" in o.reason and len(solve.calls) == 1


def test_strict_logit_threshold_unsat_narrows_the_bounds():
    """σ behind a final sigmoid: the stricter rational threshold only looks for witnesses, so its
    unsat is no proof: settle asks for the weaker threshold with 4x the bits instead, up to 480
    bits, then says unknown."""
    from dataclasses import replace
    from nnsmt.query import Outcome, settle
    from nnsmt.queries.robustness import robustness_query
    from nnsmt.result import Result
    gs = make_symbolic(neuron(sigmoid=True), Perturbation(D))
    q = robustness_query(gs, Question("sigma", domain=box([0], [4]), value=F(1, 10), sides=("above",)))
    assert q.relaxed and q.proves_unsat
    strict = replace(q, logit_strong=True)
    assert not strict.proves_unsat
    nxt = settle(strict, Result("unsat", "fake"))
    assert not isinstance(nxt, Outcome) and nxt.logit_bits == 240 and not nxt.logit_strong
    assert settle(q, Result("unsat", "fake")).status == "unsat"  # the weaker bound proves
    o = settle(replace(strict, logit_bits=480), Result("unsat", "fake"))
    assert isinstance(o, Outcome) and o.status == "unknown"


# --- every flag takes effect or is refused -------------------------------------------------------

@pytest.fixture
def sigmoid_neuron(tmp_path):
    from nnsmt.serialize import save_json
    save_json(neuron(sigmoid=True), tmp_path / "sig.json")
    (tmp_path / "p.vnnlib").write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                                       "(assert (>= X_0 0.0))\n(assert (<= X_0 4.0))\n(assert (>= Y_0 0.9))\n")
    return tmp_path


def test_sigmoid_flag_takes_effect_everywhere(sigmoid_neuron):
    net, prop = sigmoid_neuron / "sig.json", sigmoid_neuron / "p.vnnlib"
    rob = ["--params", "delta=0.1", "--point", "2", "--property", "eps=0.07"]
    # compile: auto is the exact exp (no backend), pwl the relaxation, for every mode
    for mode in (["--mode", "verify", "--property", prop], ["--mode", "robustness", *rob],
                 ["--mode", "estimate", *rob]):
        exact, relaxed = (nnsmt("compile", net, *mode, *extra) for extra in ([], ["--sigmoid", "pwl"]))
        assert exact.returncode == relaxed.returncode == 0, (mode, exact.stderr, relaxed.stderr)
        assert "(exp " in exact.stdout and "(exp " not in relaxed.stdout, mode
    # verify --params on z3: auto is the relaxation; exp is refused (z3 has no exp), not ignored
    r = nnsmt("verify", net, *rob, "--json")
    assert r.returncode == 10 and json.loads(r.stdout)["sigmoid"] == "pwl", r.stderr
    r = nnsmt("verify", net, *rob, "--sigmoid", "exp")
    assert r.returncode == 2 and "no exp" in r.stderr


@pytest.mark.parametrize("argv, flag", [
    (["verify", "{net}", "{prop}", "--pieces", "4"], "--pieces"),
    (["verify", "{net}", "{prop}", "--domain", "{prop}"], "--domain"),
    (["verify", "{net}", "--params", "delta=0.1", "--point", "2", "--property", "label", "--engine", "split"], "--engine"),
    (["compile", "{net}", "--mode", "verify", "--property", "{prop}", "--params", "delta=0.1"], "--params"),
    (["compile", "{net}", "--mode", "robustness", "--params", "delta=0.1", "--point", "2", "--property",
      "label", "--encoding", "bounded"], "--encoding"),
    (["compile", "{net}", "--mode", "robustness", "--params", "delta=0.1", "--point", "2", "--property",
      "label", "--objective", "eps"], "--objective"),
    (["compile", "{net}", "--mode", "estimate", "--params", "delta=0.1", "--point", "2", "--objective", "eps",
      "--side", "below"], "--side"),
    (["compile", "{net}", "--mode", "train", "--data", "{prop}", "--sigmoid", "pwl"], "--sigmoid"),
    (["compile", "{net}", "--mode", "train", "--data", "{prop}", "--pieces", "3"], "--pieces"),
    (["diff", "{net}", "--mode", "train", "--data", "{prop}", "--point", "2"], "--point"),
    (["diff", "{net}", "{prop}", "--params", "delta=0.1"], "--params"),
])
def test_flags_that_do_not_apply_are_refused(sigmoid_neuron, argv, flag):
    argv = [a.format(net=sigmoid_neuron / "sig.json", prop=sigmoid_neuron / "p.vnnlib") for a in argv]
    r = nnsmt(*argv)
    assert r.returncode == 2 and flag in r.stderr and "does not apply" in r.stderr, (argv, r.stderr)
