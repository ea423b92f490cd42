"""The window's review mode, driven by key presses on the bundled demo and four of its test images; what the
keys did is read back from the review file through a connection of its own (as ``detscope review`` reads it).
These tests need ``resources/demo`` (``make demo``); they skip without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from detscope.core.review.store import ReviewStore

from gui_helpers import LOAD_TIMEOUT_MS

pytestmark = pytest.mark.slow
REVIEW_TIMEOUT_MS = 120_000


@pytest.fixture
def images(demo, tmp_path) -> Path:
    """Four of the demo's test images in a folder of their own (no ground truth beside them)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for p in sorted((demo / "test" / "images").glob("shapes_00[0-3].*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            shutil.copy2(p, folder / p.name)
    return folder


def open_demo(qtbot, window, demo, images):
    window.open_paths([str(demo), str(images)])
    session = window.session
    qtbot.waitUntil(lambda: session.model is not None or (session.loading is None and not session.busy),
                    timeout=LOAD_TIMEOUT_MS)
    assert session.model is not None, window.status_line.text()
    qtbot.waitUntil(lambda: window.browser.shown is not None and len(window.browser.all_paths) == 4,
                    timeout=LOAD_TIMEOUT_MS)


def start_review(qtbot, window, path: Path):
    with qtbot.waitSignal(window.review.changed, timeout=REVIEW_TIMEOUT_MS):
        window.review.start(path)
    assert window.review.active, window.status_line.text()
    qtbot.waitUntil(lambda: window.review.current is not None and window.browser.shown is not None
                    and window.review.key_of.get(window.browser.shown) == window.review.current)
    window.image_panel.view.setFocus()


def press(qtbot, window, k):
    """A key as the keyboard sends it: to the widget that has the focus (a text field there would eat it)."""
    from PySide6.QtWidgets import QApplication

    qtbot.keyClick(QApplication.focusWidget() or window, k)


def type_class(qtbot, window, name: str):
    picker = window.review.panel.picker
    qtbot.waitUntil(picker.isVisible)
    picker.edit.setText("")
    qtbot.keyClicks(picker.edit, name)
    qtbot.keyClick(picker.edit, Qt.Key.Key_Return)


def drag(qtbot, view, a: QPoint, b: QPoint):
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, 6):
        QTest.mouseMove(vp, a + (b - a) * (i / 5))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def on_screen(view, x: float, y: float) -> QPoint:
    from PySide6.QtCore import QPointF

    return view.mapFromScene(QPointF(x, y))


def test_a_review_by_keys_lands_in_the_review_file_and_resumes(qtbot, window, demo, images, tmp_path):
    open_demo(qtbot, window, demo, images)
    review = window.review
    path = tmp_path / "reviews" / "demo.review.db"
    press(qtbot, window, Qt.Key.Key_C)                  # no review yet: the key only says how to start one
    assert "Start review" in window.status_line.text()
    start_review(qtbot, window, path)
    assert window.review_dock.isVisible()
    first = review.current
    entry = review.store.image(first)
    assert len(entry.detections) >= 2, "the demo image has fewer detections than this test needs"
    assert review.panel.target == "d0"
    qtbot.waitUntil(lambda: review.panel.progress.text() == "0 / 4 images reviewed, 0 corrections")

    # C: correct (the selection moves on to the next detection); D: a duplicate.
    press(qtbot, window, Qt.Key.Key_C)
    assert review.panel.target == "d1"
    press(qtbot, window, Qt.Key.Key_D)
    # K back to the first, X: a false positive, then Backspace clears it, and C again.
    press(qtbot, window, Qt.Key.Key_K)
    press(qtbot, window, Qt.Key.Key_K)
    assert review.panel.target == "d0"
    press(qtbot, window, Qt.Key.Key_X)
    review.panel.select("d0")
    press(qtbot, window, Qt.Key.Key_Backspace)
    # W on the second detection: the right class typed (a prefix is enough when it is one class).
    review.panel.select("d1")
    labels = review.store.labels
    other = next(cid for cid in sorted(labels) if cid != entry.detections[1].class_id)
    press(qtbot, window, Qt.Key.Key_W)
    type_class(qtbot, window, labels[other][:3])
    # The keys go on working: the image has the keyboard again, not a text field.
    qtbot.waitUntil(lambda: window.image_panel.view.hasFocus())

    # E on the first: drag its bottom-right corner 12 pixels in (image pixels), a bad box.
    review.panel.select("d0")
    view = window.image_panel.view
    press(qtbot, window, Qt.Key.Key_E)
    assert view.editing >= 0
    x0, y0, x1, y1 = entry.detections[0].box
    drag(qtbot, view, on_screen(view, x1, y1), on_screen(view, x1 - 12, y1 - 12))
    # M: draw a box round a "missed" object in the top-left corner, class typed.
    view.setFocus()
    press(qtbot, window, Qt.Key.Key_M)
    assert view.drawing
    drag(qtbot, view, on_screen(view, 3, 3), on_screen(view, 40, 30))
    assert not view.drawing
    type_class(qtbot, window, labels[min(labels)])

    # T: a comment; A: done, and on to the next image nobody reviewed.
    press(qtbot, window, Qt.Key.Key_T)
    assert review.panel.comment.hasFocus()
    qtbot.keyClicks(review.panel.comment, "two shapes overlap")
    qtbot.keyClick(review.panel.comment, Qt.Key.Key_Return)
    press(qtbot, window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: review.current not in (None, first))
    second = review.current
    press(qtbot, window, Qt.Key.Key_S)                     # skip the second
    qtbot.waitUntil(lambda: review.current not in (None, first, second))
    qtbot.waitUntil(lambda: review.panel.progress.text() == "2 / 4 images reviewed, 3 corrections (1 skipped)")

    # What the file holds, read as another process would.
    with ReviewStore.open(path) as store:
        cur = store.verdicts(first)
        assert cur["d0"].kind == "bad_box"
        bx0, by0, bx1, by1 = cur["d0"].box
        assert (bx0, by0) == pytest.approx((x0, y0), abs=1.5)
        assert (bx1, by1) == pytest.approx((x1 - 12, y1 - 12), abs=1.5)
        assert cur["d1"].kind == "wrong_class" and cur["d1"].class_id == other
        drawn = [v for t, v in cur.items() if t.startswith("m")]
        assert len(drawn) == 1 and drawn[0].class_id == min(labels)
        assert drawn[0].box == pytest.approx((3, 3, 40, 30), abs=1.5)
        assert cur["image"].kind == "done" and cur["image"].comment == "two shapes overlap"
        assert store.state(second) == "skip"
        kinds = [v.kind for v in store.history(first)]
        assert kinds[:6] == ["correct", "duplicate", "false_positive", "cleared", "wrong_class", "bad_box"]
        assert all(v.annotator == store.annotator and v.at for v in store.history())
        assert store.model.checkpoint == review.store.model.checkpoint

    # The filter: disputed images are the first one only; the list follows.
    panel = review.panel
    panel.filter.setCurrentIndex(next(i for i in range(panel.filter.count()) if panel.filter.itemText(i).startswith("Disputed")))
    assert window.browser.paths == [review.path_of[first]]
    drawn_class = labels[min(labels)]
    panel.filter.setCurrentIndex(panel.filter.findText(f"Class: {drawn_class}"))
    with ReviewStore.open(path) as store:
        assert [review.key_of[p] for p in window.browser.paths] == store.filter(class_id=min(labels))
        assert first in store.filter(class_id=min(labels))
    panel.filter.setCurrentIndex(panel.filter.findText("Verdict: skipped"))
    assert window.browser.paths == [review.path_of[second]]
    panel.filter.setCurrentIndex(0)
    assert len(window.browser.paths) == 4

    # The help overlay lists every key of the Review menu.
    press(qtbot, window, Qt.Key.Key_F1)
    assert review.help.isVisible() and "Image done" in review.help.text.text()
    press(qtbot, window, Qt.Key.Key_F1)
    assert not review.help.isVisible()

    # Close, reopen: it resumes at the first image nobody has reviewed, the verdicts kept.
    third = review.current
    window.menu_actions["close_review"].trigger()
    assert not review.active
    start_review(qtbot, window, path)
    assert review.current == third
    assert review.store.verdicts(first)["d1"].kind == "wrong_class"
    qtbot.waitUntil(lambda: review.panel.progress.text() == "2 / 4 images reviewed, 3 corrections (1 skipped)")


def test_a_review_file_inside_the_model_folder_is_refused_in_one_line(qtbot, window, demo, images):
    open_demo(qtbot, window, demo, images)
    with qtbot.waitSignal(window.review.failed, timeout=REVIEW_TIMEOUT_MS) as blocker:
        window.review.start(demo / "review.db")
    assert "inside the model folder" in blocker.args[0] and "\n" not in blocker.args[0]
    assert not (demo / "review.db").exists() and not window.review.active


def test_the_image_view_edits_a_box_draws_one_and_still_clicks_and_pans(qtbot):
    """Without a model: a corner dragged (only when editing), a box drawn (only in drawing mode), and a click
    on a box and a drag beside it doing what they did before."""
    import numpy as np
    from PySide6.QtCore import QPointF

    from detscope.core.detect.detections import Detections
    from detscope.gui.panels.image_view import ImageView

    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.full((300, 400, 3), 90, np.uint8))
    view.set_boxes(Detections.build([[100, 80, 200, 160], [250, 50, 350, 250]], [0.9, 0.8], [1, 2],
                                    ["a", "b"], 400, 300))
    edited, drawn, clicked = [], [], []
    view.box_edited.connect(lambda row, box: edited.append((row, box)))
    view.box_drawn.connect(drawn.append)
    view.box_clicked.connect(clicked.append)

    def at(x, y):
        return view.mapFromScene(QPointF(x, y))

    # Not editing: dragging a corner is a pan, nothing is edited.
    drag(qtbot, view, at(200, 160), at(180, 140))
    assert not edited and view.boxes[0].rect().bottomRight() == QPointF(200, 160)
    # Editing box 0: its bottom-right corner dragged 20 px up and left.
    view.edit_box(0)
    assert view.editing == 0 and len(view._handles) == 4
    drag(qtbot, view, at(200, 160), at(180, 140))
    assert len(edited) == 1 and edited[0][0] == 0
    assert edited[0][1] == pytest.approx((100, 80, 180, 140), abs=1.5)
    # A corner dragged past the opposite one: still a box (x0 <= x1, y0 <= y1).
    drag(qtbot, view, at(180, 140), at(90, 60))
    x0, y0, x1, y1 = edited[-1][1]
    assert x0 <= x1 and y0 <= y1
    view.edit_box(-1)
    assert view.editing == -1 and not view._handles

    # Drawing mode: one drag draws a box (clamped to the image), then the view pans again.
    view.set_drawing(True)
    drag(qtbot, view, at(10, 10), at(60, 40))
    assert len(drawn) == 1 and drawn[0] == pytest.approx((10, 10, 60, 40), abs=1.5)
    view.set_drawing(False)
    drag(qtbot, view, at(10, 10), at(60, 40))
    assert len(drawn) == 1
    # A tiny drag in drawing mode is no box.
    view.set_drawing(True)
    drag(qtbot, view, at(10, 10), at(11, 11))
    assert len(drawn) == 1
    view.set_drawing(False)

    # A click on a box still selects it; zoomed in, a drag still pans.
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(300, 200))
    assert clicked[-1] == 1
    view.zoom(4)
    bar = view.horizontalScrollBar()
    before = bar.value()
    drag(qtbot, view, QPoint(200, 150), QPoint(100, 150))
    assert bar.value() != before
