"""The main window: menus, docks and the wiring between the panels, the session and the engine.

Nothing here computes: the session reads and loads, the browser and the live
controller feed the image panel, the panels show. The sources controller asks
for images and live sources, the exports controller saves and copies, and the
menus and keys come from one table (``gui/actions.py``). The window builds them,
places the docks and connects them.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMenu, \
    QVBoxLayout, QWidget

from detscope.core.runtime.engine import Engine

from . import actions
from .controllers.browser import ImageBrowser
from .controllers.exports import Exports
from .controllers.live import LiveController
from .controllers.recent import RecentModels
from .controllers.session import ModelSession
from .controllers.sources import Sources
from .panels.details_panel import DetailsPanel
from .panels.image_panel import ImagePanel
from .panels.model_tree import ModelTreePanel
from .panels.problems_panel import ProblemsPanel
from .panels.status import TaskStatus
from .qt import style
from .qt.bridge import Bridge
from .qt.settings import settings

log = logging.getLogger("detscope.gui")
__all__ = ["MainWindow", "settings"]


class MainWindow(QMainWindow):
    def __init__(self, engine: Engine | None = None):
        super().__init__()
        self.setWindowTitle("detscope")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.bridge = Bridge(self)
        self.engine = engine or Engine(on_progress=self.bridge.post_progress)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="detscope-io")
        self.session = ModelSession(self.engine, self.bridge, self.pool, self)
        self._closing = False
        self._full_screen_state = None

        # Panels.
        self.image_panel = ImagePanel(self)
        self.setCentralWidget(self.image_panel)
        self.tree = ModelTreePanel(self)
        self.details = DetailsPanel(self.bridge, self.session.request_stats, self)
        self.problems = ProblemsPanel(self)
        self.browser = ImageBrowser(self.session, self.image_panel, self.bridge, self.pool, self)
        self.live = LiveController(self.session, self.image_panel, self.bridge, self)
        self.sources = Sources(self.browser, self.live, self.image_panel, self)
        self.exports = Exports(self.session, self.image_panel, self.browser, self.live, self)

        self.checkpoints = QComboBox(self)
        self.checkpoints.setToolTip("Restore another checkpoint of this folder into the loaded model (no reload)")
        self.checkpoints.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.checkpoints.activated.connect(self._checkpoint_chosen)
        model_box = QWidget(self)
        self.model_label = QLabel("No model open — File ▸ Open model folder (Ctrl+O) or drop one here", self)
        self.model_label.setWordWrap(True)
        self.model_label.setContentsMargins(4, 4, 4, 0)
        self.checkpoint_label = QLabel("Checkpoint", self)
        picker = QHBoxLayout()
        picker.setContentsMargins(4, 0, 4, 0)
        picker.addWidget(self.checkpoint_label)
        picker.addWidget(self.checkpoints)
        picker.addStretch(1)
        mb = QVBoxLayout(model_box)
        mb.setContentsMargins(0, 0, 0, 0)
        mb.addWidget(self.model_label)
        mb.addLayout(picker)
        mb.addWidget(self.tree, 1)
        self._show_picker(False)

        self.tree_dock = self._dock("Model", model_box, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.details_dock = self._dock("Details", self.details, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.problems_dock = self._dock("Problems and restore report", self.problems,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.tree_dock, self.details_dock, Qt.Orientation.Vertical)
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
        self.recent = RecentModels(QMenu("Recent models", self), self.open_model)
        docks = (self.tree_dock, self.details_dock, self.problems_dock)
        self.menu_actions = actions.build_menus(self, {
            actions.RECENT: lambda menu: menu.addMenu(self.recent.menu),
            actions.DOCKS: lambda menu: menu.addActions([d.toggleViewAction() for d in docks])})
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
        s.inventory_ready.connect(self._inventory_ready)
        s.model_ready.connect(self._model_ready)
        s.report_changed.connect(self._report_changed)
        s.checkpoint_changed.connect(self._checkpoint_changed)
        s.message.connect(self.say)
        s.failed.connect(lambda line: self.say(line, error=True))
        s.load_failed.connect(lambda line: self.problems.set_report(None, "not restored — " + line))
        self.bridge.errored.connect(self._errored)
        self.tree.node_selected.connect(self.details.show_node)
        self.problems.locate.connect(self.locate)
        self.browser.message.connect(self.say)
        self.image_panel.filter_changed.connect(self._filter_changed)
        self.image_panel.labels_toggled.connect(self.menu_actions["labels"].setChecked)
        self.live.stats_changed.connect(self.live_label.setText)
        for controller in (self.sources, self.exports):
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

    # --- opening a model ----------------------------------------------------------------------
    def open_model(self, path) -> None:
        path = Path(path).expanduser()
        self.say(f"opening {path}")
        self.session.open(path)
        self._add_recent(path)

    def reload_model(self) -> None:
        if self.session.path is not None:
            self.say(f"reloading {self.session.path}")
            self.session.open(self.session.path, template=self.session.template)

    def choose_output_mapping(self) -> None:
        """Ask the engine for the model's outputs, then let the user map them and load again."""
        if self.session.path is None:
            self.say("open a model first (File ▸ Open model folder)", error=True)
            return
        self.bridge.watch(self.session.request_mapping_target(), self._map_outputs,
                          lambda exc: self.say(self.bridge.report(exc, "cannot map outputs"), error=True))

    def _map_outputs(self, target) -> None:
        from detscope.core.detect.mappings import save_mapping

        from .panels.output_mapping import OutputMappingDialog

        dialog = OutputMappingDialog(target, self)
        if dialog.exec() != OutputMappingDialog.DialogCode.Accepted:
            return
        saved = save_mapping(target.key, dialog.mapping())
        self.say(f"output mapping saved to {saved}; loading {target.model_path.name} again")
        self.reload_model()

    def choose_template(self) -> None:
        """Restore the open checkpoint into a SavedModel of the same architecture that the user picks."""
        if self.session.path is None:
            self.say("open a checkpoint folder first (File ▸ Open model folder)", error=True)
            return
        start = str(self.session.template or self.session.path.parent)
        folder = QFileDialog.getExistingDirectory(self, "SavedModel of the same architecture", start)
        if folder:
            self.say(f"restoring {self.session.path.name} into {folder}")
            self.session.open(self.session.path, template=folder)

    def choose_model_folder(self) -> None:
        start = str(self.session.path.parent) if self.session.path else settings().value("last_model_dir", "")
        folder = QFileDialog.getExistingDirectory(self, "Open model folder", start)
        if folder:
            settings().setValue("last_model_dir", str(Path(folder).parent))
            self.open_model(folder)

    def choose_model_file(self) -> None:
        start = settings().value("last_model_dir", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", start,
                                              "Model files (*.index *.keras *.h5 *.hdf5 saved_model.pb "
                                              "pipeline.config checkpoint);;All files (*)")
        if path:
            self.open_model(path)

    def _model_opened(self, path: Path) -> None:
        self.setWindowTitle(f"detscope — {path.name}")
        self.model_label.setText(f"<b>{path.name}</b> — reading…")
        self.model_label.setToolTip(str(path))
        self.tree.set_root(None)
        self.details.show_node(None)
        self.problems.clear()
        self.problems.set_report(None, "loading…")
        self._show_picker(False)

    def _inventory_ready(self, inv) -> None:
        node = self.tree.current_node()
        keep = (node.path, node.key) if node is not None else None
        self.tree.set_root(inv.root)
        params, nbytes = inv.root.total()
        from .panels.model_tree import fmt_bytes

        kind = inv.kind.replace("_", " ")
        size = f", {params:,} parameters, {fmt_bytes(nbytes)}" if params else ""
        self.model_label.setText(f"<b>{inv.folder.path.name}</b> — {kind}{size}")
        self.problems.set_findings(self.session.findings())
        self._fill_picker(inv)
        self.image_panel.set_classes(self.session.class_names())
        if keep is not None:     # the same row again (by key when another checkpoint renamed its group)
            found = self.tree.model.find_path(keep[0]) or (self.tree.model.find_key(keep[1]) if keep[1] else None)
            if found is not None:
                self.tree.select_node(found)

    def _fill_picker(self, inv) -> None:
        numbered = [c for c in inv.checkpoints if c.number is not None]
        self.checkpoints.blockSignals(True)
        self.checkpoints.clear()
        for c in numbered:
            step = f" · step {c.step:,}" if c.step is not None else ""
            self.checkpoints.addItem(f"{c.name}{step}", c.name)
        current = inv.checkpoint.name if inv.checkpoint is not None else None
        i = self.checkpoints.findData(current)
        if i >= 0:
            self.checkpoints.setCurrentIndex(i)
        self.checkpoints.blockSignals(False)
        self._show_picker(len(numbered) > 0)
        self.checkpoints.setEnabled(len(numbered) > 1)

    def _show_picker(self, on: bool) -> None:
        self.checkpoints.setVisible(on)
        self.checkpoint_label.setVisible(on)

    def _checkpoint_chosen(self, row: int) -> None:
        name = self.checkpoints.itemData(row)
        current = self.session.model.checkpoint_name if self.session.model is not None else None
        inv = self.session.inventory
        shown = inv.checkpoint.name if inv is not None and inv.checkpoint is not None else None
        if name and (name != current or name != shown):
            self.session.switch_checkpoint(name)

    def _checkpoint_changed(self, name: str) -> None:
        i = self.checkpoints.findData(name)
        if i >= 0 and i != self.checkpoints.currentIndex():
            self.checkpoints.blockSignals(True)
            self.checkpoints.setCurrentIndex(i)
            self.checkpoints.blockSignals(False)

    def _model_ready(self, _model) -> None:
        self.problems.set_findings(self.session.findings())
        self.image_panel.set_classes(self.session.class_names())

    def _report_changed(self, report) -> None:
        if report is None:
            self.problems.set_report(None, "the model was loaded as it is (no checkpoint restored)")
        else:
            self.problems.set_report(report)

    def cancel_work(self) -> None:
        if self.isFullScreen():
            self.toggle_full_screen()
            return
        self.task_status.cancel_current()

    # --- kept in the settings -----------------------------------------------------------------
    def _add_recent(self, path: Path) -> None:
        self.recent.add(path)

    def _filter_changed(self) -> None:
        settings().setValue("threshold", self.image_panel.threshold)

    # --- locating what a problem concerns -------------------------------------------------------
    def locate(self, payload) -> None:
        """Select the tree node a problems row concerns: a finding (the inventory says which node), or a
        restore-report row's ``("key", key)``."""
        model = self.tree.model
        inv = self.session.inventory
        if isinstance(payload, tuple) and payload and payload[0] == "key":
            node = model.find_key(payload[1]) or model.find_path(payload[1])
        else:
            shown = inv is not None and model.root is not None and inv.root is model.root
            node = inv.node_for(payload) if shown else None
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
            self.open_model(request.model)
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
            for dock in (self.tree_dock, self.details_dock, self.problems_dock):
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

    def _restore_settings(self) -> None:
        s = settings()
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if state is not None and self.restoreState(state):
            self._layout_pending = False
        threshold = s.value("threshold")
        if threshold is not None:
            try:
                self.image_panel.set_threshold(float(threshold))
            except (TypeError, ValueError):
                log.debug("ignoring a stored threshold of %r", threshold)

    def closeEvent(self, event) -> None:
        """Stop the source, cancel what runs, and let the engine go without waiting for it."""
        if self.isFullScreen():
            self.toggle_full_screen()
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.live.stop()
        self.browser.cancel()
        self.bridge.cancel_all()                   # whatever the user could cancel, the close cancels
        self.bridge.close()
        # Cancel the load or restore (running work stops at its next check) and queue the model's release,
        # so TensorFlow objects are freed on the engine thread, then let the engine finish on its own.
        self.session.close_model()
        self.engine.shutdown(wait=False, cancel_pending=False)
        self.pool.shutdown(wait=False, cancel_futures=True)

