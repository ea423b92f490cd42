"""The image panel: the view, its score threshold and class filter, the file list and a detections table.

All filtering works on the kept ``Detections`` (``above`` / ``only``): moving the
slider or ticking a class never runs the model again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QFrame, QHBoxLayout, QHeaderView, QLabel, \
    QListWidget, QMenu, QPushButton, QSizePolicy, QSlider, QSplitter, QTableView, QToolButton, QVBoxLayout, QWidget

from ..qt import style
from .image_view import ImageView, qcolour

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = 0.5


class DetectionsTable(QAbstractTableModel):
    """The shown detections, one row each, in the overlay's order."""

    HEADERS = ("#", "Label", "Score", "Box (x0, y0, x1, y1)")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.dets = None

    def set_detections(self, dets) -> None:
        self.beginResetModel()
        self.dets = dets
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        if parent.isValid() or self.dets is None:
            return 0
        return len(self.dets)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.dets is None or not 0 <= index.row() < len(self.dets):
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return str(r + 1)
            if c == 1:
                return self.dets.labels[r]
            if c == 2:
                return f"{float(self.dets.scores[r]):.3f}"
            if c == 3:
                return ", ".join(f"{float(v):.0f}" for v in self.dets.boxes[r])
        if role == Qt.ItemDataRole.DecorationRole and c == 1:
            return qcolour(int(self.dets.class_ids[r]))
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (0, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class Banner(QFrame):
    """A one-line message across the top of the image with optional buttons (Retry, Dismiss)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.buttons = QHBoxLayout()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addLayout(self.buttons)
        self.setVisible(False)

    def show_message(self, text: str, severity: str = "error", actions: list[tuple[str, object]] = ()) -> None:
        colour = style.SEVERITY_COLOURS.get(severity, style.INFO)
        self.setStyleSheet(f"Banner {{ border: 1px solid {colour}; border-radius: 3px; }}"
                           f" QLabel {{ color: {colour}; }}")
        self.label.setText(text)
        while self.buttons.count():
            w = self.buttons.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for title, slot in list(actions) + [("Dismiss", self.hide)]:
            button = QPushButton(title, self)
            button.clicked.connect(slot)
            self.buttons.addWidget(button)
        self.setVisible(True)


class ImagePanel(QWidget):
    """Shows an image with its kept detections, filtered by score and class on the fly."""

    file_chosen = Signal(int)          # row in the file list
    filter_changed = Signal()
    labels_toggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: np.ndarray | None = None
        self.kept = None                 # every detection the model returned for this image
        self.shown = None                # what passes the threshold and class filter
        self.threshold = DEFAULT_THRESHOLD
        self.hidden_classes: set[int] = set()
        self.class_names: dict[int, str] = {}
        self.caption = ""

        self.view = ImageView(self)
        self.banner = Banner(self)

        # Controls above the image.
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(self.threshold * 100))
        self.slider.setPageStep(5)
        self.slider.setMinimumWidth(140)
        self.slider.setToolTip("Show detections scoring at least this much ([ and ] step by 0.05)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.threshold_label = QLabel(self)
        self.threshold_label.setMinimumWidth(36)
        self.classes_button = QToolButton(self)
        self.classes_button.setText("Classes")
        self.classes_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.classes_menu = QMenu(self)
        self.classes_button.setMenu(self.classes_menu)
        self.labels_box = QCheckBox("Labels", self)
        self.labels_box.setChecked(True)
        self.labels_box.setToolTip("Show label and score on each box (L)")
        self.labels_box.toggled.connect(self.view.set_labels_visible)
        self.labels_box.toggled.connect(self.labels_toggled)
        self.count_label = QLabel(self)
        self.count_label.setStyleSheet(f"color: {style.TEXT_DIM}")
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("Score ≥", self))
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.threshold_label)
        controls.addSpacing(8)
        controls.addWidget(self.classes_button)
        controls.addWidget(self.labels_box)
        controls.addSpacing(8)
        controls.addWidget(self.count_label, 2)

        # The side: files, detections, the chosen detection.
        self.files = QListWidget(self)
        self.files.setUniformItemSizes(True)
        self.files.currentRowChanged.connect(self._file_row_changed)
        self.files_title = QLabel("Images", self)
        self.table_model = DetectionsTable(self)
        self.table = QTableView(self)
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.select_detection(cur.row()))
        self.detail = QLabel(self)
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.view.box_clicked.connect(self._box_clicked)

        files_box = self.files_box = QWidget(self)
        fl = QVBoxLayout(files_box)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.files_title)
        fl.addWidget(self.files)
        dets_box = QWidget(self)
        dl = QVBoxLayout(dets_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(QLabel("Detections", self))
        dl.addWidget(self.table, 1)
        dl.addWidget(self.detail)
        self.side = QSplitter(Qt.Orientation.Vertical, self)
        self.side.addWidget(files_box)
        self.side.addWidget(dets_box)
        self.side.setStretchFactor(0, 1)
        self.side.setStretchFactor(1, 2)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.addWidget(self.view)
        self.split.addWidget(self.side)
        self.split.setStretchFactor(0, 4)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([900, 280])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.banner)
        layout.addWidget(self.split, 1)

        # The keys ([ and ], L, F, +, -) are the window's actions (gui/actions.py), which call the methods below.
        self._update_threshold_label()
        self._rebuild_class_menu()
        self._refresh()

    # --- what is shown --------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None, caption: str = "", detections=None) -> None:
        """A new picture; its detections (kept, unfiltered) when already known."""
        self.image = rgb
        self.caption = caption
        self.view.set_image(rgb)
        self.set_detections(detections)

    def set_detections(self, dets) -> None:
        self.kept = dets
        if dets is not None:
            new = {int(c): label for c, label in zip(dets.class_ids, dets.labels) if int(c) not in self.class_names}
            if new:
                self.class_names.update(new)
                self._rebuild_class_menu()
        self._refresh()

    def set_classes(self, names: dict[int, str]) -> None:
        """The model's classes (from its label map), for the class filter and multiclass scores."""
        self.class_names = dict(names)
        self.hidden_classes &= set(self.class_names)
        self._rebuild_class_menu()
        self._refresh()

    def set_threshold(self, value: float) -> None:
        self.slider.setValue(round(value * 100))

    def step_threshold(self, delta: float) -> None:
        """Raise (or lower, for a negative ``delta``) the score threshold; it stays within 0 and 1."""
        self.set_threshold(self.threshold + delta)

    def set_labels_visible(self, on: bool) -> None:
        """Label and score on each box, or the boxes alone (``labels_toggled`` follows)."""
        self.labels_box.setChecked(on)

    # --- the view, the banner and the side, for the window's actions -----------------------------
    def fit(self) -> None:
        self.view.fit()

    def zoom(self, factor: float) -> None:
        self.view.zoom(factor)

    def actual_size(self) -> None:
        self.view.actual_size()

    def show_banner(self, text: str, severity: str = "error", actions: list[tuple[str, object]] = ()) -> None:
        self.banner.show_message(text, severity, actions)

    def hide_banner(self) -> None:
        self.banner.hide()

    def set_side_visible(self, on: bool) -> None:
        """The file list and the detections beside the image (full screen hides them)."""
        self.side.setVisible(on)

    def set_side_share(self, fraction: float) -> None:
        """Give the side this fraction of the panel's width, the image the rest."""
        total = max(self.split.width(), 100)
        self.split.setSizes([round(total * (1 - fraction)), round(total * fraction)])

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        if visible:
            self.hidden_classes.discard(class_id)
        else:
            self.hidden_classes.add(class_id)
        for action in self.classes_menu.actions():
            if action.data() == class_id:
                action.setChecked(visible)
        self._refresh()

    def filtered(self, dets):
        """``dets`` as the current threshold and class filter show them."""
        if dets is None:
            return None
        out = dets.above(self.threshold)
        if self.hidden_classes:
            out = out.only(sorted({int(c) for c in out.class_ids} - self.hidden_classes))
        return out

    def annotated(self) -> np.ndarray | None:
        """The image with the shown detections drawn in (what Save and Copy produce)."""
        if self.image is None:
            return None
        if self.shown is None:
            return self.image.copy()
        from detscope.core.detect.render import draw_detections

        return draw_detections(self.image, self.shown, labels=self.labels_box.isChecked())

    def _refresh(self) -> None:
        self.shown = self.filtered(self.kept)
        self.view.set_boxes(self.shown)
        self.table_model.set_detections(self.shown)
        self.detail.clear()
        if self.kept is None:
            self.count_label.setText("" if self.image is None else "no detections yet")
        else:
            hidden = f", {len(self.hidden_classes)} classes hidden" if self.hidden_classes else ""
            self.count_label.setText(f"{len(self.shown)} of {len(self.kept)} detections shown{hidden}")
        self.filter_changed.emit()

    # --- the controls -----------------------------------------------------------------------
    def _slider_moved(self, value: int) -> None:
        self.threshold = value / 100
        self._update_threshold_label()
        self._refresh()

    def _update_threshold_label(self) -> None:
        self.threshold_label.setText(f"{self.threshold:.2f}")

    def _rebuild_class_menu(self) -> None:
        menu = self.classes_menu
        menu.clear()
        show_all = menu.addAction("Show all")
        show_all.triggered.connect(self._show_all_classes)
        hide_all = menu.addAction("Hide all")
        hide_all.triggered.connect(self._hide_all_classes)
        menu.addSeparator()
        for cid in sorted(self.class_names):
            action = menu.addAction(f"{cid}: {self.class_names[cid]}")
            action.setCheckable(True)
            action.setChecked(cid not in self.hidden_classes)
            action.setData(cid)
            action.setIcon(_swatch(cid))
            action.toggled.connect(lambda on, c=cid: self.set_class_visible(c, on))
        self.classes_button.setEnabled(bool(self.class_names))
        hidden = len(self.hidden_classes)
        self.classes_button.setText(f"Classes ({len(self.class_names) - hidden}/{len(self.class_names)})"
                                    if self.class_names else "Classes")

    def _show_all_classes(self) -> None:
        self.hidden_classes.clear()
        self._rebuild_class_menu()
        self._refresh()

    def _hide_all_classes(self) -> None:
        self.hidden_classes = set(self.class_names)
        self._rebuild_class_menu()
        self._refresh()

    def set_live(self, on: bool) -> None:
        """A live source owns the panel: the file list gives its room to the detections."""
        self.files_box.setVisible(not on)

    # --- files ------------------------------------------------------------------------------
    def set_files(self, names: list[str], current: int = 0) -> None:
        self.files.blockSignals(True)
        self.files.clear()
        self.files.addItems(names)
        self.files.blockSignals(False)
        self.files_title.setText(f"Images ({len(names)})" if names else "Images")
        if names:
            self.files.setCurrentRow(current)

    def set_current_file(self, row: int) -> None:
        self.files.blockSignals(True)
        self.files.setCurrentRow(row)
        self.files.blockSignals(False)

    def _file_row_changed(self, row: int) -> None:
        if row >= 0:
            self.file_chosen.emit(row)

    # --- one detection ----------------------------------------------------------------------
    def _box_clicked(self, row: int) -> None:
        if row < 0:
            self.table.clearSelection()
            self.select_detection(-1)
        else:
            self.table.selectRow(row)

    def select_detection(self, row: int) -> None:
        self.view.highlight(row)
        dets = self.shown
        if dets is None or not 0 <= row < len(dets):
            self.detail.clear()
            return
        x0, y0, x1, y1 = (float(v) for v in dets.boxes[row])
        cid = int(dets.class_ids[row])
        r, g, b = qcolour(cid).getRgb()[:3]
        lines = [f"<b><span style='color: rgb({r},{g},{b})'>■</span> {dets.labels[row]}</b> "
                 f"(class {cid}) — score {float(dets.scores[row]):.3f}",
                 f"box {x0:.0f}, {y0:.0f} → {x1:.0f}, {y1:.0f} ({x1 - x0:.0f} × {y1 - y0:.0f} px)"]
        if dets.multiclass_scores is not None:
            scores = [float(v) for v in dets.multiclass_scores[row]]
            columns = list(dets.class_columns) or list(range(len(scores)))
            rows = sorted(zip(columns, scores), key=lambda cs: -cs[1])
            cells = []
            for col, score in rows:
                name = "background" if col == -1 else self.class_names.get(int(col), f"class {col}")
                width = max(1, int(score * 80))
                colour = QColor(style.TEXT_DIM) if col == -1 else qcolour(int(col))
                cells.append(f"<tr><td>{name}</td><td align='right'>{score:.3f}</td>"
                             f"<td><div style='background:{colour.name()}'>"
                             f"{'&nbsp;' * max(1, width // 6)}</div></td></tr>")
            lines.append("all class scores:<table cellspacing='2'>" + "".join(cells) + "</table>")
        self.detail.setText("<br>".join(lines))


def _swatch(class_id: int):
    from PySide6.QtGui import QIcon, QPixmap

    pix = QPixmap(12, 12)
    pix.fill(qcolour(class_id))
    return QIcon(pix)
