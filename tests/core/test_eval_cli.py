"""``detscope eval`` on the demo: one JSON object, an HTML report that stands alone, one-line errors."""

from __future__ import annotations

import io
import json
import re

import pytest

from detscope.core.cli import main as cli

pytestmark = pytest.mark.slow

SCHEMA_KEYS = {"model", "checkpoint", "ground_truth", "findings", "threshold", "iou", "images", "objects",
               "ignored_objects", "detections", "coco", "voc", "at_threshold", "best_f1", "classes", "confusion",
               "errors", "images_worst_first", "unannotated_images"}
CLASS_KEYS = {"class_id", "label", "objects", "tp", "fp", "fn", "precision", "recall", "f1", "AP", "AP50", "AP75",
              "voc_AP50", "best_f1", "best_f1_threshold"}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(path))
    return path


def test_eval_json_and_report_on_the_demo(demo, tmp_path, data_dir, capsys):
    report = tmp_path / "out" / "report.html"
    code = cli.main(["eval", str(demo), str(demo / "test" / "images"), "--json", "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    j = json.loads(out)                                         # one object, nothing else on stdout
    assert set(j) == SCHEMA_KEYS
    assert j["ground_truth"]["format"] == "voc" and j["checkpoint"] == "ckpt-5"
    assert j["images"] == {"total": 36, "annotated": 36, "empty": 0, "unannotated": 0} and j["objects"] == 119
    assert j["coco"]["AP50"] == pytest.approx(0.944, abs=5e-3) and j["coco"]["mAP"] == pytest.approx(0.719, abs=5e-3)
    assert [c["label"] for c in j["classes"]] == ["Circle", "Triangle", "Cross"]
    assert all(set(c) == CLASS_KEYS for c in j["classes"])
    a = j["at_threshold"]
    assert a["tp"] + a["fn"] == 119 and a["tp"] + a["fp"] == j["detections"]["above_threshold"]
    assert sum(v for k, v in j["errors"].items() if k != "missed") == a["fp"]
    assert len(j["confusion"]["matrix"]) == 4 and j["confusion"]["labels"][-1] == "background"
    worst = j["images_worst_first"]
    assert len(worst) == 36 and worst[0]["fp"] + worst[0]["fn"] >= worst[-1]["fp"] + worst[-1]["fn"]
    assert all(e["reason"] for im in worst for e in im["errors"] if e["kind"] in ("missed",))
    # stderr is not a terminal here: no progress line
    assert "\r" not in err and "detecting" not in err
    # the report stands alone: charts inline, images as data, nothing fetched
    html = report.read_text()
    assert html.count("<svg") >= 3 and "data:image/jpeg;base64," in html
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert len(list((data_dir / "detections-cache").glob("*/*.npz"))) == 36

    # the same test set from its COCO file: the same numbers, detections from the cache
    code = cli.main(["eval", str(demo), str(demo / "test" / "images"), "--gt", str(demo / "test" / "annotations.json"),
                     "--json", "--threshold", "0.3", "--iou", "0.6"])
    out, err = capsys.readouterr()
    assert code == 0, err
    k = json.loads(out)
    code = cli.main(["eval", str(demo), str(demo / "test" / "images"), "--json", "--threshold", "0.3", "--iou", "0.6"])
    out, err = capsys.readouterr()
    v = json.loads(out)
    assert k.pop("ground_truth")["format"] == "coco" and v.pop("ground_truth")["format"] == "voc"
    assert k == v
    # the same request again: every detection from the cache, and the model not even loaded
    assert "from the cache; the model was not loaded" in err


def test_a_cached_request_is_reused_only_while_nothing_changed(demo, tmp_path, data_dir):
    from detscope.core.app.evaluation import evaluate_from_cache, read_truth
    from detscope.core.detect.conventions import OutputMapping
    from detscope.core.detect.mappings import mapping_key, save_mapping
    from detscope.core.media.images import list_images

    images = list_images([demo / "test" / "images"])
    truth = lambda: read_truth(None, images)  # noqa: E731
    options = {"checkpoint": None, "safe_mode": True}
    assert evaluate_from_cache(demo, options, images, truth()) is None          # nothing seen yet
    assert cli.main(["eval", str(demo), str(demo / "test" / "images"), "--json"]) == 0
    again = evaluate_from_cache(demo, options, images, truth())
    assert again is not None and again.cached == len(images) and again.model.checkpoint_name == "ckpt-5"
    assert evaluate_from_cache(demo, dict(options, checkpoint="ckpt-4"), images, truth()) is None
    # ground truth that names none of the images is an error, not 36 unannotated images
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"images": [{"id": 1, "file_name": "elsewhere.jpg"}], "annotations": [],
                                 "categories": [{"id": 1, "name": "circle"}]}))
    from detscope.core.base.errors import UserError
    with pytest.raises(UserError, match=r"none of the 36 images is in the ground truth .*'elsewhere.jpg'"):
        evaluate_from_cache(demo, options, images, read_truth(other, images))
    # a hand-made output mapping saved since changes how outputs are read: the model must run again
    save_mapping(mapping_key(demo, signature="serving_default"), OutputMapping.from_json(
        {"boxes": "detection_boxes", "scores": "detection_scores", "classes": "detection_classes"}))
    assert evaluate_from_cache(demo, options, images, truth()) is None


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_line_is_for_terminals_only():
    from detscope.core.app.evaluation import Progress
    from detscope.core.cli.evaluate import _ProgressLine

    term, pipe = _Terminal(), io.StringIO()
    for stream in (term, pipe):
        line = _ProgressLine(stream)
        line(Progress(0, 36, 0, 0.0, None))
        line(Progress(36, 36, 4, 3.0, 0.0))
        line.close()
    assert pipe.getvalue() == ""
    text = term.getvalue()
    assert "\r" in text and "36/36 images (4 cached)" in text and "ETA 0:00" in text and "100%" in text


def test_eval_prints_a_table_without_json(demo, data_dir, capsys):
    assert cli.main(["eval", str(demo), str(demo / "test" / "images"), "--threshold", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "COCO  mAP@[.5:.95] 0.719" in out and "At threshold 0.40" in out and "Worst images:" in out


def test_a_bad_annotation_file_stops_eval_with_one_line(demo, tmp_path, data_dir, capsys):
    bad = tmp_path / "annotations.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "shapes_000.png"}],\n "annotations": [{"id": 1, '
                   '"image_id": 1, "category_id": 1, "bbox": [1, 2, "w", 4]}], "categories": [{"id": 1, "name": "circle"}]}')
    code = cli.main(["eval", str(demo), str(demo / "test" / "images"), "--gt", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: annotation 1 (id 1): a bbox value is 'w'"), err
    code = cli.main(["eval", str(demo), str(demo / "test" / "images"), "--gt", str(tmp_path / "none.xml")])
    assert code == 2 and capsys.readouterr().err == f"error: {tmp_path / 'none.xml'}: no such file or folder\n"
