"""Reviewing an opened model's detections, Qt-free: what the window's review mode calls.

The flow::

    model = model_id(summary)                           # fingerprint + checkpoint: what the review is of
    job = start_collecting(host, images, summary)       # on a worker thread: every image's detections
    store = ReviewStore.create(path, model, threshold=t, labels=summary.class_names())   # where it is used
    keys = add_collected(store, job.future.result())    # one commit; images already there keep theirs

The detections come from the detections cache when the model saw the images before (an evaluation, an
earlier review), else from the model; images are keyed by the hash of their bytes, so reopening a review
on the same images (moved or renamed) finds their verdicts.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .evaluation import EvaluationJob, Progress, detect_images, key_parts
from .host import ModelHost, ModelSummary
from ..review.store import ModelId, ReviewStore


def model_id(summary: ModelSummary) -> ModelId:
    """What a review of this model is keyed by: its fingerprint (as the detections cache keys it) and
    checkpoint; ``ReviewError`` when it cannot be fingerprinted (a model a factory function builds)."""
    return ModelId.from_parts(checkpoint=summary.checkpoint_name or "", name=summary.path.name,
                              **key_parts(summary))


@dataclass(frozen=True)
class Collected:
    """The images of a review with their detections (at threshold 0) and their content keys."""

    paths: list[Path]
    keys: list[str]
    detections: list
    cached: int
    seconds: float

    def names(self) -> list[str]:
        """Each image's name as the exports write it: its path relative to the images' common folder."""
        if not self.paths:
            return []
        try:
            root = Path(os.path.commonpath([str(p.resolve().parent) for p in self.paths]))
            return [p.resolve().relative_to(root).as_posix() for p in self.paths]
        except ValueError:            # different drives
            return [p.name for p in self.paths]


def collect(host: ModelHost, images: list[Path], summary: ModelSummary | None = None, *,
            on_progress: Callable[[Progress], None] | None = None, job: EvaluationJob | None = None) -> Collected:
    """Every image's detections and key (blocks; the detections cache first)."""
    images = [Path(p) for p in images]
    done = detect_images(host, images, summary=summary, on_progress=on_progress, job=job)
    return Collected(images, done.keys, done.detections, done.cached, done.seconds)


def start_collecting(host: ModelHost, images: list[Path], summary: ModelSummary | None = None, *,
                     on_progress: Callable[[Progress], None] | None = None,
                     pool: ThreadPoolExecutor | None = None) -> EvaluationJob:
    """:func:`collect` on a worker thread: ``job.future`` is the :class:`Collected`, ``job.cancel()`` stops it."""
    job = EvaluationJob()

    def run():
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(collect(host, images, summary, on_progress=on_progress, job=job))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            job.future.set_exception(exc)

    (pool or host.pool).submit(run)
    return job


def add_collected(store: ReviewStore, collected: Collected) -> list[str]:
    """Register the collected images in ``store`` (one commit; those at the review's threshold are kept).
    Returns the image keys in the order of ``collected``."""
    entries = [(key, name, dets.width, dets.height,
                [(tuple(float(v) for v in box), float(score), int(cid))
                 for box, score, cid in zip(dets.boxes, dets.scores, dets.class_ids)])
               for key, name, dets in zip(collected.keys, collected.names(), collected.detections)]
    store.add_images(entries)
    return list(collected.keys)
