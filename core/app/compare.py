"""Two models on the same images, Qt-free: what ``detscope compare`` runs.

The flow::

    result = compare(ModelRequest(a, options_a), ModelRequest(b, options_b), images, gt=..., iou=0.5)
    result.summary                    # agreement, score drift, the images most disagreeing first
    result.per_image[path]            # an ImageComparison: pairs, class flips, only in A, only in B
    result.evaluation_a / _b          # with ground truth: each model's Evaluation, as ``detscope eval`` gives it

The two models run one after the other in one host: A loads and runs over the images through
:func:`~detscope.core.app.evaluation.evaluate` (the detections cache first), then B replaces it. One
model is in memory at a time, and nothing is lost: TensorFlow already spreads one model's loading and
inference over every core (on two cores, loading both at once on two engines took 6.0-6.7 s against
5.7-6.0 s one after the other). Only a **complete** restore is compared: a model
whose checkpoint was restored in part would be compared as a mix of the checkpoint's and the model's own
weights (:func:`~detscope.core.app.host.restore_refusal`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .evaluation import Evaluation, Progress, evaluate, read_truth
from .host import ModelHost, ModelSummary
from ..base.errors import UserError
from ..detect.detections import Detections
from ..eval.annotations import GroundTruth
from ..eval.crossmatch import CompareSummary, ImageComparison, compare_detections, summarise
from ..eval.results import evaluation_json


@dataclass(frozen=True)
class ModelRequest:
    """One side of a comparison: a path detscope can run and the options it loads with (``checkpoint``,
    ``labels``, ``template`` … as :meth:`ModelHost.open` takes them)."""

    path: str | Path
    options: dict = field(default_factory=dict)


@dataclass
class Comparison:
    a: ModelSummary
    b: ModelSummary
    images: list[Path]
    detections_a: list[Detections]         # per image, threshold 0
    detections_b: list[Detections]
    per_image: dict[str, ImageComparison]  # by str(path)
    summary: CompareSummary
    iou: float
    threshold_a: float
    threshold_b: float
    evaluation_a: Evaluation | None = None
    evaluation_b: Evaluation | None = None
    right_wrong: list[dict] | None = None  # with ground truth: per image, objects one model found and the other missed
    notes: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    cached: dict = field(default_factory=dict)   # "a", "b": images whose detections came from the cache

    def __post_init__(self):
        self._index = {str(p): i for i, p in enumerate(self.images)}

    def index_of(self, key: str) -> int:
        """The position in ``images`` of the image ``key`` (a ``per_image`` key) names."""
        return self._index[key]

    def a_right_b_wrong(self) -> list[dict]:
        """Images where A found objects B missed, most such objects first."""
        return _ranked(self.right_wrong, "found_by_a_only")

    def b_right_a_wrong(self) -> list[dict]:
        return _ranked(self.right_wrong, "found_by_b_only")

    def as_json(self) -> dict:
        out = {"a": _model_json(self.a), "b": _model_json(self.b), "iou": self.iou,
               "threshold_a": self.threshold_a, "threshold_b": self.threshold_b,
               "summary": self.summary.as_json(), "images_worst_first": [], "ground_truth": None}
        for key in self.summary.worst:
            i = self.index_of(key)
            out["images_worst_first"].append(image_json(key, self.per_image[key], self.detections_a[i],
                                                        self.detections_b[i]))
        if self.evaluation_a is not None:
            t = self.evaluation_a.truth
            out["ground_truth"] = {
                "path": str(t.source), "format": t.format,
                "a": evaluation_json(self.evaluation_a.evaluator, self.threshold_a, self.iou,
                                     self.evaluation_a.about(), images="none"),
                "b": evaluation_json(self.evaluation_b.evaluator, self.threshold_b, self.iou,
                                     self.evaluation_b.about(), images="none"),
                "a_right_b_wrong": self.a_right_b_wrong(), "b_right_a_wrong": self.b_right_a_wrong()}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _ranked(rows: list[dict] | None, key: str) -> list[dict]:
    if not rows:
        return []
    return sorted((r for r in rows if r[key] > 0), key=lambda r: -r[key])


def _model_json(m: ModelSummary) -> dict:
    return {"model": str(m.path), "how": m.how, "checkpoint": m.checkpoint_name}


def image_json(key: str, c: ImageComparison, da: Detections, db: Detections) -> dict:
    """One image's comparison with the boxes themselves (image pixels, x0 y0 x1 y1)."""
    box = lambda d, i: [round(float(v), 2) for v in d.boxes[i]]  # noqa: E731
    r = lambda v: round(float(v), 6)  # noqa: E731
    return {"path": key, "width": da.width, "height": da.height, "agreement": r(c.agreement),
            "pairs": [{"box_a": box(da, i), "box_b": box(db, j), "label": da.labels[i],
                       "class_id": int(da.class_ids[i]),
                       "iou": r(v), "score_a": r(sa), "score_b": r(sb)} for i, j, v, sa, sb in c.pairs],
            "class_flips": [{"box_a": box(da, i), "box_b": box(db, j), "label_a": da.labels[i],
                             "label_b": db.labels[j], "class_a": ca, "class_b": cb, "iou": r(v),
                             "score_a": r(da.scores[i]), "score_b": r(db.scores[j])}
                            for i, j, v, ca, cb in c.class_flips],
            "only_a": [{"box": box(da, i), "label": da.labels[i], "class_id": int(da.class_ids[i]),
                        "score": r(da.scores[i])} for i in c.only_a],
            "only_b": [{"box": box(db, j), "label": db.labels[j], "class_id": int(db.class_ids[j]),
                        "score": r(db.scores[j])} for j in c.only_b]}


def _no_truth() -> GroundTruth:
    """Ground truth with no image in it: an evaluation over it only gathers detections (cache first)."""
    return GroundTruth(format="none", source=Path("."))


def _load(host: ModelHost, req: ModelRequest, side: str):
    from ..browse.discover import check_opened

    check_opened(req.path)
    return host.open(req.path, inventory=False, name=f"load {side}", **req.options)[1]


def _ready(summary: ModelSummary, side: str, req: ModelRequest) -> None:
    name = Path(req.path).name
    if not summary.can_detect:
        reason = next((f.message for f in summary.findings if f.severity == "error"), "no detector signature")
        raise UserError(f"{side} ({name}): cannot detect: {reason}")
    if summary.refusal is not None:
        raise UserError(f"{side} ({name}): {summary.refusal}; compare runs only completely restored models")


def right_and_wrong(ev_a: Evaluation, ev_b: Evaluation, threshold_a: float, threshold_b: float,
                    iou: float) -> list[dict] | None:
    """Per annotated image: objects A found and B missed, the other way round, and each model's false
    positives. None when the two evaluations' ground truths differ (label maps naming classes apart)."""
    ea, eb = ev_a.evaluator, ev_b.evaluator
    fa, fb = ea.flat, eb.flat
    if ea.annotated != eb.annotated or not (np.array_equal(fa.gt_image, fb.gt_image)
                                            and np.array_equal(fa.gt_box, fb.gt_box)):
        return None
    real = ~fa.gt_ignored
    found_a = real & (ea.match(iou).gt_tp_score >= threshold_a)
    found_b = real & (eb.match(iou).gt_tp_score >= threshold_b)
    n = fa.n_images
    a_only = np.bincount(fa.gt_image[found_a & ~found_b], minlength=n)
    b_only = np.bincount(fa.gt_image[found_b & ~found_a], minlength=n)
    fp_a, fp_b = ea.counts(threshold_a, iou).image_fp, eb.counts(threshold_b, iou).image_fp
    objects = np.bincount(fa.gt_image[real], minlength=n)
    return [{"path": str(ea.items[i].path), "objects": int(objects[k]), "found_by_a_only": int(a_only[k]),
             "found_by_b_only": int(b_only[k]), "fp_a": int(fp_a[k]), "fp_b": int(fp_b[k])}
            for k, i in enumerate(ea.annotated)]


def compare(a: ModelRequest, b: ModelRequest, images: list[Path], *, gt=None, gt_format: str | None = None,
            iou: float = 0.5, threshold_a: float = 0.5, threshold_b: float = 0.5, use_cache: bool = True,
            on_progress: Callable[[str, Progress], None] | None = None, on_status: Callable[[str], None] | None = None,
            host: ModelHost | None = None) -> Comparison:
    """Run A and B over ``images`` and compare their detections (and, with ``gt``, both against it).

    Ground truth is read first (a bad file fails before any model loads). ``host``: the host to run them
    in (closed, not shut down, at the end); by default one is made and shut down. ``on_progress(side,
    progress)`` follows each model's run; ``on_status(text)`` says what is happening. An image given twice
    is compared once.
    """
    if not 0 < iou <= 1:
        raise UserError(f"--iou {iou}: must be above 0 and at most 1")
    images = list(dict.fromkeys(Path(p) for p in images))
    if not images:
        raise UserError("no images to compare on")
    truth = read_truth(gt, images, fmt=gt_format) if gt is not None else None
    status = on_status or (lambda text: None)
    own = host is None
    host = host or ModelHost()
    seconds: dict = {}
    runs, summaries = [], []
    try:
        for side, req in (("A", a), ("B", b)):
            t0 = time.perf_counter()
            status(f"loading {side} ({Path(req.path).name}) …")
            summary = _load(host, req, side).result()     # opening B drops A first: one model in memory at a time
            _ready(summary, side, req)
            seconds[f"load_{side.lower()}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            t = copy.deepcopy(truth) if truth is not None else _no_truth()
            progress = (lambda p, side=side: on_progress(side, p)) if on_progress else None
            runs.append(evaluate(host, images, t, use_cache=use_cache, on_progress=progress, summary=summary))
            summaries.append(summary)
            seconds[f"detect_{side.lower()}"] = time.perf_counter() - t0
    finally:
        if own:
            host.shutdown()
        else:
            host.close()
    sa, sb = summaries
    ev_a, ev_b = runs
    dets_a = [it.detections for it in ev_a.evaluator.items]
    dets_b = [it.detections for it in ev_b.evaluator.items]
    t0 = time.perf_counter()
    per_image = {str(p): compare_detections(da, db, iou=iou, threshold_a=threshold_a, threshold_b=threshold_b)
                 for p, da, db in zip(images, dets_a, dets_b)}
    result = Comparison(sa, sb, images, dets_a, dets_b, per_image, summarise(per_image), iou, threshold_a,
                        threshold_b, seconds=seconds, cached={"a": ev_a.cached, "b": ev_b.cached})
    if truth is not None:
        result.evaluation_a, result.evaluation_b = ev_a, ev_b
        result.right_wrong = right_and_wrong(ev_a, ev_b, threshold_a, threshold_b, iou)
        if result.right_wrong is None:
            result.notes.append("the two models' label maps map the ground truth differently: objects found by one "
                                "model and missed by the other are not listed")
    seconds["compare"] = time.perf_counter() - t0
    return result
