#!/usr/bin/env python
"""Render detscope's screenshots into ``resources/screenshots/`` from the real window under Xvfb.

    .venv/bin/python packaging/screenshots.py [--demo resources/demo] [--out resources/screenshots]

Without a display the script runs itself again under ``xvfb-run`` (apt-get install xvfb). It opens the
bundled demo model, grabs the X screen (what a user would see, not a widget rendering) and writes:

- ``main.png``: the demo model, its restore report and detections on a test image;
- ``tree-filter.png``: the model tree with a filter typed, a variable's statistics and histogram;
- ``compare.png``: another checkpoint as a second model (B), its boxes dashed over A's and the disagreement
  list, and the weights' drift from it in the model tree;
- ``eval.png``: the test images evaluated against their ground truth, a confusion cell's images listed;
- ``review.png``: review mode: verdicts on the detections, a drawn box for a missed object, a box's corners
  being corrected, the review panel with its progress line;
- ``review-keys.png``: review mode's help overlay (``?`` or F1), every key of the review;
- ``video.png``: a video file as a live source, with detections and the camera/inference numbers.

Each file is kept under 300 KB (quantised to a palette when a full-colour PNG would be larger).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = (1400, 900)
MAX_BYTES = 300 * 1024


def _rerun_under_xvfb() -> int:
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        print("error: no display and no xvfb-run (apt-get install -y xvfb)", file=sys.stderr)
        return 2
    env = {**os.environ, "DETSCOPE_SCREENSHOTS_UNDER_XVFB": "1"}
    cmd = [xvfb, "-a", "-s", f"-screen 0 {SIZE[0]}x{SIZE[1]}x24", sys.executable, *sys.argv]
    return subprocess.call(cmd, env=env)


def _wait(app, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"error: timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _save(app, path: Path) -> None:
    """Grab the whole X screen and write it, palette-quantised if it would exceed MAX_BYTES."""
    from PIL import Image

    _settle(app)
    shot = app.primaryScreen().grabWindow(0)
    tmp = path.with_suffix(".full.png")
    shot.save(str(tmp))
    if tmp.stat().st_size <= MAX_BYTES:
        tmp.replace(path)
    else:
        with Image.open(tmp) as img:
            img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) \
                .save(path, optimize=True)
        tmp.unlink()
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")


def _video_from(images, path: Path) -> Path:
    import cv2
    import numpy as np

    from detscope.core.media.images import load_image

    size = (640, 480)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    frames = [cv2.resize(load_image(p), size) for p in images]
    for a, b in zip(frames, frames[1:] + frames[:1]):      # cross-fade so it plays like footage
        for t in np.linspace(0, 1, 8, endpoint=False):
            mixed = (a * (1 - t) + b * t).astype(np.uint8)
            writer.write(cv2.cvtColor(mixed, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _review(app, window, scratch: Path, out: Path) -> None:
    """Review mode on the test images, driven by its keys as an annotator would."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    flows, review, view = window.evaluation, window.review, window.image_panel.view
    if flows.truth_visible:
        window.menu_actions["show_truth"].trigger()          # the evaluation's colours off: the verdicts show
    docks = [d for d in (window.eval_dock, window.details_dock, window.problems_dock, window.tree_dock)
             if d.isVisible()]
    for dock in docks:                                     # room for the image
        dock.hide()
    window.activateWindow()                                # its keys are the window's shortcuts
    _wait(app, window.isActiveWindow, 10, "the window to take the keyboard")
    review.start(scratch / "reviews" / "demo.review.db")
    _wait(app, lambda: review.active and review.current is not None
          and review.key_of.get(window.browser.shown) == review.current, 120, "the review to open")

    def key(k, times: int = 1):
        for _ in range(times):
            QTest.keyClick(QApplication.focusWidget() or window, k)     # where a keyboard sends it
            _settle(app, 0.05)

    def pick(name: str):
        _wait(app, review.panel.picker.isVisible, 10, "the class picker")
        QTest.keyClicks(review.panel.picker.edit, name)
        QTest.keyClick(review.panel.picker.edit, Qt.Key.Key_Return)
        _settle(app, 0.1)

    def drag(a, b):
        vp = view.viewport()
        pa, pb = view.mapFromScene(QPointF(*a)), view.mapFromScene(QPointF(*b))
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pa)
        for i in range(1, 8):
            QTest.mouseMove(vp, pa + (pb - pa) * (i / 7))
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pb)
        _settle(app, 0.1)

    labels = review.store.labels
    for n in range(3):                                    # three images judged, the fourth on screen
        entry = review.store.image(review.current)
        view.setFocus()
        key(Qt.Key.Key_C, max(0, len(entry.detections) - 2))
        if len(entry.detections) >= 2:
            key(Qt.Key.Key_X if n == 1 else Qt.Key.Key_C)
            key(Qt.Key.Key_W)
            pick(labels[min(c for c in labels if c != entry.detections[-1].class_id)])
        if n == 0:
            review.panel.comment.setText("one object hidden behind another")
        key(Qt.Key.Key_R if n == 0 else Qt.Key.Key_A)
        _wait(app, lambda: review.key_of.get(window.browser.shown) == review.current
              and window.image_panel.kept is not None, 30, "the next image")
    entry = review.store.image(review.current)
    view.setFocus()
    key(Qt.Key.Key_C)
    if len(entry.detections) >= 2:
        key(Qt.Key.Key_D)
    review.panel.select("d0")
    key(Qt.Key.Key_E)                                     # the corners of the first box, one dragged in
    x0, y0, x1, y1 = entry.detections[0].box
    drag((x1, y1), (x1 - (x1 - x0) * 0.12, y1 - (y1 - y0) * 0.12))
    w, h = view.image_size
    key(Qt.Key.Key_M)                                     # a missed object's box drawn in a free corner
    drag((w * 0.04, h * 0.04), (w * 0.2, h * 0.18))
    pick(labels[min(labels)])
    review.panel.select("d0")
    key(Qt.Key.Key_E)                                     # the corrected box's corners, ready for another drag
    _settle(app, 0.6)
    _save(app, out / "review.png")
    key(Qt.Key.Key_F1)
    _settle(app, 0.3)
    _save(app, out / "review-keys.png")
    key(Qt.Key.Key_F1)
    review.close()
    for dock in docks:
        dock.show()
    if not flows.truth_visible:
        window.menu_actions["show_truth"].trigger()


def render(demo: Path, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from detscope.core.media.images import list_images

    scratch = Path(tempfile.mkdtemp(prefix="detscope-shots-"))
    # Screenshots start from a fresh window: no stored geometry, recent models or threshold.
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch / "settings"))
    os.environ["DETSCOPE_DATA_DIR"] = str(scratch / "data")

    app = QApplication([sys.argv[0]])
    app.setApplicationName("detscope")
    from detscope.gui.main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    images = list_images([demo / "test" / "images"])
    window = MainWindow()
    window.setGeometry(0, 0, *SIZE)
    window.show()
    window.open_paths([str(demo), str(demo / "test" / "images")])      # what detscope-gui opens by default
    _wait(app, lambda: window.session.model is not None and window.image_panel.kept is not None, 180,
          "the demo model and its first detections")
    window.browser.go(min(2, len(images) - 1))
    _wait(app, lambda: window.browser.index == min(2, len(images) - 1) and window.image_panel.kept is not None
          and window.image_panel.caption == images[window.browser.index].name, 60, "detections on a test image")
    panel = window.image_panel
    if panel.view.boxes:
        panel._box_clicked(0)
    tree = window.tree.model
    heads = [n for n in tree.root.walk() if n.kind == "variable" and n.key and "head" in n.key and n.params]
    if heads:
        window.tree.select_node(max(heads, key=lambda n: n.params))
        _wait(app, lambda: window.details.pending is None, 60, "a variable's statistics")
    _save(app, out / "main.png")

    window.tree.filter.setFocus()
    window.tree.filter.setText("kernel")
    window.tree.apply_filter()
    kernels = [n for n in tree.root.walk() if n.kind == "variable" and n.key and "kernel" in n.key and n.params]
    if kernels:
        window.tree.select_node(max(kernels, key=lambda n: n.params))
        _wait(app, lambda: window.details.pending is None, 60, "a variable's statistics")
    window.tree.filter.setFocus()
    _save(app, out / "tree-filter.png")
    window.tree.filter.clear()
    window.tree.apply_filter()

    # Another checkpoint of the same training as B, and the weights' drift from it in the tree.
    compare = window.compare
    layout = window.saveState()               # the docks come back as they were for the pictures after this one
    window.browser.go(min(5, len(images) - 1))
    _wait(app, lambda: window.browser.index == min(5, len(images) - 1) and panel.kept is not None, 60,
          "detections on another test image")
    others = [c.name for c in window.session.inventory.checkpoints if c.name != window.session.model.checkpoint_name]
    compare.open(demo / "training", checkpoint=others[-1])
    _wait(app, lambda: compare.comparison is not None, 180, "the second model's detections compared")
    for _ in range(len(images) - 1):           # the first image where A and B disagree
        if compare.comparison.disagreements:
            break
        shown = window.browser.index
        window.browser.step(1)
        _wait(app, lambda: window.browser.index != shown and compare.comparison is not None
              and panel.caption == images[window.browser.index].name, 60, "the next image compared")
    window.drift.compare_with(demo / "training" / others[-1])
    _wait(app, lambda: window.drift.column is not None, 60, "the weight drift")
    head = next((n for n in tree.root.walk() if n.name == "class_head"), None)
    if head is not None:
        window.tree.select_node(head)
        window.tree.view.expand(window.tree.proxy.mapFromSource(tree.index_of(head)))
        _wait(app, lambda: window.details.pending is None, 60, "the details")
    window.compare_dock.raise_()
    window.resizeDocks([window.compare_dock], [230], Qt.Orientation.Vertical)
    window.resizeDocks([window.tree_dock, window.details_dock], [420, 90], Qt.Orientation.Vertical)
    _save(app, out / "compare.png")
    compare.close_b()
    window.drift.clear()
    window.restoreState(layout)

    flows = window.evaluation
    _wait(app, lambda: flows.truth is not None, 60, "the ground truth beside the test images")
    flows.start()
    _wait(app, lambda: flows.result is not None, 180, "the evaluation")
    ev = flows.result.evaluator
    matrix = ev.confusion(panel.threshold, flows.panel.iou_value).matrix
    cells = [(int(matrix[r, c]), r, c) for r in range(len(matrix)) for c in range(len(matrix)) if r != c]
    _, r, c = max(cells)
    flows.panel.filter_cell(r, c)                 # what a click on the cell does
    _wait(app, lambda: window.browser.paths and window.browser.shown == window.browser.paths[0]
          and panel.kept is not None, 60, "the first image of the confusion cell")
    _save(app, out / "eval.png")

    _review(app, window, scratch, out)

    video = _video_from(images[:6], scratch / "demo.avi")
    shown = []
    window.live.frame_shown.connect(lambda frame, dets: shown.append(dets is not None))
    window.open_paths([str(video)])
    _wait(app, lambda: sum(shown) >= 12 and "latency" in window.live_label.text(), 60, "video frames with detections")
    _save(app, out / "video.png")

    window.close()
    shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=REPO / "resources" / "demo")
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "screenshots")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("DETSCOPE_SCREENSHOTS_UNDER_XVFB"):
        return _rerun_under_xvfb()
    if not (args.demo / "saved_model" / "saved_model.pb").is_file():
        print(f"error: {args.demo} has no demo model (make demo)", file=sys.stderr)
        return 2
    render(args.demo.resolve(), args.out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
