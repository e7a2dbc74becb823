"""PyTorch frontend: state dicts (.pt/.pth via torch, .safetensors via numpy) and nn.Sequential.

Loading never executes code from a file: `.pt` files are read with
`torch.load(..., weights_only=True)` (torch's restricted unpickler: tensors and plain
containers only) and `.safetensors` files with `safetensors`' numpy API, which needs no torch.

A state dict has no architecture, only named tensors. Modules are the key prefixes in key order
(`0.weight`, `0.bias` -> module `0`): a 2-D `weight` (and optional `bias`) is a Linear layer,
`running_mean`/`running_var` (with optional 1-D `weight`/`bias`) a BatchNorm1d, folded into the
affine map exactly as the ONNX frontend folds BatchNormalization. By default a ReLU follows every
Linear layer but the last; `--arch` overrides this (see `nnsmt.frontends.arch`). safetensors files
do not keep key order, so their modules are ordered naturally by prefix (`2` before `10`),
unless the file's metadata `nnsmt_key_order` (written by `save_state_dict_like`) gives it.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Mapping

import numpy as np

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Affine, Const, Graph

from .arch import DEFAULT_BN_EPS, LayerSpec, format_arch, parse_arch
from .sequential import Activation, BatchNorm, Dense, checked, lower, runtime_eps

TORCH_HINT = 'pip install "nnsmt[torch]"'
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_NESTED = ("state_dict", "model_state_dict", "model")  # common checkpoint layouts


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _need_torch(path, why="reading a PyTorch .pt/.pth file"):
    try:
        import torch
    except ImportError:
        raise InputError(f"{path}: {why} needs torch: {TORCH_HINT} "
                         "(or save the weights as .safetensors)") from None
    return torch


# ---- reading ----

def _torch_load(path):
    """(state dict of tensors, container key or None) of a .pt file, never running its code."""
    torch = _need_torch(path)
    if not Path(path).is_file():
        raise InputError(f"{path}: {'not a file' if Path(path).exists() else 'no such file'}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        detail = next((ln.strip() for ln in msg.splitlines() if "Unsupported" in ln
                       or "WeightsUnpickler error" in ln), "")
        if "Weights only load failed" in msg or detail:
            raise InputError(f"{path}: refused: the file holds objects other than tensors, which "
                             f"would run code to load (torch.load weights_only=True): "
                             f"{_one_line(detail or msg).split('. Please')[0][:300]}; save "
                             "model.state_dict() instead") from None
        raise InputError(f"{path}: not a readable PyTorch file: {_one_line(msg)[:300]}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            AttributeError, TypeError, IndexError, MemoryError) as e:
        raise InputError(f"{path}: not a readable PyTorch file (truncated or corrupt?): "
                         f"{type(e).__name__}: {_one_line(e).split('. ')[0][:300]}") from None
    if isinstance(obj, Mapping) and not _all_tensors(obj, torch):
        for k in _NESTED:  # a training checkpoint: {"model_state_dict": {...}, "epoch": 3}
            if isinstance(obj.get(k), Mapping) and _all_tensors(obj[k], torch):
                return OrderedDict(obj[k]), k
    if not isinstance(obj, Mapping):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a state dict "
                         "(save model.state_dict())")
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise InputError(f"{path}: key {k!r} holds a {type(v).__name__}, not a tensor")
    return OrderedDict(obj), None


def _all_tensors(d, torch) -> bool:
    return len(d) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                              for k, v in d.items())


def _natural(key: str):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", key) if t]


def _safetensors_load(path):
    try:
        from safetensors import safe_open
    except ImportError:
        raise InputError(f"{path}: reading .safetensors needs safetensors: pip install "
                         "safetensors") from None
    if not Path(path).is_file():
        raise InputError(f"{path}: {'not a file' if Path(path).exists() else 'no such file'}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors' Rust errors (truncated header, bad dtype) have no base
        raise InputError(f"{path}: not a readable safetensors file (truncated or corrupt?): "
                         f"{_one_line(e)[:300]}") from None
    order = None
    if "nnsmt_key_order" in meta:
        try:
            order = json.loads(meta["nnsmt_key_order"])
        except json.JSONDecodeError:
            order = None
    if not (isinstance(order, list) and sorted(order) == sorted(arrays)):
        prefixes = sorted({k.rpartition(".")[0] for k in arrays}, key=_natural)
        rank = {p: i for i, p in enumerate(prefixes)}
        order = sorted(arrays, key=lambda k: (rank[k.rpartition(".")[0]], _suffix_rank(k)))
    return OrderedDict((k, arrays[k]) for k in order)


def _suffix_rank(key):
    s = key.rpartition(".")[2]
    return _BN_KEYS.index(s) if s in _BN_KEYS else len(_BN_KEYS)


def _read_raw(path):
    """(OrderedDict key -> tensor or array, format, container key) of a state-dict file."""
    ext = Path(str(path)).suffix.lower()
    if ext == ".safetensors":
        return _safetensors_load(path), "safetensors", None
    if ext in (".pt", ".pth", ".bin", ".ckpt"):
        sd, container = _torch_load(path)
        return sd, "pytorch", container
    raise InputError(f"{path}: not a state dict file (.pt, .pth, .safetensors)")


def _to_numpy(v, source, key) -> np.ndarray:
    """numpy array of a tensor/array value; half and bfloat16 widen to float32 (exactly)."""
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "detach"):  # a torch tensor
        import torch
        t = v.detach().cpu()
        if t.is_floating_point() and t.dtype in (torch.bfloat16, torch.float16):
            t = t.to(torch.float32)
        try:
            return t.numpy()
        except (TypeError, RuntimeError) as e:
            raise InputError(f"{source}: key {key!r} holds an unsupported tensor ({t.dtype}): "
                             f"{_one_line(e)}") from None
    try:
        return np.asarray(v)
    except Exception:
        raise InputError(f"{source}: key {key!r} holds a {type(v).__name__}, not a tensor") from None


# ---- modules and layers ----

def _modules(arrays: Mapping[str, np.ndarray], source: str) -> list[tuple[str, str, dict]]:
    """[(kind, prefix, {suffix: key})] in key order; kind is "linear" or "batchnorm"."""
    groups: dict[str, dict[str, str]] = {}
    for key in arrays:
        if not isinstance(key, str):
            raise InputError(f"{source}: key {key!r} is not a string")
        prefix, _, suffix = key.rpartition(".")
        groups.setdefault(prefix, {})[suffix] = key
    mods = []
    for prefix, g in groups.items():
        if "running_mean" in g or "running_var" in g:
            extra = [g[s] for s in g if s not in _BN_KEYS]
            if extra:
                raise UnsupportedError(f"{source}: key {extra[0]!r} is not a BatchNorm1d "
                                       "parameter")
            for s in ("running_mean", "running_var"):
                if s not in g:
                    raise InputError(f"{source}: key {prefix + '.' + s!r} is missing beside "
                                     f"{g.get('running_mean') or g.get('running_var')!r}")
            C = arrays[g["running_mean"]].shape
            for s in ("weight", "bias", "running_var"):
                if s in g and arrays[g[s]].shape != C or len(C) != 1:
                    raise InputError(f"{source}: key {g.get(s, g['running_mean'])!r} has shape "
                                     f"{list(arrays[g.get(s, g['running_mean'])].shape)}; a "
                                     f"BatchNorm1d's parameters are vectors of one length")
            mods.append(("batchnorm", prefix, g))
        elif "weight" in g and set(g) <= {"weight", "bias"}:
            w = arrays[g["weight"]]
            if w.ndim != 2:
                raise UnsupportedError(
                    f"{source}: key {g['weight']!r} has shape {list(w.shape)}: only Linear "
                    "(2-D weight) and BatchNorm1d (with running statistics) modules are supported")
            if "bias" in g and arrays[g["bias"]].shape != (w.shape[0],):
                raise InputError(f"{source}: key {g['bias']!r} has shape "
                                 f"{list(arrays[g['bias']].shape)}, but {g['weight']!r} has "
                                 f"{w.shape[0]} outputs")
            mods.append(("linear", prefix, g))
        else:
            odd = [k for s, k in g.items() if s not in ("weight", "bias")] or list(g.values())
            raise UnsupportedError(f"{source}: key {odd[0]!r} is not a parameter of a Linear or "
                                   "BatchNorm1d module")
    if not mods:
        raise InputError(f"{source}: the state dict is empty")
    return mods


def _default_arch(mods) -> tuple[LayerSpec, ...]:
    """Linear and batchnorm layers in key order, a ReLU before every Linear but the first."""
    out, seen_linear = [], False
    for kind, _, _ in mods:
        if kind == "linear" and seen_linear:
            out.append(LayerSpec("relu"))
        seen_linear |= kind == "linear"
        out.append(LayerSpec(kind))
    return tuple(out)


def _layers(arrays, mods, spec, source) -> list:
    """Bind the spec's linear/batchnorm entries to the modules, in order."""
    layers, it = [], iter(mods)
    n_mods = len(mods)
    for i, ls in enumerate(spec):
        where = ls.where or f"layer {i + 1}"
        if ls.type in ("relu", "sigmoid", "softmax"):
            layers.append(Activation(ls.type, f"{where} ({ls.type})"))
            continue
        if ls.type == "identity":
            continue
        mod = next(it, None)
        if mod is None:
            raise InputError(f"{source}: {where} ({ls.type}) has no weights left: the state dict "
                             f"has {n_mods} Linear/BatchNorm1d modules")
        kind, prefix, g = mod
        first = next(iter(g.values()))
        if kind != ls.type:
            raise InputError(f"{source}: {where} is {ls.type}, but key {first!r} belongs to a "
                             f"{'Linear' if kind == 'linear' else 'BatchNorm1d'} module "
                             "(spec and state dict do not match)")
        if ls.name is not None and ls.name != prefix:
            raise InputError(f"{source}: {where} names module {ls.name!r}, but the next module "
                             f"in the state dict is {prefix!r} (key {first!r})")
        arr = {s: checked(arrays[k], source, f"key {k!r}") for s, k in g.items()
               if s != "num_batches_tracked"}
        if kind == "linear":
            keys = tuple(g[s] for s in ("weight", "bias") if s in g)
            layers.append(Dense(arr["weight"], arr.get("bias"), f"key {g['weight']!r}", keys))
        else:
            C = arr["running_mean"].shape
            eps = runtime_eps(DEFAULT_BN_EPS if ls.eps is None else ls.eps,
                              np.asarray(arrays[g["running_var"]]).dtype)
            layers.append(BatchNorm(arr.get("weight", np.ones(C)), arr.get("bias", np.zeros(C)),
                                    arr["running_mean"], arr["running_var"], eps,
                                    f"key {g['running_mean']!r}", prefix))
    rest = next(it, None)
    if rest is not None:
        raise InputError(f"{source}: key {next(iter(rest[2].values()))!r} is not used by the "
                         f"arch spec (it lists {sum(ls.type in ('linear', 'batchnorm') for ls in spec)}"
                         f" of the {n_mods} Linear/BatchNorm1d modules)")
    return layers


def _lower_arrays(arrays, source, arch, meta) -> Graph:
    mods = _modules(arrays, source)
    if arch is None:
        spec = _default_arch(mods)
    elif isinstance(arch, tuple) and all(isinstance(a, LayerSpec) for a in arch):
        spec = arch
    else:
        spec = parse_arch(arch)
    layers = _layers(arrays, mods, spec, source)
    first = next(L for L in layers if isinstance(L, (Dense, BatchNorm)))
    in_dim = first.weight.shape[1] if isinstance(first, Dense) else len(first.mean)
    meta = {"source": source, **meta, "input_shape": f"1x{in_dim}", "arch": format_arch(spec)}
    return lower(layers, in_dim, source, meta)


def load_state_dict(path_or_dict, arch=None) -> Graph:
    """Load a PyTorch state dict as an exact IR graph.

    Args:
        path_or_dict: a `.pt`/`.pth` file written by `torch.save(model.state_dict(), ...)` (a
            training checkpoint with a `state_dict`/`model_state_dict` entry also works), a
            `.safetensors` file, or a mapping of names to tensors or numpy arrays.
        arch: None (Linear/BatchNorm1d in key order, ReLU between Linear layers), a spec string
            such as "linear,relu,linear,sigmoid", JSON text, a .json/.yaml path, or a list;
            see `nnsmt.frontends.arch`.

    Returns:
        A checked `Graph` named like the ONNX frontend's (`x`, `a1`, `r1`, ..., `s<k>`). `meta`
        has source, format ("pytorch" or "safetensors"), input_shape, arch (the effective spec)
        and, for each affine node, `<name>.keys` (the Linear keys it holds) and
        `<name>.batchnorm` / `<name>.batchnorm_eps` when a BatchNorm1d is folded into it.
        BatchNorm eps is not stored in a state dict: PyTorch's default 1e-5 unless the spec
        gives one, applied at the parameters' precision (float32-rounded for float32).

    Raises:
        InputError: unreadable, truncated or unsafe file (weights_only refusal), torch missing
            for .pt, shapes that do not chain, a spec that does not match the keys, NaN/Inf.
        UnsupportedError: keys of other module types (convolutions, ...).
    """
    if isinstance(path_or_dict, Mapping):
        source = "<state dict>"
        arrays = OrderedDict((k, _to_numpy(v, source, k)) for k, v in path_or_dict.items())
        fmt = "state-dict"
    else:
        source = str(path_or_dict)
        raw, fmt, _ = _read_raw(path_or_dict)
        arrays = OrderedDict((k, _to_numpy(v, source, k)) for k, v in raw.items())
    return _lower_arrays(arrays, source, arch, {"format": fmt})


# ---- nn.Module ----

def _leaf_layers(name, mod, nn, out, source):
    where = f"module {name or type(mod).__name__!r} ({type(mod).__name__})"
    if isinstance(mod, nn.Sequential):
        for child_name, child in mod.named_children():
            _leaf_layers(f"{name}.{child_name}" if name else child_name, child, nn, out, source)
    elif isinstance(mod, nn.Linear):
        w = checked(mod.weight.detach().cpu().numpy(), source, where + " weight")
        b = None if mod.bias is None else checked(mod.bias.detach().cpu().numpy(), source,
                                                  where + " bias")
        p = f"{name}." if name else ""
        keys = (p + "weight",) + ((p + "bias",) if mod.bias is not None else ())
        out.append(Dense(w, b, where, keys))
    elif isinstance(mod, nn.BatchNorm1d):
        if mod.running_mean is None or mod.running_var is None:
            raise UnsupportedError(f"{source}: {where} has no running statistics "
                                   "(track_running_stats=False); only inference-mode batch "
                                   "norm with running statistics is supported")
        mean = checked(mod.running_mean.detach().cpu().numpy(), source, where + " running_mean")
        var = checked(mod.running_var.detach().cpu().numpy(), source, where + " running_var")
        C = mean.shape
        g = np.ones(C) if mod.weight is None else checked(mod.weight.detach().cpu().numpy(),
                                                          source, where + " weight")
        b = np.zeros(C) if mod.bias is None else checked(mod.bias.detach().cpu().numpy(),
                                                         source, where + " bias")
        eps = runtime_eps(mod.eps, mod.running_var.detach().cpu().numpy().dtype)
        out.append(BatchNorm(g, b, mean, var, eps, where, name))
    elif isinstance(mod, (nn.ReLU, nn.Sigmoid)):
        out.append(Activation("relu" if isinstance(mod, nn.ReLU) else "sigmoid", where))
    elif isinstance(mod, nn.Softmax):
        if mod.dim not in (None, 1, -1):  # over the batch axis it is another function
            raise UnsupportedError(f"{source}: {where} normalises over dim {mod.dim}; only a "
                                   "softmax over the features (dim 1 or -1) is supported")
        out.append(Activation("softmax", where))
    elif isinstance(mod, (nn.Flatten, nn.Dropout, nn.Identity)):
        pass  # no-ops on the flattened vector at inference
    else:
        raise UnsupportedError(f"{source}: {where} is not supported (Linear, BatchNorm1d, ReLU, "
                               "Sigmoid, Softmax, Flatten, Dropout, Identity)")


def _traced_layers(module, torch, nn, out, source):
    """Layers of a module whose forward is a plain chain, read from its torch.fx trace."""
    F = torch.nn.functional
    fns = {torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
           torch.softmax: "softmax", F.softmax: "softmax", torch.flatten: None, F.dropout: None}
    methods = {"relu": "relu", "sigmoid": "sigmoid", "softmax": "softmax", "flatten": None}
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as e:
        raise UnsupportedError(f"{source}: its forward cannot be traced as a plain chain of "
                               f"layers: {_one_line(e)[:200]}") from None
    prev = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if prev is not None:
                raise UnsupportedError(f"{source}: forward takes more than one input")
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise UnsupportedError(f"{source}: forward does not return its last layer")
            break
        if not node.args or node.args[0] is not prev or len(node.users) > 1:
            raise UnsupportedError(f"{source}: forward is not a plain chain at {node.name!r} "
                                   f"({node.op} {node.target})")
        if node.op == "call_module":
            _leaf_layers(node.target, gm.get_submodule(node.target), nn, out, source)
        elif node.op == "call_function" and node.target in fns or \
                node.op == "call_method" and node.target in methods:
            fn = node.op == "call_function"
            kind = (fns if fn else methods)[node.target]
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else -1)
            if kind == "softmax" and dim not in (1, -1):
                raise UnsupportedError(f"{source}: {node.name!r} normalises over dim {dim}; "
                                       "only a softmax over the features is supported")
            if kind:
                what = node.target.__name__ if fn else f".{node.target}"
                out.append(Activation(kind, f"{node.name} ({what})"))
        else:
            raise UnsupportedError(f"{source}: {node.name!r} ({node.op} {node.target}) is not "
                                   "supported in a plain chain")
        prev = node


def from_module(nn_module) -> Graph:
    """Lower a PyTorch module at inference (eval) semantics to an exact IR graph.

    Args:
        nn_module: an `nn.Sequential` (nested ones are flattened) of Linear, BatchNorm1d, ReLU,
            Sigmoid, Softmax (last), Flatten, Dropout and Identity, or a module whose forward is
            a plain chain of those (read with `torch.fx.symbolic_trace`, which runs the forward on
            placeholders: pass only modules you trust, as you would call them).

    Returns:
        A checked `Graph` as `load_state_dict` gives for the module's state dict and the same
        layers; `meta["format"] == "torch-module"`.

    Raises:
        UnsupportedError: other layer types, or a forward that is not a plain chain.
        InputError: NaN/Inf parameters, sizes that do not chain.
    """
    torch = _need_torch("<module>", "lowering an nn.Module")
    nn = torch.nn
    if not isinstance(nn_module, nn.Module):
        raise InputError(f"from_module needs a torch.nn.Module, got {type(nn_module).__name__}")
    source = f"<{type(nn_module).__name__}>"
    layers: list = []
    if isinstance(nn_module, nn.Sequential) or not _has_custom_forward(nn_module, nn):
        _leaf_layers("", nn_module, nn, layers, source)
    else:
        _traced_layers(nn_module, torch, nn, layers, source)
    params = [L for L in layers if isinstance(L, (Dense, BatchNorm))]
    if not params:
        raise InputError(f"{source}: the module has no Linear or BatchNorm1d layer")
    first = params[0]
    in_dim = first.weight.shape[1] if isinstance(first, Dense) else len(first.mean)
    return lower(layers, in_dim, source, {"source": source, "format": "torch-module",
                                          "input_shape": f"1x{in_dim}"})


def _has_custom_forward(m, nn) -> bool:
    return not type(m).__module__.startswith("torch.")  # a user class: read its forward


# ---- writing back ----

def _identity_bn(eps: float, dtype) -> tuple[float, float] | None:
    """(gamma, running_var) with gamma / sqrt(var + eps) == 1 exactly, both exactly of `dtype`
    and var >= 0: var + eps = 4**j, gamma = 2**j. None when no small j works."""
    dt = np.dtype(dtype)
    e = Fraction(eps)
    for j in range(-40, 41):
        P = Fraction(4) ** j if j >= 0 else Fraction(1, 4 ** -j)
        var = P - e
        if var < 0:
            continue
        v = dt.type(float(var))
        if Fraction(float(v)) == var and Fraction(float(dt.type(float(2.0 ** j)))) == 2 ** Fraction(j):
            return 2.0 ** j, float(v)
    return None


def _value(p, params) -> np.ndarray:
    if isinstance(p, Const):
        return p.value
    if p.name in params:
        return Const(np.asarray(params[p.name])).value
    if p.nominal is not None:
        return p.nominal
    raise InputError(f"symbolic parameter {p.name!r} has no value to write (give params)")


def _same(a, b) -> bool:
    return a.shape == b.shape and (a.dtype == b.dtype == np.float64 and bool(np.all(a == b)) or
                                   all(Fraction(x) == Fraction(y) for x, y in zip(a.ravel(), b.ravel())))


def _cast(values: np.ndarray, dtype) -> tuple[np.ndarray, bool]:
    """values (exact float64 or Fractions) as `dtype`, rounded to nearest; and whether exact."""
    f64 = np.array([float(v) for v in values.ravel()], dtype=np.float64).reshape(values.shape) \
        if values.dtype == object else values
    out = f64.astype(dtype)
    return out, values.dtype != object and bool(np.all(out.astype(np.float64) == f64))


def save_state_dict_like(graph: Graph, params: Mapping[str, np.ndarray] | None, src_path,
                         out_path, fmt: str | None = None) -> bool:
    """Write `graph`'s affine parameters into a copy of the state dict at `src_path`.

    Every key keeps its name and dtype; keys whose layer did not change are copied unchanged.
    An affine layer that folds a BatchNorm1d is written as its Linear holding the whole trained
    map and the BatchNorm1d set to an exact identity (gamma = 2**j, running_var = 4**j - eps,
    mean 0, beta 0), so that reloading gives the trained values again.

    Args:
        graph: a graph from `load_state_dict(src_path, ...)`, possibly with `Sym` parameters
            (trained) or changed `Const` values; node names and shapes must be the source's.
        params: values of the `Sym` parameters by name (exact float64 or Fraction arrays);
            a `Sym` absent from it takes its nominal value.
        src_path: the state dict the graph was loaded from (.pt/.pth/.safetensors).
        out_path: where to write.
        fmt: "pt" or "safetensors"; None picks it from `out_path`'s extension.

    Returns:
        True if every written value is exactly representable in its key's dtype (False: some
        value was rounded to nearest, e.g. a rational or float64 value into a float32 tensor).

    Raises:
        InputError: the graph does not match the source, torch missing for "pt".
        UnsupportedError: an affine node folding several Linear layers, a nonzero trained bias
            for a Linear without bias, or a BatchNorm1d that cannot be set to an exact identity.
    """
    params = params or {}
    if fmt is None:
        fmt = "safetensors" if str(out_path).lower().endswith(".safetensors") else "pt"
    if fmt not in ("pt", "safetensors"):
        raise InputError(f"{out_path}: format {fmt!r} is not 'pt' or 'safetensors'")
    source = str(src_path)
    raw = _read_raw(src_path)[0]
    arrays = OrderedDict((k, _to_numpy(v, source, k)) for k, v in raw.items())
    ref = _lower_arrays(arrays, source, graph.meta.get("arch"), {})
    ref_nodes = {n.name: n for n in ref.nodes}
    for n in graph.nodes:
        r = ref_nodes.get(n.name)
        if type(r) is not type(n) or (isinstance(n, Affine) and r.weight.shape != n.weight.shape):
            raise InputError(f"{source}: the graph does not match this state dict at node "
                             f"{n.name!r}; write back to the file it was loaded from")
    new: dict[str, np.ndarray] = {}
    exact = True
    for n in graph.nodes:
        if not isinstance(n, Affine):
            continue
        W, b = _value(n.weight, params), _value(n.bias, params)
        r = ref_nodes[n.name]
        if _same(W, r.weight.value) and _same(b, r.bias.value):
            continue  # unchanged: its keys keep their original tensors
        keys = [k for k in graph.meta.get(f"{n.name}.keys", "").split(",") if k]
        wkeys = [k for k in keys if arrays[k].ndim == 2] if all(k in arrays for k in keys) else []
        if len(wkeys) != 1:
            raise UnsupportedError(f"{source}: affine {n.name!r} holds the Linear keys "
                                   f"{keys or 'none'}; only one Linear per affine node can be "
                                   "written back")
        wk = wkeys[0]
        bk = next((k for k in keys if k != wk), None)
        new[wk], ok = _cast(W, arrays[wk].dtype)
        exact &= ok
        if bk is not None:
            new[bk], ok = _cast(b, arrays[bk].dtype)
            exact &= ok
        elif any(v != 0 for v in b.ravel()):
            raise UnsupportedError(f"{source}: affine {n.name!r}: the new bias is nonzero, but "
                                   f"Linear {wk!r} has no bias key")
        prefixes = [p for p in graph.meta.get(f"{n.name}.batchnorm", "").split(",") if p]
        epss = graph.meta.get(f"{n.name}.batchnorm_eps", "").split(",")
        for p, eps in zip(prefixes, epss):
            var_key = f"{p}.running_var" if p else "running_var"
            dt = arrays[var_key].dtype
            ident = _identity_bn(float(eps), dt)
            if ident is None or (f"{p}.weight" not in arrays and ident[0] != 1.0):
                raise UnsupportedError(f"{source}: BatchNorm1d {p!r} folded into {n.name!r} "
                                       "cannot be set to an exact identity for eps "
                                       f"{eps}; export the trained network to ONNX instead")
            gamma, var = ident
            for s, v in (("weight", gamma), ("bias", 0.0), ("running_mean", 0.0),
                         ("running_var", var)):
                k = f"{p}.{s}" if p else s
                if k in arrays:
                    new[k] = np.full(arrays[k].shape, v, dtype=arrays[k].dtype)
    _write(raw, new, out_path, fmt, source)
    if exact:  # the claim is checked: reloading the written file gives the new values
        back = _lower_arrays(OrderedDict((k, _to_numpy(v, source, k)) for k, v in
                                         _read_raw(out_path)[0].items()),
                             str(out_path), graph.meta.get("arch"), {})
        for n in graph.nodes:
            if isinstance(n, Affine):
                m = back.node(n.name)
                exact &= _same(_value(n.weight, params), m.weight.value) and \
                    _same(_value(n.bias, params), m.bias.value)
    return exact


def _write(raw, new, out_path, fmt, source):
    if fmt == "safetensors":
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise InputError(f"{out_path}: writing .safetensors needs safetensors: pip install "
                             "safetensors") from None
        out = OrderedDict()
        for k, v in raw.items():
            a = new[k] if k in new else _to_numpy(v, source, k)
            if hasattr(v, "dtype") and str(v.dtype) == "torch.bfloat16":
                raise UnsupportedError(f"{source}: key {k!r} is bfloat16, which numpy "
                                       "safetensors cannot write; use fmt 'pt'")
            out[k] = np.ascontiguousarray(a)
        save_file(out, str(out_path), metadata={"format": "pt",
                                                "nnsmt_key_order": json.dumps(list(out))})
        return
    torch = _need_torch(out_path, "writing a .pt file")
    sd = OrderedDict()
    for k, v in raw.items():
        if k in new:
            t = torch.from_numpy(np.ascontiguousarray(new[k]))
            sd[k] = t.to(v.dtype) if isinstance(v, torch.Tensor) else t
        else:
            sd[k] = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
    torch.save(sd, str(out_path))  # the state dict alone, also from a nested checkpoint
