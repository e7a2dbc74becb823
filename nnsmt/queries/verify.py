"""Verification query: does any input satisfy the VNN-LIB property (the unsafe region)?"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Mapping

import numpy as np

from ..encode import encode_graph
from ..errors import InputError, UnsupportedError, ValidationError
from ..interpret import decide, evaluate_enclosure
from ..ir import Exp, Graph, Input, Sigmoid, exact_rational
from ..result import SolveOptions
from ..terms import And, Cmp, Not, Num, Or, Script, ScriptBuilder, Var, atoms, linear_form


def check_compatible(graph: Graph, prop) -> tuple[Input, str]:
    """The graph's single input node and output name, after checking sizes against the property."""
    inp, out = graph.single_io("verification")
    dims = graph.dims()
    src = graph.source
    if inp.dim != prop.n_inputs:
        raise InputError(f"input size mismatch: {src} has {inp.dim} inputs, "
                         f"{prop.source} declares {prop.n_inputs} (X_0..X_{prop.n_inputs - 1})")
    if dims[out] != prop.n_outputs:
        raise InputError(f"output size mismatch: {src} has {dims[out]} outputs, "
                         f"{prop.source} declares {prop.n_outputs} (Y_0..Y_{prop.n_outputs - 1})")
    if graph.meta.get("dropped_softmax") == "true":
        _check_softmax_invariant(prop)
    return inp, out


def _check_softmax_invariant(prop):
    """The IR output is the logits of a dropped softmax: only pairwise comparisons of outputs
    (c*(Y_i - Y_j) op 0) mean the same on logits as on probabilities."""
    for line, t in prop.asserts:
        for atom in atoms(t):
            lf = linear_form(atom.lhs)
            rf = linear_form(atom.rhs)
            if lf is None or rf is None:
                continue
            ys = {k: lf[0].get(k, 0) - rf[0].get(k, 0) for k in set(lf[0]) | set(rf[0])
                  if k.startswith("Y_")}
            ys = {k: v for k, v in ys.items() if v}
            if not ys:
                continue
            xs = [k for k in set(lf[0]) | set(rf[0]) if k.startswith("X_")]
            vals = sorted(ys.values())
            if xs or len(ys) != 2 or vals[0] != -vals[1] or lf[1] != rf[1]:
                raise UnsupportedError(
                    f"{prop.source}:{line}: the network ends in a softmax that nnsmt drops (its "
                    "argmax is kept); only comparisons between two outputs are preserved, not this one")


def verify_script(graph: Graph, prop, encoding: str = "plain", bounds=None,
                  lemmas: str = "bounds", sigmoid: str = "exp", sigmoid_bounds=None,
                  sigmoid_extra=None, exp: str = "exp") -> Script:
    """Script that is sat iff some input satisfies every assertion of `prop`.

    Input elements are declared as X_i, output elements defined as Y_j (the VNN-LIB names);
    each property assertion is named `prop_l<line>` after its source line. With
    encoding="bounded", `bounds` (value name -> Interval, sound over the property's input
    region) default to linear bounds over that region (`nnsmt.domain.property_bounds`).
    `sigmoid`, `exp`: the encodings of sigmoid and exp nodes ("exp" exact, "pwl" relaxed over
    `sigmoid_bounds`, refined at `sigmoid_extra`; `nnsmt.sigmoid`).
    """
    inp, out = check_compatible(graph, prop)
    b = ScriptBuilder()

    def names(node, dim):
        if node == inp.name:
            return [f"X_{i}" for i in range(dim)]
        if node == out:
            return [f"Y_{j}" for j in range(dim)]
        return None

    if out == inp.name:
        raise UnsupportedError("the network's output is its input; nothing to verify")
    if encoding == "bounded" and bounds is None:
        from ..domain import property_bounds
        bounds = property_bounds(graph, prop)
    encode_graph(graph, b, names=names, encoding=encoding, bounds=bounds, lemmas=lemmas,
                 sigmoid=sigmoid, sigmoid_bounds=sigmoid_bounds, sigmoid_extra=sigmoid_extra,
                 exp=exp)
    seen: dict[int, int] = {}
    for line, t in prop.asserts:
        k = seen[line] = seen.get(line, 0) + 1
        b.assert_(f"prop_l{line}" + (f"_{k}" if k > 1 else ""), t)
    b.meta.update({"query": "verify", "network": graph.meta.get("source", ""),
                   "property": prop.source, "encoding": encoding,
                   "inputs": [f"X_{i}" for i in range(inp.dim)]})
    b.meta.update(getattr(prop, "meta", None) or {})  # a VNN-LIB 2 query: its file, networks, decls
    return b.build()


def restrict(script: Script, box, index: int = 0, of: int = 1) -> Script:
    """`script` with its inputs X_j asserted within the closed `box` = (lo, hi) (`split_box`)."""
    lo, hi = box
    box_t = And(tuple(a for j, (l, h) in enumerate(zip(lo, hi))
                      for a in (Cmp(">=", Var(f"X_{j}"), Num(l)), Cmp("<=", Var(f"X_{j}"), Num(h)))))
    return replace(script, asserts=script.asserts + (("split_box", box_t),),
                   meta=script.meta | {"split_index": index, "split_of": of})


def has_sigmoid(graph: Graph) -> bool:
    return any(isinstance(n, Sigmoid) for n in graph.nodes)


def has_exp(graph: Graph) -> bool:
    return any(isinstance(n, Exp) for n in graph.nodes)


def _relaxable(node) -> bool:
    """A node the pwl relaxation replaces: a sigmoid or an exp."""
    return isinstance(node, (Sigmoid, Exp))


def has_inexact(graph: Graph) -> bool:
    """Whether some node has no exact rational value (`nnsmt.ir.exact_rational`: a sigmoid, an
    exp, a fractional power): its witnesses are replayed with certified enclosures."""
    return not all(exact_rational(n) for n in graph.nodes)


@dataclass(frozen=True)
class VerifyQuery:
    """Does any input satisfy the VNN-LIB property (its unsafe region)? sat: a counterexample,
    replayed exactly (certified enclosures through a sigmoid, an exp or a fractional power) and
    by `float_eval` (onnxruntime for ONNX sources); unsat: none exists (over the reals, within
    the network's domain: where every divisor is nonzero, see `nnsmt.ir`).

    Attributes:
        encoding: "plain" or "bounded" (ReLUs fixed where `bounds` show them stable).
        bounds: value name -> Interval, sound over the region (`box`, or the property's).
        box: (lo, hi) restricting the inputs to one sub-box of the region (input splitting).
        sigmoid: the encoding of sigmoid and exp nodes: "exp" (exact; needs a backend with
            exp) or "pwl" (a sound piecewise-linear relaxation, refined at each rejected
            candidate's pre-activations: `relaxed`).
        sigmoid_bounds: pre-activation bounds the pwl relaxation needs (Interval per value).
        float_type: "" (real semantics), or float16/float32/float64: the graph is widened by
            rounding errors (`nnsmt.floatsem`, so unsat covers IEEE execution in that type) and a
            counterexample counts only when `float_eval` runs it in that type and the property
            holds exactly on what it computes.
    """

    graph: Graph
    prop: object
    encoding: str = "plain"
    bounds: Mapping | None = None
    lemmas: str = "bounds"
    box: tuple | None = None
    index: int = 0
    of: int = 1
    sigmoid: str = "exp"
    sigmoid_bounds: Mapping | None = None
    sigmoid_extra: Mapping = field(default_factory=dict)
    float_eval: Callable | None = None
    max_rounds: int = 12
    round: int = 0
    kind: str = "verify"
    options: SolveOptions = SolveOptions()
    float_type: str = ""
    pin_errors: bool = False

    @property
    def relaxed(self) -> bool:
        # float semantics widen the network by rounding errors: an over-approximation too
        return bool(self.float_type) or \
            self.sigmoid != "exp" and (has_sigmoid(self.graph) or has_exp(self.graph))

    @property
    def proves_unsat(self) -> bool:
        """False once the rounding errors are pinned to 0 (a search for a float witness among
        the real executions): its unsat says nothing of the float network."""
        return not self.pin_errors

    def refine_unsat(self, core):
        return None

    def compile(self) -> Script:
        s = self._script()
        if not self.pin_errors:
            return s
        n = self.prop.split_dims
        pins = And(tuple(Cmp("=", Var(f"X_{j}"), Num(0)) for j in range(n, self.prop.n_inputs)))
        return replace(s, asserts=s.asserts + (("float_search", pins),))

    def _script(self) -> Script:
        s = verify_script(self.graph, self.prop, self.encoding, self.bounds, self.lemmas,
                          self.sigmoid, self.sigmoid_bounds, dict(self.sigmoid_extra),
                          exp=self.sigmoid)
        if self.box is None:
            return s
        return restrict(s, self.box, self.index, self.of)

    def certify(self, model):
        """The validated counterexample of `model` (`nnsmt.validate.Counterexample`)."""
        from ..params import sym_params
        from ..validate import validate_counterexample
        try:
            if self.float_type:
                return _certify_float(self.prop, model, self.float_eval, self.float_type, self.graph)
            if sym_params(self.graph):
                return _certify_symbolic(self.graph, self.prop, model)
            if not has_inexact(self.graph):
                return validate_counterexample(self.graph, self.prop, model, self.float_eval)
            return _certify_enclosure(self.graph, self.prop, model, self.float_eval)
        except InputError as e:  # a point outside the network's domain: no witness
            raise ValidationError(f"the candidate is outside the network's domain: {e}") from None

    def refine(self, model, error):
        """Under the pwl relaxation: add the candidate's pre-activations (of every sigmoid and
        exp) as breakpoints, with two neighbours closing in on it round after round. Under
        float semantics, a candidate that does not replay in float first turns the query into
        a search among the real executions (rounding errors pinned to 0)."""
        if self.float_type and not self.pin_errors:
            return replace(self, pin_errors=True, round=self.round + 1)
        if not (has_sigmoid(self.graph) or has_exp(self.graph)) or self.sigmoid == "exp":
            return None
        if not self.relaxed or self.round >= self.max_rounds:
            return None
        x = [Fraction(model[f"X_{i}"]) for i in range(self.graph.inputs[0].dim)]
        try:
            env = evaluate_enclosure(self.graph, {self.graph.inputs[0].name: x})
        except (ValidationError, InputError):  # undecided inside the network, or off its domain
            return None
        extra = {k: list(v) for k, v in self.sigmoid_extra.items()}
        for node in self.graph.nodes:
            if _relaxable(node):
                lo, hi = env[node.x]
                for i, (a, b) in enumerate(zip(lo, hi)):
                    pts = extra.setdefault((node.name, i), [])
                    h = Fraction(1, 1 << min(40, 2 + len(pts) // 3))
                    mid = (Fraction(a) + Fraction(b)) / 2
                    pts.extend((mid, mid - h, mid + h))
        return replace(self, sigmoid_extra=extra, round=self.round + 1)


def _certify_symbolic(graph: Graph, prop, model):
    """A network with symbolic parameters: a counterexample is an input and parameter values
    within their boxes (the solver chose both), replayed exactly with those values. No float
    replay: the source file holds the nominal weights, not these."""
    from ..params import params_from_model, within
    from ..validate import Counterexample
    params = params_from_model(graph, model)
    if not within(graph, params):
        raise ValidationError("the model's parameter values lie outside their boxes")
    x = [Fraction(model[f"X_{i}"]) for i in range(graph.inputs[0].dim)]
    mid = _witness_outputs(graph, prop, x, params)
    if mid is None:
        raise ValidationError("solver model fails the exact replay with its parameter values")
    return Counterexample(tuple(x), mid)


def _certify_float(prop, model, float_eval, dtype: str, graph: Graph | None = None):
    """A counterexample under float semantics: the model's declared inputs (X_0..X_{n-1},
    n = `prop.split_dims`; the rest are rounding errors, which the float run makes itself),
    rounded to `dtype`, run by `float_eval` in that type; the property must hold exactly on
    those inputs and the outputs it computes."""
    from ..validate import Counterexample
    if float_eval is None:
        raise ValidationError(f"no {dtype} evaluator to replay the candidate in")
    n = prop.split_dims if prop.split_dims is not None else prop.n_inputs
    ft = np.dtype(dtype).type
    x = np.array([float(Fraction(model[f"X_{i}"])) for i in range(n)]).astype(ft)
    y = np.asarray(float_eval(x)).reshape(-1)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValidationError(f"the candidate gives inf or NaN when run in {dtype}")
    xq = tuple(Fraction(float(v)) for v in x)
    yq = tuple(Fraction(float(v)) for v in y)
    values = {f"X_{i}": v for i, v in enumerate(xq)} | {f"X_{i}": Fraction(0) for i in range(n, prop.n_inputs)}
    values |= {f"Y_{j}": v for j, v in enumerate(yq)}
    if dtype == "float16":
        # onnxruntime's CPU kernels run float16 models in float32 (inserted casts drop the
        # roundings between ops): its run is no float16 execution. A float16 witness must hold
        # for every float16 execution instead (the widened network's enclosure at the point),
        # which covers onnxruntime's run too; its outputs are reported.
        if graph is None or not _every_execution(graph, prop, xq, n):
            raise ValidationError("the candidate, rounded to float16, does not satisfy the property "
                                  "for every float16 execution (its rounding-error enclosure)")
        return Counterexample(xq, yq, tuple(float(v) for v in y), "onnxruntime", True,
                              "float16: the property holds for every float16 execution (rounding-"
                              "error enclosure); onnxruntime's outputs shown", "float:float16")
    if not prop.holds(values):
        raise ValidationError(f"the candidate, rounded to {dtype}, does not satisfy the property "
                              f"when the model runs in {dtype} in onnxruntime")
    return Counterexample(xq, yq, tuple(float(v) for v in y), "onnxruntime", True,
                          f"onnxruntime {dtype}: the property holds exactly", f"float:{dtype}")


def _every_execution(graph: Graph, prop, xq, n: int) -> bool:
    """Whether the property holds for every output of the widened `graph` at declared inputs
    `xq`, its rounding errors within their bounds at that point (`nnsmt.floatsem.local_bounds`:
    the output bounds come from errors tightened twice): then it holds for every float
    execution at `xq`."""
    from ..bounds import box_interval, propagate_bounds
    from ..floatsem import local_bounds, tighten
    elo, ehi = (h[n:] for h in prop.input_hull())
    if any(v is None for v in elo + ehi):
        return False
    lo, hi = list(xq) + elo, list(xq) + ehi
    for _ in range(3):
        b = propagate_bounds(graph, box_interval(lo, hi), "linear")
        lo, hi = tighten(lo, hi, local_bounds(graph, b))
    out = b[graph.outputs[0]]
    env = {f"X_{i}": (Fraction(a), Fraction(c)) for i, (a, c) in enumerate(zip(lo, hi))} | \
        {f"Y_{j}": (Fraction(float(a)), Fraction(float(c))) for j, (a, c) in enumerate(zip(out.lo, out.hi))}
    return all(_three(t, env) is True for _, t in prop.asserts)


def _witness_outputs(graph: Graph, prop, x, params=None):
    """The midpoints of the certified output enclosures at input `x` when the property holds
    for every output value within them (so for the true outputs), else None."""
    lo, hi = evaluate_enclosure(graph, {graph.inputs[0].name: x}, params)[graph.outputs[0]]
    env = {f"X_{i}": (v, v) for i, v in enumerate(x)} | \
        {f"Y_{j}": (Fraction(a), Fraction(b)) for j, (a, b) in enumerate(zip(lo, hi))}
    if not all(_three(t, env) is True for _, t in prop.asserts):
        return None
    return tuple((Fraction(a) + Fraction(b)) / 2 for a, b in zip(lo, hi))


def _certify_enclosure(graph: Graph, prop, model, float_eval):
    """The counterexample of a network with a node without an exact rational value (sigmoid,
    exp, fractional power): the property must hold for every output value within the certified
    enclosures (so it holds for the true outputs), and in the float replay. The enclosures must
    decide every comparison inside the network (`EnclosureDomain`), else ValidationError."""
    from ..validate import Counterexample, check_float_replay, to_float
    x = [Fraction(model[f"X_{i}"]) for i in range(graph.inputs[0].dim)]
    # a solver's model through exp can hold thousands of digits: its float64 rounding, when it
    # certifies too, is the witness reported (certified the same way, so just as sound)
    short = [Fraction(to_float(v)) for v in x]
    for cand in ([short, x] if short != x else [x]):
        mid = _witness_outputs(graph, prop, cand)
        if mid is not None:
            x = cand
            break
    else:
        raise ValidationError("the candidate does not satisfy the property for the certified "
                              "enclosure of the network's outputs")
    if float_eval is None:
        return Counterexample(tuple(x), mid, replay="enclosure")
    x32 = np.array([to_float(v) for v in x], dtype=np.float32)
    y_float = tuple(float(v) for v in np.asarray(float_eval(x32)).reshape(-1))
    ok, note = check_float_replay(prop, [float(v) for v in x32], mid, y_float)
    return Counterexample(tuple(x), mid, y_float, "onnxruntime" if ok else "", ok, note, "enclosure")


def _range(t, env):
    """Exact interval of a linear term over interval-valued variables."""
    lf = linear_form(t)
    if lf is None:
        return None
    coef, c = lf
    lo = hi = Fraction(c)
    for k, w in coef.items():
        a, b = env[k]
        lo += min(w * a, w * b)
        hi += max(w * a, w * b)
    return lo, hi


def _three(t, env):
    """True / False / None of a property term when variables range over intervals."""
    match t:
        case And():
            vals = [_three(a, env) for a in t.args]
            return False if False in vals else (None if None in vals else True)
        case Or():
            vals = [_three(a, env) for a in t.args]
            return True if True in vals else (None if None in vals else False)
        case Not():
            v = _three(t.arg, env)
            return None if v is None else not v
        case Cmp():
            r = _range(_sub(t.lhs, t.rhs), env)
            if r is None:
                return None
            return decide(t.op, *r)
    return None


def _sub(a, b):
    from ..terms import Add, Mul
    return Add((a, Mul((Num(Fraction(-1)), b))))
