"""nnsmt estimate: the largest ε or σ for a δ, as a certified bracket; and the robustness options
`nnsmt verify NET --params delta=...` shares with it."""

from __future__ import annotations

import json
import sys
import time
from fractions import Fraction
from pathlib import Path

from nnsmt.errors import InputError, ValidationError

from .common import EXIT, add_backend_args, add_command, add_model_args, load_model, model_options


def add_robustness_args(sp, with_property: bool = True, plot: bool = True):
    """--params/--relative/--layers/--domain/--point (and --property for verify)."""
    g = sp.add_argument_group("parameter robustness")
    g.add_argument("--params", metavar="delta=D", help="make parameters symbolic within nominal ± D "
                   "(e.g. delta=0.005; exact decimal)")
    g.add_argument("--relative", action="store_true", help="D is relative: |p - p0| <= D·|p0|")
    g.add_argument("--layers", help="comma-separated affine layers whose parameters move (names, "
                   "or 1-based indices, -1 = last; default all)")
    g.add_argument("--which", default="all", choices=["all", "weights", "biases"],
                   help="which parameters of those layers move (default all)")
    g.add_argument("--domain", help="input box (box.json: {\"lo\": [...], \"hi\": [...]}) for "
                   "global properties")
    g.add_argument("--point", help="input point for local properties: a .csv file with one row, "
                   "or inline values '10,3'")
    if with_property:
        g.add_argument("--property", dest="robust_property", metavar="label|eps=E|sigma=S",
                       help="label: no label changes (δ robust); eps=E: outputs move by at most E; "
                            "sigma=S: no label changes at distance >= S from the decision level")
    g.add_argument("--sigmoid", default="auto", help="sigmoid encoding: auto (exp on dReal, the sound "
                   "piecewise-linear relaxation elsewhere), exp, or pwl")
    g.add_argument("--pieces", type=int, default=8, help="pwl: initial grid segments per sigmoid "
                   "(refined around rejected candidates; default 8)")
    if plot:
        g.add_argument("--plot", metavar="OUT.png", help="2-D input networks: decision boundary, points "
                       "coloured by whether their label can flip, σ band, ε heat map (needs matplotlib)")


def parse_point(text: str) -> tuple[Fraction, ...]:
    """A point from a .csv file (one row) or inline 'a,b,...' (exact decimals)."""
    p = Path(text)
    if p.suffix.lower() in (".csv", ".txt") or p.exists():
        try:
            rows = [r for r in p.read_text().splitlines() if r.strip() and not r.startswith("#")]
        except OSError as e:
            raise InputError(f"{text}: cannot read point: {e.strerror}") from None
        src = text
        if len(rows) != 1:
            raise InputError(f"{src}: a point file holds one row of numbers, found {len(rows)} rows")
        row = rows[0]
    else:
        src, row = "--point", text
    vals = []
    for i, v in enumerate(row.replace(";", ",").replace(" ", ",").split(",")):
        if not v.strip():
            continue
        try:
            vals.append(Fraction(v.strip()))
        except ValueError:
            raise InputError(f"{src}: value {i} ({v.strip()!r}) is not a number") from None
    if not vals:
        raise InputError(f"{src}: no values")
    return tuple(vals)


def parse_property(text: str):
    """label | eps=E | sigma=S -> (kind, value)."""
    t = (text or "").strip()
    if t == "label":
        return "label", Fraction(0)
    k, _, v = t.partition("=")
    if k in ("eps", "sigma") and v:
        try:
            q = Fraction(v)
        except ValueError:
            raise InputError(f"--property: {v!r} is not a number") from None
        if q < 0:
            raise InputError(f"--property: {k} must be >= 0")
        return k, q
    raise InputError(f"--property: expected label, eps=E or sigma=S (got {text!r})")


def setup(args):
    """(symbolic graph, point, domain, source graph) from the robustness options."""
    from nnsmt.domain import load_domain
    from nnsmt.params import Perturbation, make_symbolic, parse_delta
    if args.params is None:
        raise InputError("--params delta=D is required (e.g. --params delta=0.005)")
    g = load_model(args.model, **model_options(args))
    layers = tuple(s for s in (args.layers or "").split(",") if s.strip())
    gs = make_symbolic(g, Perturbation(parse_delta(args.params), args.relative, layers, args.which))
    if (args.point is None) == (args.domain is None):
        raise InputError("give exactly one of --domain box.json (global) or --point x.csv (local)")
    dim = g.inputs[0].dim if len(g.inputs) == 1 else None
    point = parse_point(args.point) if args.point is not None else None
    if point is not None and dim is not None and len(point) != dim:
        raise InputError(f"{args.point}: the point has {len(point)} values, {args.model} has {dim} inputs")
    domain = load_domain(args.domain, dim) if args.domain is not None else None
    return gs, point, domain, g


def _vec(vals, n=8) -> str:
    return "[" + ", ".join(f"{float(v):.{n}g}" for v in vals) + "]"


def _mid(enc):
    return [(a + b) / 2 for a, b in zip(*enc)]


def describe_witness(w, indent="  ") -> list[str]:
    import numpy as np
    lines = [f"{indent}input x = {_vec(w.x, 10)}"]
    for k, v in w.params.items():
        a = np.asarray(v, dtype=np.float64)
        txt = _vec(a, 10) if a.ndim == 1 else "[" + ", ".join(_vec(r, 10) for r in a) + "]"
        lines.append(f"{indent}{k} = {txt}")
    lines.append(f"{indent}nominal f(x) = {_vec(_mid(w.y_nom), 10)}   perturbed f(x) = {_vec(_mid(w.y_pert), 10)}")
    return lines


ORT_TOL = 1e-4  # the VNN-COMP tolerance, as nnsmt.validate uses


def ort_replay(gs, w) -> str | None:
    """Run the witness through onnxruntime: the nominal and the perturbed network, each exported
    with float64 weights. Returns "onnxruntime" when both agree with the exact replay within
    ORT_TOL, None when onnxruntime is not installed; raises ValidationError on disagreement."""
    import numpy as np
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from nnsmt.frontends.onnx_export import graph_to_onnx
    from nnsmt.queries.robustness import analyse, truncate
    g = truncate(gs, analyse(gs).out)
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


def run_verify(args) -> int:
    """`nnsmt verify NET --params ...`: one robustness question."""
    from nnsmt.backends import get_backend
    from nnsmt.queries.robustness import Question, check
    t0 = time.perf_counter()
    get_backend(args.backend)
    gs, point, domain, g = setup(args)
    if args.robust_property is None:
        raise InputError("--property label|eps=E|sigma=S is required with --params")
    kind, value = parse_property(args.robust_property)
    q = Question(kind, point=point, domain=domain, value=value)
    o = check(gs, q, args.backend, args.timeout, sigmoid=args.sigmoid, pieces=args.pieces)
    status = o.status
    replayed = None
    if status == "sat":
        try:
            replayed = ort_replay(gs, o.witness)
        except ValidationError as e:
            status, o.reason = "error", str(e)
    where = f"at x = {_vec(point)}" if point is not None else f"on {args.domain}"
    out = {"status": status, "verdict": o.verdict, "reason": o.reason, "backend": o.backend,
           "network": args.model, "definition": q.describe(), "where": where,
           "perturbation": gs.meta.get("perturbation"), "sigmoid": o.sigmoid, "note": o.note or None,
           "rounds": o.rounds, "time": {"total_s": round(time.perf_counter() - t0, 4),
                                        "solver_s": round(o.solver_s, 4)}}
    if o.delta is not None:
        out["dreal_delta"] = o.delta
    if o.witness is not None:
        out["witness"] = o.witness.to_json() | {"replayed": ["exact" if not o.sigmoid or o.sigmoid == "none"
                                                 else "certified enclosures"] + ([replayed] if replayed else [])}
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        head = {"unsat": f"unsat: {q.describe()} {where} ({gs.meta.get('perturbation')})",
                "sat": f"sat: NOT {q.describe()} {where} ({gs.meta.get('perturbation')})"}
        print(head.get(status, f"{status} ({o.reason})" if o.reason else status))
        if status == "sat":
            for line in describe_witness(o.witness):
                print(line)
            if o.witness.value is not None:
                print(f"  witnessed {'|Δf|' if kind == 'eps' else 'distance from the level'} >= "
                      f"{float(o.witness.value):.10g} (certified)")
            print("; witness replayed " + ("exactly" if o.sigmoid == "none" else
                                           "with certified enclosures of the sigmoid")
                  + (f" and through {replayed}" if replayed else ""), file=sys.stderr)
        if o.note:
            print(f"; {o.note}", file=sys.stderr)
        if status == "error":
            print(o.reason, file=sys.stderr)
    if args.plot:
        from nnsmt.plots import robustness_figure
        robustness_figure(gs, domain or _point_domain(point), args.plot, backend=args.backend,
                          sigmoid=args.sigmoid)
        print(f"; wrote {args.plot}", file=sys.stderr)
    return EXIT[status]


def _point_domain(point):
    raise InputError("--plot needs --domain (the box to draw)")


def run(args) -> int:
    from nnsmt.backends import get_backend
    from nnsmt.queries.estimate import estimate
    t0 = time.perf_counter()
    get_backend(args.backend)
    gs, point, domain, g = setup(args)
    tol = Fraction(args.tolerance)
    brackets = estimate(gs, args.objective, point=point, domain=domain, backend=args.backend,
                        tolerance=tol, budget=args.budget, method=args.method, sigmoid=args.sigmoid,
                        query_timeout=args.timeout, pieces=args.pieces)
    where = f"at x = {_vec(point)}" if point is not None else f"on {args.domain}"
    for b in brackets:  # the lo witnesses through onnxruntime too (raises on disagreement)
        if b.lo.how == "witness" and b.lo.witness is not None:
            b.lo.replayed = ort_replay(gs, b.lo.witness)
    if args.json:
        print(json.dumps({"network": args.model, "objective": args.objective, "where": where,
                          "perturbation": gs.meta.get("perturbation"), "backend": args.backend,
                          "tolerance": float(tol), "brackets": [b.to_json() for b in brackets],
                          "time_s": round(time.perf_counter() - t0, 4)}, indent=2, ensure_ascii=False))
    else:
        print(f"{args.objective} of {args.model} {where}, {gs.meta.get('perturbation')}, backend {args.backend}")
        for b in brackets:
            print(format_bracket(b))
    if args.plot:
        from nnsmt.plots import robustness_figure
        if domain is None:
            raise InputError("--plot needs --domain (the box to draw)")
        sig = [b.hi.value for b in brackets] if args.objective == "sigma" else None
        robustness_figure(gs, domain, args.plot, backend=args.backend, sigmoid=args.sigmoid, sigma=sig,
                          eps_map=args.objective == "eps")
        print(f"; wrote {args.plot}", file=sys.stderr)
    return 0  # a certified bracket, whatever its width (the output says why it stopped)


def format_bracket(b) -> str:
    name = {"eps": "ε", "sigma above": "σ (class 1, above the level)",
            "sigma below": "σ (class 0, below the level)"}[b.quantity]
    if b.none and b.lo.value == b.hi.value == 0:
        return f"  {name}: no label of this class can flip (unsat on {b.hi.backend}, {b.hi.time_s:.2f} s)"
    lines = [f"  {name} ∈ [{float(b.lo.value):.10g}, {float(b.hi.value):.10g}]  width {float(b.width):.3g}"
             f"  ({b.method}; {len(b.probes)} solver calls; stopped: {b.stopped})"]
    lo_by = {"witness": "a witness replayed exactly (a sigmoid with certified enclosures)", "nominal network": "the nominal network (trivial)",
             "interval bounds": "interval bounds", "none": "nothing"}.get(b.lo.how, b.lo.how)
    lines.append(f"    lo {float(b.lo.value):.10g}: {lo_by}" + (f" — {b.lo.backend}, {b.lo.time_s:.2f} s"
                                                              if b.lo.backend else ""))
    if b.lo.witness is not None and b.lo.how == "witness":
        lines += describe_witness(b.lo.witness, "      ")
        if b.lo.replayed:
            lines.append(f"      (also replayed through {b.lo.replayed})")
    hi_by = {"unsat": "unsat at this value", "interval bounds": "sound interval bounds"}.get(b.hi.how, b.hi.how)
    lines.append(f"    hi {float(b.hi.value):.10g}: {hi_by}" + (f" — {b.hi.backend}, {b.hi.time_s:.2f} s"
                                                              if b.hi.backend else ""))
    if b.delta_sat_at is not None:
        lines.append(f"    dReal said δ-sat at {float(b.delta_sat_at):.10g} without a witness that replays "
                     "exactly: not a lower bound")
    if b.note:
        lines.append(f"    note: {b.note}")
    return "\n".join(lines)


def register(sub):
    sp = add_command(sub, "estimate", "the largest ε (output change) or σ (label-flip distance) for "
                     "a parameter perturbation δ, as a certified bracket [lo, hi]", run)
    sp.add_argument("model", help="network file (.onnx, ...)")
    add_model_args(sp)
    add_robustness_args(sp, with_property=False)
    sp.add_argument("--objective", required=True, choices=["eps", "sigma"],
                    help="eps: max |f_p(x) - f_p0(x)| (at --point, or over --domain); sigma: the "
                         "largest distance from the decision level at which a label flips, per class")
    sp.add_argument("--tolerance", default="1e-6", help="target bracket width (default 1e-6)")
    sp.add_argument("--budget", type=float, default=60.0, help="seconds for the whole estimate "
                    "(default 60); the best bracket reached is reported")
    sp.add_argument("--method", default="auto", choices=["auto", "bisect", "native"],
                    help="auto: native optimisation where the backend has it for this (linear) "
                         "problem, then bisection; bisect: bisection only")
    add_backend_args(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable result")


# --- nnsmt compile --mode robustness|estimate -------------------------------------------------

def add_compile_args(sp):
    """The options `nnsmt compile` needs for --mode robustness and --mode estimate."""
    add_robustness_args(sp, with_property=False, plot=False)
    sp.add_argument("--objective", choices=["eps", "sigma"], help="--mode estimate: the quantity "
                    "whose optimisation script is written (eps: output 0 of the perturbed minus the "
                    "nominal network; sigma: the nominal output over inputs whose label flips)")
    sp.add_argument("--side", default="above", choices=["above", "below"],
                    help="--mode estimate --objective sigma: class 1 (above) or class 0 (below)")


def _compile_sigmoid(args) -> str:
    return "exp" if args.sigmoid == "auto" else args.sigmoid


def robustness_mode(args):
    """--mode robustness --property label|eps=E|sigma=S: the negation of the property."""
    from nnsmt.queries.robustness import Encoding, Question, build, query_bounds
    gs, point, domain, _ = setup(args)
    if args.property is None:
        raise InputError("--mode robustness needs --property label|eps=E|sigma=S")
    kind, value = parse_property(args.property)
    q = Question(kind, point=point, domain=domain, value=value)
    mode = _compile_sigmoid(args)
    return build(gs, q, Encoding(mode, args.pieces, {}, query_bounds(gs, q) if mode == "pwl" else None))


def estimate_mode(args):
    """--mode estimate --objective eps|sigma: the optimisation script (maximize/minimize)."""
    from nnsmt.queries.robustness import Encoding, Question, build, query_bounds
    gs, point, domain, _ = setup(args)
    if args.objective is None:
        raise InputError("--mode estimate needs --objective eps|sigma")
    if args.objective == "eps":
        q, obj = Question("eps", point=point, domain=domain), ("eps", 0, 1)
    else:
        q, obj = Question("sigma", point=point, domain=domain, sides=(args.side,)), ("sigma", args.side)
    mode = _compile_sigmoid(args)
    return build(gs, q, Encoding(mode, args.pieces, {}, query_bounds(gs, q) if mode == "pwl" else None),
                 objective=obj)
