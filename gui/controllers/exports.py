"""What leaves the window: the annotated image saved or copied, and snapshots of the frame on screen.

Everything goes where the user says (by default under detscope's data folder) and
never into the open model folder. Lines for the status bar come out as ``message``,
errors as ``failed`` (the window shows those in the problems panel too).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QWidget

from detscope.core.base.errors import USER_ERRORS

from ..panels.image_panel import ImagePanel
from ..qt.bridge import one_line
from ..qt.settings import settings
from .browser import ImageBrowser
from .live import LiveController
from .session import ModelSession


class Exports(QObject):
    message = Signal(str)
    failed = Signal(str)

    def __init__(self, session: ModelSession, panel: ImagePanel, browser: ImageBrowser, live: LiveController,
                 window: QWidget):
        super().__init__(window)
        self.session = session
        self.panel = panel
        self.browser = browser
        self.live = live
        self.window = window            # the dialogs' parent

    # --- save and copy -------------------------------------------------------------------------
    def default_save_dir(self) -> str:
        from detscope.core.base.paths import data_dir

        saved = settings().value("save_dir", "")
        return saved or str(data_dir() / "images")

    def save_annotated(self) -> None:
        """Ask where, then save the image with the shown detections drawn in."""
        image = self.panel.annotated()
        if image is None:
            self.message.emit("no image to save")
            return
        current = self.browser.current
        stem = Path(current.stem if current is not None and not self.live.active else "frame").name
        start = str(Path(self.default_save_dir()) / f"{stem}_detections.png")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save annotated image", start,
                                              "PNG (*.png);;JPEG (*.jpg *.jpeg)")
        if path:
            self.save_to(path, image)

    def save_to(self, path, image=None) -> Path | None:
        """Write the annotated image (the one on screen unless given); None, with a line, when it cannot be."""
        from detscope.core.media.snapshots import check_outside

        from ..panels.image_view import to_qimage

        image = self.panel.annotated() if image is None else image
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            check_outside(path.parent, self.session.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not to_qimage(image).save(str(path)):
                raise OSError(f"cannot write {path.name} (is the folder writable?)")
        except USER_ERRORS as exc:
            self.failed.emit(one_line(exc))
            return None
        settings().setValue("save_dir", str(path.parent))
        self.message.emit(f"saved {path}")
        return path

    def copy(self) -> None:
        image = self.panel.annotated()
        if image is None:
            self.message.emit("no image to copy")
            return
        from ..panels.image_view import to_qimage

        QGuiApplication.clipboard().setImage(to_qimage(image))
        self.message.emit("annotated image copied to the clipboard")

    # --- snapshots -----------------------------------------------------------------------------
    def snapshot_dir(self) -> Path:
        from detscope.core.base.paths import data_dir

        saved = settings().value("snapshot_dir", "")
        return Path(saved) if saved else data_dir() / "snapshots"

    def choose_snapshot_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Snapshot folder", str(self.snapshot_dir()))
        if not folder:
            return
        from detscope.core.media.snapshots import SourceError, check_outside

        try:
            check_outside(Path(folder), self.session.path)
        except SourceError as exc:
            self.failed.emit(str(exc))
            return
        settings().setValue("snapshot_dir", folder)
        self.message.emit(f"snapshots go to {folder}")

    def snapshot(self) -> list[Path]:
        """Save what is on screen: the frame, the frame with boxes, and the shown detections as JSON."""
        from detscope.core.media.snapshots import save_snapshot

        panel = self.panel
        if panel.image is None:
            self.message.emit("nothing to snapshot")
            return []
        info = {"source": panel.caption, "threshold": panel.threshold,
                "model": str(self.session.path) if self.session.path else None}
        try:
            written = save_snapshot(self.snapshot_dir(), panel.image, panel.shown, annotated=panel.annotated(),
                                    model_folder=self.session.path, info=info)
        except USER_ERRORS as exc:
            self.failed.emit(one_line(exc))
            return []
        self.message.emit(f"snapshot saved: {written[0]} (+ {', '.join(p.suffix for p in written[1:])})")
        return written
