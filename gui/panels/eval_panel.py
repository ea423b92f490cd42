"""The evaluation panel: how the model does against the ground truth, at the image panel's score threshold.

Metrics per class (a table), the confusion matrix (click a cell: the image list shows those images), the
error types (click one: those images), PR and F1-vs-threshold curves painted here, a button that sets the
best-F1 threshold, and the image list's filter (error type, class, order). Everything at a threshold is
counted by core's :class:`~detscope.core.eval.evaluator.Evaluator` as the slider moves; nothing here runs
the model or matches boxes. The panel only shows and asks: which images the list holds is the
evaluation controller's business (``gui/controllers/evaluation.py``).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel, \
    QProgressBar, QPushButton, QSizePolicy, QSplitter, QTableView, QVBoxLayout, QWidget

from ..qt import style
from .image_view import qcolour

ALL = "all"
WITH_ERRORS = "errors"
CELL = "cell"
# The error types as the list offers them (core's names), most common first, with what each one means.
ERROR_ROWS = (
    ("missed", "an object nothing found"),
    ("background", "a detection on no object (IoU < 0.1 with every box)"),
    ("localisation", "right class, box off (0.1 ≤ IoU < the match IoU)"),
    ("classification", "right place, wrong class"),
    ("both", "wrong class and box off"),
    ("duplicate", "a second detection of a box already found"),
)
SORT_ERRORS, SORT_FILES = "errors", "files"
ALL_COLOUR = None          # every class together: drawn in the palette's text colour, dashed


def _f(v, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(float(v)) or float(v) < 0 else f"{float(v):.{digits}f}"


def _right(role):
    return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if role else None


class _Table(QAbstractTableModel):
    """A read-only table of display strings, with per-cell extras (colour, tooltip, alignment)."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple] = []
        self.headers = list(self.HEADERS)

    def set_rows(self, rows: list[tuple], headers: list[str] | None = None) -> None:
        headers = list(headers) if headers is not None else self.headers
        if len(rows) == len(self.rows) and headers == self.headers and rows:
            changed = [i for i, (a, b) in enumerate(zip(rows, self.rows)) if a != b]
            self.rows = rows
            if changed:             # only those rows repaint (a slider step changes a few numbers)
                self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], self.columnCount() - 1))
            return
        self.beginResetModel()
        self.rows, self.headers = rows, headers
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.headers):
            return self.headers[section]
        return None

    def cell(self, row: int, column: int, role: int):
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.rows) \
                or not 0 <= index.column() < len(self.headers):
            return None
        return self.cell(index.row(), index.column(), role)


class ClassMetrics(_Table):
    """One row per class, then every class together: objects, TP/FP/FN and P/R/F1 at the threshold, APs."""

    HEADERS = ("Class", "Objects", "TP", "FP", "FN", "Precision", "Recall", "F1", "AP", "AP50", "VOC AP50",
               "Best F1 @ score")
    BEST = len(HEADERS) - 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_ids: list[int | None] = []      # None: every class
        self.best: list[float | None] = []          # each row's best-F1 threshold

    def update_from(self, ev, counts, iou: float) -> None:
        from detscope.core.eval.evaluator import Counts

        coco, voc, best = ev.coco(), ev.voc(), ev.best_thresholds(iou)
        p, r, f1 = Counts.prf(counts.tp, counts.fp, counts.fn)
        rows, ids, bests = [], [], []
        for k, cid in enumerate(int(c) for c in ev.class_ids):
            pc = coco.per_class.get(cid, {}) if coco else {}
            b = best.get(cid, {})
            rows.append((ev.label(cid), int(ev.objects[k]), int(counts.tp[k]), int(counts.fp[k]), int(counts.fn[k]),
                         _f(p[k]), _f(r[k]), _f(f1[k]), _f(pc.get("AP")), _f(pc.get("AP50")),
                         _f(voc.per_class.get(cid)),
                         f"{_f(b['f1'])} @ {b['threshold']:.2f}" if b else "–"))
            ids.append(cid)
            bests.append(b.get("threshold"))
        tp, fp, fn = counts.total
        pa, ra, fa = Counts.prf(tp, fp, fn)
        b = best.get(None, {})
        stats = coco.stats if coco else {}
        rows.append(("All classes", int(ev.objects.sum()), tp, fp, fn, _f(pa), _f(ra), _f(fa), _f(stats.get("mAP")),
                     _f(stats.get("AP50")), _f(voc.mAP), f"{_f(b['f1'])} @ {b['threshold']:.2f}" if b else "–"))
        ids.append(None)
        bests.append(b.get("threshold"))
        self.class_ids, self.best = ids, bests
        self.set_rows(rows)

    def cell(self, row: int, column: int, role: int):
        value = self.rows[row][column]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return _right(True)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            cid = self.class_ids[row]
            return qcolour(cid) if cid is not None else None
        if role == Qt.ItemDataRole.FontRole and self.class_ids[row] is None:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole and column == self.BEST and self.best[row] is not None:
            return "double-click: use this threshold"
        return None


class ConfusionMatrix(_Table):
    """Rows: the true class, then background (detections on nothing); columns: the predicted class, then
    background (objects nothing found). Cells are shaded by their share of the row."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.labels: list[str] = []
        self.matrix = None

    def update_from(self, conf) -> None:
        self.labels = list(conf.labels)
        self.matrix = conf.matrix
        self.set_rows([tuple(int(v) for v in row) for row in conf.matrix], headers=self.labels)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.labels):
            return self.labels[section]
        if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(self.labels):
            return ("predicted " if orientation == Qt.Orientation.Horizontal else "true ") + self.labels[section]
        return None

    def cell(self, row: int, column: int, role: int):
        n = self.rows[row][column]
        bg = len(self.labels) - 1
        if role == Qt.ItemDataRole.DisplayRole:
            return str(n) if n else ""
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole and n:
            share = n / max(1, sum(self.rows[row]))
            base = QColor(52, 199, 89) if row == column and row != bg else QColor(255, 69, 58)
            base.setAlpha(int(40 + 170 * share))
            return base
        if role == Qt.ItemDataRole.ToolTipRole:
            true, pred = self.labels[row], self.labels[column]
            if row == bg:
                what = f"{n} detections of {pred} on no object"
            elif column == bg:
                what = f"{n} {true} objects nothing found"
            elif row == column:
                what = f"{n} {true} objects found"
            else:
                what = f"{n} {true} objects taken for {pred}"
            return what + ("; click: list these images" if n else "")
        return None


class ErrorTypes(_Table):
    HEADERS = ("Error", "Count", "What it is")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.kinds = [k for k, _ in ERROR_ROWS]

    def update_from(self, counts: dict[str, int]) -> None:
        self.set_rows([(kind, int(counts.get(kind, 0)), about) for kind, about in ERROR_ROWS])

    def cell(self, row: int, column: int, role: int):
        if role == Qt.ItemDataRole.DisplayRole:
            return str(self.rows[row][column])
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return _right(True)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{self.rows[row][2]}; click: list the images with it"
        return None


class CurveChart(QWidget):
    """Per class: precision against recall (``kind="pr"``) or F1 against the score threshold (``"f1"``),
    painted; the operating point at the current threshold is a dot (a vertical line on the F1 chart)."""

    def __init__(self, kind: str, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.curves: list[tuple[str, QColor, object]] = []     # (name, colour, core Curve)
        self._paths: list[QPainterPath] = []
        self._background: QPixmap | None = None
        self.threshold = 0.5
        self.setMinimumSize(QSize(200, 150))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_curves(self, curves: list[tuple[str, QColor, object]]) -> None:
        """``(name, colour or None for the text colour, core Curve)``; each is drawn as a path in a unit
        square, made here once (a threshold change only moves the dots)."""
        if [(n, id(c)) for n, _, c in curves] == [(n, id(c)) for n, _, c in self.curves]:
            return
        self.curves = curves
        self._paths = [self._unit_path(curve) for _, _, curve in curves]
        self._background = None
        self.update()

    def _unit_path(self, curve) -> QPainterPath:
        """The curve in a unit square, y down (x: recall or threshold; 1 - y: precision or F1)."""
        xs, ys = self._xy(curve)
        path = QPainterPath()
        if not len(xs):
            return path
        step = max(1, len(xs) // 400)
        if self.kind == "pr":              # from the best score down: start it at recall 0
            path.moveTo(0.0, 1 - float(ys[0]))
            path.lineTo(float(xs[0]), 1 - float(ys[0]))
        else:
            path.moveTo(float(xs[0]), 1 - float(ys[0]))
        for x, y in zip(xs[::step], ys[::step]):
            path.lineTo(float(x), 1 - float(y))
        path.lineTo(float(xs[-1]), 1 - float(ys[-1]))
        return path

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self.update()

    def _legend_lines(self, fm) -> int:
        lines, x, left = 1, 0, fm.horizontalAdvance("0.0") + 10
        for name, _, _ in self.curves:
            w = 16 + fm.horizontalAdvance(name) + 10
            if left + x + w > self.width() and x > 0:
                lines, x = lines + 1, 0
            x += w
        return lines

    def _xy(self, curve):
        if self.kind == "pr":
            return curve.recall, curve.precision
        return curve.scores, curve.f1

    def _plot(self, fm) -> QRectF:
        left, right, top, bottom = fm.horizontalAdvance("0.0") + 10, 8, fm.height() + 4, fm.height() + 8
        legend = self._legend_lines(fm) * fm.height() + 2
        return QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom - legend))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._background = None

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        self._background = None          # palette or font

    def paintEvent(self, event) -> None:
        """The grid, the curves and the legend come from a pixmap made once per size and set of curves;
        only the threshold's marks are painted each time the slider moves."""
        ratio = self.devicePixelRatioF()
        if self._background is None:
            pix = QPixmap(int(self.width() * ratio), int(self.height() * ratio))
            pix.setDevicePixelRatio(ratio)
            pix.fill(Qt.GlobalColor.transparent)
            bp = QPainter(pix)
            bp.setRenderHint(QPainter.RenderHint.Antialiasing)
            bp.setFont(self.font())
            self._paint_background(bp)
            bp.end()
            self._background = pix
        p = QPainter(self)
        p.drawPixmap(0, 0, self._background)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot = self._plot(p.fontMetrics())

        def at(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + x * plot.width(), plot.bottom() - y * plot.height())

        if self.kind == "f1":
            p.setPen(QPen(QColor(style.TEXT_DIM), 1, Qt.PenStyle.DashLine))
            p.drawLine(at(self.threshold, 0), at(self.threshold, 1))
        ink = self.palette().windowText().color()
        for name, colour, curve in self.curves:
            xs, ys = self._xy(curve)
            i = int((curve.scores >= self.threshold).sum()) - 1      # the last score kept
            if i >= 0:
                p.setBrush(colour or ink)
                p.setPen(QPen(QColor(0, 0, 0), 1))
                p.drawEllipse(at(float(xs[i]), float(ys[i])), 3.5, 3.5)
        p.end()

    def _paint_background(self, p: QPainter) -> None:
        fm = p.fontMetrics()
        plot = self._plot(fm)
        left, bottom = plot.left(), fm.height() + 8
        text = QColor(style.TEXT_DIM)
        ink = self.palette().windowText().color()
        p.setPen(ink)
        title = "Precision / recall" if self.kind == "pr" else "F1 / score threshold"
        p.drawText(QPointF(left, fm.ascent() + 1), title)

        def at(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + x * plot.width(), plot.bottom() - y * plot.height())

        grid = QPen(QColor(128, 128, 128, 70), 1)
        for i in range(6):
            v = i / 5
            p.setPen(grid)
            p.drawLine(at(v, 0), at(v, 1))
            p.drawLine(at(0, v), at(1, v))
            p.setPen(text)
            p.drawText(QRectF(0, at(0, v).y() - fm.height() / 2, left - 4, fm.height()),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), f"{v:.1f}")
            p.drawText(QRectF(at(v, 0).x() - 20, plot.bottom() + 2, 40, fm.height()),
                       int(Qt.AlignmentFlag.AlignCenter), f"{v:.1f}")
        if not self.curves:
            p.setPen(text)
            p.drawText(plot, int(Qt.AlignmentFlag.AlignCenter), "evaluate to see the curves")
        for (name, colour, _), path in zip(self.curves, self._paths):
            pen = QPen(colour or ink, 2.0 if name == "All classes" else 1.5)
            pen.setCosmetic(True)
            if name == "All classes":
                pen.setStyle(Qt.PenStyle.DashLine)
            p.save()
            p.translate(plot.topLeft())
            p.scale(plot.width(), plot.height())
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            p.restore()
        # the legend, on as many lines as it takes
        x, y = left, plot.bottom() + bottom + fm.ascent()
        for name, colour, _ in self.curves:
            w = 16 + fm.horizontalAdvance(name) + 10
            if x + w > self.width() and x > left:
                x, y = left, y + fm.height()
            pen = QPen(colour or ink, 3)
            if name == "All classes":
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(x, y - fm.ascent() / 3), QPointF(x + 12, y - fm.ascent() / 3))
            p.setPen(text)
            p.drawText(QPointF(x + 16, y), name)
            x += w


def _swatch(colour: QColor) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(colour)
    return QIcon(pix)


def _table(model, parent) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    # sized to the contents when the rows are new, not at every slider step (that measures every cell again)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    model.modelReset.connect(view.resizeColumnsToContents)
    view.resizeColumnsToContents()
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    return view


def _titled(title: str, widget: QWidget, parent) -> QWidget:
    box = QWidget(parent)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    label = QLabel(f"<b>{title}</b>", box)
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return box


class EvalPanel(QWidget):
    """Shows one evaluation at a threshold and IoU; says what the controller should do as signals."""

    evaluate_requested = Signal()
    cancel_requested = Signal()
    threshold_requested = Signal(float)     # "use best-F1 threshold", a double-clicked best-F1 cell
    iou_changed = Signal(float)
    cell_clicked = Signal(int, int)         # confusion row (true), column (predicted), class indexes
    error_clicked = Signal(str)             # an error type
    list_filter_changed = Signal()          # the image list's filter, class or order changed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.evaluator = None
        self.threshold = 0.5
        self.best_threshold: float | None = None
        self._cell: tuple[int, int] | None = None

        # The top: what is evaluated, the headline figures, the controls.
        self.about = QLabel("Open images with ground truth beside them (COCO, VOC, YOLO, …) to evaluate the model.",
                            self)
        self.about.setWordWrap(True)
        self.about.setTextFormat(Qt.TextFormat.RichText)
        self.headline = QLabel(self)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.at_threshold = QLabel(self)
        self.at_threshold.setTextFormat(Qt.TextFormat.RichText)
        self.evaluate_button = QPushButton("Evaluate", self)
        self.evaluate_button.setToolTip("Run the model on every opened image and match its detections with the "
                                        "ground truth (Model ▸ Evaluate, Ctrl+E)")
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        self.progress = QProgressBar(self)
        self.progress.setMinimumWidth(200)
        self.progress.setMaximumWidth(320)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.best_button = QPushButton("Use best-F1 threshold", self)
        self.best_button.setEnabled(False)
        self.best_button.clicked.connect(self._use_best)
        self.iou = QDoubleSpinBox(self)
        self.iou.setRange(0.05, 0.95)
        self.iou.setSingleStep(0.05)
        self.iou.setDecimals(2)
        self.iou.setValue(0.5)
        self.iou.setToolTip("The IoU a detection needs with a box of its class to count as found")
        self.iou.valueChanged.connect(lambda v: self.iou_changed.emit(round(float(v), 2)))
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(QLabel("IoU", self))
        top.addWidget(self.iou)
        top.addWidget(self.best_button)
        top.addStretch(1)

        # Per class.
        self.classes = ClassMetrics(self)
        self.classes_view = _table(self.classes, self)
        self.classes_view.doubleClicked.connect(self._class_double_clicked)

        # The image list's filter.
        self.filter_box = QComboBox(self)
        self.filter_box.setToolTip("Which images the image list shows")
        self.filter_box.addItem("All images", ALL)
        self.filter_box.addItem("Images with errors", WITH_ERRORS)
        for kind, about in ERROR_ROWS:
            self.filter_box.addItem(f"Images with {kind} errors", kind)
            self.filter_box.setItemData(self.filter_box.count() - 1, about, Qt.ItemDataRole.ToolTipRole)
        self.class_box = QComboBox(self)
        self.class_box.setToolTip("Only images where this class is in the ground truth, detected, or in error")
        self.class_box.addItem("All classes", None)
        self.sort_box = QComboBox(self)
        self.sort_box.addItem("Most errors first", SORT_ERRORS)
        self.sort_box.addItem("File order", SORT_FILES)
        self.sort_box.setToolTip("Errors: false positives and missed objects at the threshold")
        self.shown_label = QLabel(self)
        self.shown_label.setStyleSheet(f"color: {style.TEXT_DIM}")
        self.show_all_button = QPushButton("Show all", self)
        self.show_all_button.clicked.connect(self.show_all)
        for box in (self.filter_box, self.class_box, self.sort_box):
            box.currentIndexChanged.connect(self._filter_edited)
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(QLabel("Image list:", self))
        filters.addWidget(self.filter_box)
        filters.addWidget(self.class_box)
        filters.addWidget(self.sort_box)
        filters.addWidget(self.show_all_button)
        filters.addWidget(self.shown_label, 1)

        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.about)
        ll.addLayout(top)
        ll.addWidget(self.headline)
        ll.addWidget(self.at_threshold)
        ll.addWidget(self.classes_view, 1)
        ll.addLayout(filters)

        # The confusion matrix and the error types.
        self.confusion = ConfusionMatrix(self)
        self.confusion_view = _table(self.confusion, self)
        self.confusion_view.verticalHeader().setVisible(True)
        self.confusion_view.setCornerButtonEnabled(False)
        self.confusion_view.setToolTip("Rows: the true class; columns: the predicted class. Click a cell to list "
                                       "its images.")
        self.confusion_view.clicked.connect(self._cell_clicked)
        self.errors = ErrorTypes(self)
        self.errors_view = _table(self.errors, self)
        self.errors_view.horizontalHeader().setStretchLastSection(True)
        self.errors_view.clicked.connect(self._error_clicked)
        middle = QSplitter(Qt.Orientation.Vertical, self)
        middle.addWidget(_titled("Confusion matrix (rows: true class, columns: predicted)", self.confusion_view, self))
        middle.addWidget(_titled("Error types", self.errors_view, self))

        # The curves.
        self.pr_chart = CurveChart("pr", self)
        self.f1_chart = CurveChart("f1", self)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(self.pr_chart)
        right.addWidget(self.f1_chart)

        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.addWidget(left)
        self.split.addWidget(middle)
        self.split.addWidget(right)
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 3)
        self.split.setStretchFactor(2, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.split)
        self._sized = False
        self._set_enabled(False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized and self.width() > 300:      # the first time it has room: share it out
            self._sized = True
            w = self.split.width()
            self.split.setSizes([int(w * 0.42), int(w * 0.29), int(w * 0.29)])

    # --- what is shown -----------------------------------------------------------------------------
    def set_truth(self, text: str) -> None:
        """One line about the ground truth (what was found beside the images, or that nothing was)."""
        self.about.setText(text)

    def set_running(self, done: int | None, total: int = 0, text: str = "", cancellable: bool = True) -> None:
        """Progress while an evaluation runs; ``done`` None when it has stopped."""
        running = done is not None
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running and cancellable)
        self.evaluate_button.setEnabled(not running)
        if running:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            self.progress.setFormat(text or "%v / %m")

    def set_evaluation(self, evaluator, threshold: float) -> None:
        """A finished evaluation (None: none), shown at ``threshold``."""
        self.evaluator = evaluator
        self._cell = None
        self.filter_box.blockSignals(True)
        self._drop_cell_entry()
        self.filter_box.blockSignals(False)
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("All classes", None)
        if evaluator is not None:
            for cid in evaluator.class_ids:
                self.class_box.addItem(_swatch(qcolour(int(cid))), evaluator.label(int(cid)), int(cid))
        self.class_box.blockSignals(False)
        self._set_enabled(evaluator is not None)
        if evaluator is None:
            self.headline.clear()
            self.at_threshold.clear()
            self.classes.set_rows([])
            self.confusion.set_rows([], headers=[])
            self.errors.set_rows([])
            self.pr_chart.set_curves([])
            self.f1_chart.set_curves([])
            self.shown_label.clear()
            return
        coco, voc = evaluator.coco(), evaluator.voc()
        stats = coco.stats if coco else {}
        self.headline.setText(
            f"COCO mAP@[.5:.95] <b>{_f(stats.get('mAP'))}</b> · mAP@0.5 <b>{_f(stats.get('AP50'))}</b> · "
            f"mAP@0.75 {_f(stats.get('AP75'))} · AR@100 {_f(stats.get('AR100'))} · "
            f"VOC mAP@0.5 <b>{_f(voc.mAP)}</b>")
        self.update_threshold(threshold)

    @property
    def iou_value(self) -> float:
        return round(float(self.iou.value()), 2)

    def update_threshold(self, threshold: float) -> None:
        """Count again at ``threshold`` (and the IoU box's value): fast, as the slider moves."""
        self.threshold = threshold
        ev = self.evaluator
        self.pr_chart.set_threshold(threshold)
        self.f1_chart.set_threshold(threshold)
        if ev is None:
            return
        iou = self.iou_value
        counts = ev.counts(threshold, iou)
        s = counts.summary()
        best = ev.best_thresholds(iou).get(None, {})
        self.best_threshold = best.get("threshold")
        self.best_button.setEnabled(self.best_threshold is not None)
        if best:
            self.best_button.setText(f"Use best-F1 threshold ({best['threshold']:.2f}, F1 {best['f1']:.3f})")
        self.at_threshold.setText(
            f"At score ≥ {threshold:.2f}, IoU {iou:.2f}: TP <b>{s['tp']}</b> · FP <b>{s['fp']}</b> · "
            f"FN <b>{s['fn']}</b> — precision {_f(s['precision'])} · recall {_f(s['recall'])} · "
            f"F1 <b>{_f(s['f1'])}</b>")
        self.classes.update_from(ev, counts, iou)
        self.confusion.update_from(ev.confusion(threshold, iou))
        self.errors.update_from(ev.error_counts(threshold, iou))
        self._update_curves(iou)

    def _update_curves(self, iou: float) -> None:
        ev = self.evaluator
        curves = ev.curves(iou)
        rows = [(ev.label(int(c)), qcolour(int(c)), curves[int(c)]) for c in ev.class_ids
                if int(c) in curves and curves[int(c)].objects]
        if None in curves:
            rows.append(("All classes", ALL_COLOUR, curves[None]))
        self.pr_chart.set_curves(rows)
        self.f1_chart.set_curves(rows)

    def set_shown(self, shown: int, total: int) -> None:
        self.shown_label.setText(f"{shown} of {total} images listed")

    # --- the image list's filter ----------------------------------------------------------------------
    def list_filter(self) -> tuple[str, object, int | None, str]:
        """``(kind, cell, class_id, sort)``: kind is ALL, WITH_ERRORS, an error type or CELL (then ``cell`` is
        ``(row, column)``)."""
        kind = self.filter_box.currentData()
        return kind, self._cell if kind == CELL else None, self.class_box.currentData(), self.sort_box.currentData()

    def show_all(self) -> None:
        """Every image in the list again (the order stays)."""
        for box in (self.filter_box, self.class_box):
            box.blockSignals(True)
            box.setCurrentIndex(0)
            box.blockSignals(False)
        self._filter_edited()

    def filter_cell(self, row: int, column: int) -> None:
        """List the images of confusion cell (``row``, ``column``)."""
        labels = self.confusion.labels
        self._cell = (row, column)
        text = f"Confusion: {labels[row]} → {labels[column]}"
        self.filter_box.blockSignals(True)
        self._drop_cell_entry()
        self.filter_box.addItem(text, CELL)
        self.filter_box.setCurrentIndex(self.filter_box.count() - 1)
        self.filter_box.blockSignals(False)
        self.class_box.blockSignals(True)
        self.class_box.setCurrentIndex(0)
        self.class_box.blockSignals(False)
        self.class_box.setEnabled(False)
        self.list_filter_changed.emit()

    def filter_error(self, kind: str) -> None:
        i = self.filter_box.findData(kind)
        if i >= 0:
            if i == self.filter_box.currentIndex():
                self.list_filter_changed.emit()
            self.filter_box.setCurrentIndex(i)

    def _drop_cell_entry(self) -> None:
        i = self.filter_box.findData(CELL)
        if i >= 0:
            self.filter_box.removeItem(i)

    def _filter_edited(self) -> None:
        if self.filter_box.currentData() != CELL:
            self.filter_box.blockSignals(True)
            self._drop_cell_entry()
            self.filter_box.blockSignals(False)
            self._cell = None
            self.class_box.setEnabled(self.evaluator is not None)
        self.list_filter_changed.emit()

    # --- clicks -------------------------------------------------------------------------------------
    def _cell_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and self.confusion.rows and self.confusion.rows[index.row()][index.column()]:
            self.cell_clicked.emit(index.row(), index.column())
            self.filter_cell(index.row(), index.column())

    def _error_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and self.errors.rows:
            kind = self.errors.rows[index.row()][0]
            self.error_clicked.emit(kind)
            self.filter_error(kind)

    def _class_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() == ClassMetrics.BEST:
            t = self.classes.best[index.row()]
            if t is not None:
                self.threshold_requested.emit(float(t))

    def _use_best(self) -> None:
        if self.best_threshold is not None:
            self.threshold_requested.emit(float(self.best_threshold))

    def _set_enabled(self, on: bool) -> None:
        for w in (self.filter_box, self.class_box, self.sort_box, self.show_all_button, self.iou,
                  self.classes_view, self.confusion_view, self.errors_view):
            w.setEnabled(on)
        self.best_button.setEnabled(on and self.best_threshold is not None)
