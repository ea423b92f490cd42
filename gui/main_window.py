"""The main window: menus, docks and the wiring between the panels, the session and the engine.

Nothing here computes: the session reads and loads, the browser and the live
controller feed the image panel, the panels show. The window only connects them
and asks the user where things are and where things go.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QInputDialog, QLabel, \
    QMainWindow, QVBoxLayout, QWidget

from detscope.core.runtime.engine import Engine
from detscope.core.base.errors import USER_ERRORS

from .qt import style
from .controllers.browser import ImageBrowser
from .panels.details_panel import DetailsPanel
from .qt.bridge import Bridge, one_line
from .panels.image_panel import ImagePanel
from .controllers.live import LiveController
from .panels.model_tree import ModelTreePanel
from .panels.problems_panel import ProblemsPanel
from .controllers.session import ModelSession
from .panels.status import TaskStatus

log = logging.getLogger("detscope.gui")
MAX_RECENT = 10
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv)"


def settings() -> QSettings:
    """detscope's settings, in the default format (tests point that at a temporary folder)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, "detscope", "detscope")


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

        self._make_actions()
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

    def _action(self, menu, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)      # shortcuts work while the menu bar is hidden (full screen)
        return action

    def _make_actions(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "Open &model folder…", self.choose_model_folder, QKeySequence.StandardKey.Open)
        self._action(m, "Open model &file (checkpoint .index, .keras, .h5)…", self.choose_model_file)
        self.recent_menu = m.addMenu("Recent models")
        m.addSeparator()
        self._action(m, "Open &images…", self.choose_images, "Ctrl+I")
        self._action(m, "Open image f&older…", self.choose_image_folder, "Ctrl+Shift+O")
        m.addSeparator()
        self.save_action = self._action(m, "&Save annotated image…", self.save_annotated,
                                        QKeySequence.StandardKey.Save)
        self.copy_action = self._action(m, "&Copy annotated image", self.copy_annotated, "Ctrl+Shift+C")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        m = bar.addMenu("&Image")
        self._action(m, "&Next image", lambda: self.browser.step(1), [QKeySequence("PgDown"), QKeySequence("N")])
        self._action(m, "&Previous image", lambda: self.browser.step(-1), [QKeySequence("PgUp"), QKeySequence("P")])
        self._action(m, "&First image", lambda: self.browser.go(0), "Home")
        self._action(m, "&Last image", lambda: self.browser.go(len(self.browser.paths) - 1), "End")
        m.addSeparator()
        self.labels_action = self._action(m, "Show &labels", self.image_panel.labels_box.setChecked, "L",
                                          checkable=True)
        self.labels_action.setChecked(True)
        self.image_panel.labels_box.toggled.connect(self.labels_action.setChecked)
        self._action(m, "Raise score threshold", lambda: self.image_panel.slider.setValue(
            self.image_panel.slider.value() + 5), "]")
        self._action(m, "Lower score threshold", lambda: self.image_panel.slider.setValue(
            self.image_panel.slider.value() - 5), "[")

        m = bar.addMenu("&Source")
        self._action(m, "&Camera…", self.choose_camera, "Ctrl+K", tip="Capture from a camera by its index")
        self._action(m, "&Video file…", self.choose_video, "Ctrl+Shift+V")
        self._action(m, "Stream &URL…", self.choose_stream, "Ctrl+U")
        m.addSeparator()
        self.pause_action = self._action(m, "&Pause / play", self.toggle_pause, "Space")
        self._action(m, "Step &forward", lambda: self._step(1), ".")
        self._action(m, "Step &back (files)", lambda: self._step(-1), ",")
        self._action(m, "&Snapshot", self.snapshot, "Ctrl+Shift+S",
                     tip="Save the frame and its detections (image + JSON) to the snapshot folder")
        self._action(m, "Snapshot f&older…", self.choose_snapshot_folder)
        self.hold_action = self._action(m, "&Hold frames for their boxes", self.live.set_hold_frames,
                                        checkable=True, tip="Show each frame with its own detections "
                                                            "(off: smooth video, boxes from the latest result)")
        self.hold_action.setChecked(True)
        m.addSeparator()
        self.stop_source_action = self._action(m, "S&top source", self.stop_source, "Ctrl+Shift+X")

        m = bar.addMenu("&View")
        self._action(m, "&Fit image", self.image_panel.view.fit, ["F", "0"])
        self._action(m, "Zoom &in", lambda: self.image_panel.view.zoom(1.25), ["+", "="])
        self._action(m, "Zoom &out", lambda: self.image_panel.view.zoom(0.8), "-")
        self._action(m, "&Actual pixels", self.image_panel.view.actual_size, "1")
        self._action(m, "F&ull screen", self.toggle_full_screen, "F11")
        m.addSeparator()
        for dock in (self.tree_dock, self.details_dock, self.problems_dock):
            m.addAction(dock.toggleViewAction())

        m = bar.addMenu("&Model")
        self._action(m, "&Cancel loading", self.cancel_work, "Escape")
        self._action(m, "&Reload", self.reload_model, "Ctrl+R")
        self._action(m, "Restore into a &SavedModel…", self.choose_template, "Ctrl+T")
        self._action(m, "&Map outputs by hand…", self.choose_output_mapping, "Ctrl+M",
                     tip="Say which output is boxes, scores and classes when the model follows no known convention")

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
        self.live.state_changed.connect(self._live_state)
        self.live.stats_changed.connect(self.live_label.setText)

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
        loaded = self.session.loaded
        current = loaded.checkpoint.name if loaded is not None and loaded.checkpoint is not None else None
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

    def _model_ready(self, loaded) -> None:
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

    # --- recent models ------------------------------------------------------------------------
    def _recent(self) -> list[str]:
        value = settings().value("recent_models", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        text = str(path.resolve()) if path.exists() else str(path)
        items = [text] + [p for p in self._recent() if p != text]
        settings().setValue("recent_models", items[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = self._recent()
        for i, p in enumerate(items):
            action = self.recent_menu.addAction(f"&{i + 1 if i < 9 else 0} {Path(p).name}  —  {p}")
            action.triggered.connect(lambda _=False, p=p: self.open_model(p))
        if items:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").triggered.connect(self._clear_recent)
        self.recent_menu.setEnabled(bool(items))

    def _clear_recent(self) -> None:
        settings().setValue("recent_models", [])
        self._fill_recent()

    # --- images -------------------------------------------------------------------------------
    def open_images(self, paths) -> None:
        self.stop_source()
        self.browser.enabled = True
        self.browser.open(paths)

    def choose_images(self) -> None:
        start = settings().value("last_image_dir", "")
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", start, IMAGE_FILTER + ";;All files (*)")
        if files:
            settings().setValue("last_image_dir", str(Path(files[0]).parent))
            self.open_images(files)

    def choose_image_folder(self) -> None:
        start = settings().value("last_image_dir", "")
        folder = QFileDialog.getExistingDirectory(self, "Open image folder", start)
        if folder:
            settings().setValue("last_image_dir", folder)
            self.open_images([folder])

    def _filter_changed(self) -> None:
        settings().setValue("threshold", self.image_panel.threshold)

    def _default_save_dir(self) -> str:
        from detscope.core.base.paths import data_dir

        saved = settings().value("save_dir", "")
        return saved or str(data_dir() / "images")

    def save_annotated(self) -> None:
        image = self.image_panel.annotated()
        if image is None:
            self.say("no image to save")
            return
        stem = Path(self.browser.current.stem if self.browser.current and not self.live.active else "frame").name
        start = str(Path(self._default_save_dir()) / f"{stem}_detections.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save annotated image", start,
                                              "PNG (*.png);;JPEG (*.jpg *.jpeg)")
        if path:
            self.save_annotated_to(path, image)

    def save_annotated_to(self, path, image=None) -> Path | None:
        from detscope.core.media.snapshots import check_outside

        image = self.image_panel.annotated() if image is None else image
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            check_outside(path.parent, self.session.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            from .panels.image_view import to_qimage

            if not to_qimage(image).save(str(path)):
                raise OSError(f"cannot write {path.name} (is the folder writable?)")
        except USER_ERRORS as exc:
            self._errored(one_line(exc))
            return None
        settings().setValue("save_dir", str(path.parent))
        self.say(f"saved {path}")
        return path

    def copy_annotated(self) -> None:
        image = self.image_panel.annotated()
        if image is None:
            self.say("no image to copy")
            return
        from .panels.image_view import to_qimage

        QGuiApplication.clipboard().setImage(to_qimage(image))
        self.say("annotated image copied to the clipboard")

    # --- live sources -------------------------------------------------------------------------
    def open_source(self, target) -> None:
        from detscope.core.media.sources import SourceError, VideoSource

        try:
            source = VideoSource(target)
        except SourceError as exc:
            self._errored(str(exc))
            return
        self.browser.enabled = False
        self.browser.cancel()
        self.image_panel.banner.hide()
        self.image_panel.set_live(True)
        self.live.start(source)
        self.say(f"opening {source.name}…")

    def choose_camera(self) -> None:
        last = int(settings().value("camera_index", 0))
        index, ok = QInputDialog.getInt(self, "Camera", "Camera index (0 is the first camera):", last, 0, 63)
        if ok:
            settings().setValue("camera_index", index)
            self.open_source(index)

    def choose_video(self) -> None:
        start = settings().value("last_video_dir", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open video file", start, VIDEO_FILTER + ";;All files (*)")
        if path:
            settings().setValue("last_video_dir", str(Path(path).parent))
            self.open_source(path)

    def choose_stream(self) -> None:
        last = settings().value("stream_url", "rtsp://")
        url, ok = QInputDialog.getText(self, "Stream", "Stream URL (rtsp://, http://, …):", text=last)
        if ok and url.strip():
            settings().setValue("stream_url", url.strip())
            self.open_source(url.strip())

    def stop_source(self) -> None:
        if self.live.active:
            self.live.stop()
            self.image_panel.banner.hide()
            self.image_panel.set_live(False)
            self.browser.reshow()

    def toggle_pause(self) -> None:
        if self.live.active:
            paused = self.live.toggle_pause()
            self.say("paused — . steps forward, , steps back" if paused else "playing")

    def _step(self, frames: int) -> None:
        if not self.live.active:
            self.browser.step(frames)
            return
        try:
            self.live.step(frames)
        except USER_ERRORS as exc:   # stepping back on a camera
            self.say(one_line(exc), error=True)

    def _live_state(self, state: str, error: str) -> None:
        from detscope.core.media.sources import ENDED, ERROR, OPENING, RUNNING

        source = self.live.source
        name = source.name if source is not None else "source"
        if state == ERROR:
            line = error or f"{name} failed"
            self.problems.add_message(line)
            self.say(line, error=True)
            self.image_panel.banner.show_message(line, "error", [("Retry", self._retry_source)])
        elif state == RUNNING:
            self.image_panel.banner.hide()
            self.say(f"{name}: playing — Space pauses, Ctrl+Shift+S saves a snapshot")
        elif state == OPENING:
            self.say(f"opening {name}…")
        elif state == ENDED:
            self.say(f"{name}: end of video — Space plays it again")

    def _retry_source(self) -> None:
        self.image_panel.banner.hide()
        self.live.retry()

    def snapshot_dir(self) -> Path:
        from detscope.core.base.paths import data_dir

        saved = settings().value("snapshot_dir", "")
        return Path(saved) if saved else data_dir() / "snapshots"

    def choose_snapshot_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Snapshot folder", str(self.snapshot_dir()))
        if folder:
            from detscope.core.media.snapshots import SourceError, check_outside

            try:
                check_outside(Path(folder), self.session.path)
            except SourceError as exc:
                self.say(str(exc), error=True)
                return
            settings().setValue("snapshot_dir", folder)
            self.say(f"snapshots go to {folder}")

    def snapshot(self) -> list[Path]:
        """Save what is on screen: the frame, the frame with boxes, and the shown detections as JSON."""
        from detscope.core.media.snapshots import save_snapshot

        panel = self.image_panel
        if panel.image is None:
            self.say("nothing to snapshot")
            return []
        info = {"source": panel.caption, "threshold": panel.threshold,
                "model": str(self.session.path) if self.session.path else None}
        try:
            written = save_snapshot(self.snapshot_dir(), panel.image, panel.shown, annotated=panel.annotated(),
                                    model_folder=self.session.path, info=info)
        except USER_ERRORS as exc:
            self._errored(one_line(exc))
            return []
        self.say(f"snapshot saved: {written[0]} (+ {', '.join(p.suffix for p in written[1:])})")
        return written

    # --- locating what a problem concerns -------------------------------------------------------
    def locate(self, payload) -> None:
        model = self.tree.model
        node = None
        if isinstance(payload, tuple) and payload and payload[0] == "key":
            node = model.find_key(payload[1]) or model.find_path(payload[1])
        else:
            finding = payload
            if getattr(finding, "node", None):
                node = model.find_path(finding.node) or model.find_key(finding.node)
            if node is None:
                node = self._node_named_in(getattr(finding, "message", ""))
            if node is None:
                problems = next((c for c in (model.root.children if model.root else []) if c.name == "Problems"),
                                None)
                node = next((c for c in (problems.children if problems else [])
                             if c.name == getattr(finding, "message", None)), None)
        if node is None:
            self.say("that row does not concern a node of the tree")
            return
        self.tree_dock.show()
        self.tree.select_node(node)

    def _node_named_in(self, message: str):
        """The tree node whose checkpoint key (the longest one) appears in a message."""
        if not message or self.tree.model.root is None:
            return None
        best = None
        for n in self.tree.model.root.walk():
            if n.key and n.key in message and (best is None or len(n.key) > len(best.key)):
                best = n
        return best

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
            self.open_images(request.images)
        if request.video is not None:
            self.open_source(request.video)

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
            self.image_panel.side.setVisible(True)
        else:
            self._full_screen_state = self.saveState()
            for dock in (self.tree_dock, self.details_dock, self.problems_dock):
                dock.hide()
            self.image_panel.side.setVisible(False)
            self.menuBar().setVisible(False)
            self.showFullScreen()
            self.say("full screen — F11 or Esc to leave")

    def _default_layout(self) -> None:
        """Docks in proportion to the window: the tree a third of the width, the problems a fifth of the height."""
        w, h = max(self.width(), 800), max(self.height(), 600)
        self.resizeDocks([self.tree_dock], [int(w * 0.36)], Qt.Orientation.Horizontal)
        self.resizeDocks([self.tree_dock, self.details_dock], [int(h * 0.5), int(h * 0.3)], Qt.Orientation.Vertical)
        self.resizeDocks([self.problems_dock], [int(h * 0.15)], Qt.Orientation.Vertical)
        self.image_panel.split.setSizes([int(w * 0.5), int(w * 0.14)])

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
        self._fill_recent()

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
        for task in list(self.bridge.tasks):       # whatever the user could cancel, the close cancels
            if task.cancel is not None and not task.future.done():
                task.cancel()
        self.bridge.close()
        # Cancel the load or restore (running work stops at its next check) and queue the model's release,
        # so TensorFlow objects are freed on the engine thread, then let the engine finish on its own.
        self.session.close_model()
        self.engine.shutdown(wait=False, cancel_pending=False)
        self.pool.shutdown(wait=False, cancel_futures=True)

