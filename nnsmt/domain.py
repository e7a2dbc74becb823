"""Input domains: a union of boxes, from a `box.json` file or a VNN-LIB property's input region.

`box.json` (exact; reused by robustness queries):

    {"lo": [0, 0, "1/3"], "hi": [16, 16, 1.5]}          one box
    {"lo": 0, "hi": 16, "dim": 64}                        a scalar broadcast to `dim` inputs
    {"boxes": [{"lo": [...], "hi": [...]}, ...]}          a union of boxes

Numbers are JSON numbers (a float is taken as its exact binary value) or strings holding an
exact rational (`"1/3"`, `"0.1"` = 1/10). Every input must be bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from .bounds import Interval, box_interval
from .errors import InputError
from .terms import And, Cmp, Num, Or, Var

Box = tuple[tuple[Fraction, ...], tuple[Fraction, ...]]


@dataclass(frozen=True)
class InputDomain:
    """A union of boxes over the inputs X_0..X_{dim-1}, with exact rational bounds."""

    boxes: tuple[Box, ...]
    source: str = "<domain>"
    declared: str = ""  # a VNN-LIB 2 query's input element type other than real, e.g. "float32"

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader of a result over this domain should know about its semantics."""
        if not self.declared:
            return ()
        return (f"{self.source} declares {self.declared} inputs; this domain is the set of real "
                f"points in its boxes and the network is evaluated exactly (not in {self.declared}): "
                "a witness need not be a float, and rounding is not modelled",)

    @property
    def dim(self) -> int:
        return len(self.boxes[0][0])

    def intervals(self) -> list[Interval]:
        """Each box as an outward-rounded float64 Interval."""
        return [box_interval(lo, hi) for lo, hi in self.boxes]

    def hull(self) -> Interval:
        ivs = self.intervals()
        out = ivs[0]
        for iv in ivs[1:]:
            out = out.hull(iv)
        return out

    def constraint(self, names) -> object:
        """Boolean term: the input variables `names` lie in some box (closed bounds)."""
        def box(lo, hi):
            return And(tuple(a for n, l, h in zip(names, lo, hi)
                             for a in (Cmp(">=", Var(n), Num(l)), Cmp("<=", Var(n), Num(h)))))
        terms = [box(lo, hi) for lo, hi in self.boxes]
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def contains(self, x) -> bool:
        """Whether the exact point `x` lies in some box."""
        xs = [Fraction(v) for v in x]
        return any(all(l <= v <= h for v, l, h in zip(xs, lo, hi)) for lo, hi in self.boxes)

    def center(self) -> list[Fraction]:
        lo, hi = self.boxes[0]
        return [(a + b) / 2 for a, b in zip(lo, hi)]


FLOAT_MAX = Fraction(float(np.finfo(np.float64).max))
MAX_DIM = 10**6  # inputs of a domain: far beyond any network nnsmt can encode


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _num(v, where: str) -> Fraction:
    if isinstance(v, bool) or not isinstance(v, (int, float, str, Fraction)):
        raise InputError(f"{where}: expected a number or a rational string, got {_short(v)}")
    try:
        q = Fraction(v.strip() if isinstance(v, str) else v)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise InputError(f"{where}: {_short(v)} is not a finite rational number") from None
    if abs(q) > FLOAT_MAX:  # JSON's 1e400 is already inf; "1e400" as a string is exact but no
        raise InputError(f"{where}: {_short(v)} is beyond the float64 range (|v| <= 1.8e308)")
    return q


def _vec(v, dim, where: str) -> list[Fraction]:
    if isinstance(v, list):
        return [_num(a, f"{where}[{i}]") for i, a in enumerate(v)]
    if dim is None:
        raise InputError(f"{where}: a scalar bound needs \"dim\" (or give a list)")
    return [_num(v, where)] * dim


def _box(d, dim, where: str) -> Box:
    if not isinstance(d, dict) or "lo" not in d or "hi" not in d:
        raise InputError(f"{where}: a box is an object with \"lo\" and \"hi\"")
    dim = d.get("dim", dim)
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim <= MAX_DIM):
        raise InputError(f"{where}: dim: expected a positive integer (at most {MAX_DIM}), "
                         f"got {_short(dim)}")
    lo, hi = _vec(d["lo"], dim, f"{where}: lo"), _vec(d["hi"], dim, f"{where}: hi")
    if len(lo) != len(hi):
        raise InputError(f"{where}: lo has {len(lo)} bounds, hi has {len(hi)}")
    for i, (a, b) in enumerate(zip(lo, hi)):
        if a > b:
            raise InputError(f"{where}: input {i} has lo {a} > hi {b}")
    return tuple(lo), tuple(hi)


def parse_box_json(text: str, source: str = "<string>", dim: int | None = None) -> InputDomain:
    """Parse the box.json format (module docstring)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise InputError(f"{source}: invalid JSON: nested too deeply") from None
    if isinstance(d, dict) and "boxes" in d:
        if not isinstance(d["boxes"], list) or not d["boxes"]:
            raise InputError(f"{source}: \"boxes\" must be a non-empty list")
        boxes = tuple(_box(b, d.get("dim", dim), f"{source}: boxes[{i}]") for i, b in enumerate(d["boxes"]))
    else:
        boxes = (_box(d, dim, source),)
    if len({len(b[0]) for b in boxes}) != 1:
        raise InputError(f"{source}: boxes have different dimensions")
    return InputDomain(boxes, source)


def box_domain(lo, hi, source: str = "<domain>") -> InputDomain:
    """One box from its bounds (numbers, numpy scalars or arrays, Fractions or rational
    strings; exact: a float32 bound is the float32 value), checked as a box.json box is."""
    def plain(v):  # numpy scalars as the Python number they hold exactly
        return v.item() if isinstance(v, np.generic) else v
    return InputDomain((_box({"lo": [plain(v) for v in lo], "hi": [plain(v) for v in hi]}, None, source),),
                       source)


def domain_from_property(prop) -> InputDomain:
    """The input region of a VNN-LIB property (its union of boxes; closures of strict bounds)."""
    boxes = prop.input_boxes()
    if boxes is None:
        raise InputError(f"{prop.source}: the input constraints are not a union of boxes")
    out = []
    for lo, hi in boxes:
        for i, (a, b) in enumerate(zip(lo, hi)):
            if a is None or b is None:
                raise InputError(f"{prop.source}: input X_{i} is unbounded; a domain needs every input bounded")
            if abs(a) > FLOAT_MAX or abs(b) > FLOAT_MAX:
                raise InputError(f"{prop.source}: input X_{i} has a bound beyond the float64 range "
                                 "(|v| <= 1.8e308); a domain needs bounds that floats can hold")
        if all(a <= b for a, b in zip(lo, hi)):  # drop empty boxes
            out.append((tuple(lo), tuple(hi)))
    if not out:
        raise InputError(f"{prop.source}: the input region is empty")
    return InputDomain(tuple(out), prop.source)


def load_domain(path, dim: int | None = None) -> InputDomain:
    """A domain from `box.json` (see module docstring) or a `.vnnlib` file's input boxes: a
    VNN-LIB 1.0 property, or a VNN-LIB 2 query about one network (the boxes over its inputs,
    flattened in declaration order; the domain is a set of reals, its element types unused)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read domain: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: cannot read domain: not UTF-8 text (byte {e.start})") from None
    if p.suffix.lower() == ".vnnlib":
        from .vnnlib import parse_vnnlib
        from .vnnlib2 import is_vnnlib2, load_query
        if is_vnnlib2(path):  # its input boxes, over the one network's inputs in order
            q = load_query(path)
            if len(q.networks) != 1:
                raise InputError(f"{path}: a domain comes from a query about one network "
                                 f"(it declares {len(q.networks)})")
            dom = domain_from_property(q.prop)
            types = sorted({d.dtype for d in q.networks[0].decls if d.kind == "input"} - {"real"})
            dom = replace(dom, declared=", ".join(types))
        else:
            dom = domain_from_property(parse_vnnlib(text, str(path)))
    else:
        dom = parse_box_json(text, str(path), dim)
    if dim is not None and dom.dim != dim:
        raise InputError(f"{path}: the domain has {dom.dim} inputs, the network {dim}")
    return dom


def region_bounds(graph, domain: InputDomain, method: str = "linear", tighten: int = 0) -> dict:
    """Sound bounds of every value over the union of the domain's boxes (per box, then hull).
    `tighten` > 0 (method "linear"): the ReLU inputs' bounds optimised per neuron by that many
    α-CROWN steps (`nnsmt.bounds.tightened_bounds`)."""
    from .bounds import propagate_bounds, tightened_bounds
    out: dict = {}
    for iv in domain.intervals():
        bd = tightened_bounds(graph, iv, tighten)[0] if tighten > 0 and method == "linear" \
            else propagate_bounds(graph, iv, method)
        out = bd if not out else {k: out[k].hull(v) for k, v in bd.items()}
    return out


def property_bounds(graph, prop, method: str = "linear") -> dict | None:
    """Bounds over a property's input region; None when it is not a bounded union of boxes."""
    try:
        dom = domain_from_property(prop)
    except InputError:
        return None
    return region_bounds(graph, dom, method)
