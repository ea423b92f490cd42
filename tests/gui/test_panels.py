"""The image panel, details and problems panels on synthetic data (no TensorFlow, no demo needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem

from detscope.core.detect.detections import Detections
from detscope.core.base.findings import ERROR, WARNING, Finding
from detscope.core.formats.objectgraph import MODEL, SLOT
from detscope.core.runtime.report import Mismatch, Missing, RestoreReport, Unused
from detscope.gui.panels.details_panel import Histogram
from detscope.gui.qt.bridge import Bridge, one_line
from detscope.gui.panels.image_panel import ImagePanel
from detscope.gui.panels.problems_panel import ProblemsPanel


def detections() -> Detections:
    boxes = [[10, 10, 60, 50], [100, 20, 180, 90], [30, 100, 90, 170], [0, 0, 20, 20]]
    scores = [0.95, 0.7, 0.4, 0.1]
    classes = [1, 2, 1, 3]
    multi = np.array([[0.02, 0.95, 0.02, 0.01], [0.1, 0.1, 0.7, 0.1], [0.3, 0.4, 0.2, 0.1], [0.6, 0.1, 0.2, 0.1]])
    return Detections.build(boxes, scores, classes, ["circle", "triangle", "circle", "cross"], 200, 180,
                            multiclass_scores=multi, class_columns=(-1, 1, 2, 3))


def test_overlay_threshold_classes_and_labels(qtbot, qtmodeltester):
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    dets = detections()
    panel.set_classes({1: "circle", 2: "triangle", 3: "cross"})
    panel.set_image(np.zeros((180, 200, 3), np.uint8), "synthetic", dets)
    qtmodeltester.check(panel.table_model)
    view = panel.view
    assert len(view.boxes) == 2                                   # 0.5 by default
    assert all(b.pen().isCosmetic() for b in view.boxes)
    assert all(t.flags() & QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations for t in view.labels)
    assert view.boxes[1].rect().getCoords() == (100, 20, 180, 90)
    assert view.boxes[1].pen().color().getRgb()[:3] == view.labels[1].colour.getRgb()[:3]

    panel.slider.setValue(0)
    assert len(view.boxes) == 4 and panel.count_label.text().startswith("4 of 4")
    panel.set_class_visible(1, False)
    assert [int(c) for c in panel.shown.class_ids] == [2, 3]
    assert "1 classes hidden" in panel.count_label.text()
    panel.set_class_visible(1, True)
    panel.labels_box.setChecked(False)
    assert not any(t.isVisible() for t in view.labels)
    annotated = panel.annotated()
    assert annotated.shape == (180, 200, 3) and annotated.any()   # boxes drawn, no labels


def test_zoom_fit_and_clicking_a_box(qtbot):
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_image(np.full((180, 200, 3), 90, np.uint8), "synthetic", detections())
    panel.set_threshold(0.0)
    view = panel.view
    fitted = view.scale_factor()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.scale_factor() > fitted
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert abs(view.scale_factor() - fitted) < 1e-6
    target = view.boxes[1]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(target.rect().center()))
    assert view.highlighted == 1 and panel.table.currentIndex().row() == 1
    text = panel.detail.text()
    assert "triangle" in text and "all class scores" in text and "background" in text
    # A click beside every box clears the choice.
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(195, 175))
    assert view.highlighted == -1


@pytest.fixture
def problems_panel():
    """Outlives the model tester (requested before it), which must not watch a deleted model."""
    panel = ProblemsPanel()
    yield panel
    panel.deleteLater()


def test_problems_panel_lists_findings_and_report(problems_panel, qtmodeltester):
    panel = problems_panel
    panel.set_findings([Finding(ERROR, "ckpt-2.data-00000-of-00001 is missing", "ckpt-2.index"),
                        Finding(WARNING, "label map has 3 classes, the head 4", node="Label map")])
    report = RestoreReport("partial", "ckpt-2", "saved_model", matched=["a/kernel", "a/bias"],
                           unused=[Unused("optimizer/m", SLOT, (3,)), Unused("head/w", MODEL, (4,))],
                           missing=[Missing("b/kernel", (3, 3), "float32")],
                           shape_mismatches=[Mismatch("head/bias", (4,), (3,))])
    panel.set_report(report)
    panel.add_message("camera 0 did not open")
    qtmodeltester.check(panel.tree.model())
    texts = [r.text() for r in panel.rows()]
    assert texts[0] == "Problems (1 error, 1 warning)"
    assert any(t.startswith("Shape mismatches (1)") for t in texts)
    assert any(t.startswith("Unused optimizer slots (1)") for t in texts)
    assert any(t.endswith("camera 0 did not open") for t in texts)
    located = []
    panel.locate.connect(located.append)
    mismatch = next(r for r in panel.rows() if r.text().startswith("head/bias"))
    panel._activated(mismatch)
    assert located == [("key", "head/bias")]


def test_histogram_draws_bars(qtbot):
    hist = Histogram()
    qtbot.addWidget(hist)
    hist.resize(300, 140)
    hist.set_data([1, 5, 20, 5, 1], [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])
    image = hist.grab().toImage()
    middle = image.pixelColor(150, 60)       # the tallest bar, in the middle, spans this point
    assert middle.name() != hist.palette().window().color().name()


def test_errors_become_one_line():
    from detscope.core.formats.bundle import MissingShardError

    assert one_line(MissingShardError("ckpt-1.data-00000-of-00001 is missing; names and shapes are still "
                                      "browsable", "x")) .startswith("ckpt-1.data")
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(OSError("disk full")) == "disk full"


def test_bridge_delivers_on_the_gui_thread(qtbot):
    import threading
    from concurrent.futures import Future

    bridge = Bridge()
    seen, errors = [], []
    bridge.errored.connect(errors.append)
    ok, bad = Future(), Future()
    bridge.watch(ok, lambda v: seen.append((v, threading.current_thread() is threading.main_thread())))
    bridge.watch(bad)     # no on_error: the error is shown, not swallowed
    threading.Thread(target=lambda: (ok.set_result(7), bad.set_exception(RuntimeError("boom")))).start()
    qtbot.waitUntil(lambda: bool(seen and errors))
    assert seen == [(7, True)] and errors == ["RuntimeError: boom"]
