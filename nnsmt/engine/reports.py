"""What the commands report, as data: the JSON records of a robustness answer (`verify --params`),
a training run (`train`), stability classifications (`stable`) and a compression (`compress`),
and the verdicts their exit codes follow."""

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
            "by_prepass": st.by_samples, "prepass_points": st.points, "refuted_by_split": st.by_split,
            "queries": st.queries, "sat": st.sat, "unsat": st.unsat, "unknown": st.unknown,
            "time_s": round(st.time_s, 4), "solve_s": round(st.solve_s, 4),
            "layers": {k: v for k, v in layer_counts(st)}}


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


def classify_all(graph, domain, solve, options) -> StabilityReport:
    """Classify every ReLU of `graph` over `domain` once per `nnsmt.queries.stability.StabilityOptions`
    in `options`, replaying every unstable neuron's witnesses, and compare the classifications."""
    from nnsmt.queries.stability import check_witnesses, classify
    results = []
    for o in options:
        st = classify(graph, domain, solve, o)
        check_witnesses(graph, st)
        results.append(st)
    return StabilityReport(tuple(results), all(r.same_as(results[0]) for r in results))


def compression_record(r, *, network: str, domain: str, output: str, ir, exact_onnx: bool,
                       spot: float | None) -> dict:
    """The record of a compression (`compress --json`).

    Args:
        r: the `nnsmt.queries.compress` result.
        network, domain, output: as given.
        ir: the exact IR JSON written; exact_onnx: whether the ONNX weights are exact.
        spot: the onnxruntime spot check's max |difference| (None: not an ONNX source).
    """
    return {"network": network, "domain": domain, "output": output, "ir": str(ir),
            "before": r.before, "after": r.after, "stability": r.stability.counts(),
            "stability_queries": r.stability.queries, "onnx_exact": exact_onnx,
            "equivalence": {"status": r.equivalence, "reason": r.equivalence_reason,
                            "tolerance": str(r.tolerance), "about": f"the exact IR ({ir})"},
            "onnxruntime_spot_check_max_abs_diff": spot,
            "time_s": {k: round(v, 4) for k, v in r.time_s.items()}}
