"""What feeds the image panel: image files (the browser) or a live source (camera, video file, stream).

The dialogs that ask for one, the hand-over between the two (a live source takes
the panel from the browser and gives it back when it stops), and what the live
controller's states mean to the user. Status lines come out as ``message``;
errors as ``failed`` (the window also lists them in the problems panel).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from detscope.core.base.errors import USER_ERRORS

from ..panels.image_panel import ImagePanel
from ..qt.bridge import one_line
from ..qt.settings import settings
from .browser import ImageBrowser
from .live import LiveController

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv)"


class Sources(QObject):
    message = Signal(str)
    failed = Signal(str)

    def __init__(self, browser: ImageBrowser, live: LiveController, panel: ImagePanel, window: QWidget):
        super().__init__(window)
        self.browser = browser
        self.live = live
        self.panel = panel
        self.window = window            # the dialogs' parent
        live.state_changed.connect(self._live_state)

    # --- image files ---------------------------------------------------------------------------
    def open_images(self, paths) -> None:
        self.stop()
        self.browser.enabled = True
        self.browser.open(paths)

    def choose_images(self) -> None:
        start = settings().value("last_image_dir", "")
        files, _ = QFileDialog.getOpenFileNames(self.window, "Open images", start, IMAGE_FILTER + ";;All files (*)")
        if files:
            settings().setValue("last_image_dir", str(Path(files[0]).parent))
            self.open_images(files)

    def choose_image_folder(self) -> None:
        start = settings().value("last_image_dir", "")
        folder = QFileDialog.getExistingDirectory(self.window, "Open image folder", start)
        if folder:
            settings().setValue("last_image_dir", folder)
            self.open_images([folder])

    # --- live sources --------------------------------------------------------------------------
    def open_source(self, target) -> None:
        """A camera index, a video file or a stream URL takes the panel from the image files."""
        from detscope.core.media.sources import SourceError, VideoSource

        try:
            source = VideoSource(target)
        except SourceError as exc:
            self.failed.emit(str(exc))
            return
        self.browser.enabled = False
        self.browser.cancel()
        self.panel.hide_banner()
        self.panel.set_live(True)
        self.live.start(source)
        self.message.emit(f"opening {source.name}…")

    def choose_camera(self) -> None:
        last = int(settings().value("camera_index", 0))
        index, ok = QInputDialog.getInt(self.window, "Camera", "Camera index (0 is the first camera):", last, 0, 63)
        if ok:
            settings().setValue("camera_index", index)
            self.open_source(index)

    def choose_video(self) -> None:
        start = settings().value("last_video_dir", "")
        path, _ = QFileDialog.getOpenFileName(self.window, "Open video file", start,
                                              VIDEO_FILTER + ";;All files (*)")
        if path:
            settings().setValue("last_video_dir", str(Path(path).parent))
            self.open_source(path)

    def choose_stream(self) -> None:
        last = settings().value("stream_url", "rtsp://")
        url, ok = QInputDialog.getText(self.window, "Stream", "Stream URL (rtsp://, http://, …):", text=last)
        if ok and url.strip():
            settings().setValue("stream_url", url.strip())
            self.open_source(url.strip())

    def stop(self) -> None:
        """Stop the live source, if one runs, and give the panel back to the image files."""
        if self.live.active:
            self.live.stop()
            self.panel.hide_banner()
            self.panel.set_live(False)
            self.browser.reshow()

    def toggle_pause(self) -> None:
        if self.live.active:
            paused = self.live.toggle_pause()
            self.message.emit("paused — . steps forward, , steps back" if paused else "playing")

    def step(self, frames: int) -> None:
        """A frame forward or back on a paused source; an image forward or back without one."""
        if not self.live.active:
            self.browser.step(frames)
            return
        try:
            self.live.step(frames)
        except USER_ERRORS as exc:   # stepping back on a camera
            self.failed.emit(one_line(exc))

    def retry(self) -> None:
        self.panel.hide_banner()
        self.live.retry()

    def _live_state(self, state: str, error: str) -> None:
        from detscope.core.media.sources import ENDED, ERROR, OPENING, RUNNING

        source = self.live.source
        name = source.name if source is not None else "source"
        if state == ERROR:
            line = error or f"{name} failed"
            self.failed.emit(line)
            self.panel.show_banner(line, "error", [("Retry", self.retry)])
        elif state == RUNNING:
            self.panel.hide_banner()
            self.message.emit(f"{name}: playing — Space pauses, Ctrl+Shift+S saves a snapshot")
        elif state == OPENING:
            self.message.emit(f"opening {name}…")
        elif state == ENDED:
            self.message.emit(f"{name}: end of video — Space plays it again")
