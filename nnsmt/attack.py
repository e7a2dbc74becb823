"""A cheap attack: projected sign-gradient descent (PGD) on the float network, from many starts.

`attack` looks for inputs in a box where the float network reaches the property's unsafe region
(the VNN-LIB asserts). It steers only: it proves nothing and claims nothing. Its points are
candidates, to be replayed exactly and in onnxruntime by the caller (`nnsmt.queries.split`
tries them through the query's `certify`, as every other candidate).

The objective is a margin of the property's output asserts, m(x) <= 0 where the asserts hold
in float: an atom `lhs op rhs` with a = lhs - rhs linear in X and Y has margin a for `<=`/`<`,
-a for `>=`/`>` and |a| for `=`; a conjunction takes the max of its parts, a disjunction the
min, a negation flips the sign. The margin is not cut at 0 (no hinge): descent keeps pushing
into the unsafe region, away from its boundary, which the exact replay then has room for.
(sub)gradients pick the atom that attains the max/min, so a step needs only the network's
vector-Jacobian product, written by hand below over Input, Affine (dense or sparse weights,
several terms), Relu and Sigmoid; any other node, or a non-linear atom, and there is no attack
(an empty list), not a guess.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

from .ir import Affine, Const, Graph, Input, Relu, Sigmoid, Sparse
from .terms import And, Bool, Cmp, Not, Or, linear_form, variables


def _float(q) -> float:
    """float(q), or inf beyond float64's range (the atom is then refused as unsupported)."""
    try:
        return float(q)
    except OverflowError:
        return float("inf")


class _Unsupported(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# the property's margin


class _Margin:
    """The margin of a property's output asserts as a function of (X, Y) batches: `value`
    returns m (B,) and, per row, the atom attaining it and the sign of m in that atom's value."""

    def __init__(self, prop, n_in: int, n_out: int):
        self.terms, rows_x, rows_y, consts, self.index = [], [], [], [], {}
        for _, t in prop.asserts:
            names = variables(t)
            if not any(v.startswith("Y_") for v in names):
                continue  # input constraints: the box
            self.terms.append(t)
            self._collect(t, rows_x, rows_y, consts, n_in, n_out)
        k = len(consts)
        self.Cx = np.array(rows_x).reshape(k, n_in)
        self.Cy = np.array(rows_y).reshape(k, n_out)
        self.d = np.array(consts, dtype=np.float64)

    def _collect(self, t, rows_x, rows_y, consts, n_in, n_out):
        match t:
            case And() | Or():
                for a in t.args:
                    self._collect(a, rows_x, rows_y, consts, n_in, n_out)
            case Not():
                self._collect(t.arg, rows_x, rows_y, consts, n_in, n_out)
            case Bool():
                pass
            case Cmp():
                lf, rf = linear_form(t.lhs), linear_form(t.rhs)
                if lf is None or rf is None:
                    raise _Unsupported("a non-linear atom")
                rx, ry = np.zeros(n_in), np.zeros(n_out)
                for name in set(lf[0]) | set(rf[0]):
                    v = _float(lf[0].get(name, 0) - rf[0].get(name, 0))
                    kind, _, i = name.partition("_")
                    if kind not in ("X", "Y") or not i.isdigit():
                        raise _Unsupported(f"a variable {name}")
                    (rx if kind == "X" else ry)[int(i)] = v
                c = _float(lf[1] - rf[1])
                if not (np.isfinite(c) and np.all(np.isfinite(rx)) and np.all(np.isfinite(ry))):
                    raise _Unsupported("a constant beyond float64")
                self.index[id(t)] = len(consts)
                rows_x.append(rx)
                rows_y.append(ry)
                consts.append(c)
            case _:
                raise _Unsupported(f"a {type(t).__name__} term")

    def value(self, x: np.ndarray, y: np.ndarray):
        """(m, atom, sign): m (B,), the atom attaining it (-1: a constant), dm/da of that atom."""
        a = x @ self.Cx.T + y @ self.Cy.T + self.d  # (B, K)
        B = len(x)
        m = np.full(B, -np.inf)
        atom, sign = np.full(B, -1), np.zeros(B)
        for t in self.terms:  # the asserts are a conjunction: max
            mt, at, st = self._term(t, a, B)
            better = mt > m
            m, atom, sign = np.where(better, mt, m), np.where(better, at, atom), np.where(better, st, sign)
        return m, atom, sign

    def _term(self, t, a, B):
        match t:
            case And() | Or():
                parts = [self._term(s, a, B) for s in t.args]
                if not parts:
                    v = -np.inf if isinstance(t, And) else np.inf
                    return np.full(B, v), np.full(B, -1), np.zeros(B)
                ms = np.stack([p[0] for p in parts])
                j = np.argmax(ms, 0) if isinstance(t, And) else np.argmin(ms, 0)
                r = np.arange(B)
                return (ms[j, r], np.stack([p[1] for p in parts])[j, r],
                        np.stack([p[2] for p in parts])[j, r])
            case Not():
                m, at, s = self._term(t.arg, a, B)
                return -m, at, -s
            case Bool():
                return np.full(B, -np.inf if t.value else np.inf), np.full(B, -1), np.zeros(B)
            case Cmp():
                k = self.index[id(t)]
                v = a[:, k]
                if t.op in ("<=", "<"):
                    return v, np.full(B, k), np.ones(B)
                if t.op in (">=", ">"):
                    return -v, np.full(B, k), -np.ones(B)
                return np.abs(v), np.full(B, k), np.sign(v)  # "="
        raise _Unsupported(f"a {type(t).__name__} term")


# ---------------------------------------------------------------------------------------------
# the network, forward and backward over a batch


def _weight(w):
    """A float64 matrix (dense ndarray or scipy CSR) for a Const/Sparse weight."""
    if isinstance(w, Sparse):
        return w.csr()
    if isinstance(w, Const):
        return w.floats()
    raise _Unsupported(f"a {type(w).__name__} parameter")


class Network:
    """The float network of a single-input, single-output graph over batches of inputs (rows),
    with its vector-Jacobian product. Raises `ValueError` for a graph it cannot differentiate."""

    def __init__(self, graph: Graph, output: str | None = None):
        try:
            inp, out = (graph.inputs[0], output) if output else graph.single_io("an attack")
            g = graph.slice(out)
            ins = g.inputs
            if len(ins) != 1 or ins[0].name != inp.name:
                raise _Unsupported("several inputs")
            self.steps = []
            for n in g.nodes:
                match n:
                    case Input():
                        pass
                    case Affine():
                        terms = tuple((x, _weight(w)) for x, w in n.terms())
                        bias = _weight(n.bias).reshape(-1)
                        self.steps.append(("affine", n.name, terms, bias))
                    case Relu():
                        self.steps.append(("relu", n.name, n.x))
                    case Sigmoid():
                        self.steps.append(("sigmoid", n.name, n.x))
                    case _:
                        raise _Unsupported(f"a {type(n).__name__} node")
        except _Unsupported as e:
            raise ValueError(str(e)) from None
        self.input, self.output, self.dim = inp.name, out, inp.dim

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every value of the cone for the batch x (B, dim): name -> (B, d)."""
        env = {self.input: np.asarray(x, dtype=np.float64)}
        with np.errstate(over="ignore", invalid="ignore"):
            for step in self.steps:
                kind, name = step[0], step[1]
                if kind == "affine":
                    out = None
                    for src, w in step[2]:
                        t = np.asarray((w @ env[src].T).T)
                        out = t if out is None else out + t
                    env[name] = out + step[3]
                elif kind == "relu":
                    env[name] = np.maximum(env[step[2]], 0.0)
                else:
                    env[name] = 0.5 * (1.0 + np.tanh(0.5 * env[step[2]]))
        return env

    def backward(self, env: dict[str, np.ndarray], g_out: np.ndarray, leak: float = 0.0) -> np.ndarray:
        """The gradient with respect to the input of sum_b <g_out[b], output[b]> (B, dim).
        With `leak` > 0, a ReLU passes `leak` times the gradient where its input is negative
        (the gradient of a leaky ReLU): a direction where the network is flat."""
        grads = {self.output: np.asarray(g_out, dtype=np.float64)}

        def acc(name, g):
            grads[name] = g if name not in grads else grads[name] + g

        with np.errstate(over="ignore", invalid="ignore"):
            for step in reversed(self.steps):
                kind, name = step[0], step[1]
                g = grads.pop(name, None)
                if g is None:
                    continue  # does not reach the output
                if kind == "affine":
                    for src, w in step[2]:
                        acc(src, np.asarray((w.T @ g.T).T))
                elif kind == "relu":
                    acc(step[2], g * np.where(env[step[2]] > 0, 1.0, leak))
                else:
                    s = env[name]
                    acc(step[2], g * s * (1.0 - s))
        g = grads.get(self.input)
        return np.zeros_like(env[self.input]) if g is None else g


# ---------------------------------------------------------------------------------------------
# the attack


def margin_of(graph: Graph, prop):
    """(network, margin) for an attack on `prop`, or None when either is out of reach."""
    try:
        net = Network(graph)
        return net, _Margin(prop, net.dim, _out_dim(graph, net.output))
    except (ValueError, _Unsupported):
        return None


def _out_dim(graph: Graph, out: str) -> int:
    return graph.dims()[out]


def margins(net: Network, margin: _Margin, x: np.ndarray) -> np.ndarray:
    """The margin at each row of x (<= 0: the asserts over Y hold there in float)."""
    y = net.forward(x)[net.output]
    return margin.value(x, y)[0]


def attack(graph: Graph, prop, lo, hi, *, starts: int = 64, steps: int = 50, seed: int = 0,
           time_budget: float | None = None, keep: int = 4, leak: float = 0.1,
           step_size: tuple[float, float] = (0.3, 0.01)) -> list[np.ndarray]:
    """Candidate counterexamples of `prop` in the box [lo, hi], best (most violating) first.

    Projected sign-gradient descent in float64 on the property's margin (module docstring),
    from `starts` uniform random points of the box at once; each step moves every coordinate
    by a share of the box's width in that dimension, shrinking linearly from `step_size[0]` to
    `step_size[1]`, and clips the iterate into the box. Each start keeps its best iterate. The
    gradient is a leaky ReLU's (`leak`; 0 for the exact gradient): much of a ReLU network's
    input box can be flat (a layer all inactive), where the exact gradient is 0 and a descent
    stays put. Once a start reaches the unsafe region, a few more steps push it deeper, then
    the round ends. With `time_budget`, rounds of fresh starts follow until one reaches the
    unsafe region or the budget is spent.

    Args:
        graph: a single-input network of Input, Affine, Relu and Sigmoid nodes.
        prop: the VNN-LIB property (asserts = the unsafe region); its asserts over Y must be
            linear (in X and Y).
        lo, hi: the box, float arrays of the input's dimension (finite).
        starts, steps: random starts per round, steps per round.
        seed: the random starts' seed (the result is a function of the seed, and of how many
            rounds and steps `time_budget` allowed).
        time_budget: seconds (None: one round, whatever it takes).
        keep: when no start reaches the unsafe region, the best `keep` points are returned.

    Returns:
        The points (float64 arrays) whose margin is <= 0 (the asserts over Y hold in float;
        asserts over X alone are the box's business), ordered by margin; if there are none,
        the `keep` best. Duplicates removed. Empty when the network or property is out of reach.
        Nothing here is a verdict: the caller replays every point exactly.
    """
    t0 = time.perf_counter()
    got = margin_of(graph, prop)
    if got is None:
        return []
    net, margin = got
    lo, hi = np.asarray(lo, dtype=np.float64).reshape(-1), np.asarray(hi, dtype=np.float64).reshape(-1)
    if lo.shape != (net.dim,) or hi.shape != (net.dim,) or not (np.all(np.isfinite(lo)) and
                                                             np.all(np.isfinite(hi))):
        return []
    if np.any(lo > hi) or starts < 1:
        return []
    rng = np.random.default_rng(seed)

    def over() -> bool:
        return time_budget is not None and time.perf_counter() - t0 > time_budget

    xs, ms = [], []
    while True:
        x, m = _descend(net, margin, lo, hi, lo + (hi - lo) * rng.random((starts, net.dim)),
                        steps, leak, step_size, over)
        xs.append(x)
        ms.append(m)
        if time_budget is None or np.any(m <= 0) or over():
            break
    best_x, best_m = np.concatenate(xs), np.concatenate(ms)
    order = np.argsort(best_m, kind="stable")
    hit = order[best_m[order] <= 0]
    pick = hit if len(hit) else [i for i in order[:keep] if np.isfinite(best_m[i])]
    out, seen = [], set()
    for i in pick:
        key = best_x[i].tobytes()
        if key not in seen:
            seen.add(key)
            out.append(best_x[i].copy())
    return out


def refine(graph: Graph, prop, lo, hi, starts: np.ndarray, *, steps: int = 100,
           step_size: tuple[float, float] = (0.05, 0.001), keep: int = 4) -> list[np.ndarray]:
    """`attack`'s descent from given points (e.g. an LP relaxation's minimisers), with the exact
    ReLU gradient and small steps: candidates, best first (the same contract as `attack`)."""
    got = margin_of(graph, prop)
    starts = np.asarray(starts, dtype=np.float64)
    if got is None or starts.ndim != 2 or not len(starts):
        return []
    net, margin = got
    lo, hi = np.asarray(lo, dtype=np.float64).reshape(-1), np.asarray(hi, dtype=np.float64).reshape(-1)
    if starts.shape[1] != net.dim or lo.shape != (net.dim,) or hi.shape != (net.dim,):
        return []
    x, m = _descend(net, margin, lo, hi, np.clip(starts, lo, hi), steps, 0.0, step_size, lambda: False)
    order = np.argsort(m, kind="stable")
    pick = [i for i in order if m[i] <= 0] or [i for i in order[:keep] if np.isfinite(m[i])]
    return [x[i].copy() for i in pick]


DEEPER = 5  # steps after the first start reaches the unsafe region


def _descend(net, margin, lo, hi, x, steps, leak, step_size, over):
    """One round of descent from the rows of x: (best iterate, its margin) per start."""
    width = hi - lo
    best_x, best_m = x.copy(), np.full(len(x), np.inf)
    a0, a1 = step_size
    stop = steps
    for t in range(steps + 1):
        env = net.forward(x)
        y = env[net.output]
        m, atom, sign = margin.value(x, y)
        m = np.where(np.isnan(m), np.inf, m)
        better = m < best_m
        best_m[better], best_x[better] = m[better], x[better]
        if stop == steps and np.any(m <= 0):
            stop = min(steps, t + DEEPER)
        if t >= stop or over():
            break
        ok = atom >= 0
        gy, gx = np.zeros_like(y), np.zeros_like(x)
        gy[ok] = sign[ok, None] * margin.Cy[atom[ok]]
        gx[ok] = sign[ok, None] * margin.Cx[atom[ok]]
        g = gx + net.backward(env, gy, leak)
        g[~np.isfinite(g)] = 0.0
        alpha = a0 + (a1 - a0) * t / max(steps - 1, 1)
        x = np.clip(x - alpha * width * np.sign(g), lo, hi)
    return best_x, best_m


def as_fractions(x: np.ndarray) -> list[Fraction]:
    """A float point as exact Fractions (what the exact replay takes)."""
    return [Fraction(float(v)) for v in x]
