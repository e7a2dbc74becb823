"""nnsmt: compile neural networks into exact SMT queries.

The Python API lives in `nnsmt.api` and every name of it is available here:

    >>> import nnsmt
    >>> outcome = nnsmt.verify("examples/classifier.onnx", "examples/class1_margin.vnnlib")
    >>> outcome.status, outcome.witness.float_replay
    ('sat', 'onnxruntime')

`import nnsmt` loads only the IR and the error classes; `nnsmt.api` (engines, queries,
solver registry) is imported on the first use of one of its names. No solver or model
library (z3, cvc5, onnx, torch) is imported before it is needed.

The reference also documents the modules behind the API:

- `nnsmt.api`: the functions and types listed here, with every argument;
- `nnsmt.ir`: the network IR, a `Graph` of nodes; `nnsmt.interpret` evaluates it (float,
  exact rationals, certified enclosures);
- `nnsmt.vnnlib`: VNN-LIB 1.0 properties; `nnsmt.vnnlib2`: VNN-LIB 2 queries (several networks,
  hidden nodes, typed tensors) lowered onto one graph; `nnsmt.assignment`: the standard's
  assignment formats; `nnsmt.floatsem`: rounding-error bounds for float semantics;
  `nnsmt.validate`: the replay of a counterexample;
- `nnsmt.certificate`: unsat certificates (the branch tree, each leaf's justification);
  `nnsmt.recheck`: the independent rigorous bounds their checker replays leaves with;
- `nnsmt.query` and `nnsmt.result`: the query protocol, `Outcome`, solver options;
- `nnsmt.queries.verify`: the verification query; `nnsmt.queries.stability` and
  `nnsmt.queries.compress`: ReLU stability over a domain and exact compression;
  `nnsmt.bounds`: rigorous interval and linear (CROWN-style) bounds; `nnsmt.attack`: the
  gradient attack that steers searches; `nnsmt.encode`: networks as solver-neutral terms;
  `nnsmt.engine`: the driver that solves any query and the verification engines;
- `nnsmt.terms`: solver-neutral scripts; `nnsmt.backends`: the solvers and the SMT-LIB
  printer; `nnsmt.frontends`: the model loaders; `nnsmt.errors`: what nnsmt raises.
"""

from .errors import BackendUnavailable, InputError, NnsmtError, UnsupportedError, ValidationError
from .ir import IR_VERSION, Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sym

__version__ = "0.1.0"

# the names of nnsmt.api, imported from it on first use (PEP 562)
_API = ("load_network", "load_property", "verify", "solve", "to_smtlib", "available_backends",
        "Query", "VerifyQuery", "ScriptQuery", "Property", "Script", "Outcome", "Counterexample",
        "SolveOptions", "VerifyOptions", "InternalError", "load_query", "verify_query", "Query2", "Decl",
        "stable", "compress", "InputDomain", "Stability", "StabilityOptions", "Compression", "CompressOptions")

__all__ = ["IR_VERSION", "Affine", "Argmax", "BackendUnavailable", "Const", "Graph", "Input",
           "InputError", "NnsmtError", "Relu", "Sigmoid", "Sym", "UnsupportedError",
           "ValidationError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api
        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnsmt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
