"""Argument groups shared by several commands, and their argv -> typed options converters (the
queries are built in `nnsmt.engine.build`)."""

from __future__ import annotations

import sys
from dataclasses import fields
from fractions import Fraction

from nnsmt.errors import InputError

from .common import add_model_args, job_count, load_model, names, positive_float, positive_int

# dest -> default of every option added here (`_add`), and of the --encoding that verify, diff
# and compile add themselves (see `refuse`)
DEFAULTS: dict[str, object] = {"encoding": None}


def from_args(cls, args, **overrides):
    """The dataclass `cls` with every field that has an argument of the same dest read from
    `args` (the others keep their defaults), then `overrides`."""
    kw = {f.name: getattr(args, f.name) for f in fields(cls) if f.init and hasattr(args, f.name)}
    return cls(**(kw | overrides))


def _add(group, *flags, **kw):
    action = group.add_argument(*flags, **kw)
    DEFAULTS[action.dest] = action.default
    return action


def refuse(args, dests, where: str) -> None:
    """InputError (exit 2) for the first of `dests` given a value here: a flag either takes
    effect or is refused, never silently ignored."""
    for n in dests:
        if n in DEFAULTS and getattr(args, n, DEFAULTS[n]) != DEFAULTS[n]:
            flag = "--property" if n == "robust_property" else "--" + n.replace("_", "-")
            raise InputError(f"{flag} does not apply {where}")


ROBUST = ("params", "relative", "layers", "which", "domain", "point", "robust_property", "pieces", "plot")
ESTIMATE = ("objective", "side", "threshold")
TRAIN = ("data", "free", "weight_bound")


def add_onnx_dtype(sp) -> None:
    """--dtype of an ONNX file written (`wrote_onnx`)."""
    sp.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="onnx: tensor type "
                    "of the weights (default float32; the command says when a weight had to be rounded)")


def wrote_onnx(graph, path, dtype: str) -> None:
    """Write `graph` as ONNX (`nnsmt.engine.export.write_onnx`) and say so, with what it lost."""
    from nnsmt.engine.export import write_onnx
    rounded, notes = write_onnx(graph, path, dtype)
    print(f"wrote {path}" + (f": {rounded}" if rounded else ""), file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


ENGINE_ARGS = (
    ("--engine", dict(default="auto", choices=["auto", "plain", "bounded", "split", "bab"], help="auto (default): "
     "input splitting with bounds for networks with at most 16 inputs, branch and bound on ReLU phases "
     "above that, one query for sigmoid and other nonlinear networks; plain: every ReLU an ite; bounded: ReLUs that sound "
     "bounds show stable are fixed, the others get bound lemmas; split: as auto's splitting; bab: branch and "
     "bound on ReLU phases (optimised bounds, exact SMT leaves; ReLU networks with a box input region) "
     "(--json says which engine ran and why)")),
    ("--split", dict(type=positive_int, default=None, metavar="N", help="the split engine's most sub-queries "
     "(default 4096 up to 16 inputs, else 1): the input region is bisected, sub-boxes refuted by bounds "
     "where possible; all unsat -> unsat, a validated sat -> sat (the others are then cancelled)")),
    ("--jobs", dict(type=job_count, default=None, metavar="J", help="sub-queries solved at once (default: one "
     "per core), each in its own process")),
    ("--executor", dict(default="local", choices=["local", "ray"], help="where sub-queries run: local "
     "processes (default) or Ray")),
    ("--ray-address", dict(default=None, help='--executor ray: cluster address (e.g. "auto" after `ray '
     'start --head`); default: start a local Ray instance')))
VERIFY_ONLY = tuple(flag[2:].replace("-", "_") for flag, _ in ENGINE_ARGS)
DEFAULTS.update((dest, kw["default"]) for dest, (_, kw) in zip(VERIFY_ONLY, ENGINE_ARGS))


def add_engine_args(sp, about: str | None = None, upto: int = len(ENGINE_ARGS)):
    """The first `upto` of --engine, --split, --jobs, --executor, --ray-address (verify's
    engine, also per instance in batch and per query in diff); `about`: what they mean there."""
    g = sp.add_argument_group("verification engine", about)
    for flag, kw in ENGINE_ARGS[:upto]:
        _add(g, flag, **kw)


# --- parameter robustness ------------------------------------------------------------------------

def add_robustness_args(sp, with_property: bool = True, plot: bool = True):
    """--params/--relative/--layers/--which/--domain/--point/--sigmoid/--pieces (and --property
    label|eps=E|sigma=S, --plot)."""
    g = sp.add_argument_group("parameter robustness")
    _add(g, "--params", metavar="delta=D", help="make parameters symbolic within nominal ± D (e.g. delta=0.005; "
         "exact decimal)")
    _add(g, "--relative", action="store_true", help="D is relative: |p - p0| <= D·|p0|")
    _add(g, "--layers", help="comma-separated affine layers whose parameters move (names, or 1-based indices, "
         "-1 = last; default all)")
    _add(g, "--which", default="all", choices=["all", "weights", "biases"],
         help="which parameters of those layers move (default all)")
    _add(g, "--domain", help="input box (box.json: {\"lo\": [...], \"hi\": [...]}) for global properties")
    _add(g, "--point", help="input point for local properties: a .csv file with one row, or inline values '10,3'")
    if with_property:
        _add(g, "--property", dest="robust_property", metavar="label|eps=E|sigma=S", help="label: no label "
             "changes (δ robust); eps=E: outputs move by at most E; sigma=S: no label changes at distance >= S "
             "from the decision level")
    _add(g, "--sigmoid", default="auto", choices=["auto", "exp", "pwl"], help="sigmoid encoding: auto (the exact "
         "exp on a backend that decides it δ-completely, e.g. dReal; the sound piecewise-linear relaxation "
         "elsewhere), exp, or pwl")
    _add(g, "--pieces", type=positive_int, default=8, help="pwl: initial grid segments per sigmoid (refined "
         "around rejected candidates; default 8)")
    if plot:
        _add(g, "--plot", metavar="OUT.png", help="2-D input networks: decision boundary, points coloured by "
             "whether their label can flip, σ band, ε heat map (needs matplotlib)")


def add_estimate_args(sp, threshold: bool = True):
    """--objective, --side and (for a single probe) --threshold."""
    g = sp.add_argument_group("estimation (--mode estimate)")
    _add(g, "--objective", choices=["eps", "sigma"], help="the quantity nnsmt estimate brackets (eps: output "
         "change; sigma: label-flip distance from the decision level)")
    _add(g, "--side", default="above", choices=["above", "below"],
         help="--objective sigma: class 1 (above the level, default) or class 0 (below)")
    if threshold:
        _add(g, "--threshold", metavar="T", help="ask whether the quantity can exceed T (exact decimal; the same "
             "as --property eps=T|sigma=T); without it compile writes the optimisation script")


def parse_number(text: str, flag: str, positive: bool = False) -> Fraction:
    """An exact number >= 0, or > 0 if `positive` (a threshold, ε, σ, a tolerance)."""
    from nnsmt.params import parse_exact
    return parse_exact(text, flag, positive=positive)


def parse_property(text: str):
    """label | eps=E | sigma=S -> (kind, value)."""
    t = (text or "").strip()
    if t == "label":
        return "label", Fraction(0)
    k, _, v = t.partition("=")
    if k in ("eps", "sigma") and v:
        return k, parse_number(v, f"--property {k}")
    raise InputError(f"--property: expected label, eps=E or sigma=S (got {text!r})")


def perturbed(args):
    """(symbolic graph, point, domain) from the robustness options (`nnsmt.engine.build.perturbed`)."""
    from nnsmt.engine.build import Setting, perturbed as make
    from nnsmt.params import Perturbation, parse_delta
    if args.params is None:
        raise InputError("--params delta=D is required (e.g. --params delta=0.005)")
    if getattr(args, "plot", None) is not None and args.domain is None:  # before any solving
        raise InputError("--plot needs --domain (the box to draw)")
    g = load_model(args)
    pert = Perturbation(parse_delta(args.params), args.relative, tuple(names(args.layers or "")), args.which)
    return make(g, Setting(pert, args.point, args.domain), args.model)


def probe(args, kind: str, backend: str | None = None):
    """The `nnsmt.engine.build.Probe` of `--mode robustness` (--property) or `--mode estimate`
    (--property eps=T|sigma=T, or --objective [--threshold T]; without a threshold, compile's
    optimisation script: refused where there is a backend)."""
    from nnsmt.engine.build import Probe
    prop = getattr(args, "robust_property", None)
    if kind == "robustness":
        if prop is None:
            raise InputError("--mode robustness needs --property label|eps=E|sigma=S")
        what, t = parse_property(prop)
        return Probe(kind, what, t, sigmoid=args.sigmoid, pieces=args.pieces)
    if prop is not None:
        refuse(args, ("objective", "threshold"), "with --property eps=T|sigma=T (the same probe)")
        what, t = parse_property(prop)
        if what == "label":
            raise InputError("--mode estimate: --property eps=T or sigma=T (label has no quantity)")
    elif args.objective is None:
        raise InputError("--mode estimate needs --property eps=T|sigma=T, or --objective eps|sigma "
                         "[--threshold T]")
    else:
        what = args.objective
        t = None if getattr(args, "threshold", None) is None else parse_number(args.threshold, "--threshold")
    if what == "eps":
        refuse(args, ("side",), "to --objective eps")
    if t is None and backend is not None:
        raise InputError("diff --mode estimate needs --threshold T (or --property eps=T|sigma=T)")
    return Probe(kind, what, t, args.side, args.sigmoid, args.pieces)


def robustness_query(args, kind: str, backend: str | None = None, float_check: bool = False):
    """The query of `--mode robustness` or `--mode estimate` for `backend` (None: no backend, as
    in compile), from the options (`nnsmt.engine.build.robustness_query`)."""
    from nnsmt.engine.build import robustness_query as make
    refuse(args, TRAIN + VERIFY_ONLY + ("encoding",), f"to --mode {kind}")
    if kind == "robustness":
        refuse(args, ESTIMATE, "to --mode robustness (use --mode estimate)")
    gs, point, domain = perturbed(args)
    return make(gs, point, domain, probe(args, kind, backend), backend, float_check)


def plot(args, gs, domain, **kw) -> None:
    """--plot: the robustness figure of a 2-D network over --domain."""
    if getattr(args, "plot", None) is None:
        return
    if domain is None:
        raise InputError("--plot needs --domain (the box to draw)")
    from nnsmt.engine.plots import robustness_figure
    robustness_figure(gs, domain, args.plot, backend=args.backend, sigmoid=args.sigmoid, **kw)
    print(f"; wrote {args.plot}", file=sys.stderr)


# --- training ------------------------------------------------------------------------------------

def add_training_args(sp, required: bool = False):
    """--data, --free, --weight-bound."""
    _add(sp, "--data", required=required, help="training data CSV, one point a line: features..., label "
         "(integer class 0..k-1, last); optional header line of column names")
    _add(sp, "--free", default=None, metavar="LAYERS", help="layers that become solver variables; the others keep "
         "their values from the model (fine-tuning / repair): 'all' (default), 'last', 'first', an affine layer "
         "name as `nnsmt inspect` prints it (a1, a2, ...), its 1-based index among the affine layers (2), or a "
         "comma-separated list (a1,a3)")
    _add(sp, "--weight-bound", type=positive_float, default=None, metavar="B",
         help="box every free weight and bias in [-B, B] (an unsat then proves only that)")


def load_problem(args):
    """The model and --data as a TrainProblem with --free / --weight-bound applied: what train,
    compile --mode train and diff --mode train all solve (`nnsmt.engine.build.training_problem`)."""
    from nnsmt.engine.build import training_problem
    if args.data is None:
        raise InputError("--mode train needs --data DATA.csv")
    return training_problem(load_model(args), args.data, args.free, args.weight_bound)


def train_query(args, default_encoding: str | None = None):
    """The whole training query (every point) of `--mode train`."""
    from nnsmt.queries.train import train_query as make
    refuse(args, ROBUST + ESTIMATE + VERIFY_ONLY, "to --mode train")
    if getattr(args, "sigmoid", "auto") != "auto":
        raise InputError("--sigmoid does not apply to --mode train (training encodes affine/ReLU layers)")
    return make(load_problem(args), args.encoding or default_encoding)


# --- stability (stable, compress) ----------------------------------------------------------------

def add_domain_args(sp):
    """The network, its loader options, --domain, --method and --samples (stable, compress)."""
    add_model_args(sp, "network file")
    sp.add_argument("--domain", required=True, metavar="BOX", help='input domain: box.json ({"lo": [...], "hi": '
                    '[...]}, see README), or a VNN-LIB 1.0 property or a VNN-LIB 2 query about one network (their input boxes)')
    sp.add_argument("--method", default="auto", choices=["auto", "single", "per-neuron", "both"], help="exact "
                    "queries for what bounds leave open: single (harvest models of one query), per-neuron (two "
                    "queries a neuron), both (compare); auto (default): per-neuron (measured fastest, README)")
    sp.add_argument("--samples", type=int, default=0,
                    help="random inputs replayed exactly first, as cheap witnesses (default 0)")


def on_domain(args):
    """(solver, network, domain) of stable and compress; the backend is checked first."""
    from nnsmt.domain import load_domain
    from nnsmt.engine.driver import solver
    solve = solver(args.backend)
    g = load_model(args)
    return solve, g, load_domain(args.domain, g.inputs[0].dim if len(g.inputs) == 1 else None)


# seconds per query of `stable` and `compress` by default: a question that hard (digits_5x100_l1
# has three that cvc5 leaves open after 180 s each) ends as unknown, its neuron named, instead of
# holding the plain command without bound; --timeout raises it (`nnsmt.stable`/`compress` too)
STABILITY_TIMEOUT = 60.0


def stability_options(args, method: str):
    """`--method auto`: per-neuron on every backend. With the pre-pass both methods share, it
    was as fast as single or faster on the digits networks (median per-neuron / single 0.96x
    on cvc5 and 0.98x on HiGHS; 5x100_l1 86.5 s vs 108.1 s on cvc5; bench/stability.py)."""
    from nnsmt.queries.stability import StabilityOptions
    if method == "auto":
        method = "per-neuron"
    return from_args(StabilityOptions, args, method=method)
