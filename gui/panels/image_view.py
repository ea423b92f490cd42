"""The image and its detections: a QGraphicsView whose scene coordinates are image pixels.

One ``QGraphicsPixmapItem`` holds the picture; each detection is a
``QGraphicsRectItem`` with a cosmetic pen (one screen pixel wide at any zoom) in
its class colour, and its label is an item that ignores the view transform (so it
stays readable when zoomed out). Zoom and pan are the view's transform and scroll
bars: wheel or +/- to zoom around the cursor, drag to pan, F or 0 to fit.

For a review, one box may be made editable (:meth:`ImageView.edit_box`: a handle on each corner, dragged
to correct it; ``box_edited`` on release) and a new box may be drawn (:meth:`ImageView.set_drawing`: the
next drag draws instead of panning; ``box_drawn`` on release). Clicks, zoom and pan work as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from detscope.core.detect.colours import class_colour

if TYPE_CHECKING:
    import numpy as np

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 64.0
BOX_Z, LABEL_Z = 10, 20
HANDLE_Z = 30
HANDLE_SIZE = 9                  # screen pixels
GRAB = 8                         # how near a corner (screen pixels) a press grabs it
MIN_BOX = 2.0                    # image pixels: a drawn or edited box is at least this wide and high


def to_qimage(rgb: np.ndarray) -> QImage:
    """An RGB uint8 array as a QImage that owns a copy of the pixels."""
    import numpy as np   # imported when the first image comes, not before the window is shown

    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def qcolour(class_id: int) -> QColor:
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


class HandleItem(QGraphicsRectItem):
    """A square on a corner of the box being edited, the same size at every zoom."""

    def __init__(self, colour: QColor, parent=None):
        half = HANDLE_SIZE / 2
        super().__init__(QRectF(-half, -half, HANDLE_SIZE, HANDLE_SIZE), parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        pen = QPen(QColor(Qt.GlobalColor.black), 1)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(colour))
        self.setZValue(HANDLE_Z)


class ImageView(QGraphicsView):
    """Shows one image (pixels = scene units) and a list of boxes over it."""

    box_clicked = Signal(int)        # row of the clicked box, -1 for a click beside every box
    zoom_changed = Signal(float)
    box_edited = Signal(int, object)  # row, (x0, y0, x1, y1) in image pixels: a corner was dragged
    box_drawn = Signal(object)        # (x0, y0, x1, y1): a box drawn in drawing mode

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
        self.editing = -1                   # the row whose corners have handles
        self.drawing = False                # the next drag draws a box
        self._handles: list[HandleItem] = []
        self._grab: tuple[int, int] | None = None     # (x index 0|2, y index 1|3) of the corner dragged
        self._edit_rect: list[float] | None = None    # x0, y0, x1, y1 while a corner is dragged
        self._draw_from: QPointF | None = None
        self._draw_item: QGraphicsRectItem | None = None

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
        self._drop_handles()
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

    # --- editing and drawing (a review) -----------------------------------------------------------
    def edit_box(self, row: int) -> None:
        """Put a handle on each corner of box ``row`` (-1: none); dragging one corrects the box."""
        self._drop_handles()
        if not 0 <= row < len(self.boxes):
            return
        self.editing = row
        colour = QColor(self.boxes[row].colour)
        for _ in range(4):
            handle = HandleItem(colour)
            self.scene().addItem(handle)
            self._handles.append(handle)
        self._place_handles(self.boxes[row].rect())

    def _drop_handles(self) -> None:
        for handle in self._handles:
            if handle.scene() is not None:
                handle.scene().removeItem(handle)
        self._handles = []
        self.editing = -1
        self._grab = self._edit_rect = None

    def _place_handles(self, rect: QRectF) -> None:
        corners = (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight())
        for handle, corner in zip(self._handles, corners):
            handle.setPos(corner)

    def set_drawing(self, on: bool) -> None:
        """Drawing mode: the next left drag draws a box (``box_drawn``) instead of panning."""
        self.drawing = bool(on)
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
        if on:                              # (the hand drag mode sets its own cursor)
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def _corner_at(self, pos: QPointF) -> tuple[int, int] | None:
        if not 0 <= self.editing < len(self.boxes):
            return None
        r = self.boxes[self.editing].rect()
        for xi, yi, corner in ((0, 1, r.topLeft()), (2, 1, r.topRight()), (0, 3, r.bottomLeft()),
                               (2, 3, r.bottomRight())):
            if (QPointF(self.mapFromScene(corner)) - pos).manhattanLength() <= GRAB * 1.5:
                return xi, yi
        return None

    def _clamped(self, pos: QPointF) -> QPointF:
        p = self.mapToScene(pos.toPoint())
        w, h = self._image_size or (0, 0)
        return QPointF(min(max(p.x(), 0.0), float(w)), min(max(p.y(), 0.0), float(h)))

    @staticmethod
    def _ordered(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

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
        if event.button() == Qt.MouseButton.LeftButton and self._image_size is not None:
            grab = self._corner_at(event.position())
            if grab is not None:                      # a corner of the box being edited: drag it, no pan
                r = self.boxes[self.editing].rect()
                self._grab, self._edit_rect = grab, [r.left(), r.top(), r.right(), r.bottom()]
                event.accept()
                return
            if self.drawing:
                self._draw_from = self._clamped(event.position())
                self._draw_item = QGraphicsRectItem(QRectF(self._draw_from, self._draw_from))
                pen = QPen(QColor(255, 255, 0), 2, Qt.PenStyle.DashLine)
                pen.setCosmetic(True)
                self._draw_item.setPen(pen)
                self._draw_item.setZValue(HANDLE_Z)
                self.scene().addItem(self._draw_item)
                event.accept()
                return
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._grab is not None:
            p = self._clamped(event.position())
            xi, yi = self._grab
            self._edit_rect[xi], self._edit_rect[yi] = p.x(), p.y()
            x0, y0, x1, y1 = self._ordered(*self._edit_rect)
            rect = QRectF(x0, y0, max(x1 - x0, 0.5), max(y1 - y0, 0.5))
            self.boxes[self.editing].setRect(rect)
            self._place_handles(rect)
            event.accept()
            return
        if self._draw_item is not None:
            p = self._clamped(event.position())
            self._draw_item.setRect(QRectF(self._draw_from, p).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._grab is not None:
            box = self._ordered(*self._edit_rect)
            self._grab = self._edit_rect = None
            if box[2] - box[0] >= MIN_BOX and box[3] - box[1] >= MIN_BOX:
                self.box_edited.emit(self.editing, box)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._draw_item is not None:
            r = self._draw_item.rect()
            self.scene().removeItem(self._draw_item)
            self._draw_item = self._draw_from = None
            event.accept()
            if r.width() >= MIN_BOX and r.height() >= MIN_BOX:
                self.box_drawn.emit((r.left(), r.top(), r.right(), r.bottom()))
            return
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
