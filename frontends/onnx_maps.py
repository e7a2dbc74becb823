"""Pending affine maps of the ONNX lowering: `y = Σ_k M_k x_k + b` over IR values `x_k`.

A run of linear ONNX ops composes into one map, and one IR `Affine` node, only where the product
stays exact and cheap. Matrices keep their structure for that:

- `Mono`, a monomial matrix (at most one entry a row): selections, permutations, broadcasts,
  padding, diagonal scalings -- every layout op. Composing with one moves or scales entries.
- a dense exact array (float64 or Fractions): Gemm and MatMul weights, folded as the chain
  frontends fold them (`exact._dot` while out*mid*in <= DENSE_FOLD_LIMIT).
- `Sp`, a CSR matrix whose entries index a small table of values: a convolution's entries are its
  kernel's, so a per-channel scale (batch normalisation) multiplies table entries, not nonzeros.

Values are exact arrays (float64, or object arrays of Fractions): a product or sum that is not a
float is kept as a Fraction. A product that would need a big rational matrix product (a dense map
after a convolution, say) is refused (`None`): the caller emits the pending map as an IR node and
composes with that node instead, which is just as exact.

Matrices also remember what their entries are, for `nnsmt.params.make_symbolic` (`Sparse.tie`):
a `Sp` of kind "weights" has a weight tensor's entries as its table (a convolution's kernel,
possibly scaled by a folded batch normalisation), so its table index says which stored entries
are one parameter; kind "fixed" (and a `Mono` with `fixed`) holds only constants of the lowering
(ones, -1 of a subtraction, 1/k of an average), no parameter; kind "free" is anything else (a
sum of maps, a scaling by a model constant), every stored entry a parameter of its own.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from nnsmt.ir import Const, Sparse, exact_array

from .exact import DENSE_FOLD_LIMIT, _add, _dot, _mul

# A monomial or dense map written as a dense Const when it is the only term and this small (the
# chain frontends write their maps dense; bigger ones are written as Sparse).
DENSE_EMIT_LIMIT = 4096


# ---- exact value arrays (float64, or object arrays holding Fractions) ----

def as_obj(a) -> np.ndarray:
    """`a` as an object array of Fractions (exact)."""
    a = np.asarray(a)
    if a.dtype == object and set(map(type, a.ravel())) <= {Fraction}:
        return a.copy()  # already Fractions: nothing to rebuild
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [Fraction(v) for v in a.ravel().tolist()] if a.dtype != object else \
        [v if isinstance(v, Fraction) else Fraction(v) for v in a.ravel()]
    return out


def zeros(shape, obj=False) -> np.ndarray:
    if not obj:
        return np.zeros(shape)
    out = np.empty(shape, dtype=object)
    out.fill(Fraction(0))
    return out


def unify(*arrays) -> list[np.ndarray]:
    """The arrays with one dtype: object (Fractions) if any is, else float64."""
    if any(np.asarray(a).dtype == object for a in arrays):
        return [as_obj(a) for a in arrays]
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def take(a, col) -> np.ndarray:
    """a[col], exact zero where col < 0."""
    ok = col >= 0
    out = a[np.where(ok, col, 0)]
    if not ok.all():
        out = out.copy()
        out[~ok] = Fraction(0) if out.dtype == object else 0.0
    return out


def put(acc, mask, vals) -> np.ndarray:
    """acc with acc[mask] = vals (dtypes unified)."""
    acc, vals = unify(acc, vals)
    acc = acc.copy()
    acc[mask] = vals
    return acc


def nonzero_mask(a) -> np.ndarray:
    if a.dtype != object:
        return a != 0
    return np.fromiter(map(bool, a.ravel()), dtype=bool, count=a.size).reshape(a.shape)  # exact


def _unique_inverse(s):
    """(unique values, inverse indices) of a 1-D exact array."""
    if s.dtype != object:
        return np.unique(s, return_inverse=True)
    seen: dict = {}
    inv = np.array([seen.setdefault(v, len(seen)) for v in s], dtype=np.int64)
    u = np.empty(len(seen), dtype=object)
    u[:] = list(seen)
    return u, inv


def pair_mul(table, vidx, s, sidx):
    """(table', vidx') with table'[vidx'] == table[vidx] * s[sidx] exactly: the products are taken
    once per distinct (table entry, scale) pair, e.g. kernel entry x channel scale."""
    if not len(vidx):
        return table[:0], vidx
    u, inv = _unique_inverse(s)
    if len(u) == 1 and u[0] == 1:
        return table, vidx
    key = vidx.astype(np.int64) * len(u) + inv[sidx]
    uk, new = np.unique(key, return_inverse=True)
    return _mul(table[uk // len(u)], u[uk % len(u)]), new.astype(np.int64)


def exact_sums(keys, vals):
    """(first index of each run of equal `keys`, exact sum of each run's `vals`); keys sorted."""
    first = np.concatenate(([True], keys[1:] != keys[:-1])) if len(keys) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    if len(starts) == len(keys):
        return starts, vals
    sizes = np.diff(np.append(starts, len(keys)))
    acc = vals[starts]
    for k in range(1, int(sizes.max())):  # one vectorised exact addition per run position
        g = sizes > k
        acc = put(acc, g, _add(acc[g], vals[starts[g] + k]))
    return starts, acc


# ---- matrices ----

class Mono:
    """Monomial matrix (n_out x n_in): row i is val[i] at column col[i], or zero when col[i] < 0;
    val None means ones. `fixed`: the values are constants of the lowering, no parameter of the
    model (default: only when val is None)."""

    __slots__ = ("n_in", "col", "val", "_ident", "fixed")

    def __init__(self, n_in, col, val=None, fixed=None):
        self.n_in, self.col, self.val = int(n_in), np.asarray(col, dtype=np.int64), val
        self._ident = None
        self.fixed = val is None if fixed is None else bool(fixed)

    @classmethod
    def identity(cls, n) -> "Mono":
        m = cls.__new__(cls)
        m.n_in, m.col, m.val, m._ident, m.fixed = n, np.arange(n), None, True, True
        return m

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.col), self.n_in

    def is_diag(self) -> bool:
        return len(self.col) == self.n_in and np.array_equal(self.col, np.arange(self.n_in))

    def is_identity(self) -> bool:
        if self._ident is None:
            self._ident = self.val is None and self.is_diag()
        return self._ident

    def values(self) -> np.ndarray:
        return np.ones(len(self.col)) if self.val is None else self.val

    def injective(self) -> bool:
        c = self.col[self.col >= 0]
        return len(np.unique(c)) == len(c)

    def coo(self):
        nz = self.col >= 0
        return np.flatnonzero(nz), self.col[nz], self.values()[nz]

    def dense(self) -> np.ndarray:
        r, c, v = self.coo()
        out = zeros(self.shape, v.dtype == object)
        out[r, c] = v
        return out


KINDS = ("weights", "fixed", "free")  # what a Sp's table entries are (module docstring)


class Sp:
    """Sparse matrix in CSR form: row i holds columns indices[indptr[i]:indptr[i+1]] (sorted,
    distinct) with values table[vidx[...]]; `kind` is one of KINDS (module docstring)."""

    __slots__ = ("shape", "indptr", "indices", "vidx", "table", "kind")

    def __init__(self, shape, indptr, indices, vidx, table, kind="free"):
        self.shape = (int(shape[0]), int(shape[1]))
        self.indptr, self.indices, self.vidx = indptr, indices, vidx
        self.table, self.kind = table, kind

    @classmethod
    def from_rows(cls, shape, rows, cols, vidx, table, kind="free") -> "Sp":
        """From entries sorted by row, columns sorted within each row."""
        indptr = np.zeros(int(shape[0]) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=int(shape[0])), out=indptr[1:])
        return cls(shape, indptr, np.asarray(cols, np.int64), np.asarray(vidx, np.int64), table, kind)

    @classmethod
    def from_coo(cls, shape, rows, cols, vals, kind="free") -> "Sp":
        """From (row, column, exact value) triples in any order; duplicates summed exactly
        (a sum of parameters is "free": only "fixed" stays "fixed")."""
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        starts, vals = exact_sums(rows * max(int(shape[1]), 1) + cols, vals)
        return cls.from_rows(shape, rows[starts], cols[starts], np.arange(len(starts)), vals,
                             "fixed" if kind == "fixed" else "free")

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def values(self) -> np.ndarray:
        return self.table[self.vidx]

    def coo(self):
        return self.rows(), self.indices, self.values()

    def dense(self) -> np.ndarray:
        r, c, v = self.coo()
        out = zeros(self.shape, self.table.dtype == object)
        out[r, c] = v
        return out


def _small(*dims) -> bool:
    return math.prod(int(d) for d in dims) <= DENSE_FOLD_LIMIT


def dense_of(M) -> np.ndarray:
    return M if isinstance(M, np.ndarray) else M.dense()


def coo_of(M):
    if isinstance(M, np.ndarray):
        r, c = np.nonzero(nonzero_mask(M.ravel()).reshape(M.shape))
        return r, c, M[r, c]
    return M.coo()


def _scaled_kind(kind: str, fixed: bool) -> str:
    """The kind of a Sp whose rows were scaled by values that are `fixed` (lowering constants)
    or not: a weights table stays one (the folded products are the parameters)."""
    return kind if fixed or kind == "weights" else "free"


def _fixed(M) -> bool:
    """Whether a pending matrix holds only constants of the lowering."""
    return M.fixed if isinstance(M, Mono) else isinstance(M, Sp) and M.kind == "fixed"


def select(M, col, val=None, fixed=False):
    """Mono(col, val) @ M: row i of the result is val[i] times row col[i] of M (zero for -1).
    `fixed`: val holds constants of the lowering (-1 of a subtraction), not of the model."""
    col = np.asarray(col, dtype=np.int64)
    n = M.shape[0]
    if val is None and len(col) == n and np.array_equal(col, np.arange(n)):
        return M
    ok = col >= 0
    cc = np.where(ok, col, 0)
    if isinstance(M, Mono):
        new = np.where(ok, M.col[cc], -1)
        if val is None and M.val is None:
            return Mono(M.n_in, new)
        v = M.values()[cc] if val is None else _mul(val, M.values()[cc])
        return Mono(M.n_in, new, v, M.fixed and (val is None or fixed))
    if isinstance(M, np.ndarray):
        out = take(M, col)
        return out if val is None else _mul(out, np.asarray(val)[:, None])
    counts = np.diff(M.indptr)
    newc = np.where(ok, counts[cc], 0)
    indptr = np.zeros(len(col) + 1, dtype=np.int64)
    np.cumsum(newc, out=indptr[1:])
    row = np.repeat(np.arange(len(col)), newc)
    pos = M.indptr[cc][row] + (np.arange(indptr[-1]) - indptr[row])
    table, vidx, kind = M.table, M.vidx[pos], M.kind
    if val is not None:
        table, vidx = pair_mul(table, vidx, np.asarray(val), row)
        kind = _scaled_kind(kind, fixed)
    return Sp((len(col), M.shape[1]), indptr, M.indices[pos], vidx, table, kind)


def _sorted_rows(rows, cols) -> bool:
    return bool(np.all((np.diff(cols) > 0) | (np.diff(rows) > 0)))


def left(K, M):
    """K @ M for the matrix K (dense or Sp) of a new op and a pending matrix M, or None when the
    exact product would be a big rational matrix product."""
    if isinstance(M, Mono):
        if M.is_identity():
            return K
        if isinstance(K, np.ndarray):
            if M.is_diag():  # scales K's columns (as a chain folds a batch norm before a layer)
                return _mul(K, M.values()[None, :])
            if not M.injective():
                return _dot(K, M.dense()) if _small(K.shape[0], K.shape[1], M.n_in) else None
            nz = M.col >= 0
            cols = K[:, nz] if M.val is None else _mul(K[:, nz], M.val[nz][None, :])
            if K.shape[0] * M.n_in <= max(2 * K.size, DENSE_FOLD_LIMIT):
                out = zeros((K.shape[0], M.n_in), cols.dtype == object)
                out[:, M.col[nz]] = cols
                return out
            # a few columns of a wide base: keep the product sparse
            r, c = np.nonzero(np.ones(cols.shape, dtype=bool))
            return Sp.from_coo((K.shape[0], M.n_in), r, M.col[nz][c], cols[r, c])
        rows = K.rows()
        new = M.col[K.indices]
        keep = new >= 0
        rows, new, vidx, old = rows[keep], new[keep], K.vidx[keep], K.indices[keep]
        table, kind = K.table, K.kind
        if M.val is not None:
            table, vidx = pair_mul(table, vidx, M.val, old)
            kind = _scaled_kind(kind, M.fixed)
        if M.injective():
            if not _sorted_rows(rows, new):
                order = np.lexsort((new, rows))
                rows, new, vidx = rows[order], new[order], vidx[order]
            return Sp.from_rows((K.shape[0], M.n_in), rows, new, vidx, table, kind)
        return Sp.from_coo((K.shape[0], M.n_in), rows, new, table[vidx], kind)
    if not _small(K.shape[0], K.shape[1], M.shape[1]):
        return None
    return _dot(dense_of(K), dense_of(M))


def apply(K, b):
    """Exact K @ b, or None when K is a big sparse matrix (the caller then materialises)."""
    if isinstance(K, np.ndarray):
        return _dot(K, b)
    if _small(K.shape[0], K.shape[1]):
        return _dot(K.dense(), b)
    return None


def madd(A, B):
    """Exact A + B (same shape)."""
    if isinstance(A, np.ndarray) and isinstance(B, np.ndarray):
        return _add(A, B)
    if isinstance(A, Mono) and isinstance(B, Mono):
        a, b = A.col >= 0, B.col >= 0
        both = a & b
        if np.array_equal(A.col[both], B.col[both]):
            col = np.where(a, A.col, B.col)
            if not both.any() and A.val is None and B.val is None:
                return Mono(A.n_in, col)
            av, bv = take(A.values(), np.where(a, np.arange(len(a)), -1)), \
                take(B.values(), np.where(b, np.arange(len(b)), -1))
            return Mono(A.n_in, col, _add(av, bv), A.fixed and B.fixed)
    if isinstance(A, np.ndarray) or isinstance(B, np.ndarray):
        if _small(*A.shape):
            return _add(dense_of(A), dense_of(B))
    (ra, ca, va), (rb, cb, vb) = coo_of(A), coo_of(B)
    va, vb = unify(va, vb)
    return Sp.from_coo(A.shape, np.concatenate((ra, rb)), np.concatenate((ca, cb)),
                       np.concatenate((va, vb)), "fixed" if _fixed(A) and _fixed(B) else "free")


def to_param(M, alone: bool):
    """The IR parameter of a matrix: dense `Const` for a dense map (and a small monomial one that
    is an affine node's only term), else `Sparse`, with its `tie`: a weights table's index per
    stored entry (exact zeros kept: a zero kernel entry is still a parameter), -1 everywhere for
    lowering constants, none for anything else (exact zeros dropped)."""
    if isinstance(M, np.ndarray):
        return Const(M)
    if isinstance(M, Mono):
        if alone and M.shape[0] * M.shape[1] <= DENSE_EMIT_LIMIT:
            return Const(M.dense())
        r, c, v = M.coo()
        keep = nonzero_mask(v)
        indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(r[keep], minlength=M.shape[0]), out=indptr[1:])
        return Sparse(M.shape, indptr, c[keep], v[keep],
                      np.full(int(keep.sum()), -1) if M.fixed else None)
    if M.kind == "weights":  # the table made exact once: float64 values index as floats
        return Sparse(M.shape, M.indptr, M.indices, exact_array(M.table)[M.vidx], M.vidx)
    keep = nonzero_mask(M.table)[M.vidx]
    indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(M.rows()[keep], minlength=M.shape[0]), out=indptr[1:])
    return Sparse(M.shape, indptr, M.indices[keep], M.table[M.vidx[keep]],
                  np.full(int(keep.sum()), -1) if M.kind == "fixed" else None)


# ---- the pending affine map of a tensor ----

class Lin:
    """A tensor of shape `shape` (C-order flattened) equal to Σ terms[x] @ x + b over IR values x.
    Immutable: every method returns a new map."""

    __slots__ = ("shape", "terms", "b", "n")

    def __init__(self, shape, terms: dict, b=None):
        self.shape = tuple(map(int, shape))
        self.terms, self.b = terms, b
        self.n = math.prod(self.shape)

    @classmethod
    def of(cls, base: str, shape) -> "Lin":
        """The IR value `base` itself."""
        lin = cls.__new__(cls)
        lin.shape = tuple(map(int, shape))
        lin.n = math.prod(lin.shape)
        lin.terms, lin.b = {base: Mono.identity(lin.n)}, None
        return lin

    def base(self) -> str | None:
        """The IR value this map is, unchanged (identity, no shift), or None."""
        if len(self.terms) == 1 and self.b is None:
            (x, M), = self.terms.items()
            if isinstance(M, Mono) and M.is_identity():
                return x
        return None

    def cheap(self) -> bool:
        """Only monomial terms: copying the map into several consumers costs nothing."""
        return all(isinstance(M, Mono) for M in self.terms.values())

    def plain(self) -> bool:
        """A pure selection: every element is +-1 times one element of an IR value that no other
        element reads, or an exact zero (no other constant). An op composed with a plain map
        keeps its own terms, their magnitudes and their number per row (the rounding-error
        bound of `load_onnx(float_ops=True)` relies on it: a merged column |w1 + w2| < |w1| +
        |w2|, or a folded constant, would shrink the bound below the float error)."""
        if self.b is not None and nonzero_mask(np.asarray(self.b)).any():
            return False
        hits = np.zeros(self.n, dtype=np.int64)
        for M in self.terms.values():
            if not isinstance(M, Mono) or len(M.col) != self.n or not M.injective():
                return False
            on = M.col >= 0
            if M.val is not None and not np.all(np.abs(M.values()[on]) == 1):
                return False
            hits += on
        return bool(np.all(hits <= 1))

    def reshaped(self, shape) -> "Lin":
        return Lin(shape, self.terms, self.b)

    def select(self, col, val=None, shape=None, fixed=False) -> "Lin":
        """Element i of the result is val[i] * element col[i] (zero where col[i] < 0); `fixed`:
        val holds constants of the lowering, not of the model (module docstring)."""
        col = np.asarray(col, dtype=np.int64)
        b = None
        if self.b is not None:
            b = take(self.b, col)
            b = b if val is None else _mul(b, val)
        return Lin(shape if shape is not None else (len(col),),
                   {x: select(M, col, val, fixed) for x, M in self.terms.items()}, b)

    def scale(self, c, fixed=False) -> "Lin":
        """Elementwise product with the exact array c (of n elements); `fixed` as in select."""
        c = np.asarray(c)
        if np.all(c == 1):
            return self
        return self.select(np.arange(self.n), c, self.shape, fixed)

    def shift(self, c) -> "Lin":
        """Elementwise sum with the exact array c (of n elements)."""
        a = np.asarray(c)
        if not np.any(a) and (self.base() is not None or a.dtype == object
                              or not np.signbit(a).any()):
            return self  # + 0 changes nothing; a -0.0 bias of a layer keeps the file's bits
        return Lin(self.shape, self.terms, c if self.b is None else _add(self.b, c))

    def then(self, K, shape) -> "Lin | None":
        """K @ self (K dense or Sp), or None when a product would not stay exact and cheap."""
        terms = {}
        for x, M in self.terms.items():
            P = left(K, M)
            if P is None:
                return None
            terms[x] = P
        if len(terms) > 1:
            # each term repeats K's entries: a map read through several values (a max-pool's
            # relu tree, a sum) is cheaper as a node of its own once K would be copied
            size = sum(P.size if isinstance(P, np.ndarray) else
                       len(P.col) if isinstance(P, Mono) else P.nnz for P in terms.values())
            if size > max(2 * (K.size if isinstance(K, np.ndarray) else K.nnz),
                          DENSE_FOLD_LIMIT):
                return None
        b = None
        if self.b is not None:
            b = apply(K, self.b)
            if b is None:
                return None
        return Lin(shape, terms, b)

    def plus(self, other: "Lin") -> "Lin":
        terms = dict(self.terms)
        for x, M in other.terms.items():
            terms[x] = madd(terms[x], M) if x in terms else M
        if self.b is None or other.b is None:
            b = self.b if other.b is None else other.b
        else:
            b = _add(self.b, other.b)
        return Lin(self.shape, terms, b)

    def neg(self) -> "Lin":
        return self.scale(np.full(self.n, -1.0), fixed=True)
