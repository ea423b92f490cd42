"""An evaluation as one plain JSON-ready dict (``detscope eval --json``; the HTML report reads it too).

The schema is documented in README.md (``detscope eval``). Numbers that are undefined (a precision
with no detections, the AP of a class with no boxes) are ``null``.
"""

from __future__ import annotations

import math

import numpy as np

from .evaluator import Counts, Evaluator
from .matching import ERROR_NAMES, MISSED


def _n(v, digits: int = 6):
    if v is None:
        return None
    v = float(v)
    return None if not math.isfinite(v) or v < 0 else round(v, digits)


def _error_json(e) -> dict:
    out = {"kind": e.kind, "class_id": e.class_id, "label": e.label, "box": [round(v, 2) for v in e.box]}
    if e.score is not None:
        out["score"] = round(e.score, 4)
    if e.iou is not None:
        out["iou"] = round(e.iou, 4)
    if e.other is not None:
        out["other"] = e.other
    if e.other_score is not None:
        out["other_score"] = round(e.other_score, 4)
    if e.reason is not None:
        out["reason"] = e.reason
    return out


def evaluation_json(ev: Evaluator, threshold: float, iou: float, about: dict | None = None,
                    images: str = "all") -> dict:
    """Everything ``--json`` prints. ``images``: "all" lists every image (worst first), "none" leaves them out."""
    counts: Counts = ev.counts(threshold, iou)
    coco = ev.coco()
    voc = ev.voc()
    best = ev.best_thresholds(iou)
    p, r, f1 = Counts.prf(counts.tp, counts.fp, counts.fn)
    classes = []
    for k, cid in enumerate(ev.class_ids):
        cid = int(cid)
        pc = coco.per_class.get(cid, {}) if coco else {}
        b = best.get(cid, {})
        classes.append({
            "class_id": cid, "label": ev.label(cid), "objects": int(ev.objects[k]),
            "tp": int(counts.tp[k]), "fp": int(counts.fp[k]), "fn": int(counts.fn[k]),
            "precision": _n(p[k]), "recall": _n(r[k]), "f1": _n(f1[k]),
            "AP": _n(pc.get("AP")), "AP50": _n(pc.get("AP50")), "AP75": _n(pc.get("AP75")),
            "voc_AP50": _n(voc.per_class.get(cid)),
            "best_f1": _n(b.get("f1")), "best_f1_threshold": _n(b.get("threshold")),
        })
    conf = ev.confusion(threshold, iou)
    summary = counts.summary()
    out = dict(about or {})
    unannotated = ev.unannotated
    empty = sum(1 for i in ev.annotated if len(ev.items[i].truth) == 0)
    out.update({
        "threshold": threshold, "iou": iou,
        "images": {"total": len(ev.items), "annotated": len(ev.annotated), "empty": empty,
                   "unannotated": len(unannotated)},
        "objects": int(ev.objects.sum()), "ignored_objects": int(np.sum(ev.flat.gt_ignored)),
        "detections": {"total": int(len(ev.flat.det_score)),
                       "above_threshold": int(np.sum(ev.flat.det_score >= threshold))},
        "coco": None if coco is None else {k: _n(v) for k, v in coco.stats.items()},
        "voc": {"mAP50": _n(voc.mAP)},
        "at_threshold": {k: (_n(v) if isinstance(v, float) else v) for k, v in summary.items()},
        "best_f1": {k: _n(v) for k, v in best.get(None, {}).items()},
        "classes": classes,
        "confusion": {"labels": list(conf.labels), "rows": "true class", "columns": "predicted class",
                      "matrix": conf.matrix.tolist()},
        "errors": ev.error_counts(threshold, iou),
    })
    if images != "none":
        rows = []
        for i in ev.worst_images(threshold, iou):
            e = ev.image_errors(i, threshold, iou)
            rows.append({"path": str(ev.items[i].path), "tp": e.tp, "fp": len(e.fp), "fn": len(e.fn),
                         "errors": [_error_json(x) for x in e.fp + e.fn]})
        out["images_worst_first"] = rows
        out["unannotated_images"] = [str(ev.items[i].path) for i in unannotated]
    return out


ERROR_KINDS = ERROR_NAMES + (MISSED,)
