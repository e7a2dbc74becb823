"""Certified brackets for ε and σ: hand-derived optima on one-neuron networks, native
optimisation on the genuinely linear cases, the cats model, and the CLI."""

import json
import subprocess
import sys
from fractions import Fraction as F

import pytest

from nnsmt.errors import InputError
from nnsmt.params import Perturbation, make_symbolic
from nnsmt.engine.robustness import estimate
from nnsmt.sigmoid import sigmoid_bounds

from conftest import EXAMPLES
from helpers import box, neuron

D = F(1, 10)
TOL = F(1, 10**6)


def contains(b, value, tol=TOL):
    assert b.lo.value <= value <= b.hi.value, (float(b.lo.value), float(value), float(b.hi.value))
    assert b.width <= tol, (b.stopped, float(b.width))


def test_local_eps_is_linear_native_optimum_is_exact():
    """x0 = 2 fixed: f_p(2) - f_p0(2) = 2 dw + db is linear in the parameters; max = 3δ = 3/10
    (dw = db = δ). Z3's Optimize finds it, its model replays to exactly 3/10, and the unsat
    probe at 3/10 closes the bracket to width 0."""
    gs = make_symbolic(neuron(), Perturbation(D))
    b, = estimate(gs, "eps", point=(F(2),), backend="z3", budget=30)
    assert b.lo.value == b.hi.value == F(3, 10)
    assert b.method.startswith("native") and b.lo.how == "witness" and b.hi.how == "unsat"
    assert b.lo.witness.value == F(3, 10)


def test_global_eps_bisection(backend):
    """x in [1, 3], weights move: nonlinear (dw * x); max |dw x + db| = 4δ = 2/5 at x = 3."""
    gs = make_symbolic(neuron(), Perturbation(D))
    b, = estimate(gs, "eps", domain=box([1], [3]), backend=backend.name, budget=40, method="bisect")
    contains(b, F(2, 5))
    assert b.method == "bisection" and b.hi.backend == backend.name


def test_sigma_brackets_by_hand():
    """f0 = x - 2 on [0, 4], δ = 1/10 (test_robustness.test_sigma_known_answer):
    σ above = 3δ/(1-δ) = 1/3 (not attained), σ below = 3δ/(1+δ) = 3/11 (attained)."""
    gs = make_symbolic(neuron(), Perturbation(D))
    above, below = estimate(gs, "sigma", domain=box([0], [4]), backend="z3", budget=40)
    contains(above, F(1, 3))
    contains(below, F(3, 11))
    assert above.quantity == "sigma above" and below.lo.witness.side == "below"


def test_sigma_biases_only_is_linear():
    """Only the bias moves: f_p = x - 2 + db, a flip needs |f0| < δ (above, strict) or
    f0 >= -δ (below): both σ = δ = 1/10, found by Z3's Optimize and certified."""
    gs = make_symbolic(neuron(), Perturbation(D, which="biases"))
    above, below = estimate(gs, "sigma", domain=box([0], [4]), backend="z3", budget=40)
    contains(above, D)
    contains(below, D)
    assert below.method.startswith("native") and below.lo.value == D


def test_sigmoid_local_eps_relaxation_bracket():
    """sigmoid(x - 2) at x0 = 2: z_p in [-3/10, 3/10], ε = sigmoid(3/10) - 1/2 ~ 0.07444;
    the relaxation's bracket still holds it, its lo witness certified by the enclosure."""
    gs = make_symbolic(neuron(sigmoid=True), Perturbation(D))
    b, = estimate(gs, "eps", point=(F(2),), backend="z3", budget=40, tolerance=F(1, 10**5))
    lo, hi = sigmoid_bounds(F(3, 10))
    contains(b, hi - F(1, 2), F(1, 10**5))
    assert b.lo.value <= hi - F(1, 2)  # a witness can never beat the true optimum
    assert "relaxation" in b.note


def test_cats_local_eps_by_hand():
    """Cats model at x0 = (Hwt 10, Bwt 3): z_p - z0 = dc0 + 10 dc1 + 3 dc2 in [-14δ, 14δ].
    z0 > 0 where sigmoid is concave, so the larger change is downwards:
    ε = sigmoid(z0) - sigmoid(z0 - 14δ) (exact rationals of the float weights)."""
    from nnsmt.frontends import load_onnx
    g = load_onnx(EXAMPLES / "cats" / "cats.onnx")
    aff = g.nodes[1]
    w, c = aff.weight.fractions()[0], aff.bias.fractions()[0]
    z0 = c + 10 * w[0] + 3 * w[1]
    delta = F(5, 1000)
    assert z0 > 0
    down = sigmoid_bounds(z0)[0] - sigmoid_bounds(z0 - 14 * delta)[1]
    up = sigmoid_bounds(z0)[1] - sigmoid_bounds(z0 - 14 * delta)[0]
    gs = make_symbolic(g, Perturbation(delta))
    b, = estimate(gs, "eps", point=(F(10), F(3)), backend="z3", budget=40, tolerance=F(1, 10**5))
    assert b.lo.value <= up and b.hi.value >= down and b.width <= F(1, 10**5)


def test_estimate_rejects_bad_options():
    gs = make_symbolic(neuron(), Perturbation(D))
    with pytest.raises(InputError, match="--objective"):
        estimate(gs, "delta", domain=box([0], [1]))
    with pytest.raises(InputError, match="--tolerance"):
        estimate(gs, "eps", domain=box([0], [1]), tolerance=0)


def test_no_flip_is_reported():
    """f = x + 10 on [0, 1]: no perturbation of 1/10 reaches the level 0: no label flips."""
    gs = make_symbolic(neuron(1.0, 10.0), Perturbation(D))
    above, below = estimate(gs, "sigma", domain=box([0], [1]), backend="z3", budget=20)
    assert above.none and below.none


def test_cli_estimate_json():
    r = subprocess.run([sys.executable, "-m", "nnsmt.cli", "estimate", str(EXAMPLES / "cats" / "cats.onnx"),
                        "--params", "delta=0.005", "--domain", str(EXAMPLES / "cats" / "box.json"),
                        "--objective", "sigma", "--tolerance", "1e-4", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    above, below = out["brackets"]
    # the seed paper's dReal values for δ = 0.005: σ = (0.024, 0.021)
    assert above["lo"]["value"] <= 0.02436 <= above["hi"]["value"] + 1e-4
    assert below["lo"]["value"] <= 0.02135 <= below["hi"]["value"] + 1e-4
    assert above["lo"]["proved_by"] == "witness" and above["hi"]["proved_by"] == "unsat"
    assert above["lo"]["witness"]["side"] == "above"


def test_compile_estimate_as_the_readme_writes_it():
    """`nnsmt compile NET --mode estimate ... --property eps=0.01` (README) writes the probe
    "can ε exceed 0.01?", the same query as --objective eps --threshold 0.01 and as diff's; its
    header says so. With --objective alone it writes the optimisation script, whose header
    names the objective and no threshold."""
    def compile_(*extra):
        r = subprocess.run([sys.executable, "-m", "nnsmt.cli", "compile", str(EXAMPLES / "cats" / "cats.onnx"),
                            "--mode", "estimate", "--params", "delta=0.005", "--domain",
                            str(EXAMPLES / "cats" / "box.json"), *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout
    probe = compile_("--property", "eps=0.01")
    head = [line for line in probe.splitlines() if line.startswith(";")]
    assert "; query: estimate" in head and "; probe: can some output move by more than 0.01?" in head
    assert "; definition: (δ, ε) robust globally with ε = 0.01" in head and ":named negation" in probe
    assert compile_("--objective", "eps", "--threshold", "0.01") == probe
    opt = compile_("--objective", "eps")
    head = [line for line in opt.splitlines() if line.startswith(";")]
    assert "; objective: maximise (f_p(x)[0] - f_p0(x)[0])" in head and "(maximize " in opt
    assert not any("ε = 0" in line or "probe" in line for line in head)
