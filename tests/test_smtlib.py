"""SMT-LIB2 emission: golden files, exact constants, both solvers' parsers, and the encoding
agreeing exactly with the network."""

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.backends.smtlib import to_smtlib
from nnsmt.encode import encode_graph
from nnsmt.interpret import evaluate_exact
from nnsmt.printer import Printer, fmt_float, fmt_float_array, fmt_fraction
from nnsmt.ir import Affine, Argmax, Const, Graph, Input, Relu, Sym
from nnsmt.terms import And, Cmp, Dot, Not, Num, ScriptBuilder, Var

from conftest import EXAMPLES, GOLDEN, solver_backend
from strategies import mlp_graph, mlp_specs, points


def check_golden(name, text, update):
    path = GOLDEN / name
    if update:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), f"{name} changed; if intended, run `make golden` and review the diff"


def tiny_script():
    g = Graph((Input("x", 2),
               Affine("a1", "x", Const(np.array([[0.1, -2.0], [0.0, 1.0]], dtype=np.float32)),
                      Const(np.array([Fraction(1, 3), 0], dtype=object))),
               Relu("r1", "a1"),
               Affine("a2", "r1", Sym("w", (2, 2), lo=-1, hi=1), Sym("c", (2,))),
               Argmax("k", "a2")), ("k",)).check()
    b = ScriptBuilder()
    names = encode_graph(g, b)
    b.assert_("out", Cmp("=", Var(names["k"][0]), Num(1)))
    return b.build()


def test_golden_tiny(update_golden):
    check_golden("tiny_sym_argmax.smt2", to_smtlib(tiny_script()), update_golden)


def test_golden_example_verify(update_golden):
    from nnsmt.frontends import load_onnx
    from nnsmt.queries.verify import verify_script
    from nnsmt.vnnlib import load_vnnlib
    s = verify_script(load_onnx(EXAMPLES / "classifier.onnx"), load_vnnlib(EXAMPLES / "class1_margin.vnnlib"))
    text = to_smtlib(s)
    # meta comments name the files: keep the golden file independent of where the repo lives
    text = re.sub(r"^; (network|property): .*/", r"; \1: ", text, flags=re.M)
    check_golden("classifier_class1_margin.smt2", text, update_golden)


def test_output_is_deterministic():
    assert to_smtlib(tiny_script()) == to_smtlib(tiny_script())


@pytest.mark.parametrize("q, text", [
    (Fraction(3), "3.0"), (Fraction(-2), "(- 2.0)"), (Fraction(3, 4), "(/ 3 4)"),
    (Fraction(-1, 3), "(- (/ 1 3))"), (Fraction(0), "0.0"),
])
def test_fraction_format(q, text):
    assert fmt_fraction(q) == text


def test_float_constants_are_exact_rationals():
    """0.1f is 13421773/134217728: the text must carry that rational, not '0.1'."""
    text = "\n".join(l for l in to_smtlib(tiny_script()).splitlines() if not l.startswith(";"))
    assert "(/ 13421773 134217728)" in text and "0.1" not in text
    for m in re.finditer(r"\(/ (\d+) (\d+)\)", text):
        assert Fraction(int(m[1]), int(m[2])).denominator == int(m[2])  # written in lowest terms


def z3_parse(text):
    import z3
    z3.Solver().from_string(text)


def cvc5_parse(text):
    import cvc5
    tm = cvc5.TermManager()
    slv = cvc5.Solver(tm)
    slv.setOption("strict-parsing", "true")
    sm = cvc5.SymbolManager(tm)
    p = cvc5.InputParser(slv, sm)
    p.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, text.replace("(check-sat)", "")
                     .replace("(exit)", ""), "t")
    while not (cmd := p.nextCommand()).isNull():
        if "get-value" not in str(cmd):
            cmd.invoke(slv, sm)


@pytest.mark.parametrize("parse", [z3_parse, cvc5_parse], ids=["z3", "cvc5"])
@settings(max_examples=25, deadline=None)
@given(layers=mlp_specs(), sym=st.booleans())
def test_emitted_scripts_parse(parse, layers, sym):
    solver_backend(parse.__name__.split("_")[0])
    g = mlp_graph(layers)
    if sym:  # make the last layer symbolic: nonlinear products, boxes
        last = g.nodes[-1]
        n, m = last.weight.shape
        g = g.replace(nodes=g.nodes[:-1] + (Affine(last.name, last.x, Sym("w", (n, m), lo=-1, hi=1),
                                                    last.bias),)).check()
    b = ScriptBuilder()
    names = encode_graph(g, b)
    b.assert_("goal", Cmp(">=", Var(names[g.outputs[0]][0]), Num(Fraction(1, 7))))
    parse(to_smtlib(b.build()))


@pytest.mark.parametrize("name", ["z3", "cvc5"])
@settings(max_examples=15, deadline=None)
@given(layers=mlp_specs(max_hidden=2, max_width=3), data=st.data())
def test_encoding_equals_exact_evaluation(name, layers, data):
    """Fix X to a point: the solver must force Y to exactly the exact evaluation (sat when
    Y equals it, unsat when any Y differs)."""
    backend = solver_backend(name)
    g = mlp_graph(layers)
    x = [Fraction(v) for v in data.draw(points(g.inputs[0].dim))]
    y = evaluate_exact(g, {"x": x})[g.outputs[0]]

    def script(equal):
        b = ScriptBuilder()
        names = encode_graph(g, b)
        b.assert_("point", And(tuple(Cmp("=", Var(n), Num(v)) for n, v in zip(names["x"], x))))
        outs = tuple(Cmp("=", Var(n), Num(v)) for n, v in zip(names[g.outputs[0]], y))
        b.assert_("y", And(outs) if equal else Not(And(outs)))
        return b.build()

    assert backend.solve(script(True), timeout=30).status == "sat"
    assert backend.solve(script(False), timeout=30).status == "unsat"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_vectorised_float_format_is_exact(values):
    a = np.array(values, dtype=np.float64)
    out = fmt_float_array(a)
    assert out == [fmt_float(v) for v in values]
    # the dot-product fast path writes the same products as the exact one, term by term
    names = np.array([f"v{i}" for i in range(len(values))], dtype=object)
    exact = Printer(lambda q: fmt_fraction(q)).dot(Dot(a.astype(object), names))
    assert Printer().dot(Dot(a, names)) == exact
    for v, s in zip(values, out):  # and it denotes exactly v
        m = re.fullmatch(r"(\(- )?(?:(\d+)\.0|\(/ (\d+) (\d+)\))\)?", s)
        q = Fraction(int(m[2])) if m[2] else Fraction(int(m[3]), int(m[4]))
        assert (-q if m[1] else q) == Fraction(v)
