"""The whole window on the bundled demo model: tree, restore report, detections, filtering, video, closing.

These tests need ``resources/demo`` (``make demo``); they skip without it. ``DETSCOPE_DEMO`` may name
another folder of the same shape (saved_model/, training/ckpt-N, label_map.pbtxt, test/images/).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from detscope.core.media.images import list_images, load_image
from detscope.core.media.sources import ERROR
from detscope.gui.panels.problems_panel import PAYLOAD

from gui_helpers import LOAD_TIMEOUT_MS, boxes_of, copy_checkpoint_folder, frames_video, no_stray_threads, \
    wait_loaded

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    folder = Path(os.environ.get("DETSCOPE_DEMO") or REPO / "resources" / "demo")
    if not (folder / "saved_model" / "saved_model.pb").is_file():
        pytest.skip(f"the demo model is not generated ({folder}/saved_model/saved_model.pb is absent; make demo)")
    return folder


@pytest.fixture(scope="session")
def demo_images(demo_dir) -> list[Path]:
    return list_images([demo_dir / "test" / "images"])


def open_with_image(qtbot, window, demo_dir, image: Path):
    with qtbot.waitSignal(window.browser.detections_shown, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(demo_dir), str(image)])
    wait_loaded(qtbot, window)
    return window.image_panel


def test_settings_are_isolated(isolated_settings):
    from detscope.gui.qt.settings import settings

    assert Path(settings().fileName()).is_relative_to(isolated_settings)


# --- the window appears before TensorFlow ---------------------------------------------------------

def test_window_shows_before_tensorflow_is_imported(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "detscope.gui.app", "--exit-when-shown"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("window-shown"))
    assert line.endswith("tensorflow=False")


def test_the_window_detects_without_ever_importing_tensorflow(tmp_path):
    """The demo loads and its first image is drawn with boxes, while the window's own process never imports
    TensorFlow: the model lives in a process of its own."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "DETSCOPE_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "detscope.gui.app", "--exit-when-detected"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("detected"))
    assert int(line.split()[1]) > 0 and line.endswith("tensorflow=False")


def test_a_crash_of_the_model_process_is_a_line_and_the_model_opens_again(qtbot, window, demo_dir, demo_images):
    import signal

    open_with_image(qtbot, window, demo_dir, demo_dir / "test" / "images")
    os.kill(window.session.host.process.pid, signal.SIGKILL)      # TensorFlow crashing on a model does this
    with qtbot.waitSignal(window.bridge.errored, timeout=30_000) as said:
        window.browser.step(1)
    assert re.fullmatch(r"(detection failed: )?the model's process ended \(it was killed \(SIGKILL\)\)"
                        r"( during detect)?: open the model again.*", said.args[0]), said.args[0]
    assert window.isVisible()
    panel = open_with_image(qtbot, window, demo_dir, demo_images[0])
    assert panel.kept is not None and len(panel.kept) > 0


# --- model, tree, restore report ------------------------------------------------------------------

def test_checkpoint_folder_fills_tree_and_reports_restore(qtbot, window, demo_dir, qtmodeltester):
    session = window.session
    with qtbot.waitSignals([session.inventory_ready, session.report_changed], timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(demo_dir / "training")])
    wait_loaded(qtbot, window)
    qtmodeltester.check(window.tree.model)
    assert window.tree.model.rowCount() > 0
    assert any(c.name.startswith("Checkpoint") for c in window.tree.model.root.children)

    report = window.problems.report
    assert report is not None and report is session.model.report and report.matched
    assert window.problems.report_item.text().endswith(report.summary())
    # The picker lists the folder's checkpoints newest first, with their step.
    names = [window.model_box.checkpoints.itemData(i) for i in range(window.model_box.checkpoints.count())]
    numbers = [int(n.split("-")[1]) for n in names]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) >= 2
    assert window.model_box.checkpoints.currentText().startswith(session.model.checkpoint_name)
    assert "\n" not in window.status_line.text() and "loaded in" in window.status_line.text()


def test_switching_checkpoint_restores_without_reloading(qtbot, window, demo_dir, demo_images, calls):
    open_with_image(qtbot, window, demo_dir / "training", demo_images[0])
    calls.submitted.clear()
    session = window.session
    before = session.model.checkpoint_name
    other = window.model_box.checkpoints.itemData(window.model_box.checkpoints.count() - 1)
    assert other != before
    with qtbot.waitSignals([session.report_changed, window.browser.detections_shown], timeout=LOAD_TIMEOUT_MS):
        window.model_box.checkpoints.setCurrentIndex(window.model_box.checkpoints.count() - 1)
        window.model_box.checkpoints.activated.emit(window.model_box.checkpoints.count() - 1)
    assert session.model.checkpoint_name == other and window.problems.report.source == other
    assert not any(n.startswith("load") for n in calls.submitted)   # the same live model: weights re-assigned
    assert f"restore {other}" in calls.submitted
    qtbot.waitUntil(lambda: session.inventory is not None and session.inventory.checkpoint.name == other)


# --- detections on an image -----------------------------------------------------------------------

def test_overlay_holds_exactly_the_detections_above_threshold(qtbot, window, demo_dir, demo_images,
                                                             qtmodeltester):
    panel = open_with_image(qtbot, window, demo_dir, demo_images[0])
    image = load_image(demo_images[0])
    expected = window.session.detect(image).result(timeout=60).above(panel.threshold)
    assert len(panel.view.boxes) == len(expected) == panel.table_model.rowCount()
    np.testing.assert_allclose(boxes_of(panel.view), expected.boxes, atol=1e-3)
    assert [t.text for t in panel.view.labels] == [f"{l} {s:.2f}" for l, s in zip(expected.labels, expected.scores)]
    assert all(b.pen().isCosmetic() for b in panel.view.boxes)
    qtmodeltester.check(panel.table_model)
    # Scene coordinates are image pixels.
    assert panel.view.sceneRect().width() == image.shape[1] and panel.view.sceneRect().height() == image.shape[0]


def test_threshold_and_class_filter_never_run_the_model(qtbot, window, demo_dir, demo_images, calls):
    panel = open_with_image(qtbot, window, demo_dir, demo_images[1])
    kept = panel.kept
    runs = calls.detections()
    assert runs == 1
    for value in (0.05, 0.3, 0.9, 0.5):
        panel.slider.setValue(round(value * 100))
        expected = kept.above(value)
        assert len(panel.view.boxes) == len(expected)
        np.testing.assert_allclose(boxes_of(panel.view), expected.boxes, atol=1e-3)
    panel.set_threshold(0.0)
    assert len(panel.view.boxes) == len(kept)
    first = int(kept.class_ids[0])
    panel.set_class_visible(first, False)
    assert len(panel.view.boxes) == int(np.sum(kept.class_ids != first))
    panel.set_class_visible(first, True)
    panel.labels_box.setChecked(False)
    assert not any(t.isVisible() for t in panel.view.labels)
    assert calls.detections() == runs          # no inference for any of that


def test_next_image_runs_once_and_going_back_uses_the_cache(qtbot, window, demo_dir, demo_images, calls):
    open_with_image(qtbot, window, demo_dir, demo_dir / "test" / "images")
    assert calls.detections() == 1
    with qtbot.waitSignal(window.browser.detections_shown, timeout=30_000):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.browser.index == 1 and calls.detections() == 2
    with qtbot.waitSignal(window.browser.detections_shown, timeout=30_000):
        qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.browser.index == 0 and calls.detections() == 2


def test_clicking_a_box_shows_its_class_scores(qtbot, window, demo_dir, demo_images):
    panel = open_with_image(qtbot, window, demo_dir, demo_images[0])
    panel.set_threshold(0.0)
    view = panel.view
    assert view.boxes, "the demo image has no detection at all"
    target = min(view.boxes, key=lambda b: b.rect().width() * b.rect().height())
    point = view.mapFromScene(target.rect().center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert view.highlighted == target.row
    assert panel.table.currentIndex().row() == target.row
    text = panel.detail.text()
    assert panel.shown.labels[target.row] in text
    if panel.shown.multiclass_scores is not None:
        assert "all class scores" in text


def test_save_copy_and_snapshot_go_where_the_user_says(qtbot, window, demo_dir, demo_images, tmp_path):
    open_with_image(qtbot, window, demo_dir, demo_images[0])
    out = window.exports.save_to(tmp_path / "out" / "annotated.png")
    assert out is not None and out.is_file()
    assert window.exports.save_to(demo_dir / "annotated.png") is None      # never into the model folder
    assert not (demo_dir / "annotated.png").exists()
    assert "model folder" in window.status_line.text()
    window.exports.copy()
    assert not QApplication.clipboard().image().isNull()
    written = window.exports.snapshot()
    assert written and all(p.is_file() for p in written)
    assert written[0].parent == Path(os.environ["DETSCOPE_DATA_DIR"]) / "snapshots"


# --- problems panel ---------------------------------------------------------------------------------

def test_clicking_a_restore_report_row_selects_its_value(qtbot, window, demo_dir, qtmodeltester):
    """Findings: tests/gui/test_locate.py (a real Keras 3 checkpoint). Here the restore report's rows, which
    name checkpoint keys: a matched one selects its value."""
    with qtbot.waitSignal(window.session.report_changed, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(demo_dir / "training")])
    qtmodeltester.check(window.problems.model)
    model = window.tree.model
    matched = next(r for r in window.problems.rows(window.problems.report_item)
                   if isinstance(r.data(PAYLOAD), tuple) and model.find_key(r.data(PAYLOAD)[1]) is not None)
    window.problems._activated(matched)
    assert window.tree.current_node().key == matched.data(PAYLOAD)[1]


def test_missing_shard_shows_its_message_in_the_details(qtbot, window, demo_dir, tmp_path):
    state = (demo_dir / "training" / "checkpoint").read_text()
    latest = state.split('"')[1]
    folder = copy_checkpoint_folder(demo_dir / "training", tmp_path / "copy" / "training", drop_data_of=latest)
    with qtbot.waitSignal(window.session.inventory_ready, timeout=30_000):
        window.open_paths([str(folder)])
    variable = next(n for n in window.tree.model.root.walk() if n.kind == "variable" and n.shape is not None)
    window.tree.select_node(variable)
    details = window.details
    qtbot.waitUntil(lambda: details.pending is None and details.message.text() != "", timeout=30_000)
    assert "is missing" in details.message.text() and "\n" not in details.message.text()
    assert not details.histogram.isVisible()
    # The model cannot be loaded from there (no template beside the copy): one line, not a crash.
    qtbot.waitUntil(lambda: not window.session.busy, timeout=LOAD_TIMEOUT_MS)
    assert "\n" not in window.status_line.text()


def test_selecting_a_variable_shows_statistics_and_histogram(qtbot, window, demo_dir):
    with qtbot.waitSignal(window.session.inventory_ready, timeout=30_000):
        window.open_paths([str(demo_dir / "training")])
    variable = max((n for n in window.tree.model.root.walk() if n.kind == "variable" and n.shape),
                   key=lambda n: n.params or 0)
    window.tree.select_node(variable)
    qtbot.waitUntil(lambda: window.details.pending is None, timeout=30_000)
    assert "mean" in window.details.stats_label.text()
    assert window.details.histogram.counts and sum(window.details.histogram.counts) <= variable.params


# --- live sources ------------------------------------------------------------------------------------

def test_video_file_source_shows_frames_with_overlays_and_stops_cleanly(qtbot, window, demo_dir, demo_images,
                                                                       tmp_path, calls):
    video = frames_video(tmp_path / "clip.avi", [load_image(p) for p in demo_images[:4]])
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(demo_dir)])
    shown = []
    window.live.frame_shown.connect(lambda frame, dets: shown.append((frame.index, dets)))
    window.open_paths([str(video)])
    qtbot.waitUntil(lambda: sum(1 for _, d in shown if d is not None) >= 3, timeout=60_000)
    index, dets = next((i, d) for i, d in reversed(shown) if d is not None)
    panel = window.image_panel
    assert panel.kept is dets and len(panel.view.boxes) == len(dets.above(panel.threshold))
    assert panel.image.shape == (240, 320, 3)
    assert calls.detections() >= 3 and all(n == "frame" for n in calls.submitted if not n.startswith("load"))
    qtbot.waitUntil(lambda: "latency" in window.live_label.text(), timeout=10_000)
    assert "inference" in window.live_label.text() and "fps" in window.live_label.text()
    window.sources.toggle_pause()
    assert window.live.source.paused
    window.sources.stop()
    assert not window.live.active
    qtbot.waitUntil(no_stray_threads, timeout=10_000)


def test_a_camera_that_does_not_open_says_so_with_retry(qtbot, window):
    with qtbot.waitSignal(window.live.state_changed, timeout=20_000,
                          check_params_cb=lambda state, error: state == ERROR):
        window.sources.open_source(97)
    assert window.image_panel.banner.isVisible()
    assert "camera 97" in window.image_panel.banner.label.text()
    buttons = [window.image_panel.banner.buttons.itemAt(i).widget().text()
               for i in range(window.image_panel.banner.buttons.count())]
    assert "Retry" in buttons
    with qtbot.waitSignal(window.live.state_changed, timeout=20_000,
                          check_params_cb=lambda state, error: state == ERROR):
        window.sources.retry()
    window.sources.stop()


# --- closing -----------------------------------------------------------------------------------------

def test_closing_while_a_restore_runs_exits_cleanly(qtbot, window, demo_dir):
    session = window.session
    with qtbot.waitSignal(session.model_ready, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(demo_dir / "training")])
    other = window.model_box.checkpoints.itemData(window.model_box.checkpoints.count() - 1)
    session.switch_checkpoint(other)
    switching = session.switching
    started = threading.Event()
    # Keep a restore-like job running (it stops only when cancelled), so the close surely meets one.
    def long_restore(job=None):
        started.set()
        while True:
            job.check()
            time.sleep(0.01)
    future = window.engine.submit(long_restore, name="restore ckpt-long")
    window.bridge.track("Restoring ckpt-long", future, cancel=lambda: window.engine.cancel(future))
    session.switching = future
    qtbot.waitUntil(started.is_set, timeout=LOAD_TIMEOUT_MS)
    window.close()
    assert window.engine.join(30)
    assert future.cancelled() or isinstance(future.exception(timeout=0), Exception)
    assert switching.done()


def test_cancel_button_stops_loading(qtbot, window, demo_dir):
    window.open_paths([str(demo_dir)])
    assert window.task_status.isVisible() and window.task_status.cancel_button.isEnabled()
    window.task_status.cancel_current()
    qtbot.waitUntil(lambda: not window.session.busy, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.task_status.isVisible() or not any(
        t.title.startswith("Loading") for t in window.bridge.tasks), timeout=30_000)


# --- opening things ---------------------------------------------------------------------------------

def test_drop_and_recent_list(qtbot, window, demo_dir, demo_images):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_dir)), QUrl.fromLocalFile(str(demo_images[0]))])
    # Without a real drag in progress Qt does not route a drop event; hand it to the window's handler.
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.browser.image_shown, timeout=30_000):
        window.dropEvent(event)
    assert window.session.path == demo_dir
    assert window.recent.items()[0] == str(demo_dir.resolve())
    assert window.recent.menu.actions()[0].text().endswith(str(demo_dir.resolve()))


def test_full_screen_shows_only_the_image_and_comes_back(qtbot, window):
    assert window.tree_dock.isVisible()
    window.toggle_full_screen()
    qtbot.waitUntil(lambda: not window.tree_dock.isVisible())
    assert not window.image_panel.side.isVisible() and not window.menuBar().isVisible()
    window.cancel_work()                       # Esc leaves full screen first
    qtbot.waitUntil(lambda: window.tree_dock.isVisible())
    assert window.menuBar().isVisible() and window.image_panel.side.isVisible()


def test_checkpoint_without_architecture_says_so_and_restores_into_a_chosen_savedmodel(
        qtbot, window, demo_dir, tmp_path, monkeypatch):
    import shutil

    from PySide6.QtWidgets import QFileDialog

    folder = shutil.copytree(demo_dir / "training", tmp_path / "training")
    with qtbot.waitSignal(window.session.load_failed, timeout=LOAD_TIMEOUT_MS) as failed:
        window.open_paths([str(folder)])
    assert "--template" in failed.args[0]
    assert window.problems.report_item.text().startswith("Restore report: not restored")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(demo_dir / "saved_model"))
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS) as ready:
        window.model.choose_template()
    assert ready.args[0].report.verdict == "complete"
    assert "complete" in window.problems.report_item.text()


def test_outputs_mapped_by_hand_in_the_window(qtbot, window, tmp_path, monkeypatch):
    import numpy as np
    from model_artifacts import anonymous_outputs_export

    from detscope.gui.panels.output_mapping import OutputMappingDialog

    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    model = window.engine.run_sync(anonymous_outputs_export, tmp_path / "anon")
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS) as ready:
        window.open_paths([str(model)])
    assert not ready.args[0].can_detect
    assert any("map them by hand" in f.message for f in window.session.findings())

    def answer(dialog):
        dialog.combos["boxes"].setCurrentIndex(dialog.combos["boxes"].findData("a"))
        dialog.combos["scores"].setCurrentIndex(dialog.combos["scores"].findData("b"))
        dialog.combos["classes"].setCurrentIndex(dialog.combos["classes"].findData("c"))
        dialog.layout_box.setCurrentText("xywh")
        dialog.coordinates.setCurrentText("pixels")
        dialog.offset.setValue(1)
        return OutputMappingDialog.DialogCode.Accepted
    monkeypatch.setattr(OutputMappingDialog, "exec", answer)
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS) as ready:
        window.model.choose_output_mapping()
    summary = ready.args[0]
    assert summary.can_detect and summary.mapping.convention == "user"
    dets = window.session.detect(np.zeros((40, 80, 3), np.uint8)).result(timeout=60)
    assert dets.boxes.tolist() == [[20.0, 20.0, 60.0, 30.0]] and dets.class_ids.tolist() == [2]
    assert not any(p.suffix == ".json" for p in model.rglob("*"))  # nothing written into the model folder


def test_each_model_keeps_its_own_threshold_and_a_failed_open_clears_the_old_boxes(
        qtbot, window, demo_dir, demo_images, tmp_path):
    panel = open_with_image(qtbot, window, demo_dir, demo_images[0])
    assert len(panel.view.boxes) > 0
    panel.set_threshold(0.0)                       # everything the demo returns
    assert "score ≥ 0.00" in window.status_line.text()    # the status line follows the slider
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with qtbot.waitSignal(window.session.read_failed, timeout=LOAD_TIMEOUT_MS):
        window.model.open(not_a_model)
    assert panel.threshold == 0.5                   # another model: its own (default) threshold
    assert len(panel.view.boxes) == 0               # the demo's boxes are not this folder's
    assert "reading" not in window.model_box.label.text()
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS):
        window.model.open(demo_dir)
    assert panel.threshold == 0.0                   # the demo's own threshold comes back


def test_an_incomplete_restore_shows_no_boxes_until_the_user_agrees_then_marks_them(
        qtbot, window, tmp_path, demo_images):
    import model_artifacts as ma

    four = window.engine.run_sync(ma.training_run, tmp_path / "four", num_classes=4, export_model=False)
    base = window.engine.run_sync(ma.training_run, tmp_path / "base")
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS):
        window.session.open(four / "training", template=base / "saved_model")
    window.sources.open_images([demo_images[0]])
    qtbot.waitUntil(lambda: window.image_panel.image is not None)
    qtbot.wait(300)
    panel = window.image_panel
    assert panel.kept is None and len(panel.view.boxes) == 0
    assert not panel.banner.isHidden() and "Not fully restored" in panel.banner.label.text()
    assert "class_head" in panel.banner.label.text()            # what was not restored, named
    with qtbot.waitSignal(window.browser.detections_shown, timeout=LOAD_TIMEOUT_MS):
        window.model.allow_partial()
    assert panel.kept is not None
    assert not panel.banner.isHidden() and panel.banner.label.text().startswith("PARTIAL RESTORE")
