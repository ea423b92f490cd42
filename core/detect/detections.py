"""The one detections type every signature's outputs become.

Boxes are in ORIGINAL image pixels ``(x0, y0, x1, y1)``; class ids are numbered as
the label map numbers them; rows are sorted by score, highest first. A
:class:`Detections` keeps everything the model returned; ``above(threshold)`` and
``only(classes)`` filter kept results without running the model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray          # (N, 4) float32, x0, y0, x1, y1 in image pixels
    scores: np.ndarray         # (N,) float32, descending
    class_ids: np.ndarray      # (N,) int64, label-map ids
    labels: tuple[str, ...]    # (N,) display labels
    width: int
    height: int
    multiclass_scores: np.ndarray | None = None   # (N, C): every class's score, when the model gives them
    class_columns: tuple[int, ...] = ()           # label-map id of each multiclass column (-1: background)
    extras: dict = field(default_factory=dict)    # masks, keypoints: per-row arrays, filtered alongside

    def __post_init__(self):
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or len(self.class_ids) != n or len(self.labels) != n:
            raise ValueError("detections: boxes, scores, class ids and labels differ in length")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, width: int, height: int) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), (), width, height)

    @classmethod
    def build(cls, boxes, scores, class_ids, labels, width, height, multiclass_scores=None,
              class_columns=(), extras=None) -> "Detections":
        """Sort by score (stable, highest first) and make the arrays the documented dtypes."""
        scores = np.asarray(scores, np.float32).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        pick = lambda a: None if a is None else np.asarray(a)[order]  # noqa: E731
        return cls(np.asarray(boxes, np.float32).reshape(-1, 4)[order], scores[order],
                   np.asarray(class_ids, np.int64).reshape(-1)[order], tuple(labels[i] for i in order),
                   int(width), int(height), pick(multiclass_scores), tuple(class_columns),
                   {k: pick(v) for k, v in (extras or {}).items()})

    def _take(self, mask: np.ndarray) -> "Detections":
        idx = np.nonzero(mask)[0]
        return Detections(self.boxes[idx], self.scores[idx], self.class_ids[idx],
                          tuple(self.labels[i] for i in idx), self.width, self.height,
                          None if self.multiclass_scores is None else self.multiclass_scores[idx],
                          self.class_columns, {k: v[idx] for k, v in self.extras.items()})

    def above(self, threshold: float) -> "Detections":
        """The rows scoring at least ``threshold`` (0 keeps everything)."""
        return self._take(self.scores >= threshold)

    def only(self, class_ids) -> "Detections":
        """The rows of the given classes (None keeps every class)."""
        if class_ids is None:
            return self
        return self._take(np.isin(self.class_ids, np.fromiter(class_ids, np.int64)))

    def as_json(self) -> list[dict]:
        return [{"box": [round(float(v), 4) for v in box], "score": round(float(s), 6),
                 "class_id": int(c), "label": label}
                for box, s, c, label in zip(self.boxes, self.scores, self.class_ids, self.labels)]

    def coco_results(self, image_id) -> list[dict]:
        """Rows in the COCO results format (bbox as x, y, width, height)."""
        return [{"image_id": image_id, "category_id": int(c), "score": float(s),
                 "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                for b, s, c in zip(self.boxes, self.scores, self.class_ids)]
