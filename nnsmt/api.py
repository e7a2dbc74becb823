"""The public Python API: load a network and a property, verify, solve any query, emit SMT-LIB.

This is the interface for programs that embed nnsmt (another verifier, a training loop, a
notebook). Every name here is also available from `nnsmt` itself; `import nnsmt` stays cheap
because this module is imported on first use of one of its names.

Example:
    >>> import nnsmt
    >>> net = nnsmt.load_network("examples/classifier.onnx")
    >>> outcome = nnsmt.verify(net, "examples/class1_margin.vnnlib", timeout=60)
    >>> outcome.status
    'sat'
    >>> cex = outcome.witness            # a Counterexample, replayed exactly
    >>> len(cex.x), len(cex.y)
    (2, 3)
    >>> nnsmt.verify(net, "examples/corner_robust.vnnlib").status
    'unsat'

Verdicts follow VNN-LIB: a property asserts the *unsafe* region, so "sat" means a
counterexample exists (the property is violated) and "unsat" means none does (it holds).
Statuses are "sat", "unsat", "unknown" (timeout, or a relaxation that could not decide) and
"error" (a solver failed, or its model failed the replay: never reported as sat).
"""

from __future__ import annotations

import dataclasses

import importlib.util
import math
import os
from typing import Any, Mapping

from nnsmt import backends as _backends
from nnsmt import frontends as _frontends
from nnsmt.backends.smtlib import to_smtlib as _to_smtlib
from nnsmt.engine import driver as _driver
from nnsmt.engine import verify as _engine
from nnsmt.engine.verify import VerifyOptions
from nnsmt.assignment import Decl
from nnsmt.vnnlib2 import Query2
from nnsmt.errors import (BackendUnavailable, InputError, InternalError, NnsmtError, UnsupportedError,
                          ValidationError)
from nnsmt.commands.options import STABILITY_TIMEOUT  # the commands' default, one definition
from nnsmt.domain import InputDomain
from nnsmt.ir import Graph
from nnsmt.queries.compress import CompressOptions, Compression
from nnsmt.queries.stability import Stability, StabilityOptions
from nnsmt.queries.verify import VerifyQuery
from nnsmt.query import Outcome, Query, ScriptQuery
from nnsmt.result import SolveOptions
from nnsmt.terms import Script
from nnsmt.validate import Counterexample
from nnsmt.vnnlib import Property, load_vnnlib, parse_vnnlib

__all__ = [
    # functions
    "load_network", "load_property", "verify", "solve", "to_smtlib", "available_backends",
    "load_query", "verify_query", "stable", "compress",
    # queries
    "Query", "VerifyQuery", "ScriptQuery",
    # what they take and return
    "Graph", "Property", "Script", "Outcome", "Counterexample", "SolveOptions", "VerifyOptions",
    "Query2", "Decl", "InputDomain", "Stability", "StabilityOptions", "Compression", "CompressOptions",
    # errors
    "NnsmtError", "InputError", "UnsupportedError", "BackendUnavailable", "ValidationError",
    "InternalError",
]


def load_network(path: str | os.PathLike, **options: Any) -> Graph:
    """Load a network file into the nnsmt IR, choosing the frontend by extension.

    Supported: ONNX (`.onnx`), PyTorch state dicts (`.pt`, `.pth`, `.safetensors`), Keras
    (`.keras`, `.h5`, or a `.json` config with `weights=`) and nnsmt IR JSON (`.json`).

    Args:
        path: the model file.
        **options: loader options, None values ignored: `weights` (the Keras weights file of
            a `.json` config) and `arch` (the architecture of a PyTorch state dict, e.g.
            `"linear,relu,linear"`; default: ReLU between Linear layers).

    Returns:
        The checked `Graph`. Its `meta["source"]` is the file and `meta["format"]` the
        format (e.g. "onnx"), which `verify` uses to replay counterexamples in onnxruntime.
        An IR JSON file is its own source (format "ir-json"); the model it was exported from
        stays in `meta["exported_from"]`.

    Raises:
        InputError: the file is missing or unreadable, the extension has no frontend, an
            option does not apply to this format, or the model is malformed.
        UnsupportedError: the model uses an operator or shape nnsmt cannot express exactly.

    Example:
        >>> net = load_network("examples/classifier.onnx")
        >>> [n.dim for n in net.inputs], net.outputs
        ([2], ('a3',))
    """
    return _frontends.load_network(os.fspath(path), **options)


def load_property(path_or_text: str | os.PathLike | Property, *, name: str | None = None) -> Property:
    """Load a VNN-LIB 1.0 property from a file or from its text.

    A `str` is read as VNN-LIB text when it is not an existing file and contains "(" (every
    property has a `declare-const`); otherwise it is a path. A `pathlib.Path` is always a path.

    Args:
        path_or_text: a path, the VNN-LIB text itself, or an already loaded `Property`
            (returned unchanged).
        name: the name messages give text input (default `"<string>"`); ignored for files.

    Returns:
        The parsed `Property`: `n_inputs` inputs X_i, `n_outputs` outputs Y_j and the
        asserts of the unsafe region, with exact rational constants.

    Raises:
        InputError: the file cannot be read, or the text is not valid VNN-LIB (the message
            gives `file:line:column`).

    Example:
        >>> p = load_property('''
        ...     (declare-const X_0 Real) (declare-const Y_0 Real)
        ...     (assert (<= X_0 1)) (assert (>= X_0 0)) (assert (>= Y_0 2))''')
        >>> p.n_inputs, p.n_outputs
        (1, 1)
    """
    if isinstance(path_or_text, Property):
        return path_or_text
    if isinstance(path_or_text, str) and "(" in path_or_text and not os.path.isfile(path_or_text):
        return parse_vnnlib(path_or_text, name or "<string>")
    if isinstance(path_or_text, (str, os.PathLike)):
        return load_vnnlib(os.fspath(path_or_text))
    raise TypeError(f"load_property takes a path, VNN-LIB text or a Property, not "
                    f"{type(path_or_text).__name__}")


def _network(network, load_options) -> Graph:
    if isinstance(network, Graph):
        if load_options:
            raise InputError(f"load_options ({', '.join(load_options)}) apply only when the "
                             "network is given as a path")
        return network
    if isinstance(network, (str, os.PathLike)):
        return load_network(network, **dict(load_options or {}))
    raise TypeError(f"network must be a path or a Graph, not {type(network).__name__}")


def _float_eval(graph: Graph, float_replay: bool | None):
    """The onnxruntime replay of an ONNX-sourced graph (see `verify`'s float_replay)."""
    if float_replay is False:
        return None
    if graph.meta.get("format") != "onnx":
        if float_replay:
            raise InputError(f"{graph.source}: float_replay=True needs a network loaded from "
                             f"ONNX (format {graph.meta.get('format', 'unknown')!r})")
        return None
    if float_replay is None and importlib.util.find_spec("onnxruntime") is None:
        return None
    return _frontends.ort_evaluator(graph.meta["source"])


def _check_timeout(timeout) -> None:
    if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout)
                                    and timeout > 0):
        raise InputError(f"timeout must be a finite number of seconds > 0 or None, got {timeout!r}")


def verify(network: str | os.PathLike | Graph, property: str | os.PathLike | Property, *,
           engine: str = "auto", backend: str = "z3", timeout: float | None = None, jobs: int | None = None,
           split: int | None = None, sigmoid: str = "auto", executor: str = "local",
           memory_mb: int | None = None, float_replay: bool | None = None,
           options: VerifyOptions | None = None,
           load_options: Mapping[str, Any] | None = None) -> Outcome:
    """Decide whether any input in the property's region reaches its unsafe outputs.

    Runs the engine `nnsmt verify` runs (`nnsmt.engine.verify.verify`). Every sat is replayed
    in exact arithmetic before it is reported; for networks loaded from ONNX it is replayed
    in onnxruntime too (VNN-COMP's check), and the result is recorded in the counterexample.

    Args:
        network: a `Graph`, or a model file for `load_network`.
        property: a `Property`, a VNN-LIB file, or VNN-LIB text (see `load_property`).
        engine: "auto" (the best nnsmt has for the network: input splitting for up to 16
            inputs, branch and bound on ReLU phases above), "plain", "bounded", "split" or "bab".
        backend: the solver: "z3", "cvc5", "dreal", "pysmt:SOLVER" or "smt2:COMMAND"
            (see `available_backends`).
        timeout: seconds for the whole instance (None: no limit); on expiry the status is
            "unknown" with reason "timeout". Solvers run in child processes killed at it.
        jobs: sub-queries of the split engine solved at once, each in its own process
            (None: one per core).
        split: the split engine's most sub-queries (None: 4096 up to 16 inputs, else 1).
        sigmoid: "auto", "exp" (exact; needs a backend with exp) or "pwl" (a sound
            piecewise-linear relaxation refined at each rejected candidate).
        executor: where sub-queries run: "local" processes or "ray".
        memory_mb: memory cap of each solver process (None: no cap).
        float_replay: replay a sat in onnxruntime: None (default) when the network came from
            ONNX and onnxruntime is installed; True requires it; False replays exactly only.
        options: a complete `VerifyOptions` instead of the keywords above (which must then
            keep their defaults).
        load_options: loader options (`weights`, `arch`) when `network` is a path.

    Returns:
        An `Outcome`: `status` "sat" with `witness` a `Counterexample`, "unsat", "unknown"
        or "error" (with `reason`); `engine` and `notes` say how it was decided.

    Raises:
        InputError: unreadable network or property, sizes that do not match, bad options.
        UnsupportedError: the network or property uses what nnsmt cannot decide.
        BackendUnavailable: the backend (or onnxruntime, with float_replay=True) is missing.

    Example:
        >>> o = verify("examples/classifier.onnx", "examples/class1_margin.vnnlib")
        >>> o.status, o.witness.float_replay
        ('sat', 'onnxruntime')
    """
    _check_timeout(timeout)
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"jobs must be an integer >= 1 or None, got {jobs!r}")
    given = dict(engine=engine, backend=backend, timeout=timeout, jobs=jobs, split=split,
                 sigmoid=sigmoid, executor=executor, memory_mb=memory_mb)
    if options is None:
        options = VerifyOptions(**given)
    else:
        default = {f.name: f.default for f in dataclasses.fields(VerifyOptions)}
        changed = [k for k, v in given.items() if v != default[k]]
        if changed:
            raise InputError(f"give either options= or the keywords {', '.join(changed)}, not both")
    graph = _network(network, load_options)
    prop = load_property(property)
    return _engine.verify(graph, prop, options, _float_eval(graph, float_replay))


def load_query(path: str | os.PathLike) -> Query2:
    """Parse a VNN-LIB 2 query file with the standard's parser, keeping constants exact.

    Its `prop` is the whole query as one property over flat names (inputs X_k, hidden nodes
    and outputs Y_k; `offsets` says where each declared variable starts): see
    `nnsmt.vnnlib2.load_query`.

    Args:
        path: the query file.

    Returns:
        A `Query2`: its networks (with their declarations) and the property.

    Raises:
        InputError: unreadable file, or a parse or typing error (naming file and line).

    Example:
        >>> q = load_query("examples/pair_margin.vnnlib")
        >>> [n.name for n in q.networks], q.networks[1].equal_to, q.prop.n_inputs, q.prop.n_outputs
        (['f', 'g'], 'f', 4, 14)
    """
    from nnsmt.vnnlib2 import load_query as _load
    return _load(path)


def verify_query(query: str | os.PathLike | Query2, networks: Mapping[str, str | os.PathLike], *,
                 backend: str = "z3", timeout: float | None = None,
                 options: VerifyOptions | None = None) -> tuple[Outcome, list]:
    """Decide a VNN-LIB 2 query as `nnsmt verify QUERY --network NAME=FILE ...` does.

    The networks' element types give the semantics: `real` is exact over the reals; float16,
    float32 and float64 are sound for IEEE execution of the ONNX models in that type (unsat
    holds in any summation order; sat only with inputs of that type whose onnxruntime run
    satisfies the query exactly). See `nnsmt.engine.standard`.

    Args:
        query: a VNN-LIB 2 file or a `Query2` (`load_query`).
        networks: network name -> ONNX file, for every network not declared `equal-to`.
        backend: the solver, as for `verify`.
        timeout: seconds for the whole query (None: no limit).
        options: a complete `VerifyOptions` instead of `backend` and `timeout`.

    Returns:
        (outcome, assignment): the `Outcome`, and for sat every declared variable with its
        values as a list of (`Decl`, values) in declaration order (empty otherwise).

    Raises:
        InputError: the standard's error conditions (a network without a model or a model
            without a network, element types that differ from the models'), bad files.
        UnsupportedError: element types nnsmt cannot be sound for, or unsupported operators.

    Example:
        >>> o, values = verify_query("examples/class1_margin_f32.vnnlib",
        ...                          {"classifier": "examples/classifier.onnx"})
        >>> o.status, [(d.name, d.dtype, len(v)) for d, v in values]
        ('sat', [('X', 'float32', 2), ('Y', 'float32', 3)])
    """
    from nnsmt.engine.standard import assignment, prepare, verify as _verify
    _check_timeout(timeout)
    q = query if isinstance(query, Query2) else load_query(query)
    opts = options or VerifyOptions(backend=backend, timeout=timeout)
    inst = prepare(q, {k: str(v) for k, v in networks.items()})
    o = _verify(inst, opts)
    return o, (assignment(inst, o.witness) if o.status == "sat" else [])


def _domain(domain, graph: Graph) -> InputDomain:
    """An `InputDomain`, a box.json or VNN-LIB file, or (lo, hi), checked against the network."""
    from nnsmt.domain import box_domain, load_domain
    dim = graph.inputs[0].dim if len(graph.inputs) == 1 else None
    if isinstance(domain, (str, os.PathLike)):
        return load_domain(domain, dim)
    if isinstance(domain, (tuple, list)) and len(domain) == 2 or \
            getattr(domain, "ndim", None) == 2 and len(domain) == 2:  # also a 2 x n numpy array
        domain = box_domain(*domain, source="domain")
    if not isinstance(domain, InputDomain):
        raise TypeError(f"domain must be an InputDomain, a file, or (lo, hi), not {type(domain).__name__}")
    if dim is not None and domain.dim != dim:
        raise InputError(f"{domain.source}: the domain has {domain.dim} inputs, the network {dim}")
    return domain


def _stability_options(method: str, timeout, options: StabilityOptions | None) -> StabilityOptions:
    _check_timeout(timeout)
    if options is None:
        return StabilityOptions(method, timeout)
    if (method, timeout) != ("per-neuron", STABILITY_TIMEOUT):
        raise InputError("give either options= or the keywords method and timeout, not both")
    return options


def stable(network: str | os.PathLike | Graph, domain, *, backend: str = "cvc5",
           method: str = "per-neuron", timeout: float | None = STABILITY_TIMEOUT, confirm: str | None = None,
           options: StabilityOptions | None = None,
           load_options: Mapping[str, Any] | None = None) -> Stability:
    """Which ReLUs never switch over an input domain (`nnsmt stable` from Python).

    Every ReLU is stably active (its pre-activation is >= 0 on the whole domain), stably
    inactive (<= 0), unstable (two inputs of the domain, replayed exactly, give it both signs:
    `Stability.witnesses`) or unknown (a question no query or branch and bound settled in
    time). Stable verdicts are proofs (rigorous bounds, or an exact solver's unsat); see
    `nnsmt.queries.stability` for the steps.

    Args:
        network: a `Graph`, or a model file for `load_network` (one input).
        domain: an `InputDomain`, a box.json or VNN-LIB file (its input boxes), or (lo, hi)
            with a bound per input (numbers, numpy arrays, Fractions or rational strings;
            exact), or a 2 x n numpy array.
        backend: the solver of the exact queries (cvc5 by default, as the command; a MILP
            "milp:highs"/"milp:scip" only steers: its claims are confirmed exactly).
        method: "per-neuron" or "single" (the seed's harvesting query).
        timeout: seconds per query (None: no limit); a question it cuts off is unknown unless
            branch and bound settles it.
        confirm: the exact backend of a MILP's claims (default cvc5 for a MILP).
        options: a complete `StabilityOptions` instead of `method` and `timeout`.
        load_options: loader options (`weights`, `arch`) when `network` is a path.

    Returns:
        A `Stability`: `states` (ReLU node -> per neuron 1 active, -1 inactive, 0 unstable,
        2 unknown), `counts()`, `witnesses`, how each verdict was reached, and `gaps`: per
        unknown neuron its open question, sound bounds and the values its inputs met.

    Raises:
        InputError: unreadable network or domain, sizes that do not match, bad options.
        UnsupportedError: a network with more than one input, or nodes the queries cannot take.
        BackendUnavailable: the backend is missing.

    Example:
        >>> st = stable("examples/digits/digits_l1.onnx", "examples/digits/box.json")
        >>> st.counts()["unknown"]
        0
    """
    from nnsmt.queries.stability import classify
    opts = _stability_options(method, timeout, options)
    graph = _network(network, load_options)
    solve = _driver.solver(backend)
    return classify(graph, _domain(domain, graph), solve, opts, _driver.claims_solver(solve, confirm)[1])


def compress(network: str | os.PathLike | Graph, domain, *, backend: str = "cvc5",
             method: str = "per-neuron", timeout: float | None = STABILITY_TIMEOUT, confirm: str | None = None,
             prove: bool = True, tolerance=0, options: StabilityOptions | None = None,
             load_options: Mapping[str, Any] | None = None) -> Compression:
    """Remove the stable ReLUs exactly and prove the smaller network equivalent on the domain.

    `nnsmt compress` from Python, without writing files. Stably inactive neurons are deleted, stably active ones folded into the next layer; an
    unknown one stays a ReLU. With `prove`, the equivalence query (|f(x) - g(x)| <= tolerance
    on every output, for every x of the domain) runs on `backend` with `timeout`.

    Args:
        network: a `Graph`, or a model file for `load_network` (one input).
        domain: as for `stable`.
        backend: the solver of the classification and of the equivalence query (cvc5).
        method: as for `stable`.
        timeout: seconds per query, the equivalence query's included (None: no limit).
        confirm: as for `stable`.
        prove: decide the equivalence query.
        tolerance: its tolerance (0: exactly equal; a number, Fraction or rational string).
        options: as for `stable`.
        load_options: as for `stable`.

    Returns:
        A `Compression`: `graph` (the smaller network, an IR `Graph`), `stability`, the sizes
        `before` and `after`, and `equivalence` ("unsat": proved equivalent; "not checked"
        without `prove`).

    Raises:
        as `stable`; InputError for a negative tolerance.

    Example:
        >>> r = compress("examples/digits/digits_l1.onnx", "examples/digits/box.json")
        >>> r.equivalence, r.after["relus"] < r.before["relus"]
        ('unsat', True)
    """
    from nnsmt.queries.compress import compress as _compress
    from nnsmt.queries.stability import classify
    opts = _stability_options(method, timeout, options)
    copts = CompressOptions(opts, prove, tolerance)
    graph = _network(network, load_options)
    dom = _domain(domain, graph)
    solve = _driver.solver(backend)
    exact = _driver.claims_solver(solve, confirm)[1]
    st = classify(graph, dom, solve, opts, exact) if exact is not None else None
    return _compress(graph, dom, solve, copts, stability=st)


def solve(query: Query, backend: str = "z3", timeout: float | None = None, *,
          memory_mb: int | None = None) -> Outcome:
    """Decide any query on one backend: compile, solve, then certify the model or refine.

    A sat is reported only after `query.certify` accepts the model; a query that cannot
    certify it may refine itself (`query.refine`) and be solved again within the same time.

    Args:
        query: a `Query`, e.g. a `VerifyQuery` or a `ScriptQuery`.
        backend: the solver (see `available_backends`).
        timeout: seconds for all rounds (None: no limit, solving in this process); on expiry
            the status is "unknown" with reason "timeout".
        memory_mb: memory cap of the solver process.

    Returns:
        An `Outcome` whose `witness` (for sat) is what `query.certify` returned.

    Raises:
        TypeError: `query` is not a query (a `Script` needs wrapping in a `ScriptQuery`).
        BackendUnavailable: the backend is not installed.
        UnsupportedError: the backend cannot decide the script (e.g. exp on z3).

    Example:
        >>> q = VerifyQuery(load_network("examples/classifier.onnx"),
        ...                 load_property("examples/corner_robust.vnnlib"))
        >>> solve(q, "cvc5", timeout=60).status
        'unsat'
    """
    missing = [a for a in ("kind", "options", "compile", "certify", "refine") if not hasattr(query, a)]
    if missing:
        hint = " (wrap a Script in ScriptQuery)" if isinstance(query, Script) else ""
        raise TypeError(f"{type(query).__name__} is not a Query: it has no "
                        f"{', '.join(missing)}{hint}")
    _check_timeout(timeout)
    return _driver.solve(query, backend, timeout, memory_mb=memory_mb)


def to_smtlib(query_or_script: Query | Script, *, commands: bool = True) -> str:
    """The SMT-LIB 2.6 text of a query (its compiled script) or of a script.

    Constants are exact rationals; each network value is one `define-fun` and each property
    assertion a named `assert`. The text is deterministic and any SMT-LIB solver reads it.

    Args:
        query_or_script: a `Query` (compiled with `compile()`) or a `Script`.
        commands: also write `set-logic`, `check-sat`, `get-value` and `exit` (False: only
            declarations, definitions and assertions).

    Returns:
        The SMT-LIB2 text.

    Raises:
        TypeError: the argument is neither a query nor a script.

    Example:
        >>> q = VerifyQuery(load_network("examples/classifier.onnx"),
        ...                 load_property("examples/class1_margin.vnnlib"))
        >>> "(check-sat)" in to_smtlib(q)
        True
    """
    if isinstance(query_or_script, Script):
        script = query_or_script
    elif callable(getattr(query_or_script, "compile", None)):
        script = query_or_script.compile()
    else:
        raise TypeError(f"to_smtlib takes a Query or a Script, not {type(query_or_script).__name__}")
    return _to_smtlib(script, commands=commands)


def available_backends() -> dict[str, str | None]:
    """The solver backends nnsmt knows, each with None if it loads or the reason it does not.

    The MILP backends "milp:highs" and "milp:scip" are listed too. Besides these names,
    "pysmt:SOLVER" (any solver pySMT finds) and "smt2:COMMAND" (a solver binary fed SMT-LIB2
    on stdin, e.g. "smt2:z3 -in") are accepted wherever a backend is.

    Returns:
        Backend name -> None when installed, else one line saying what is missing and how
        to install it.

    Example:
        >>> available_backends()["z3"] is None
        True
    """
    return _backends.available()
