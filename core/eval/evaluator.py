"""One test set's evaluation: detections beside ground truth, any threshold and IoU, Qt-free.

An :class:`Evaluator` is built once from each image's detections (at threshold 0) and annotations
(``None``: unannotated, left out of every metric). It matches per IoU on first use and keeps the
match; everything at a score threshold (:meth:`counts`, :meth:`confusion`, :meth:`error_counts`,
:meth:`worst_images`) is then counting with NumPy, fast enough to follow a slider. COCO and VOC
metrics and the curves do not depend on the threshold and are computed once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotations import Annotations
from .matching import (BG_IOU, ERROR_NAMES, FP, IGNORED, MISSED, TP, FlatSet, Match, box_iou, match,
                       nearest_boxes, overlapping_pairs)
from .metrics import CocoMetrics, VocMetrics, coco_metrics, curves, voc_metrics
from ..detect.detections import Detections

BACKGROUND = "background"


@dataclass(frozen=True)
class ImageItem:
    """One test image: its detections at threshold 0 and its annotations (None: unannotated)."""

    path: Path
    detections: Detections
    truth: Annotations | None


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


@dataclass(frozen=True)
class Counts:
    """TP, FP and FN at one threshold and IoU, per class (``class_ids`` order) and per annotated image."""

    threshold: float
    iou: float
    class_ids: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    image_tp: np.ndarray
    image_fp: np.ndarray
    image_fn: np.ndarray

    @property
    def total(self) -> tuple[int, int, int]:
        return int(self.tp.sum()), int(self.fp.sum()), int(self.fn.sum())

    @staticmethod
    def prf(tp, fp, fn):
        """Precision, recall and F1 (NaN where undefined: 0/0)."""
        tp, fp, fn = (np.asarray(x, np.float64) for x in (tp, fp, fn))
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        return p, r, f1

    def summary(self) -> dict:
        tp, fp, fn = self.total
        p, r, f1 = (float(x) for x in self.prf(tp, fp, fn))
        return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f1}


@dataclass(frozen=True)
class Confusion:
    """Rows: the true class (then background: detections on nothing); columns: the predicted class
    (then background: boxes nothing found). The diagonal is the true positives."""

    class_ids: tuple[int, ...]
    labels: tuple[str, ...]          # class labels, then "background"
    matrix: np.ndarray               # (K+1, K+1) int64


@dataclass(frozen=True)
class ErrorRow:
    """One error on an image: a false positive (``kind`` a TIDE type) or a missed box (``kind`` "missed"
    or the error type that explains it), with what the nearest prediction was and why it did not count."""

    kind: str
    class_id: int
    label: str
    box: tuple[float, float, float, float]
    score: float | None = None          # false positives: their score
    iou: float | None = None            # IoU with the box it is about (false positive) / with the nearest prediction
    other: str | None = None            # the class it was confused with / the nearest prediction's label
    other_score: float | None = None
    reason: str | None = None           # missed boxes: why the nearest prediction did not count
    detection: int | None = None        # row of the image's detections
    truth: int | None = None            # row of the image's annotations


@dataclass(frozen=True)
class ImageErrors:
    index: int                           # into Evaluator.items
    tp: int
    fp: tuple[ErrorRow, ...]
    fn: tuple[ErrorRow, ...]
    ignored: int                         # detections on crowd / difficult boxes
    truth_status: tuple[str, ...]        # per annotation row: "tp", "fn" or "ignored"
    det_status: tuple[str, ...]          # per detection row above the threshold: "tp", "fp" or "ignored"


class Evaluator:
    def __init__(self, items: list[ImageItem], class_names: dict[int, str] | None = None):
        self.items = list(items)
        self.annotated = [i for i, it in enumerate(self.items) if it.truth is not None]
        self._flat_index = {i: k for k, i in enumerate(self.annotated)}
        self.flat = FlatSet.build([self.items[i].detections for i in self.annotated],
                                  [self.items[i].truth for i in self.annotated])
        fs = self.flat
        names = dict(class_names or {})
        ids = set(names) | set(fs.gt_class.tolist()) | set(fs.det_class.tolist())
        self.class_ids = np.array(sorted(ids), np.int64)
        self.class_names = {int(c): names.get(int(c), f"class {int(c)}") for c in self.class_ids}
        self._det_k = np.searchsorted(self.class_ids, fs.det_class)
        self._gt_k = np.searchsorted(self.class_ids, fs.gt_class)
        self._real = ~fs.gt_ignored
        k = len(self.class_ids)
        self.objects = np.bincount(self._gt_k[self._real], minlength=k).astype(np.int64)
        self._image_objects = np.bincount(fs.gt_image[self._real], minlength=fs.n_images).astype(np.int64)
        self._det_start, self._gt_start = fs.image_ranges()
        self.pairs = overlapping_pairs(fs)
        self.nearest = nearest_boxes(fs, self.pairs)
        self._matches: dict[float, Match] = {}
        self._curves: dict[float, dict] = {}
        self._coco: CocoMetrics | None = None
        self._voc: VocMetrics | None = None
        self._lock = threading.Lock()

    # --- the parts ------------------------------------------------------------------------------
    @property
    def unannotated(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if it.truth is None]

    def label(self, class_id: int) -> str:
        return self.class_names.get(int(class_id), f"class {int(class_id)}")

    def match(self, iou: float) -> Match:
        key = round(float(iou), 6)
        with self._lock:
            m = self._matches.get(key)
            if m is None:
                m = self._matches[key] = match(self.flat, self.pairs, self.nearest, key)
            return m

    # --- at a threshold -------------------------------------------------------------------------
    def counts(self, threshold: float, iou: float = 0.5) -> Counts:
        fs, m, k = self.flat, self.match(iou), len(self.class_ids)
        keep = fs.det_score >= threshold
        tp = keep & (m.status == TP)
        fp = keep & (m.status == FP)
        tp_k = np.bincount(self._det_k[tp], minlength=k)
        fp_k = np.bincount(self._det_k[fp], minlength=k)
        tp_i = np.bincount(fs.det_image[tp], minlength=fs.n_images)
        fp_i = np.bincount(fs.det_image[fp], minlength=fs.n_images)
        return Counts(float(threshold), float(iou), self.class_ids, tp_k, fp_k, self.objects - tp_k,
                      tp_i, fp_i, self._image_objects - tp_i)

    def _confusion_cells(self, threshold: float, iou: float):
        """Each counted object's and lone detection's cell: ``(gt rows, gt cols, det rows, det cols, gt index,
        det index)`` in class-index space (``len(class_ids)`` is the background)."""
        fs, m, k = self.flat, self.match(iou), len(self.class_ids)
        bg = k
        real = np.nonzero(self._real)[0]
        found = m.gt_tp_score[real] >= threshold
        # the highest-scoring wrong-class detection on each box (when it is above the threshold)
        conf_score = np.full(len(fs.gt_class), -np.inf)
        conf_k = np.full(len(fs.gt_class), bg, np.int64)
        firsts = np.nonzero(m.first_confuser)[0]
        conf_score[m.conf_gt[firsts]] = fs.det_score[firsts]
        conf_k[m.conf_gt[firsts]] = self._det_k[firsts]
        confused = ~found & (conf_score[real] >= threshold)
        col = np.where(found, self._gt_k[real], np.where(confused, conf_k[real], bg))
        keep = (fs.det_score >= threshold) & (m.status == FP)
        counted = m.first_confuser & (m.conf_gt >= 0)
        counted &= m.gt_tp_score[np.maximum(m.conf_gt, 0)] < threshold
        lone = np.nonzero(keep & ~counted)[0]
        return self._gt_k[real], col, np.full(len(lone), bg), self._det_k[lone], real, lone

    def confusion(self, threshold: float, iou: float = 0.5) -> Confusion:
        k = len(self.class_ids)
        gr, gc, dr, dc, _, _ = self._confusion_cells(threshold, iou)
        mat = np.zeros((k + 1, k + 1), np.int64)
        np.add.at(mat, (gr, gc), 1)
        np.add.at(mat, (dr, dc), 1)
        labels = tuple(self.label(c) for c in self.class_ids) + (BACKGROUND,)
        return Confusion(tuple(int(c) for c in self.class_ids), labels, mat)

    def images_in_cell(self, row: int, col: int, threshold: float, iou: float = 0.5) -> list[int]:
        """Indexes into ``items`` of the images counted in confusion cell (``row``, ``col``) — class indexes
        as :meth:`confusion` orders them, ``len(class_ids)`` for background — most such cases first."""
        gr, gc, dr, dc, g, d = self._confusion_cells(threshold, iou)
        imgs = np.concatenate([self.flat.gt_image[g[(gr == row) & (gc == col)]],
                               self.flat.det_image[d[(dr == row) & (dc == col)]]])
        return self._rank(imgs)

    def images_with_error(self, kind: str, threshold: float, iou: float = 0.5, class_id: int | None = None) -> list[int]:
        """Indexes into ``items`` of the images with errors of ``kind`` (a TIDE type or "missed"), of
        ``class_id`` only if given, most such errors first."""
        fs, m = self.flat, self.match(iou)
        if kind == MISSED:
            sel = self._real & (m.gt_tp_score < threshold) & (m.gt_explained < threshold)
            if class_id is not None:
                sel &= fs.gt_class == class_id
            return self._rank(fs.gt_image[sel])
        code = ERROR_NAMES.index(kind)
        sel = (fs.det_score >= threshold) & (m.status == FP) & (m.error == code)
        if class_id is not None:
            sel &= fs.det_class == class_id
        return self._rank(fs.det_image[sel])

    def _rank(self, flat_images: np.ndarray) -> list[int]:
        if not len(flat_images):
            return []
        imgs, n = np.unique(flat_images, return_counts=True)
        order = np.lexsort((imgs, -n))
        return [self.annotated[int(i)] for i in imgs[order]]

    def error_counts(self, threshold: float, iou: float = 0.5) -> dict[str, int]:
        """False positives by TIDE type, and missed boxes, at ``threshold``."""
        fs, m = self.flat, self.match(iou)
        keep = (fs.det_score >= threshold) & (m.status == FP)
        by_type = np.bincount(m.error[keep].astype(np.int64), minlength=len(ERROR_NAMES))
        out = {name: int(n) for name, n in zip(ERROR_NAMES, by_type)}
        missed = self._real & (m.gt_tp_score < threshold) & (m.gt_explained < threshold)
        out[MISSED] = int(missed.sum())
        return out

    def worst_images(self, threshold: float, iou: float = 0.5) -> list[int]:
        """Indexes into ``items`` of the annotated images, most errors (FP + FN) first, then most missed."""
        c = self.counts(threshold, iou)
        errors = c.image_fp + c.image_fn
        order = np.lexsort((np.arange(len(errors)), -c.image_fn, -errors))
        return [self.annotated[i] for i in order]

    # --- independent of the threshold -----------------------------------------------------------
    def curves(self, iou: float = 0.5) -> dict:
        key = round(float(iou), 6)
        if key not in self._curves:
            self._curves[key] = curves(self.flat, self.match(key), self.class_ids)
        return self._curves[key]

    def best_thresholds(self, iou: float = 0.5) -> dict:
        """Per class id (and None: all classes): the threshold with the best F1, and that F1."""
        return {c: dict(cv.best) for c, cv in self.curves(iou).items()}

    def coco(self) -> CocoMetrics | None:
        if self._coco is None:
            self._coco = coco_metrics(self.flat, self.class_ids, self.class_names)
        return self._coco

    def voc(self) -> VocMetrics:
        if self._voc is None:
            self._voc = voc_metrics(self.flat, self.pairs, self.class_ids)
        return self._voc

    # --- one image ------------------------------------------------------------------------------
    def image_errors(self, index: int, threshold: float, iou: float = 0.5) -> ImageErrors | None:
        """What went wrong on ``items[index]`` at ``threshold``: None for an unannotated image."""
        item = self.items[index]
        if item.truth is None:
            return None
        k = self._flat_index[index]
        fs, m = self.flat, self.match(iou)
        d0, d1 = int(self._det_start[k]), int(self._det_start[k + 1])
        g0, g1 = int(self._gt_start[k]), int(self._gt_start[k + 1])
        # flat rows -> the image's own rows (flat detections are sorted by score; flat boxes skip unmapped ones)
        det_rows = np.argsort(-np.asarray(item.detections.scores, np.float64), kind="stable")
        gt_rows = np.nonzero(np.asarray(item.truth.class_ids) >= 0)[0]
        keep = fs.det_score[d0:d1] >= threshold
        status = m.status[d0:d1]
        fps = []
        for j in np.nonzero(keep & (status == FP))[0]:
            d = d0 + j
            err = int(m.error[d])
            g = int(m.error_gt[d])
            box = tuple(float(v) for v in fs.det_box[d])
            iou_g = float(box_iou(fs.det_box[d][None], fs.gt_box[g][None])[0, 0]) if g >= 0 else None
            fps.append(ErrorRow(ERROR_NAMES[err], int(fs.det_class[d]), self.label(fs.det_class[d]), box,
                                float(fs.det_score[d]), iou_g, self.label(fs.gt_class[g]) if g >= 0 else None,
                                detection=int(det_rows[j]), truth=int(gt_rows[g - g0]) if g >= 0 else None))
        fns = []
        truth_status = ["ignored"] * len(item.truth)
        for j in range(g1 - g0):
            g = g0 + j
            if not self._real[g]:
                continue
            if m.gt_tp_score[g] >= threshold:
                truth_status[gt_rows[j]] = "tp"
                continue
            truth_status[gt_rows[j]] = "fn"
            fns.append(self._explain_miss(g, d0, d1, threshold, m, det_rows, int(gt_rows[j])))
        det_status = tuple(("tp", "fp", "ignored")[[TP, FP, IGNORED].index(int(s))] for s in status[keep])
        det_status_rows = ["below"] * len(det_rows)
        for j, s in zip(np.nonzero(keep)[0], det_status):
            det_status_rows[det_rows[j]] = s
        return ImageErrors(index, int(np.sum(keep & (status == TP))), tuple(fps), tuple(fns),
                           int(np.sum(keep & (status == IGNORED))), tuple(truth_status), tuple(det_status_rows))

    def _explain_miss(self, g: int, d0: int, d1: int, threshold: float, m: Match, det_rows, truth_row: int
                      ) -> ErrorRow:
        fs = self.flat
        c = int(fs.gt_class[g])
        box = tuple(float(v) for v in fs.gt_box[g])
        explained = m.gt_explained[g] >= threshold
        kind = MISSED
        if explained:
            on = np.nonzero((m.error_gt[d0:d1] == g) & (fs.det_score[d0:d1] >= threshold) & (m.status[d0:d1] == FP))[0]
            kinds = {ERROR_NAMES[int(m.error[d0 + j])] for j in on} - {"duplicate", "background"}
            kind = sorted(kinds)[0] if kinds else MISSED
        row = dict(kind=kind, class_id=c, label=self.label(c), box=box, truth=truth_row)
        if d1 == d0:
            return ErrorRow(**row, reason="no prediction on the image")
        ious = box_iou(fs.det_box[d0:d1], fs.gt_box[g][None])[:, 0]
        scores = fs.det_score[d0:d1]
        same = fs.det_class[d0:d1] == c
        above = scores >= threshold
        thr = m.iou
        cases = (
            (same & (ious >= thr) & ~above, "below the threshold",
             lambda j: f"score {scores[j]:.3f} < {threshold:.3f}"),
            (same & (ious >= thr) & above, "taken by another box",
             lambda j: f"score {scores[j]:.3f}, but it was matched to a box it overlaps more"),
            (~same & (ious >= thr) & above, "wrong class",
             lambda j: f"predicted {self.label(fs.det_class[d0 + j])}, score {scores[j]:.3f}"),
            (same & (ious > 0) & above, "IoU too low", lambda j: f"IoU {ious[j]:.3f} < {thr:.3f}"),
            (~same & (ious >= BG_IOU) & above, "wrong class and IoU too low",
             lambda j: f"predicted {self.label(fs.det_class[d0 + j])}, IoU {ious[j]:.3f} < {thr:.3f}"),
            ((ious > 0) & ~above, "below the threshold",
             lambda j: f"score {scores[j]:.3f} < {threshold:.3f}, IoU {ious[j]:.3f}"
                       + ("" if same[j] else f", predicted {self.label(fs.det_class[d0 + j])}")),
        )
        for cond, reason, detail in cases:
            cand = np.nonzero(cond)[0]
            if len(cand):
                # the nearest: most overlap, then best score
                j = int(cand[np.lexsort((-scores[cand], -ious[cand]))[0]])
                return ErrorRow(**row, iou=float(ious[j]), other=self.label(fs.det_class[d0 + j]),
                                other_score=float(scores[j]), reason=f"{reason}: {detail(j)}",
                                detection=int(det_rows[j]))
        return ErrorRow(**row, reason="no prediction overlaps it")

