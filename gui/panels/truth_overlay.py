"""Ground truth over the image, beside the detections the view draws.

Ground-truth boxes are dashed black on white (visible on any picture), cosmetic like the detections' boxes;
after an evaluation the detections are recoloured right (TP, green) or wrong (FP, red, with the error type on
their tag) and the objects nothing found (FN) are dashed black on yellow with a "missed" tag below them.
Boxes below the score threshold can be drawn ghosted (dotted grey). What each box is, the evaluation
controller works out with core; this only draws it (the scene's units are image pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from .image_view import BOX_Z, ImageView, LabelItem

TP_COLOUR = QColor(52, 199, 89)
FP_COLOUR = QColor(255, 59, 48)
FN_COLOUR = QColor(255, 204, 0)
TRUTH_COLOUR = QColor(255, 255, 255)
IGNORED_COLOUR = QColor(150, 150, 150)
GHOST_COLOUR = QColor(210, 210, 210, 150)
DASH_COLOUR = QColor(0, 0, 0)
GHOST_Z, TRUTH_Z, MISSED_Z = BOX_Z - 4, BOX_Z - 2, BOX_Z - 1


@dataclass(frozen=True)
class TruthMark:
    """One ground-truth box: ``status`` is "truth" (not evaluated), "tp", "fn" or "ignored"."""

    box: tuple[float, float, float, float]
    name: str
    status: str = "truth"
    note: str = ""                   # why it was missed, for the tooltip
    kind: str = ""                   # a missed box's error type ("missed", or the wrong detection's type on it)


@dataclass(frozen=True)
class PredictionMark:
    """One shown detection's verdict: ``row`` among the view's boxes, ``status`` "tp", "fp" or "ignored"."""

    row: int
    status: str
    kind: str = ""                   # a false positive's error type


@dataclass(frozen=True)
class Ghost:
    box: tuple[float, float, float, float]
    text: str


class TruthItem(QGraphicsRectItem):
    """A rectangle drawn twice with cosmetic pens: solid ``colour``, then dashes over it (black by default)."""

    def __init__(self, rect: QRectF, colour: QColor, width: float = 2.0, dash: QColor = DASH_COLOUR,
                 pattern: tuple[float, float] = (3.0, 3.0)):
        super().__init__(rect)
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        self.setPen(pen)
        self.dashes = QPen(dash, width, Qt.PenStyle.CustomDashLine)
        self.dashes.setDashPattern(list(pattern))
        self.dashes.setCosmetic(True)
        self.dashes.setCapStyle(Qt.PenCapStyle.FlatCap)
        self.setBrush(Qt.BrushStyle.NoBrush)

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(self.pen())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.rect())
        painter.setPen(self.dashes)
        painter.drawRect(self.rect())


def _rect(box) -> QRectF:
    x0, y0, x1, y1 = (float(v) for v in box)
    return QRectF(x0, y0, max(x1 - x0, 0.5), max(y1 - y0, 0.5))


class TruthOverlay:
    """The items it added to ``view``'s scene (the view's own boxes and tags it only restyles)."""

    STATUS_COLOURS = {"tp": TP_COLOUR, "fp": FP_COLOUR, "ignored": IGNORED_COLOUR}

    def __init__(self, view: ImageView):
        self.view = view
        self.items: list = []
        self.truth: list[TruthItem] = []       # the ground-truth boxes drawn, in the order given
        self.ghosts: list[QGraphicsRectItem] = []

    def clear(self) -> None:
        scene = self.view.scene()
        for item in self.items:
            scene.removeItem(item)
        self.items, self.truth, self.ghosts = [], [], []

    def show(self, marks: list[TruthMark], ghosts: list[Ghost] = (),
             predictions: list[PredictionMark] | None = None) -> None:
        self.clear()
        scene = self.view.scene()
        for mark in marks:
            colour = {"fn": FN_COLOUR, "ignored": IGNORED_COLOUR}.get(mark.status, TRUTH_COLOUR)
            item = TruthItem(_rect(mark.box), colour, 3.0 if mark.status == "fn" else 2.0)
            item.setZValue(MISSED_Z if mark.status == "fn" else TRUTH_Z)
            what = {"truth": "ground truth", "tp": "ground truth, found", "fn": "ground truth, missed",
                    "ignored": "ground truth, ignored (crowd, difficult or not in the label map)"}[mark.status]
            item.setToolTip(f"{mark.name}: {what}" + (f"\n{mark.note}" if mark.note else ""))
            scene.addItem(item)
            self.items.append(item)
            self.truth.append(item)
            if mark.status == "fn" and self.view.show_labels:
                also = f" ({mark.kind})" if mark.kind and mark.kind != "missed" else ""
                tag = LabelItem(f"missed {mark.name}{also}", FN_COLOUR, self.view.label_font)
                tag.setPos(float(mark.box[0]), float(mark.box[3]))
                tag.place(below=True)
                tag.setToolTip(mark.note)
                scene.addItem(tag)
                self.items.append(tag)
        for ghost in ghosts:
            item = QGraphicsRectItem(_rect(ghost.box))
            pen = QPen(GHOST_COLOUR, 1.0, Qt.PenStyle.DotLine)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(GHOST_Z)
            item.setToolTip(f"{ghost.text} (below the threshold)")
            scene.addItem(item)
            self.items.append(item)
            self.ghosts.append(item)
        for mark in predictions or ():
            self._restyle(mark)

    def _restyle(self, mark: PredictionMark) -> None:
        view = self.view
        if not 0 <= mark.row < len(view.boxes):
            return
        colour = self.STATUS_COLOURS.get(mark.status)
        if colour is None:
            return
        box = view.boxes[mark.row]
        box.colour = colour
        box.set_highlight(view.highlighted == mark.row)
        box.setToolTip({"tp": "true positive", "fp": f"false positive: {mark.kind}",
                        "ignored": "on a crowd or difficult box: counts neither way"}[mark.status])
        if mark.row < len(view.labels):
            tag = view.labels[mark.row]
            text = tag.text.split(" · ")[0]
            if mark.status == "fp":
                text += f" · {mark.kind}"
            tag.restyle(text, colour)
