"""One network, three sources, one IR; and the IR interchange (JSON, ONNX, SMT-LIB network).

Every source of a fixture network (ONNX from torch.onnx.export, PyTorch state dict .pt and
.safetensors, Keras JSON + weights, .keras, legacy .h5) must give bit-identical IR and the same
SMT-LIB2 text (up to the `;` comment lines, which name the source file). Every IR JSON emitted
here is validated against the JSON Schema shipped in the package.
"""

import dataclasses
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, have, solver_backend
from nnsmt.cli import main
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.frontends import load_network
from nnsmt.interpret import evaluate, evaluate_exact
from nnsmt.ir import Affine, Const, Graph, Input, Relu, Sym
from nnsmt.serialize import graph_from_json, graph_to_json, load_json, save_json
from nnsmt.terms import Cmp, Num, Var

FIX = Path(__file__).resolve().parent / "fixtures"
REFS = json.loads((FIX / "refs.json").read_text())
SPECS = REFS["specs"]
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (pip install "
                                 "'nnsmt[test]')")


def sources(name):
    """(label, loader) for every saved form of fixture `name`; .pt needs torch."""
    out = [("onnx", lambda: load_network(FIX / f"{name}.onnx")),
           ("safetensors", lambda: load_network(FIX / f"{name}.safetensors", arch=SPECS[name])),
           ("keras-json", lambda: load_network(FIX / f"{name}.json",
                                               weights=FIX / f"{name}.weights.h5"))]
    if have("torch"):
        out.append(("pt", lambda: load_network(FIX / f"{name}.pt", arch=SPECS[name])))
    if (FIX / f"{name}.keras").exists():
        out += [("keras", lambda: load_network(FIX / f"{name}.keras")),
                ("keras-legacy-h5", lambda: load_network(FIX / f"{name}_legacy.h5"))]
    return out


def ir(g):
    d = graph_to_json(g)
    return json.dumps([d["nodes"], d["outputs"]])


def same_ir(g):
    """ir(g) without provenance (each value's ONNX tensor name and shape): what must agree
    between sources, only one of which is an ONNX file."""
    d = graph_to_json(g)
    return json.dumps([[{k: v for k, v in n.items() if k not in ("onnx", "shape")}
                        for n in d["nodes"]], d["outputs"]])


def schema():
    from nnsmt.commands.import_ir import schema as load
    return load()


def valid(doc):
    jsonschema.Draft202012Validator(schema()).validate(doc)
    return doc


def body(text):
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith(";"))


PROP = """; Y_0 can exceed Y_1 somewhere in the box
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const X_2 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1.0))
(assert (<= X_0 1.0))
(assert (>= X_1 -1.0))
(assert (<= X_1 1.0))
(assert (>= X_2 -0.5))
(assert (<= X_2 0.5))
(assert (>= Y_0 Y_1))
"""


@pytest.fixture
def prop(tmp_path):
    from nnsmt.vnnlib import load_vnnlib
    p = tmp_path / "p.vnnlib"
    p.write_text(PROP)
    return load_vnnlib(p)


@pytest.mark.parametrize("name", list(SPECS))
def test_one_network_three_sources_one_ir(name):
    graphs = {label: load() for label, load in sources(name)}
    ref = same_ir(graphs["onnx"])
    for label, g in graphs.items():
        assert same_ir(g) == ref, label
        valid(graph_to_json(g))
    if not have("torch"):
        pytest.skip('the .pt form was not compared: torch is not installed (pip install '
                    '"nnsmt[torch]")')


@pytest.mark.parametrize("name", list(SPECS))
def test_one_network_three_sources_one_smtlib_text(name, prop):
    from nnsmt.backends.smtlib import to_smtlib
    from nnsmt.queries.network import network_script
    from nnsmt.queries.verify import verify_script
    texts = {}
    for label, load in sources(name):
        g = load()
        texts[label] = (body(to_smtlib(verify_script(g, prop))),
                        body(to_smtlib(network_script(g))))
    ref = texts["onnx"]
    assert "define-fun Y_1" in ref[0] and "(declare-const Y_1 Real)" in ref[1]
    for label, t in texts.items():
        assert t == ref, label


@pytest.mark.parametrize("name", list(SPECS))
def test_every_source_evaluates_like_onnxruntime(name):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from nnsmt.frontends import ort_evaluator
    ort = ort_evaluator(FIX / f"{name}.onnx")
    for label, load in sources(name):
        g = load()
        for x in REFS["inputs"]:
            y = evaluate(g, {"x": x})[g.outputs[0]]
            np.testing.assert_allclose(y, ort(x), rtol=1e-5, atol=1e-6, err_msg=label)
            if name != "sig":  # exact rational evaluation too (sigmoid has no rational value)
                ye = [float(v) for v in evaluate_exact(g, {"x": x})[g.outputs[0]]]
                np.testing.assert_allclose(ye, ort(x), rtol=1e-5, atol=1e-6, err_msg=label)


# ---- round trips ----

def _sym_graph():
    """A hand-made graph with every field the JSON form has: bounds, Sym boxes, rationals."""
    return Graph([Input("x", 2, lo=[-1, 0], hi=[1, 0.5]),
                  Affine("a1", "x", Const([[1.0, -2.0], [0.5, 0.25]]),
                         Const(np.array([Fraction(1, 3), Fraction(0)], dtype=object))),
                  Relu("r1", "a1"),
                  Affine("a2", "r1", Sym("w2", (1, 2), lo=-1, hi=1, nominal=[[1.0, 1.0]]),
                         Sym("b2", (1,)))],
                 ("a2",), {"source": "hand-made"}).check()


@pytest.mark.parametrize("name", ["mlp", "bn", "sig"])
def test_ir_json_ir_round_trip_is_bit_exact(name, tmp_path):
    g = load_network(FIX / f"{name}.onnx")
    save_json(g, tmp_path / "g.json")
    doc = valid(json.loads((tmp_path / "g.json").read_text()))
    back = load_json(tmp_path / "g.json")
    assert ir(back) == ir(g) and dict(back.meta) == dict(g.meta)
    assert doc["version"].startswith("2.")
    h = _sym_graph()
    assert ir(graph_from_json(valid(graph_to_json(h)))) == ir(h)


def test_an_exported_ir_file_is_its_own_source(tmp_path, monkeypatch, capsys):
    """Loaded as a network, the IR file is the source: messages name it, and a sat is not
    replayed in onnxruntime on the ONNX file it came from (the path in its meta is relative to
    another directory, or the file is gone: this used to fail with "mlp.onnx: no such file")."""
    monkeypatch.chdir(FIX)
    assert main(["export", "mlp.onnx", "--to", "ir-json", "-o", str(tmp_path / "m.json")]) == 0
    g = load_network(tmp_path / "m.json")
    assert g.meta["source"] == str(tmp_path / "m.json") and g.meta["format"] == "ir-json"
    assert g.meta["exported_from"] == "mlp.onnx" and g.meta["exported_format"] == "onnx"
    monkeypatch.chdir(tmp_path)
    n = g.inputs[0].dim
    box = "".join(f"(declare-const X_{i} Real)\n(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n"
                  for i in range(n))
    outs = "".join(f"(declare-const Y_{j} Real)\n" for j in range(g.dims()[g.outputs[0]]))
    (tmp_path / "p.vnnlib").write_text(box + outs + "(assert (>= Y_0 -1000))\n")
    capsys.readouterr()
    assert main(["verify", "m.json", "p.vnnlib", "--engine", "plain", "--backend", "z3"]) == 10
    assert capsys.readouterr().out.startswith("sat")


def test_ir_onnx_ir_round_trip(tmp_path):
    from nnsmt.frontends.onnx_export import save_onnx
    g = load_network(FIX / "mlp.safetensors")
    assert save_onnx(g, tmp_path / "m.onnx") is True  # float32 weights: exact in float32
    assert same_ir(load_network(tmp_path / "m.onnx")) == same_ir(g)
    bn = load_network(FIX / "bn.pt" if have("torch") else FIX / "bn.safetensors")
    # the folded BatchNorm is rational: rounded even in float64, and said so
    assert save_onnx(bn, tmp_path / "b.onnx", dtype="float64") is False
    back = load_network(tmp_path / "b.onnx")
    assert [type(n) for n in back.nodes] == [type(n) for n in bn.nodes]
    np.testing.assert_allclose(back.node("a1").weight.floats(), bn.node("a1").weight.floats(),
                               rtol=1e-15)


# ---- the schema and the documentation ----

def test_schema_ships_with_the_package_and_matches_the_docs_example():
    from importlib.resources import files
    assert files("nnsmt").joinpath("schema/ir.schema.json").is_file()
    jsonschema.Draft202012Validator.check_schema(schema())
    doc = (ROOT / "docs" / "ir-json.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))
    g = graph_from_json(valid(example), "docs example")
    assert isinstance(g.node("a2").weight, Sym)
    assert g.node("a2").bias.value[0] == Fraction(1, 3)
    assert ir(graph_from_json(valid(graph_to_json(g)))) == ir(g)


@pytest.mark.parametrize("path, value, where", [
    (("nodes", 1, "weight", "value", "dtype"), "float32", "nodes/1/weight/value/dtype"),
    (("nodes", 1, "op"), "conv", "nodes/1/op"),
    (("nodes", 0, "name"), "1x", "nodes/0/name"),
    (("version",), "3.0", "version"),
    (("nodes", 1, "bias", "value", "data"), ["1/3", "a"], "nodes/1/bias/value/data/1"),
])
def test_schema_rejects_and_import_names_the_element(path, value, where, tmp_path, capsys):
    doc = graph_to_json(_sym_graph())
    node = doc
    for k in path[:-1]:
        node = node[k]
    if path[-1] == "data":
        node["dtype"] = "rational"
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        valid(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    assert main(["import", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(p) in err and where in err, err


def test_import_checks_invariants_beyond_the_schema(tmp_path, capsys):
    doc = graph_to_json(_sym_graph())
    doc["nodes"][2]["x"] = "a9"  # schema-valid, but used before it is defined
    valid(doc)
    p = tmp_path / "undefined.json"
    p.write_text(json.dumps(doc))
    assert main(["import", str(p)]) == 2
    err = capsys.readouterr().err
    assert "'a9'" in err and str(p) in err
    p.write_text('{"format": "nnsmt-ir", ')
    assert main(["import", str(p)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


# ---- the CLI ----

def test_cli_export_ir_json_and_import_to_onnx(tmp_path, capsys):
    out = tmp_path / "bn.json"
    assert main(["export", str(FIX / "bn.json"), "--weights", str(FIX / "bn.weights.h5"),
                 "--to", "ir-json", "-o", str(out)]) == 0
    valid(json.loads(out.read_text()))
    assert same_ir(load_network(out)) == same_ir(load_network(FIX / "bn.onnx"))  # IR is sniffed
    capsys.readouterr()
    assert main(["import", str(out)]) == 0
    assert "a1 = affine x" in capsys.readouterr().out
    assert main(["import", str(out), "-o", str(tmp_path / "bn.onnx")]) == 0
    assert "rounded to float32" in capsys.readouterr().err  # the folded BatchNorm is rational
    assert main(["export", str(FIX / "mlp.safetensors"), "--to", "ir-json"]) == 0
    valid(json.loads(capsys.readouterr().out))
    assert main(["export", str(FIX / "soft.keras" if (FIX / "soft.keras").exists()
                               else FIX / "soft.onnx"), "--to", "onnx",
                 "-o", str(tmp_path / "s.onnx")]) == 0
    assert "softmax was dropped" in capsys.readouterr().err
    assert main(["export", str(FIX / "mlp.onnx"), "--to", "onnx"]) == 2
    assert "-o" in capsys.readouterr().err


# ---- the network as SMT-LIB (--to vnnlib) ----

@pytest.mark.parametrize("name", ["mlp", "bn"])
def test_exported_network_fixes_y_given_x(name, backend, tmp_path, capsys):
    """Parsed by the solver from the exported text; X fixed -> the unique Y is the network's."""
    from nnsmt.queries.network import network_script
    g = load_network(FIX / f"{name}.safetensors")
    assert main(["export", str(FIX / f"{name}.safetensors"), "--to", "vnnlib",
                 "-o", str(tmp_path / "n.smt2")]) == 0
    from nnsmt.backends.smtlib import to_smtlib
    script = network_script(g)
    assert (tmp_path / "n.smt2").read_text() == to_smtlib(script)
    for x in REFS["inputs"][:2]:
        fix = tuple((f"fix_X_{i}", Cmp("=", Var(f"X_{i}"), Num(Fraction(v))))
                    for i, v in enumerate(x))
        res = backend.solve(dataclasses.replace(script, asserts=script.asserts + fix))
        assert res.status == "sat", res.reason
        want = evaluate_exact(g, {"x": x})[g.outputs[0]]
        assert [Fraction(res.model[f"Y_{j}"]) for j in range(2)] == list(want)


def test_exported_network_with_a_property_agrees_with_verify(prop, tmp_path):
    from nnsmt.queries.network import network_script
    from nnsmt.queries.verify import verify_script
    import itertools
    z3 = solver_backend("z3")
    g = load_network(FIX / "mlp.safetensors")
    # the answer, found without a solver: some point of the box's grid has Y_0 >= Y_1 exactly
    grid = itertools.product(*[[Fraction(-1), Fraction(0), Fraction(1)]] * 2,
                             [Fraction(-1, 2), Fraction(0), Fraction(1, 2)])
    assert any(y[0] >= y[1] for y in (evaluate_exact(g, {"x": list(x)})["a3"] for x in grid))
    a = z3.solve(network_script(g, prop))
    b = z3.solve(verify_script(g, prop))
    assert a.status == b.status == "sat", (a.status, a.reason, b.status, b.reason)
    # the exported file's model is a real counterexample
    x = [a.model[f"X_{i}"] for i in range(3)]
    y = evaluate_exact(g, {"x": x})["a3"]
    assert y[0] >= y[1] and [a.model["Y_0"], a.model["Y_1"]] == list(y)
    bad = tmp_path / "five.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= Y_0 0))\n")
    from nnsmt.vnnlib import load_vnnlib
    with pytest.raises(InputError, match="size mismatch"):
        network_script(g, load_vnnlib(bad))


def test_export_refuses_what_it_cannot_state():
    from nnsmt.queries.network import network_script
    g = Graph([Input("x", 2)], ("x",), {}).check()
    with pytest.raises(UnsupportedError):
        network_script(g)


# ---- property: random float32 MLPs (optionally with a BatchNorm) agree across sources ----

from hypothesis import given, settings, strategies as st  # noqa: E402

from strategies import f32, mlp_onnx, mlp_specs  # noqa: E402


def _with_batchnorm(model, bn):
    """Insert BatchNormalization(gamma, beta, mean, var) after the first Gemm of `model`."""
    from onnx import helper, numpy_helper
    g = model.graph
    gemm = g.node[0]
    out = gemm.output[0]
    gemm.output[0] = "pre_bn"
    names = ["bn_g", "bn_b", "bn_m", "bn_v"]
    g.initializer.extend(numpy_helper.from_array(a, n) for a, n in zip(bn, names))
    g.node.insert(1, helper.make_node("BatchNormalization", ["pre_bn"] + names, [out],
                                      epsilon=1e-5))
    return model


@settings(max_examples=25, deadline=None)
@given(layers=mlp_specs(), use_bn=st.booleans(), data=st.data())
def test_random_state_dicts_lower_like_onnx(layers, use_bn, data, tmp_path_factory):
    import onnx
    from nnsmt.frontends.torch_frontend import load_state_dict, save_state_dict_like
    sd, spec = {}, []
    for k, (w, b) in enumerate(layers):
        sd[f"net.{2 * k}.weight"], sd[f"net.{2 * k}.bias"] = w, b
        spec += ["relu", "linear"] if k else ["linear"]
        if k == 0 and use_bn:
            n = w.shape[0]
            vec = lambda lo, hi: np.array(data.draw(st.lists(st.floats(lo, hi, width=32),
                                                             min_size=n, max_size=n)), np.float32)
            bn = [vec(-2, 2), vec(-2, 2), vec(-2, 2), vec(0.0625, 4)]
            sd.update({"net.1.weight": bn[0], "net.1.bias": bn[1],
                       "net.1.running_mean": bn[2], "net.1.running_var": bn[3]})
            spec.append("batchnorm")
    d = tmp_path_factory.mktemp("prop")
    model = mlp_onnx(layers)
    if use_bn:
        model = _with_batchnorm(model, bn)
    onnx.save(model, d / "m.onnx")
    g_onnx = load_network(d / "m.onnx")
    g_sd = load_state_dict(sd)  # default arch: ReLU between Linear layers, BN in key order
    assert same_ir(g_sd) == same_ir(g_onnx)
    assert ir(graph_from_json(valid(graph_to_json(g_sd)))) == ir(g_sd)
    # write back new float32 values for the last layer (through the BatchNorm when it folds
    # one); reloading gives them bit for bit
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(d / "m.safetensors"))
    g = load_state_dict(d / "m.safetensors")
    last = [n for n in g.nodes if isinstance(n, Affine)][-1]

    def new(shape):
        size = int(np.prod(shape))
        return np.array(data.draw(st.lists(f32, min_size=size, max_size=size)),
                         np.float32).astype(np.float64).reshape(shape)

    vals = {"Wlast": new(last.weight.shape), "Blast": new(last.bias.shape)}
    nodes = [Affine(n.name, n.x, Sym("Wlast", n.weight.shape), Sym("Blast", n.bias.shape))
             if n is last else n for n in g.nodes]
    assert save_state_dict_like(g.replace(nodes=nodes), vals, d / "m.safetensors",
                                d / "t.safetensors") is True
    back = load_state_dict(d / "t.safetensors").node(last.name)
    assert back.weight.value.tolist() == vals["Wlast"].tolist()
    assert back.bias.value.tolist() == vals["Blast"].tolist()
