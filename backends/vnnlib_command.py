"""Any VNN-LIB 2 verifier: `vnnlib:COMMAND` runs `COMMAND verify QUERY --network N=FILE
--timeout S` (the standard's chapter 5 interface) and reads its verdict and assignment.

The backend does not read the script's SMT terms: it re-asks the question the script encodes.
A VNN-LIB 1.0 verification script (`nnsmt.queries.verify.verify_script`: meta "network" is
the ONNX file, the asserts named `prop_l<line>` are the property's) becomes a VNN-LIB 2.0
query over the model's own input and output shapes and element type
(`nnsmt.assignment.vnnlib1_to_2`). A VNN-LIB 2 script (meta "networks", "decls" and the query
file in "query_file", or in "query" when that is a path) is passed as it is. The sub-box of an
input split (the `split_box` assertion) is added to either. The verifier's sat assignment comes
back as exact values of the script's inputs (X_i), which nnsmt replays like any solver's model.

What each answer becomes:
    sat + a well-formed assignment -> sat (model: every input element, exact)
    unsat -> unsat;  unknown -> unknown;  timed-out, or killed at the deadline -> unknown "timeout"
    a verdict with a nonzero exit code, a malformed or incomplete assignment, output whose
    first line is not a verdict, death by a signal -> error, with the reason
stderr is the verifier's log: it is ignored, and quoted only to explain an error.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from nnsmt.assignment import (AssignmentError, Decl, ONNX_TYPES, as_model, assertion_text, decls_of,
                              flat_names, parse_assignment, vnnlib1_to_2)
from nnsmt.errors import InputError, NnsmtError
from nnsmt.result import FEATURES, Capabilities, Result, SolveOptions
from nnsmt.terms import Script
from nnsmt.vnnlib import Property

from .base import Backend
from .smt2_command import command_argv

GRACE_S = 0.25  # past the timeout before the verifier's process group is killed (less than
# nnsmt.backends.isolate's grace, so that inside a child this backend kills its verifier first)
REAP_S = 2.0  # after the kill, how long to wait for the pipes of a process that escaped its group
VERDICTS = ("sat", "unsat", "unknown", "timed-out")
_PROP = re.compile(r"prop_l(\d+)(?:_\d+)?\Z")
_ELEM = {code: name for name, code in ONNX_TYPES.items() if name != "real"}


class Unfit(NnsmtError):
    """A script this backend cannot turn into a VNN-LIB query (its message is the reason)."""


def _tail(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else "..." + text[-n:]


# ---------------------------------------------------------------------------------------------
# The question a script asks, as a VNN-LIB 2 query


def _onnx_io(path: str) -> tuple[list[tuple[str, str, tuple]], list[tuple[str, str, tuple]]]:
    """The model's inputs and outputs: (ONNX name, VNN-LIB element type, shape with None for a
    dynamic dimension). Initializers that IR-3 models list as inputs are not inputs."""
    import onnx
    try:
        g = onnx.load(path, load_external_data=False).graph
    except Exception as e:  # onnx raises DecodeError, OSError, ...
        raise Unfit(f"cannot read the network {path} as ONNX: {e}") from None
    inits = {t.name for t in g.initializer}

    def io(v, kind):
        t = v.type.tensor_type
        if t.elem_type not in _ELEM:
            raise Unfit(f"{path}: {kind} {v.name!r} has ONNX element type {t.elem_type}, which VNN-LIB 2 "
                        "cannot declare")
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
        return v.name, _ELEM[t.elem_type], shape

    return ([io(v, "input") for v in g.input if v.name not in inits], [io(v, "output") for v in g.output])


def _concrete(shape: tuple, n: int | None) -> tuple[int, ...]:
    """`shape` with its dynamic dimensions made 1 (the standard has the query instantiate
    them), or, when that does not hold `n` values and one dimension is dynamic, that one
    dimension holding the rest."""
    fixed = tuple(1 if d is None else d for d in shape)
    dyn = [i for i, d in enumerate(shape) if d is None]
    if n is None or math.prod(fixed) == n or len(dyn) != 1:
        return fixed
    rest = math.prod(fixed)
    if n % rest:
        return fixed
    return fixed[:dyn[0]] + (n // rest,) + fixed[dyn[0] + 1:]


def _v1_query(script: Script) -> tuple[str, dict[str, str], list[tuple[Decl, int]]]:
    """(query text, networks, decls with offsets) of a VNN-LIB 1.0 verification script."""
    meta = script.meta
    net = str(meta.get("network") or "")
    if not net:
        raise Unfit("the script names no network file")
    if any(n.startswith("box_") for n, _ in script.asserts):
        raise Unfit("the network has symbolic parameters: a VNN-LIB verifier checks the weights in "
                    f"{net}, not their boxes")
    ins, outs = _onnx_io(net)
    if len(ins) != 1 or len(outs) != 1:
        raise Unfit(f"{net} has {len(ins)} inputs and {len(outs)} outputs; a VNN-LIB 1.0 property "
                    "speaks of one of each")
    asserts = []
    for name, t in script.asserts:
        m = _PROP.match(name)
        if m:
            asserts.append((int(m[1]), t))
        elif name == "split_box":
            asserts.append((0, t))
    if not any(line for line, _ in asserts):
        raise Unfit("the script has no property assertions (prop_l<line>)")
    (_, xt, xs), (_, yt, ys) = ins[0], outs[0]
    if xt != yt:
        raise Unfit(f"{net}: input {xt} and output {yt}: a query comparing them needs one element type")
    n_in = len(meta.get("inputs") or ()) or None  # the network nnsmt read: the shape must hold it
    x = Decl("X", xt, _concrete(xs, n_in), "input", "N")
    y = Decl("Y", yt, _concrete(ys, None), "output", "N")
    prop = Property(n_in or x.size, y.size, tuple(asserts), str(meta.get("property") or "<property>"))
    text = vnnlib1_to_2(prop, x.shape, y.shape, xt)
    return text, {"N": str(Path(net).resolve())}, [(x, 0), (y, 0)]


def _v2_query(script: Script) -> tuple[str, dict[str, str], list[tuple[Decl, int]]]:
    """(query text, networks, decls with offsets) of a VNN-LIB 2 script, its split box added."""
    meta = script.meta
    name = meta.get("query_file") or meta.get("query")
    if not name or name == "verify":
        raise Unfit("the VNN-LIB 2 script names no query file (meta query_file / query)")
    path = Path(str(name))
    try:
        text = path.read_text(encoding="utf-8-sig")
        decls = decls_of(meta["decls"])
    except (OSError, UnicodeDecodeError) as e:
        raise Unfit(f"cannot read the query {path}: {e}") from None
    except (InputError, ValueError, TypeError) as e:
        raise Unfit(f"the script's declarations are malformed: {e}") from None
    boxes = [t for n, t in script.asserts if n == "split_box"]
    if boxes:
        names = flat_names(decls)

        def var(name):
            if name not in names:
                raise Unfit(f"the split box names {name}, which no declaration holds")
            d, k = names[name]
            return d.ref(k), d.dtype
        extra = [a for a in (assertion_text(t, var) for t in boxes) if a]
        text = text.rstrip("\n") + "\n; nnsmt: the sub-box of an input split\n" + "\n".join(extra) + "\n"
    nets = {str(k): str(Path(str(v)).resolve()) for k, v in dict(meta["networks"]).items()}
    return text, nets, decls


def query_of(script: Script) -> tuple[str, dict[str, str], list[tuple[Decl, int]]]:
    """The VNN-LIB 2 query a script asks: (text, network name -> ONNX file, declarations with
    their offsets in nnsmt's flat names). Raises Unfit (or UnsupportedError) with the reason."""
    meta = script.meta
    if "decls" in meta and "networks" in meta:
        return _v2_query(script)
    if meta.get("query") == "verify":
        return _v1_query(script)
    kind = meta.get("query") or "this"
    raise Unfit(f"a VNN-LIB verifier answers verification queries; {kind} scripts are not one")


# ---------------------------------------------------------------------------------------------
# Running the verifier


def run_command(argv: list[str], deadline: float | None, cwd: str, stderr_path: str):
    """(exit code or None when killed at `deadline` (perf_counter), stdout). The verifier runs
    in its own session: at the deadline its whole process group is killed, wrappers' children
    included; stderr goes to a file."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                cwd=cwd, start_new_session=True)
    try:
        left = None if deadline is None else max(0.0, deadline - time.perf_counter())
        out, _ = proc.communicate(timeout=left)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        if proc.returncode is None:  # the deadline, or an exception (KeyboardInterrupt) here
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=REAP_S)
    except subprocess.TimeoutExpired:  # a descendant left the group and holds stdout open
        if proc.stdout:
            proc.stdout.close()
        proc.wait()


class VnnlibCommandBackend(Backend):
    """Runs `command` (shlex-split, e.g. `my-verifier --fast`) as a VNN-LIB 2 verifier."""

    # it never reads the terms, so any script features are fine; "vnnlib" tells the engine
    # that it answers whole verification questions rather than SMT scripts
    capabilities = Capabilities(frozenset(FEATURES) | {"vnnlib"})

    def __init__(self, command: str):
        self.argv = command_argv(command, "vnnlib", "my-verifier", "verifier")
        self.name = f"vnnlib:{command}"

    def supports(self, features) -> str | None:
        return None

    def run(self, script: Script, timeout: float | None, options: SolveOptions, t0: float) -> Result:
        if timeout is not None and timeout <= 0:
            return Result("unknown", self.name, "timeout", stats={"solve_s": 0.0})
        try:
            text, networks, decls = query_of(script)
        except NnsmtError as e:
            return Result("error", self.name, str(e))
        deadline = None if timeout is None else t0 + timeout + GRACE_S
        with tempfile.TemporaryDirectory(prefix="nnsmt-vnnlib-") as tmp:
            query = Path(tmp) / "query.vnnlib"
            query.write_text(text, encoding="utf-8")
            argv = self.argv + ["verify", str(query)]
            for name, path in networks.items():
                argv += ["--network", f"{name}={path}"]
            if timeout is not None:  # the standard's timeout is whole seconds; ours kills at + grace
                argv += ["--timeout", str(max(1, math.floor(timeout)))]
            start = time.perf_counter()
            try:
                code, out = run_command(argv, deadline, tmp, str(Path(tmp) / "stderr"))
            except OSError as e:
                return Result("error", self.name, f"cannot run {self.argv[0]}: {e}")
            stats = {"solve_s": time.perf_counter() - start}
            err = (Path(tmp) / "stderr").read_text("utf-8", "replace")
        if code is None:
            return Result("unknown", self.name, "timeout", stats=stats | {"killed": 1.0})
        return self.answer(code, out, err, decls, stats)

    def answer(self, code: int, out: str, err: str, decls: list[tuple[Decl, int]], stats: dict) -> Result:
        """The Result of a verifier that exited with `code` after printing `out` (stdout) and
        `err` (stderr)."""
        def error(msg):
            return Result("error", self.name, msg, stats=stats)

        if code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"signal {-code}"
            return error(f"the verifier died of {sig}" + (f"; stderr: {_tail(err)}" if err.strip() else ""))
        head, _, rest = out.partition("\n")
        verdict = head.strip()
        if verdict not in VERDICTS:
            if code != 0:
                why = _tail(err) or _tail(out) or "no output"
                return error(f"the verifier exited with code {code} without a verdict: {why}")
            return error(f"unparseable verifier output: the first line {_tail(head, 80)!r} is not one of "
                         f"{', '.join(VERDICTS)}")
        if code != 0:
            return error(f"exit code {code} disagrees with the verdict {verdict!r}"
                         + (f"; stderr: {_tail(err)}" if err.strip() else ""))
        if verdict == "unsat":
            return Result("unsat", self.name, stats=stats)
        if verdict == "unknown":
            return Result("unknown", self.name, "the verifier said unknown", stats=stats)
        if verdict == "timed-out":
            return Result("unknown", self.name, "timeout", stats=stats)
        try:
            values = parse_assignment(rest, [d for d, _ in decls], first_line=2)
        except AssignmentError as e:
            return error(f"malformed assignment on the verifier's stdout: {e}")
        return Result("sat", self.name, model=as_model(values, decls), stats=stats)
