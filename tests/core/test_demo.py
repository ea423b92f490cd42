"""The bundled demo: what `make run` opens and what the GUI tests lean on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detscope.core.cli import main as cli
from detscope.core.runtime.engine import Engine
from detscope.core.media.images import list_images, load_image
from detscope.core.runtime.model import load_model

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def loaded(demo):
    engine = Engine()
    yield engine, engine.run_sync(load_model, demo)
    engine.shutdown(timeout=30)


def test_demo_inventory(demo, capsys):
    assert cli.main(["inspect", str(demo), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "od_api_export"
    assert [(c["prefix"].rsplit("/", 1)[1], c["step"]) for c in data["checkpoints"]] == [
        ("ckpt-5", 1000), ("ckpt-4", 800), ("ckpt-3", 600)]
    assert [(i["id"], i["display_name"]) for i in data["label_map"]] == [(1, "Circle"), (2, "Triangle"), (3, "Cross")]
    assert data["problems"] == []
    sig = data["signatures"][0]
    assert sig["inputs"] == [{"name": "input_tensor", "dtype": "uint8", "shape": [1, None, None, 3]}]
    assert {o["name"] for o in sig["outputs"]} == {"detection_boxes", "detection_scores", "detection_classes",
                                                  "num_detections", "detection_multiclass_scores"}


def test_latest_checkpoint_restores_completely_into_the_export(loaded):
    _, model = loaded
    report = model.report
    assert report.verdict == "complete" and report.source == "ckpt-5"
    assert report.mapping == {"model": "_model"}
    assert not report.missing and not report.shape_mismatches
    assert {u.group for u in report.unused} == {"optimizer_slot", "optimizer", "counter"}


def test_detect_equals_a_direct_call_of_the_signature(demo, loaded):
    engine, model = loaded
    fn = tf.saved_model.load(str(demo / "saved_model")).signatures["serving_default"]
    for path in list_images([demo / "test" / "images"])[:6]:
        img = load_image(path)
        h, w = img.shape[:2]
        dets = engine.run_sync(model.detect, img)
        raw = {k: v.numpy()[0] for k, v in fn(input_tensor=tf.constant(img[None])).items()}
        n = int(raw["num_detections"])
        order = np.argsort(-raw["detection_scores"][:n], kind="stable")
        boxes = raw["detection_boxes"][:n][order][:, [1, 0, 3, 2]] * [w, h, w, h]
        np.testing.assert_allclose(dets.boxes, np.clip(boxes, 0, [w, h, w, h]), atol=1e-4)
        np.testing.assert_allclose(dets.scores, raw["detection_scores"][:n][order], atol=1e-6)
        assert dets.class_ids.tolist() == raw["detection_classes"][:n][order].astype(int).tolist()
        assert dets.multiclass_scores.shape == (n, 4) and dets.class_columns == (-1, 1, 2, 3)


def test_demo_really_detects(demo, tmp_path, capsys):
    from faster_coco_eval import COCO, COCOeval_faster

    results = tmp_path / "results.json"
    assert cli.main(["detect", str(demo), str(demo / "test" / "images"), "--threshold", "0",
                     "--coco-results", str(results)]) == 0
    capsys.readouterr()
    gt = COCO(str(demo / "test" / "annotations.json"))
    evaluator = COCOeval_faster(gt, gt.loadRes(str(results)), "bbox", print_function=lambda *a, **k: None)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[1] >= 0.7  # mAP@0.5


def test_switching_to_an_earlier_checkpoint(demo, loaded):
    engine, model = loaded
    img = load_image(list_images([demo / "test" / "images"])[0])
    latest = engine.run_sync(model.detect, img)
    try:
        report = engine.run_sync(model.switch_checkpoint, "ckpt-3")
        assert report.verdict == "complete"
        earlier = engine.run_sync(model.detect, img)
    finally:
        engine.run_sync(model.switch_checkpoint, "ckpt-5")
    assert latest.scores.shape != earlier.scores.shape or not np.allclose(latest.scores, earlier.scores)
