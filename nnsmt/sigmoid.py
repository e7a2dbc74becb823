"""Sigmoid, exactly where possible: rigorous rational enclosures, monotone rewriting, encodings.

Three ways a query can meet a sigmoid `s = 1 / (1 + exp(-a))`:

- `exp` (exact): the term `(/ 1 (+ 1 (exp (- a))))`, for solvers with transcendental
  arithmetic (cvc5, dReal). Z3 has no exp.
- monotone rewriting (exact, any solver): sigmoid is strictly increasing, so a query that only
  compares a sigmoid output with a threshold t or with another sigmoid is rewritten on the
  pre-activations: `s(a) >= 1/2 <=> a >= 0`, `s(a) >= s(b) <=> a >= b`, and for other t
  `s(a) >= t <=> a >= logit(t)` where the irrational logit(t) is replaced by a rational bound
  on the safe side (`logit_bounds`; a witness is then re-checked with the enclosure).
- `pwl` (a sound relaxation): the sigmoid's value becomes a fresh variable held between two
  piecewise-linear functions of the pre-activation on a grid over its sound bounds. An unsat
  answer of the relaxation is a proof for the network; a sat answer is only a candidate, and is
  checked on the real network before it is reported.

An `Exp` node (`nnsmt.ir`, e.g. a lowered softmax) meets the same choice: the exact `(exp t)`
term, or under `pwl` a fresh variable held between tangent lines below exp and chords above it
(`exp_relaxation`, `encode_exp`), refined the same way.

The enclosures (`exp_bounds`, `sigmoid_bounds`) are rational intervals from a Taylor series with
a bounded remainder, rounded outward: what "replayed exactly" means for a sigmoid network
(`nnsmt.interpret.EnclosureDomain`).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np

from .errors import InternalError, UnsupportedError
from .terms import Add, And, Cmp, Div, Exp, Mul, Num, Or, ScriptBuilder, Var, is_symbolic

SIGMOID_ENCODINGS = ("exp", "pwl")
DEFAULT_BITS = 96  # enclosure width ~2^-96 relative: far below any tolerance a user asks for
PWL_PIECES = 32  # grid segments over a pre-activation's bounds (plus 0 and refinement points)
_M_MAX = Fraction(1, 10)  # > max |sigmoid''| = 1/(6*sqrt(3)) ~ 0.0962


def _floor_bits(q: Fraction, bits: int) -> Fraction:
    return Fraction(math.floor(q * (1 << bits)), 1 << bits)


def _ceil_bits(q: Fraction, bits: int) -> Fraction:
    return Fraction(math.ceil(q * (1 << bits)), 1 << bits)


def _mag_bits(q: Fraction) -> int:
    return q.numerator.bit_length() - q.denominator.bit_length()


def _floor_rel(q: Fraction, bits: int) -> Fraction:
    """Round down to `bits` significant bits (q > 0)."""
    return _floor_bits(q, bits - _mag_bits(q)) if bits - _mag_bits(q) >= 0 else \
        Fraction(math.floor(q / (1 << (_mag_bits(q) - bits))) << (_mag_bits(q) - bits))


def _ceil_rel(q: Fraction, bits: int) -> Fraction:
    """Round up to `bits` significant bits (q > 0)."""
    return _ceil_bits(q, bits - _mag_bits(q)) if bits - _mag_bits(q) >= 0 else \
        Fraction(math.ceil(q / (1 << (_mag_bits(q) - bits))) << (_mag_bits(q) - bits))


def exp_bounds(q, bits: int = DEFAULT_BITS) -> tuple[Fraction, Fraction]:
    """Rational lo <= exp(q) <= hi for a rational q, relative width about 2**-bits.

    exp(q) = exp(r)**(2**m) with |r| <= 1/2; exp(r) is a Taylor sum with remainder
    |R| <= |r|**n / n! * e**|r| <= 2 |r|**n / n!, then squared m times, rounding outward.
    """
    q = Fraction(q)
    if q > 4096 or q < -4096:
        # exp(+-4096) over/underflows any useful precision; e > 2 gives a crude certified bound
        k = math.floor(abs(q))
        small, big = Fraction(0), Fraction(2) ** k  # 0 < exp(-|q|) < 2**-k, exp(|q|) > 2**k
        return (big, Fraction(3) ** (k + 1)) if q > 0 else (small, 1 / big)
    m = 0
    while abs(q) > Fraction(1, 2) * (1 << m):
        m += 1
    r = q / (1 << m)
    work = bits + m + 16  # squaring m times doubles the relative error m times
    tol = Fraction(1, 1 << (work + 2))
    s, term, n = Fraction(0), Fraction(1), 0
    while True:
        s += term
        n += 1
        term = term * r / n
        rem = 2 * abs(term)  # bound of the tail starting at this term
        if rem <= tol:
            break
    lo, hi = _floor_rel(s - rem, work), _ceil_rel(s + rem, work)
    for _ in range(m):
        lo, hi = _floor_rel(lo * lo, work), _ceil_rel(hi * hi, work)
    if q >= 0:
        lo = max(lo, Fraction(1))
    else:
        hi = min(hi, Fraction(1))
    return lo, hi


def sigmoid_bounds(q, bits: int = DEFAULT_BITS) -> tuple[Fraction, Fraction]:
    """Rational lo <= sigmoid(q) <= hi (sigmoid(0) = 1/2 exactly)."""
    q = Fraction(q)
    if q == 0:
        return Fraction(1, 2), Fraction(1, 2)
    elo, ehi = exp_bounds(-q, bits)
    return 1 / (1 + ehi), 1 / (1 + elo)


def sigmoid_interval(lo, hi, bits: int = DEFAULT_BITS) -> tuple[Fraction, Fraction]:
    """Enclosure of sigmoid over [lo, hi] (monotone: the ends)."""
    return sigmoid_bounds(lo, bits)[0], sigmoid_bounds(hi, bits)[1]


def logit_bounds(t, bits: int = 60) -> tuple[Fraction, Fraction]:
    """Rationals lo < logit(t) < hi (logit(t) = ln(t / (1 - t)), 0 < t < 1), each within
    about 2**-bits of it; logit(1/2) = 0 exactly (lo = hi = 0)."""
    t = Fraction(t)
    if not 0 < t < 1:
        raise InternalError(f"logit_bounds: logit({t}) is not finite (needs 0 < t < 1)")
    if t == Fraction(1, 2):
        return Fraction(0), Fraction(0)
    prec = max(DEFAULT_BITS, bits + 16)
    x = Fraction(math.log(float(t) / (1 - float(t))))
    for _ in range(12):  # Newton on sigmoid(x) = t from the float estimate: quadratic
        slo, shi = sigmoid_bounds(x, prec)
        sm = (slo + shi) / 2
        err = sm - t
        x = _floor_bits(x - err / (sm * (1 - sm)), prec + 8)
        if abs(err) < Fraction(1, 1 << (bits + 8)):
            break
    step = Fraction(1, 1 << bits) * max(1, abs(x))
    lo, hi = x - step, x + step
    while sigmoid_bounds(lo, prec)[1] >= t:  # sigmoid(lo) < t  =>  lo < logit(t)
        lo -= step
        step *= 2
    step = Fraction(1, 1 << bits) * max(1, abs(x))
    while sigmoid_bounds(hi, prec)[0] <= t:
        hi += step
        step *= 2
    return lo, hi


# --- piecewise-linear relaxation --------------------------------------------------------------

def _line(x0, y0, x1, y1) -> tuple[Fraction, Fraction]:
    """(slope, intercept) of the line through two points."""
    k = (y1 - y0) / (x1 - x0)
    return k, y0 - k * x0


def pwl_segments(lo: float, hi: float, pieces: int = PWL_PIECES, extra: Sequence = (),
                 bits: int = 40) -> list[tuple[Fraction, Fraction, tuple, tuple]]:
    """Sound linear bounds of sigmoid on a grid over [lo, hi] (finite floats or Fractions).

    Returns segments (a, b, (k_lo, c_lo), (k_hi, c_hi)) with
    `k_lo*x + c_lo <= sigmoid(x) <= k_hi*x + c_hi` for a <= x <= b. Breakpoints: a uniform
    grid, 0 (so every segment is on one side of the inflection point), and `extra` (refinement
    points, e.g. a rejected witness's pre-activations). On a concave segment (a >= 0) the chord
    through rounded-down ends is a lower bound and the upper line lies the chord error
    max|s''| h^2 / 8 (|s''| <= min(1/10, exp(-min|x|))) plus the rounding above it; a convex
    segment (b <= 0) is the mirror image.
    """
    lo, hi = Fraction(lo), Fraction(hi)
    if hi < lo:
        raise InternalError(f"pwl_segments: empty interval [{lo}, {hi}]")
    if hi == lo:
        s_lo, s_hi = sigmoid_bounds(lo, bits)
        return [(lo, hi, (Fraction(0), s_lo), (Fraction(0), s_hi))]
    pts = {lo, hi}
    for i in range(1, pieces):
        pts.add(_floor_bits(lo + (hi - lo) * i / pieces, 24))
    if lo < 0 < hi:
        pts.add(Fraction(0))
    for e in extra:
        e = Fraction(e)
        if lo < e < hi:
            pts.add(_floor_bits(e, 40))
    pts = sorted(p for p in pts if lo <= p <= hi)
    segs = []
    for a, b in zip(pts, pts[1:]):
        if a == b:
            continue
        sa, sb = sigmoid_bounds(a, bits), sigmoid_bounds(b, bits)
        width = max(sa[1] - sa[0], sb[1] - sb[0])
        m = a if a >= 0 else -b  # min |x| on the segment (0 is a breakpoint)
        curv = min(_M_MAX, exp_bounds(-m, 24)[1])
        gap = curv * (b - a) ** 2 / 8 + width
        if a >= 0:  # concave: chord below
            k, c = _line(a, sa[0], b, sb[0])
            low, up = _short(k, c, a, b, -1), _short(k, c + gap, a, b, 1)
        else:  # convex: chord above
            k, c = _line(a, sa[1], b, sb[1])
            low, up = _short(k, c - gap, a, b, -1), _short(k, c, a, b, 1)
        segs.append((a, b, low, up))
    return segs


def _short(k: Fraction, c: Fraction, a: Fraction, b: Fraction, side: int, bits: int = 32):
    """The line k*x + c with a 2**-bits slope, moved (side -1: down, +1: up) by the rounding's
    effect on [a, b] so it stays on its side of the original: small constants for the solver."""
    k2 = _floor_bits(k, bits)
    slack = abs(k - k2) * max(abs(a), abs(b))
    c2 = (_floor_bits(c - slack, bits + 8) if side < 0 else _ceil_bits(c + slack, bits + 8))
    return k2, c2


def _affine(k: Fraction, c: Fraction, x) -> object:
    return Add((Mul((Num(k), x)), Num(c)))


def encode_pwl(b: ScriptBuilder, out: str, a, lo, hi, extra: Sequence = (),
               pieces: int = PWL_PIECES) -> Var:
    """Declare `out` and assert sound piecewise-linear bounds linking it to the term `a`
    (whose value lies in [lo, hi]: that range is asserted too, as a lemma)."""
    v = b.declare(out)
    segs = pwl_segments(lo, hi, pieces, extra)
    atoms = [Cmp(">=", a, Num(Fraction(lo))), Cmp("<=", a, Num(Fraction(hi))),
             Cmp(">", v, Num(Fraction(0))), Cmp("<", v, Num(Fraction(1)))]
    for sa, sb, (kl, cl), (ku, cu) in segs:
        inside = And((Cmp(">=", v, _affine(kl, cl, a)), Cmp("<=", v, _affine(ku, cu, a))))
        atoms.append(Or((Cmp("<", a, Num(sa)), Cmp(">", a, Num(sb)), inside)))
    b.assert_(f"pwl_{out}", And(tuple(atoms)))
    b.meta.setdefault("relaxed", []).append(out)
    return v


def exp_term(a) -> object:
    """The exact sigmoid of term `a`: 1 / (1 + exp(-a))."""
    return Div(Num(Fraction(1)), Add((Num(Fraction(1)), Exp(Mul((Num(Fraction(-1)), a))))))


def encode_sigmoid(dom, node, x) -> np.ndarray:
    """`TermDomain.sigmoid`: encode sigmoid(x) with the domain's `sigmoid_mode` ("exp", "pwl" or
    "pwl:N" for N grid segments).

    x is numeric (a concrete value: exp of a constant, or a tight rational enclosure under pwl)
    or an array of SMT names.
    """
    mode, _, n = str(dom.sigmoid_mode).partition(":")
    pieces = int(n) if n.isdigit() and int(n) > 0 else PWL_PIECES
    if mode not in SIGMOID_ENCODINGS or (n and not n.isdigit()):
        raise UnsupportedError(f"sigmoid {node.name!r}: unknown sigmoid encoding {mode!r}; "
                               f"choose from {', '.join(SIGMOID_ENCODINGS)}")
    out = dom._value_names(node.name, len(x))
    symbolic = is_symbolic(x)
    iv = (dom.sigmoid_bounds or {}).get(node.x) if symbolic else None
    key = dom.prefix + node.name
    for i, (o, a) in enumerate(zip(out, x)):
        arg = Var(a) if symbolic else Num(Fraction(a))
        if mode == "exp":
            dom.b.define(o, exp_term(arg))
        elif not symbolic:
            slo, shi = sigmoid_bounds(Fraction(a))
            v = dom.b.declare(o)
            dom.b.assert_(f"pwl_{o}", And((Cmp(">=", v, Num(slo)), Cmp("<=", v, Num(shi)))))
            dom.b.meta.setdefault("relaxed", []).append(o)
        else:
            if iv is None or not (np.isfinite(iv.lo[i]) and np.isfinite(iv.hi[i])):
                raise UnsupportedError(f"sigmoid {node.name!r}: the piecewise-linear relaxation "
                                       "needs finite bounds of its input (bound the input domain)")
            encode_pwl(dom.b, o, arg, iv.lo[i], iv.hi[i], dom.sigmoid_extra.get((key, i), ()), pieces)
    return out


# --- piecewise-linear relaxation of exp ----------------------------------------------------------

EXP_BITS = 40  # precision of the relaxation's constants (enclosures of exp at its breakpoints)


def _finite(v) -> bool:
    return isinstance(v, (Fraction, int)) or math.isfinite(v)


def _pow2(e: int) -> Fraction:
    return Fraction(2) ** e


def _line_above(k: Fraction, c: Fraction, a: Fraction, b: Fraction, scale: Fraction,
                bits: int = 32) -> tuple[Fraction, Fraction]:
    """The line k*t + c with its slope rounded to 2**-bits relative to `scale` (> 0) and its
    intercept raised by the rounding's effect on [a, b], so it stays above the original there:
    small constants for the solver whatever exp's magnitude."""
    step = _pow2(_mag_bits(scale) - bits)
    k2 = math.floor(k / step) * step
    slack = abs(k - k2) * max(abs(a), abs(b))
    fine = step / 256
    return k2, math.ceil((c + slack) / fine) * fine


def _breakpoints(lo: Fraction, hi: Fraction, pieces: int, extra: Sequence) -> list[Fraction]:
    pts = {lo, hi}
    for i in range(1, pieces):
        pts.add(_floor_bits(lo + (hi - lo) * i / pieces, 24))
    for e in extra:
        e = Fraction(e)
        if lo < e < hi:
            pts.add(_floor_bits(e, 40))
    return sorted(p for p in pts if lo <= p <= hi)


def exp_relaxation(lo, hi, pieces: int = PWL_PIECES, extra: Sequence = (),
                   bits: int = EXP_BITS) -> dict:
    """Sound linear bounds of exp(t) for t in [lo, hi] (floats or Fractions; an infinite end
    drops what needs it).

    Returns a dict with
    - "lo", "hi": the finite ends (Fraction) or None;
    - "floor", "ceil": rationals with floor <= exp(t) <= ceil on [lo, hi] (exp is increasing:
      enclosures at the ends; None for an infinite end);
    - "tangents": (k, c) with k*t + c <= exp(t) for every real t: c_p (1 + t - p) for c_p a
      rational lower bound of exp(p) (where 1 + t - p >= 0, c_p (1 + t - p) <=
      exp(p) (1 + t - p) <= exp(p) exp(t - p); elsewhere the line is negative), at every
      breakpoint p;
    - "chords": (a, b, k, c) with exp(t) <= k*t + c for a <= t <= b: the secant through rational
      upper bounds of exp(a) and exp(b) (above the true secant, which lies above the convex exp
      on [a, b]), rounded upward;
    - "chord": the chord over the whole [lo, hi] (k, c), or None.
    Breakpoints: a uniform grid of `pieces` segments over finite [lo, hi] (its ends included)
    and the refinement points `extra` inside it; with an infinite end, the finite end and the
    refinement points only (tangents: exp stays bounded below, not above).
    """
    flo, fhi = (Fraction(v) if _finite(v) else None for v in (lo, hi))
    if flo is not None and fhi is not None and fhi < flo:
        raise InternalError(f"exp_relaxation: empty interval [{flo}, {fhi}]")
    out = {"lo": flo, "hi": fhi, "floor": None, "ceil": None, "tangents": [], "chords": [],
           "chord": None}
    if flo is not None:
        out["floor"] = exp_bounds(flo, bits)[0]
    if fhi is not None:
        out["ceil"] = exp_bounds(fhi, bits)[1]
    if flo is not None and fhi is not None:
        pts = _breakpoints(flo, fhi, pieces, extra)
    else:
        pts = sorted({p for p in (flo, fhi) if p is not None} |
                     {_floor_bits(Fraction(e), 40) for e in extra
                      if (flo is None or Fraction(e) > flo) and (fhi is None or Fraction(e) < fhi)})
    up = {p: exp_bounds(p, bits) for p in pts}
    for p in pts:
        cp = up[p][0]
        out["tangents"].append((cp, cp * (1 - p)))
    for a, b in zip(pts, pts[1:]):
        k, c = _line(a, up[a][1], b, up[b][1])
        out["chords"].append((a, b) + _line_above(k, c, a, b, max(up[a][1], up[b][1])))
    if flo is not None and fhi is not None and flo < fhi:
        k, c = _line(flo, up[flo][1], fhi, up[fhi][1])
        out["chord"] = _line_above(k, c, flo, fhi, up[fhi][1])
    return out


def exp_constraints(t, y, lo, hi, pieces: int = PWL_PIECES, extra: Sequence = ()) -> list:
    """Boolean terms that every (t, y = exp(t)) with lo <= t <= hi satisfies (`exp_relaxation`):
    the range of t (a lemma: [lo, hi] are sound bounds), y > 0, floor <= y <= ceil, y above
    every tangent, below the whole chord, and below each piece's chord where t is in the piece."""
    r = exp_relaxation(lo, hi, pieces, extra)
    zero = Num(Fraction(0))
    atoms = [Cmp(">", y, zero)]
    if r["lo"] is not None:
        atoms += [Cmp(">=", t, Num(r["lo"])), Cmp(">=", y, Num(r["floor"]))]
    if r["hi"] is not None:
        atoms += [Cmp("<=", t, Num(r["hi"])), Cmp("<=", y, Num(r["ceil"]))]
    atoms += [Cmp(">=", y, _affine(k, c, t)) for k, c in r["tangents"]]
    if r["chord"] is not None:
        atoms.append(Cmp("<=", y, _affine(*r["chord"], t)))
    for a, b, k, c in r["chords"]:
        atoms.append(Or((Cmp("<", t, Num(a)), Cmp(">", t, Num(b)), Cmp("<=", y, _affine(k, c, t)))))
    return atoms


def encode_exp(dom, node, x) -> np.ndarray:
    """`TermDomain.exp` under the pwl relaxation (`dom.exp_mode` "pwl" or "pwl:N"): each element
    a declared variable bound by `exp_constraints` over its input's interval in
    `dom.sigmoid_bounds` (refinement points from `dom.sigmoid_extra`); a numeric element (a
    concrete value) is held within its certified enclosure."""
    mode, _, n = str(dom.exp_mode).partition(":")
    if mode != "pwl" or (n and not (n.isdigit() and int(n) > 0)):
        raise UnsupportedError(f"exp {node.name!r}: unknown exp encoding {dom.exp_mode!r}; "
                               f"choose from {', '.join(SIGMOID_ENCODINGS)}")
    pieces = int(n) if n else PWL_PIECES
    out = dom._value_names(node.name, len(x))
    symbolic = is_symbolic(x)
    key = dom.prefix + node.name
    iv = None
    if symbolic:
        iv = (dom.sigmoid_bounds or {}).get(node.x)
        if iv is None:
            raise UnsupportedError(f"exp {node.name!r}: the piecewise-linear relaxation needs "
                                   "bounds of its input (bound the input domain)")
    for i, (o, a) in enumerate(zip(out, x)):
        v = dom.b.declare(o)
        if symbolic:
            atoms = exp_constraints(Var(a), v, iv.lo[i], iv.hi[i], pieces,
                                    dom.sigmoid_extra.get((key, i), ()))
        else:
            elo, ehi = exp_bounds(Fraction(a))
            atoms = [Cmp(">=", v, Num(elo)), Cmp("<=", v, Num(ehi))]
        dom.b.assert_(f"pwl_{o}", And(tuple(atoms)))
        dom.b.meta.setdefault("relaxed", []).append(o)
    return out
