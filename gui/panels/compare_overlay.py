"""The second model's (B's) boxes over the image, beside the first model's (A's) that the view draws.

B's boxes are dashed, one colour for every class (violet on a white underlay, visible on any picture), with a
"B label score" tag hanging below their bottom-left corner — A's tags sit above the top-left one — so the two
models read apart at a glance. A box only B found is drawn thicker; a class flip's tag names A's class too. The
items are the overlay's own, on the view's scene (image pixels), cosmetic like the view's boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor

from .image_view import BOX_Z, ImageView, LabelItem
from .truth_overlay import TruthItem

B_COLOUR = QColor(190, 60, 255)
UNDERLAY = QColor(255, 255, 255)
B_Z = BOX_Z + 2                  # over A's boxes: a pair's two boxes nearly coincide, and both must show


@dataclass(frozen=True)
class BMark:
    """One of B's boxes above B's threshold: ``status`` "pair", "flip" (A saw another class there), "only_b"
    (A saw nothing there) or "" (not compared yet: A's detections are still on their way)."""

    box: tuple[float, float, float, float]
    label: str
    score: float
    status: str = ""
    note: str = ""                   # a class flip: A's class


class CompareOverlay:
    """The items it added to ``view``'s scene: ``boxes`` (one per mark, in order) and their ``tags``."""

    def __init__(self, view: ImageView):
        self.view = view
        self.boxes: list[TruthItem] = []
        self.tags: list[LabelItem] = []

    def clear(self) -> None:
        scene = self.view.scene()
        for item in self.boxes + self.tags:
            scene.removeItem(item)
        self.boxes, self.tags = [], []

    def show(self, marks: list[BMark]) -> None:
        self.clear()
        scene = self.view.scene()
        for mark in marks:
            x0, y0, x1, y1 = (float(v) for v in mark.box)
            # white underneath, B's colour dashed over it: visible on any picture, unlike A's solid boxes
            item = TruthItem(QRectF(x0, y0, max(x1 - x0, 0.5), max(y1 - y0, 0.5)), UNDERLAY,
                             3.0 if mark.status == "only_b" else 2.0, dash=B_COLOUR, pattern=(4.0, 2.0))
            item.setZValue(B_Z)
            what = {"pair": "B, matched with A", "flip": f"B, where A saw {mark.note}", "only_b": "B only",
                    "": "B"}[mark.status]
            item.setToolTip(f"{mark.label} {mark.score:.2f}: {what}")
            scene.addItem(item)
            self.boxes.append(item)
            text = f"B {mark.label} {mark.score:.2f}" + (f" (A: {mark.note})" if mark.status == "flip" else "")
            tag = LabelItem(text, B_COLOUR, self.view.label_font)
            tag.setPos(x0, y1)
            tag.place(below=True)
            tag.setZValue(tag.zValue() + 1)
            tag.setVisible(self.view.show_labels)
            tag.setToolTip(item.toolTip())
            scene.addItem(tag)
            self.tags.append(tag)
