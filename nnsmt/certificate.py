"""Unsat certificates: the branch tree an engine explored, with each leaf's exact justification.

A certificate says *why* a verification query is unsat, in a form another program can replay
without trusting the engine that produced it (`nnsmt check-certificate`,
`nnsmt.engine.certify`). It holds:

- the files it is about (role, path as given, SHA-256), and the semantics (`real` only);
- one tree per box of the property's input region (`Property.input_boxes()`, in order, the
  empty boxes left out), or `whole` when the region is not a bounded union of boxes;
- inner nodes, each splitting its region into two that cover it:
  - `InputSplit(dim)`: the box bisected at the exact midpoint of dimension `dim`
    (children: the lower half, the upper half; both closed);
  - `ReluSplit(relu, index)`: element `index` of the ReLU node `relu` (the IR value the ReLU
    defines) fixed active (its pre-activation >= 0) or inactive (<= 0) (children in that order);
- `Tighten(alpha, child)`: bounds of some ReLU inputs over the node's region, tightened by
  optimising the lower-line slopes of the ReLUs before them (α-CROWN on an intermediate
  layer). For each such value v (m neurons), `alpha[v][relu]` gives slopes per row, rows
  numbering v's bounds as [lower bound of neuron i: row i; upper bound: row m + i] (the same
  hint semantics as a leaf's, any slope in [0, 1] sound). A checker recomputes v's bounds on the
  region with them (plain slopes for rows not given), in the network's order, and meets the
  result into the bounds of every region below (they lie inside this one);
- leaves, each a region (a box plus the phases fixed on the way) and why it holds no
  counterexample:
  - `Leaf("bounds", alpha)`: rigorous linear bounds over the region decide one of the
    property's output assertions False. `alpha` optionally gives lower-line slopes of unstable
    ReLUs for chosen spec rows (any slope in [0, 1] is sound, so they are hints a checker may
    use as given), and `beta` optionally the multipliers of the phase constraints of fixed
    ReLUs for chosen rows (β-CROWN: the form gains -β * sign * pre-activation, which is <= 0 on
    the region for any β >= 0; same layout as slopes); spec rows are numbered over the
    property's linear output atoms (atoms of the assertions mentioning outputs, in assertion
    order then `terms.atoms` order): row k < K is the lower bound of atom k's `lhs - rhs`, row
    K + k its upper bound (as the lower bound of the negation);
  - `Leaf("infeasible")`: no input of the box satisfies the region's phases (some value's
    bounds become empty);
  - `Leaf("smt", backend=...)`: an exact solver answered unsat for the region's query.

The file is JSON (gzip-compressed when its name ends in .gz). Numbers that must be exact are
not needed: boxes are derived from the property by exact bisection; slopes are float32 bytes in
base64, one array per (ReLU, rows, neurons).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from .errors import InputError

FORMAT = "nnsmt-certificate"
VERSION = 1
LEAF_KINDS = ("bounds", "infeasible", "smt")


@dataclass(frozen=True)
class Slopes:
    """Lower-line slopes of one ReLU node's neurons for some spec rows: values[r, j] is the slope
    of neuron `neurons[j]` in the bound of spec row `rows[r]`."""

    rows: tuple[int, ...]
    neurons: tuple[int, ...]
    values: np.ndarray  # float32, (len(rows), len(neurons))

    def __eq__(self, other):
        return isinstance(other, Slopes) and self.rows == other.rows and self.neurons == other.neurons \
            and np.array_equal(self.values, other.values)

    __hash__ = None


@dataclass(frozen=True)
class Leaf:
    by: str  # one of LEAF_KINDS
    alpha: dict = field(default_factory=dict)  # ReLU value name -> Slopes ("bounds" only)
    backend: str = ""  # "smt": the backend that answered unsat
    beta: dict = field(default_factory=dict)  # ReLU value name -> Slopes of multipliers ("bounds")


@dataclass(frozen=True)
class InputSplit:
    dim: int
    children: tuple  # (lower half, upper half)


@dataclass(frozen=True)
class ReluSplit:
    relu: str
    index: int
    children: tuple  # (active: pre-activation >= 0, inactive: <= 0)


@dataclass(frozen=True)
class Tighten:
    alpha: dict  # ReLU input value -> {ReLU value -> Slopes (rows: lower i, upper m + i)}
    child: object  # the node below, on the same region

    @property
    def children(self) -> tuple:
        return (self.child,)


Node = Union[Leaf, InputSplit, ReluSplit, Tighten]


@dataclass(frozen=True)
class Certificate:
    files: tuple  # ((role, path, sha256), ...): role "network" / "network:NAME" / "property"
    engine: str
    regions: tuple | None  # one tree per nonempty box of the input region; None: see `whole`
    whole: Leaf | None = None  # the whole query's justification when the region is no box union
    semantics: str = "real"
    verdict: str = "unsat"

    def leaves(self):
        """Every leaf, depth first."""
        stack = list(self.regions or ()) + ([self.whole] if self.whole is not None else [])
        while stack:
            n = stack.pop()
            if isinstance(n, Leaf):
                yield n
            else:
                stack.extend(n.children)

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in LEAF_KINDS}
        for leaf in self.leaves():
            out[leaf.by] += 1
        return out


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- paths: how engines describe a region before the tree is built

def tree_from_paths(items) -> Node:
    """Build one region's tree from (path, leaf) pairs, a path being the decisions from the
    root: ("input", dim, side) with side 0 = lower half, 1 = upper half, or ("relu", name,
    index, side) with side 0 = active, 1 = inactive. The paths must form a full binary tree
    (every inner node's two children present); raises ValueError otherwise."""
    items = list(items)
    if len(items) == 1 and not items[0][0]:
        return items[0][1]
    if not items or any(not p for p, _ in items):
        raise ValueError("the leaves do not form a tree (a leaf above another, or none)")
    heads = {p[0][:-1] for p, _ in items}
    if len(heads) != 1:
        raise ValueError(f"two different splits of one region: {sorted(map(str, heads))[:2]}")
    head = heads.pop()
    kids = []
    for side in (0, 1):
        sub = [(p[1:], leaf) for p, leaf in items if p[0][-1] == side]
        if not sub:
            raise ValueError(f"split {head} misses child {side}")
        kids.append(tree_from_paths(sub))
    if head[0] == "input":
        return InputSplit(int(head[1]), tuple(kids))
    if head[0] == "relu":
        return ReluSplit(str(head[1]), int(head[2]), tuple(kids))
    raise ValueError(f"unknown split {head!r}")


# ---- JSON

def _slopes_json(s: Slopes) -> dict:
    v = np.ascontiguousarray(s.values, dtype="<f4")
    return {"rows": list(s.rows), "neurons": list(s.neurons), "slopes": base64.b64encode(v.tobytes()).decode()}


def _node_json(n: Node):
    if isinstance(n, Leaf):
        d: dict = {"leaf": n.by}
        if n.alpha:
            d["alpha"] = {k: _slopes_json(s) for k, s in n.alpha.items()}
        if n.beta:
            d["beta"] = {k: _slopes_json(s) for k, s in n.beta.items()}
        if n.backend:
            d["backend"] = n.backend
        return d
    if isinstance(n, Tighten):
        return {"tighten": {v: {r: _slopes_json(sl) for r, sl in by.items()} for v, by in n.alpha.items()},
                "child": _node_json(n.child)}
    if isinstance(n, InputSplit):
        return {"split": "input", "dim": n.dim, "children": [_node_json(c) for c in n.children]}
    return {"split": "relu", "relu": n.relu, "index": n.index, "children": [_node_json(c) for c in n.children]}


def to_json(cert: Certificate) -> dict:
    return {"format": FORMAT, "version": VERSION, "verdict": cert.verdict, "semantics": cert.semantics,
            "engine": cert.engine,
            "files": [{"role": r, "path": p, "sha256": h} for r, p, h in cert.files],
            "regions": None if cert.regions is None else [_node_json(t) for t in cert.regions],
            "whole": None if cert.whole is None else _node_json(cert.whole)}


class _Bad(Exception):
    pass


def _need(cond, what):
    if not cond:
        raise _Bad(what)


def _slopes(d, where) -> Slopes:
    _need(isinstance(d, dict) and {"rows", "neurons", "slopes"} <= set(d), f"{where}: slopes need rows, neurons, slopes")
    rows, neurons = d["rows"], d["neurons"]
    _need(isinstance(rows, list) and all(isinstance(r, int) and r >= 0 for r in rows), f"{where}: bad rows")
    _need(isinstance(neurons, list) and all(isinstance(r, int) and r >= 0 for r in neurons), f"{where}: bad neurons")
    try:
        raw = base64.b64decode(d["slopes"], validate=True)
    except (ValueError, TypeError):
        raise _Bad(f"{where}: slopes are not base64")
    _need(len(raw) == 4 * len(rows) * len(neurons), f"{where}: {len(raw)} slope bytes for "
          f"{len(rows)} rows x {len(neurons)} neurons")
    v = np.frombuffer(raw, dtype="<f4").reshape(len(rows), len(neurons)).astype(np.float32)
    return Slopes(tuple(rows), tuple(neurons), v)


def _node(d, where: str, depth: int = 0) -> Node:
    _need(depth < 10000, f"{where}: tree deeper than 10000")
    _need(isinstance(d, dict), f"{where}: a node must be an object")
    if "leaf" in d:
        by = d["leaf"]
        _need(by in LEAF_KINDS, f"{where}: unknown leaf kind {by!r} (one of {', '.join(LEAF_KINDS)})")
        alpha = d.get("alpha") or {}
        _need(isinstance(alpha, dict), f"{where}: alpha must be an object")
        beta = d.get("beta") or {}
        _need(isinstance(beta, dict), f"{where}: beta must be an object")
        backend = d.get("backend", "")
        _need(isinstance(backend, str), f"{where}: backend must be a string")
        return Leaf(by, {str(k): _slopes(v, f"{where}.alpha.{k}") for k, v in alpha.items()}, backend,
                    {str(k): _slopes(v, f"{where}.beta.{k}") for k, v in beta.items()})
    if "tighten" in d:
        t = d["tighten"]
        _need(isinstance(t, dict) and all(isinstance(by, dict) for by in t.values()),
              f"{where}: tighten must map values to objects of slopes by ReLU")
        _need("child" in d, f"{where}: tighten needs a child")
        return Tighten({str(v): {str(r): _slopes(sl, f"{where}.tighten.{v}.{r}") for r, sl in by.items()}
                        for v, by in t.items()}, _node(d["child"], f"{where}.0", depth + 1))
    kind = d.get("split")
    kids = d.get("children")
    _need(isinstance(kids, list) and len(kids) == 2, f"{where}: a split needs two children")
    ch = tuple(_node(c, f"{where}.{i}", depth + 1) for i, c in enumerate(kids))
    if kind == "input":
        _need(isinstance(d.get("dim"), int) and d["dim"] >= 0, f"{where}: bad dim")
        return InputSplit(d["dim"], ch)
    if kind == "relu":
        _need(isinstance(d.get("relu"), str) and isinstance(d.get("index"), int) and d["index"] >= 0,
              f"{where}: a relu split needs relu (name) and index")
        return ReluSplit(d["relu"], d["index"], ch)
    raise _Bad(f"{where}: a node is a leaf, a split (input / relu) or a tighten, got {sorted(d)}")


def from_json(d) -> Certificate:
    """Parse (raises ValueError naming the element at fault)."""
    try:
        _need(isinstance(d, dict) and d.get("format") == FORMAT, f"not an {FORMAT} file")
        _need(d.get("version") == VERSION, f"version {d.get('version')!r} (this nnsmt reads {VERSION})")
        _need(d.get("verdict") == "unsat", f"verdict {d.get('verdict')!r}: certificates are for unsat")
        files = d.get("files")
        _need(isinstance(files, list) and all(isinstance(f, dict) and {"role", "path", "sha256"} <= set(f)
                                              for f in files), "files: a list of {role, path, sha256}")
        regions, whole = d.get("regions"), d.get("whole")
        _need(regions is None or isinstance(regions, list), "regions must be a list or null")
        _need((regions is None) != (whole is None), "exactly one of regions and whole")
        return Certificate(tuple((str(f["role"]), str(f["path"]), str(f["sha256"])) for f in files),
                           str(d.get("engine", "")),
                           None if regions is None else tuple(_node(t, f"regions.{i}") for i, t in enumerate(regions)),
                           None if whole is None else _node(whole, "whole"),
                           str(d.get("semantics", "real")), "unsat")
    except _Bad as e:
        raise ValueError(str(e)) from None


def write(cert: Certificate, path) -> None:
    text = json.dumps(to_json(cert), separators=(",", ":"))
    p = Path(path)
    if p.suffix == ".gz":
        with gzip.open(p, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        p.write_text(text)


def read(path) -> Certificate:
    """Load a certificate; InputError naming the file (and element) on any problem."""
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = p.read_text()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read certificate: {getattr(e, 'strerror', None) or e}") from None
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{path}: not JSON: {e}") from None
    try:
        return from_json(d)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: {e}") from None
