"""Errors nnsmt reports to users: each carries a one-line message and an exit code."""

from __future__ import annotations


class NnsmtError(Exception):
    """Base class: a problem the user can act on, printed without a traceback."""

    exit_code = 3


class InputError(NnsmtError):
    """Bad or unsupported input: a model, property, data or option file.

    The message names the file and the element (node, line:column, key) at fault.
    """

    exit_code = 2


class UnsupportedError(InputError):
    """Well-formed input that uses something nnsmt does not support."""


class BackendUnavailable(NnsmtError):
    """A requested solver backend is not installed or cannot be loaded."""

    exit_code = 2


class ValidationError(NnsmtError):
    """A solver model failed the replay through the network (never reported as sat)."""

    exit_code = 3


class InternalError(NnsmtError):
    """A broken invariant inside nnsmt (a bug, never the user's input): exit code 1."""

    exit_code = 1
