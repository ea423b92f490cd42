"""The image and its detections: a QGraphicsView whose scene coordinates are image pixels.

One ``QGraphicsPixmapItem`` holds the picture; each detection is a
``QGraphicsRectItem`` with a cosmetic pen (one screen pixel wide at any zoom) in
its class colour, and its label is an item that ignores the view transform (so it
stays readable when zoomed out). Zoom and pan are the view's transform and scroll
bars: wheel or +/- to zoom around the cursor, drag to pan, F or 0 to fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

if TYPE_CHECKING:
    import numpy as np

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 64.0
BOX_Z, LABEL_Z = 10, 20


def to_qimage(rgb: np.ndarray) -> QImage:
    """An RGB uint8 array as a QImage that owns a copy of the pixels."""
    import numpy as np   # imported when the first image comes, not before the window is shown

    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def qcolour(class_id: int) -> QColor:
    from detscope.core.detect.render import class_colour

    return QColor(*class_colour(int(class_id)))


class LabelItem(QGraphicsItem):
    """A filled tag with ``label score`` drawn at a box corner, the same size at every zoom."""

    def __init__(self, text: str, colour: QColor, font: QFont, parent=None):
        super().__init__(parent)
        self.font = font
        self._rect = self._above = QRectF()
        self.restyle(text, colour)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(LABEL_Z)

    def restyle(self, text: str, colour: QColor) -> None:
        """Another text and colour (the evaluation marks a detection right or wrong); the tag stays where it is."""
        below = self._rect != self._above
        self.prepareGeometryChange()
        self.text = text
        self.colour = colour
        fm = QFontMetricsF(self.font)
        self._above = QRectF(0, -fm.height() - 2, fm.horizontalAdvance(text) + 6, fm.height() + 2)
        self._rect = self._above.translated(0, self._above.height()) if below else self._above
        self._ascent = fm.ascent()
        luminance = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()
        self._ink = QColor(Qt.GlobalColor.black if luminance > 140 else Qt.GlobalColor.white)
        self.update()

    @property
    def height(self) -> float:
        return self._above.height()

    def place(self, below: bool) -> None:
        """Draw the tag above its corner, or below it (inside the box) when above would leave the image."""
        rect = self._above.translated(0, self._above.height()) if below else self._above
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.fillRect(self._rect, self.colour)
        painter.setFont(self.font)
        painter.setPen(self._ink)
        painter.drawText(QPointF(self._rect.left() + 3, self._rect.top() + 1 + self._ascent), self.text)


class BoxItem(QGraphicsRectItem):
    """One detection's box; ``row`` is its index among the shown detections."""

    def __init__(self, rect: QRectF, colour: QColor, row: int, width: float = 2):
        super().__init__(rect)
        self.row = row
        self.colour = colour
        self.width = width
        self.set_highlight(False)
        self.setZValue(BOX_Z)

    def set_highlight(self, on: bool) -> None:
        pen = QPen(self.colour, self.width * 2 if on else self.width)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        self.setPen(pen)
        fill = QColor(self.colour)
        fill.setAlpha(50 if on else 0)
        self.setBrush(QBrush(fill) if on else Qt.BrushStyle.NoBrush)


class ImageView(QGraphicsView):
    """Shows one image (pixels = scene units) and a list of boxes over it."""

    box_clicked = Signal(int)        # row of the clicked box, -1 for a click beside every box
    zoom_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.pixmap_item = QGraphicsPixmapItem()
        self.pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.pixmap_item)
        self.boxes: list[BoxItem] = []
        self.labels: list[LabelItem] = []
        self.show_labels = True
        self.highlighted = -1
        self._fitted = True
        self._press: QPointF | None = None
        self._image_size: tuple[int, int] | None = None
        self.label_font = QFont(self.font())
        self.label_font.setPointSizeF(max(8.0, self.label_font.pointSizeF() * 0.9))
        self.box_width = 2.0              # screen pixels (a kiosk draws them thicker)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QColor(48, 48, 48))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)          # drops go to the window, which decides what they are
        self.viewport().setAcceptDrops(False)

    # --- the picture -------------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int] | None:
        return self._image_size

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show a new picture; the view is refitted when the size changes or it was fitted."""
        if rgb is None:
            self.pixmap_item.setPixmap(QPixmap())
            self._image_size = None
            self.set_boxes(None)
            return
        h, w = rgb.shape[:2]
        self.pixmap_item.setPixmap(QPixmap.fromImage(to_qimage(rgb)))
        size_changed = self._image_size != (w, h)
        self._image_size = (w, h)
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if size_changed or self._fitted:
            self.fit()

    def fit(self) -> None:
        if self._image_size is None:
            return
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._fitted = True
        self._place_labels()
        self.zoom_changed.emit(self.scale_factor())

    def scale_factor(self) -> float:
        return self.transform().m11()

    def zoom(self, factor: float) -> None:
        current = self.scale_factor()
        target = min(MAX_SCALE, max(MIN_SCALE, current * factor))
        if target == current:
            return
        self.scale(target / current, target / current)
        self._fitted = False
        self._place_labels()
        self.zoom_changed.emit(self.scale_factor())

    def actual_size(self) -> None:
        self.resetTransform()
        self._fitted = False
        self._place_labels()
        self.zoom_changed.emit(1.0)

    # --- the boxes ---------------------------------------------------------------------------
    def set_boxes(self, dets) -> None:
        """Replace the boxes with ``dets`` (already filtered), in their order."""
        scene = self.scene()
        for item in self.boxes + self.labels:
            scene.removeItem(item)
        self.boxes, self.labels = [], []
        self.highlighted = -1
        if dets is None:
            return
        for row, (box, score, cid, label) in enumerate(zip(dets.boxes, dets.scores, dets.class_ids, dets.labels)):
            x0, y0, x1, y1 = (float(v) for v in box)
            colour = qcolour(cid)
            item = BoxItem(QRectF(x0, y0, max(x1 - x0, 0.5), max(y1 - y0, 0.5)), colour, row, self.box_width)
            scene.addItem(item)
            self.boxes.append(item)
            tag = LabelItem(f"{label} {score:.2f}", colour, self.label_font)
            tag.setPos(x0, y0)
            tag.setVisible(self.show_labels)
            scene.addItem(tag)
            self.labels.append(tag)
        self._place_labels()

    def _place_labels(self) -> None:
        scale = self.scale_factor() or 1.0
        for tag in self.labels:
            tag.place(below=tag.pos().y() < tag.height / scale)

    def set_labels_visible(self, on: bool) -> None:
        self.show_labels = on
        for tag in self.labels:
            tag.setVisible(on)

    def highlight(self, row: int) -> None:
        if 0 <= self.highlighted < len(self.boxes):
            self.boxes[self.highlighted].set_highlight(False)
        self.highlighted = row if 0 <= row < len(self.boxes) else -1
        if self.highlighted >= 0:
            self.boxes[row].set_highlight(True)
            self.boxes[row].setZValue(BOX_Z + 1)

    def box_at(self, scene_pos: QPointF) -> int:
        """The smallest box containing a scene point (-1 for none)."""
        best, area = -1, None
        for item in self.boxes:
            r = item.rect()
            if r.contains(scene_pos):
                a = r.width() * r.height()
                if area is None or a < area:
                    best, area = item.row, a
        return best

    # --- input -------------------------------------------------------------------------------
    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta:
            self.zoom(ZOOM_STEP ** (delta / 120))
        event.accept()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom(1 / ZOOM_STEP)
        elif key in (Qt.Key.Key_F, Qt.Key.Key_0):
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press is not None:
            moved = (event.position() - self._press).manhattanLength()
            self._press = None
            if moved <= 4:   # a click, not a pan
                row = self.box_at(self.mapToScene(event.position().toPoint()))
                self.box_clicked.emit(row)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
