"""Only a complete restore runs unasked: partial, failed and matched-nothing restores are refused by
`detect` (exit 2, one line saying what was not restored) and by the host, run only with --allow-partial
and then marked in every output; `restore` exits 0 only for a complete restore."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import model_artifacts as ma
from detscope.core.app.host import ModelHost, PartialRestoreRefused
from detscope.core.cli import main as cli

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    base = ma.training_run(root / "base")
    four = ma.training_run(root / "four", num_classes=4, export_model=False)
    # A checkpoint of another model altogether: nothing of it matches the export.
    other = root / "other"
    module = tf.Module()
    module.encoder = tf.Module()
    module.encoder.w = tf.Variable(np.ones((3, 3), np.float32))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=module), str(other), max_to_keep=1).save()
    # The matching checkpoint, but its data shard cut short (a copy interrupted).
    cut = shutil.copytree(base, root / "cut")
    data = cut / "training" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:200])
    return {"base": base, "four": four, "other": other, "cut": cut}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("gate-images") / "grey.png"
    Image.fromarray(np.full((60, 90, 3), 120, np.uint8)).save(path)
    return path


def _detect(capsys, *argv):
    code = cli.main(["detect", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("case, template, needle", [
    ("four", "base", "ckpt-2 was restored only in part into saved_model (partial: 2 values with the wrong shape "
                     "(model/class_head/kernel: checkpoint [8, 40], model [8, 32]"),
    ("other", "base", "ckpt-1 restored nothing into saved_model (failed: nothing matched"),
    ("cut", None, "ckpt-2 restored nothing into saved_model (failed: ckpt-2.data-00000-of-00001 is truncated"),
])
def test_detect_refuses_an_incomplete_restore_in_one_line(runs, image, capsys, case, template, needle):
    model = runs[case] / "training" if case != "other" else runs[case]
    extra = ["--template", runs[template] / "saved_model"] if template else []
    code, out, err = _detect(capsys, model, image, *extra)
    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert err[0].endswith("; pass --allow-partial to run it anyway")


def test_allow_partial_runs_it_and_marks_every_output(runs, image, capsys, tmp_path):
    args = [runs["four"] / "training", image, "--template", runs["base"] / "saved_model", "--threshold", "0"]
    code, out, err = _detect(capsys, *args, "--allow-partial", "--json", "--out", tmp_path / "drawn")
    assert code == 0
    assert any(line.startswith("warning: ckpt-2 was restored only in part") for line in err)
    data = json.loads(out)
    marked = data["partial_restore"]
    assert marked["verdict"] == "partial" and marked["source"] == "ckpt-2"
    assert "class_head/kernel" in marked["reason"] and marked["summary"].startswith("partial: 6 values matched")
    assert len(data["images"][0]["detections"]) == ma.ANCHORS
    # The annotated image carries a red band across its top.
    drawn = np.asarray(Image.open(tmp_path / "drawn" / "grey.png"))
    assert tuple(drawn[1, 1]) == (200, 30, 30)

    code, out, err = _detect(capsys, *args, "--allow-partial")
    assert code == 0
    assert out.splitlines()[0].startswith("# PARTIAL RESTORE, run with --allow-partial: ckpt-2 was restored only in "
                                          "part")


def test_a_complete_restore_is_not_marked(runs, image, capsys):
    code, out, err = _detect(capsys, runs["base"], image, "--json", "--threshold", "0")
    assert code == 0 and err == []
    assert "partial_restore" not in json.loads(out)
    code, out, _ = _detect(capsys, runs["base"], image, "--threshold", "0")
    assert not out.startswith("#")


@pytest.mark.parametrize("case, template, code, verdict", [
    ("base", None, 0, "complete"),
    ("four", "base", 1, "partial"),
    ("other", "base", 1, "failed"),
    ("cut", None, 1, "failed"),
])
def test_restore_exits_0_only_for_a_complete_restore(runs, capsys, case, template, code, verdict):
    model = runs[case] / "training" if case != "other" else runs[case]
    extra = ["--template", str(runs[template] / "saved_model")] if template else []
    assert cli.main(["restore", str(model), *extra, "--json"]) == code
    assert json.loads(capsys.readouterr().out)["verdict"] == verdict


def test_the_host_holds_the_rule_for_both_faces(runs):
    image = np.zeros((40, 40, 3), np.uint8)
    host = ModelHost()
    try:
        summary = host.open(runs["four"] / "training", inventory=False,
                            template=str(runs["base"] / "saved_model"))[1].result(timeout=120)
        assert summary.partial and "class_head/kernel" in summary.refusal
        assert summary.partial_restore()["verdict"] == "partial"
        with pytest.raises(PartialRestoreRefused, match="restored only in part") as refused:
            host.detect(image).result(timeout=60)
        assert refused.value.report.verdict == "partial"
        with pytest.raises(PartialRestoreRefused):
            host.detect(image, latest=True).result(timeout=60)
        assert len(host.detect(image, allow_partial=True).result(timeout=60)) == ma.ANCHORS

        # A complete restore, and a SavedModel run as it is (nothing to restore), run unasked.
        summary = host.open(runs["base"], inventory=False)[1].result(timeout=120)
        assert not summary.partial and summary.refusal is None and summary.partial_restore() is None
        assert len(host.detect(image).result(timeout=60)) == ma.ANCHORS
        summary = host.open(runs["base"] / "saved_model", inventory=False)[1].result(timeout=120)
        assert summary.report is None and not summary.partial
        host.detect(image).result(timeout=60)
    finally:
        host.shutdown()


def test_a_keras_file_is_complete_as_it_is(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3), name="images")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    boxes = keras.layers.Reshape((1, 4), name="boxes")(keras.layers.Dense(4)(pooled))
    conf = keras.layers.Reshape((1,), name="confidence")(keras.layers.Dense(1)(pooled))
    classes = keras.layers.Reshape((1,), name="classes")(keras.layers.Dense(1)(pooled))
    keras.Model(inputs, {"boxes": boxes, "confidence": conf, "classes": classes}).save(tmp_path / "det.keras")
    host = ModelHost()
    try:
        summary = host.open(tmp_path / "det.keras", inventory=False)[1].result(timeout=120)
        assert summary.how == "keras" and not summary.partial
        host.detect(np.zeros((20, 20, 3), np.uint8)).result(timeout=60)
    finally:
        host.shutdown()
