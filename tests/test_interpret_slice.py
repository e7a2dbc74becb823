"""Graph.slice keeps exactly the dependencies of the values asked for; interpret with an
initial_env (partial evaluation) equals interpreting the whole graph."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import FloatDomain, evaluate, interpret
from nnsmt.ir import Affine, Argmax, Const, Graph, Input, Relu, Sigmoid, operands

small = st.floats(-2, 2, width=32, allow_subnormal=False)


@st.composite
def random_graphs(draw, max_nodes=9):
    """Checked graphs of 1-2 inputs where each node reads a random earlier vector value: chains
    with side branches and several heads (every node type has one operand, so a DAG of them is a
    forest over the inputs)."""
    nodes = [Input(f"x{i}", draw(st.integers(1, 3))) for i in range(draw(st.integers(1, 2)))]
    dims = {n.name: n.dim for n in nodes}
    vectors = [n.name for n in nodes]
    for k in range(draw(st.integers(1, max_nodes))):
        x = draw(st.sampled_from(vectors))
        op = draw(st.sampled_from(["affine", "affine", "relu", "sigmoid", "argmax"]))
        name = f"v{k}"
        if op == "affine":
            m, n = draw(st.integers(1, 3)), dims[x]
            w = np.array(draw(st.lists(small, min_size=m * n, max_size=m * n))).reshape(m, n)
            b = np.array(draw(st.lists(small, min_size=m, max_size=m)))
            nodes.append(Affine(name, x, Const(w), Const(b)))
            dims[name] = m
        else:
            nodes.append({"relu": Relu, "sigmoid": Sigmoid, "argmax": Argmax}[op](name, x))
            dims[name] = 1 if op == "argmax" else dims[x]
        if op != "argmax":
            vectors.append(name)
    names = [n.name for n in nodes]
    outs = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    return Graph(tuple(nodes), tuple(outs), {"source": "random.json"}).check()


def ancestors(g: Graph, names) -> set[str]:
    """The dependency closure, recursively from the definition (an independent oracle)."""
    out: set[str] = set()

    def visit(v):
        if v not in out:
            out.add(v)
            for x in operands(g.node(v)):
                visit(x)
    for v in names:
        visit(v)
    return out


def inputs_for(g: Graph, data):
    return {n.name: data.draw(st.lists(small, min_size=n.dim, max_size=n.dim)) for n in g.inputs}


@settings(max_examples=80, deadline=None)
@given(random_graphs(), st.data())
def test_slice_keeps_exactly_the_dependencies(g, data):
    want = data.draw(st.lists(st.sampled_from([n.name for n in g.nodes]), min_size=1, max_size=3,
                              unique=True))
    s = g.slice(want)
    need = ancestors(g, want)
    assert [n.name for n in s.nodes] == [n.name for n in g.nodes if n.name in need]
    assert all(a is b for a, b in zip(s.nodes, (n for n in g.nodes if n.name in need)))
    assert s.outputs == tuple(want) and s.meta == g.meta
    assert s.check() is s
    # the slice computes the same values, from only the inputs it kept
    full = evaluate(g, inputs_for(g, data))
    part = evaluate(s, {n.name: full[n.name] for n in s.inputs})
    assert part.keys() == need
    assert all(np.array_equal(part[v], full[v]) for v in need)


@settings(max_examples=80, deadline=None)
@given(random_graphs(), st.data())
def test_interpret_with_initial_env_equals_the_full_run(g, data):
    full = evaluate(g, inputs_for(g, data))
    given_ = data.draw(st.lists(st.sampled_from(list(full)), unique=True))
    calls = []

    class Counting(FloatDomain):  # records which nodes the domain computed
        def __getattribute__(self, k):
            if k in ("input", "affine", "relu", "sigmoid", "argmax"):
                m = super().__getattribute__(k)
                return lambda node, v: (calls.append(node.name), m(node, v))[1]
            return super().__getattribute__(k)

    initial = {v: full[v] for v in given_}
    # an input whose value is given needs none in `inputs`
    inputs = {n.name: full[n.name] for n in g.inputs if n.name not in initial}
    env = interpret(g, Counting(), inputs, initial_env=initial)
    assert env.keys() == full.keys()
    assert all(np.array_equal(env[v], full[v]) for v in full)
    assert all(env[v] is full[v] for v in given_)  # taken as computed
    assert sorted(calls) == sorted(set(full) - set(given_))  # the others computed once


def chain():
    return Graph((Input("x", 2), Affine("a1", "x", Const(np.eye(2)), Const([1.0, -1.0])),
                  Relu("r1", "a1"), Affine("a2", "r1", Const([[1.0, 1.0]]), Const([0.0])),
                  Sigmoid("s", "a1"), Argmax("k", "a1")), ("a2", "k"), {"source": "net.onnx"}).check()


def test_slice_by_hand():
    g = chain()
    assert [n.name for n in g.slice(("r1",)).nodes] == ["x", "a1", "r1"]
    assert [n.name for n in g.slice(["k", "a2"]).nodes] == ["x", "a1", "r1", "a2", "k"]
    assert g.slice("x").nodes == (g.nodes[0],)
    with pytest.raises(InputError, match="net.onnx: no value named 'nope'"):
        g.slice(["a2", "nope"])


def test_partial_evaluation_from_a_hidden_value():
    """Given a hidden value, the nodes after it run without any input (exact values too)."""
    g = chain()
    from nnsmt.interpret import ExactDomain
    a1 = np.array([Fraction(1, 3), Fraction(-2)], dtype=object)
    env = interpret(g.slice(["a2"]), ExactDomain(), {}, initial_env={"x": None, "a1": a1})
    assert list(env["r1"]) == [Fraction(1, 3), 0] and list(env["a2"]) == [Fraction(1, 3)]
    with pytest.raises(InputError, match="no value given for input 'x'"):
        interpret(g, ExactDomain(), {}, initial_env={"a1": a1})


def test_single_io_and_node_lookup():
    g = chain()
    with pytest.raises(UnsupportedError, match=r"net.onnx: robustness needs exactly one input and "
                                               r"one output \(has 1 and 2\)"):
        g.single_io("robustness")
    inp, out = g.replace(outputs=("a2",)).single_io("training")
    assert inp is g.nodes[0] and out == "a2"
    with pytest.raises(InputError, match="no value named 'zz'"):
        g.node("zz")
    assert [n.name for n in g.users()["a1"]] == ["r1", "s", "k"] and g.users()["a2"] == []
