"""Keras frontend: `model.to_json()` + weights (Keras 3 `.weights.h5`, legacy `.h5`), legacy
full-model `.h5` files and `.keras` archives, read without TensorFlow or Keras.

The JSON config is read as data and the HDF5 weights with h5py; nothing in the file is ever
executed. Lambda layers and custom objects (any layer, model or activation registered outside
Keras' own modules) are code, and are refused. Sequential models and functional models that are
a plain chain are supported, with InputLayer, Dense (activation relu, sigmoid, linear, softmax
last), Activation, ReLU, Softmax (last), Dropout, Flatten and BatchNormalization (folded exactly as
the ONNX frontend folds it).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.ir import Graph

from .sequential import Activation, BatchNorm, Dense, checked, lower, runtime_eps

SUPPORTED_LAYERS = ("Activation", "BatchNormalization", "Dense", "Dropout", "Flatten",
                    "InputLayer", "ReLU", "Softmax")
_ACTS = {"relu": "relu", "sigmoid": "sigmoid", "softmax": "softmax", "linear": None, None: None}
_MODELS = ("Sequential", "Functional", "Model")
# .keras archives: only these two members are read, each with a cap on its unpacked size
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 2 << 30


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _h5py(path):
    try:
        import h5py
    except ImportError:
        raise InputError(f"{path}: reading Keras HDF5 weights needs h5py: pip install h5py") from None
    return h5py


def _is_file(path):
    if not Path(path).is_file():
        raise InputError(f"{path}: {'not a file' if Path(path).exists() else 'no such file'}")


# ---- containers ----

def _read_keras_zip(path) -> tuple[dict, bytes]:
    """(config, weights HDF5 bytes) of a .keras archive; nothing else is read or extracted."""
    _is_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _member_json(zf, "config.json", path), _member(zf, "model.weights.h5", path,
                                                                  MAX_WEIGHTS_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as e:
        raise InputError(f"{path}: not a readable .keras archive (truncated or corrupt?): "
                         f"{_one_line(e)[:300]}") from None


def _member(zf, name, path, cap) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise InputError(f"{path}: not a .keras archive: member {name!r} is missing") from None
    if info.file_size > cap:
        raise InputError(f"{path}: member {name!r} unpacks to {info.file_size} bytes "
                         f"(limit {cap})")
    with zf.open(info) as f:
        data = f.read(cap + 1)  # bounded even if the header lies about the size
    if len(data) > cap:
        raise InputError(f"{path}: member {name!r} unpacks to more than {cap} bytes")
    return data


def _member_json(zf, name, path) -> dict:
    data = _member(zf, name, path, MAX_CONFIG_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: {name} is not valid JSON: {_one_line(e)}") from None


def _read_json(path) -> dict:
    _is_file(path)
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON: {_one_line(e)}") from None


def _open_h5(h5py, src, name):
    try:
        return h5py.File(src, "r")
    except (OSError, ValueError, RuntimeError) as e:
        raise InputError(f"{name}: not a readable HDF5 file (truncated or corrupt?): "
                         f"{_one_line(e)[:300]}") from None


def _attr_str(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


class _Weights:
    """Arrays by layer name, from either HDF5 layout."""

    def __init__(self, f, name):
        self.name = name
        self.by_name: dict[str, list] = {}
        self.by_path: dict[str, list] = {}
        self.keras3 = False
        try:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:  # legacy (Keras 2 / model.save("x.h5")) layout
                for ln in root.attrs["layer_names"]:
                    ln = _attr_str(ln)
                    g = root[ln]
                    self.by_name[ln] = [(f"{ln}/{_attr_str(w)}", g[_attr_str(w)][()])
                                        for w in g.attrs.get("weight_names", [])]
            elif "layers" in f:  # Keras 3: layers/<path>/vars/<i>, vars.attrs["name"]
                self.keras3 = True
                for path, g in f["layers"].items():
                    v = g.get("vars")
                    if v is None:
                        continue
                    arrs = [(f"{path}/vars/{k}", v[k][()]) for k in
                            sorted(v.keys(), key=lambda s: int(s) if s.isdigit() else -1)]
                    self.by_path[path] = arrs
                    if "name" in v.attrs:
                        self.by_name[_attr_str(v.attrs["name"])] = arrs
            else:
                raise InputError(f"{name}: no Keras weights in this HDF5 file (neither a "
                                 "'layers' group nor a 'layer_names' attribute)")
        except InputError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
            raise InputError(f"{name}: unreadable Keras weights (truncated or corrupt?): "
                             f"{_one_line(e)[:300]}") from None

    def get(self, layer_name, path_name) -> list | None:
        if self.by_name:  # names recorded: a layer absent by name is absent
            return self.by_name.get(layer_name)
        return self.by_path.get(path_name)  # early Keras 3 files: by object path


def _snake(name: str) -> str:
    """Keras 3's default object-path name of a class (BatchNormalization -> batch_normalization)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


# ---- the config ----

def _layer_name(layer) -> str:
    return str(layer.get("name") or (layer.get("config") or {}).get("name") or "?")


def _refuse_custom(obj, source, what):
    module, reg = obj.get("module"), obj.get("registered_name")
    if (module is not None and not (module == "keras" or str(module).startswith("keras."))) or \
            (reg is not None and reg not in _MODELS):
        raise UnsupportedError(f"{source}: {what} is a custom object (module {module!r}, "
                               f"registered as {reg!r}): it is code, which nnsmt never runs")


def _chain(config: dict, source: str) -> tuple[list[dict], list | None]:
    """(layers in chain order, input batch shape or None) of a Sequential or functional config."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise InputError(f"{source}: not a Keras model config (no 'class_name')")
    cls = config["class_name"]
    if cls not in _MODELS:
        raise UnsupportedError(f"{source}: model class {cls!r} is not supported "
                               "(Sequential or a functional model)")
    _refuse_custom(config, source, f"model class {cls!r}")
    cfg = config.get("config") or {}
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list) or not all(isinstance(L, dict) for L in layers):
        raise InputError(f"{source}: model config has no list of layers")
    shape = None
    if cls == "Sequential":
        shape = cfg.get("build_input_shape")
    else:
        _check_linear(layers, cfg, source)
    return layers, shape


def _inbound(layer) -> list[str]:
    """Names of the layers feeding `layer` (Keras 3 and legacy inbound_nodes formats)."""
    out = []

    def walk(v):
        if isinstance(v, dict):
            hist = (v.get("config") or {}).get("keras_history") if "config" in v else None
            if hist:
                out.append(str(hist[0]))
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            if len(v) >= 3 and isinstance(v[0], str) and isinstance(v[1], int):
                out.append(v[0])  # legacy [name, node_index, tensor_index, kwargs]
                return
            for x in v:
                walk(x)

    walk(layer.get("inbound_nodes", []))
    return out


def _check_linear(layers, cfg, source):
    prev = None
    for L in layers:
        ins = _inbound(L)
        name = _layer_name(L)
        if prev is None:
            if ins:
                raise UnsupportedError(f"{source}: layer {name!r} has inputs but comes first")
        elif ins != [prev]:
            raise UnsupportedError(f"{source}: layer {name!r} takes {ins or 'no inputs'}; only "
                                   "functional models that are a plain chain are supported")
        prev = name
    outs = _inbound({"inbound_nodes": cfg.get("output_layers", [])})
    if outs and outs != [prev]:
        raise UnsupportedError(f"{source}: the model outputs {outs}; only one output, the last "
                               "layer of a plain chain, is supported")


def _activation(act, source, where):
    if isinstance(act, dict):  # Keras 3 writes built-in activations as strings
        _refuse_custom(act, source, f"{where}: activation {act.get('config')!r}")
        act = act.get("config") if isinstance(act.get("config"), str) else act.get("class_name")
    if act not in _ACTS:
        raise UnsupportedError(f"{source}: {where}: activation {act!r} is not supported "
                               "(relu, sigmoid, linear, softmax)")
    return _ACTS[act]


def _shape(s, source, where) -> tuple[int, ...]:
    if not isinstance(s, (list, tuple)) or len(s) < 2 or not all(
            isinstance(d, int) and d > 0 for d in s[1:]):
        raise UnsupportedError(f"{source}: {where} has input shape {s}; a fixed shape "
                               "[batch, d1, ...] is needed")
    return tuple(s[1:])


def _lower_config(config, weights: _Weights, source, meta) -> Graph:
    layers, shape = _chain(config, source)
    shape = _shape(shape, source, "the model") if shape else None
    out, counts = [], {}
    for L in layers:
        cls, name = L.get("class_name"), _layer_name(L)
        cfg = L.get("config") or {}
        where = f"layer {name!r} ({cls})"
        if cls == "Lambda":
            raise UnsupportedError(f"{source}: {where} holds Python code; Lambda layers are "
                                   "never run by nnsmt")
        _refuse_custom(L, source, where)
        if cls not in SUPPORTED_LAYERS:
            raise UnsupportedError(f"{source}: {where} is not supported (supported: "
                                   f"{', '.join(SUPPORTED_LAYERS)})")
        if cls == "InputLayer":
            shape = _shape(cfg.get("batch_shape") or cfg.get("batch_input_shape"), source, where)
            continue
        path = _snake(cls)  # Keras 3's object-path name, for files without name attributes
        path = path if counts.get(path, 0) == 0 else f"{path}_{counts[path]}"
        counts[_snake(cls)] = counts.get(_snake(cls), 0) + 1
        if shape is None and cfg.get("batch_input_shape"):  # Keras 2 Sequential first layer
            shape = _shape(cfg["batch_input_shape"], source, where)
        if shape is None and (L.get("build_config") or {}).get("input_shape"):
            shape = _shape(L["build_config"]["input_shape"], source, where)
        if shape is None:
            raise InputError(f"{source}: {where}: the input shape is unknown (no InputLayer)")
        if cls == "Dense":
            shape = _dense(L, cfg, shape, weights, path, source, where, out)
        elif cls == "BatchNormalization":
            _batchnorm(cfg, shape, weights, name, path, source, where, out)
        elif cls in ("Activation", "ReLU", "Softmax"):
            if cls == "Activation":
                act = _activation(cfg.get("activation"), source, where)
            elif cls == "ReLU":
                if any(cfg.get(k) not in (None, 0, 0.0) for k in ("max_value", "negative_slope",
                                                                  "threshold")):
                    raise UnsupportedError(f"{source}: {where}: only the plain ReLU is supported "
                                           "(no max_value, negative_slope or threshold)")
                act = "relu"
            else:
                if cfg.get("axis", -1) not in (-1, len(shape), [-1]) or len(shape) != 1:
                    raise UnsupportedError(f"{source}: {where}: only a softmax over the last "
                                           "axis of a vector is supported")
                act = "softmax"
            if act:
                out.append(Activation(act, where))
        elif cls == "Flatten":
            if cfg.get("data_format") == "channels_first" and len(shape) > 1:
                raise UnsupportedError(f"{source}: {where}: channels_first Flatten is not "
                                       "supported")
            shape = (int(np.prod(shape)),)
        # Dropout: the identity at inference
    dims = next(((L.weight.shape[1] if isinstance(L, Dense) else len(L.mean)) for L in out
                 if isinstance(L, (Dense, BatchNorm))), None)
    if shape is None or dims is None:
        raise InputError(f"{source}: the model has no Dense or BatchNormalization layer")
    first_shape = _first_shape(layers, source)
    in_dim = int(np.prod(first_shape)) if first_shape else dims
    meta = {"source": source, **meta,
            "input_shape": "x".join(map(str, (1,) + tuple(first_shape or (in_dim,))))}
    return lower(out, in_dim, source, meta)


def _first_shape(layers, source):
    for L in layers:
        cfg = L.get("config") or {}
        s = cfg.get("batch_shape") or cfg.get("batch_input_shape") or \
            (L.get("build_config") or {}).get("input_shape")
        if s:
            return _shape(s, source, f"layer {_layer_name(L)!r}")
    return None


def _arrays(weights, name, path, n, source, where):
    arrs = weights.get(name, path)
    if arrs is None:
        raise InputError(f"{weights.name}: no weights for {where} in this file")
    if len(arrs) != n:
        raise InputError(f"{weights.name}: {where} has {len(arrs)} weight arrays, the config "
                         f"needs {n}")
    return [(k, checked(a, weights.name, f"weight {k!r}")) for k, a in arrs]


def _dense(L, cfg, shape, weights, path, source, where, out):
    if len(shape) != 1:
        raise UnsupportedError(f"{source}: {where} gets a rank-{len(shape)} input {list(shape)} "
                               "and would apply per position; add a Flatten before it")
    units, use_bias = cfg.get("units"), cfg.get("use_bias", True)
    if not isinstance(units, int) or units <= 0:
        raise InputError(f"{source}: {where}: units {units!r} is not a positive integer")
    act = _activation(cfg.get("activation"), source, where)
    arrs = _arrays(weights, _layer_name(L), path, 2 if use_bias else 1, source, where)
    (kk, kernel), bias = arrs[0], (arrs[1] if use_bias else (None, None))
    if kernel.shape != (shape[0], units):
        raise InputError(f"{weights.name}: weight {kk!r} of {where} has shape "
                         f"{list(kernel.shape)}, expected {[shape[0], units]} (input size "
                         f"{shape[0]}, units {units}; shapes do not chain)")
    if use_bias and bias[1].shape != (units,):
        raise InputError(f"{weights.name}: weight {bias[0]!r} of {where} has shape "
                         f"{list(bias[1].shape)}, expected [{units}]")
    out.append(Dense(kernel.T, bias[1], where, (kk,) + ((bias[0],) if use_bias else ())))
    if act:
        out.append(Activation(act, where))
    return (units,)


def _batchnorm(cfg, shape, weights, name, path, source, where, out):
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if len(shape) != 1 or axis not in (-1, 1):
        raise UnsupportedError(f"{source}: {where}: only batch normalisation of a vector over "
                               f"its last axis is supported (input {list(shape)}, axis {axis})")
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    arrs = _arrays(weights, name, path, 2 + bool(scale) + bool(center), source, where)
    vals = [a for _, a in arrs]
    C = shape[0]
    for k, a in arrs:
        if a.shape != (C,):
            raise InputError(f"{weights.name}: weight {k!r} of {where} has shape "
                             f"{list(a.shape)}, expected [{C}] (shapes do not chain)")
    gamma = vals.pop(0) if scale else np.ones(C)
    beta = vals.pop(0) if center else np.zeros(C)
    mean, var = vals
    eps = cfg.get("epsilon", 1e-3)
    if not isinstance(eps, (int, float)) or not eps > 0:
        raise InputError(f"{source}: {where}: epsilon {eps!r} is not a positive number")
    raw_dtype = _var_dtype(weights, name, path)
    out.append(BatchNorm(gamma, beta, mean, var, runtime_eps(eps, raw_dtype), where))


def _var_dtype(weights, name, path):
    arrs = weights.get(name, path)
    return np.asarray(arrs[-1][1]).dtype


# ---- entry points ----

def load_keras(json_or_keras_path, weights=None) -> Graph:
    """Load a Keras model as an exact IR graph, without TensorFlow or Keras.

    Args:
        json_or_keras_path: `model.to_json()` text in a `.json` file (then `weights` is
            needed), a `.keras` archive, or a legacy full-model `.h5` file.
        weights: the weights for a `.json` config: Keras 3 `model.save_weights("m.weights.h5")`
            or a legacy `.h5` weights file; for `.keras`/`.h5` models, overrides their weights.

    Returns:
        A checked `Graph` named like the ONNX frontend's (`x`, `a1`, `r1`, ...). `meta` has
        source, format ("keras"), weights and input_shape; a final softmax is dropped
        (`meta["dropped_softmax"] == "true"`, the output is the logits). BatchNormalization's
        epsilon is applied at the weights' precision (float32-rounded for float32), as Keras does.

    Raises:
        InputError: missing or truncated files (JSON, HDF5, zip), a .json without weights,
            weights that do not match the config (naming the layer and weight), NaN/Inf.
        UnsupportedError: Lambda layers, custom objects, unsupported layers or activations,
            functional models that are not a plain chain.
    """
    path = str(json_or_keras_path)
    ext = Path(path).suffix.lower()
    h5py = _h5py(weights or path)
    opened = []
    try:
        if ext == ".keras":
            config, data = _read_keras_zip(path)
            wsrc, wname = io.BytesIO(data), f"{path}:model.weights.h5"
        elif ext == ".h5":
            _is_file(path)
            f = _open_h5(h5py, path, path)
            opened.append(f)
            if "model_config" not in f.attrs:
                raise InputError(f"{path}: an HDF5 file without 'model_config' holds weights "
                                 "only; pass the model's .json and this file as --weights")
            try:
                config = json.loads(_attr_str(f.attrs["model_config"]))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: model_config is not valid JSON: {e}") from None
            wsrc, wname = f, path
        elif ext == ".json":
            config = _read_json(path)
            if weights is None:
                raise InputError(f"{path}: a Keras JSON config holds no weights; pass "
                                 "--weights MODEL.weights.h5")
            wsrc = wname = None
        else:
            raise InputError(f"{path}: not a Keras model file (.json, .keras, .h5)")
        if weights is not None:
            _is_file(weights)
            wsrc, wname = str(weights), str(weights)
        f = wsrc if hasattr(wsrc, "attrs") else _open_h5(h5py, wsrc, wname)
        opened.append(f)
        w = _Weights(f, wname)
        meta = {"format": "keras", "weights": wname}
        return _lower_config(config, w, path, meta)
    finally:
        for f in opened:
            f.close()


def load_json_model(path, weights=None) -> Graph:
    """A `.json` network: the nnsmt IR JSON (`"format": "nnsmt-ir"`), else a Keras config."""
    doc = _read_json(path)
    if isinstance(doc, dict) and doc.get("format") == "nnsmt-ir":
        from nnsmt.serialize import network_from_json
        if weights is not None:
            raise InputError(f"{path}: an nnsmt IR file holds its weights; --weights does not "
                             "apply")
        return network_from_json(doc, path)
    return load_keras(path, weights)
