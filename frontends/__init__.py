"""Model loaders: each turns a network file into a checked `nnsmt.ir.Graph`.

Each frontend module is imported only when used, so `import nnsmt.frontends` loads no
third-party model library (onnx, torch, h5py).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from nnsmt.errors import InputError
from nnsmt.ir import Graph

# file extension -> (module, loader); later frontends (PyTorch, Keras) register here
_LOADERS = {".onnx": ("nnsmt.frontends.onnx_frontend", "load_onnx")}


def load_network(path) -> Graph:
    """Load a network, choosing the frontend by file extension.

    Raises:
        InputError: the extension has no frontend, or the loader rejects the file.
    """
    ext = Path(path).suffix.lower()
    if ext not in _LOADERS:
        raise InputError(f"{path}: unsupported model format '{ext}' "
                         f"(supported: {', '.join(sorted(_LOADERS))})")
    module, func = _LOADERS[ext]
    return getattr(importlib.import_module(module), func)(path)


def load_onnx(path) -> Graph:
    """Load an ONNX model; see `nnsmt.frontends.onnx_frontend.load_onnx`."""
    from .onnx_frontend import load_onnx as load
    return load(path)


def ort_evaluator(path):
    """onnxruntime evaluator of an ONNX model; see `nnsmt.frontends.onnx_frontend.ort_evaluator`."""
    from .onnx_frontend import ort_evaluator as make
    return make(path)


__all__ = ["load_network", "load_onnx", "ort_evaluator"]
