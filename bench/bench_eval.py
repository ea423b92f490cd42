"""Evaluation speed: a threshold change on a big test set, and `detscope eval` against a bare script.

- Threshold recomputation: 1,000 images with 100 detections each (seeded synthetic boxes around 3–15
  objects per image, 10 classes). The match at IoU 0.5 is made once; then each threshold step recomputes
  TP/FP/FN per class and per image, precision/recall/F1, the confusion matrix, the error counts and the
  worst-first image order. Target: under 50 ms per step.
- `detscope eval MODEL IMAGES --json` on the demo's export and test set, as whole processes, against a bare script
  (load the SavedModel, decode with Pillow, call the signature, score with pycocotools). detscope runs
  once with `--no-cache` (every image through the model) and once from its detections cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ENV, PY, REPO, detscope_cmd, interleaved

BARE = """
import contextlib, io, json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
gt_file = Path(sys.argv[2])
gt = json.loads(gt_file.read_text())
results = []
for im in gt["images"]:
    img = np.asarray(Image.open(gt_file.parent / "images" / im["file_name"]).convert("RGB"))
    h, w = img.shape[:2]
    out = fn(input_tensor=tf.constant(img[None]))
    n = int(out["num_detections"][0])
    for (y0, x0, y1, x1), s, c in zip(out["detection_boxes"][0, :n].numpy(), out["detection_scores"][0, :n].numpy(),
                                      out["detection_classes"][0, :n].numpy()):
        results.append({"image_id": im["id"], "category_id": int(c), "score": float(s),
                        "bbox": [float(x0 * w), float(y0 * h), float((x1 - x0) * w), float((y1 - y0) * h)]})
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(str(gt_file))
    ev = COCOeval(coco, coco.loadRes(results), "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
print(json.dumps({"mAP": ev.stats[0], "AP50": ev.stats[1]}))
"""


def synthetic(n_images: int = 1000, per_image: int = 100, classes: int = 10, seed: int = 7):
    from detscope.core.detect.detections import Detections
    from detscope.core.eval.annotations import Annotations
    from detscope.core.eval.evaluator import ImageItem

    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_images):
        w, h = 640, 480
        g = int(rng.integers(3, 16))
        xy = rng.uniform(0, [w - 40, h - 40], (g, 2))
        wh = rng.uniform(16, 160, (g, 2))
        gt = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1)
        gcls = rng.integers(1, classes + 1, g)
        # detections: a few jittered copies of each object (mostly its class), the rest anywhere
        k = min(per_image, 3 * g)
        src = rng.integers(0, g, k)
        jitter = rng.normal(0, 6, (k, 4))
        near = gt[src] + jitter
        near_cls = np.where(rng.random(k) < 0.85, gcls[src], rng.integers(1, classes + 1, k))
        m = per_image - k
        fxy = rng.uniform(0, [w - 20, h - 20], (m, 2))
        far = np.concatenate([fxy, np.minimum(fxy + rng.uniform(10, 120, (m, 2)), [w, h])], axis=1)
        boxes = np.concatenate([near, far])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        cls = np.concatenate([near_cls, rng.integers(1, classes + 1, m)])
        scores = np.concatenate([rng.beta(5, 2, k), rng.beta(1.2, 6, m)])
        dets = Detections.build(boxes, scores, cls, [f"c{c}" for c in cls], w, h)
        ann = Annotations.build(gt, [f"c{c}" for c in gcls], class_ids=gcls, width=w, height=h)
        items.append(ImageItem(Path(f"{i:04d}.jpg"), dets, ann))
    return items


def threshold_steps(repeat: int) -> None:
    from detscope.core.eval.evaluator import Evaluator

    items = synthetic()
    t0 = time.perf_counter()
    ev = Evaluator(items, {c: f"c{c}" for c in range(1, 11)})
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev.match(0.5)
    matched = time.perf_counter() - t0
    thresholds = np.linspace(0.05, 0.95, repeat)
    counts_ms, step_ms = [], []
    for t in thresholds:
        a = time.perf_counter()
        c = ev.counts(float(t))
        c.prf(c.tp, c.fp, c.fn)
        c.summary()
        b = time.perf_counter()
        ev.confusion(float(t))
        ev.error_counts(float(t))
        ev.worst_images(float(t))
        e = time.perf_counter()
        counts_ms.append((b - a) * 1000)
        step_ms.append((e - a) * 1000)
    n_det = len(ev.flat.det_score)
    print(f"threshold recomputation: {len(items)} images, {n_det} detections, {len(ev.flat.gt_class)} objects")
    print(f"  once: pairs and nearest boxes {built * 1000:.0f} ms, match at IoU 0.5 {matched * 1000:.0f} ms")
    print(f"  per threshold step, TP/FP/FN per class and image + P/R/F1: median {statistics.median(counts_ms):.2f} ms, "
          f"max {max(counts_ms):.2f} ms")
    print(f"  per threshold step, everything (also confusion, error types, worst-first order): median "
          f"{statistics.median(step_ms):.2f} ms, max {max(step_ms):.2f} ms (target < 50 ms)")


def whole_process(repeat: int) -> None:
    demo = REPO / "resources" / "demo"
    images = demo / "test" / "images"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        ENV["DETSCOPE_DATA_DIR"] = str(Path(tmp) / "data")
        model = str(demo / "saved_model")       # the export, as the bare script loads it (no checkpoint restore)
        cmds = {
            "detscope eval": detscope_cmd("eval", model, str(images), "--json", "--no-cache"),
            "detscope eval, cached": detscope_cmd("eval", model, str(images), "--json"),
            "bare script": [PY, str(script), str(demo / "saved_model"), str(demo / "test" / "annotations.json")],
        }
        r = interleaved(cmds, repeat=repeat)
    n = sum(1 for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    print(f"whole process on the demo test set ({n} images):")
    for k, (t, mem) in r.items():
        print(f"  {k:22s} {t:7.3f} s  {mem:7.1f} MiB peak")
    bare = r["bare script"][0]
    print(f"  ratio detscope / bare: {r['detscope eval'][0] / bare:.3f} (every image through the model), "
          f"{r['detscope eval, cached'][0] / bare:.3f} (from the cache)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="whole-process runs of each command")
    ap.add_argument("--steps", type=int, default=50, help="threshold steps timed")
    ap.add_argument("--skip-process", action="store_true", help="only the threshold recomputation")
    args = ap.parse_args()
    threshold_steps(args.steps)
    if not args.skip_process:
        whole_process(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
