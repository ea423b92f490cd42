"""``detscope compare A B IMAGES``: two models' detections matched to each other.

The matching itself on hand-made detections (pairs, class flips, boxes only one model has, thresholds,
the summary's order and histogram); then real runs: the demo compared with itself agrees completely,
its ckpt-3 and ckpt-5 differ and their metrics are those ``detscope eval`` gives each, a SavedModel and its
float TFLite conversion agree, and a partial restore is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from detscope.core.cli import main as cli
from detscope.core.detect.detections import Detections
from detscope.core.eval.crossmatch import DRIFT_EDGES, compare_detections, summarise


def dets(rows, width=100, height=100):
    """Detections from (x0, y0, x1, y1, score, class) rows."""
    rows = list(rows)
    boxes = [r[:4] for r in rows]
    return Detections.build(np.array(boxes, np.float32).reshape(-1, 4), [r[4] for r in rows], [r[5] for r in rows],
                            [f"c{r[5]}" for r in rows], width, height)


A = dets([(0, 0, 10, 10, 0.9, 1), (20, 20, 30, 30, 0.8, 1), (50, 50, 60, 60, 0.7, 2), (80, 80, 90, 90, 0.3, 1)])
B = dets([(1, 0, 10, 10, 0.85, 1), (20, 20, 30, 30, 0.6, 2), (70, 0, 90, 20, 0.9, 1)])


# --- the matching, on hand-made detections ----------------------------------------------------------

def test_pairs_flips_and_lone_boxes():
    c = compare_detections(A, B, threshold_a=0.5, threshold_b=0.5)
    a0, b0 = list(A.scores).index(np.float32(0.9)), list(B.scores).index(np.float32(0.85))
    assert [(p[0], p[1]) for p in c.pairs] == [(a0, b0)]
    assert c.pairs[0][2] == pytest.approx(0.9) and c.pairs[0][3:] == pytest.approx((0.9, 0.85))
    assert [(f[3], f[4]) for f in c.class_flips] == [(1, 2)] and c.class_flips[0][2] == pytest.approx(1.0)
    assert [A.class_ids[i] for i in c.only_a] == [2]                      # the 0.3 box is below A's threshold
    assert [tuple(B.boxes[j]) for j in c.only_b] == [(70, 0, 90, 20)]
    assert c.agreement == pytest.approx(1 / 4) and c.disagreements == 3


def test_thresholds_apply_to_each_side():
    c = compare_detections(A, B, threshold_a=0.2, threshold_b=0.88)       # B keeps only its 0.9 box
    assert not c.pairs and not c.class_flips and len(c.only_a) == 4 and len(c.only_b) == 1
    assert c.agreement == 0.0


def test_iou_decides_what_is_the_same_object():
    shifted = dets([(5, 0, 15, 10, 0.9, 1)])                              # IoU 1/3 with A's first box
    one = dets([(0, 0, 10, 10, 0.9, 1)])
    assert compare_detections(one, shifted, iou=0.5, threshold_a=0.5, threshold_b=0.5).agreement == 0.0
    assert compare_detections(one, shifted, iou=0.3, threshold_a=0.5, threshold_b=0.5).agreement == 1.0


def test_self_and_empty_agree_completely():
    c = compare_detections(A, A, threshold_a=0.5, threshold_b=0.5)
    assert c.agreement == 1.0 and len(c.pairs) == 3 and all(i == j for i, j, *_ in c.pairs)
    empty = Detections.empty(10, 10)
    assert compare_detections(empty, empty, threshold_a=0.5, threshold_b=0.5).agreement == 1.0


def test_summary_orders_the_most_disagreeing_first():
    same = compare_detections(A, A, threshold_a=0.5, threshold_b=0.5)
    worse = compare_detections(A, B, threshold_a=0.5, threshold_b=0.5)
    s = summarise({"same.png": same, "worse.png": worse})
    assert s.worst == ("worse.png", "same.png")
    assert (s.pairs, s.class_flips, s.only_a, s.only_b) == (4, 1, 1, 1)
    assert s.agreement == pytest.approx(4 / 7)
    assert sum(s.drift_counts) == 4 and len(s.drift_counts) == len(DRIFT_EDGES) - 1
    assert s.drift_max_abs == pytest.approx(0.05, abs=1e-6)
    assert s.drift_counts[DRIFT_EDGES.index(0.0)] == 3                    # the three identical pairs: drift 0
    assert json.loads(json.dumps(s.as_json()))["worst"] == ["worse.png", "same.png"]


# --- real models --------------------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(path))
    return path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_the_demo_compared_with_itself_agrees_completely(demo, data_dir, capsys):
    code, out, err = run(capsys, "compare", demo, demo, demo / "test" / "images", "--json", "--no-cache")
    assert code == 0, err
    j = json.loads(out)
    s = j["summary"]
    assert s["images"] == 36 and s["agreement"] == 1.0 and s["pairs"] > 36
    assert s["class_flips"] == s["only_a"] == s["only_b"] == 0 and s["score_drift"]["max_abs"] == 0.0
    assert all(im["agreement"] == 1.0 and not im["only_a"] and not im["only_b"] for im in j["images_worst_first"])
    assert j["ground_truth"] is None


@pytest.mark.slow
def test_two_checkpoints_differ_and_each_scores_as_eval_says(demo, data_dir, tmp_path, capsys):
    a, b = demo / "training" / "ckpt-3", demo / "training" / "ckpt-5"
    images, gt = demo / "test" / "images", demo / "test" / "annotations.json"
    report = tmp_path / "out" / "compare.html"
    code, out, err = run(capsys, "compare", a, b, images, "--gt", gt, "--json", "--report", report)
    assert code == 0, err
    j = json.loads(out)
    assert (j["a"]["checkpoint"], j["b"]["checkpoint"]) == ("ckpt-3", "ckpt-5")
    s = j["summary"]
    assert 0.5 < s["agreement"] < 1.0 and s["only_a"] + s["only_b"] + s["class_flips"] > 0
    assert s["score_drift"]["max_abs"] > 0.01 and sum(s["score_drift"]["counts"]) == s["pairs"]
    worst = j["images_worst_first"]
    assert worst[0]["agreement"] == min(im["agreement"] for im in worst) < 1.0
    g = j["ground_truth"]
    for side, model in (("a", a), ("b", b)):
        code, out, err = run(capsys, "eval", model, images, "--gt", gt, "--json")
        assert code == 0, err
        e = json.loads(out)
        for key in ("coco", "voc", "at_threshold", "classes", "confusion", "errors", "objects"):
            assert g[side][key] == e[key], (side, key)
    assert g["a"]["coco"]["mAP"] != g["b"]["coco"]["mAP"]
    found_b = sum(r["found_by_b_only"] for r in g["b_right_a_wrong"])
    assert found_b > 0 and g["b"]["at_threshold"]["tp"] - g["a"]["at_threshold"]["tp"] == \
        found_b - sum(r["found_by_a_only"] for r in g["a_right_b_wrong"])
    html = report.read_text()
    assert "Most disagreeing images" in html and "data:image/jpeg;base64," in html and "<svg" in html
    assert "<script" not in html and "A right, B wrong" in html

    code, out, err = run(capsys, "compare", a, b, images, "--gt", gt)       # the text face, from the cache
    assert code == 0, err
    assert "agreement " in out and "only in B" in out and "B right, A wrong" in out and "mAP@[.5:.95]" in out


def _images(folder, count=6):
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48 + 8 * i, 64, 3)).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.mark.slow
def test_a_savedmodel_and_its_float_tflite_conversion_agree(tmp_path, data_dir, capsys):
    import tflite_artifacts as ta

    lite = ta.converted_export(tmp_path / "lite", "float")
    images = _images(tmp_path / "images")
    code, out, err = run(capsys, "compare", tmp_path / "lite" / "export", lite, images, "--threshold", "0",
                         "--json")
    assert code == 0, err
    j = json.loads(out)
    assert j["a"]["how"] == "saved_model" and j["b"]["how"] == "tflite"
    s = j["summary"]
    assert s["pairs"] > 0 and s["agreement"] >= 0.95 and s["score_drift"]["max_abs"] < 1e-3


@pytest.mark.slow
def test_a_partial_restore_is_not_compared(tmp_path, data_dir, capsys):
    import model_artifacts as ma

    base = ma.training_run(tmp_path / "base")
    four = ma.training_run(tmp_path / "four", num_classes=4, export_model=False)
    images = _images(tmp_path / "images", 1)
    code, out, err = run(capsys, "compare", base, four / "training", images, "--template", base / "saved_model")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and not out
    assert len(lines) == 1 and lines[0].startswith("error: B (training): ckpt-2 was restored only in part")
    assert "compare runs only completely restored models" in lines[0]


def test_bad_ground_truth_is_one_line_before_any_model_loads(tmp_path, capsys):
    bad = tmp_path / "gt.json"
    bad.write_text("{not json")
    images = _images(tmp_path / "images", 1)
    code, out, err = run(capsys, "compare", tmp_path / "nothing-a", tmp_path / "nothing-b", images, "--gt", bad)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "gt.json" in lines[0]


def test_report_picture_draws_agreement_and_lone_boxes_apart(tmp_path):
    from detscope.core.eval.compare_report import AGREE, ALONE, overlay

    path = tmp_path / "grey.png"
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(path)
    a = dets([(10, 10, 40, 40, 0.9, 1)])
    b = dets([(10, 10, 40, 40, 0.8, 1), (60, 60, 90, 90, 0.7, 2)])
    c = compare_detections(a, b, threshold_a=0.5, threshold_b=0.5)
    out = overlay(path, c, a, b, side=100)
    assert out.shape == (100, 100, 3)

    def near(region, colour):
        return int((np.abs(region.astype(int) - np.array(colour)).sum(axis=2) < 40).sum())
    assert near(out[5:45, 5:45], AGREE) > 40 and near(out[5:45, 5:45], ALONE) == 0
    assert near(out[55:100, 55:100], ALONE) > 20 and near(out[55:100, 55:100], AGREE) == 0
