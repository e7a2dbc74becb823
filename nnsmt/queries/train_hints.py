"""Phase hints for SMT training: a quick float gradient-descent fit whose ReLU activation
pattern (and, for the homog encoding, the signs of the outgoing weights) is offered to the
solver as extra constraints in a first, cheap query.

A hint is never a result: the hinted query is a restriction of the real one, so its sat model is
still checked exactly on every point, and its unsat or timeout only means "drop the hints and
solve the real query". With the pattern fixed, every ReLU is a known linear piece and the
one-hidden-layer query is a plain linear program (no case splits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..ir import Affine, Relu, Sym


@dataclass(frozen=True)
class Hints:
    """Activation pattern of every ReLU node on every data point (bool (n, units)), the float
    fit's accuracy, and for one-hidden-layer binary nets the signs of the outgoing weights."""

    pattern: dict
    accuracy: float
    signs: np.ndarray | None = None
    seconds: float = 0.0
    weights: tuple = ()


def _layers(problem):
    """[(affine node, the ReLU node right after it reading it, or None)] in order, for the
    affine/relu chain of the problem."""
    nodes = problem.graph.nodes
    out = []
    for k, n in enumerate(nodes):
        if isinstance(n, Affine):
            nxt = nodes[k + 1] if k + 1 < len(nodes) else None
            out.append((n, nxt if isinstance(nxt, Relu) and nxt.x == n.name else None))
    return out


def gd_fit(problem, seconds: float = 1.0, seed: int = 0, steps: int = 20000,
           tries: int = 4) -> Hints | None:
    """Full-batch Adam on the logistic / cross-entropy loss, free layers only, until every point
    is classified with some margin or the time is up; restarted from new random weights (up to
    `tries` runs of seconds / tries each) while no run classifies every point, because a run
    either converges quickly or stalls (measured on the sphere task: a converging 3-2-2 run on
    200 points takes about 0.1 s; 3 of 8 seeds stall). The best run's hints. None when the network
    is not a plain chain of affine/ReLU layers."""
    best = None
    t0 = time.perf_counter()
    for k in range(tries):
        left = seconds - (time.perf_counter() - t0)
        if k and left <= 0:
            break
        h = _gd_once(problem, min(seconds / tries, left) if k < tries - 1 else left,
                     seed + k, steps)
        if h is None:
            return None
        if best is None or h.accuracy > best.accuracy:
            best = h
        if h.accuracy == 1.0:
            break
    return replace(best, seconds=time.perf_counter() - t0)


def _gd_once(problem, seconds: float, seed: int, steps: int) -> Hints | None:
    layers = _layers(problem)
    chain = [problem.input]
    for n, relu in layers:
        if n.x != chain[-1]:
            return None
        chain.append(n.name)
        if relu:
            chain.append(relu.name)
    if chain[-1] != problem.logits:
        return None
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    X = problem.data.x.astype(np.float64)
    Y = problem.data.y
    params = []
    for n, _ in layers:
        w, b = n.weight, n.bias
        if isinstance(w, Sym):
            fan_in = w.shape[1]
            W = rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)
            B = np.zeros(b.shape) + 0.01
        else:
            W, B = w.floats(), b.floats() if not isinstance(b, Sym) else np.zeros(b.shape)
        params.append([W, B, isinstance(w, Sym), isinstance(b, Sym)])
    m = [[np.zeros_like(p[0]), np.zeros_like(p[1])] for p in params]
    v = [[np.zeros_like(p[0]), np.zeros_like(p[1])] for p in params]
    lr, b1, b2 = 0.01, 0.9, 0.999
    k = problem.n_classes
    sign = np.where(Y == 1, 1.0, -1.0)
    onehot = np.eye(k)[Y] if not problem.binary_single else None

    def forward(params):
        acts, h = [X], X
        for (W, B, _, _), (_, relu) in zip(params, layers):
            z = h @ W.T + B
            acts.append(z)
            h = np.maximum(z, 0) if relu else z
        return acts, h

    best = None
    for step in range(1, steps + 1):
        acts, out = forward(params)
        if problem.binary_single:
            margin = sign * out[:, 0]
            # logistic loss on the margin, with a target margin of 1 to leave room for rounding
            g = (-sign / (1 + np.exp(np.clip(margin - 1, -50, 50))))[:, None]
            acc = float(np.mean(margin > 0))
        else:
            z = out - out.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = p - onehot
            srt = np.sort(out, axis=1)
            own = out[np.arange(len(Y)), Y]
            acc = float(np.mean(own >= srt[:, -1]) if k > 1 else 1.0)
            margin = own - np.where(own >= srt[:, -1], srt[:, -2], srt[:, -1])
        if best is None or acc > best[0]:
            best = (acc, [(W.copy(), B.copy()) for W, B, _, _ in params])
        if acc == 1.0 and np.min(margin) > 1e-3:
            best = (acc, [(W.copy(), B.copy()) for W, B, _, _ in params])
            break
        if time.perf_counter() - t0 > seconds:
            break
        g = g / len(Y)
        for li in reversed(range(len(params))):
            W, B, fw, fb = params[li]
            h_in = X if li == 0 else (np.maximum(acts[li], 0) if layers[li - 1][1] else acts[li])
            gW, gB = g.T @ h_in, g.sum(axis=0)
            if li > 0:
                g = g @ W
                if layers[li - 1][1]:
                    g = g * (acts[li] > 0)
            for idx, (grad, free) in enumerate(((gW, fw), (gB, fb))):
                if not free:
                    continue
                m[li][idx] = b1 * m[li][idx] + (1 - b1) * grad
                v[li][idx] = b2 * v[li][idx] + (1 - b2) * grad * grad
                mh = m[li][idx] / (1 - b1 ** step)
                vh = v[li][idx] / (1 - b2 ** step)
                params[li][idx] = params[li][idx] - lr * mh / (np.sqrt(vh) + 1e-8)
    acc, weights = best
    pattern = {}
    h = X
    for (W, B), (n, relu) in zip(weights, layers):
        z = h @ W.T + B
        if relu:
            pattern[relu.name] = z > 0
            h = np.maximum(z, 0)
        else:
            h = z
    signs = None
    if len(weights) == 2 and problem.n_classes == 2:
        W2 = weights[1][0]
        v2 = W2[0] if W2.shape[0] == 1 else W2[1] - W2[0]
        signs = np.where(v2 >= 0, 1, -1)
    return Hints(pattern, acc, signs, time.perf_counter() - t0, tuple(weights))
