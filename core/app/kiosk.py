"""Kiosk mode, Qt-free: what an unattended demo on a CPU laptop decides frame by frame.

The window (``gui/kiosk.py``) shows; these decide:

- :class:`Backoff`: when to try a camera or stream again after it failed or went silent
  (1, 2, 4 … up to 30 s; back to 1 s once frames flow again);
- :class:`Cadence`: infer on every Nth frame only, keeping the last boxes drawn in between;
- :class:`Tally`: per-class counts in the current frame, and in how many inferred frames each
  class was seen since the start (no tracking: an object in view for ten frames counts ten);
- :func:`downscale`: an optional smaller input for slow CPUs (boxes stay in the shown frame's pixels);
- :func:`detections_allowed`: a kiosk never shows detections from a model that was not
  completely restored.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Backoff:
    """Delays between reconnection attempts: ``first`` doubling up to ``longest`` seconds."""

    first: float = 1.0
    longest: float = 30.0
    attempts: int = 0
    due: float | None = None          # time.monotonic() of the next attempt, None when not waiting

    def failed(self, now: float | None = None) -> float:
        """The source failed: schedule the next attempt; returns its delay in seconds."""
        now = time.monotonic() if now is None else now
        delay = min(self.longest, self.first * (2 ** self.attempts))
        self.attempts += 1
        self.due = now + delay
        return delay

    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.due is not None and now >= self.due

    def remaining(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, self.due - now) if self.due is not None else 0.0

    def attempt(self) -> None:
        """The attempt is being made now."""
        self.due = None

    def succeeded(self) -> None:
        """Frames flow again: the next failure starts from ``first``."""
        self.attempts = 0
        self.due = None


@dataclass
class Cadence:
    """Infer on every ``every``-th frame (1: every frame)."""

    every: int = 1
    _seen: int = 0

    def __post_init__(self):
        if self.every < 1:
            raise ValueError("infer every N frames needs N >= 1")

    def take(self) -> bool:
        """A new frame arrived: should it be inferred?"""
        take = self._seen % self.every == 0
        self._seen += 1
        return take


@dataclass
class Tally:
    """Per-class counts: in the current frame, and the inferred frames each class was seen in."""

    current: Counter = field(default_factory=Counter)
    frames_seen: Counter = field(default_factory=Counter)
    frames: int = 0

    def add(self, labels) -> None:
        """The detections (their labels, at the shown threshold) of one inferred frame."""
        self.current = Counter(labels)
        self.frames += 1
        self.frames_seen.update(set(self.current))

    def lines(self) -> list[str]:
        """``Circle  2 now · in 37 of 40 frames`` per class seen, most seen first."""
        return [f"{label}  {self.current.get(label, 0)} now · in {n} of {self.frames} frames"
                for label, n in self.frames_seen.most_common()]


def downscale(image: np.ndarray, max_width: int | None) -> np.ndarray:
    """``image`` no wider than ``max_width`` (aspect kept); unchanged when it already is or when None."""
    if not max_width or image.shape[1] <= max_width:
        return image
    import cv2

    h, w = image.shape[:2]
    height = max(1, round(h * max_width / w))
    return cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)


def detections_allowed(summary) -> tuple[bool, str]:
    """May detections from this model be shown unattended? ``(allowed, why not)``.

    Only a model restored completely (or one that needed no restore: a SavedModel or a Keras file run
    as it is) is shown; anything else would be the template's own weights presented as the model's.
    """
    if summary is None:
        return False, "no model is loaded"
    if not summary.can_detect:
        return False, "the model cannot detect (see the window's problems)"
    refusal = summary.refusal      # the one rule: only a complete restore runs unasked (core.app.host)
    if refusal is not None:
        return False, f"the model was not fully restored, so no detections are shown: {refusal}"
    return True, ""
