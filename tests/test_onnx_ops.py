"""ONNX op table: every supported op against onnxruntime, exact evaluation, random networks.

The fixtures (tests/fixtures/onnx_ops/, built by tests/fixtures/make_onnx_ops.py with onnx.helper
and torch.onnx.export) cover every op in SUPPORTED_OPS; hypothesis builds random convolutional
and residual networks with real PyTorch modules and random ONNX DAGs with onnx.helper.
"""

from __future__ import annotations

import io
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
from nnsmt.frontends.onnx_maps import Lin, Mono, Sp, left, madd, select, to_param  # noqa: E402
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
