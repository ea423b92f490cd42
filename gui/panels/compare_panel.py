"""The comparison dock: which model is B, its own score threshold, and where A and B disagree on the image shown.

Rows, disagreements first: class flips (both saw an object there, of other classes), boxes only A found, boxes
only B found, then the matched pairs with their score difference, largest first. A pair's two boxes are matched
as ``detscope review compare`` and the eval matching pair boxes (greedy, best score first, at the IoU given).
Clicking a row says which detection of A it concerns (``row_chosen``), so the window can show it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, \
    QVBoxLayout, QWidget

from ..qt import style
from .compare_overlay import B_COLOUR

HEADERS = ("What", "A", "B", "IoU", "Score B − A")
FLIP, ONLY_A, ONLY_B, PAIR = "class flip", "only in A", "only in B", "pair"
KIND_COLOURS = {FLIP: style.ERROR, ONLY_A: style.WARNING, ONLY_B: B_COLOUR.name()}


class ComparePanel(QWidget):
    open_requested = Signal()
    close_requested = Signal()
    allow_partial_requested = Signal()
    settings_changed = Signal()            # B's threshold or the IoU
    row_chosen = Signal(int)               # a row of A's detections (all of them, before the threshold); -1 none

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model_label = QLabel("No second model — Model ▸ Open second model (B)…", self)
        self.model_label.setWordWrap(True)
        self.open_button = QPushButton("Open B…", self)
        self.open_button.clicked.connect(self.open_requested)
        self.close_button = QPushButton("Close B", self)
        self.close_button.clicked.connect(self.close_requested)
        self.anyway_button = QPushButton("Run B anyway", self)
        self.anyway_button.setToolTip("B was not fully restored: show its detections all the same, marked as such")
        self.anyway_button.clicked.connect(self.allow_partial_requested)
        self.anyway_button.hide()
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(0.5)
        self.threshold.setToolTip("B's own score threshold (A's is the slider under the image)")
        self.threshold.valueChanged.connect(lambda _v: self.settings_changed.emit())
        self.iou = QDoubleSpinBox(self)
        self.iou.setRange(0.05, 0.95)
        self.iou.setSingleStep(0.05)
        self.iou.setDecimals(2)
        self.iou.setValue(0.5)
        self.iou.setToolTip("How much a box of A and a box of B must overlap to be the same object")
        self.iou.valueChanged.connect(lambda _v: self.settings_changed.emit())
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.list = QTreeWidget(self)
        self.list.setHeaderLabels(HEADERS)
        self.list.setRootIsDecorated(False)
        self.list.setAlternatingRowColors(True)
        self.list.setUniformRowHeights(True)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.header().setStretchLastSection(False)
        for col, width in enumerate((90, 150, 150, 55, 95)):
            self.list.header().resizeSection(col, width)

        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addWidget(self.anyway_button)
        top.addWidget(self.open_button)
        top.addWidget(self.close_button)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("B threshold", self))
        controls.addWidget(self.threshold)
        controls.addSpacing(12)
        controls.addWidget(QLabel("IoU", self))
        controls.addWidget(self.iou)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        self.set_model(None)

    # --- what is shown ---------------------------------------------------------------------------
    @property
    def threshold_b(self) -> float:
        return float(self.threshold.value())

    @property
    def iou_value(self) -> float:
        return float(self.iou.value())

    def set_model(self, text: str | None, tooltip: str = "") -> None:
        """Which model is B (None: none is open)."""
        self.model_label.setText(text or "No second model — Model ▸ Open second model (B)…")
        self.model_label.setToolTip(tooltip)
        self.close_button.setEnabled(text is not None)
        if text is None:
            self.anyway_button.hide()
            self.show_rows(None, "")

    def show_rows(self, rows: list[tuple[str, str, str, float | None, float | None, int]] | None,
                  summary: str) -> None:
        """``rows``: (kind, A's text, B's text, IoU, score B − A, row of A or -1), disagreements first."""
        self.summary.setText(summary)
        self.list.clear()
        self.rows = rows or []
        for kind, a, b, iou, delta, _row in self.rows:
            item = QTreeWidgetItem([kind, a, b, "" if iou is None else f"{iou:.2f}",
                                    "" if delta is None else f"{delta:+.3f}"])
            colour = KIND_COLOURS.get(kind)
            if colour is not None:
                item.setForeground(0, QBrush(QColor(colour)))
            for col in (3, 4):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.list.addTopLevelItem(item)

    def _current_changed(self, current, _previous) -> None:
        if current is None:
            return
        i = self.list.indexOfTopLevelItem(current)
        if 0 <= i < len(self.rows):
            self.row_chosen.emit(self.rows[i][5])
