"""Queries built from typed options: the verification query `nnsmt compile` writes, parameter
robustness and estimation probes (`verify --params`, `compile`, `diff`), and training problems
(`train`, `compile --mode train`, `diff --mode train`)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from nnsmt.errors import InputError
from nnsmt.ir import Graph
from nnsmt.params import Perturbation

MAX_FLOAT = Fraction(1.7976931348623157e308)  # inputs beyond float64 cannot be bounded or replayed


def read_point(text: str) -> tuple[Fraction, ...]:
    """An input point from a .csv file (one row) or inline 'a,b,...' (exact decimals).

    Raises:
        InputError: an unreadable file, not one row, a value that is not a number or is
            beyond float64.
    """
    p = Path(text)
    src, row = "--point", text
    try:
        is_file = p.suffix.lower() in (".csv", ".txt") or p.exists()
    except OSError:  # inline values longer than a file name can be (a conv net's input)
        is_file = False
    if is_file:
        try:
            rows = [r for r in p.read_text().splitlines() if r.strip() and not r.startswith("#")]
        except OSError as e:
            raise InputError(f"{text}: cannot read point: {e.strerror}") from None
        if len(rows) != 1:
            raise InputError(f"{text}: a point file holds one row of numbers, found {len(rows)} rows")
        src, row = text, rows[0]
    vals = []
    for i, v in enumerate(row.replace(";", ",").replace(" ", ",").split(",")):
        if v.strip():
            try:
                vals.append(Fraction(v.strip()))
            except (ValueError, ZeroDivisionError):
                raise InputError(f"{src}: value {i} ({v.strip()!r}) is not a number") from None
    if not vals:
        raise InputError(f"{src}: no values")
    big = next((i for i, v in enumerate(vals) if abs(v) > MAX_FLOAT), None)
    if big is not None:
        raise InputError(f"{src}: value {big} is beyond float64 (|x| > {float(MAX_FLOAT):.3g})")
    return tuple(vals)


@dataclass(frozen=True)
class Setting:
    """Where a robustness or estimation question is asked.

    Attributes:
        perturbation: which parameters move, and by how much.
        point: a local question's input point (a .csv file or inline values, `read_point`).
        domain: a global question's input box (box.json or a VNN-LIB property).
    """

    perturbation: Perturbation
    point: str | None = None
    domain: str | None = None


def perturbed(graph: Graph, setting: Setting, name: str = "the network"):
    """(symbolic graph, point, domain) of `setting` on `graph` (called `name` in messages).

    Raises:
        InputError: not exactly one of point and domain, a point of the wrong length, or an
            unreadable point or domain.
    """
    from nnsmt.domain import load_domain
    from nnsmt.params import make_symbolic
    gs = make_symbolic(graph, setting.perturbation)
    if (setting.point is None) == (setting.domain is None):
        raise InputError("give exactly one of --domain box.json (global) or --point x.csv (local)")
    dim = graph.inputs[0].dim if len(graph.inputs) == 1 else None
    point = read_point(setting.point) if setting.point is not None else None
    if point is not None and dim is not None and len(point) != dim:
        raise InputError(f"{setting.point}: the point has {len(point)} values, {name} has {dim} inputs")
    domain = load_domain(setting.domain, dim) if setting.domain is not None else None
    return gs, point, domain


@dataclass(frozen=True)
class Probe:
    """What a robustness query asks.

    Attributes:
        kind: "robustness" (the negation of a property: sat means not robust) or "estimate"
            (can the quantity exceed `value`?).
        what: "label", "eps" or "sigma".
        value: ε or σ; estimate's threshold T; None for estimate's optimisation script.
        side: estimate of sigma: the class, "above" (1) or "below" (0) the decision level.
        sigmoid: "auto", "exp" or "pwl"; auto without a backend is the exact exp.
        pieces: pwl: initial grid segments per sigmoid.
    """

    kind: str = "robustness"
    what: str = "label"
    value: Fraction | None = Fraction(0)
    side: str = "above"
    sigmoid: str = "auto"
    pieces: int = 8


def robustness_query(gs: Graph, point, domain, probe: Probe, backend: str | None = None,
                     float_check: bool = False):
    """The `nnsmt.queries.robustness.RobustnessQuery` of `probe` on the symbolic network `gs`.

    Args:
        gs, point, domain: from `perturbed`.
        probe: what to ask.
        backend: the solver it is for (--sigmoid auto resolved by its capabilities); None for
            no backend (as in compile: auto is the exact exp).
        float_check: also replay witnesses in onnxruntime (`nnsmt.engine.robustness.float_replay`).
    """
    from nnsmt.queries.robustness import Question, robustness_query as make
    from .robustness import float_replay, query
    objective, value = None, probe.value
    if probe.kind == "robustness":
        q = Question(probe.what, point=point, domain=domain, value=value)
    else:
        if value is None:
            objective, value = (("eps", 0, 1) if probe.what == "eps" else ("sigma", probe.side)), Fraction(0)
        sides = (probe.side,) if probe.what == "sigma" else ("above", "below")
        q = Question(probe.what, point=point, domain=domain, value=value, sides=sides)
    kw = dict(kind=probe.kind, objective=objective, float_check=float_replay(gs) if float_check else None)
    if backend is None:
        return make(gs, q, "exp" if probe.sigmoid == "auto" else probe.sigmoid, probe.pieces, **kw)
    return query(gs, q, backend, probe.sigmoid, probe.pieces, **kw)


def verify_query(graph: Graph, prop, encoding: str = "plain", sigmoid: str = "auto"):
    """The `nnsmt.queries.verify.VerifyQuery` of a VNN-LIB property, with no backend in view:
    sigmoid "pwl" is the relaxation (on the property's input bounds), anything else the exact exp."""
    from nnsmt.domain import property_bounds
    from nnsmt.queries.verify import VerifyQuery, has_sigmoid
    sig = "pwl" if sigmoid == "pwl" and has_sigmoid(graph) else "exp"
    return VerifyQuery(graph, prop, encoding=encoding, sigmoid=sig,
                       sigmoid_bounds=property_bounds(graph, prop) if sig == "pwl" else None)


def training_problem(graph: Graph, data, free: str | None = None, weight_bound: float | None = None):
    """The `nnsmt.queries.train.TrainProblem` of `graph` on the data CSV `data`, with the layers
    `free` names as solver variables (None: all) and their values boxed by `weight_bound`."""
    from nnsmt.data import load_csv
    from nnsmt.queries.train import make_problem
    k = graph.dims()[graph.outputs[0]]
    points = load_csv(data, n_features=graph.inputs[0].dim, n_classes=2 if k == 1 else k)
    return make_problem(graph, points, free=free, weight_bound=weight_bound)
