"""The `--arch` spec: which layers a state dict's weights belong to, and the activations between.

Three spellings of the same thing:
- a comma list: ``"linear,relu,linear,sigmoid"`` (also ``batchnorm``, ``softmax``, and the
  no-ops ``flatten``, ``dropout``, ``identity``);
- JSON text or a ``.json`` file: ``["linear", "relu", {"type": "batchnorm", "eps": 1e-3},
  "linear"]`` or ``{"layers": [...]}``; an object may name the module it binds to
  (``{"type": "linear", "name": "fc1"}``), checked against the state dict;
- a ``.yaml``/``.yml`` file with the same structure (needs PyYAML, read with ``safe_load``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nnsmt.errors import InputError

# spelling -> canonical layer type
_ALIASES = {"linear": "linear", "dense": "linear", "gemm": "linear",
            "batchnorm": "batchnorm", "batchnorm1d": "batchnorm", "bn": "batchnorm",
            "batchnormalization": "batchnorm",
            "relu": "relu", "sigmoid": "sigmoid", "softmax": "softmax",
            "flatten": "identity", "dropout": "identity", "identity": "identity"}
PARAMETRIC = ("linear", "batchnorm")
DEFAULT_BN_EPS = 1e-5  # PyTorch's BatchNorm1d default; a state dict does not store eps


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a spec: `type` is linear, batchnorm, relu, sigmoid, softmax or identity."""

    type: str
    eps: float | None = None  # batchnorm only
    name: str | None = None  # the module prefix it must bind to, if given
    where: str = ""  # "--arch layer 3" for messages


def parse_arch(spec) -> tuple[LayerSpec, ...]:
    """Parse an arch spec: a comma list, JSON text, a .json/.yaml/.yml path, or a list.

    Raises:
        InputError: unreadable file, malformed JSON/YAML, or an unknown layer type (one line
            naming the spec and the entry).
    """
    src = "--arch"
    if isinstance(spec, (str, Path)):
        text = str(spec).strip()
        p = Path(text)
        if p.suffix.lower() in (".json", ".yaml", ".yml"):
            src = text
            try:
                raw = p.read_text()
            except OSError as e:
                raise InputError(f"{src}: cannot read arch spec: {e.strerror}") from None
            except UnicodeDecodeError as e:
                raise InputError(f"{src}: arch spec is not UTF-8 text (byte {e.start})") from None
            spec = _parse_yaml(raw, src) if p.suffix.lower() != ".json" else _parse_json(raw, src)
        elif text[:1] in "[{":
            spec = _parse_json(text, src)
        else:
            spec = [t for t in (s.strip() for s in text.split(",")) if t]
    if isinstance(spec, dict):
        spec = spec.get("layers")
    if not isinstance(spec, (list, tuple)) or not spec:
        raise InputError(f"{src}: an arch spec is a non-empty list of layers")
    return tuple(_entry(e, i, src) for i, e in enumerate(spec))


def _parse_json(text, src):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{src}: not valid JSON: {e}") from None


def _parse_yaml(text, src):
    try:
        import yaml
    except ImportError:
        raise InputError(f"{src}: reading a YAML arch spec needs PyYAML (pip install pyyaml); "
                         "or write it as JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"{src}: not valid YAML: {' '.join(str(e).split())}") from None


def _entry(e, i, src) -> LayerSpec:
    where = f"{src} layer {i + 1}"
    fields = {}
    if isinstance(e, dict):
        fields = dict(e)
        e = fields.pop("type", None)
    if not isinstance(e, str) or e.strip().lower() not in _ALIASES:
        raise InputError(f"{where}: unknown layer type {e!r} (known: "
                         f"{', '.join(sorted(_ALIASES))})")
    kind = _ALIASES[e.strip().lower()]
    eps, name = fields.pop("eps", None), fields.pop("name", None)
    if fields:
        raise InputError(f"{where}: unknown field(s) {sorted(fields)} (type, eps, name)")
    if eps is not None and (kind != "batchnorm" or not isinstance(eps, (int, float))
                            or isinstance(eps, bool) or not eps > 0):
        raise InputError(f"{where}: eps must be a positive number on a batchnorm layer")
    if name is not None and (kind not in PARAMETRIC or not isinstance(name, str)):
        raise InputError(f"{where}: name must be a string on a linear or batchnorm layer")
    return LayerSpec(kind, None if eps is None else float(eps), name, where)


def format_arch(layers) -> str:
    """A spec string `parse_arch` reads back to the same layers: the comma form, or JSON when
    some layer has an eps or a name."""
    if all(L.eps is None and L.name is None for L in layers):
        return ",".join(L.type for L in layers)
    return json.dumps([{k: v for k, v in (("type", L.type), ("eps", L.eps), ("name", L.name))
                        if v is not None} for L in layers])
