"""nnsmt: compile neural networks into exact SMT queries."""

from .errors import BackendUnavailable, InputError, NnsmtError, UnsupportedError, ValidationError
from .ir import IR_VERSION, Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, Sym

__version__ = "0.1.0"

__all__ = ["IR_VERSION", "Affine", "Argmax", "BackendUnavailable", "Const", "Graph", "Input",
           "InputError", "NnsmtError", "Relu", "Sigmoid", "Sym", "UnsupportedError",
           "ValidationError", "__version__"]
