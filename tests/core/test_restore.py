"""Real restores: matching and mismatching checkpoints, each with the exact report a user would read."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import model_artifacts as ma
from detscope.core.cli import main as cli
from detscope.core.runtime.engine import Engine
from detscope.core.runtime.model import load_model

tf = pytest.importorskip("tensorflow")

MODEL_KEYS = {f"model/{layer}/{var}/.ATTRIBUTES/VARIABLE_VALUE"
              for layer, var in [("backbone/layer_with_weights-0", "kernel"), ("backbone/layer_with_weights-0", "bias"),
                                 ("backbone/layer_with_weights-1", "kernel"), ("backbone/layer_with_weights-1", "bias"),
                                 ("box_head", "kernel"), ("box_head", "bias")]}
HEAD = {"model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE", "model/class_head/bias/.ATTRIBUTES/VARIABLE_VALUE"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "base": ma.training_run(root / "base"),
        "four": ma.training_run(root / "four", num_classes=4, export_model=False),
        "renamed": ma.training_run(root / "renamed", variant="renamed", export_model=False),
        "extra": ma.training_run(root / "extra", variant="extra"),
    }


@pytest.fixture(scope="module")
def engine():
    e = Engine()
    yield e
    e.shutdown(timeout=30)


def restore(engine, checkpoint, **kw):
    return engine.run_sync(load_model, checkpoint, warmup=False, **kw)


def test_matching_checkpoint_restores_every_model_value(engine, runs):
    loaded = restore(engine, runs["base"] / "training", template=runs["base"] / "saved_model")
    report = loaded.report
    assert report.verdict == "complete"
    assert set(report.matched) == MODEL_KEYS | HEAD
    assert report.missing == [] and report.shape_mismatches == [] and report.dtype_mismatches == []
    groups = {g: {u.key for u in items} for g, items in report.unused_by_group().items()}
    assert set(groups) == {"optimizer_slot", "optimizer", "counter"}
    assert groups["counter"] == {"step/.ATTRIBUTES/VARIABLE_VALUE", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
    assert len(groups["optimizer_slot"]) == 8  # one momentum per trainable variable
    assert report.mapping == {"model": "_model"}
    # The live variables now hold the checkpoint's values, bit for bit.
    reader = tf.train.load_checkpoint(str(runs["base"] / "training" / "ckpt-2"))
    live = engine.run_sync(lambda: {v.name: v.numpy() for v in loaded.live._model.variables})
    kernel = engine.run_sync(lambda: loaded.live._model.box_head.kernel.numpy())
    assert np.array_equal(kernel, reader.get_tensor("model/box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE"))
    assert len(live) == 8


def test_switching_checkpoint_reassigns_without_reloading(engine, runs):
    loaded = restore(engine, runs["base"] / "training", template=runs["base"] / "saved_model")
    live_before = loaded.live
    image = np.random.default_rng(3).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    latest = engine.run_sync(loaded.detect, image)
    report = engine.run_sync(loaded.switch_checkpoint, "ckpt-1")
    assert report.verdict == "complete" and report.source == "ckpt-1"
    assert loaded.live is live_before
    earlier = engine.run_sync(loaded.detect, image)
    assert not np.allclose(latest.scores, earlier.scores)
    reader = tf.train.load_checkpoint(str(runs["base"] / "training" / "ckpt-1"))
    kernel = engine.run_sync(lambda: loaded.live._model.class_head.kernel.numpy())
    assert np.array_equal(kernel, reader.get_tensor("model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE"))


def test_changed_num_classes_reports_both_shapes(engine, runs):
    report = restore(engine, runs["four"] / "training", template=runs["base"] / "saved_model").report
    assert report.verdict == "partial"
    assert set(report.matched) == MODEL_KEYS
    mism = {m.key: (m.checkpoint_shape, m.model_shape) for m in report.shape_mismatches}
    assert mism == {
        "model/class_head/kernel/.ATTRIBUTES/VARIABLE_VALUE": ((8, 40), (8, 32)),
        "model/class_head/bias/.ATTRIBUTES/VARIABLE_VALUE": ((40,), (32,)),
    }
    assert report.missing == []


def test_renamed_layer_is_missing_and_its_values_unused(engine, runs):
    report = restore(engine, runs["renamed"] / "training", template=runs["base"] / "saved_model").report
    assert report.verdict == "partial"
    assert set(report.matched) == MODEL_KEYS
    assert {m.key for m in report.missing} == {"_model/class_head/kernel", "_model/class_head/bias"}
    unused_model = {u.key for u in report.unused if u.group == "model"}
    assert unused_model == {"model/cls_head/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                            "model/cls_head/bias/.ATTRIBUTES/VARIABLE_VALUE"}


def test_extra_layer_in_the_model_is_not_restored(engine, runs):
    report = restore(engine, runs["base"] / "training", template=runs["extra"] / "saved_model").report
    assert report.verdict == "partial"
    assert set(report.matched) == MODEL_KEYS | HEAD
    assert {(m.key, m.shape) for m in report.missing} == {("_model/refine/kernel", (8, 32)),
                                                          ("_model/refine/bias", (32,))}


def test_extra_layer_in_the_checkpoint_is_unused(engine, runs):
    report = restore(engine, runs["extra"] / "training", template=runs["base"] / "saved_model").report
    assert report.verdict == "partial"
    assert {u.key for u in report.unused if u.group == "model"} == {
        "model/refine/kernel/.ATTRIBUTES/VARIABLE_VALUE", "model/refine/bias/.ATTRIBUTES/VARIABLE_VALUE"}
    assert report.missing == []


FACTORY = textwrap.dedent('''
    import keras

    def build():
        keras.utils.set_random_seed(5)
        inputs = keras.Input((16, 16, 3), name="image")
        x = keras.layers.Conv2D(4, 3, padding="same", name="backbone_conv")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, [keras.layers.Dense(4, name="box_head")(x),
                                    keras.layers.Dense(3, name="class_head")(x)])
''')


def _keras3_checkpoint(tmp_path, engine):
    def write():
        import keras
        ns = {}
        exec(FACTORY, ns)
        model = ns["build"]()
        for v in model.weights:
            v.assign(np.full(v.shape, 0.25, v.dtype))
        opt = keras.optimizers.Adam()
        opt.build(model.trainable_variables)
        prefix = tf.train.Checkpoint(model=model, optimizer=opt).write(str(tmp_path / "k3" / "ckpt-1"))
        return prefix
    return engine.run_sync(write)


def test_factory_restores_a_keras3_checkpoint(engine, runs, tmp_path):
    (tmp_path / "factory.py").write_text(FACTORY)
    prefix = _keras3_checkpoint(tmp_path, engine)
    loaded = restore(engine, prefix, factory=f"{tmp_path / 'factory.py'}:build")
    report = loaded.report
    assert report.verdict == "complete", report.summary()
    assert len(report.matched) == 6 and report.missing == []
    values = engine.run_sync(lambda: [v.numpy() for v in loaded.live.weights])
    assert all(np.all(v == 0.25) for v in values)


def test_keras3_checkpoint_into_a_tf_keras_export_restores_nothing(engine, runs, tmp_path):
    prefix = _keras3_checkpoint(tmp_path, engine)
    report = restore(engine, prefix, template=runs["base"] / "saved_model").report
    assert report.verdict == "failed"
    assert report.matched == []
    assert any("nothing matched" in n for n in report.notes)
    assert len(report.missing) == 8


def test_cli_restore_json(runs, capsys):
    code = cli.main(["restore", str(runs["four"] / "training"), "--template", str(runs["base"] / "saved_model"),
                     "--json"])
    assert code == 1      # only a complete restore exits 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "partial"
    assert data["matched"] == 6
    assert {tuple(m["checkpoint_shape"]) for m in data["shape_mismatches"]} == {(8, 40), (40,)}
    assert {m["key"] for m in data["shape_mismatches"]} == HEAD
    assert all({"key", "group"} <= set(u) for u in data["unused"])


@pytest.mark.parametrize("argv, needle", [
    (["restore", "{base}/training/ckpt-9"], "ckpt-9"),
    (["restore", "{base}/no-such-ckpt-3", "--template", "{base}/saved_model"], "no-such-ckpt-3"),
    (["restore", "{base}/training", "--factory", "{base}/missing.py:build"], "missing.py"),
    (["detect", "{base}/training", "{base}/label_map.pbtxt"], "label_map.pbtxt"),
])
def test_cli_restore_errors_are_one_line(runs, capsys, argv, needle):
    code = cli.main([a.format(base=runs["base"]) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]


def test_checkpoint_alone_asks_for_an_architecture(tmp_path, runs, capsys):
    import shutil
    shutil.copytree(runs["base"] / "training", tmp_path / "training")
    assert cli.main(["restore", str(tmp_path / "training")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--template" in err and "--factory" in err


def test_real_keras2_h5_loads_and_its_raw_outputs_are_named(engine, realdata, capsys):
    path = realdata / "blazeface-keras2-h5" / "model_weights.h5"
    loaded = restore(engine, path)
    assert loaded.how == "keras" and loaded.report.verdict == "complete"
    assert len(loaded.report.matched) > 0
    assert loaded.detector is None
    assert any("raw outputs, not decodable without anchors" in f.message for f in loaded.findings)
    assert cli.main(["restore", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "complete"


def test_dtype_mismatch_is_reported_not_assigned(engine, runs, tmp_path):
    def write():
        model = tf.Module()
        model.box_head = tf.Module()
        model.box_head.kernel = tf.Variable(np.ones((8, 32)), dtype=tf.float64)
        model.box_head.bias = tf.Variable(np.full(32, 0.5, np.float32))
        return tf.train.Checkpoint(model=model).write(str(tmp_path / "half" / "ckpt-1"))
    prefix = engine.run_sync(write)
    loaded = restore(engine, prefix, template=runs["base"] / "saved_model")
    report = loaded.report
    assert report.verdict == "partial"
    assert report.matched == ["model/box_head/bias/.ATTRIBUTES/VARIABLE_VALUE"]
    assert [(m.key, m.checkpoint_dtype, m.model_dtype) for m in report.dtype_mismatches] == [
        ("model/box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE", "float64", "float32")]
    assert "_model/class_head/kernel" in {m.key for m in report.missing}
    bias = engine.run_sync(lambda: loaded.live._model.box_head.bias.numpy())
    assert np.all(bias == 0.5)
