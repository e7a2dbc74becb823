"""Keras frontend: JSON + .weights.h5, legacy .h5, .keras archives; refusals and bad input.

The fixtures were saved by real Keras 3 (tests/fixtures/make_fixtures.py); the tests read them
with h5py only (no Keras, no TensorFlow).
"""

import json
import zipfile
from pathlib import Path

import h5py  # a dependency of nnsmt (Keras weights are read with it): no skip
import numpy as np
import pytest

from nnsmt.cli import main
from nnsmt.errors import InputError, UnsupportedError
from nnsmt.interpret import evaluate
from nnsmt.serialize import graph_to_json
from nnsmt.frontends import keras_frontend
from nnsmt.frontends.keras_frontend import load_keras

FIX = Path(__file__).resolve().parent / "fixtures"
REFS = json.loads((FIX / "refs.json").read_text())
NETS = list(REFS["specs"])


def ir(g):
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


@pytest.mark.parametrize("name", NETS)
def test_json_and_weights_give_the_onnx_ir_and_keras_outputs(name):
    g = load_keras(FIX / f"{name}.json", weights=FIX / f"{name}.weights.h5")
    assert ir(g) == onnx_ir(name)
    assert g.meta["format"] == "keras" and g.meta["input_shape"] == "1x3"
    ys = [evaluate(g, {"x": x})[g.outputs[0]] for x in REFS["inputs"]]
    if name == "soft":
        assert g.meta["dropped_softmax"] == "true"
        ys = [softmax(y) for y in ys]
    np.testing.assert_allclose(ys, REFS["keras"][name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("file", ["mlp.keras", "bn.keras", "mlp_legacy.h5", "bn_legacy.h5"])
def test_keras_archive_and_legacy_h5(file):
    assert ir(load_keras(FIX / file)) == onnx_ir(file.split(".")[0].split("_")[0])


def test_functional_model_with_relu_and_activation_layers():
    g = load_keras(FIX / "mlp_functional.keras")
    assert ir(g) == onnx_ir("mlp")
    ys = [evaluate(g, {"x": x})["a3"] for x in REFS["inputs"]]
    np.testing.assert_allclose(ys, REFS["keras"]["mlp_functional"], rtol=1e-5, atol=1e-6)


def test_weights_override_and_legacy_weights_layout():
    # the legacy full-model file's weights group read as the weights of the JSON config
    g = load_keras(FIX / "bn.json", weights=FIX / "bn_legacy.h5")
    assert ir(g) == onnx_ir("bn")


# ---- refusals and bad input: one line naming the file and the element ----

def _config(name):
    return json.loads((FIX / f"{name}.json").read_text())


def _write(tmp_path, cfg, fname="m.json"):
    p = tmp_path / fname
    p.write_text(json.dumps(cfg))
    return p


def _raises(exc, *parts, **kw):
    """load_keras(**kw) raises exactly `exc` (not a subclass) with a one-line message holding
    every part."""
    assert kw, "nothing to load"
    with pytest.raises(exc) as e:
        load_keras(**kw)
    assert type(e.value) is exc, (type(e.value), str(e.value))
    msg = str(e.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, msg
    return msg


def test_lambda_layer_is_refused(tmp_path):
    cfg = _config("mlp")
    cfg["config"]["layers"][2] = {"module": "keras.layers", "class_name": "Lambda",
                                  "config": {"name": "evil", "function": {"class_name":
                                             "__lambda__", "config": {"code": "..."}}},
                                  "registered_name": None}
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, str(p), "'evil'", "Lambda", json_or_keras_path=p,
            weights=FIX / "mlp.weights.h5")


def test_custom_objects_are_refused(tmp_path):
    cfg = _config("mlp")
    cfg["config"]["layers"][1]["module"] = "my_project.layers"
    cfg["config"]["layers"][1]["registered_name"] = "my_project>Dense"
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, str(p), "custom object", json_or_keras_path=p,
            weights=FIX / "mlp.weights.h5")
    cfg = _config("mlp")
    cfg["config"]["layers"][1]["config"]["activation"] = {
        "module": "builtins", "class_name": "function", "config": "swish_mine",
        "registered_name": "function"}
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, "custom object", json_or_keras_path=p,
            weights=FIX / "mlp.weights.h5")


def test_unknown_layers_and_activations(tmp_path):
    cfg = _config("mlp")
    cfg["config"]["layers"][1]["class_name"] = "Conv1D"
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, str(p), "Conv1D", "not supported", json_or_keras_path=p,
            weights=FIX / "mlp.weights.h5")
    cfg = _config("mlp")
    name = cfg["config"]["layers"][1]["config"]["name"]
    cfg["config"]["layers"][1]["config"]["activation"] = "tanh"
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, f"'{name}'", "'tanh'", json_or_keras_path=p,
            weights=FIX / "mlp.weights.h5")


def test_weights_that_do_not_match_the_config_name_the_weight(tmp_path):
    cfg = _config("mlp")
    cfg["config"]["layers"][2]["config"]["units"] = 5  # the file's kernel is 4x4
    name = cfg["config"]["layers"][2]["config"]["name"]
    p = _write(tmp_path, cfg)
    msg = _raises(InputError, "mlp.weights.h5", "dense_1/vars/0", f"'{name}'", "[4, 4]",
                  "do not chain", json_or_keras_path=p, weights=FIX / "mlp.weights.h5")
    assert "expected [4, 5]" in msg
    _raises(InputError, "no weights for layer", json_or_keras_path=FIX / "soft.json",
            weights=FIX / "mlp.weights.h5")
    _raises(InputError, "no weights for layer", json_or_keras_path=FIX / "bn.json",
            weights=FIX / "mlp.weights.h5")


def test_truncated_files(tmp_path):
    for src, kw in (("mlp.weights.h5", "weights"), ("mlp_legacy.h5", None),
                    ("mlp.keras", None)):
        bad = tmp_path / ("cut_" + src)
        bad.write_bytes((FIX / src).read_bytes()[:3000])
        args = {"json_or_keras_path": FIX / "mlp.json", "weights": bad} if kw else \
            {"json_or_keras_path": bad}
        msg = _raises(InputError, str(bad), **args)
        assert "truncated or corrupt" in msg, msg


def test_nan_weights(tmp_path):
    w = tmp_path / "nan.weights.h5"
    w.write_bytes((FIX / "mlp.weights.h5").read_bytes())
    with h5py.File(w, "r+") as f:
        f["layers/dense_1/vars/1"][2] = np.nan
    _raises(InputError, str(w), "'dense_1/vars/1'", "NaN", json_or_keras_path=FIX / "mlp.json",
            weights=w)


def test_missing_weights_and_weights_only_h5():
    _raises(InputError, "--weights", json_or_keras_path=FIX / "mlp.json")
    _raises(InputError, "weights only", json_or_keras_path=FIX / "mlp.weights.h5")


def test_functional_model_that_is_not_a_chain(tmp_path):
    with zipfile.ZipFile(FIX / "mlp_functional.keras") as z:
        cfg = json.loads(z.read("config.json"))
        (tmp_path / "w.weights.h5").write_bytes(z.read("model.weights.h5"))
    layers = cfg["config"]["layers"]
    # feed the last Dense from the input instead of the previous layer: a skip connection
    layers[-1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = layers[0]["name"]
    p = _write(tmp_path, cfg)
    _raises(UnsupportedError, "plain chain", json_or_keras_path=p,
            weights=tmp_path / "w.weights.h5")


def test_keras_zip_reads_only_its_two_members(tmp_path, monkeypatch):
    src = zipfile.ZipFile(FIX / "mlp.keras")
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as z:
        for n in ("config.json", "model.weights.h5", "metadata.json"):
            z.writestr(n, src.read(n))
        z.writestr("../../escaped.txt", "x")  # never extracted
    assert ir(load_keras(evil)) == onnx_ir("mlp")
    assert not (tmp_path.parent / "escaped.txt").exists()
    # a member that unpacks beyond the cap is refused before it is read whole
    monkeypatch.setattr(keras_frontend, "MAX_WEIGHTS_BYTES", 4096)
    _raises(InputError, "model.weights.h5", "unpacks to", json_or_keras_path=evil)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", src.read("config.json"))
        z.writestr("model.weights.h5", b"\0" * 100_000)  # ~100 KB from a few hundred bytes
    assert bomb.stat().st_size < 5000
    _raises(InputError, "unpacks to", json_or_keras_path=bomb)


def test_cli_keras_and_exit_codes(tmp_path, capsys):
    assert main(["inspect", str(FIX / "mlp.json"), "--weights", str(FIX / "mlp.weights.h5")]) == 0
    assert "a3 = affine r2" in capsys.readouterr().out
    assert main(["inspect", str(FIX / "mlp.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "mlp.json" in err and "--weights" in err and "\n" not in err
    assert main(["inspect", str(FIX / "mlp.keras"), "--arch", "linear"]) == 2
    assert "--arch" in capsys.readouterr().err


def test_weights_without_name_attributes_match_by_object_path(tmp_path):
    """Files that record no layer names are matched by Keras 3's object path (dense, dense_1,
    batch_normalization, ...), derived from the config's layer classes in order."""
    w = tmp_path / "noname.weights.h5"
    w.write_bytes((FIX / "bn.weights.h5").read_bytes())
    with h5py.File(w, "r+") as f:
        for g in f["layers"].values():
            if "vars" in g and "name" in g["vars"].attrs:
                del g["vars"].attrs["name"]
    assert ir(load_keras(FIX / "bn.json", weights=w)) == onnx_ir("bn")
