"""The evaluation in the window, on the bundled demo and its test images (VOC XML beside each image).

The panel's figures are checked against ``detscope eval --json`` run in its own process (its own data
folder, so it runs the model itself); the counts as the threshold moves against core's Evaluator; the
image list after a click on a confusion cell against core's ``images_in_cell``; and the ground-truth
boxes by their pixels. These tests need ``resources/demo`` (``make demo``); they skip without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from detscope.core.eval.evaluator import Counts
from detscope.core.media.images import list_images
from detscope.gui.panels.eval_panel import ClassMetrics
from detscope.gui.panels.truth_overlay import FN_COLOUR, FP_COLOUR, TP_COLOUR

from gui_helpers import LOAD_TIMEOUT_MS

EVAL_TIMEOUT_MS = 240_000
COLUMNS = {name: i for i, name in enumerate(ClassMetrics.HEADERS)}


class CliEval:
    """``detscope eval DEMO IMAGES --json`` started at once in another process; ``json()`` waits for it."""

    def __init__(self, demo: Path, data: Path):
        env = {**os.environ, "DETSCOPE_DATA_DIR": str(data)}
        self.proc = subprocess.Popen([sys.executable, "-m", "detscope.core.cli", "eval", str(demo),
                                      str(demo / "test" / "images"), "--json"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._json = None

    def json(self) -> dict:
        if self._json is None:
            out, err = self.proc.communicate(timeout=600)
            assert self.proc.returncode == 0, err[-2000:]
            self._json = json.loads(out)
        return self._json


@pytest.fixture(scope="module")
def cli_eval(demo, tmp_path_factory):
    cli = CliEval(demo, tmp_path_factory.mktemp("cli-data"))
    yield cli
    if cli.proc.poll() is None:
        cli.proc.kill()
        cli.proc.communicate()


def open_demo(qtbot, window, demo, *images):
    """The demo model and its test images (all of them by default), loaded, their ground truth read."""
    window.open_paths([str(demo)] + [str(p) for p in (images or [demo / "test" / "images"])])
    session = window.session
    # the load's future is done before its answer reaches the GUI thread: wait for the answer
    qtbot.waitUntil(lambda: session.model is not None or (session.loading is None and not session.busy),
                    timeout=LOAD_TIMEOUT_MS)
    assert session.model is not None, [r.text() for r in window.problems.rows()]
    # the first image's detections too: their status line would otherwise land in the middle of a test
    qtbot.waitUntil(lambda: window.evaluation.truth is not None and window.browser.shown is not None
                    and window.image_panel.kept is not None, timeout=LOAD_TIMEOUT_MS)


def evaluate(qtbot, window):
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=EVAL_TIMEOUT_MS) as blocker:
        window.menu_actions["evaluate"].trigger()
    assert blocker.args[0] is not None, window.status_line.text()
    return blocker.args[0]


def all_row(panel) -> dict:
    row = panel.classes.rows[-1]
    assert row[0] == "All classes"
    return {name: row[i] for name, i in COLUMNS.items()}


def test_the_panel_shows_what_detscope_eval_prints(qtbot, window, demo, cli_eval, qtmodeltester):
    open_demo(qtbot, window, demo)
    flows, panel = window.evaluation, window.evaluation.panel
    # the panel's tab is there, behind the problems and restore report until an evaluation brings it forward
    assert window.eval_dock.toggleViewAction().isChecked() and window.problems_dock.isVisible()
    assert flows.truth.format == "voc" and "36 of 36 images annotated" in panel.about.text()
    seen = []
    window.bridge.tasks_changed.connect(lambda: seen.append(window.task_status.label.text()))
    result = evaluate(qtbot, window)
    assert window.eval_dock.isVisible()
    # progress in the status bar while it ran
    assert any(t.startswith("Evaluating 36 images") for t in seen), seen
    assert any("/36 images" in t for t in seen), seen

    cli = cli_eval.json()
    ev = result.evaluator
    assert window.image_panel.threshold == pytest.approx(0.5) and panel.iou_value == 0.5
    assert cli["threshold"] == 0.5 and cli["iou"] == 0.5
    # mAP@0.5: COCO's AP50 and VOC's, as the CLI prints them
    assert ev.coco().stats["AP50"] == pytest.approx(cli["coco"]["AP50"], abs=1e-6)
    assert ev.voc().mAP == pytest.approx(cli["voc"]["mAP50"], abs=1e-6)
    row = all_row(panel)
    assert row["AP50"] == f"{cli['coco']['AP50']:.3f}" and row["VOC AP50"] == f"{cli['voc']['mAP50']:.3f}"
    assert row["AP"] == f"{cli['coco']['mAP']:.3f}"
    assert f"mAP@0.5 <b>{cli['coco']['AP50']:.3f}</b>" in panel.headline.text()
    # TP/FP/FN at the threshold, every class and per class
    a = cli["at_threshold"]
    assert (row["TP"], row["FP"], row["FN"]) == (a["tp"], a["fp"], a["fn"])
    for mine, theirs in zip(panel.classes.rows[:-1], cli["classes"]):
        assert mine[0] == theirs["label"]
        assert mine[COLUMNS["TP"]:COLUMNS["FN"] + 1] == (theirs["tp"], theirs["fp"], theirs["fn"])
        assert mine[COLUMNS["AP50"]] == (f"{theirs['AP50']:.3f}" if theirs["AP50"] is not None else "–")
    assert panel.confusion.rows == [tuple(r) for r in cli["confusion"]["matrix"]]
    assert {k: v for k, v in zip(panel.errors.kinds, (r[1] for r in panel.errors.rows))} == cli["errors"]
    for model in (panel.classes, panel.confusion, panel.errors):
        qtmodeltester.check(model)
    # after an evaluation the list is ordered most errors first, as core ranks the images
    worst = [Path(ev.items[i].path) for i in ev.worst_images(0.5, 0.5)]
    assert window.browser.paths == worst
    first = ev.image_errors(ev.worst_images(0.5, 0.5)[0], 0.5, 0.5)
    assert window.image_panel.files.item(0).text() == f"{worst[0].name}   {len(first.fp)} FP · {len(first.fn)} FN"


def test_the_counts_follow_the_threshold_as_core_counts_them(qtbot, window, demo, calls):
    open_demo(qtbot, window, demo)
    result = evaluate(qtbot, window)
    ev, panel, image_panel = result.evaluator, window.evaluation.panel, window.image_panel
    ran = calls.detections()
    objects = int(ev.objects.sum())
    previous = None
    for t in (0.2, 0.35, 0.5, 0.65, 0.8, 0.95):
        image_panel.set_threshold(t)
        row = all_row(panel)
        tp, fp, fn = ev.counts(t, 0.5).total
        assert (row["TP"], row["FP"], row["FN"]) == (tp, fp, fn), t
        p, r, f1 = (float(v) for v in Counts.prf(tp, fp, fn))
        assert row["Precision"] == f"{p:.3f}" and row["Recall"] == f"{r:.3f}" and row["F1"] == f"{f1:.3f}"
        assert f"TP <b>{tp}</b> · FP <b>{fp}</b> · FN <b>{fn}</b>" in panel.at_threshold.text()
        assert tp + fn == objects
        if previous is not None:                 # a higher threshold keeps fewer detections
            assert tp <= previous[0] and fp <= previous[1]
        previous = (tp, fp)
        # the image on screen: its detections coloured as core matched them, its missed objects marked
        path = window.browser.shown
        i = window.evaluation._index[path]
        errors = ev.image_errors(i, t, 0.5)
        colours = [b.colour.rgb() for b in image_panel.view.boxes]
        assert colours.count(TP_COLOUR.rgb()) == errors.tp and colours.count(FP_COLOUR.rgb()) == len(errors.fp)
        missed = [item for item in window.evaluation.overlay.truth if item.pen().color().rgb() == FN_COLOUR.rgb()]
        assert len(missed) == len(errors.fn) and len(window.evaluation.overlay.truth) == len(ev.items[i].truth)
    assert calls.detections() == ran, "moving the threshold ran the model"
    # the best-F1 button sets the slider at (or just below) core's best threshold
    best = ev.best_thresholds(0.5)[None]
    panel.best_button.click()
    assert best["threshold"] - 0.01 < image_panel.threshold <= best["threshold"]
    assert ev.counts(image_panel.threshold, 0.5).total[0] >= ev.counts(best["threshold"], 0.5).total[0]


def test_a_stricter_iou_matches_again_off_the_gui_thread_and_counts_as_core(qtbot, window, demo):
    open_demo(qtbot, window, demo)
    result = evaluate(qtbot, window)
    ev, panel, image_panel = result.evaluator, window.evaluation.panel, window.image_panel
    image_panel.set_threshold(0.5)
    before = all_row(panel)
    panel.iou.setValue(0.9)
    # the panel shows it is matching again, then the counts at IoU 0.9 as core counts them
    qtbot.waitUntil(lambda: f"IoU 0.90" in panel.at_threshold.text(), timeout=10_000)
    tp, fp, fn = ev.counts(0.5, 0.9).total
    row = all_row(panel)
    assert (row["TP"], row["FP"], row["FN"]) == (tp, fp, fn)
    assert tp <= before["TP"] and fn >= before["FN"]       # a stricter overlap never finds more
    assert not panel.progress.isVisible()


def test_a_confusion_cell_and_an_error_type_filter_the_image_list(qtbot, window, demo):
    open_demo(qtbot, window, demo)
    result = evaluate(qtbot, window)
    ev, panel, browser = result.evaluator, window.evaluation.panel, window.browser
    t = window.image_panel.threshold
    conf = ev.confusion(t, 0.5).matrix
    off = [(r, c) for r in range(len(conf)) for c in range(len(conf)) if r != c and conf[r, c]]
    assert off, "the demo has no confusion at all"
    r, c = max(off, key=lambda rc: conf[rc])
    view = panel.confusion_view
    index = panel.confusion.index(r, c)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())
    expected = [Path(ev.items[i].path) for i in ev.images_in_cell(r, c, t, 0.5)]
    assert sorted(browser.paths) == sorted(expected) and len(browser.paths) == len(expected)
    assert window.image_panel.files.count() == len(expected)
    assert panel.filter_box.currentText().startswith("Confusion: ")
    qtbot.waitUntil(lambda: browser.shown == browser.paths[0], timeout=10_000)
    # an error type
    errors = panel.errors_view
    k = panel.errors.kinds.index("missed")
    qtbot.mouseClick(errors.viewport(), Qt.MouseButton.LeftButton,
                     pos=errors.visualRect(panel.errors.index(k, 0)).center())
    expected = {Path(ev.items[i].path) for i in ev.images_with_error("missed", t, 0.5)}
    assert set(browser.paths) == expected and len(browser.paths) == len(expected)
    # by class
    cross = next(int(c) for c in ev.class_ids if ev.label(int(c)) == "Cross")
    panel.class_box.setCurrentIndex(panel.class_box.findData(cross))
    expected = {Path(ev.items[i].path) for i in ev.images_with_error("missed", t, 0.5, cross)}
    assert set(browser.paths) == expected
    # and back to every image
    panel.show_all_button.click()
    assert len(browser.paths) == len(ev.items) == 36


def test_ground_truth_is_drawn_dashed_black_on_white(qtbot, window, demo):
    images = list_images([demo / "test" / "images"])
    open_demo(qtbot, window, demo, images[0])
    panel, flows = window.image_panel, window.evaluation
    qtbot.waitUntil(lambda: panel.kept is not None, timeout=LOAD_TIMEOUT_MS)
    panel.set_threshold(1.0)                      # no detection drawn: only the ground truth
    panel.set_labels_visible(False)
    panel.actual_size()
    ann = flows.truth.lookup(images[0])
    assert ann is not None and len(flows.overlay.truth) == len(ann) > 0
    x0, y0, x1, y1 = (float(v) for v in ann.boxes[int(np.argmax(ann.boxes[:, 2] - ann.boxes[:, 0]))])

    def top_edge():
        image = panel.view.viewport().grab().toImage()
        ratio = image.devicePixelRatio()
        rows = []
        for dy in (-0.5, 0.5):
            row = []
            for x in np.arange(x0 + 3, x1 - 3, 1.0):
                p = panel.view.mapFromScene(QPointF(x, y0 + dy))
                row.append(image.pixelColor(round(p.x() * ratio), round(p.y() * ratio)))
            rows.append(row)
        return rows

    def share(row, test) -> float:
        return sum(1 for c in row if test(c)) / len(row)

    white = lambda c: min(c.red(), c.green(), c.blue()) >= 215            # noqa: E731
    black = lambda c: max(c.red(), c.green(), c.blue()) <= 40             # noqa: E731
    on = top_edge()
    assert any(share(r, white) > 0.25 and share(r, black) > 0.25 for r in on), \
        [[c.name() for c in r[:16]] for r in on]
    window.menu_actions["show_truth"].trigger()   # Image ▸ Show ground truth off
    assert not flows.truth_visible and not flows.overlay.truth
    off = top_edge()
    line = next(k for k, r in enumerate(on) if share(r, white) > 0.25 and share(r, black) > 0.25)
    changed = sum(1 for a, b in zip(on[line], off[line]) if a.rgb() != b.rgb())
    assert changed > 0.5 * len(on[line])          # it was the overlay, not the picture
    # Image ▸ Show boxes below the threshold: every kept detection, dotted, at threshold 1
    window.menu_actions["show_below"].trigger()
    assert len(flows.overlay.ghosts) == len(panel.kept) > 0


def test_an_evaluation_can_be_cancelled_from_the_status_bar(qtbot, window, demo):
    open_demo(qtbot, window, demo)
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=EVAL_TIMEOUT_MS) as blocker:
        window.menu_actions["evaluate"].trigger()
        assert window.evaluation.running and window.task_status.isVisible()
        window.task_status.cancel_button.click()
    assert blocker.args[0] is None and window.evaluation.result is None
    qtbot.waitUntil(lambda: not window.evaluation.running, timeout=10_000)
    assert "cancelled" in window.status_line.text()
    assert window.evaluation.panel.evaluate_button.isEnabled()


def test_an_evaluation_belongs_to_the_checkpoint_it_tested(qtbot, window, demo):
    """A checkpoint switch drops the evaluation; the next one tests (and caches under) the new checkpoint."""
    open_demo(qtbot, window, demo)
    first = evaluate(qtbot, window)
    assert first.model.checkpoint_name == "ckpt-5"
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=LOAD_TIMEOUT_MS) as dropped:
        window.model.choose_checkpoint("ckpt-3")
    assert dropped.args[0] is None and window.evaluation.result is None
    assert window.browser.paths == window.browser.all_paths          # the list is whole again
    qtbot.waitUntil(lambda: not window.session.busy and window.session.model.checkpoint_name == "ckpt-3",
                    timeout=LOAD_TIMEOUT_MS)
    second = evaluate(qtbot, window)
    assert second.model.checkpoint_name == "ckpt-3"
    assert second.cached == 0, "ckpt-3's detections were taken from ckpt-5's cache"
    ev1, ev3 = first.evaluator, second.evaluator
    same = [len(a.detections) == len(b.detections) and np.allclose(a.detections.scores, b.detections.scores)
            for a, b in zip(ev1.items, ev3.items)]
    assert not all(same)


def test_ground_truth_kept_elsewhere_is_read_from_the_file_the_user_chooses(qtbot, window, demo, tmp_path):
    import shutil

    images = tmp_path / "images"
    images.mkdir()
    for png in sorted((demo / "test" / "images").glob("*.png")):
        shutil.copy(png, images / png.name)          # the images alone: their annotations stay behind
    window.open_paths([str(demo), str(images)])
    flows, panel = window.evaluation, window.evaluation.panel
    qtbot.waitUntil(lambda: window.session.model is not None and not flows.truth_reading, timeout=LOAD_TIMEOUT_MS)
    assert flows.truth is None and "Open ground truth" in panel.about.text()
    assert "open_truth" in window.menu_actions

    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    flows.use_truth(bad)
    qtbot.waitUntil(lambda: not flows.truth_reading, timeout=LOAD_TIMEOUT_MS)
    assert flows.truth is None and "broken.json" in panel.about.text()

    flows.use_truth(demo / "test" / "annotations.json")
    qtbot.waitUntil(lambda: flows.truth is not None, timeout=LOAD_TIMEOUT_MS)
    assert flows.truth.format == "coco"
    assert f"{len(list(images.glob('*.png')))} of {len(list(images.glob('*.png')))} images annotated" in panel.about.text()
    result = evaluate(qtbot, window)
    assert len(result.evaluator.items) == len(list(images.glob("*.png"))) and result.evaluator.objects.sum() > 0
    assert {p.suffix for p in images.iterdir()} == {".png"}        # nothing written beside the images
