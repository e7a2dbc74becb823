"""Parameter robustness and estimation on a named backend: `--sigmoid auto` resolved by the
backend's capabilities (as for verification), witnesses replayed in onnxruntime, and the
queries of `nnsmt.queries.robustness` / `nnsmt.queries.estimate` run through the driver."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnsmt.backends import capabilities
from nnsmt.errors import InputError, ValidationError
from nnsmt.query import Outcome
from nnsmt.queries.estimate import Bracket, EstimateOptions, estimate as estimate_with
from nnsmt.queries.robustness import Question, Witness, analyse, robustness_query

from .driver import solve, solver
from .verify import SIGMOID_MODES, sigmoid_mode

ORT_TOL = 1e-4  # the VNN-COMP tolerance, as nnsmt.validate uses


def sigmoid_for(backend: str, requested: str = "auto") -> str:
    """The sigmoid encoding on `backend`: auto is the exact exp where the backend decides exp
    δ-completely, else the sound pwl relaxation (`nnsmt.engine.verify.sigmoid_mode`)."""
    if requested not in SIGMOID_MODES:
        raise InputError(f"--sigmoid: choose from {', '.join(SIGMOID_MODES)} (got {requested!r})")
    return sigmoid_mode(backend, requested)


def float_replay(gs):
    """A `float_check` for robustness witnesses: the nominal and the perturbed network, exported
    with float64 weights, run in onnxruntime; returns "onnxruntime" when both agree with the
    exact replay within ORT_TOL, None when onnxruntime is not installed; raises ValidationError
    on a disagreement."""
    def check(w: Witness) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        from nnsmt.frontends.onnx_export import graph_to_onnx
        g = gs.slice((analyse(gs).out,))
        x = np.array([[float(v) for v in w.x]], dtype=np.float64)
        for label, params, exact in (("nominal", {}, w.y_nom), ("perturbed", w.params, w.y_pert)):
            m, _ = graph_to_onnx(g, {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}, "float64")
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            y = np.asarray(sess.run(None, {g.inputs[0].name: x})[0], dtype=np.float64).reshape(-1)
            ref = np.array([float((a + b) / 2) for a, b in zip(*exact)])
            if not np.all(np.abs(y - ref) <= ORT_TOL):
                raise ValidationError(f"the witness replays exactly but onnxruntime disagrees on the {label} "
                                      f"network beyond {ORT_TOL}: exact {ref.tolist()}, onnxruntime {y.tolist()}")
        return "onnxruntime"
    return check


def query(gs, q: Question, backend: str, sigmoid: str = "auto", pieces: int = 8, **kw):
    """The robustness query of `q` for `backend` (sigmoid resolved, δ-complete retries where
    the backend is δ-complete)."""
    return robustness_query(gs, q, sigmoid_for(backend, sigmoid), pieces,
                            capabilities=capabilities(backend), **kw)


def run(qq, backend: str, timeout: float | None = None, memory_mb: int | None = None) -> Outcome:
    """Decide a robustness (or estimation probe) query on `backend` through the driver: one
    hard deadline for all its refinement rounds; the outcome notes say what the encoding means."""
    o = solve(qq, backend, timeout, memory_mb=memory_mb)
    return replace(o, notes=qq.notes + o.notes)


def check(gs, q: Question, backend: str = "z3", timeout: float | None = None, sigmoid: str = "auto",
          pieces: int = 8, memory_mb: int | None = None, **kw) -> Outcome:
    """Decide a robustness question on `backend` (`run` of its `query`)."""
    return run(query(gs, q, backend, sigmoid, pieces, **kw), backend, timeout, memory_mb)


def estimate(gs, objective: str, *, backend: str = "z3", point=None, domain=None,
             options: EstimateOptions | None = None, **fields) -> list[Bracket]:
    """Certified brackets (`nnsmt.queries.estimate`) with `backend`'s solver, each probe in a
    child process killed at its deadline; `options`, or `EstimateOptions(**fields)`. Each lo
    witness is replayed in onnxruntime too (`float_replay`)."""
    options = options or EstimateOptions(**fields)
    opts = replace(options, sigmoid=sigmoid_for(backend, options.sigmoid))
    brackets = estimate_with(gs, objective, solver(backend), point=point, domain=domain, options=opts)
    replay = float_replay(gs)
    for b in brackets:  # the lo witnesses through onnxruntime too (raises on a disagreement)
        if b.lo.how == "witness" and b.lo.witness is not None:
            b.lo.replayed = replay(b.lo.witness)
    return brackets
