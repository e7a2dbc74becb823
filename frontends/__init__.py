"""Model loaders: each turns a network file into a checked `nnsmt.ir.Graph`.

Each frontend module is imported only when used, so `import nnsmt.frontends` loads no
third-party model library (onnx, torch, h5py).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from nnsmt.errors import InputError
from nnsmt.ir import Graph

# file extension -> (module, loader); a loader takes the path and the options it names
_LOADERS = {".onnx": ("nnsmt.frontends.onnx_frontend", "load_onnx"),
            ".pt": ("nnsmt.frontends.torch_frontend", "load_state_dict"),
            ".pth": ("nnsmt.frontends.torch_frontend", "load_state_dict"),
            ".safetensors": ("nnsmt.frontends.torch_frontend", "load_state_dict"),
            ".json": ("nnsmt.frontends.keras_frontend", "load_json_model"),  # Keras or IR JSON
            ".keras": ("nnsmt.frontends.keras_frontend", "load_keras"),
            ".h5": ("nnsmt.frontends.keras_frontend", "load_keras")}
_OPTION_FLAGS = {"weights": "--weights (Keras .json/.h5/.keras)",
                 "arch": "--arch (PyTorch .pt/.pth/.safetensors)"}


def load_network(path, **options) -> Graph:
    """Load a network, choosing the frontend by file extension.

    Args:
        path: the model file.
        **options: loader options; None values are ignored. `weights` (Keras weights file for
            a .json config) and `arch` (PyTorch state-dict architecture spec).

    Raises:
        InputError: the extension has no frontend, an option does not apply to it, or the
            loader rejects the file (also when it is nested too deeply or too large to load).
    """
    ext = Path(path).suffix.lower()
    if ext not in _LOADERS:
        raise InputError(f"{path}: unsupported model format '{ext}' "
                         f"(supported: {', '.join(sorted(_LOADERS))})")
    options = {k: v for k, v in options.items() if v is not None}
    if ext == ".json":  # IR JSON is read here, by the reader `nnsmt import` uses (same messages)
        from nnsmt.serialize import FORMAT, network_from_json, read_json
        doc = read_json(path)
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            for k in options:
                raise InputError(f"{path}: an nnsmt IR file holds its weights and architecture; "
                                 f"{_OPTION_FLAGS.get(k, k)} does not apply")
            return network_from_json(doc, path)
    module, func = _LOADERS[ext]
    loader = getattr(importlib.import_module(module), func)
    accepted = inspect.signature(loader).parameters
    for k in options:
        if k not in accepted:
            raise InputError(f"{path}: {_OPTION_FLAGS.get(k, k)} does not apply to "
                             f"'{ext}' models")
    try:
        return loader(path, **options)
    except RecursionError:  # e.g. JSON nested 100,000 deep: the file, not nnsmt, is at fault
        raise InputError(f"{path}: nested too deeply to read") from None
    except MemoryError:
        raise InputError(f"{path}: too large to load into memory") from None


def load_onnx(path) -> Graph:
    """Load an ONNX model; see `nnsmt.frontends.onnx_frontend.load_onnx`."""
    from .onnx_frontend import load_onnx as load
    return load(path)


def ort_evaluator(path):
    """onnxruntime evaluator of an ONNX model; see `nnsmt.frontends.onnx_frontend.ort_evaluator`."""
    from .onnx_frontend import ort_evaluator as make
    return make(path)


def load_state_dict(path_or_dict, arch=None) -> Graph:
    """Load a PyTorch state dict; see `nnsmt.frontends.torch_frontend.load_state_dict`."""
    from .torch_frontend import load_state_dict as load
    return load(path_or_dict, arch)


def from_module(nn_module) -> Graph:
    """Lower an nn.Sequential; see `nnsmt.frontends.torch_frontend.from_module`."""
    from .torch_frontend import from_module as lower
    return lower(nn_module)


def load_keras(json_or_keras_path, weights=None) -> Graph:
    """Load a Keras model; see `nnsmt.frontends.keras_frontend.load_keras`."""
    from .keras_frontend import load_keras as load
    return load(json_or_keras_path, weights)


__all__ = ["load_network", "load_onnx", "ort_evaluator", "load_state_dict", "from_module",
           "load_keras"]
