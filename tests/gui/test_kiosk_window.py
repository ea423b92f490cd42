"""Kiosk mode as a person at the keyboard meets it: keys, a camera that drops out and comes back,
looping sources, and never a box from a model that was not completely restored."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from detscope.core.media.sources import FrameSource, ImageFolderSource, SourceError

from gui_helpers import LOAD_TIMEOUT_MS

tf = pytest.importorskip("tensorflow")


class FlakyCamera(FrameSource):
    """A live source whose first opening fails (a camera unplugged), then delivers frames."""

    live = True

    def __init__(self, image, fail_first: int = 1):
        super().__init__("camera 9", read_timeout=1.0, open_timeout=2.0)
        self.image, self.failures_left, self.count = image, fail_first, 0

    def _open(self):
        if self.failures_left > 0:
            self.failures_left -= 1
            raise SourceError("camera 9 cannot be opened")
        return object()

    def _read(self, handle):
        time.sleep(0.03)
        self.count += 1
        return self.image, self.count


@pytest.fixture
def demo_dir(demo) -> Path:
    return demo


@pytest.fixture
def demo_images(demo) -> list[Path]:
    from detscope.core.media.images import list_images

    return list_images([demo / "test" / "images"])


@pytest.fixture
def kiosk(qtbot, window):
    from detscope.gui.kiosk_window import KioskWindow

    k = KioskWindow(window.session, window.bridge, threshold=0.5)
    qtbot.addWidget(k)
    k.resize(900, 600)
    k.show()
    yield k
    k.controller.stop()


def _frames_with_boxes(qtbot, kiosk, timeout=LOAD_TIMEOUT_MS):
    qtbot.waitUntil(lambda: len(kiosk.screen_view.view.boxes) > 0, timeout=timeout)


def test_kiosk_shows_boxes_and_obeys_its_keys(qtbot, window, kiosk, demo_dir, demo_images, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt

    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    window.model.open(demo_dir)
    kiosk.start(ImageFolderSource(demo_images[:2], fps=20.0, loop=True))
    qtbot.waitUntil(lambda: "warming up" in kiosk.screen_view.notice.text() or window.session.model is not None)
    _frames_with_boxes(qtbot, kiosk)
    c = kiosk.controller
    assert kiosk.screen_view.title.text().startswith("demo")
    assert "fps shown" in kiosk.screen_view.status.text() or qtbot.waitUntil(
        lambda: "fps shown" in kiosk.screen_view.status.text())
    qtbot.keyClick(kiosk, Qt.Key.Key_Plus)
    assert c.threshold == pytest.approx(0.55)
    assert kiosk.screen_view.help.isVisible()           # any key shows the help line
    qtbot.keyClick(kiosk, Qt.Key.Key_Minus)
    qtbot.keyClick(kiosk, Qt.Key.Key_Minus)
    assert c.threshold == pytest.approx(0.45)
    qtbot.keyClick(kiosk, Qt.Key.Key_Space)
    assert c.paused and "paused" in kiosk.screen_view.notice.text()
    qtbot.keyClick(kiosk, Qt.Key.Key_Space)
    assert not c.paused
    qtbot.keyClick(kiosk, Qt.Key.Key_S)
    snaps = list((tmp_path / "data" / "snapshots").glob("*_annotated.png"))
    assert len(snaps) == 1
    qtbot.keyClick(kiosk, Qt.Key.Key_R)
    assert c.recorder is not None
    qtbot.wait(500)
    qtbot.keyClick(kiosk, Qt.Key.Key_R)
    assert c.recorder is None and c.recording_path.stat().st_size > 0
    assert not any(p.suffix in (".png", ".mp4") for p in demo_dir.rglob("*") if "test" not in p.parts)
    # Esc let go early keeps the kiosk; held for two seconds it leaves.
    qtbot.keyPress(kiosk, Qt.Key.Key_Escape)
    qtbot.wait(300)
    qtbot.keyRelease(kiosk, Qt.Key.Key_Escape)
    qtbot.wait(2000)
    assert kiosk.isVisible()
    with qtbot.waitSignal(kiosk.closed, timeout=4000):
        qtbot.keyPress(kiosk, Qt.Key.Key_Escape)


def test_a_camera_that_fails_is_reopened_and_the_last_frame_dims(qtbot, window, kiosk, demo_dir):
    window.model.open(demo_dir)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=LOAD_TIMEOUT_MS)
    camera = FlakyCamera(np.full((120, 160, 3), 90, np.uint8), fail_first=1)
    kiosk.start(camera)
    qtbot.waitUntil(lambda: "not delivering frames" in kiosk.screen_view.notice.text(), timeout=5000)
    qtbot.waitUntil(lambda: kiosk.controller._image is not None, timeout=8000)    # reopened after 1 s
    assert not kiosk.screen_view.dimmed and kiosk.controller.backoff.attempts == 0
    assert kiosk.screen_view.notice.text() == ""


def test_an_image_folder_loops(qtbot, window, kiosk, demo_dir, demo_images):
    window.model.open(demo_dir)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=LOAD_TIMEOUT_MS)
    source = ImageFolderSource(demo_images[:2], fps=30.0, loop=True)
    seen = []
    kiosk.start(source)
    qtbot.waitUntil(lambda: (seen.append(source.latest().index) if source.latest() else None) or
                    seen.count(0) >= 2 and 1 in seen, timeout=10000)


def test_no_boxes_from_a_partial_restore(qtbot, window, kiosk, tmp_path, demo_images):
    import model_artifacts as ma

    four = window.engine.run_sync(ma.training_run, tmp_path / "four", num_classes=4, export_model=False)
    base = window.engine.run_sync(ma.training_run, tmp_path / "base")
    with qtbot.waitSignal(window.session.model_ready, timeout=LOAD_TIMEOUT_MS):
        window.session.open(four / "training", template=base / "saved_model")
    assert window.session.model.report.verdict == "partial"
    kiosk.start(ImageFolderSource(demo_images[:1], fps=20.0, loop=True))
    qtbot.waitUntil(lambda: kiosk.controller._image is not None, timeout=5000)
    qtbot.wait(500)
    assert kiosk.screen_view.view.boxes == []
    assert "not fully restored" in kiosk.screen_view.notice.text()
