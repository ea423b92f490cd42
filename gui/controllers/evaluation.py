"""Testing the open model against the ground truth beside the opened images, in the window.

When images are opened, the ground truth beside them is found and read on the pool (core's
auto-detection); its boxes are drawn over each image. Model ▸ Evaluate runs core's
:func:`~detscope.core.app.evaluation.start_evaluation` on a worker thread, with progress, an ETA and
Cancel in the status bar; the COCO metrics and curves are computed there too, so the GUI thread only
ever counts (core's :class:`~detscope.core.eval.evaluator.Evaluator`, milliseconds) as the threshold
slider moves. Then the detections are coloured right or wrong, the objects nothing found are marked,
the evaluation panel shows the metrics, and the image list follows the panel's filter (error type,
class, a confusion cell) and order (most errors first).

An evaluation belongs to the model's weights and the opened images: a checkpoint switch, another model or
another image list drops it (the ground truth stays while the images do).
"""

from __future__ import annotations

import dataclasses
import math
from html import escape
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QFileDialog, QWidget

from detscope.core.app.host import Latest

from ..panels.eval_panel import ALL, CELL, SORT_ERRORS, WITH_ERRORS, EvalPanel
from ..panels.image_panel import ImagePanel
from ..panels.truth_overlay import Ghost, PredictionMark, TruthMark, TruthOverlay
from ..qt import style
from ..qt.bridge import Bridge
from .browser import ImageBrowser
from .session import ModelSession


def _read_truth(paths: list[Path], gt: Path | None = None):
    """On the pool: ``(ground truth or None when there is none beside the images, images it annotates)``;
    ``gt`` is an annotation file or folder the user chose (then a bad one is its one-line error)."""
    from detscope.core.app.evaluation import read_truth
    from detscope.core.eval.annotations import GroundTruthError
    from detscope.core.eval.readers import find_ground_truth

    if gt is None:
        try:
            find_ground_truth(None, paths)
        except GroundTruthError:
            return None, 0
    truth = read_truth(gt, paths)          # a bad annotation file: its one-line error
    return truth, sum(1 for p in paths if truth.lookup(p) is not None)


def _metrics(evaluation, iou: float):
    """On the pool: what does not depend on the threshold (COCO through faster-coco-eval, VOC, curves)."""
    ev = evaluation.evaluator
    ev.coco()
    ev.voc()
    ev.curves(iou)
    return evaluation


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


class EvaluationFlows(QObject):
    message = Signal(str)
    failed = Signal(str)
    truth_ready = Signal(object)          # GroundTruth, or None: none beside the images
    evaluated = Signal(object)            # Evaluation shown in the panel, or None: dropped, cancelled, failed
    _progressed = Signal(int, object)     # job token, core Progress (emitted on the worker thread)

    def __init__(self, session: ModelSession, browser: ImageBrowser, image_panel: ImagePanel, bridge: Bridge,
                 pool: ThreadPoolExecutor, parent=None):
        super().__init__(parent)
        self.session = session
        self.browser = browser
        self.image_panel = image_panel
        self.bridge = bridge
        self.pool = pool
        self.panel = EvalPanel()
        self.overlay = TruthOverlay(image_panel.view)
        self.dock: QDockWidget | None = None
        self.truth = None                   # GroundTruth of the opened images (None: none found, or reading)
        self.truth_reading = False
        self.result = None                  # the Evaluation shown
        self.job = None                     # the EvaluationJob running
        self.truth_visible = True
        self.ghosts_visible = False
        self._truth_request = Latest()
        self._token = 0
        self._task = None
        self._generation = None             # the session generation the result's detections belong to
        self._index: dict[Path, int] = {}   # image -> row of the evaluator's items
        self._pending = False               # Evaluate asked for before the model or ground truth was ready
        self._threshold = image_panel.threshold
        self._dock_sized = False
        self._truth_line = ""

        browser.files_listed.connect(self._images_opened)
        browser.known = self._known
        image_panel.filter_changed.connect(self._image_panel_changed)
        image_panel.labels_toggled.connect(lambda _on: self.refresh_overlay())
        session.opened.connect(lambda _path: self.drop("another model was opened"))
        session.model_ready.connect(self._model_ready)
        self._progressed.connect(self._on_progress)
        p = self.panel
        p.evaluate_requested.connect(self.start)
        p.cancel_requested.connect(self.cancel)
        p.threshold_requested.connect(self.use_threshold)
        p.iou_changed.connect(self._iou_changed)
        p.list_filter_changed.connect(lambda: self.relist(keep_current=False))

    def attach(self, dock: QDockWidget, beside: QDockWidget | None = None) -> None:
        """The dock that holds the panel: hidden until there is ground truth to show, then a tab ``beside``
        the given dock."""
        self.dock = dock
        self._beside = beside

    # --- the ground truth ----------------------------------------------------------------------------
    def choose_truth(self) -> None:
        """Model ▸ Open ground truth…: annotations kept away from the images (a COCO file, a VOC folder, …)."""
        if not self.browser.all_paths:
            self.failed.emit("open the test images first (File ▸ Open images or Open image folder)")
            return
        start = str(Path(self.browser.all_paths[0]).parent)
        path, _ = QFileDialog.getOpenFileName(
            self.parent() if isinstance(self.parent(), QWidget) else None, "Ground truth of the opened images", start,
            "Annotations (*.json *.xml *.csv *.record *.tfrecord *.yaml *.txt);;All files (*)")
        if path:
            self.use_truth(Path(path))

    def use_truth(self, gt: Path) -> None:
        """Read ``gt`` as the ground truth of the opened images (instead of what lies beside them)."""
        self._images_opened(list(self.browser.all_paths), gt)

    def _images_opened(self, paths: list, gt: Path | None = None) -> None:
        self.drop("other images were opened" if gt is None else "other ground truth was chosen")
        self.truth = None
        self.truth_reading = True
        self.refresh_overlay()
        request = self._truth_request.stamp()
        future = self.pool.submit(_read_truth, list(paths), gt)
        self.bridge.track("Reading the ground truth", future)
        self.bridge.watch(future, lambda got: self._truth_read(request, got),
                          lambda exc: self._truth_failed(request, exc))

    def _truth_read(self, request: int, got) -> None:
        if not self._truth_request.is_current(request):
            return
        self.truth_reading = False
        truth, annotated = got
        self.truth = truth
        if truth is None:
            self.panel.set_truth("No ground truth beside these images (COCO or labelme JSON, VOC XML, CSV, "
                                 "TFRecord, YOLO txt): Model ▸ Open ground truth… reads annotations kept elsewhere.")
            self._pending = False
        else:
            total = len(self.browser.all_paths)
            # (its class names meet the model's label map when it is evaluated: which do not map is said then)
            self._truth_line = (f"Ground truth: <b>{truth.format}</b> from {escape(str(truth.source))} — {annotated} of {total} "
                                f"images annotated, {truth.objects} objects")
            self.panel.set_truth(self._truth_line)
            self.message.emit(f"ground truth: {truth.format}, {annotated} of {total} images annotated, "
                              f"{truth.objects} objects — Model ▸ Evaluate (Ctrl+E) tests the model on them")
            self._show_dock()
        self.refresh_overlay()
        self.truth_ready.emit(truth)
        if self._pending:
            self._pending = False
            self.start()

    def _truth_failed(self, request: int, exc: BaseException) -> None:
        if not self._truth_request.is_current(request):
            return
        self.truth_reading = False
        self._pending = False
        line = self.bridge.report(exc, "ground truth")
        self.panel.set_truth(f"The ground truth beside these images cannot be read: {escape(line)}")
        self._show_dock()
        self.truth_ready.emit(None)

    def _show_dock(self, front: bool = False) -> None:
        """Ground truth found: the panel's tab appears beside the problems (which stay in front, with the
        restore report); an evaluation brings it to the front, with room for its tables."""
        dock = self.dock
        if dock is None:
            return
        dock.show()
        window = dock.parentWidget()
        beside = getattr(self, "_beside", None)
        if beside is not None and beside.isVisible() and dock not in window.tabifiedDockWidgets(beside):
            window.tabifyDockWidget(beside, dock)     # a hidden dock shown again is not a tab any more
            beside.raise_()
        if not front:
            return
        dock.raise_()
        window = dock.parentWidget()
        if not self._dock_sized and hasattr(window, "resizeDocks"):
            self._dock_sized = True
            window.resizeDocks([dock], [int(max(window.height(), 600) * 0.4)], Qt.Orientation.Vertical)

    # --- evaluating --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.future.done()

    def start(self) -> None:
        """Model ▸ Evaluate: run the model on every opened image and match with the ground truth."""
        from detscope.core.app.evaluation import start_evaluation

        if self.running:
            self.message.emit("an evaluation is already running (Esc cancels it)")
            return
        paths = list(self.browser.all_paths)
        if not paths:
            self.failed.emit("open test images first (File ▸ Open images or Open image folder)")
            return
        if self.truth_reading:
            self._pending = True
            self.message.emit("the evaluation starts when the ground truth has been read")
            return
        if self.truth is None:
            self.failed.emit("no ground truth beside the opened images (COCO or labelme JSON, VOC XML, CSV, TFRecord, "
                             "YOLO txt): nothing to evaluate against")
            return
        model = self.session.model
        if model is None or self.session.busy:
            if self.session.busy:
                self._pending = True
                self.message.emit("the evaluation starts when the model has loaded")
            else:
                self.failed.emit("open a model first (File ▸ Open model folder)")
            return
        self.drop(None)
        # The job maps the truth's class names onto the model's label map: give it its own copy.
        truth = dataclasses.replace(self.truth, images=dict(self.truth.images), unmapped=dict(self.truth.unmapped),
                                    findings=list(self.truth.findings))
        self._token += 1
        token = self._token
        generation = self.session.generation

        def progressed(p) -> None:          # on the worker thread
            try:
                self._progressed.emit(token, p)
            except RuntimeError:           # the window is gone
                pass

        self.job = job = start_evaluation(self.session.host, paths, truth, on_progress=progressed, pool=self.pool,
                                          summary=model)
        self._task = self.bridge.track(f"Evaluating {len(paths)} images", job.future, cancel=job.cancel)
        self.panel.set_running(0, len(paths))
        self._show_dock(front=True)
        self.message.emit(f"evaluating {model.path.name} on {len(paths)} images…")
        self.bridge.watch(job.future, lambda result: self._detected(token, generation, result),
                          lambda exc: self._failed(token, exc), lambda: self._cancelled(token))

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()
            if self._task is not None:
                self._task.message = "cancelling…"
                self.bridge.tasks_changed.emit()

    def _on_progress(self, token: int, p) -> None:
        if token != self._token or not self.running:
            return
        eta = f", ETA {_clock(p.eta)}" if p.eta is not None and p.done < p.total else ""
        cached = f" ({p.cached} from the cache)" if p.cached else ""
        text = f"{p.done}/{p.total} images{cached}{eta}"
        if self._task is not None:
            self._task.message = text
            self.bridge.tasks_changed.emit()
        self.panel.set_running(p.done, p.total, f"%v / %m images{eta}")

    def _detected(self, token: int, generation: int, result) -> None:
        if token != self._token:
            return
        if generation != self.session.generation:
            self._stopped("the model changed while it was evaluated; evaluate again")
            return
        future = self.pool.submit(_metrics, result, self.panel.iou_value)
        self._task = self.bridge.track("Computing COCO metrics and curves", future)
        n = len(result.evaluator.items)
        self.panel.set_running(n, n, "computing the metrics…", cancellable=False)
        self.bridge.watch(future, lambda r: self._finished(token, generation, r),
                          lambda exc: self._failed(token, exc))

    def _finished(self, token: int, generation: int, result) -> None:
        if token != self._token or generation != self.session.generation:
            return
        self.job = None
        self._task = None
        self.panel.set_running(None)
        self.result = result
        self._generation = generation
        ev = result.evaluator
        self._index = {Path(item.path): i for i, item in enumerate(ev.items)}
        self._threshold = self.image_panel.threshold
        self.panel.set_evaluation(ev, self._threshold)
        for f in result.findings:
            if f.severity != "info":
                self.failed.emit(f.line())
        coco = ev.coco()
        ap50 = coco.stats.get("AP50") if coco else None
        secs = sum(result.seconds.values())
        cached = f", {result.cached} from the cache" if result.cached else ""
        figure = f": mAP@0.5 {ap50:.3f}" if ap50 is not None and ap50 >= 0 else ""
        model = result.model
        ckpt = f" ({model.checkpoint_name})" if model.checkpoint_name else ""
        unmapped = f"<br><span style='color: {style.WARNING}'>{escape(result.truth.unmapped_line())}</span>" \
            if result.truth.unmapped else ""
        self.panel.set_truth(f"{self._truth_line}. Evaluated: <b>{escape(model.path.name)}</b>{ckpt} on {len(ev.items)} "
                             f"images in {secs:.1f} s{cached}.{unmapped}")
        # The image on screen shows the evaluated detections (the same rows the verdicts are about).
        shown = self.browser.shown
        if shown in self._index and self.image_panel.image is not None:
            dets = ev.items[self._index[shown]].detections
            if self.image_panel.kept is not dets:
                self.image_panel.set_detections(dets)
        self.relist(keep_current=True)
        self.refresh_overlay()
        self.message.emit(f"evaluated {len(ev.items)} images in {secs:.1f} s{cached}{figure} — click a confusion "
                          f"cell or an error type to list its images")
        self.evaluated.emit(result)

    def _failed(self, token: int, exc: BaseException) -> None:
        if token == self._token:
            self._stopped(None)
            self.failed.emit(self.bridge.report(exc, "evaluation failed"))

    def _cancelled(self, token: int) -> None:
        if token == self._token:
            self._stopped("evaluation cancelled")

    def _stopped(self, line: str | None) -> None:
        self.job = None
        self._task = None
        self.panel.set_running(None)
        if line:
            self.message.emit(line)
        self.evaluated.emit(None)

    def drop(self, why: str | None) -> None:
        """Forget the evaluation (and cancel one that runs): the model or the images changed."""
        had = self.result is not None or self.running
        if self.running:
            self.job.cancel()
        self._token += 1
        self.job = None
        self._task = None
        self._pending = False
        self.panel.set_running(None)
        if self.truth is not None:
            self.panel.set_truth(self._truth_line)
        if self.result is not None:
            self.result = None
            self._index = {}
            self._generation = None
            self.panel.set_evaluation(None, self.image_panel.threshold)
            self.browser.show_only(None)
            self.refresh_overlay()
        if had and why:
            self.message.emit(f"evaluation dropped: {why}")
            self.evaluated.emit(None)

    def _model_ready(self, _model) -> None:
        if self.result is not None and self._generation != self.session.generation:
            self.drop("the model's weights changed (Model ▸ Evaluate tests them again)")
        if self._pending and not self.session.busy:
            self._pending = False
            self.start()

    def _known(self, path: Path):
        """The evaluation's detections of ``path`` (so browsing evaluated images never runs the model)."""
        if self.result is None or self._generation != self.session.generation:
            return None
        i = self._index.get(Path(path))
        return self.result.evaluator.items[i].detections if i is not None else None

    # --- following the threshold ------------------------------------------------------------------------
    def _image_panel_changed(self) -> None:
        threshold = self.image_panel.threshold
        if threshold != self._threshold:
            self._threshold = threshold
            if self.result is not None:
                self.panel.update_threshold(threshold)
                self.relist(keep_current=True)
        self.refresh_overlay()

    def _iou_changed(self, iou: float) -> None:
        """Matching again at another IoU walks every detection of the set: on the pool, so the window stays
        responsive on a large test set; the panel, the list and the boxes follow when it is done."""
        if self.result is None:
            return
        token, result = self._token, self.result
        self.panel.set_running(0, 1, f"matching again at IoU {iou:.2f}…", cancellable=False)
        future = self.pool.submit(_metrics, result, iou)
        self.bridge.watch(future, lambda _r: self._rematched(token, result, iou),
                          lambda exc: self._failed(token, exc))

    def _rematched(self, token: int, result, iou: float) -> None:
        if token != self._token or result is not self.result:
            return
        self.panel.set_running(None)
        if iou != self.panel.iou_value:         # the box moved on: its own re-match follows
            return
        self.panel.update_threshold(self.image_panel.threshold)
        self.relist(keep_current=True)
        self.refresh_overlay()

    def use_threshold(self, threshold: float) -> None:
        """Set the slider to ``threshold`` (the slider has steps of 0.01: the step at or below it, so the
        detection that scored it stays in)."""
        self.image_panel.set_threshold(math.floor(threshold * 100 + 1e-9) / 100)
        self.message.emit(f"score threshold {self.image_panel.threshold:.2f} (best F1 at {threshold:.3f})")

    def use_best_threshold(self) -> None:
        if self.panel.best_threshold is not None:
            self.use_threshold(self.panel.best_threshold)

    # --- the image list --------------------------------------------------------------------------------
    def listed_rows(self) -> list[int]:
        """Rows of the evaluator's items the panel's filter selects, in the panel's order."""
        import numpy as np

        ev = self.result.evaluator
        threshold, iou = self.image_panel.threshold, self.panel.iou_value
        kind, cell, class_id, sort = self.panel.list_filter()
        if kind == CELL and cell is not None:
            rows = ev.images_in_cell(cell[0], cell[1], threshold, iou)
        elif kind == ALL:
            rows = list(range(len(ev.items)))
            if class_id is not None:
                rows = [i for i in rows if self._has_class(ev.items[i], class_id, threshold)]
        elif kind == WITH_ERRORS:
            if class_id is None:
                c = ev.counts(threshold, iou)
                flat = np.nonzero((c.image_fp + c.image_fn) > 0)[0]
                rows = [ev.annotated[int(k)] for k in flat]
            else:
                from detscope.core.eval.results import ERROR_KINDS

                rows = sorted({i for k in ERROR_KINDS for i in ev.images_with_error(k, threshold, iou, class_id)})
        else:
            rows = ev.images_with_error(kind, threshold, iou, class_id)
        if sort == SORT_ERRORS:
            rank = {i: r for r, i in enumerate(ev.worst_images(threshold, iou))}
            rows = sorted(rows, key=lambda i: (rank.get(i, len(rank)), i))
        else:
            rows = sorted(rows)
        return rows

    @staticmethod
    def _has_class(item, class_id: int, threshold: float) -> bool:
        import numpy as np

        d = item.detections
        if np.any((np.asarray(d.class_ids) == class_id) & (np.asarray(d.scores) >= threshold)):
            return True
        return item.truth is not None and bool(np.any(np.asarray(item.truth.class_ids) == class_id))

    def relist(self, keep_current: bool = True) -> None:
        """The browser's list as the panel's filter and order say (every opened image without an evaluation)."""
        if self.result is None:
            self.browser.show_only(None)
            return
        ev = self.result.evaluator
        threshold, iou = self.image_panel.threshold, self.panel.iou_value
        rows = self.listed_rows()
        c = ev.counts(threshold, iou)
        flat = {i: k for k, i in enumerate(ev.annotated)}
        captions = []
        for i in rows:
            name = Path(ev.items[i].path).name
            k = flat.get(i)
            if k is None:
                captions.append(f"{name}   (no ground truth)")
            elif c.image_fp[k] or c.image_fn[k]:
                fp, fn = int(c.image_fp[k]), int(c.image_fn[k])
                captions.append(f"{name}   " + " · ".join(s for s in (f"{fp} FP" if fp else "",
                                                                      f"{fn} FN" if fn else "") if s))
            else:
                captions.append(name)
        self.browser.show_only([Path(ev.items[i].path) for i in rows], captions, keep_current=keep_current)
        self.panel.set_shown(len(rows), len(ev.items))

    # --- the overlay -----------------------------------------------------------------------------------
    def set_truth_visible(self, on: bool) -> None:
        """Image ▸ Show ground truth: its boxes, and the detections coloured right or wrong."""
        self.truth_visible = bool(on)
        self.refresh_overlay()

    def set_ghosts_visible(self, on: bool) -> None:
        """Image ▸ Show boxes below the threshold, dotted."""
        self.ghosts_visible = bool(on)
        self.refresh_overlay()

    def refresh_overlay(self) -> None:
        """Draw the ground truth (and verdicts) of the image on screen, as the current threshold has them."""
        import numpy as np

        panel = self.image_panel
        path = self.browser.shown
        if panel.image is None or path is None or not self.browser.enabled or \
                not (self.truth_visible or self.ghosts_visible):
            self.overlay.clear()
            return
        h, w = panel.image.shape[:2]
        kept = panel.kept
        threshold = panel.threshold
        visible = None
        if kept is not None:
            visible = np.asarray(kept.scores) >= threshold
            if panel.hidden_classes:
                visible &= ~np.isin(np.asarray(kept.class_ids), np.fromiter(panel.hidden_classes, np.int64))
        marks, predictions = [], None
        if self.truth_visible:
            verdicts = self._verdicts(path, kept, visible)
            if verdicts is not None:
                marks, predictions = verdicts
            elif self.truth is not None:
                ann = self.truth.lookup(path)
                if ann is not None:
                    ann = ann.scaled_to(w, h)
                    marks = [TruthMark(tuple(float(v) for v in box), name)
                             for box, name in zip(ann.boxes, ann.names)]
        ghosts = []
        if self.ghosts_visible and kept is not None:
            below = (np.asarray(kept.scores) < threshold)
            if panel.hidden_classes:
                below &= ~np.isin(np.asarray(kept.class_ids), np.fromiter(panel.hidden_classes, np.int64))
            ghosts = [Ghost(tuple(float(v) for v in kept.boxes[r]), f"{kept.labels[r]} {float(kept.scores[r]):.2f}")
                      for r in np.nonzero(below)[0]]
        self.overlay.show(marks, ghosts, predictions)

    def _verdicts(self, path: Path, kept, visible):
        """The evaluated image's ground truth with what became of each box, and the shown detections' verdicts;
        None when the image is not in the evaluation (or shows other detections than were evaluated)."""
        import numpy as np

        if self.result is None or self._generation != self.session.generation:
            return None
        i = self._index.get(Path(path))
        if i is None:
            return None
        ev = self.result.evaluator
        item = ev.items[i]
        errors = ev.image_errors(i, self.image_panel.threshold, self.panel.iou_value)
        if errors is None:                 # unannotated
            return None
        missed = {e.truth: e for e in errors.fn}
        marks = []
        for r, (box, name, cid) in enumerate(zip(item.truth.boxes, item.truth.names, item.truth.class_ids)):
            status = errors.truth_status[r]
            name = ev.label(int(cid)) if int(cid) >= 0 else f"{name} (not in the label map)"
            note, kind = "", ""
            if status == "fn" and r in missed:
                e = missed[r]
                kind = e.kind
                note = f"{e.kind}: {e.reason}" if e.reason else e.kind
            marks.append(TruthMark(tuple(float(v) for v in box), name, status, note, kind))
        predictions = None
        if kept is not None and visible is not None and self._same(kept, item.detections):
            kinds = {e.detection: e.kind for e in errors.fp}
            predictions = []
            for shown_row, r in enumerate(np.nonzero(visible)[0]):
                status = errors.det_status[r]
                if status in ("tp", "fp", "ignored"):
                    predictions.append(PredictionMark(shown_row, status, kinds.get(int(r), "")))
        return marks, predictions

    @staticmethod
    def _same(a, b) -> bool:
        import numpy as np

        return a is b or (len(a) == len(b) and np.array_equal(a.class_ids, b.class_ids)
                          and np.allclose(a.boxes, b.boxes, atol=0.5) and np.allclose(a.scores, b.scores, atol=1e-4))
