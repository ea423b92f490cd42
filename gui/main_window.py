"""The main window: menus, docks and the wiring between the panels, the session and the engine.

Nothing here computes: the session reads and loads, the browser and the live
controller feed the image panel, the panels show. The sources controller asks
for images and live sources, the exports controller saves and copies, and the
menus and keys come from one table (``gui/actions.py``). The window builds them,
places the docks and connects them.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QMainWindow, QMenu, QScrollArea, QWidget

from detscope.core.runtime.engine import Engine

from . import actions
from .controllers.browser import ImageBrowser
from .controllers.compare import CompareFlows
from .controllers.drift import DriftFlows
from .controllers.evaluation import EvaluationFlows
from .controllers.exports import Exports
from .controllers.live import LiveController
from .controllers.model import ModelFlows
from .controllers.recent import RecentModels
from .controllers.review import ReviewController, help_rows
from .controllers.session import ModelSession
from .controllers.sources import Sources
from .panels.details_panel import DetailsPanel
from .panels.image_panel import DEFAULT_THRESHOLD, ImagePanel
from .panels.model_box import ModelBox
from .panels.problems_panel import ProblemsPanel
from .panels.status import TaskStatus
from .qt import style
from .qt.bridge import Bridge
from .qt.settings import save as save_settings, settings

log = logging.getLogger("detscope.gui")
__all__ = ["MainWindow", "settings"]


# What opening a model and an image imports, in the window's process. Imported on the pool once the window
# shows, so that the first open imports nothing: an import under way on a worker makes the GUI thread wait
# for all of it when it needs the same module (and decoding Pillow's plugins or the evaluation's readers
# then competes with the window for the interpreter).
IMPORTED_AHEAD = ("PIL.Image", "detscope.core.detect.render", "detscope.core.app.evaluation",
                  "detscope.core.app.open_request", "detscope.core.media.sources", "detscope.core.base.paths")


IMPORT_AHEAD_AFTER_MS = 300


def import_ahead() -> None:
    import importlib

    for name in IMPORTED_AHEAD:
        importlib.import_module(name)
    from PIL import Image

    Image.preinit()           # the common formats' plugins, which the first image would import


class MainWindow(QMainWindow):
    def __init__(self, engine: Engine | None = None):
        super().__init__()
        self.setWindowTitle("detscope")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.bridge = Bridge(self)
        self.engine = engine or Engine(on_progress=self.bridge.post_progress)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="detscope-io")
        self._imported_ahead = False
        self.session = ModelSession(self.engine, self.bridge, self.pool, self)
        self._closing = False
        self._threshold_of: Path | None = None   # the model the slider's threshold belongs to
        self._full_screen_state = None

        # Panels.
        self.image_panel = ImagePanel(self)
        self.setCentralWidget(self.image_panel)
        self.details = DetailsPanel(self.bridge, self.session.request_stats, self)
        self.problems = ProblemsPanel(self)
        self.browser = ImageBrowser(self.session, self.image_panel, self.bridge, self.pool, self)
        self.live = LiveController(self.session, self.image_panel, self.bridge, self)
        self.sources = Sources(self.browser, self.live, self.image_panel, self)
        self.exports = Exports(self.session, self.image_panel, self.browser, self.live, self)
        self.evaluation = EvaluationFlows(self.session, self.browser, self.image_panel, self.bridge, self.pool, self)

        self.model_box = ModelBox(self)
        self.tree = self.model_box.tree
        self.tree_dock = self._dock("Model", self.model_box, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.details_dock = self._dock("Details", self.details, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.problems_dock = self._dock("Problems and restore report", self.problems,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.tree_dock, self.details_dock, Qt.Orientation.Vertical)
        # Scrolled: its tables and charts would otherwise set the minimum height of the whole bottom area (and
        # the window's minimum width) even while the problems tab is the one in front.
        scroll = QScrollArea(self)
        scroll.setWidget(self.evaluation.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.eval_dock = self._dock("Evaluation", scroll, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.problems_dock, self.eval_dock)
        self.eval_dock.hide()                     # until ground truth is found beside the opened images
        self.evaluation.attach(self.eval_dock, beside=self.problems_dock)
        self.compare = CompareFlows(self.session, self.browser, self.image_panel, self.bridge, self.pool, self)
        self.compare_dock = self._dock("Compare A and B", self.compare.panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.problems_dock, self.compare_dock)
        self.compare_dock.hide()                  # until a second model is opened
        self.compare.attach(self.compare_dock)
        self.review = ReviewController(self.session, self.browser, self.image_panel, self.bridge, self.pool, self)
        self.review_dock = self._dock("Review", self.review.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.review_dock.hide()                   # until a review is started
        self.review.attach(self.review_dock)
        self._layout_pending = True

        # Status bar: one line of what happens, live numbers, background work.
        self.status_line = QLabel("Ready", self)
        self.live_label = QLabel(self)
        self.task_status = TaskStatus(self.bridge, self)
        bar = self.statusBar()
        bar.addWidget(self.status_line, 1)
        bar.addPermanentWidget(self.live_label)
        bar.addPermanentWidget(self.task_status)
        self._error_timer = QTimer(self)
        self._error_timer.setSingleShot(True)
        self._error_timer.timeout.connect(lambda: self.status_line.setStyleSheet(""))

        # Menus and keys: one table (gui/actions.py); the recent models and the docks' toggles fill in.
        self.recent = RecentModels(QMenu("Recent models", self), lambda path: self.model.open(path))
        self.model = ModelFlows(self.session, self.bridge, self.model_box, self.problems, self.image_panel,
                                self.recent, self)
        self.drift = DriftFlows(self.session, self.bridge, self.pool, self.tree, self)   # after self.model (tree first)
        docks = (self.tree_dock, self.details_dock, self.problems_dock, self.eval_dock, self.review_dock,
                 self.compare_dock)
        self.menu_actions = actions.build_menus(self, {
            actions.RECENT: lambda menu: menu.addMenu(self.recent.menu),
            actions.DOCKS: lambda menu: menu.addActions([d.toggleViewAction() for d in docks])})
        self.review.set_help_keys(help_rows(self.menu_actions, actions.table()))
        self._connect()
        self._restore_settings()

    # --- construction -------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.split()[0].lower() + "_dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        s = self.session
        s.opened.connect(self._model_opened)
        s.message.connect(self.say)
        s.failed.connect(lambda line: self.say(line, error=True))
        self.bridge.errored.connect(self._errored)
        self.tree.node_selected.connect(self.details.show_node)
        self.problems.locate.connect(self.locate)
        self.browser.message.connect(self.say)
        self.image_panel.filter_changed.connect(self._filter_changed)
        self.image_panel.labels_toggled.connect(self.menu_actions["labels"].setChecked)
        self.live.stats_changed.connect(self.live_label.setText)
        for controller in (self.sources, self.exports, self.model, self.evaluation, self.drift, self.review,
                           self.compare):
            controller.message.connect(self.say)
            controller.failed.connect(self._errored)

    # --- messages -----------------------------------------------------------------------------
    def say(self, line: str, error: bool = False) -> None:
        self.status_line.setText(line)
        self.status_line.setToolTip(line)
        if error:
            self.status_line.setStyleSheet(f"color: {style.ERROR}")
            self._error_timer.start(15000)
        else:
            self.status_line.setStyleSheet("")

    def _errored(self, line: str) -> None:
        self.say(line, error=True)
        self.problems.add_message(line)

    # --- the open model ---------------------------------------------------------------------
    def _model_opened(self, path: Path) -> None:
        self.setWindowTitle(f"detscope — {path.name}")
        self.details.show_node(None)
        # Each model keeps its own threshold: a 0 chosen for one must not open the next with every box.
        stored = settings().value(self._threshold_key(path))
        try:
            self.image_panel.set_threshold(float(stored) if stored is not None else DEFAULT_THRESHOLD)
        except (TypeError, ValueError):
            self.image_panel.set_threshold(DEFAULT_THRESHOLD)
        self._threshold_of = path          # from now on the slider speaks for this model

    @staticmethod
    def _threshold_key(path: Path) -> str:
        return "threshold/" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]

    def open_kiosk(self) -> None:
        """Full screen for a demo: the live source, or the image list looping, through this model."""
        from detscope.core.media.sources import ImageFolderSource

        from .controllers.kiosk import make_source
        from .kiosk_window import KioskWindow

        live = self.live.source
        if live is not None:
            source = make_source(str(getattr(live, "target", "")))
            self.live.stop()
        elif self.browser.paths:
            source = ImageFolderSource(self.browser.paths, fps=1.0, loop=True)
        else:
            self.say("open images, a video or a camera first (Source menu)", error=True)
            return
        self.kiosk = KioskWindow(self.session, self.bridge, threshold=self.image_panel.threshold, parent=self)
        self.kiosk.start(source)
        self.kiosk.show_full_screen()

    def cancel_work(self) -> None:
        if self.isFullScreen():
            self.toggle_full_screen()
            return
        self.task_status.cancel_current()

    # --- kept in the settings -----------------------------------------------------------------
    def _filter_changed(self) -> None:
        panel = self.image_panel
        if self._threshold_of is not None and self._threshold_of == self.session.path:
            settings().setValue(self._threshold_key(self._threshold_of), panel.threshold)
        if panel.kept is not None and panel.caption and not self.live.active:   # the status line follows the slider
            self.say(f"{panel.caption}: {len(panel.shown)} of {len(panel.kept)} detections shown "
                     f"(score ≥ {panel.threshold:.2f})")

    # --- locating what a problem concerns -------------------------------------------------------
    def locate(self, payload) -> None:
        """Select the tree node a problems row concerns (core says which)."""
        node = self.model.node_for(payload)
        if node is None:
            self.say("that row does not concern a node of the tree")
            return
        self.tree_dock.show()
        self.tree.select_node(node)

    # --- command line, drops ---------------------------------------------------------------
    def open_paths(self, paths) -> None:
        """Whatever a command line or a drop names: a model, images and folders of images, a video."""
        from detscope.core.app.open_request import SourceError, classify_paths

        try:
            request = classify_paths(paths)
        except SourceError as exc:
            self.say(str(exc), error=True)
            return
        if request.model is not None:
            self.model.open(request.model)
        if request.images:
            self.sources.open_images(request.images)
        if request.video is not None:
            self.sources.open_source(request.video)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        paths = [u.toLocalFile() if u.isLocalFile() else u.toString() for u in urls]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # --- full screen, settings, closing -------------------------------------------------------
    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            self.menuBar().setVisible(True)
            if self._full_screen_state is not None:
                self.restoreState(self._full_screen_state)
            self.image_panel.set_side_visible(True)
        else:
            self._full_screen_state = self.saveState()
            for dock in (self.tree_dock, self.details_dock, self.problems_dock, self.eval_dock, self.compare_dock):
                dock.hide()
            self.image_panel.set_side_visible(False)
            self.menuBar().setVisible(False)
            self.showFullScreen()
            self.say("full screen — F11 or Esc to leave")

    def _default_layout(self) -> None:
        """Docks in proportion to the window: the tree a third of the width, the problems a fifth of the height."""
        w, h = max(self.width(), 800), max(self.height(), 600)
        self.resizeDocks([self.tree_dock], [int(w * 0.36)], Qt.Orientation.Horizontal)
        self.resizeDocks([self.tree_dock, self.details_dock], [int(h * 0.5), int(h * 0.3)], Qt.Orientation.Vertical)
        self.resizeDocks([self.problems_dock], [int(h * 0.15)], Qt.Orientation.Vertical)
        self.image_panel.set_side_share(0.22)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._layout_pending:
            self._layout_pending = False
            QTimer.singleShot(0, self._default_layout)
        if not self._imported_ahead:
            self._imported_ahead = True
            # not while the window paints for the first time: that paint would wait for the imports
            QTimer.singleShot(IMPORT_AHEAD_AFTER_MS, self._import_ahead)

    def _import_ahead(self) -> None:
        if not self._closing:
            self.pool.submit(import_ahead)

    def _restore_settings(self) -> None:
        s = settings()
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if state is not None and self.restoreState(state):
            self._layout_pending = False

    def closeEvent(self, event) -> None:
        """Stop the source, cancel what runs, and let the engine go without waiting for it."""
        if self.isFullScreen():
            self.toggle_full_screen()
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.live.stop()
        self.browser.cancel()
        self.review.close("the window closed")     # every verdict is in the file already
        self.bridge.cancel_all()                   # whatever the user could cancel, the close cancels
        self.bridge.close()
        # Cancel the load or restore (running work stops at its next check) and queue the model's release,
        # so TensorFlow objects are freed on the engine thread, then let the engine finish on its own.
        self.session.close_model()
        self.compare.shutdown()                    # B's engine goes the same way
        self.engine.shutdown(wait=False, cancel_pending=False)
        self.pool.shutdown(wait=False, cancel_futures=True)

