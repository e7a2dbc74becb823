"""What the commands report: the JSON records of a robustness answer (`verify --params`), an
estimate, a training run (`train`), stability classifications (`stable`), a compression
(`compress`) and a comparison of backends (`diff`), the verdicts their exit codes follow, and
the human-readable text of each (lists of lines: the commands print them)."""

from __future__ import annotations

from dataclasses import dataclass

from nnsmt.query import Outcome

VERDICTS = {"unsat": "robust", "sat": "not robust"}


def robustness_record(o: Outcome, q, network: str, where: str) -> dict:
    """The record of a robustness query's outcome (`verify --params --json`).

    Args:
        o: the outcome of `q`, a `nnsmt.queries.robustness.RobustnessQuery`.
        network: the network's file, as given.
        where: the point or domain, in words.
    """
    out = {"status": o.status, "verdict": VERDICTS.get(o.status, "undecided"), "reason": o.reason,
           "backend": o.backend, "network": network, "definition": q.describe(), "where": where,
           "perturbation": q.graph.meta.get("perturbation"),
           "sigmoid": q.sigmoid if q.uses_sigmoid else "none", "notes": list(o.notes), "rounds": o.rounds,
           "time": {"total_s": o.stats.get("total_s"), "solver_s": o.stats.get("solve_s")}}
    if "delta" in o.stats:
        out["delta"] = o.stats["delta"]
    if o.witness is not None:
        out["witness"] = o.witness.to_json() | {"replayed": o.witness.replayed}
    return out


def training_record(problem, res, *, backend: str, network: str, data: str, strategy: str,
                    total_s: float, written: dict | None = None) -> dict:
    """The record of a training run (`train --json`).

    Args:
        problem: the `nnsmt.queries.train.TrainProblem`.
        res: its `nnsmt.queries.train.TrainResult`.
        backend, network, data, strategy: as given.
        total_s: seconds of the whole command.
        written: what `nnsmt.engine.train.write_trained` wrote (sat with -o), else None.
    """
    out = {"status": res.status, "reason": res.reason, "backend": backend, "network": network,
           "data": data, "architecture": problem.arch(), "weights": problem.n_weights(),
           "free_weights": problem.n_free(), "free_layers": list(problem.free), "points": problem.data.n,
           "encoding": res.encoding, "strategy": strategy, "rounds": res.rounds,
           "points_seen_by_solver": res.used, "notes": list(res.notes),
           "time": {**{k: round(v, 4) for k, v in res.stats.items()}, "total_s": round(total_s, 4)}}
    if res.status == "sat":
        out["exact_accuracy"] = 1.0
        if written is not None:
            out["output"] = written
    if res.status == "unsat":
        out["proved"] = res.statement
        out["core"] = [{"row": i, "where": problem.data.where(i)} for i in res.core]
    return out


def stability_json(st) -> dict:
    """One classification (`nnsmt.queries.stability.Stability`) as `stable --json` lists it."""
    from nnsmt.queries.stability import layer_counts
    return {"method": st.method, "reuse": st.reuse, "counts": st.counts(), "by_bounds": st.by_bounds,
            "by_prepass": st.by_samples, "by_attack": st.by_attack, "prepass_points": st.points,
            "refuted_by_split": st.by_split, "refuted_by_bab": st.by_bab, "shown_by_bab": st.bab_shown, "bab_instead_of_queries": st.bab_instead, "queries": st.queries, "sat": st.sat, "unsat": st.unsat, "unknown": st.unknown,
            "time_s": round(st.time_s, 4), "solve_s": round(st.solve_s, 4),
            "harvest": st.harvest, "harvested": st.harvested, "harvest_skipped": st.harvest_skipped,
            "claims": st.claims, "claims_confirmed": dict(st.confirmed), "claims_refuted": st.refuted_claims,
            "unanswered_to_confirm": st.unanswered,
            "phase_s": {k: round(v, 4) for k, v in st.phase_s.items()},
            "layers": {k: v for k, v in layer_counts(st)}, "unknown_neurons": unknown_neurons(st),
            "unknown_gaps": {f"{k}[{i}]": {"open": [f"a {s} 0?" for s in q], "bounds": list(b), "seen": list(seen)}
                             for (k, i), (q, b, seen) in st.gaps.items()}}


GAP_LINES = 10  # unknown neurons whose open question `nnsmt stable` details, a line each


def unknown_neurons(st) -> list[str]:
    """The neurons a classification left unknown, as "relu[i]"."""
    from nnsmt.queries.stability import UNKNOWN
    return [f"{k}[{i}]" for k, v in st.states.items() for i in (v == UNKNOWN).nonzero()[0]]


def gap_text(st, key) -> str:
    """An unknown neuron's open question and how far it is from an answer: "a < 0? (lower
    bound -7.34, least seen 0.0714)": the sound bound on the question's side, and the value
    closest to it on the inputs met."""
    if key not in st.gaps:
        return ""
    q, (lo, hi), (least, most) = st.gaps[key]
    parts = []
    for s in q:
        bound, seen = (f"lower bound {lo:.4g}", least) if s == "<" else (f"upper bound {hi:.4g}", most)
        parts.append(f"a {s} 0? ({bound}" + ("" if seen is None else f", {'least' if s == '<' else 'greatest'} "
                                                                      f"seen {seen:.4g}") + ")")
    return "; ".join(parts)


@dataclass(frozen=True)
class StabilityReport:
    """The classifications of one network by one or more methods (`nnsmt stable`).

    Attributes:
        results: one `nnsmt.queries.stability.Stability` per method, witnesses replayed.
        identical: every method classified every neuron the same.
    """

    results: tuple
    identical: bool

    @property
    def verdict(self) -> str:
        """"error" when the methods disagree, "unknown" when some neuron is undecided, else
        "unsat" (every neuron decided)."""
        if not self.identical:
            return "error"
        return "unknown" if any(r.counts()["unknown"] for r in self.results) else "unsat"


def classify_all(graph, domain, solve, options, confirm=None,
                 progress=lambda phase, text="": None) -> StabilityReport:
    """Classify every ReLU of `graph` over `domain` once per `nnsmt.queries.stability.StabilityOptions`
    in `options` (`confirm`: the exact solver of a MILP's claims; `progress`: see `classify`),
    replaying every unstable neuron's witnesses, and compare the classifications."""
    from nnsmt.queries.stability import check_witnesses, classify
    results = []
    for o in options:
        st = classify(graph, domain, solve, o, confirm,
                      progress if len(options) == 1 else (lambda ph, text="", m=o.method: progress(f"{m} {ph}", text)))
        progress("witnesses", f"replaying {len(st.witnesses)} unstable neurons' witnesses")
        check_witnesses(graph, st)
        results.append(st)
    return StabilityReport(tuple(results), all(r.same_as(results[0]) for r in results))


def compression_record(r, *, network: str, domain: str, output: str, ir, exact_onnx: bool,
                       spot: float | None, notes=()) -> dict:
    """The record of a compression (`compress --json`).

    Args:
        r: the `nnsmt.queries.compress` result.
        network, domain, output: as given.
        ir: the exact IR JSON written; exact_onnx: whether the ONNX weights are exact.
        spot: the onnxruntime spot check's max |difference| (None: not an ONNX source; NaN:
            float32 overflowed, recorded as None with a note).
        notes: about the domain's semantics (`InputDomain.notes`).
    """
    overflow = spot is not None and spot != spot
    return {"network": network, "domain": domain, "output": output, "ir": str(ir),
            "before": r.before, "after": r.after, "stability": r.stability.counts(),
            "stability_queries": r.stability.queries, "onnx_exact": exact_onnx,
            "equivalence": {"status": r.equivalence, "reason": r.equivalence_reason,
                            "tolerance": str(r.tolerance), "about": f"the exact IR ({ir})"},
            "onnxruntime_spot_check_max_abs_diff": None if overflow else spot,
            **({"onnxruntime_spot_check_note": "not informative: float32 outputs overflow on this domain"}
               if overflow else {}),
            "time_s": {k: round(v, 4) for k, v in r.time_s.items()}, "notes": list(notes)}


# --- the human-readable text of each command (the commands print it) ----------------------------

def _vec(vals, n: int = 10) -> str:
    return "[" + ", ".join(f"{float(v):.{n}g}" for v in vals) + "]"


def where_text(point, domain) -> str:
    """Where a robustness question is asked, in words.

    Args:
        point: the input point (None: a global question).
        domain: the domain file, as given.

    Returns:
        "at x = [...]" or "on DOMAIN".
    """
    return f"at x = {_vec(point, 8)}" if point is not None else f"on {domain}"


def describe_witness(w, indent: str = "  ") -> list[str]:
    """A robustness witness: the input, the perturbed parameters, and both outputs.

    Args:
        w: a `nnsmt.queries.robustness.Witness`.
        indent: put before every line.

    Returns:
        The lines, without line ends.
    """
    import numpy as np
    lines = [f"{indent}input x = {_vec(w.x)}"]
    for k, v in w.params.items():
        a = np.asarray(v, dtype=np.float64)
        lines.append(f"{indent}{k} = " + (_vec(a) if a.ndim == 1 else "[" + ", ".join(_vec(r) for r in a) + "]"))
    mid = lambda e: [(a + b) / 2 for a, b in zip(*e)]  # noqa: E731
    lines.append(f"{indent}nominal f(x) = {_vec(mid(w.y_nom))}   perturbed f(x) = {_vec(mid(w.y_pert))}")
    return lines


def verify_text(o: Outcome) -> tuple[list[str], list[str]]:
    """What `nnsmt verify NET PROP` prints (without --json).

    Args:
        o: the outcome of `nnsmt.engine.verify.verify`.

    Returns:
        (the lines of standard output: the status, and a counterexample in the VNN-COMP
        format; the lines of standard error: an error's reason, how the counterexample was
        validated, the notes).
    """
    out = [f"{o.status} ({o.reason})" if o.reason and o.status != "error" else o.status]
    err = [error_reason(o)] if o.status == "error" else []
    if o.witness is not None:
        w = o.witness
        out.append(w.vnncomp())
        how = "certified enclosures" if getattr(w, "replay", "exact") == "enclosure" else "exact replay"
        err.append(f"; validated: {how}" + (f" and {w.float_replay}" if w.float_replay else ""))
        if not w.float_ok:  # sat for the real-valued network; float execution disagrees
            err.append(f"; note: {w.float_check}")
    return out, err + [f"; {note}" for note in o.notes]


def robustness_text(o: Outcome, record: dict) -> tuple[list[str], list[str]]:
    """What `nnsmt verify NET --params ...` prints (without --json).

    Args:
        o: the outcome of the robustness query.
        record: its `robustness_record`.

    Returns:
        (the lines of standard output: the verdict and any witness; the lines of standard
        error: the notes, then an error's reason).
    """
    says = f"{record['definition']} {record['where']} ({record['perturbation']})"
    head = {"unsat": f"unsat: {says}", "sat": f"sat: NOT {says}"}
    out = [head.get(o.status, f"{o.status} ({o.reason})" if o.reason else o.status)]
    out += describe_witness(o.witness) if o.witness is not None else []
    return out, [f"; {note}" for note in o.notes] + ([error_reason(o)] if o.status == "error" else [])


def error_reason(o: Outcome) -> str:
    """An error outcome's reason, naming the backend that gave it (unless the reason does)."""
    if o.backend and not o.reason.startswith(o.backend):
        return f"{o.backend}: {o.reason}"
    return o.reason


LO_BY = {"witness": "a witness replayed exactly (a sigmoid with certified enclosures)",
         "nominal network": "the nominal network (trivial)", "interval bounds": "interval bounds",
         "none": "nothing"}
HI_BY = {"unsat": "unsat at this value", "interval bounds": "sound interval bounds"}
QUANTITIES = {"eps": "ε", "sigma above": "σ (class 1, above the level)",
              "sigma below": "σ (class 0, below the level)"}


def format_bracket(b) -> str:
    """One certified bracket as `nnsmt estimate` prints it: the interval, how each end is
    certified (with the witness of the lower end), and why the search stopped.

    Args:
        b: a `nnsmt.queries.estimate.Bracket`.

    Returns:
        Indented lines joined by line ends.
    """
    name = QUANTITIES[b.quantity]
    if b.none and b.lo.value == b.hi.value == 0:
        return f"  {name}: no label of this class can flip (unsat on {b.hi.backend}, {b.hi.time_s:.2f} s)"
    lines = [f"  {name} ∈ [{float(b.lo.value):.10g}, {float(b.hi.value):.10g}]  width {float(b.width):.3g}"
             f"  ({b.method}; {len(b.probes)} solver calls; stopped: {b.stopped})"]
    for end, by in (("lo", LO_BY), ("hi", HI_BY)):
        e = getattr(b, end)
        lines.append(f"    {end} {float(e.value):.10g}: {by.get(e.how, e.how)}"
                     + (f" — {e.backend}, {e.time_s:.2f} s" if e.backend else ""))
        if end == "lo" and e.witness is not None and e.how == "witness":
            lines += describe_witness(e.witness, "      ")
            if e.replayed:
                lines.append(f"      (also replayed through {e.replayed})")
    if b.delta_sat_at is not None:
        lines.append(f"    δ-sat at {float(b.delta_sat_at):.10g} without a witness that replays exactly: "
                     "not a lower bound")
    if b.note:
        lines.append(f"    note: {b.note}")
    return "\n".join(lines)


def estimate_record(brackets, *, network: str, objective: str, where: str, perturbation,
                    backend: str, tolerance, time_s: float) -> dict:
    """The record of an estimate (`estimate --json`).

    Args:
        brackets: the `nnsmt.queries.estimate.Bracket` of each quantity.
        network, objective, backend: as given; where: `where_text`.
        perturbation: the perturbation, in words; tolerance: the target width.
        time_s: seconds of the whole command.
    """
    return {"network": network, "objective": objective, "where": where, "perturbation": perturbation,
            "backend": backend, "tolerance": float(tolerance), "brackets": [b.to_json() for b in brackets],
            "time_s": round(time_s, 4)}


def estimate_lines(record: dict, brackets) -> list[str]:
    """What `nnsmt estimate` prints (without --json): a header, then each bracket.

    Args:
        record: the `estimate_record`.
        brackets: its brackets, as objects.
    """
    return [f"{record['objective']} of {record['network']} {record['where']}, {record['perturbation']}, "
            f"backend {record['backend']}"] + [format_bracket(b) for b in brackets]


def training_lines(out: dict) -> list[str]:
    """What `nnsmt train` prints (without --json).

    Args:
        out: the `training_record`.
    """
    st, n = out["status"], out["points"]
    seen = f"solver saw {out['points_seen_by_solver']} of {n} points in {out['rounds']} round(s)"
    if st == "unsat":
        core = out["core"]
        return [f"unsat: {out['proved']} ({seen})"] + \
            ([f"unsat core: {len(core)} points: " + ", ".join(c["where"] for c in core)] if core else [])
    if st != "sat":
        return [f"{st} ({out['reason']}) ({seen})" if st == "unknown" else "error"]
    lines = [f"sat: trained {out['architecture']} ({out['free_weights']} of {out['weights']} weights free) "
             f"classifies all {n} points correctly (checked exactly; encoding {out['encoding']}, {seen})"]
    lines += [f"note: {note}" for note in out["notes"] if "widened" in note]
    w = out.get("output")
    if not w:
        return lines + ["(no -o given: nothing written)"]
    how = w["format"] if w["format"] != "onnx" else \
        "same graph, new initializers" if w.get("same_graph") else "fresh graph"
    rounded = "" if w.get("exact", True) else ", rounded from the exact rationals"
    lines.append(f"wrote {w['path']} ({how}; {w.get('dtype', '')}{rounded})")
    lines += [f"note: {w['note']}"] if "note" in w else []
    if "accuracy_onnxruntime" in w:
        acc = w["accuracy_onnxruntime"]
        lines.append(f"onnxruntime accuracy on {w['path']}: {round(acc * n)}/{n} ({acc:.1%})")
    return lines


def summary_line(st) -> str:
    """One classification in one line: the counts, how they were decided, the queries, the time.

    Args:
        st: a `nnsmt.queries.stability.Stability`.
    """
    c = st.counts()
    return (f"{st.method + ('' if st.reuse else ' (no reuse)'):21} active {c['active']:4}  "
            f"inactive {c['inactive']:4}  unstable {c['unstable']:4}  unknown {c['unknown']:3}  | "
            f"by bounds {st.by_bounds:4}  by pre-pass {st.by_samples:4}  "
            + (f"(attack {st.by_attack})  " if st.by_attack else "")
            + (f"refuted by splitting {st.by_split}  " if st.by_split else "")
            + f"queries {st.queries:4} (sat {st.sat}, unsat {st.unsat}, unknown {st.unknown})  "
            + (f"refuted by bab {st.by_bab}  " if st.by_bab else "")
            + (f"shown by bab {st.bab_shown}  " if st.bab_shown else "")
            + (f"(bab instead of {st.bab_instead} queries: the first {st.queries} answered nothing)  "
               if st.bab_instead else "")
            + (f"harvested {st.harvested}  " if st.harvest else "")
            + (f"claims {st.claims} + unanswered {st.unanswered} (confirmed by splitting "
               f"{st.confirmed.get('split', 0)}, exactly {st.confirmed.get('exact', 0)}; refuted "
               f"{st.refuted_claims})  " if st.claims + st.unanswered else "")
            + f"{st.time_s:8.2f} s")


def stability_record(report: StabilityReport, *, network: str, domain: str, backend: str,
                     confirm: str | None = None, timeout: float | None = None, notes=()) -> dict:
    """The record of `stable --json`: every classification (`stability_json`) and whether they agree.

    Args:
        report: the `StabilityReport`.
        network, domain, backend: as given; confirm: the exact backend of a MILP's claims;
        timeout: the seconds each query had (None: no limit).
        notes: about the domain's semantics (`InputDomain.notes`).
    """
    return {"network": network, "domain": domain, "backend": backend, "confirm": confirm,
            "timeout_s": timeout, "identical": report.identical, "notes": list(notes),
            "results": [stability_json(r) for r in report.results]}


def stability_lines(report: StabilityReport, dom, *, network: str, domain: str, backend: str,
                    confirm: str | None = None, timeout: float | None = None) -> list[str]:
    """What `nnsmt stable` prints (without --json): the counts per layer, one `summary_line` per
    method, and (for two methods) whether they agree and their speed ratio.

    Args:
        report: the `StabilityReport`.
        dom: the `nnsmt.domain.InputDomain` classified over.
        network, domain, backend: as given; confirm: the exact backend of a MILP's claims;
        timeout: the seconds each query had (None: no limit).
    """
    from nnsmt.queries.stability import layer_counts
    rs, same = report.results, report.identical
    limit = "no time limit" if timeout is None else f"{timeout:g} s per query"
    lines = [f"{network} over {domain} ({dom.dim} inputs, {len(dom.boxes)} box(es)), backend {backend}, {limit}"
             + (f" (harvesting; claims confirmed by bounds on sub-boxes, then {confirm})" if confirm else "")]
    lines += [f"  note: {n}" for n in dom.notes]
    lines += [f"  {name:12} " + "  ".join(f"{k} {v}" for k, v in c.items()) for name, c in layer_counts(rs[0])]
    lines += ["  " + summary_line(r) for r in rs]
    for r in rs:
        left = unknown_neurons(r)
        if left:
            lines.append(f"  unknown ({r.method}): " + " ".join(left[:20]) + (f" ... ({len(left)} in all)"
                                                                           if len(left) > 20 else ""))
            for key in list(r.gaps)[:GAP_LINES]:
                lines.append(f"    {key[0]}[{key[1]}]: {gap_text(r, key)}")
    if len(rs) > 1:
        lines.append(f"  classifications identical: {'yes' if same else 'NO'}"
                     + (f"; speed ratio per-neuron / single = {rs[1].time_s / max(rs[0].time_s, 1e-9):.2f}x"
                        if same else ""))
    return lines


EQUIVALENCE = {"sat": "NOT EQUIVALENT (a bug: please report)", "not checked": "not checked (--no-prove)"}


def compression_lines(r, record: dict) -> list[str]:
    """What `nnsmt compress` prints (without --json): the stability summary, the size before
    and after, the files written, the equivalence verdict and the onnxruntime spot check.

    Args:
        r: the `nnsmt.queries.compress` result.
        record: its `compression_record`.
    """
    b, a, eq = r.before, r.after, r.equivalence
    lines = [f"{record['network']} over {record['domain']}", *(f"  note: {n}" for n in record["notes"]),
             "  " + summary_line(r.stability)]
    lines += [f"  {k:20} {b[k]:8} -> {a[k]:8}  ({100 * (1 - a[k] / max(b[k], 1)):.1f}% removed)"
              for k in ("relus", "parameters", "connections", "nonzero_connections")]
    exact = "exact" if record["onnx_exact"] else "weights rounded to float32: not exactly equivalent"
    lines.append(f"  wrote {record['output']} ({exact}) and {record['ir']} (exact IR)")
    says = f"proved: |f(x) - g(x)| <= {r.tolerance} on the domain (exact IR)" if eq == "unsat" \
        else EQUIVALENCE.get(eq, "undecided")
    lines.append(f"  equivalence: {eq}{' (' + r.equivalence_reason + ')' if r.equivalence_reason else ''}"
                 f" - {says}")
    spot = record["onnxruntime_spot_check_max_abs_diff"]
    if "onnxruntime_spot_check_note" in record:
        return lines + [f"  onnxruntime spot check (200 points): {record['onnxruntime_spot_check_note']}"]
    return lines + ([f"  onnxruntime spot check (200 points): max |difference| {spot:.3g}"] if spot is not None else [])


def diff_record(report, *, query: str, network: str, what: str, semantics=None) -> dict:
    """The record of `diff --json`.

    Args:
        report: the `nnsmt.engine.diff.Report`.
        query: the --mode; network: as given; what: the property, data or question compared;
        semantics: (its name, its notes) for --mode verify: "real", or a VNN-LIB 2 query's
            declared float type.
    """
    rec = {"query": query, "network": network, "property": what, "engine": report.engine,
           "consensus": report.consensus, "disagreement": report.disagreement,
           "rows": [r.to_json() for r in report.rows]}
    if semantics is not None:
        rec["semantics"], rec["semantics_notes"] = semantics[0], list(semantics[1])
    return rec


def diff_lines(report, semantics=None) -> list[str]:
    """What `nnsmt diff` prints (without --json): one row a backend, then the consensus or the
    disagreement, then the semantics' notes, once (a VNN-LIB 2 query's float type).

    Args:
        report: the `nnsmt.engine.diff.Report`.
        semantics: as for `diff_record`.
    """
    w = max(len(r.backend) for r in report.rows)
    lines = [f"{'backend':{w}}  {'status':9} {'time':>8}  {'validated':9}  notes"]
    for r in report.rows:
        t = "-" if r.time_s is None else f"{r.time_s:.2f}s"
        lines.append(f"{r.backend:{w}}  {r.status:9} {t:>8}  {'yes' if r.validated else '-':9}  {r.notes}")
    lines.append("DISAGREEMENT: a validated sat and an unsat for the same query" if report.disagreement
                 else f"consistent: {report.consensus}")
    if semantics is not None and semantics[1]:
        lines += [f"note: {n}" for n in semantics[1]]
    return lines
