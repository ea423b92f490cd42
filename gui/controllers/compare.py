"""A second model (B) in the window: its own session on its own engine, run on every image A runs on.

Model ▸ Open second model (B)… opens any model folder (or another checkpoint of A's folder) as B, in a
second :class:`~.session.ModelSession` with an engine thread of its own, so B's load and detections never wait
behind A's. When an image shows, B runs on it too (its detections are cached per image and weights, like A's);
B's boxes above B's own threshold are drawn dashed over A's (:mod:`..panels.compare_overlay`) and the two
models' detections are matched (:func:`detscope.core.eval.crossmatch.compare_detections`) into the comparison
dock's list. A's side is what the image panel shows (its threshold and class filter); the matching is a few
hundred boxes at most, so it runs on the GUI thread when either side changes. Only a complete restore runs
unasked, for B as for A.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QFileDialog

from ..panels.compare_overlay import BMark, CompareOverlay
from ..panels.compare_panel import FLIP, ONLY_A, ONLY_B, PAIR, ComparePanel
from ..qt.settings import settings
from .session import ModelSession

CACHE_SIZE = 256


def _name(path: Path) -> str:
    """A model folder by its last two names (``demo/training``: "training" alone says little)."""
    return "/".join(Path(path).parts[-2:])


def _box(dets, row: int) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in dets.boxes[row])


class CompareFlows(QObject):
    """Owns B: its session and engine, its detections per image, the overlay and the comparison dock."""

    message = Signal(str)
    failed = Signal(str)
    compared = Signal(object)          # the ImageComparison of the image on screen (None: none yet)
    b_detections = Signal(object)      # B's detections of the image on screen arrived

    def __init__(self, session, browser, image_panel, bridge, pool, parent=None):
        super().__init__(parent)
        self.session, self.browser, self.image_panel = session, browser, image_panel
        self.bridge, self.pool = bridge, pool
        self._dialog_parent = parent
        self.panel = ComparePanel()
        self.overlay = CompareOverlay(image_panel.view)
        self.dock: QDockWidget | None = None
        self.engine_b = None
        self.session_b: ModelSession | None = None
        self.comparison = None
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._detecting = None
        self._request = 0
        self._dock_sized = False

        browser.image_shown.connect(self._image_shown)
        image_panel.filter_changed.connect(self.refresh)
        image_panel.labels_toggled.connect(lambda _on: self.refresh())
        p = self.panel
        p.open_requested.connect(self.choose)
        p.close_requested.connect(self.close_b)
        p.allow_partial_requested.connect(self.allow_partial)
        p.settings_changed.connect(self.refresh)
        p.row_chosen.connect(self._row_chosen)

    def attach(self, dock: QDockWidget) -> None:
        self.dock = dock

    @property
    def loaded(self) -> bool:
        return self.session_b is not None and self.session_b.model is not None

    # --- opening B --------------------------------------------------------------------------------
    def choose(self) -> None:
        start = str(self.session.path.parent) if self.session.path else settings().value("last_model_dir", "")
        folder = QFileDialog.getExistingDirectory(self._dialog_parent, "Open second model (B)", start)
        if folder:
            self.open(folder)

    def open(self, path, checkpoint: str | None = None) -> None:
        """Load ``path`` (its ``checkpoint``, else its selected one) as B, on B's own engine."""
        if self.session_b is None:
            from detscope.core.runtime.engine import Engine

            self.engine_b = Engine(name="detscope-engine-b", on_progress=self.bridge.post_progress)
            self.session_b = s = ModelSession(self.engine_b, self.bridge, self.pool, self)
            s.model_ready.connect(self._b_ready)
            s.failed.connect(lambda line: self.failed.emit(f"B: {line}"))
            s.load_failed.connect(lambda line: self.panel.set_model(f"<b>B</b> — could not be loaded", line))
        path = Path(path).expanduser()
        self._cache.clear()
        self.comparison = None
        self.overlay.clear()
        self.panel.set_model(f"<b>B: {_name(path)}</b> — loading…", str(path))
        self.panel.show_rows(None, "")
        self.session_b.open(path, checkpoint=checkpoint)
        self.message.emit(f"opening {path} as the second model (B)")
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()
            window = self.dock.parentWidget()
            if not self._dock_sized and hasattr(window, "resizeDocks"):
                self._dock_sized = True        # once: after that the user's size stays
                QTimer.singleShot(0, lambda: window.resizeDocks([self.dock], [int(max(window.height(), 600) * 0.3)],
                                                                Qt.Orientation.Vertical))

    def close_b(self) -> None:
        """Drop B: its model (released on its engine), its boxes and its list."""
        if self.session_b is not None:
            self.cancel()
            self.session_b.close_model()
            self.session_b.path = None
        self._cache.clear()
        self.comparison = None
        self.overlay.clear()
        self.panel.set_model(None)
        self.compared.emit(None)

    def allow_partial(self) -> None:
        """The user agreed to see B's detections of an incomplete restore."""
        if self.session_b is not None and self.session_b.model is not None:
            self.session_b.allow_partial = True
            self.panel.anyway_button.hide()
            self._b_ready(self.session_b.model)

    def _b_ready(self, model) -> None:
        s = self.session_b
        what = model.checkpoint_name or model.how.replace("_", " ")
        self._cache.clear()
        if model.partial and not s.allow_partial:
            self.panel.set_model(f"<b>B: {_name(s.path)}</b> ({what}) — not fully restored, not run", model.refusal)
            self.panel.anyway_button.show()
            self.failed.emit(f"B: {model.refusal}")
            return
        mark = " — PARTIAL RESTORE" if model.partial else ""
        self.panel.set_model(f"<b>B: {_name(s.path)}</b> ({what}){mark}", str(s.path))
        self.message.emit(f"second model (B) {_name(s.path)} ({what}) loaded")
        self._run_current()

    # --- running B --------------------------------------------------------------------------------
    def _key(self, path) -> tuple:
        return (str(path), self.session_b.generation if self.session_b is not None else 0)

    def _image_shown(self, path) -> None:
        self.comparison = None
        self.overlay.clear()
        self._run_current()

    def _run_current(self) -> None:
        path, rgb = self.browser.shown, self.browser.image
        if self.session_b is None or path is None or rgb is None or not self.browser.enabled:
            self.refresh()
            return
        if self._key(path) in self._cache:
            self.refresh()
            return
        if self.session_b.model is None or not self.session_b.may_detect:
            self.refresh()
            return
        self.cancel()
        self._request += 1
        request, key = self._request, self._key(path)
        try:
            future = self.session_b.detect(rgb, name=f"detect B {Path(path).name}")
        except RuntimeError:          # B's engine is shut down: the window is closing
            return
        if future is None:
            return
        self._detecting = future
        self.bridge.watch(future, lambda dets: self._detected(request, key, dets),
                          lambda exc: self._detect_failed(request, exc))
        self.refresh()

    def _detected(self, request: int, key: tuple, dets) -> None:
        self._cache[key] = dets
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        if request == self._request:
            self.refresh()
            self.b_detections.emit(dets)

    def _detect_failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.failed.emit(self.bridge.report(exc, "B: detection failed"))

    def cancel(self) -> None:
        self._request += 1
        if self._detecting is not None and not self._detecting.done() and self.engine_b is not None:
            self.engine_b.cancel(self._detecting)
        self._detecting = None

    def detections_b(self):
        """B's detections of the image on screen (all of them), or None while unknown."""
        path = self.browser.shown
        if self.session_b is None or path is None:
            return None
        return self._cache.get(self._key(path))

    # --- comparing --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Draw B's boxes and list the disagreements of the image on screen, at both thresholds."""
        panel = self.image_panel
        dets_b = self.detections_b()
        if dets_b is None or panel.image is None or not self.browser.enabled:
            self.overlay.clear()
            if self.comparison is not None:
                self.comparison = None
                self.compared.emit(None)
            if self.session_b is not None and self.session_b.path is not None:
                self.panel.show_rows(None, "B runs on the image…" if self._detecting is not None
                                     and not self._detecting.done() else "")
            return
        from detscope.core.eval.crossmatch import compare_detections

        threshold_b = self.panel.threshold_b
        shown_a = panel.shown                      # A as the panel shows it: its threshold and class filter
        rows_b = [r for r in range(len(dets_b)) if float(dets_b.scores[r]) >= threshold_b]
        if shown_a is None:                        # A's detections are on their way: B's boxes alone
            self.overlay.show([BMark(_box(dets_b, r), dets_b.labels[r], float(dets_b.scores[r])) for r in rows_b])
            self.panel.show_rows(None, "waiting for A's detections…")
            return
        c = compare_detections(shown_a, dets_b, iou=self.panel.iou_value, threshold_a=panel.threshold,
                               threshold_b=threshold_b)
        self.comparison = c
        status = {}
        for _ia, ib, _iou, _sa, _sb in c.pairs:
            status[ib] = ("pair", "")
        for ia, ib, _iou, _ca, _cb in c.class_flips:
            status[ib] = ("flip", shown_a.labels[ia])
        for ib in c.only_b:
            status[ib] = ("only_b", "")
        self.overlay.show([BMark(_box(dets_b, r), dets_b.labels[r], float(dets_b.scores[r]), *status.get(r, ("", "")))
                           for r in rows_b])
        rows = []

        def a_text(i):
            return f"{shown_a.labels[i]} {float(shown_a.scores[i]):.2f}"

        def b_text(j):
            return f"{dets_b.labels[j]} {float(dets_b.scores[j]):.2f}"
        for ia, ib, iou, _ca, _cb in c.class_flips:
            rows.append((FLIP, a_text(ia), b_text(ib), iou, float(dets_b.scores[ib] - shown_a.scores[ia]), ia))
        rows += [(ONLY_A, a_text(ia), "", None, None, ia) for ia in c.only_a]
        rows += [(ONLY_B, "", b_text(ib), None, None, -1) for ib in c.only_b]
        rows += sorted(((PAIR, a_text(ia), b_text(ib), iou, sb - sa, ia) for ia, ib, iou, sa, sb in c.pairs),
                       key=lambda r: -abs(r[4]))
        name = Path(self.browser.shown).name
        self.panel.show_rows(rows, f"{name}: agreement {c.agreement:.0%} — {len(c.pairs)} matched, "
                                   f"{len(c.class_flips)} class flips, {len(c.only_a)} only in A, "
                                   f"{len(c.only_b)} only in B (A ≥ {panel.threshold:.2f}, B ≥ {threshold_b:.2f}, "
                                   f"IoU {self.panel.iou_value:.2f})")
        self.compared.emit(c)

    def _row_chosen(self, row: int) -> None:
        if row >= 0:
            self.image_panel.table.selectRow(row)
        else:
            self.image_panel.table.clearSelection()
            self.image_panel.select_detection(-1)

    # --- closing ------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel B's work, queue its model's release on its engine, and let that engine end."""
        if self.session_b is None:
            return
        self.cancel()
        self.session_b.close_model()
        self.engine_b.shutdown(wait=False, cancel_pending=False)
