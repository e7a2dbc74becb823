"""nnsmt check-certificate: replay an unsat certificate (`nnsmt verify --certificate`) with an
independent bound computation and exact solver queries; valid, rejected or incomplete."""

from __future__ import annotations

from nnsmt.errors import InputError

from .common import EXIT, add_command, network_pairs, show, timeout_seconds

EXIT_REJECTED = 5
EPILOG = """exit codes (check-certificate):
  0   valid: the certificate proves the query unsat
  5   rejected: a file's hash differs, a split is malformed, or a leaf does not hold (named)
  20  incomplete: a solver answered unknown or timed out on a leaf
  2   bad input or usage: unreadable certificate, missing file, unknown backend (one line)
  3   error: a solver failed
  1   internal error: a bug in nnsmt (NNSMT_DEBUG=1 shows the traceback)
"""
CODES = {"valid": 0, "rejected": EXIT_REJECTED, "incomplete": EXIT["unknown"], "error": EXIT["error"]}


def summary(rep) -> str:
    """The one line printed for a report."""
    if rep.ok:
        n = rep.bounds + rep.infeasible + rep.smt + rep.fallback
        return (f"valid: unsat proved ({n} leaves: {rep.bounds} by bounds, {rep.infeasible} infeasible, "
                f"{rep.smt} by SMT, {rep.fallback} re-proved by SMT) in "
                f"{rep.seconds_bounds + rep.seconds_smt:.2f} s")
    return f"{rep.status}: {rep.reason}"


def run(args) -> int:
    from nnsmt.certificate import read
    from nnsmt.engine.certify import CheckReport, check_certificate, hash_mismatch, load_for_certificate, resolve_files
    cert = read(args.certificate)
    if args.property is not None and args.model is None:
        raise InputError("give NET and PROP, or QUERY --network NAME=FILE")
    files = resolve_files(cert, args.model, args.property, network_pairs(args.network),
                          near=args.certificate)
    why = hash_mismatch(cert, files)
    if why:
        rep = CheckReport(False, "rejected", why)
    else:
        graph, prop, float_type = load_for_certificate(files)
        if float_type:
            rep = CheckReport(False, "rejected", f"the query is in {float_type} semantics; certificates are for real")
        else:
            rep = check_certificate(cert, graph, prop, files, backend=args.backend,
                                    timeout_per_leaf=args.timeout, fallback=not args.no_fallback)
    show(args, rep.to_json() | {"certificate": args.certificate, "files": files}, [summary(rep)])
    return CODES[rep.status]


def register(sub):
    sp = add_command(sub, "check-certificate", "check an unsat certificate written by `nnsmt verify "
                     "--certificate`: `nnsmt check-certificate CERT [NET PROP]`, `nnsmt check-certificate "
                     "CERT QUERY --network NAME=FILE ...`, or CERT alone (the files it records). Prints "
                     "valid, rejected or incomplete with the reason (exit 0, 5, 20)",
                     run, json="report with the leaf counts", epilog=EPILOG)
    sp.add_argument("certificate", help="the certificate (.json or .json.gz)")
    sp.add_argument("model", nargs="?", default=None, help="network (VNN-LIB 1.0) or VNN-LIB 2 query; default: "
                    "the path the certificate records")
    sp.add_argument("property", nargs="?", default=None, help="VNN-LIB 1.0 property; default: the recorded path")
    sp.add_argument("--network", action="append", default=[], metavar="NAME=FILE",
                    help="VNN-LIB 2: the model of network NAME")
    sp.add_argument("--backend", default="z3", help="solver for smt leaves and fallbacks (default z3)")
    sp.add_argument("--timeout", type=timeout_seconds, default=None, help="seconds per SMT leaf "
                    "(on expiry: incomplete)")
    sp.add_argument("--no-fallback", action="store_true", help="bounds/infeasible leaves must hold by the "
                    "bounds alone (no solver re-proof)")
