"""Backend registry: each solver is imported lazily, so a missing one costs nothing until asked."""

from __future__ import annotations

import importlib

from nnsmt.errors import BackendUnavailable

# name -> (module, class, what to install)
REGISTRY = {
    "z3": ("nnsmt.backends.z3_backend", "Z3Backend", "pip install z3-solver"),
    "cvc5": ("nnsmt.backends.cvc5_backend", "Cvc5Backend", "pip install cvc5"),
}
DEFAULT = "z3"


def get_backend(name: str):
    """An instance of the named backend, or BackendUnavailable saying what is missing."""
    if name not in REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    module, cls, hint = REGISTRY[name]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as e:
        raise BackendUnavailable(f"backend {name!r} is not available: {e} ({hint})") from None


def available() -> dict[str, str | None]:
    """Every known backend -> None if it loads, else the reason it does not."""
    out = {}
    for name in REGISTRY:
        try:
            get_backend(name)
            out[name] = None
        except BackendUnavailable as e:
            out[name] = str(e)
    return out
