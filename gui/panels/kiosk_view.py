"""What a kiosk screen shows: the live image with large boxes, and big text around it.

Readable from three metres: boxes four pixels wide, labels and counts in large type, the
model's name and checkpoint on top, frames per second and latency below, a notice in the
middle when something is wrong (the camera is gone, the model is warming up, the model was
not fully restored), and a help line that appears on any key and fades.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGraphicsOpacityEffect, QLabel, QVBoxLayout, QWidget

from .image_view import ImageView

HELP = "+ / −  threshold   ·   Space  pause   ·   S  snapshot   ·   R  record   ·   hold Esc 2 s  to leave"
HELP_SHOWN_MS = 4000
FADE_STEPS = 20


def _big(parent, size: float, bold: bool = False) -> QLabel:
    label = QLabel(parent)
    font = QFont(label.font())
    font.setPointSizeF(size)
    font.setBold(bold)
    label.setFont(font)
    label.setStyleSheet("color: white; background: rgba(0, 0, 0, 150); padding: 6px 12px;")
    return label


class KioskView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setStyleSheet("background: black;")
        self.view = ImageView(self)
        self.view.box_width = 4.0
        self.view.label_font.setPointSizeF(20)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)     # keys belong to the kiosk, not to zooming
        self.view.setDragMode(ImageView.DragMode.NoDrag)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.title = _big(self, 22, bold=True)
        self.counts = _big(self, 20)
        self.counts.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status = _big(self, 16)
        self.notice = _big(self, 30, bold=True)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.help = _big(self, 16)
        self.help.setText(HELP)
        self.help.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._help_opacity = QGraphicsOpacityEffect(self.help)
        self.help.setGraphicsEffect(self._help_opacity)
        self.help.hide()
        self._fade = QTimer(self)
        self._fade.setInterval(40)
        self._fade.timeout.connect(self._fade_step)
        self._help_until = QTimer(self)
        self._help_until.setSingleShot(True)
        self._help_until.timeout.connect(self._fade.start)
        self.dimmed = False

    # --- what is shown ----------------------------------------------------------------------
    def show_frame(self, image, dets) -> None:
        self.view.set_image(image)
        self.view.set_boxes(dets)
        self.set_dimmed(False)

    def show_boxes(self, dets) -> None:
        self.view.set_boxes(dets)

    def set_dimmed(self, on: bool) -> None:
        """The last frame stays, dimmed, while the source is gone."""
        if on != self.dimmed:
            self.dimmed = on
            self.view.pixmap_item.setOpacity(0.3 if on else 1.0)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self._place()

    def show_help(self) -> None:
        self._fade.stop()
        self._help_opacity.setOpacity(1.0)
        self.help.show()
        self._place()
        self._help_until.start(HELP_SHOWN_MS)

    def _fade_step(self) -> None:
        opacity = self._help_opacity.opacity() - 1.0 / FADE_STEPS
        if opacity <= 0:
            self._fade.stop()
            self.help.hide()
        else:
            self._help_opacity.setOpacity(opacity)

    # --- placing the text over the image ---------------------------------------------------
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        w, h = self.width(), self.height()
        for label in (self.title, self.counts, self.status, self.notice, self.help):
            label.adjustSize()
        self.title.move(16, 16)
        self.counts.move(max(16, w - self.counts.width() - 16), 16)
        self.status.move(16, h - self.status.height() - 16)
        self.help.move((w - self.help.width()) // 2, h - self.help.height() - self.status.height() - 32)
        self.notice.setMaximumWidth(max(200, int(w * 0.8)))
        self.notice.adjustSize()
        self.notice.move((w - self.notice.width()) // 2, (h - self.notice.height()) // 2)
        for label in (self.title, self.counts, self.status, self.notice, self.help):
            label.raise_()

    def set_texts(self, title: str, counts: str, status: str) -> None:
        changed = (title, counts, status) != (self.title.text(), self.counts.text(), self.status.text())
        if changed:
            self.title.setText(title)
            self.counts.setText(counts)
            self.status.setText(status)
            self._place()
