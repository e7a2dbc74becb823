"""PyTorch frontend: state dicts (.pt, .safetensors, dicts), nn.Module, write-back, bad input.

The fixtures were saved by real PyTorch (tests/fixtures/make_fixtures.py); tests that need torch
itself skip, saying so, when it is not installed.
"""

import json
import pickle
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import have
from nnsmt.cli import main
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import evaluate
from nnsmt.ir import Affine, Sym
from nnsmt.serialize import graph_to_json
from nnsmt.frontends.torch_frontend import from_module, load_state_dict, save_state_dict_like

FIX = Path(__file__).resolve().parent / "fixtures"
REFS = json.loads((FIX / "refs.json").read_text())
SPECS = REFS["specs"]
needs_torch = pytest.mark.skipif(not have("torch"), reason='torch is not installed '
                                 '(pip install "nnsmt[torch]")')


def ir(g):
    """The IR as bit-exact text: node names, ops and parameter bytes/rationals."""
    d = graph_to_json(g)
    # without provenance (ONNX tensor names, shapes): only one of the compared sources is ONNX
    return json.dumps([[{k: v for k, v in n.items() if k not in ("onnx", "shape")} for n in d["nodes"]],
                       d["outputs"]])


def onnx_ir(name):
    from nnsmt.frontends import load_onnx
    return ir(load_onnx(FIX / f"{name}.onnx"))


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def outputs(g, name):
    ys = [evaluate(g, {"x": x})[g.outputs[0]] for x in REFS["inputs"]]
    return np.array([softmax(y) for y in ys] if name == "soft" else ys)


@pytest.mark.parametrize("name", list(SPECS))
def test_safetensors_gives_the_onnx_ir_and_torchs_outputs(name):
    g = load_state_dict(FIX / f"{name}.safetensors", arch=SPECS[name])
    assert ir(g) == onnx_ir(name)
    assert g.meta["format"] == "safetensors"
    # float64 evaluation of exact float32 weights vs PyTorch's float32 forward
    np.testing.assert_allclose(outputs(g, name), REFS["torch"][name], rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("name", list(SPECS))
def test_pt_gives_the_onnx_ir(name):
    assert ir(load_state_dict(FIX / f"{name}.pt", arch=SPECS[name])) == onnx_ir(name)


@pytest.mark.parametrize("name", ["mlp", "bn"])
def test_default_arch_is_relu_between_linear_layers(name):
    g = load_state_dict(FIX / f"{name}.safetensors")
    assert ir(g) == onnx_ir(name)
    expected = {"mlp": "linear,relu,linear,relu,linear",
                "bn": "linear,batchnorm,relu,linear,relu,linear"}[name]
    assert g.meta["arch"] == expected


def test_provenance_names_the_keys():
    g = load_state_dict(FIX / "bn.safetensors")
    assert g.meta["a1.keys"] == "0.weight,0.bias"
    assert g.meta["a1.batchnorm"] == "1"
    assert float(g.meta["a1.batchnorm_eps"]) == float(np.float32(1e-5))  # runtime precision
    assert g.meta["a3.keys"] == "5.weight,5.bias"


def test_arch_spec_spellings(tmp_path):
    spec_json = tmp_path / "arch.json"
    spec_json.write_text(json.dumps({"layers": ["flatten", {"type": "linear", "name": "1"}, "relu",
                                                "dropout", "dense", "softmax"]}))
    expected = onnx_ir("soft")
    assert ir(load_state_dict(FIX / "soft.safetensors", arch=str(spec_json))) == expected
    assert ir(load_state_dict(FIX / "soft.safetensors", arch='["linear","relu","linear",'
                                                            '"softmax"]')) == expected


@pytest.mark.skipif(not have("yaml"), reason="pyyaml is not installed (pip install 'nnsmt[test]')")
def test_arch_spec_from_yaml(tmp_path):
    spec_yaml = tmp_path / "arch.yaml"
    spec_yaml.write_text("- linear\n- relu\n- type: linear\n  name: '4'\n- softmax\n")
    assert ir(load_state_dict(FIX / "soft.safetensors", arch=str(spec_yaml))) == onnx_ir("soft")


def test_batchnorm_eps_from_the_spec_changes_the_fold():
    a = load_state_dict(FIX / "bn.safetensors")
    b = load_state_dict(FIX / "bn.safetensors", arch='["linear", {"type": "bn", "eps": 0.001},'
                                                     ' "relu", "linear", "relu", "linear"]')
    assert ir(a) != ir(b)
    assert b.meta["a1.batchnorm_eps"] == repr(float(np.float32(1e-3)))


def test_dict_of_numpy_arrays_and_exact_float32():
    w = np.array([[0.1, -2.5]], dtype=np.float32)
    g = load_state_dict({"fc.weight": w, "fc.bias": np.array([1 / 3], dtype=np.float32)})
    a = g.node("a1")
    assert a.weight.value.tolist() == w.astype(np.float64).tolist()  # float32 -> float64 exactly
    assert Fraction(a.bias.value[0]) == Fraction(float(np.float32(1 / 3)))


def test_safetensors_modules_sorted_naturally(tmp_path):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    sd = {"layer2.weight": rng.normal(size=(4, 3)).astype(np.float32),
          "layer10.weight": rng.normal(size=(2, 4)).astype(np.float32)}
    save_file(sd, str(tmp_path / "n.safetensors"))  # stored alphabetically: layer10 first
    g = load_state_dict(tmp_path / "n.safetensors")
    assert g.meta["a1.keys"] == "layer2.weight" and g.meta["a2.keys"] == "layer10.weight"


# ---- nn.Module ----

def torch_sequential(name):
    import torch
    nn = torch.nn
    layers = {"linear": None, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten,
              "dropout": nn.Dropout, "softmax": lambda: nn.Softmax(dim=1)}
    sd = torch.load(FIX / f"{name}.pt", weights_only=True)
    mods = []
    for t in SPECS[name].split(","):
        if t == "linear":
            k = len(mods)
            w = sd[f"{k}.weight"]
            mods.append(nn.Linear(w.shape[1], w.shape[0]))
        elif t == "batchnorm":
            mods.append(nn.BatchNorm1d(sd[f"{len(mods)}.running_mean"].shape[0]))
        else:
            mods.append(layers[t]())
    m = nn.Sequential(*mods)
    m.load_state_dict(sd)
    return m.eval()


@needs_torch
@pytest.mark.parametrize("name", list(SPECS))
def test_sequential_module_gives_the_onnx_ir(name):
    g = from_module(torch_sequential(name))
    assert ir(g) == onnx_ir(name)
    assert g.meta["format"] == "torch-module"


@needs_torch
def test_module_with_a_plain_chain_forward():
    import torch
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 5), nn.Linear(5, 2)

        def forward(self, x):
            return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))

    net = Net()
    g = from_module(net)
    assert ir(g) == ir(load_state_dict(net.state_dict(), arch="linear,relu,linear,sigmoid"))
    x = np.array([0.5, -1.0, 2.0])
    with torch.no_grad():
        y = net(torch.tensor(x, dtype=torch.float32)[None]).double().numpy()[0]
    np.testing.assert_allclose(evaluate(g, {"x": x})[g.outputs[0]], y, rtol=1e-5)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return x + self.fc(x)

    with pytest.raises(UnsupportedError, match="plain chain"):
        from_module(Residual())
    with pytest.raises(UnsupportedError, match="Conv1d"):
        from_module(nn.Sequential(nn.Conv1d(1, 1, 2)))
    with pytest.raises(UnsupportedError, match="dim 0"):  # over the batch: not the same function
        from_module(nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)))


# ---- writing back ----

def _symbolic(g, names):
    """g with the weights and biases of the named affine nodes made symbolic (nominal = old)."""
    nodes = []
    for n in g.nodes:
        if isinstance(n, Affine) and n.name in names:
            n = Affine(n.name, n.x, Sym(f"W{n.name}", n.weight.shape, nominal=n.weight.value),
                       Sym(f"B{n.name}", n.bias.shape, nominal=n.bias.value))
        nodes.append(n)
    return g.replace(nodes=nodes)


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_write_back_keeps_keys_and_values_exactly(tmp_path, fmt):
    if fmt == "pt" and not have("torch"):
        pytest.skip('torch is not installed (pip install "nnsmt[torch]")')
    src = FIX / "mlp.safetensors"
    g = load_state_dict(src)
    a2 = g.node("a2")
    params = {"Wa2": a2.weight.value * -2, "Ba2": a2.bias.value * 4}  # float32-exact
    out = tmp_path / f"trained.{fmt}"
    assert save_state_dict_like(_symbolic(g, {"a2"}), params, src, out, fmt) is True
    back = load_state_dict(out)
    assert back.node("a2").weight.value.tolist() == params["Wa2"].tolist()
    assert back.node("a2").bias.value.tolist() == params["Ba2"].tolist()
    assert ir(back.replace(nodes=[n for n in back.nodes if n.name != "a2"])) == \
        ir(g.replace(nodes=[n for n in g.nodes if n.name != "a2"]))
    from nnsmt.frontends.torch_frontend import _read_raw
    assert list(_read_raw(out)[0]) == list(_read_raw(src)[0])  # same keys, same order


def test_write_back_reports_rounding(tmp_path):
    src = FIX / "mlp.safetensors"
    g = _symbolic(load_state_dict(src), {"a1"})
    W = np.full((4, 3), Fraction(1, 3), dtype=object)
    assert save_state_dict_like(g, {"Wa1": W}, src, tmp_path / "r.safetensors") is False
    back = load_state_dict(tmp_path / "r.safetensors").node("a1").weight.value
    assert back[0, 0] == float(np.float32(1 / 3))


def _write_back_bn(tmp_path):
    """New float32-exact values written into bn.safetensors' layer a1 (Linear 0 and BatchNorm 1
    folded: rational weights); returns the file, its graph read back, and the values."""
    src = FIX / "bn.safetensors"
    g = load_state_dict(src)
    a1 = g.node("a1")
    W = np.round(np.asarray(a1.weight.floats()) * 64) / 64
    b = np.arange(4, dtype=np.float64) / 8
    out = tmp_path / "bn_trained.safetensors"
    assert save_state_dict_like(_symbolic(g, {"a1"}), {"Wa1": W, "Ba1": b}, src, out) is True
    return out, load_state_dict(out), W, b


def test_write_back_through_a_folded_batchnorm_is_exact(tmp_path):
    out, back, W, b = _write_back_bn(tmp_path)
    assert back.node("a1").weight.value.tolist() == W.tolist()
    assert back.node("a1").bias.value.tolist() == b.tolist()


@needs_torch
def test_write_back_through_a_folded_batchnorm_matches_torch(tmp_path):
    """PyTorch's own float32 forward of the written file agrees: the BatchNorm is an identity."""
    import torch
    from safetensors.torch import load_file
    out, back, _, _ = _write_back_bn(tmp_path)
    m = torch_sequential("bn")
    m.load_state_dict(load_file(str(out)))
    x = np.array(REFS["inputs"][0])
    with torch.no_grad():
        y = m(torch.tensor(x, dtype=torch.float32)[None]).double().numpy()[0]
    np.testing.assert_allclose(evaluate(back, {"x": x})["a3"], y, rtol=1e-5, atol=1e-6)


def test_write_back_refuses_folded_linear_layers(tmp_path):
    src = FIX / "mlp.safetensors"
    g = load_state_dict(src, arch="linear,linear,relu,linear")  # 0 and 2 fold into a1
    assert g.meta["a1.keys"] == "0.weight,0.bias,2.weight,2.bias"
    a1 = g.node("a1")
    with pytest.raises(UnsupportedError, match="a1"):
        save_state_dict_like(_symbolic(g, {"a1"}), {"Wa1": a1.weight.value * 2}, src,
                             tmp_path / "x.safetensors")


# ---- bad input: one line naming the file and the element ----

def _one_line_error(exc_info, *parts):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, msg


def test_shapes_that_do_not_chain_name_the_key():
    sd = {"0.weight": np.ones((4, 3), np.float32), "0.bias": np.zeros(4, np.float32),
          "2.weight": np.ones((2, 5), np.float32)}
    with pytest.raises(InputError) as e:
        load_state_dict(sd)
    _one_line_error(e, "'2.weight'", "[2, 5]", "do not chain")


def test_spec_mismatch_names_the_key():
    with pytest.raises(InputError) as e:
        load_state_dict(FIX / "mlp.safetensors", arch="linear,relu,batchnorm,linear")
    _one_line_error(e, "mlp.safetensors", "'2.weight'", "--arch layer 3")
    with pytest.raises(InputError) as e:
        load_state_dict(FIX / "mlp.safetensors", arch="linear,relu,linear")
    _one_line_error(e, "'4.weight'", "not used")
    with pytest.raises(InputError) as e:
        load_state_dict(FIX / "mlp.safetensors", arch="linear,relu,linear,relu,linear,linear")
    _one_line_error(e, "--arch layer 6", "no weights left")
    with pytest.raises(InputError) as e:
        load_state_dict(FIX / "mlp.safetensors", arch="linear,tanh,linear")
    _one_line_error(e, "--arch layer 2", "'tanh'")


def test_unsupported_modules_and_nan_weights():
    with pytest.raises(UnsupportedError) as e:
        load_state_dict({"conv.weight": np.ones((2, 1, 3, 3), np.float32)})
    _one_line_error(e, "'conv.weight'", "[2, 1, 3, 3]")
    with pytest.raises(UnsupportedError) as e:
        load_state_dict({"emb.foo": np.ones(3)})
    _one_line_error(e, "'emb.foo'")
    with pytest.raises(InputError) as e:
        load_state_dict({"fc.weight": np.array([[1.0, np.nan]], np.float32)})
    _one_line_error(e, "'fc.weight'", "NaN")
    with pytest.raises(UnsupportedError, match="softmax"):
        load_state_dict(FIX / "mlp.safetensors", arch="linear,softmax,linear,relu,linear")


def test_truncated_safetensors(tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes((FIX / "mlp.safetensors").read_bytes()[:200])
    with pytest.raises(InputError) as e:
        load_state_dict(bad)
    _one_line_error(e, str(bad), "truncated or corrupt")


@needs_torch
def test_truncated_pt(tmp_path):
    bad = tmp_path / "cut.pt"
    bad.write_bytes((FIX / "mlp.pt").read_bytes()[:700])
    with pytest.raises(InputError) as e:
        load_state_dict(bad)
    _one_line_error(e, str(bad), "not a readable PyTorch file")


class _Payload:
    """Unpickling this runs code: what torch.load(weights_only=True) must refuse."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        return (Path.write_text, (Path(self.mark), "executed"))


@needs_torch
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    import torch
    mark = tmp_path / "ran.txt"
    bad = tmp_path / "evil.pt"
    torch.save({"0.weight": torch.ones(2, 2), "x": _Payload(str(mark))}, bad)
    with pytest.raises(InputError) as e:
        load_state_dict(bad)
    _one_line_error(e, str(bad), "refused", "weights_only")
    assert not mark.exists()
    raw = tmp_path / "raw.pt"  # a legacy plain pickle, not torch's zip format
    raw.write_bytes(pickle.dumps(_Payload(str(mark))))
    with pytest.raises(InputError):
        load_state_dict(raw)
    assert not mark.exists()


def test_pt_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(InputError) as e:
        load_state_dict(FIX / "mlp.pt")
    _one_line_error(e, "mlp.pt", 'pip install "nnsmt[torch]"')


def test_cli_bad_state_dict_exit_2(tmp_path, capsys):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err
    assert main(["inspect", str(FIX / "mlp.safetensors"), "--arch", "linear,batchnorm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'2.weight'" in err
    assert main(["inspect", str(FIX / "mlp.safetensors"), "--weights", "w.h5"]) == 2
    assert "--weights" in capsys.readouterr().err
