"""Matching and metrics on real detections: the demo model on its own test set, and the VOC 2011 samples.

COCO metrics must equal pycocotools' (run here on the original annotation files), the demo's figures must be
those its README states, its COCO and VOC ground truth must give identical results, and every count at a
threshold must equal a fresh evaluation of only the detections above it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from detscope.core.app.evaluation import evaluate, read_truth, start_evaluation
from detscope.core.app.host import ModelHost
from detscope.core.detect.detections import Detections
from detscope.core.eval import readers
from detscope.core.eval.evaluator import Evaluator, ImageItem
from detscope.core.eval.matching import ERROR_NAMES, MISSED, TP
from detscope.core.eval.metrics import coco_datasets, voc_ap_from_pr
from detscope.core.formats.labels import read_label_map
from detscope.core.media.images import list_images

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """detscope's data folder (the detections cache) in a temporary folder for this module."""
    old = os.environ.get("DETSCOPE_DATA_DIR")
    path = tmp_path_factory.mktemp("detscope-data")
    os.environ["DETSCOPE_DATA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DETSCOPE_DATA_DIR", None)
    else:
        os.environ["DETSCOPE_DATA_DIR"] = old


@pytest.fixture(scope="module")
def demo_run(demo, data_dir):
    """The demo evaluated against its VOC and its COCO ground truth (the second from the cache)."""
    images = list_images([demo / "test" / "images"])
    before = sorted(p.relative_to(demo) for p in demo.rglob("*"))
    host = ModelHost()
    try:
        host.load_sync(demo)
        voc = evaluate(host, images, read_truth(None, images))
        coco = evaluate(host, images, read_truth(None, images, fmt="coco"))
    finally:
        host.shutdown()
    assert sorted(p.relative_to(demo) for p in demo.rglob("*")) == before      # nothing written in the model folder
    return images, voc, coco


def _pycocotools(gt_file: Path, results: list[dict]):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return gt, ev


def _results_for_file(ev: Evaluator, gt_file: Path) -> list[dict]:
    """Our detections in COCO's results format, in our flat order, with the file's own image ids."""
    ids = {Path(im["file_name"]).name: im["id"] for im in json.loads(gt_file.read_text())["images"]}
    _, results = coco_datasets(ev.flat, ev.class_ids)
    for r in results:
        r["image_id"] = ids[ev.items[ev.annotated[r["image_id"] - 1]].path.name]
    return results


def _per_class_ap(ev: COCOeval) -> dict[int, float]:
    p = ev.eval["precision"][:, :, :, 0, -1]
    return {cid: float(p[:, :, k][p[:, :, k] > -1].mean()) for k, cid in enumerate(ev.params.catIds)
            if (p[:, :, k] > -1).any()}


# --- the demo -------------------------------------------------------------------------------------

def test_the_demo_scores_what_its_readme_states(demo, demo_run):
    _, voc, _ = demo_run
    stated = json.loads((demo / "metrics.json").read_text())
    coco = voc.evaluator.coco()
    assert coco.stats["AP50"] == pytest.approx(stated["mAP@0.5"], abs=5e-3)          # 0.944
    assert coco.stats["mAP"] == pytest.approx(stated["mAP@[.5:.95]"], abs=5e-3)      # 0.719
    assert coco.stats["AP75"] == pytest.approx(stated["mAP@0.75"], abs=5e-3)
    assert len(voc.evaluator.flat.det_score) == stated["num_detections_evaluated"]


def test_coco_metrics_equal_pycocotools_on_the_demo(demo, demo_run):
    _, voc, coco_run = demo_run
    gt_file = demo / "test" / "annotations.json"
    for run in (voc, coco_run):
        ev = run.evaluator
        _, ref = _pycocotools(gt_file, _results_for_file(ev, gt_file))
        ours = ev.coco()
        np.testing.assert_allclose([ours.stats[k] for k in ours.stats], ref.stats, rtol=0, atol=1e-12)
        assert {c: v["AP"] for c, v in ours.per_class.items()} == pytest.approx(_per_class_ap(ref), abs=1e-12)


def test_the_demos_coco_and_voc_ground_truth_give_identical_metrics(demo_run):
    _, voc, coco = demo_run
    assert coco.cached == 36 and voc.cached == 0            # the second run came from the cache
    for t in (0.05, 0.3, 0.5):
        a, b = voc.as_json(t), coco.as_json(t)
        assert a.pop("ground_truth")["format"] == "voc" and b.pop("ground_truth")["format"] == "coco"
        assert a == b


def test_matching_equals_pycocotools_own_matches(demo, demo_run):
    """Our TP/FP/ignored at IoU .5 and .75 are exactly pycocotools' dtMatches (area "all", 100 detections)."""
    _, run, _ = demo_run
    ev = run.evaluator
    gt_file = demo / "test" / "annotations.json"
    _, ref = _pycocotools(gt_file, _results_for_file(ev, gt_file))
    for t_index, iou in ((0, 0.5), (5, 0.75)):
        matched = np.zeros(len(ev.flat.det_score), bool)
        for e in ref.evalImgs:
            if e is None or e["aRng"] != [0, 1e10]:
                continue
            for dt_id, m, ign in zip(e["dtIds"], e["dtMatches"][t_index], e["dtIgnore"][t_index]):
                matched[dt_id - 1] = m > 0 and not ign
        assert np.array_equal(ev.match(iou).status == TP, matched), iou


def test_counts_at_a_threshold_equal_a_fresh_evaluation_of_what_is_above_it(demo_run):
    _, run, _ = demo_run
    ev = run.evaluator
    for t in (0.05, 0.2, 0.45, 0.5, 0.8, 0.99):
        fresh = Evaluator([ImageItem(i.path, i.detections.above(t), i.truth) for i in ev.items], ev.class_names)
        for iou in (0.5, 0.75):
            a, b = ev.counts(t, iou), fresh.counts(0.0, iou)
            for f in ("tp", "fp", "fn", "image_tp", "image_fp", "image_fn"):
                assert np.array_equal(getattr(a, f), getattr(b, f)), (t, iou, f)
            assert np.array_equal(ev.confusion(t, iou).matrix, fresh.confusion(0.0, iou).matrix), (t, iou)
            assert ev.error_counts(t, iou) == fresh.error_counts(0.0, iou), (t, iou)


def test_confusion_and_errors_add_up(demo_run):
    _, run, _ = demo_run
    ev = run.evaluator
    for t in (0.1, 0.5):
        c = ev.counts(t)
        m = ev.confusion(t).matrix
        k = len(ev.class_ids)
        assert np.array_equal(np.diag(m)[:k], c.tp)                       # the diagonal is the true positives
        assert np.array_equal(m[:k].sum(axis=1), ev.objects)              # each object once
        above = ev.flat.det_score >= t
        per_class = np.bincount(np.searchsorted(ev.class_ids, ev.flat.det_class[above]), minlength=k)
        assert np.array_equal(m[:, :k].sum(axis=0), per_class)            # each detection once
        e = ev.error_counts(t)
        assert sum(e[n] for n in ERROR_NAMES) == c.fp.sum()
        assert e[MISSED] <= c.fn.sum()
        # every false negative of every image is explained, with its nearest prediction
        fns = [x for i in ev.annotated for x in ev.image_errors(i, t).fn]
        assert len(fns) == c.fn.sum() and all(x.reason for x in fns)
        assert sum(1 for x in fns if x.kind == MISSED) == e[MISSED]
        # what a click on a cell or an error type lists: the images those counts come from
        for r in range(k + 1):
            for col in range(k + 1):
                assert bool(ev.images_in_cell(r, col, t)) == bool(m[r, col]), (r, col)
        for kind in ERROR_NAMES:
            per_image = {i: sum(1 for x in ev.image_errors(i, t).fp if x.kind == kind) for i in ev.annotated}
            assert sorted(ev.images_with_error(kind, t)) == sorted(i for i, n in per_image.items() if n)
            assert sum(per_image.values()) == e[kind]
        missed = {i for i in ev.annotated if any(x.kind == MISSED for x in ev.image_errors(i, t).fn)}
        assert set(ev.images_with_error(MISSED, t)) == missed


def test_voc_ap_equals_the_devkit_loop(demo_run):
    """The devkit's per-detection loop (voc_eval.py), written out plainly, against the vectorised one."""
    _, run, _ = demo_run
    ev = run.evaluator
    fs = ev.flat
    ours = ev.voc().per_class
    for c in ev.class_ids:
        gts = {}
        for g in np.nonzero(fs.gt_class == c)[0]:
            gts.setdefault(int(fs.gt_image[g]), []).append(g)
        npos = int(np.sum((fs.gt_class == c) & ~fs.gt_ignored))
        dets = sorted(np.nonzero(fs.det_class == c)[0], key=lambda d: -fs.det_score[d])
        seen, tp, fp = set(), [], []
        for d in dets:
            cands = gts.get(int(fs.det_image[d]), [])
            best, jmax = 0.0, None
            for g in cands:
                a, b = fs.det_box[d], fs.gt_box[g]
                iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
                ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
                inter = iw * ih
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                if inter / union > best:
                    best, jmax = inter / union, g
            if best > 0.5:
                if fs.gt_ignored[jmax]:
                    continue
                if jmax not in seen:
                    seen.add(jmax)
                    tp.append(1), fp.append(0)
                else:
                    tp.append(0), fp.append(1)
            else:
                tp.append(0), fp.append(1)
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        ref = voc_ap_from_pr(ctp / npos, ctp / np.maximum(ctp + cfp, np.finfo(float).eps))
        assert ours[int(c)] == pytest.approx(ref, abs=1e-12)


def test_best_f1_thresholds_are_the_best(demo_run):
    _, run, _ = demo_run
    ev = run.evaluator
    best = ev.best_thresholds()
    for k, cid in enumerate(ev.class_ids):
        b = best[int(cid)]
        at = ev.counts(b["threshold"])
        f1 = 2 * at.tp[k] / (2 * at.tp[k] + at.fp[k] + at.fn[k])
        assert f1 == pytest.approx(b["f1"], abs=1e-12)
        for t in np.unique(ev.flat.det_score[ev.flat.det_class == cid]):
            c = ev.counts(float(t))
            assert 2 * c.tp[k] / (2 * c.tp[k] + c.fp[k] + c.fn[k]) <= b["f1"] + 1e-12


def test_a_job_runs_off_the_calling_thread_with_progress_and_from_the_cache(demo, data_dir, demo_run):
    images = list_images([demo / "test" / "images"])
    seen = []
    host = ModelHost()
    try:
        host.load_sync(demo)
        job = start_evaluation(host, images, read_truth(None, images), on_progress=seen.append)
        result = job.future.result(timeout=120)
    finally:
        host.shutdown()
    assert result.cached == len(images)                     # the module's first run filled the cache
    assert seen[-1].done == seen[-1].total == len(images) and job.progress == seen[-1]
    cache = data_dir / "detections-cache"
    assert len(list(cache.glob("*/*.npz"))) == len(images)


# --- real annotation files from elsewhere ------------------------------------------------------------

def test_coco_metrics_equal_pycocotools_on_the_voc2011_coco_file(realdata, tmp_path):
    """The VOC 2011 samples' COCO file (a background category, polygon areas, annotation id 0) against the
    labelme boxes of the same images taken as detections.

    pycocotools marks matches with annotation ids, so the box with id 0 can never count as found (the
    warning faster-coco-eval prints); detscope numbers annotations itself and has no such blind spot. The
    comparison is therefore with pycocotools on the same file with its annotation ids counted from 1.
    """
    root = realdata / "voc2011-samples/examples"
    if not root.is_dir():
        pytest.skip(f"{root} is not there")
    gt_file = root / "instance_segmentation/data_dataset_coco/annotations.json"
    lm = read_label_map(root / "bbox_detection" / "labels.txt")
    truth = readers.read_ground_truth(gt_file, [], label_map=lm)
    labelme = readers.read_ground_truth(root / "bbox_detection/data_annotated", [], label_map=lm)
    items = []
    for key, ann in truth.images.items():
        boxes = labelme.images[Path(key).stem]
        n = len(boxes)
        scores = np.linspace(0.9, 0.3, n) if n else np.zeros(0)
        dets = Detections.build(boxes.boxes, scores, boxes.class_ids, boxes.names, ann.width, ann.height)
        items.append(ImageItem(gt_file.parent / key, dets, ann))
    ev = Evaluator(items, {i.id: i.label for i in lm.items})
    data = json.loads(gt_file.read_text())
    assert min(a["id"] for a in data["annotations"]) == 0
    for a in data["annotations"]:
        a["id"] += 1
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    _, ref = _pycocotools(tmp_path / "annotations.json", _results_for_file(ev, gt_file))
    ours = ev.coco()
    np.testing.assert_allclose([ours.stats[k] for k in ours.stats], ref.stats, rtol=0, atol=1e-12)
    assert {c: v["AP"] for c, v in ours.per_class.items() if v["AP"] == v["AP"]} == \
        pytest.approx(_per_class_ap(ref), abs=1e-12)
