"""The kiosk: full screen, no menus or docks, keys only. ``detscope-gui --kiosk MODEL --source S``,
or View ▸ Kiosk from the window (which hands over its model and its source).

Keys: ``+``/``-`` threshold, Space pause, ``S`` snapshot, ``R`` start/stop recording, ``Esc`` held
for two seconds leaves. Any key shows the help line, which then fades.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .controllers.kiosk import THRESHOLD_STEP, KioskController
from .panels.kiosk_view import KioskView

LEAVE_HOLD_MS = 2000


class KioskWindow(QWidget):
    closed = Signal()

    def __init__(self, session, bridge, *, threshold: float = 0.5, every: int = 1, max_width: int | None = None,
                 parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("detscope kiosk")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.screen_view = KioskView(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.screen_view)
        self.controller = KioskController(session, self.screen_view, bridge, threshold=threshold, every=every,
                                          max_width=max_width, parent=self)
        self.controller.message.connect(lambda line: self.screen_view.status.setToolTip(line))
        self._leave = QTimer(self)
        self._leave.setSingleShot(True)
        self._leave.setInterval(LEAVE_HOLD_MS)
        self._leave.timeout.connect(self.close)

    def start(self, source) -> None:
        self.controller.start(source)

    def show_full_screen(self) -> None:
        """Full screen, also where no window manager enlarges the window (a bare X server)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.geometry())
        self.showFullScreen()

    # --- keys ----------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key, c = event.key(), self.controller
        self.screen_view.show_help()
        if event.isAutoRepeat():
            return
        if key == Qt.Key.Key_Escape:
            self._leave.start()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            c.step_threshold(THRESHOLD_STEP)
        elif key == Qt.Key.Key_Minus:
            c.step_threshold(-THRESHOLD_STEP)
        elif key == Qt.Key.Key_Space:
            c.toggle_pause()
        elif key == Qt.Key.Key_S:
            c.snapshot()
        elif key == Qt.Key.Key_R:
            c.toggle_recording()

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and not event.isAutoRepeat():
            self._leave.stop()          # let go too early: the kiosk stays

    def closeEvent(self, event) -> None:
        self.controller.stop()
        self.closed.emit()
        super().closeEvent(event)
