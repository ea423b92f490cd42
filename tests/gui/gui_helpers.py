"""Helpers shared by the GUI tests: counting engine calls, waiting for a model, making videos."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np

LOAD_TIMEOUT_MS = 90_000      # importing TensorFlow and loading the demo on a slow CI machine


class EngineCalls:
    """Counts what reaches the engine (to prove that filtering never runs the model)."""

    def __init__(self, engine, monkeypatch):
        self.submitted: list[str] = []
        submit, latest = engine.submit, engine.submit_latest

        def counting_submit(fn, *a, name=None, **kw):
            self.submitted.append(name or getattr(fn, "__name__", "work"))
            return submit(fn, *a, name=name, **kw)

        def counting_latest(fn, frame, *a, name=None, **kw):
            self.submitted.append(name or "frame")
            return latest(fn, frame, *a, name=name, **kw)

        monkeypatch.setattr(engine, "submit", counting_submit)
        monkeypatch.setattr(engine, "submit_latest", counting_latest)

    def detections(self) -> int:
        return sum(1 for n in self.submitted if n.startswith("detect") or n == "frame")


def wait_loaded(qtbot, win, timeout=LOAD_TIMEOUT_MS):
    """Until the tree is filled and the model is loaded (or failed: then the test fails with its line)."""
    qtbot.waitUntil(lambda: win.session.inventory is not None and win.tree.model.rowCount() > 0, timeout=timeout)
    qtbot.waitUntil(lambda: win.session.model is not None or not win.session.busy, timeout=timeout)
    assert win.session.model is not None, win.status_line.text()


def run_on_engine(win, fn, *args):
    """The test thread may wait on the engine (the GUI never does)."""
    return win.engine.submit(fn, *args).result(60)


def frames_video(path: Path, images, size=(320, 240), repeat: int = 3, fps: float = 10.0) -> Path:
    """An MJPG .avi made of the given RGB images (resized), each shown ``repeat`` times."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for rgb in images:
        bgr = cv2.cvtColor(cv2.resize(rgb, size), cv2.COLOR_RGB2BGR)
        for _ in range(repeat):
            writer.write(bgr)
    writer.release()
    return path


def copy_checkpoint_folder(src: Path, dst: Path, drop_data_of: str | None = None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file():
            shutil.copy2(p, dst / p.name)
    if drop_data_of is not None:
        for p in dst.glob(f"{drop_data_of}.data-*"):
            p.unlink()
    return dst


def no_stray_threads(prefix: str = "detscope-source") -> bool:
    return not any(t.name.startswith(prefix) and t.is_alive() for t in threading.enumerate())


def boxes_of(view) -> np.ndarray:
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in (b.rect() for b in view.boxes)],
                    np.float32).reshape(-1, 4)
