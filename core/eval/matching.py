"""Detections matched to ground truth: once per IoU at threshold 0, then any score threshold by counting.

Matching is greedy by score, as COCO's evaluator does it: each detection, best score first, takes
the unmatched ground-truth box of its class with the highest IoU at or above the IoU threshold
(true positive); failing that, an *ignored* box (a COCO crowd region, measured by the share of
the detection inside it, or a VOC ``difficult`` object) absorbs it (neither right nor wrong);
otherwise it is a false positive. Because a detection only ever competes with higher-scoring
ones, the matches of the detections above a threshold ``t`` are exactly those computed at
threshold 0 restricted to scores ``>= t``: a threshold change is a count, never a re-match.

Everything here works on one flat :class:`FlatSet` of all annotated images, with NumPy: the IoU
of every (detection, box) pair of an image is computed once (kept where it is above 0), and each
IoU threshold gives one :class:`Match`.

Error types (TIDE, Bolya et al. 2020) for each false positive, with the foreground IoU ``fg``
(the matching threshold) and the background IoU ``BG_IOU`` (0.1):

- ``localisation``: right class, ``BG_IOU <= IoU < fg`` with a box of its class;
- ``classification``: IoU ``>= fg`` with a box of another class;
- ``duplicate``: IoU ``>= fg`` with a box of its class that a higher-scoring detection took;
- ``background``: IoU ``< BG_IOU`` with every box;
- ``both``: wrong class and ``BG_IOU <= IoU < fg``;

and for ground truth: ``missed`` — not detected, and no classification, localisation or "both"
error lies on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BG_IOU = 0.1
PAIR_CHUNK = 1 << 21          # (detection, box) pairs computed at once

TP, FP, IGNORED = 1, 0, 2
LOC, CLS, DUP, BKG, BOTH, NONE = 0, 1, 2, 3, 4, -1
ERROR_NAMES = ("localisation", "classification", "duplicate", "background", "both")
MISSED = "missed"


@dataclass
class FlatSet:
    """All annotated images' detections and boxes in flat arrays (detections by image, best score first)."""

    n_images: int
    det_image: np.ndarray      # (D,) int64
    det_class: np.ndarray      # (D,) int64 label-map ids
    det_score: np.ndarray      # (D,) float64
    det_box: np.ndarray        # (D, 4) float64
    gt_image: np.ndarray       # (G,) int64
    gt_class: np.ndarray       # (G,) int64
    gt_box: np.ndarray         # (G, 4) float64
    gt_crowd: np.ndarray       # (G,) bool
    gt_difficult: np.ndarray   # (G,) bool
    gt_area: np.ndarray        # (G,) float64, the stated area (NaN: none)

    @property
    def gt_ignored(self) -> np.ndarray:
        return self.gt_crowd | self.gt_difficult

    @classmethod
    def build(cls, detections, truths) -> "FlatSet":
        """From per-image :class:`Detections` and :class:`Annotations` (same order; boxes of unmapped
        classes, id -1, are left out)."""
        d_img, d_cls, d_score, d_box = [], [], [], []
        g_img, g_cls, g_box, g_crowd, g_diff, g_area = [], [], [], [], [], []
        for i, (dets, ann) in enumerate(zip(detections, truths)):
            order = np.argsort(-np.asarray(dets.scores, np.float64), kind="stable")
            d_img.append(np.full(len(order), i, np.int64))
            d_cls.append(np.asarray(dets.class_ids, np.int64)[order])
            d_score.append(np.asarray(dets.scores, np.float64)[order])
            d_box.append(np.asarray(dets.boxes, np.float64).reshape(-1, 4)[order])
            keep = np.asarray(ann.class_ids) >= 0
            g_img.append(np.full(int(keep.sum()), i, np.int64))
            g_cls.append(np.asarray(ann.class_ids, np.int64)[keep])
            g_box.append(ann.boxes[keep])
            g_crowd.append(ann.crowd[keep])
            g_diff.append(ann.difficult[keep])
            g_area.append(ann.areas[keep] if ann.areas is not None else np.full(int(keep.sum()), np.nan))
        cat = lambda parts, dtype, shape=(0,): np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)  # noqa: E731
        return cls(len(truths), cat(d_img, np.int64), cat(d_cls, np.int64), cat(d_score, np.float64),
                   cat(d_box, np.float64, (0, 4)).reshape(-1, 4), cat(g_img, np.int64), cat(g_cls, np.int64),
                   cat(g_box, np.float64, (0, 4)).reshape(-1, 4), cat(g_crowd, bool), cat(g_diff, bool),
                   cat(g_area, np.float64))

    def image_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """``(det_start, gt_start)``: each image's first row, with a final end row (length n_images + 1)."""
        det = np.searchsorted(self.det_image, np.arange(self.n_images + 1))
        gt = np.searchsorted(self.gt_image, np.arange(self.n_images + 1))
        return det, gt


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every row of ``a`` (N, 4) with every row of ``b`` (M, 4): (N, M)."""
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass
class Pairs:
    """Every (detection, box) pair of the same image that overlaps: IoU, and the IoU COCO uses
    (for a crowd box: the share of the detection inside it)."""

    det: np.ndarray        # (P,) int64
    gt: np.ndarray         # (P,) int64
    iou: np.ndarray        # (P,) float64
    match_iou: np.ndarray  # (P,) float64


def overlapping_pairs(fs: FlatSet) -> Pairs:
    det_start, gt_start = fs.image_ranges()
    n_gt_of_det = (gt_start[1:] - gt_start[:-1])[fs.det_image]
    ends = np.cumsum(n_gt_of_det)
    out = ([], [], [], [])
    lo = 0
    while lo < len(n_gt_of_det):
        # a chunk of detections whose pairs fit in PAIR_CHUNK
        hi = int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + PAIR_CHUNK, side="right"))
        hi = max(hi, lo + 1)
        counts = n_gt_of_det[lo:hi]
        total = int(counts.sum())
        if total:
            det = np.repeat(np.arange(lo, hi), counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            gt = gt_start[fs.det_image[det]] + within
            a, b = fs.det_box[det], fs.gt_box[gt]
            iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
            ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
            inter = iw * ih
            keep = inter > 0
            det, gt, a, b, inter = det[keep], gt[keep], a[keep], b[keep], inter[keep]
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            iou = inter / (area_a + area_b - inter)
            crowd = fs.gt_crowd[gt]
            with np.errstate(divide="ignore", invalid="ignore"):
                match = np.where(crowd, inter / np.where(area_a > 0, area_a, 1.0), iou)
            for part, arr in zip(out, (det, gt, iou, match)):
                part.append(arr)
        lo = hi
    if not out[0]:
        z = np.zeros(0, np.int64)
        return Pairs(z, z.copy(), np.zeros(0), np.zeros(0))
    return Pairs(*(np.concatenate(p) for p in out))


@dataclass
class Nearest:
    """For each detection, the box of its own class and of another class it overlaps most
    (non-ignored boxes only); -1 and 0.0 where there is none."""

    same_gt: np.ndarray
    same_iou: np.ndarray
    other_gt: np.ndarray
    other_iou: np.ndarray


def best_per_detection(n_det: int, det: np.ndarray, gt: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each detection, the ground-truth box it overlaps most (-1 for none) and that IoU."""
    best_gt = np.full(n_det, -1, np.int64)
    best_iou = np.zeros(n_det)
    if len(det):
        order = np.lexsort((-iou, det))
        first = np.ones(len(order), bool)
        first[1:] = det[order][1:] != det[order][:-1]
        pick = order[first]
        best_gt[det[pick]] = gt[pick]
        best_iou[det[pick]] = iou[pick]
    return best_gt, best_iou


def nearest_boxes(fs: FlatSet, pairs: Pairs) -> Nearest:
    real = ~fs.gt_ignored[pairs.gt]
    same = fs.det_class[pairs.det] == fs.gt_class[pairs.gt]
    n = len(fs.det_score)
    s = real & same
    o = real & ~same
    same_gt, same_iou = best_per_detection(n, pairs.det[s], pairs.gt[s], pairs.iou[s])
    other_gt, other_iou = best_per_detection(n, pairs.det[o], pairs.gt[o], pairs.iou[o])
    return Nearest(same_gt, same_iou, other_gt, other_iou)


@dataclass
class Match:
    """The matching at one IoU threshold, at score threshold 0 (see the module's docstring)."""

    iou: float
    status: np.ndarray          # (D,) int8: TP, FP or IGNORED
    det_gt: np.ndarray          # (D,) int64: the box a TP or ignored detection took, else -1
    gt_tp_score: np.ndarray     # (G,) float64: score of the detection that found the box, -inf if none
    error: np.ndarray           # (D,) int8: TIDE type of a false positive (LOC..BOTH), NONE otherwise
    error_gt: np.ndarray        # (D,) int64: the box a false positive's error is about, -1 for background
    gt_explained: np.ndarray    # (G,) float64: best score of a cls/loc/both error on the box, -inf if none
    conf_gt: np.ndarray         # (D,) int64: box of another class a false positive lies on (IoU >= iou), else -1
    first_confuser: np.ndarray  # (D,) bool: the highest-scoring false positive on its conf_gt


def _greedy(fs: FlatSet, pairs: Pairs, iou_thr: float) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching over the candidate pairs (same class, IoU >= threshold)."""
    n_det = len(fs.det_score)
    status = np.full(n_det, FP, np.int8)
    det_gt = np.full(n_det, -1, np.int64)
    cand = (fs.det_class[pairs.det] == fs.gt_class[pairs.gt]) & (pairs.match_iou >= iou_thr - 1e-12)
    det, gt, miou = pairs.det[cand], pairs.gt[cand], pairs.match_iou[cand]
    if not len(det):
        return status, det_gt
    ignored = fs.gt_ignored[gt]
    order = np.lexsort((-miou, ignored, det))     # by detection (image, best score first), real boxes first
    det, gt, ignored = det[order].tolist(), gt[order].tolist(), ignored[order].tolist()
    taken = bytearray(len(fs.gt_class))
    current, decided = -1, False
    for d, g, ign in zip(det, gt, ignored):
        if d == current and decided:
            continue
        if d != current:
            current, decided = d, False
        if ign:
            status[d] = IGNORED
            det_gt[d] = g
            decided = True
        elif not taken[g]:
            taken[g] = 1
            status[d] = TP
            det_gt[d] = g
            decided = True
    return status, det_gt


def match(fs: FlatSet, pairs: Pairs, nearest: Nearest, iou_thr: float) -> Match:
    status, det_gt = _greedy(fs, pairs, iou_thr)
    n_gt = len(fs.gt_class)
    tp = status == TP
    gt_tp_score = np.full(n_gt, -np.inf)
    gt_tp_score[det_gt[tp]] = fs.det_score[tp]

    fp = status == FP
    same_iou, other_iou = nearest.same_iou, nearest.other_iou
    error = np.full(len(status), NONE, np.int8)
    error_gt = np.full(len(status), -1, np.int64)
    rules = (
        (LOC, (same_iou >= BG_IOU) & (same_iou < iou_thr), nearest.same_gt),
        (CLS, other_iou >= iou_thr, nearest.other_gt),
        (DUP, same_iou >= iou_thr, nearest.same_gt),
        (BKG, np.maximum(same_iou, other_iou) < BG_IOU, np.full(len(status), -1, np.int64)),
        (BOTH, np.ones(len(status), bool), nearest.other_gt),
    )
    todo = fp.copy()
    for code, cond, target in rules:
        hit = todo & cond
        error[hit] = code
        error_gt[hit] = target[hit]
        todo &= ~hit
    # a "both" error with no other-class box above BG_IOU lies on its own class's box
    fix = (error == BOTH) & (error_gt < 0)
    error_gt[fix] = nearest.same_gt[fix]

    gt_explained = np.full(n_gt, -np.inf)
    expl = np.isin(error, (LOC, CLS, BOTH)) & (error_gt >= 0)
    np.maximum.at(gt_explained, error_gt[expl], fs.det_score[expl])

    conf_gt = np.where(fp & (other_iou >= iou_thr), nearest.other_gt, -1)
    first_confuser = np.zeros(len(status), bool)
    has = np.nonzero(conf_gt >= 0)[0]
    if len(has):
        # detections are in (image, best score first) order, so the first per box is the highest-scoring
        order = np.lexsort((has, conf_gt[has]))
        sorted_gt = conf_gt[has][order]
        first = np.ones(len(order), bool)
        first[1:] = sorted_gt[1:] != sorted_gt[:-1]
        first_confuser[has[order][first]] = True
    return Match(iou_thr, status, det_gt, gt_tp_score, error, error_gt, gt_explained, conf_gt, first_confuser)
