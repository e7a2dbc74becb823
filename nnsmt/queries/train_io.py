"""Trained parameters out: safetensors files (written directly: the format is a JSON header and
raw little-endian bytes, no dependency) and float accuracy of a written model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..ir import Affine, Const, Graph, rounded


def save_safetensors(trained: Graph, path, dtype: str = "float32") -> bool:
    """One tensor per IR parameter, "<node>.weight" (out, in) and "<node>.bias" (out,).
    Returns whether every value was written exactly (False: some were rounded to `dtype`)."""
    np_t, code = {"float32": (np.float32, "F32"), "float64": (np.float64, "F64")}[dtype]
    header, blobs, offset, exact = {}, [], 0, True
    for n in trained.nodes:
        if not isinstance(n, Affine):
            continue
        for suffix, p in (("weight", n.weight), ("bias", n.bias)):
            vals = p.value if isinstance(p, Const) else np.asarray(p.nominal)
            arr, ex = rounded(vals, np_t)
            exact &= ex
            raw = arr.astype(np.dtype(np_t).newbyteorder("<")).tobytes()
            header[f"{n.name}.{suffix}"] = {"dtype": code, "shape": list(vals.shape),
                                            "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
    header["__metadata__"] = {"format": "pt", "producer": "nnsmt train"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the spec allows padding the header with spaces
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return exact


def classify_float(outputs: np.ndarray, problem) -> np.ndarray:
    """Which points a float model's outputs (n, k) classify correctly (strictly, as trained):
    one sigmoid output: > 0.5 for 1, < 0.5 for 0; one raw output: > 0 / < 0; k outputs:
    the label's output strictly above every other."""
    y = problem.data.y
    if problem.binary_single:
        t = 0.5 if problem.final_sigmoid else 0.0
        o = outputs[:, 0]
        return np.where(y == 1, o > t, o < t)
    own = outputs[np.arange(len(y)), y]
    rest = outputs.copy()
    rest[np.arange(len(y)), y] = -np.inf
    return own > rest.max(axis=1)
