"""What one tree row holds: its facts and, for a value, statistics and a histogram (computed off the GUI thread)."""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QToolTip, \
    QVBoxLayout, QWidget

from ..qt import style
from ..qt.bridge import Bridge, one_line
from .model_tree import VALUE_KINDS, fmt_bytes, fmt_shape


def fmt_number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.5g}"
    return f"{value:.4e}"


class Histogram(QWidget):
    """Bars of a histogram (counts over bin edges), drawn with QPainter; hover shows a bin."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts: tuple[int, ...] = ()
        self.edges: tuple[float, ...] = ()
        self.log_scale = False
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:
        return QSize(260, 140)

    def set_data(self, counts, edges) -> None:
        self.counts, self.edges = tuple(counts), tuple(edges)
        self.update()

    def clear(self) -> None:
        self.set_data((), ())

    def _plot_rect(self) -> QRectF:
        fm = self.fontMetrics()
        return QRectF(4, 4, max(1, self.width() - 8), max(1, self.height() - fm.height() - 10))

    def _height(self, count: int, top: int) -> float:
        if count <= 0 or top <= 0:
            return 0.0
        if self.log_scale:
            return math.log10(count + 1) / math.log10(top + 1)
        return count / top

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        rect = self._plot_rect()
        painter.setPen(QPen(QColor(style.TEXT_DIM), 1))
        painter.drawLine(QPointF(rect.left(), rect.bottom()), QPointF(rect.right(), rect.bottom()))
        if not self.counts:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no histogram")
            return
        top = max(self.counts)
        width = rect.width() / len(self.counts)
        painter.setPen(Qt.PenStyle.NoPen)
        for i, count in enumerate(self.counts):
            h = self._height(count, top) * rect.height()
            if count > 0:
                h = max(h, 1.0)
            lo, hi = self.edges[i], self.edges[i + 1]
            colour = style.HISTOGRAM_ZERO if lo <= 0 <= hi and lo != hi else style.HISTOGRAM_BAR
            painter.setBrush(QColor(colour))
            painter.drawRect(QRectF(rect.left() + i * width, rect.bottom() - h, max(width - 1, 1), h))
        painter.setPen(QPen(self.palette().text().color()))
        fm = self.fontMetrics()
        y = int(rect.bottom()) + fm.ascent() + 4
        painter.drawText(int(rect.left()), y, fmt_number(self.edges[0]))
        right = fmt_number(self.edges[-1])
        painter.drawText(int(rect.right() - fm.horizontalAdvance(right)), y, right)
        scale = "log" if self.log_scale else f"max {top:,}"
        painter.drawText(int(rect.center().x() - fm.horizontalAdvance(scale) / 2), y, scale)

    def mouseMoveEvent(self, event) -> None:
        if not self.counts:
            return
        rect = self._plot_rect()
        i = int((event.position().x() - rect.left()) / rect.width() * len(self.counts))
        if 0 <= i < len(self.counts):
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"{fmt_number(self.edges[i])} … {fmt_number(self.edges[i + 1])}: "
                              f"{self.counts[i]:,} values", self)


class DetailsPanel(QWidget):
    """Facts of the selected row; statistics requested through ``request_stats(key) -> Future``."""

    def __init__(self, bridge: Bridge, request_stats: Callable[[str], Future] | None = None, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.request_stats = request_stats
        self._request = 0
        self.pending: Future | None = None
        self.node = None

        self.title = QLabel(self)
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts = QFormLayout()
        self.facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.stats_label = QLabel(self)
        self.stats_label.setTextFormat(Qt.TextFormat.RichText)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.histogram = Histogram(self)
        self.log_box = QCheckBox("log counts", self)
        self.log_box.toggled.connect(self._log_toggled)

        numbers = QVBoxLayout()
        numbers.addWidget(self.stats_label)
        numbers.addWidget(self.log_box)
        numbers.addStretch(1)
        values = QHBoxLayout()
        values.addLayout(numbers)
        values.addWidget(self.histogram, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addLayout(self.facts)
        layout.addWidget(self.message)
        layout.addLayout(values, 1)
        self.show_node(None)

    # --- showing --------------------------------------------------------------------------------
    def show_node(self, node) -> None:
        self.node = node
        self._request += 1
        self.pending = None
        while self.facts.rowCount():
            self.facts.removeRow(0)
        self.stats_label.clear()
        self.histogram.clear()
        self.histogram.setVisible(False)
        self.log_box.setVisible(False)
        self._set_message("")
        if node is None:
            self.title.setText("Nothing selected")
            self._set_message("Select a row of the model tree to see what it holds.", dim=True)
            return
        self.title.setText(node.name or "(root)")
        self._fact("Kind", node.kind)
        self._fact("Path", node.path, long=True)
        if node.key and node.key != node.path:
            self._fact("Key", node.key, long=True)
        if node.shape is not None:
            self._fact("Shape", fmt_shape(node.shape))
        if node.dtype:
            self._fact("Dtype", node.dtype)
        if node.params is not None:
            self._fact("Parameters" if node.kind in ("group", "object") else "Elements", f"{node.params:,}")
        if node.nbytes is not None:
            self._fact("Size", f"{fmt_bytes(node.nbytes)} ({node.nbytes:,} bytes)")
        if node.detail:
            self._fact("Detail", node.detail)
        if node.children:
            self._fact("Children", f"{len(node.children):,}")
        if node.kind in VALUE_KINDS and node.key and node.shape is not None and self.request_stats is not None:
            self._set_message("computing statistics…", dim=True)
            request = self._request
            try:
                future = self.request_stats(node.key)
            except RuntimeError as exc:      # the worker pool is shut down (the window is closing)
                self._set_message(str(exc), error=True)
                return
            self.pending = future
            self.bridge.watch(future, lambda stats, r=request: self._stats_ready(r, stats),
                              lambda exc, r=request: self._stats_failed(r, exc))

    def _fact(self, label: str, text: str, long: bool = False) -> None:
        if long:
            # Paths and keys have no spaces to wrap at: a read-only line scrolls and copies them whole.
            value = QLineEdit(text, self)
            value.setReadOnly(True)
            value.setFrame(False)
            value.setCursorPosition(0)
            value.setToolTip(text)
            value.setStyleSheet("background: transparent")
        else:
            value = QLabel(text, self)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
        self.facts.addRow(label, value)

    def _set_message(self, text: str, error: bool = False, dim: bool = False) -> None:
        colour = style.ERROR if error else (style.TEXT_DIM if dim else "")
        self.message.setStyleSheet(f"color: {colour}" if colour else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _stats_ready(self, request: int, stats) -> None:
        if request != self._request:
            return                                   # the user moved on; an older answer is dropped
        self.pending = None
        self._set_message("")
        rows = []
        if stats.kind == "string":
            rows = [("strings", fmt_number(stats.count)), ("shortest", fmt_number(stats.min_length)),
                    ("longest", fmt_number(stats.max_length)), ("mean length", fmt_number(stats.mean_length))]
        else:
            rows = [("min", fmt_number(stats.min)), ("max", fmt_number(stats.max)),
                    ("mean", fmt_number(stats.mean)), ("std", fmt_number(stats.std)),
                    ("zeros", f"{(stats.zero_fraction or 0) * 100:.1f} %")]
            if stats.nan_count:
                rows.append(("NaN", f"<span style='color:{style.ERROR}'>{stats.nan_count:,}</span>"))
            if stats.inf_count:
                rows.append(("Inf", f"<span style='color:{style.ERROR}'>{stats.inf_count:,}</span>"))
            if stats.kind == "complex":
                rows.insert(0, ("of", "|z|"))
        cells = "".join(f"<tr><td style='color:{style.TEXT_DIM}; padding-right:8px'>{k}</td>"
                        f"<td style='padding-right:16px'>{v}</td></tr>" for k, v in rows)
        self.stats_label.setText(f"<table>{cells}</table>")
        if stats.histogram:
            self.histogram.set_data(stats.histogram, stats.bin_edges)
            self.histogram.setVisible(True)
            self.log_box.setVisible(True)

    def _stats_failed(self, request: int, exc: BaseException) -> None:
        if request != self._request:
            return
        self.pending = None
        self._set_message(one_line(exc), error=True)

    def _log_toggled(self, on: bool) -> None:
        self.histogram.log_scale = on
        self.histogram.update()
