"""Lower a plain chain of layers (dense, batch norm, activations) to IR, exactly as the ONNX
frontend lowers the same chain, so one network gives one IR from every source.

The PyTorch and Keras frontends turn their files into a list of `Dense` / `BatchNorm` /
`Activation` records (float64 arrays, exact for float32 sources) and call `lower`. The folding
(`_Map`), the batch-norm formula (`fold_batchnorm`) and the node naming (input `x`, then `a1, r1,
a2, ...`, `s<k>` for sigmoid) are the ONNX frontend's own, so the IR is bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sigmoid

from .onnx_frontend import _Map, fold_batchnorm

ACTIVATIONS = ("relu", "sigmoid", "softmax")


@dataclass(frozen=True, eq=False)
class Dense:
    """y = weight @ x + bias; weight (out, in) float64, bias (out,) or None.

    `keys` are the source names of the parameters (state-dict keys, Keras weight paths), kept as
    provenance; `where` names the element in messages (e.g. "key '0.weight'")."""

    weight: np.ndarray
    bias: np.ndarray | None
    where: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Inference-mode batch normalisation over the vector: gamma * (x - mean) / sqrt(var + eps)
    + beta. `eps` is the value the runtime adds (float32-rounded for float32 models)."""

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float
    where: str
    prefix: str = ""  # state-dict module prefix, for write-back


@dataclass(frozen=True)
class Activation:
    kind: str  # one of ACTIVATIONS
    where: str


Layer = Dense | BatchNorm | Activation


def runtime_eps(eps: float, dtype) -> float:
    """The epsilon a runtime adds to float `dtype` variances: float32-rounded for float32 (and
    narrower) parameters, as PyTorch, Keras and ONNX (a float32 attribute) all apply it."""
    dt = np.dtype(dtype)
    return float(np.float32(eps)) if dt.kind == "f" and dt.itemsize <= 4 else float(eps)


@dataclass
class _State:
    source: str
    base: str = "x"
    layer: int = 0
    nodes: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # layers folded into the current map
    meta: dict = field(default_factory=dict)


def lower(layers: list, in_dim: int, source: str, meta: dict) -> Graph:
    """Checked IR graph of the chain `layers` applied to an input vector of `in_dim` reals.

    Raises:
        InputError: a dense or batch-norm layer does not take the size the layer before gives
            (the message names the layer's `where`), or a size is not positive.
        UnsupportedError: a softmax that is not the last layer, or an unknown activation.
    """
    if in_dim <= 0:
        raise InputError(f"{source}: input size {in_dim} is not positive")
    st = _State(source, meta=dict(meta))
    st.nodes.append(Input("x", int(in_dim)))
    m, dim = _Map(int(in_dim)), int(in_dim)
    dropped = False
    for i, L in enumerate(layers):
        if dropped:
            raise UnsupportedError(f"{source}: {layers[i - 1].where} (softmax) is followed by "
                                   "more layers; a softmax is only supported as the last layer")
        match L:
            case Dense():
                W = np.asarray(L.weight, dtype=np.float64)
                if W.ndim != 2 or W.shape[1] != dim or W.shape[0] == 0:
                    raise InputError(f"{source}: {L.where} has shape {list(W.shape)}, but the "
                                     f"layer before gives {dim} values (shapes do not chain)")
                if L.bias is not None and np.shape(L.bias) != (W.shape[0],):
                    raise InputError(f"{source}: {L.where}: bias shape {list(np.shape(L.bias))} "
                                     f"does not match {W.shape[0]} outputs")
                nxt = m.then(W)
                if nxt is None:  # too large to fold exactly: emit what is pending first
                    _emit(st, m)
                    nxt = _Map(dim).then(W)
                m, dim = nxt, W.shape[0]
                if L.bias is not None:
                    m = m.shift(np.asarray(L.bias, dtype=np.float64))
                st.pending.append(L)
            case BatchNorm():
                C = np.shape(L.gamma)
                if any(np.shape(a) != (dim,) for a in (L.gamma, L.beta, L.mean, L.var)):
                    raise InputError(f"{source}: {L.where} normalises {C[0] if C else '?'} "
                                     f"channels, but the layer before gives {dim} values "
                                     "(shapes do not chain)")
                if np.any(np.asarray(L.var, dtype=np.float64) + L.eps <= 0):
                    raise InputError(f"{source}: {L.where}: running variance + eps must be positive")
                s, t = fold_batchnorm(L.gamma, L.beta, L.mean, L.var, L.eps)
                m = m.scale(s).shift(t)
                st.pending.append(L)
            case Activation(kind="softmax"):
                dropped = True
            case Activation(kind="relu" | "sigmoid"):
                src = _emit(st, m)
                if not (st.nodes and st.nodes[-1].name == src == f"a{st.layer}"):
                    st.layer += 1  # no affine of its own in this layer (as the ONNX frontend)
                cls, prefix = (Relu, "r") if L.kind == "relu" else (Sigmoid, "s")
                name = f"{prefix}{st.layer}"
                st.nodes.append(cls(name, src))
                st.base, m = name, _Map(dim)
            case _:
                raise UnsupportedError(f"{source}: {getattr(L, 'where', L)}: unsupported layer")
    out = _emit(st, m)
    if dropped:
        # outputs are the logits: same argmax and pairwise order, not the same values
        st.meta["dropped_softmax"] = "true"
    return Graph(st.nodes, (out,), st.meta).check()


def _emit(st: _State, m: _Map) -> str:
    """IR value holding the pending map applied to the current base (a new Affine unless it is
    the identity), recording which source layers it folds in meta["<name>.keys"]."""
    if m.is_identity:  # only an exact-identity batch norm folds away like this
        st.pending = []
        return st.base
    st.layer += 1
    name = f"a{st.layer}"
    b = np.zeros(m.n_out) if m.b is None else m.b
    st.nodes.append(Affine(name, st.base, Const(m.dense()), Const(b)))
    keys = [k for L in st.pending if isinstance(L, Dense) for k in L.keys]
    if keys:
        st.meta[f"{name}.keys"] = ",".join(keys)
    bns = [L for L in st.pending if isinstance(L, BatchNorm)]
    if bns and any(L.prefix for L in bns):
        st.meta[f"{name}.batchnorm"] = ",".join(L.prefix for L in bns)
        st.meta[f"{name}.batchnorm_eps"] = ",".join(repr(L.eps) for L in bns)
    st.pending = []
    st.base = name
    return name


def checked(a, source: str, what: str) -> np.ndarray:
    """A float64 array of a float/int source array (exact for float32), refusing NaN/Inf."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{source}: {what} has dtype {a.dtype}, not a number type")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{source}: {what} holds NaN or Inf")
    return a
