"""Check an unsat certificate (`nnsmt.certificate`) without trusting the engine that wrote it.

`check_certificate` replays the tree: the files' hashes, the regions' exact boxes (exact
Fraction bisection of the property's boxes) and phases, each "bounds"/"infeasible" leaf with
the independent bounds of `nnsmt.recheck` (batched), each "smt" leaf -- and, with fallback, any
leaf the bounds do not reproduce -- with an exact solver query: the property's verification
script restricted to the leaf's box, its phases asserted on the pre-activations, ReLUs encoded
with the recheck bounds (never `nnsmt.bounds`). unsat everywhere: valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from nnsmt.bounds import Interval
from nnsmt.certificate import Certificate, InputSplit, Leaf, ReluSplit, Tighten, sha256
from nnsmt.errors import InputError, NnsmtError, UnsupportedError
from nnsmt.interpret import decide
from nnsmt.ir import Graph, Relu
from nnsmt.recheck import Prepared, recheck
from nnsmt.terms import And, Bool, Cmp, Not, Num, Or, Var, atoms, linear_form, variables

BATCH = 256
LEMMAS = "bounds"  # the bounded encoding's lemmas on unstable ReLUs ("triangle" made z3 7x slower)


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    status: str  # valid | rejected | incomplete | error
    reason: str = ""
    bounds: int = 0  # "bounds" leaves the recheck reproduced
    infeasible: int = 0  # "infeasible" leaves the recheck reproduced
    smt: int = 0  # "smt" leaves a solver answered unsat
    fallback: int = 0  # bounds/infeasible leaves re-proved by a solver
    failed: int = 0
    seconds_bounds: float = 0.0
    seconds_smt: float = 0.0
    leaves: int = 0

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ---- files

def certificate_roles(cert: Certificate) -> dict[str, str]:
    return {r: p for r, p, _ in cert.files}


def resolve_files(cert: Certificate, model=None, prop=None, networks=None, near=None) -> dict[str, str]:
    """role -> path: the paths given on the command line, else the recorded ones (a relative
    recorded path that does not exist from here is looked up beside the certificate `near`).
    VNN-LIB 1.0: `model` and `prop`; VNN-LIB 2: `model` is the query, `networks` NAME -> FILE."""
    rec = certificate_roles(cert)
    if near is not None:
        base = Path(near).parent
        rec = {r: (str(base / p) if not Path(p).is_absolute() and not Path(p).is_file()
                   and (base / p).is_file() else p) for r, p in rec.items()}
    v2 = any(r.startswith("network:") for r in rec)
    if networks:
        if prop is not None:
            raise InputError(f"{prop}: with --network the query is the only file after the certificate")
        files = {"property": model if model is not None else rec.get("property")}
        files |= {f"network:{k}": v for k, v in networks.items()}
    elif model is not None or prop is not None:
        if v2:
            if prop is not None:
                raise InputError("the certificate is about a VNN-LIB 2 query: give QUERY --network NAME=FILE ...")
            files = {"property": model} | {r: p for r, p in rec.items() if r.startswith("network:")}
        else:
            if model is None or prop is None:
                raise InputError("give both NET and PROP (or neither: the certificate's recorded paths)")
            files = {"network": model, "property": prop}
    else:
        files = dict(rec)
    for role, path in files.items():
        if path is None:
            raise InputError(f"the certificate records no {role} file; give it on the command line")
        if not Path(path).is_file():
            raise InputError(f"{path}: no such file (the {role} of the certificate)")
    return files


def hash_mismatch(cert: Certificate, files: dict[str, str]) -> str:
    """Why the files are not the certificate's ('' when every hash matches)."""
    rec = {r: h for r, _, h in cert.files}
    if set(rec) != set(files):
        missing = sorted(set(rec) - set(files))
        extra = sorted(set(files) - set(rec))
        return "the certificate's files are " + ", ".join(sorted(rec)) + \
            (f" (missing {', '.join(missing)})" if missing else "") + \
            (f" (not about {', '.join(extra)})" if extra else "")
    for role, path in files.items():
        h = sha256(path)
        if h != rec[role]:
            return f"{path} ({role}) differs from the certified file (sha256 {h[:12]}... != {rec[role][:12]}...)"
    return ""


def load_for_certificate(files: dict[str, str]):
    """(graph, prop, float_type) exactly as `nnsmt verify` builds them from these files."""
    nets = {r.split(":", 1)[1]: p for r, p in files.items() if r.startswith("network:")}
    if nets:
        from nnsmt.engine.standard import prepare, query_from_v1
        from nnsmt.vnnlib2 import is_vnnlib2, load_query
        path = files["property"]
        q = load_query(path) if is_vnnlib2(path) else query_from_v1(path, nets)
        inst = prepare(q, nets)
        return inst.graph, inst.prop, inst.float_type or ""
    from nnsmt.frontends import load_network
    from nnsmt.vnnlib import load_vnnlib
    if "network" not in files or "property" not in files:
        raise InputError("the certificate names no network and property files")
    prop = load_vnnlib(files["property"])
    return load_network(files["network"]), prop, ""


# ---- the property's linear output atoms (the spec rows)

def _float_exact(q: Fraction) -> float | None:
    try:
        f = float(q)
    except OverflowError:
        return None
    return f if Fraction(f) == q else None


@dataclass
class Spec:
    asserts: list  # the assertions mentioning outputs
    rows: list  # per assertion: a row index (or None) per atom occurrence, `terms.atoms` order
    C: np.ndarray  # (K, n_out)
    d: list  # K exact constants: atom k's lhs - rhs = C[k] @ Y + d[k]


def spec_of(prop, n_out: int) -> Spec:
    asserts, rows, C, d = [], [], [], []
    for _, t in prop.asserts:
        if not any(v.startswith("Y_") for v in variables(t)):
            continue
        asserts.append(t)
        occ = []
        for atom in atoms(t):
            lf, rf = linear_form(atom.lhs), linear_form(atom.rhs)
            k = None
            if lf is not None and rf is not None:
                coef = {v: lf[0].get(v, 0) - rf[0].get(v, 0) for v in set(lf[0]) | set(rf[0])}
                coef = {v: c for v, c in coef.items() if c}
                floats = {v: _float_exact(c) for v, c in coef.items()}
                if all(v.startswith("Y_") for v in coef) and all(f is not None for f in floats.values()):
                    row = np.zeros(n_out)
                    for v, f in floats.items():
                        row[int(v[2:])] = f
                    k = len(C)
                    C.append(row)
                    d.append(lf[1] - rf[1])
            occ.append(k)
        rows.append(occ)
    return Spec(asserts, rows, np.array(C).reshape(len(C), n_out), d)


def _three(t, it, lo, hi):
    """True / False / None of a boolean term given atom value bounds; `it` yields the atoms'
    rows in `terms.atoms` order (every atom is visited: no short circuit)."""
    if isinstance(t, (And, Or)):
        vals = [_three(a, it, lo, hi) for a in t.args]
        if isinstance(t, And):
            return False if False in vals else (True if all(v is True for v in vals) else None)
        return True if True in vals else (False if all(v is False for v in vals) else None)
    if isinstance(t, Not):
        v = _three(t.arg, it, lo, hi)
        return None if v is None else not v
    if isinstance(t, Bool):
        return t.value
    if isinstance(t, Cmp):
        k = next(it)
        return None if k is None else decide(t.op, lo[k], hi[k])
    return None


def refutes(spec: Spec, lower: np.ndarray) -> bool:
    """Whether the spec-row lower bounds (2K,) make some output assertion False."""
    K = len(spec.d)
    lo = [_add(lower[k], spec.d[k]) for k in range(K)]
    hi = [_add(-lower[K + k], spec.d[k]) for k in range(K)]
    return any(_three(t, iter(r), lo, hi) is False for t, r in zip(spec.asserts, spec.rows))


def _add(f: float, q: Fraction):
    return f if not np.isfinite(f) else Fraction(float(f)) + q


# ---- regions

@dataclass
class Region:
    path: str
    lo: list  # exact Fractions (None: unbounded)
    hi: list
    phases: dict = field(default_factory=dict)  # relu name -> {index: +1 / -1}
    leaf: Leaf | None = None
    above: str = ""  # the path of the nearest Tighten node above ("" none): its bounds hold here
    tighten: Tighten | None = None  # a Tighten node's own region (leaf None)


class Rejected(Exception):
    pass


def walk(tree, path: str, lo, hi, graph: Graph, dims: dict, out: list, tightens: list) -> None:
    """The tree's leaves as regions (into `out`) and its Tighten nodes' regions (into
    `tightens`, each before any node below it)."""
    relus = {n.name for n in graph.nodes if isinstance(n, Relu)}
    stack = [(tree, path, list(lo), list(hi), {}, "")]
    while stack:
        node, where, l, h, ph, above = stack.pop()
        if isinstance(node, Leaf):
            out.append(Region(where, l, h, ph, node, above))
            continue
        if isinstance(node, Tighten):
            tightens.append(Region(where, l, h, ph, None, above, node))
            stack.append((node.child, f"{where}.0", l, h, ph, where))
            continue
        if isinstance(node, InputSplit):
            if not 0 <= node.dim < len(l):
                raise Rejected(f"{where}: input split on dim {node.dim}, the property has {len(l)} inputs")
            a, b = l[node.dim], h[node.dim]
            if a is None or b is None:
                raise Rejected(f"{where}: input split on unbounded dim {node.dim}")
            mid = (a + b) / 2
            stack.append((node.children[1], f"{where}.1", l[:node.dim] + [mid] + l[node.dim + 1:], h, ph, above))
            stack.append((node.children[0], f"{where}.0", l, h[:node.dim] + [mid] + h[node.dim + 1:], ph, above))
            continue
        if isinstance(node, ReluSplit):
            if node.relu not in relus:
                raise Rejected(f"{where}: {node.relu!r} is not a ReLU of the network")
            if not 0 <= node.index < dims[node.relu]:
                raise Rejected(f"{where}: ReLU {node.relu} has {dims[node.relu]} neurons, not index {node.index}")
            for side, sign in ((1, -1), (0, 1)):
                p2 = {k: dict(v) for k, v in ph.items()}
                p2.setdefault(node.relu, {})[node.index] = sign if node.index not in ph.get(node.relu, {}) \
                    or ph[node.relu][node.index] == sign else 0  # 0: both (pre-activation = 0)
                stack.append((node.children[side], f"{where}.{side}", l, h, p2, above))
            continue
        raise Rejected(f"{where}: not a certificate node")


def _down(q) -> float:
    if q is None:
        return -np.inf
    try:
        f = float(q)
    except OverflowError:
        return -np.inf if q < 0 else float(np.finfo(np.float64).max)
    return f if Fraction(f) <= q else float(np.nextafter(f, -np.inf))


def _up(q) -> float:
    if q is None:
        return np.inf
    try:
        f = float(q)
    except OverflowError:
        return np.inf if q > 0 else -float(np.finfo(np.float64).max)
    return f if Fraction(f) >= q else float(np.nextafter(f, np.inf))


# ---- the check

def check_certificate(cert: Certificate, graph: Graph, prop, files: dict, backend: str = "z3",
                      timeout_per_leaf: float | None = None, fallback: bool = True,
                      batch: int = BATCH) -> CheckReport:
    """Replay `cert` against (graph, prop) built from `files` (role -> path).

    Raises:
        InputError: the network and property do not fit together; BackendUnavailable: no
            such backend (when a leaf needs a solver).
    """
    t0 = time.perf_counter()
    why = hash_mismatch(cert, files)
    if why:
        return CheckReport(False, "rejected", why)
    if cert.semantics != "real":
        return CheckReport(False, "rejected", f"semantics {cert.semantics!r}: only real certificates are checked")
    from nnsmt.queries.verify import check_compatible
    inp, out = check_compatible(graph, prop)  # InputError: the files do not fit together
    boxes = prop.input_boxes()
    if boxes is None:
        if cert.regions is not None:
            return CheckReport(False, "rejected", "the property's input region is not a union of boxes; "
                               "the certificate has region trees (it needs `whole`)")
        return _check_whole(cert, graph, prop, backend, timeout_per_leaf, t0, fallback)
    boxes = [b for b in boxes if all(a is None or c is None or a <= c for a, c in zip(*b))]
    if cert.regions is None:
        return CheckReport(False, "rejected", f"the certificate has no region trees; the property has "
                           f"{len(boxes)} nonempty input boxes")
    if len(cert.regions) != len(boxes):
        return CheckReport(False, "rejected", f"{len(cert.regions)} region trees for {len(boxes)} nonempty "
                           "input boxes of the property")
    dims = graph.dims()
    regions: list[Region] = []
    tightens: list[Region] = []
    try:
        for i, (tree, (lo, hi)) in enumerate(zip(cert.regions, boxes)):
            walk(tree, f"regions.{i}", lo, hi, graph, dims, regions, tightens)
    except Rejected as e:
        return CheckReport(False, "rejected", str(e))
    regions.sort(key=lambda r: [int(p) for p in r.path.split(".")[1:]])
    spec = spec_of(prop, dims[out])
    K = len(spec.d)
    C = np.vstack([spec.C, -spec.C]) if K else np.zeros((0, dims[out]))
    try:
        prep = Prepared(graph)
    except UnsupportedError:
        prep = None
    # Tighten path -> the ReLU inputs' bounds on its region (ancestors first); without `prep`
    # the leaves go to a solver, which needs none of them
    priors: dict[str, dict] = {}
    try:
        for t in tightens if prep is not None else ():
            priors[t.path] = _tightened(prep, t, priors.get(t.above), dims)
    except Rejected as e:
        return CheckReport(False, "rejected", str(e))
    counts = {"bounds": 0, "infeasible": 0, "smt": 0, "fallback": 0}
    pending: list[Region] = []  # leaves for the solver
    # bounds and infeasible leaves, batched
    cheap = [r for r in regions if r.leaf.by in ("bounds", "infeasible")]
    if prep is None:
        pending += cheap
        cheap = []
    if prep is not None:  # the back-substitution holds (batch, 2 d, D) arrays: ~100 MB at most
        big = max(dims.values()) * max([2 * dims[n.x] for n in prep.relus.values()] + [len(C), 1])
        batch = max(1, min(batch, int(1e8 // (8 * 4 * big))))
    for start in range(0, len(cheap), batch):
        group = cheap[start:start + batch]
        try:
            verdicts = _recheck_group(prep, group, C, spec, dims, priors)
        except Rejected as e:
            return CheckReport(False, "rejected", str(e))
        for r, okay in zip(group, verdicts):
            if okay:
                counts[r.leaf.by] += 1
            elif fallback:
                pending.append(r)
            else:
                return _report(False, "rejected", f"{r.path}: the {r.leaf.by} leaf does not hold by "
                               "the independent bounds (fallback disabled)", counts, t0, 0.0, len(regions), 1)
    t_bounds = time.perf_counter() - t0
    pending += [r for r in regions if r.leaf.by == "smt"]
    pending.sort(key=lambda r: [int(p) for p in r.path.split(".")[1:]])
    t1 = time.perf_counter()
    from nnsmt.engine.driver import solver
    run = solver(backend, timeout_per_leaf) if pending else None  # BackendUnavailable: exit 2
    for r in pending:
        status, reason = _solve_region(run, prep, graph, prop, inp.name, out, r, timeout_per_leaf,
                                       priors.get(r.above))
        if status == "unsat":
            counts["smt" if r.leaf.by == "smt" else "fallback"] += 1
            continue
        t_smt = time.perf_counter() - t1
        if status == "sat":
            return _report(False, "rejected", f"{r.path}: the region holds a counterexample ({r.leaf.by} "
                           f"leaf; {backend} answered sat)", counts, t0, t_smt, len(regions), 1, t_bounds)
        if status == "error":
            return _report(False, "error", f"{r.path}: {backend} failed: {reason}", counts, t0, t_smt,
                           len(regions), 1, t_bounds)
        return _report(False, "incomplete", f"{r.path}: {backend} answered {status}"
                       + (f" ({reason})" if reason else ""), counts, t0, t_smt, len(regions), 1, t_bounds)
    return _report(True, "valid", "", counts, t0, time.perf_counter() - t1, len(regions), 0, t_bounds)


def _report(ok, status, reason, counts, t0, t_smt, leaves, failed, t_bounds=None):
    tb = (time.perf_counter() - t0 - t_smt) if t_bounds is None else t_bounds
    return CheckReport(ok, status, reason, counts["bounds"], counts["infeasible"], counts["smt"],
                       counts["fallback"], failed, tb, t_smt, leaves)


def _arrays(group: list[Region], dims, priors=None):
    """The regions' boxes (rounded outward), phases and priors as batched arrays."""
    B = len(group)
    lo = np.array([[_down(v) for v in r.lo] for r in group], dtype=np.float64)
    hi = np.array([[_up(v) for v in r.hi] for r in group], dtype=np.float64)
    phases = {}
    for j, r in enumerate(group):
        for name, ph in r.phases.items():
            arr = phases.setdefault(name, np.zeros((B, dims[name]), dtype=np.int8))
            for i, s in ph.items():
                arr[j, i] = s
    prior = {}
    for j, r in enumerate(group):
        for v, iv in (priors or {}).get(r.above, {}).items():
            lo_v, hi_v = prior.setdefault(v, (np.full((B, dims[v]), -np.inf), np.full((B, dims[v]), np.inf)))
            lo_v[j], hi_v[j] = iv.lo[0], iv.hi[0]
    return lo, hi, phases, {v: Interval(a, b) for v, (a, b) in prior.items()}


def _place(prep: Prepared, dims, hints: dict, store: dict, j: int, B: int, R: int, fill, where: str) -> None:
    """Each ReLU's hint (`Slopes`: slopes or multipliers) into `store[relu]`, a (B, R, neurons)
    array filled with `fill` where none is given, at batch element j; Rejected (naming `where`)
    for a name that is not a ReLU or a row or neuron out of range."""
    for name, sl in hints.items():
        if name not in prep.relus:
            raise Rejected(f"{where} for {name!r}, not a ReLU of the network")
        m = dims[name]
        if any(k >= R for k in sl.rows) or any(k >= m for k in sl.neurons):
            raise Rejected(f"{where} of {name}: rows < {R} and neurons < {m} needed")
        arr = store.setdefault(name, np.full((B, R, m), fill))
        arr[j][np.ix_(list(sl.rows), list(sl.neurons))] = np.asarray(sl.values, dtype=np.float64)


def _tightened(prep: Prepared, t: Region, prior, dims) -> dict:
    """The ReLU inputs' bounds on a Tighten node's region, recomputed with its slopes."""
    inputs = {n.x for n in prep.relus.values()}
    hints: dict = {}
    for v, by in t.tighten.alpha.items():
        if v not in inputs:
            raise Rejected(f"{t.path}: tighten of {v!r}, which is not the input of a ReLU")
        _place(prep, dims, by, hints.setdefault(v, {}), 0, 1, 2 * dims[v], np.nan,
               f"{t.path}: tighten of {v}: slopes")
    lo, hi, phases, _ = _arrays([t], dims)
    out = prep.out
    _, _, bounds = recheck(prep, lo, hi, np.zeros((0, dims[out])), phases, prior=prior, tighten=hints)
    return {v: bounds[v] for v in inputs}


def _recheck_group(prep: Prepared, group: list[Region], C, spec: Spec, dims, priors) -> list[bool]:
    B, R = len(group), len(C)
    lo, hi, phases, prior = _arrays(group, dims, priors)
    alphas, betas = {}, {}
    for j, r in enumerate(group):
        # hints: slopes (NaN: the default where none is given), multipliers (0: none)
        for what, hints, store, fill in (("alpha", r.leaf.alpha, alphas, np.nan), ("beta", r.leaf.beta, betas, 0.0)):
            _place(prep, dims, hints, store, j, B, R, fill, f"{r.path}: {what}")
    lower, infeasible, _ = recheck(prep, lo, hi, C, phases, alphas, betas, prior)
    out = []
    for j, r in enumerate(group):
        if infeasible[j]:
            out.append(True)
        else:
            out.append(bool(len(C)) and refutes(spec, lower[j]))
    return out


def _solve_region(run, prep, graph, prop, inp: str, out: str, r: Region, timeout, prior=None):
    """(status, reason) of the region's exact query (`prior`: the bounds of the Tighten node
    above it, if any)."""
    from nnsmt.queries.bab import pre_name
    from nnsmt.queries.verify import restrict, verify_script
    bounds = None
    if prep is not None:
        lo, hi, phases, _ = _arrays([r], graph.dims())
        _, infeasible, ivs = recheck(prep, lo, hi, np.zeros((0, graph.dims()[out])), phases, prior=prior)
        if infeasible[0]:
            return "unsat", ""
        bounds = {n.x: type(ivs[n.x])(ivs[n.x].lo[0], ivs[n.x].hi[0])
                  for n in graph.nodes if isinstance(n, Relu)}
    try:
        s = verify_script(graph, prop, encoding="bounded" if bounds is not None else "plain", bounds=bounds,
                          lemmas=LEMMAS)
        s = restrict(s, (r.lo, r.hi))
        relus = {n.name: n for n in graph.nodes if isinstance(n, Relu)}
        zero = Num(Fraction(0))
        cmps = [Cmp(">=" if sg > 0 else "<=" if sg < 0 else "=",
                    Var(pre_name(graph, inp, out, relus[name].x, i)), zero)
                for name, ph in sorted(r.phases.items()) for i, sg in sorted(ph.items())]
        if cmps:
            phase_t = And(tuple(cmps)) if len(cmps) > 1 else cmps[0]
            s = replace(s, asserts=s.asserts + (("cert_phases", phase_t),))
        res = run(s, timeout)
    except NnsmtError as e:
        return "error", str(e)
    return res.status, res.reason


def _check_whole(cert, graph, prop, backend, timeout, t0, fallback) -> CheckReport:
    from nnsmt.engine.driver import solver
    from nnsmt.queries.verify import verify_script
    if cert.whole.by != "smt" and not fallback:
        return CheckReport(False, "rejected", f"whole: a {cert.whole.by} leaf over a region that is no box "
                           "union cannot be rechecked by bounds (fallback disabled)", failed=1, leaves=1)
    run = solver(backend, timeout)  # BackendUnavailable: exit 2
    try:
        res = run(verify_script(graph, prop, encoding="plain"), timeout)
    except NnsmtError as e:
        return CheckReport(False, "error", str(e))
    dt = time.perf_counter() - t0
    n = {"bounds": 0, "infeasible": 0, "smt": 0, "fallback": 0}
    if res.status == "unsat":
        n["smt" if cert.whole.by == "smt" else "fallback"] = 1
        return _report(True, "valid", "", n, t0, dt, 1, 0, 0.0)
    status = {"sat": "rejected", "error": "error"}.get(res.status, "incomplete")
    why = f"whole: {backend} answered {res.status}" + (f" ({res.reason})" if res.reason else "")
    return _report(False, status, why, n, t0, dt, 1, 1, 0.0)
