"""Two models' detections on one image, matched to each other.

Model B's boxes play the part ground truth plays in :mod:`.matching`, and the same greedy matching
pairs them: each box of A above its threshold, best score first, takes the unmatched box of B of its
class with the highest IoU at or above ``iou`` (a *pair*). What is left is matched again the same
way with classes ignored: a box of A lying on a box of B of another class is a *class flip*. The
rest are boxes *only in A* and *only in B*.

``agreement`` of an image is the pairs over every object either model saw there
(pairs + class flips + only in A + only in B); two models that both see nothing agree (1.0).
Indices are rows of the :class:`~detscope.core.detect.detections.Detections` given (all rows, before
the thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detect.detections import Detections
from .matching import TP, FlatSet, box_iou, match, nearest_boxes, overlapping_pairs

DRIFT_EDGES = tuple(float(v) for v in np.round(np.linspace(-1.0, 1.0, 41), 6))   # score B - score A, 0.05 wide


@dataclass(frozen=True)
class ImageComparison:
    pairs: list[tuple[int, int, float, float, float]]        # (index_a, index_b, iou, score_a, score_b)
    class_flips: list[tuple[int, int, float, int, int]]      # (index_a, index_b, iou, class_a, class_b)
    only_a: list[int]
    only_b: list[int]
    agreement: float                                         # in [0, 1]

    @property
    def objects(self) -> int:
        """Everything either model saw: pairs, class flips, and boxes only one of them found."""
        return len(self.pairs) + len(self.class_flips) + len(self.only_a) + len(self.only_b)

    @property
    def disagreements(self) -> int:
        return len(self.class_flips) + len(self.only_a) + len(self.only_b)

    @property
    def drift(self) -> np.ndarray:
        """Score of B minus score of A of each pair."""
        return np.array([sb - sa for _, _, _, sa, sb in self.pairs], np.float64)

    def as_json(self) -> dict:
        r = lambda v: round(float(v), 6)  # noqa: E731
        return {"agreement": r(self.agreement),
                "pairs": [{"a": a, "b": b, "iou": r(iou), "score_a": r(sa), "score_b": r(sb)}
                          for a, b, iou, sa, sb in self.pairs],
                "class_flips": [{"a": a, "b": b, "iou": r(iou), "class_a": ca, "class_b": cb}
                                for a, b, iou, ca, cb in self.class_flips],
                "only_a": list(self.only_a), "only_b": list(self.only_b)}


def _flat(boxes_a, classes_a, scores_a, boxes_b, classes_b) -> FlatSet:
    """One image: A as the detections (already best score first), B as the boxes they are matched to."""
    na, nb = len(scores_a), len(classes_b)
    return FlatSet(1, np.zeros(na, np.int64), classes_a, scores_a, boxes_a,
                   np.zeros(nb, np.int64), classes_b, boxes_b, np.zeros(nb, bool), np.zeros(nb, bool),
                   np.full(nb, np.nan))


def _greedy_pairs(fs: FlatSet, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows of A and of B that :func:`.matching.match` pairs at ``iou``."""
    pairs = overlapping_pairs(fs)
    m = match(fs, pairs, nearest_boxes(fs, pairs), iou)
    a = np.nonzero(m.status == TP)[0]
    return a, m.det_gt[a]


def compare_detections(a: Detections, b: Detections, *, iou: float = 0.5, threshold_a: float,
                       threshold_b: float) -> ImageComparison:
    """Match A's detections scoring at least ``threshold_a`` with B's scoring at least ``threshold_b``."""
    rows_a = np.nonzero(np.asarray(a.scores) >= threshold_a)[0]
    rows_b = np.nonzero(np.asarray(b.scores) >= threshold_b)[0]
    rows_a = rows_a[np.argsort(-np.asarray(a.scores, np.float64)[rows_a], kind="stable")]
    box_a = np.asarray(a.boxes, np.float64).reshape(-1, 4)[rows_a]
    box_b = np.asarray(b.boxes, np.float64).reshape(-1, 4)[rows_b]
    cls_a = np.asarray(a.class_ids, np.int64)[rows_a]
    cls_b = np.asarray(b.class_ids, np.int64)[rows_b]
    score_a = np.asarray(a.scores, np.float64)[rows_a]
    score_b = np.asarray(b.scores, np.float64)[rows_b]

    pa, pb = _greedy_pairs(_flat(box_a, cls_a, score_a, box_b, cls_b), iou)
    left_a = np.setdiff1d(np.arange(len(rows_a)), pa)         # still best score first (sorted positions)
    left_b = np.setdiff1d(np.arange(len(rows_b)), pb)
    fa, fb = _greedy_pairs(_flat(box_a[left_a], np.zeros(len(left_a), np.int64), score_a[left_a],
                                 box_b[left_b], np.zeros(len(left_b), np.int64)), iou)
    fa, fb = left_a[fa], left_b[fb]

    full = box_iou(box_a, box_b) if len(box_a) and len(box_b) else np.zeros((len(box_a), len(box_b)))
    pair_iou, flip_iou = full[pa, pb], full[fa, fb]
    pairs = [(int(rows_a[i]), int(rows_b[j]), float(v), float(score_a[i]), float(score_b[j]))
             for i, j, v in zip(pa, pb, pair_iou)]
    flips = [(int(rows_a[i]), int(rows_b[j]), float(v), int(cls_a[i]), int(cls_b[j]))
             for i, j, v in zip(fa, fb, flip_iou)]
    only_a = sorted(int(rows_a[i]) for i in np.setdiff1d(left_a, fa))
    only_b = sorted(int(rows_b[j]) for j in np.setdiff1d(left_b, fb))
    total = len(pairs) + len(flips) + len(only_a) + len(only_b)
    return ImageComparison(pairs, flips, only_a, only_b, len(pairs) / total if total else 1.0)


@dataclass(frozen=True)
class CompareSummary:
    images: int
    agreement: float                       # pairs over every object of every image (1.0 when there are none)
    pairs: int
    class_flips: int
    only_a: int
    only_b: int
    drift_edges: tuple[float, ...]         # histogram of score B - score A over every pair
    drift_counts: tuple[int, ...]
    drift_mean: float | None               # None when there is no pair
    drift_mean_abs: float | None
    drift_max_abs: float | None
    worst: tuple[str, ...]                 # every image, the most disagreeing first

    def as_json(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 6)  # noqa: E731
        return {"images": self.images, "agreement": r(self.agreement), "pairs": self.pairs,
                "class_flips": self.class_flips, "only_a": self.only_a, "only_b": self.only_b,
                "score_drift": {"mean": r(self.drift_mean), "mean_abs": r(self.drift_mean_abs),
                                "max_abs": r(self.drift_max_abs), "edges": list(self.drift_edges),
                                "counts": list(self.drift_counts)},
                "worst": list(self.worst)}


def summarise(comparisons: dict[str, ImageComparison]) -> CompareSummary:
    """Agreement over every image, the score-drift histogram, and the images ordered most disagreeing first
    (lowest agreement, then most disagreements, then the largest total score drift; ties keep the order given)."""
    items = list(comparisons.items())
    drift = np.concatenate([c.drift for _, c in items]) if items else np.zeros(0)
    n_pairs = sum(len(c.pairs) for _, c in items)
    objects = sum(c.objects for _, c in items)
    counts, _ = np.histogram(np.clip(drift, -1.0, 1.0), bins=np.asarray(DRIFT_EDGES))
    order = sorted(range(len(items)), key=lambda i: (items[i][1].agreement, -items[i][1].disagreements,
                                                     -float(np.abs(items[i][1].drift).sum()), i))
    has = len(drift) > 0
    return CompareSummary(
        images=len(items), agreement=n_pairs / objects if objects else 1.0, pairs=n_pairs,
        class_flips=sum(len(c.class_flips) for _, c in items), only_a=sum(len(c.only_a) for _, c in items),
        only_b=sum(len(c.only_b) for _, c in items), drift_edges=DRIFT_EDGES,
        drift_counts=tuple(int(v) for v in counts),
        drift_mean=float(drift.mean()) if has else None, drift_mean_abs=float(np.abs(drift).mean()) if has else None,
        drift_max_abs=float(np.abs(drift).max()) if has else None,
        worst=tuple(items[i][0] for i in order))
