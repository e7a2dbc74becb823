"""The dReal backend: what nnsmt says when dReal is missing (tested with a monkeypatched import,
on every machine), and known answers with exact exp where dReal is installed."""

import importlib.machinery
import shutil
from fractions import Fraction as F
from pathlib import Path

import pytest

from nnsmt.backends import dreal_backend, get_backend
from nnsmt.errors import BackendUnavailable
from nnsmt.params import Perturbation, make_symbolic

from conftest import EXAMPLES, solver_backend
from helpers import box, neuron


def fake_spec(monkeypatch, location):
    real = dreal_backend.importlib.util.find_spec

    def find_spec(name, *a, **kw):
        if name == "dreal":
            if location is None:
                return None
            spec = importlib.machinery.ModuleSpec("dreal", None, is_package=True)
            spec.submodule_search_locations = [str(location)]
            return spec
        return real(name, *a, **kw)
    monkeypatch.setattr(dreal_backend.importlib.util, "find_spec", find_spec)


def test_missing_python_package(monkeypatch):
    fake_spec(monkeypatch, None)
    assert dreal_backend.missing(ImportError("No module named 'dreal'")) == \
        "the Python package dreal is not installed (pip install dreal)"


def test_missing_library_from_the_import_error(monkeypatch, tmp_path):
    fake_spec(monkeypatch, tmp_path)  # an installed package without its native library
    msg = dreal_backend.missing(ImportError("libibex.so: cannot open shared object file: No such file or directory"))
    assert "installed" in msg and "missing shared library libibex.so" in msg and "/opt/libibex/2.7.4/lib" in msg


def test_missing_libraries_by_probing_the_elf(monkeypatch, tmp_path):
    """Probe every DT_NEEDED library of the extension: here a real shared object stands in for
    libdreal_.so and one of its libraries is made unloadable."""
    import z3
    real = next(Path(z3.__file__).parent.glob("lib/libz3.so*"), None)
    if real is None:
        pytest.skip("no libz3.so to use as a stand-in ELF file")
    shutil.copy(real, tmp_path / "libdreal_.so")
    needed, _ = dreal_backend.elf_needed(str(tmp_path / "libdreal_.so"))
    assert "libc.so.6" in needed and all(".so" in n for n in needed)
    victim = needed[0]
    fake_spec(monkeypatch, tmp_path)
    monkeypatch.setattr(dreal_backend, "_loadable", lambda name, runpath: name != victim)
    msg = dreal_backend.missing(ImportError("something else"))
    assert f"missing shared library {victim}" in msg


def test_unavailable_backend_is_reported(monkeypatch, capsys, tmp_path):
    fake_spec(monkeypatch, tmp_path)  # the package is "installed" here, whatever this machine has

    def fail():
        raise ImportError(dreal_backend.missing(ImportError("libClp.so.1: cannot open shared object file")))
    monkeypatch.setattr(dreal_backend, "load_dreal", fail)
    with pytest.raises(BackendUnavailable, match="libClp.so.1 .*coinor-libclp"):
        get_backend("dreal")
    from nnsmt.cli import main
    code = main(["verify", str(EXAMPLES / "cats" / "cats.onnx"), "--params", "delta=0.005",
                 "--domain", str(EXAMPLES / "cats" / "box.json"), "--property", "label", "--backend", "dreal"])
    err = capsys.readouterr().err
    assert code == 2 and "backend 'dreal' is not available" in err and "libClp.so.1" in err


@pytest.fixture
def dreal():
    return solver_backend("dreal")  # or a skip saying what is missing


def test_dreal_exact_sigmoid_eps(dreal):
    """sigmoid(x - 2) at x0 = 2, δ = 1/10: ε = sigmoid(3/10) - 1/2 ~ 0.074443 with exp."""
    from nnsmt.engine.robustness import check
    from nnsmt.queries.robustness import Question, build
    from nnsmt.sigmoid import sigmoid_bounds
    gs = make_symbolic(neuron(sigmoid=True), Perturbation(F(1, 10)))
    s = build(gs, Question("eps", point=(F(2),), value=F(7, 100)))
    assert "exp" in s.features
    o = check(gs, Question("eps", point=(F(2),), value=F(7, 100)), "dreal", timeout=60)
    assert o.status == "sat" and o.witness.holds  # δ-sat, replayed exactly
    assert not any("relaxation" in n for n in o.notes) and "δ-sat" in o.notes[-1]  # auto = exp on dReal
    hi = sigmoid_bounds(F(3, 10))[1] - F(1, 2)
    assert check(gs, Question("eps", point=(F(2),), value=hi + F(1, 1000)), "dreal", timeout=60).status == "unsat"


def test_dreal_known_answers(dreal):
    """f0 = x - 2 on [0, 4], δ = 1/10 (test_robustness.test_sigma_known_answer): flips above
    the level reach f0 up to 1/3, not attained. σ = 0.35 is unsat; σ = 0.3 is sat: x in
    [2.3, 7/3) with w = 0.9, b = -2.1 flips, a gap of 1/30 that dReal's δ = 1e-6 box (or its
    strengthened retry) must land in, so the witness replays exactly (a bare delta-sat fails)."""
    from nnsmt.engine.robustness import check
    from nnsmt.queries.robustness import Question
    gs = make_symbolic(neuron(), Perturbation(F(1, 10)))
    dom = box([0], [4])
    assert check(gs, Question("sigma", domain=dom, value=F(35, 100), sides=("above",)), "dreal", timeout=60).status == "unsat"
    o = check(gs, Question("sigma", domain=dom, value=F(3, 10), sides=("above",)), "dreal", timeout=60)
    assert o.status == "sat", (o.status, o.reason)
    assert o.witness.holds is True and o.witness.value >= F(3, 10)
    assert F(23, 10) <= o.witness.x[0] < F(7, 3)


def test_dreal_estimate_brackets_contain_the_truth(dreal):
    from nnsmt.engine.robustness import estimate
    gs = make_symbolic(neuron(), Perturbation(F(1, 10)))
    b, = estimate(gs, "eps", domain=box([1], [3]), backend="dreal", budget=30, tolerance=F(1, 10**4))
    assert b.lo.value <= F(2, 5) <= b.hi.value
    assert b.hi.how in ("unsat", "interval bounds")
