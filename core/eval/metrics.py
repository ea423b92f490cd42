"""Metrics over a :class:`~.matching.FlatSet`: COCO (through faster-coco-eval), Pascal VOC AP@0.5,
precision-recall and F1-versus-threshold curves.

COCO metrics are faster-coco-eval's ``COCOeval_faster`` on the ground truth and detections as COCO
datasets (:func:`coco_datasets`; pycocotools given the same two gives the same numbers). Ignored boxes
(VOC ``difficult``, COCO ``ignore``) are passed as crowd regions, the one way COCO's evaluator has to
ignore a box (pycocotools would otherwise count an ``ignore`` flag as an ordinary object).

Pascal VOC AP@0.5 follows the VOC 2010–2012 devkit: detections of a class by score, each against the
box of its class it overlaps most (IoU strictly above 0.5; ``difficult`` boxes ignored; a box already
found makes the detection false), AP as the area under the precision envelope at every recall step.
IoU is measured on continuous coordinates (no devkit "+1" pixel), as the OD API's Pascal evaluator does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .matching import IGNORED, TP, FlatSet, Match, Pairs, best_per_detection

COCO_STATS = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# --- COCO ------------------------------------------------------------------------------------------

def coco_datasets(fs: FlatSet, class_ids, names: dict[int, str] | None = None) -> tuple[dict, list[dict]]:
    """The ground truth as a COCO dataset (image ids 1..N, annotation ids 1..G) and the detections in
    COCO's results format."""
    names = names or {}
    images = [{"id": i + 1, "file_name": f"image-{i + 1}", "width": 0, "height": 0} for i in range(fs.n_images)]
    b = fs.gt_box
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    area = np.where(np.isnan(fs.gt_area), w * h, fs.gt_area)
    crowd = fs.gt_ignored
    anns = [{"id": k + 1, "image_id": int(img) + 1, "category_id": int(c),
             "bbox": [float(x0), float(y0), float(ww), float(hh)], "area": float(a), "iscrowd": int(cr)}
            for k, (img, c, (x0, y0, _, _), ww, hh, a, cr)
            in enumerate(zip(fs.gt_image, fs.gt_class, b, w, h, area, crowd))]
    cats = [{"id": int(c), "name": names.get(int(c), f"class {int(c)}")} for c in class_ids]
    d = fs.det_box
    results = [{"image_id": int(img) + 1, "category_id": int(c), "score": float(s),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]}
               for img, c, s, (x0, y0, x1, y1) in zip(fs.det_image, fs.det_class, fs.det_score, d)]
    return {"images": images, "annotations": anns, "categories": cats}, results


@dataclass
class CocoMetrics:
    stats: dict[str, float]                       # COCO_STATS -> value (-1: undefined, as COCO writes it)
    per_class: dict[int, dict[str, float]]        # class id -> {"AP", "AP50", "AP75", "AR100"} (NaN: no boxes)

    def as_json(self) -> dict:
        return {**{k: _num(v) for k, v in self.stats.items()}}


def _num(v: float):
    return None if v is None or not np.isfinite(v) or v < 0 else round(float(v), 6)


def coco_metrics(fs: FlatSet, class_ids, names: dict[int, str] | None = None) -> CocoMetrics | None:
    """COCO box metrics with faster-coco-eval; None when there are no ground-truth boxes at all."""
    if not len(fs.gt_class) or fs.n_images == 0:
        return None
    from faster_coco_eval import COCO, COCOeval_faster

    gt_data, results = coco_datasets(fs, class_ids, names)
    quiet = lambda *a, **k: None  # noqa: E731
    gt = COCO(gt_data, print_function=quiet)
    dt = gt.loadRes(results) if results else _empty_results(gt)
    ev = COCOeval_faster(gt, dt, "bbox", print_function=quiet)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}
    return CocoMetrics(stats, per_class_ap(ev.eval["precision"], ev.eval["recall"], ev.params))


def _empty_results(gt):
    from faster_coco_eval import COCO

    dt = COCO(print_function=lambda *a, **k: None)
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
                  "annotations": []}
    dt.createIndex()
    return dt


def per_class_ap(precision: np.ndarray, recall: np.ndarray, params) -> dict[int, dict[str, float]]:
    """Per-class AP (IoU .50:.95), AP50, AP75 and AR@100 from COCO's accumulated arrays
    (precision ``[T, R, K, A, M]``, recall ``[T, K, A, M]``; area "all", the last maxDets)."""
    precision, recall = np.asarray(precision), np.asarray(recall)
    thrs = np.asarray(params.iouThrs)
    out = {}

    def mean(a):
        a = a[a > -1]
        return float(a.mean()) if a.size else float("nan")

    for k, cid in enumerate(params.catIds):
        p = precision[:, :, k, 0, -1]
        row = {"AP": mean(p)}
        for name, t in (("AP50", 0.5), ("AP75", 0.75)):
            i = np.nonzero(np.isclose(thrs, t))[0]
            row[name] = mean(p[i[0]]) if len(i) else float("nan")
        row["AR100"] = mean(recall[:, k, 0, -1])
        out[int(cid)] = row
    return out


# --- Pascal VOC ------------------------------------------------------------------------------------

def voc_ap_from_pr(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope at every recall step (VOC 2010–2012)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class VocMetrics:
    per_class: dict[int, float]       # class id -> AP@0.5 (NaN: no boxes of the class)

    @property
    def mAP(self) -> float | None:
        vals = [v for v in self.per_class.values() if np.isfinite(v)]
        return float(np.mean(vals)) if vals else None


def voc_metrics(fs: FlatSet, pairs: Pairs, class_ids, iou_thr: float = 0.5) -> VocMetrics:
    same = fs.det_class[pairs.det] == fs.gt_class[pairs.gt]
    det, gt, iou = pairs.det[same], pairs.gt[same], pairs.iou[same]
    n = len(fs.det_score)
    best_gt, best_iou = best_per_detection(n, det, gt, iou)
    ignored = fs.gt_ignored
    out = {}
    for c in class_ids:
        npos = int(np.sum((fs.gt_class == c) & ~ignored))
        idx = np.nonzero(fs.det_class == c)[0]
        if npos == 0:
            out[int(c)] = float("nan")
            continue
        idx = idx[np.argsort(-fs.det_score[idx], kind="stable")]
        hit = best_iou[idx] > iou_thr
        g = best_gt[idx]
        on_ignored = hit & ignored[np.maximum(g, 0)]
        real = hit & ~on_ignored
        tp = np.zeros(len(idx), bool)
        real_pos = np.nonzero(real)[0]
        if len(real_pos):
            _, first = np.unique(g[real_pos], return_index=True)
            tp[real_pos[first]] = True
        fp = ~tp & ~on_ignored
        keep = ~on_ignored
        ctp, cfp = np.cumsum(tp[keep]), np.cumsum(fp[keep])
        rec = ctp / npos
        prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        out[int(c)] = voc_ap_from_pr(rec, prec) if len(ctp) else 0.0
    return VocMetrics(out)


# --- curves ----------------------------------------------------------------------------------------

@dataclass
class Curve:
    """Precision, recall and F1 as the score threshold falls through each detection's score.

    Only thresholds at the end of a run of equal scores are kept (a threshold keeps all of a tie).
    """

    class_id: int | None               # None: all classes together
    objects: int
    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    best: dict = field(default_factory=dict)   # {"f1", "threshold", "precision", "recall"} (empty: no detections)

    def sampled(self, points: int = 200) -> dict:
        """At most ``points`` points of the curve, as lists (for plots and JSON)."""
        n = len(self.scores)
        idx = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int)) if n else np.zeros(0, int)
        r = lambda a: [round(float(v), 5) for v in a[idx]]  # noqa: E731
        return {"score": r(self.scores), "precision": r(self.precision), "recall": r(self.recall), "f1": r(self.f1)}


def _curve(class_id, scores: np.ndarray, is_tp: np.ndarray, npos: int) -> Curve:
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], is_tp[order]
    ctp = np.cumsum(t)
    cfp = np.cumsum(~t)
    end = np.ones(len(s), bool)
    end[:-1] = s[1:] != s[:-1]
    s, ctp, cfp = s[end], ctp[end], cfp[end]
    prec = ctp / np.maximum(ctp + cfp, 1)
    rec = ctp / npos if npos else np.zeros(len(ctp))
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    best = {}
    if len(s):
        i = int(np.argmax(f1))
        best = {"f1": float(f1[i]), "threshold": float(s[i]), "precision": float(prec[i]), "recall": float(rec[i])}
    return Curve(class_id, npos, s, prec, rec, f1, best)


def curves(fs: FlatSet, m: Match, class_ids) -> dict:
    """Per class (and ``None`` for all classes together): the :class:`Curve` at the match's IoU."""
    counted = m.status != IGNORED
    is_tp = m.status == TP
    real = ~fs.gt_ignored
    out = {}
    for c in class_ids:
        sel = counted & (fs.det_class == c)
        out[int(c)] = _curve(int(c), fs.det_score[sel], is_tp[sel], int(np.sum(real & (fs.gt_class == c))))
    out[None] = _curve(None, fs.det_score[counted], is_tp[counted], int(real.sum()))
    return out

