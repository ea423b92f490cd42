"""Boxes drawn onto an image (for ``detect --out``, snapshots and copies): class colours shared with the GUI."""

from __future__ import annotations

import numpy as np

from .colours import class_colour
from .detections import Detections


def draw_detections(image: np.ndarray, dets: Detections, labels: bool = True) -> np.ndarray:
    """A copy of an RGB image with each detection's box, label and score."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    thick = max(1, round(min(out.shape[:2]) / 300))
    scale = max(0.4, min(out.shape[:2]) / 800)
    for box, score, cid, label in zip(dets.boxes, dets.scores, dets.class_ids, dets.labels):
        colour = class_colour(int(cid))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        if labels:
            text = f"{label} {score:.2f}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            ty = y0 - 2 if y0 - th - base - 2 >= 0 else y0 + th + base + 2
            cv2.rectangle(out, (x0, ty - th - base), (x0 + tw + 2, ty + 1), colour, -1)
            cv2.putText(out, text, (x0 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                        cv2.LINE_AA)
    return out


def draw_banner(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of an RGB image with ``text`` on a red band across its top (marks what must not pass for
    the checkpoint's own detections, such as those of a partial restore)."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    scale = max(0.35, min(out.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = min(out.shape[0], th + base + 6)
    out[:band] = (200, 30, 30)
    cv2.putText(out, text, (3, band - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
