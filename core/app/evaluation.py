"""Testing an opened model against ground truth, Qt-free: what ``detscope eval`` runs and the window's
evaluation panel will call.

The flow::

    truth = read_truth(gt, images, fmt=...)                 # fails fast, before any model work
    job = start_evaluation(host, images, truth)            # on a worker thread; job.progress, job.cancel()
    result = job.future.result()                           # an Evaluation
    result.evaluator.counts(threshold, iou)                # live, as a slider moves

Detections are computed at threshold 0 once per image and kept in the detections cache
(:mod:`detscope.core.eval.cache`), keyed by the model's fingerprint and the image's bytes: reopening a
test set runs nothing, and a threshold change never runs the model. While detections are computed,
the next image is read and decoded while the engine runs the model on the current one.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .host import ModelHost, ModelSummary
from ..base.errors import UserError
from ..base.findings import INFO, WARNING, Finding
from ..eval.annotations import GroundTruth
from ..eval.cache import DetectionsCache, digest_bytes, digest_file, model_key
from ..eval.evaluator import Evaluator, ImageItem
from ..eval.readers import map_classes, read_ground_truth
from ..eval.results import evaluation_json


@dataclass(frozen=True)
class Progress:
    """How far the detections are: ``done`` of ``total`` images, ``cached`` of them from the cache."""

    done: int
    total: int
    cached: int
    elapsed: float
    eta: float | None          # seconds left (None until one image has run the model)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Evaluation:
    """A finished evaluation: the model it tested, the ground truth, and the :class:`Evaluator`."""

    model: ModelSummary
    truth: GroundTruth
    evaluator: Evaluator
    findings: list[Finding] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)   # detect, match
    cached: int = 0                                # images whose detections came from the cache

    def about(self) -> dict:
        m = self.model
        return {"model": str(m.path), "checkpoint": m.checkpoint_name,
                "ground_truth": {"path": str(self.truth.source), "format": self.truth.format,
                                 "unmapped": [{"name": n, "objects": c} for n, c in self.truth.unmapped.items()]},
                "findings": [f.as_json() for f in self.findings]}

    def as_json(self, threshold: float, iou: float = 0.5, images: str = "all") -> dict:
        return evaluation_json(self.evaluator, threshold, iou, self.about(), images=images)


def read_truth(gt, images: list[Path], *, fmt: str | None = None, label_map=None) -> GroundTruth:
    """Read the ground truth (without a label map its classes are mapped later, by :func:`evaluate`)."""
    return read_ground_truth(gt, images, fmt=fmt, label_map=label_map)


def key_parts(summary: ModelSummary) -> dict:
    """What the model's fingerprint hashes (see :func:`~detscope.core.eval.cache.model_key`): the
    detections cache and a review file are keyed by it."""
    saved_model = None
    if summary.how == "saved_model":
        saved_model = summary.folder.saved_model
    elif summary.how == "checkpoint+template" and summary.report is not None:
        saved_model = Path(summary.report.target)
    return {"how": summary.how, "saved_model": saved_model,
            "keras_file": summary.folder.keras_file if summary.how == "keras" else None,
            "checkpoint_index": summary.checkpoint.index if summary.checkpoint is not None else None,
            "signature": summary.signature,
            "mapping": summary.mapping.as_json() if summary.mapping is not None else None,
            "scale": summary.image_input.scale if summary.image_input is not None else None}


def cache_for(summary: ModelSummary) -> DetectionsCache | None:
    """The detections cache of a loaded model (None when it cannot be fingerprinted)."""
    key = model_key(**key_parts(summary))
    return DetectionsCache(key) if key else None


# --- reopening without the model ----------------------------------------------------------------------
#
# After an evaluation, what the model's cache key was made of is remembered under the request that opened
# it (the model path and load options). A later request that is the same, on a folder whose checkpoints,
# hashed files and hand-made output mapping are all unchanged, finds its detections in the cache without
# importing TensorFlow; anything changed, or any image not cached, and the model is loaded as usual.

def request_of(model, options: dict) -> tuple:
    """A hashable description of how a model was asked for."""
    clean = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v not in (None, False, [])}
    return str(Path(model).expanduser().resolve()), json.dumps(clean, sort_keys=True, default=str)


def _request_file(request: tuple) -> Path:
    from ..base.paths import data_dir

    ident = digest_bytes(json.dumps(list(request)).encode())
    return data_dir() / "detections-cache" / "requests" / f"{ident}.json"


def _mapping_file(summary: ModelSummary) -> Path | None:
    from ..detect.mappings import mapping_key

    if summary.signature is None and summary.how != "keras":
        return None
    if summary.how == "keras":
        return mapping_key(summary.folder.keras_file, keras=True).file()
    return mapping_key(summary.folder.path, signature=summary.signature).file()


def _digest_or_none(path: Path | None) -> str | None:
    try:
        return digest_bytes(path.read_bytes()) if path is not None else None
    except OSError:
        return None


def _folder_state(folder) -> dict:
    return {"selected": str(folder.selected.prefix) if folder.selected is not None else None,
            "checkpoints": [str(c.prefix) for c in folder.checkpoints],
            "label_map": str(folder.label_map) if folder.label_map is not None else None}


def remember(request: tuple, summary: ModelSummary, cache: DetectionsCache) -> None:
    parts = key_parts(summary)
    mapping_file = _mapping_file(summary)
    record = {"key": cache.key, "parts": {k: (str(v) if isinstance(v, Path) else v) for k, v in parts.items()},
              "folder": _folder_state(summary.folder), "mapping_file": str(mapping_file) if mapping_file else None,
              "mapping_digest": _digest_or_none(mapping_file), "checkpoint": summary.checkpoint_name,
              "label_map": str(summary.label_map.source) if summary.label_map and summary.label_map.source else None}
    path = _request_file(request)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
    except OSError:
        pass


def evaluate_from_cache(model, options: dict, images: list[Path], truth: GroundTruth) -> Evaluation | None:
    """The evaluation of a request seen before, with every image's detections cached: no model is loaded.

    None when anything differs (then load the model and :func:`evaluate`).
    """
    from ..browse.folders import recognise
    from ..formats.labels import read_label_map

    if options.get("factory"):
        return None
    request = request_of(model, options)
    try:
        record = json.loads(_request_file(request).read_text())
        folder = recognise(model)
    except (OSError, ValueError, UserError):
        return None
    if _folder_state(folder) != record.get("folder"):
        return None
    parts = dict(record["parts"])
    for k in ("saved_model", "keras_file", "checkpoint_index"):
        parts[k] = Path(parts[k]) if parts.get(k) else None
    try:
        if model_key(**parts) != record["key"]:
            return None
    except OSError:
        return None
    mapping_file = Path(record["mapping_file"]) if record.get("mapping_file") else None
    if _digest_or_none(mapping_file) != record.get("mapping_digest"):
        return None
    label_map = None
    if record.get("label_map"):
        try:
            label_map = read_label_map(record["label_map"])
        except UserError:
            return None
    names = {int(i.id): i.label for i in label_map.items} if label_map is not None else {}
    cache = DetectionsCache(record["key"])
    start = time.perf_counter()
    detections = []
    for path in images:
        try:
            dets = cache.get(digest_file(path), names) if Path(path).is_file() else None
        except OSError:
            return None
        if dets is None:
            return None
        detections.append(dets)
    map_classes(truth, label_map)
    ref = folder.checkpoint(record["checkpoint"]) if record.get("checkpoint") else None
    summary = ModelSummary(folder.path, folder, parts["how"], ref, None, label_map, (),
                           signature=parts.get("signature"), can_detect=True)
    return _finish(summary, truth, [Path(p) for p in images], detections, names, time.perf_counter() - start,
                   len(images))


class EvaluationJob:
    """One evaluation running on a worker thread: ``future`` (an :class:`Evaluation`), ``progress``
    (the latest :class:`Progress`), ``cancel()``."""

    def __init__(self):
        self.future: Future = Future()
        self.progress: Progress | None = None
        self._cancel = threading.Event()
        self._pending: Future | None = None

    def cancel(self) -> None:
        self._cancel.set()
        pending = self._pending
        if pending is not None:
            pending.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


def evaluate(host: ModelHost, images: list[Path], truth: GroundTruth, *, use_cache: bool = True,
             on_progress: Callable[[Progress], None] | None = None, job: EvaluationJob | None = None,
             request: tuple | None = None, summary: ModelSummary | None = None) -> Evaluation:
    """Run the loaded model over ``images`` (cached detections first), then match against ``truth``.

    Blocks; raises ``CancelledError`` when ``job`` is cancelled. The host must have a loaded model.
    Without ``use_cache`` every image runs through the model (the cache is still written). ``request`` (the model path and load options it was opened with) lets a later
    :func:`evaluate_from_cache` of the same request skip loading the model. ``summary``: the model as it
    is now, when a checkpoint switch has changed it since the load (the window's; the cache is keyed by its
    checkpoint), else the load's.
    """
    summary = summary if summary is not None else host.loading.result()
    map_classes(truth, summary.label_map)
    images = [Path(p) for p in images]
    done = detect_images(host, images, summary=summary, use_cache=use_cache, on_progress=on_progress, job=job)
    if done.cache is not None and request is not None:
        remember(request, summary, done.cache)
    return _finish(summary, truth, images, done.detections, summary.class_names(), done.seconds, done.cached)


@dataclass
class DetectedImages:
    """What :func:`detect_images` found: each image's detections (at threshold 0) and its content key."""

    detections: list
    keys: list[str]
    cached: int
    seconds: float
    cache: DetectionsCache | None = None


def detect_images(host: ModelHost, images: list[Path], *, summary: ModelSummary | None = None,
                  use_cache: bool = True, on_progress: Callable[[Progress], None] | None = None,
                  job: EvaluationJob | None = None) -> DetectedImages:
    """Every image's detections (at threshold 0): from the detections cache, else from the model, reading
    the next image while the engine runs the current one. Blocks; ``CancelledError`` when ``job`` is
    cancelled. Evaluations and reviews both start here."""
    summary = summary if summary is not None else host.loading.result()
    names = summary.class_names()
    cache = cache_for(summary)          # written always; read only with use_cache
    about = {"model": str(summary.path), "checkpoint": summary.checkpoint_name, "signature": summary.signature}
    images = [Path(p) for p in images]
    detections: list = [None] * len(images)
    keys: list[str] = [""] * len(images)
    start = time.perf_counter()
    ran = cached = 0
    run_time = 0.0

    def report(done: int) -> None:
        elapsed = time.perf_counter() - start
        left = len(images) - done
        eta = (run_time / ran) * left if ran else None
        p = Progress(done, len(images), cached, elapsed, eta)
        if job is not None:
            job.progress = p
        if on_progress is not None:
            on_progress(p)

    def finish(pending) -> None:
        nonlocal ran, run_time
        i, key, future, began = pending
        dets = future.result()
        detections[i] = dets
        ran += 1
        run_time += time.perf_counter() - began
        if cache is not None:
            cache.put(key, dets, about)

    from ..media.images import load_image

    pending = None
    done = 0
    report(0)
    for i, path in enumerate(images):
        if job is not None and job.cancelled:
            if pending is not None:
                host.engine.cancel(pending[2])
            raise CancelledError("evaluation cancelled")
        if not path.is_file():
            load_image(path)                      # its one-line error for what is not a readable file
        key = keys[i] = _image_key(path)
        hit = cache.get(key, names) if cache is not None and use_cache else None
        if hit is not None:
            detections[i] = hit
            cached += 1
            done += 1
            report(done)
            continue
        began = time.perf_counter()
        image = load_image(path)              # the same decoding (and limits) as everywhere else
        future = host.detect(image, name=f"detect {path.name}")
        if job is not None:
            job._pending = future
        if pending is not None:
            finish(pending)
            done += 1
            report(done)
        pending = (i, key, future, began)
    if pending is not None:
        finish(pending)
        done += 1
        report(done)
    return DetectedImages(detections, keys, cached, time.perf_counter() - start, cache)


def _finish(summary: ModelSummary, truth: GroundTruth, images: list[Path], detections: list, names: dict,
            detect_seconds: float, cached: int) -> Evaluation:
    findings = list(truth.findings)
    items = []
    used = set()
    for path, dets in zip(images, detections):
        ann = truth.lookup(path)
        if ann is not None:
            used.add(id(ann))
        if ann is not None and ann.width and ann.height and (ann.width, ann.height) != (dets.width, dets.height):
            findings.append(Finding(WARNING, f"{path.name}: the annotations are for a {ann.width}x{ann.height} image, "
                                             f"the image is {dets.width}x{dets.height}; boxes scaled to fit",
                                    ann.source))
            ann = ann.scaled_to(dets.width, dets.height)
        items.append(ImageItem(path, dets, ann))
    if images and all(it.truth is None for it in items) and truth.images:
        example = next(iter(truth.images))
        raise UserError(f"{truth.source}: none of the {len(images)} images is in the ground truth (it names "
                        f"{len(truth.images)} images, e.g. {example!r}; the first image is {images[0].name!r})")
    extra = sum(1 for a in truth.images.values() if id(a) not in used)
    if extra:
        findings.append(Finding(INFO, f"{extra} annotated images of the ground truth are not among the images "
                                      f"evaluated", str(truth.source)))
    line = truth.unmapped_line()
    if line:
        findings.append(Finding(WARNING, line, str(truth.source)))
    unannotated = sum(1 for it in items if it.truth is None)
    if unannotated:
        findings.append(Finding(INFO, f"{unannotated} of {len(items)} images have no annotations and are left out "
                                      f"of the metrics", str(truth.source)))
    t0 = time.perf_counter()
    evaluator = Evaluator(items, names)
    evaluator.match(0.5)
    return Evaluation(summary, truth, evaluator, findings,
                      {"detect": detect_seconds, "match": time.perf_counter() - t0}, cached)


def _image_key(path: Path) -> str:
    from ..media.images import ImageError

    try:
        return digest_file(path)
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def start_evaluation(host: ModelHost, images: list[Path], truth: GroundTruth, *, use_cache: bool = True,
                     on_progress: Callable[[Progress], None] | None = None,
                     pool: ThreadPoolExecutor | None = None, summary: ModelSummary | None = None) -> EvaluationJob:
    """:func:`evaluate` on a worker thread (the host's pool by default): the window's way."""
    job = EvaluationJob()

    def run():
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(evaluate(host, images, truth, use_cache=use_cache, on_progress=on_progress, job=job,
                                           summary=summary))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            job.future.set_exception(exc)

    (pool or host.pool).submit(run)
    return job
