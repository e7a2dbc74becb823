"""nnsmt diff: one compiled query on several backends, each in its own process; every sat model
is replayed; answers that cannot both be right are flagged.

Each query mode is the same Query object nnsmt compile writes (verify's planned by its engine);
the robustness and estimate modes take the options of `nnsmt verify --params`."""

from __future__ import annotations

from nnsmt.errors import InputError

from .common import (BACKENDS, EXIT, EXIT_DISAGREE, add_command, add_model_args, float_evaluator, load_model,
                     names, positive_int, show, timeout_seconds)
from .options import (ESTIMATE, ROBUST, TRAIN, add_engine_args, add_estimate_args, add_robustness_args,
                      add_training_args, from_args, refuse, robustness_query, train_query)

DIFF_EXIT = """exit codes (diff):
  4   disagreement: a validated sat and an unsat for the same query
  3   no disagreement, but some backend failed (error, or a sat whose model failed the replay)
  0 / 10 / 20   all consistent: unsat / validated sat / unknown (as for verify)
  2   bad input, unknown backend

queries (--mode):
  verify      NET P.vnnlib: a counterexample to the property; models replayed exactly (and in
              onnxruntime for ONNX)
  train       NET --data D.csv: weights that classify every point; models checked on all points
  robustness  NET --params delta=D (--domain B | --point X) --property label|eps=E|sigma=S: the
              negation of the robustness property (as nnsmt compile --mode robustness writes it);
              a model is the perturbed parameters and the input, replayed exactly (certified
              enclosures where there is a sigmoid) and through onnxruntime
  estimate    NET --params delta=D (--domain B | --point X) --objective eps|sigma --threshold T:
              the decision query behind nnsmt estimate's bisection, "can the quantity exceed
              T?" (eps: some output moves by more than T; sigma [--side above|below]: a label
              flips at distance >= T from the decision level); sat means T is below the
              quantity (a certified lower bound from the witness), unsat that T bounds it

One query goes to every backend, with --sigmoid auto resolved for the first backend (as nnsmt
verify would on it); a backend that cannot take the script (e.g. z3 and exp) is a skipped row.
Where the script relaxes the network (--sigmoid pwl, or a sigma threshold behind a final sigmoid,
bounded by rationals), a model that does not replay is no witness: that row is unknown.
"""


def _verify_runs(args, backends):
    """The verify query planned once by the chosen engine (models replayed as DIFF_EXIT says),
    what is compared, how an outcome answers the query, and the query's semantics with its
    notes: a VNN-LIB 2 query (one network, the model) in its declared semantics, as `nnsmt
    verify QUERY --network NAME=FILE`; a VNN-LIB 1.0 property over the reals."""
    from nnsmt.engine.diff import verify_runs
    from nnsmt.engine.verify import VerifyOptions
    from nnsmt.vnnlib import load_vnnlib
    from nnsmt.vnnlib2 import is_vnnlib2
    if args.property is None:
        raise InputError("diff --mode verify needs a VNN-LIB property")
    refuse(args, ROBUST + ESTIMATE + TRAIN, "to --mode verify")
    opts = from_args(VerifyOptions, args)
    if is_vnnlib2(args.property):
        from nnsmt.engine.standard import one_network, settle
        if args.arch is not None or args.weights is not None:
            raise InputError(f"{args.property}: a VNN-LIB 2 query takes an ONNX model; --arch and "
                             "--weights do not apply")
        inst = one_network(args.property, args.model)
        return verify_runs(inst.graph, inst.prop, backends, opts, inst.float_eval, inst.float_type), \
            args.property, lambda o: settle(inst, o, notes=False), (inst.float_type or "real", inst.notes)
    g = load_model(args)
    return verify_runs(g, load_vnnlib(args.property), backends, opts, float_evaluator(g)), args.property, \
        lambda o: o, ("real", ())


def _robustness_case(args, backends):
    """The query of --mode robustness or estimate (`nnsmt.queries.robustness.RobustnessQuery`)."""
    if args.property is not None:
        raise InputError(f"{args.property}: a VNN-LIB property does not apply to --mode {args.mode}; "
                         "use --property label|eps=E|sigma=S or --objective")
    q = robustness_query(args, args.mode, backends[0], float_check=True)
    return q, q.describe()


MODES = ["verify", "train", "robustness", "estimate"]


def run(args) -> int:
    from nnsmt.backends import known
    from nnsmt.engine.diff import diff, diff_query
    from nnsmt.engine.reports import diff_lines, diff_record
    backends = names(args.backends)
    unknown = [b for b in backends if not known(b)]
    if unknown or not backends:
        raise InputError(f"--backends: unknown backend {unknown[0]!r}" if unknown else "--backends: none given")
    if args.mode == "verify":
        runs, what, settle, semantics = _verify_runs(args, backends)
        report = diff(runs, args.timeout, args.memory, settle)
    else:  # train: a model must classify every point exactly
        query, what = (train_query(args), args.data) if args.mode == "train" else _robustness_case(args, backends)
        report = diff_query(query, backends, args.timeout, args.memory)
        semantics = None
    show(args, diff_record(report, query=args.mode, network=args.model, what=what, semantics=semantics),
         diff_lines(report, semantics))
    return EXIT_DISAGREE if report.verdict == "disagreement" else EXIT[report.verdict]


def register(sub):
    sp = add_command(sub, "diff", "run one verification, training, robustness or estimation query on several "
                     "backends (each in its own process, hard timeout and memory limit), replay every sat model, "
                     "flag disagreements", run, json="table", epilog=DIFF_EXIT)
    add_model_args(sp)
    sp.add_argument("property", nargs="?", help="VNN-LIB 1.0 property, or VNN-LIB 2 query about one network "
                    "(the model, in the query's declared semantics) (--mode verify)")
    sp.add_argument("--mode", default="verify", choices=sorted(MODES), help="query (default verify; see below)")
    add_training_args(sp)
    sp.add_argument("--backends", default="z3,cvc5", help=f"comma-separated (default z3,cvc5): {BACKENDS}")
    sp.add_argument("--timeout", type=timeout_seconds, default=60.0, help="seconds per backend (default 60; "
                    "enforced by killing)")
    sp.add_argument("--memory", type=positive_int, default=4096, help="memory limit per backend in MB (default 4096)")
    sp.add_argument("--encoding", default=None, help="train: its default, or seed, margin, homog")
    add_robustness_args(sp, plot=False)
    add_estimate_args(sp)
    add_engine_args(sp, "--mode verify: the engine plans the (sub-)queries once; every backend then\n"
                    "gets the same ones", upto=2)
