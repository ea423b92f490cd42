"""Frame sources: video files, image folders, cameras that are not there, and what paths are."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from detscope.core.media import sources
from detscope.core.detect.detections import Detections
from detscope.core.app.open_request import classify_paths
from detscope.core.media.snapshots import save_snapshot
from detscope.core.media.sources import ENDED, ERROR, PAUSED, RUNNING, STOPPED, FrameSource, ImageFolderSource, SourceError, VideoSource

FRAMES = 12


def write_video(path: Path, frames: int = FRAMES, size=(64, 48), fps: float = 50.0) -> Path:
    """An MJPG .avi whose frame ``i`` is a flat grey of level ``20 * i`` (readable back despite JPEG)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 256, np.uint8))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "clip.avi")


def level(frame) -> int:
    return int(round(float(frame.image.mean()) / 20))


def collect(src: FrameSource, timeout: float = 10.0) -> list:
    seen, last = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = src.next_frame(after=last, timeout=2.0)
        if frame is None:
            break
        seen.append(frame)
        last = frame.index
    return seen


def test_video_file_delivers_every_frame_in_order_then_ends(video):
    src = VideoSource(str(video), realtime=False).start()
    try:
        frames = collect(src)
        # Without pacing a fast reader may replace a frame before it is looked at: newest only.
        indices = [f.index for f in frames]
        assert indices == sorted(indices) and indices[-1] == FRAMES - 1
        assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
        assert all(level(f) == f.index for f in frames)
        deadline = time.monotonic() + 5
        while src.state != ENDED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert src.state == ENDED
        assert src.frame_count == FRAMES and src.nominal_fps == pytest.approx(50, rel=0.01)
    finally:
        src.stop()
    assert src.state == STOPPED


def test_realtime_playback_is_paced_and_measures_fps(tmp_path):
    src = VideoSource(str(write_video(tmp_path / "slow.avi", fps=25.0))).start()
    try:
        frames = collect(src)
        indices = [f.index for f in frames]
        assert indices == sorted(set(indices)) and indices[-1] == FRAMES - 1
        # Paced to the file's 25 fps: never faster than real time (a loaded machine may only be slower).
        span = frames[-1].timestamp - frames[0].timestamp
        assert span >= (indices[-1] - indices[0]) / 25 * 0.8
        assert 0 < src.fps < 40
    finally:
        src.stop()


def test_pause_step_forward_and_back(video):
    src = VideoSource(str(video)).start()
    try:
        assert src.next_frame(timeout=5) is not None
        src.pause()
        first = src.latest()
        assert src.state == PAUSED
        assert src.next_frame(after=first.index, timeout=0.3) is None   # paused: nothing new
        src.step()
        nxt = src.next_frame(after=first.index, timeout=5)
        assert nxt.index == first.index + 1 and level(nxt) == nxt.index
        src.step(-1)
        back = src.next_frame(after=nxt.index, timeout=5)
        assert back.index == first.index and level(back) == back.index
        src.resume()
        assert src.state == RUNNING
        assert collect(src)[-1].index == FRAMES - 1
    finally:
        src.stop()


def test_replay_after_the_end(video):
    src = VideoSource(str(video), realtime=False).start()
    try:
        collect(src)
        deadline = time.monotonic() + 5
        while src.state != ENDED and time.monotonic() < deadline:
            time.sleep(0.01)
        src.resume()   # at the end, play means play again from the start
        again = src.next_frame(timeout=5)
        assert again is not None and again.index < FRAMES - 1
    finally:
        src.stop()


def test_loop_keeps_playing(video):
    src = VideoSource(str(video), realtime=False, loop=True).start()
    try:
        frames = collect(src, timeout=1.0)
        assert len(frames) > FRAMES // 2 and src.state == RUNNING
        assert any(b.index < a.index for a, b in zip(frames, frames[1:]))
    finally:
        src.stop()


def test_missing_camera_is_a_one_line_error_not_a_hang():
    src = VideoSource(97, open_timeout=3).start()
    try:
        t0 = time.monotonic()
        assert src.next_frame(timeout=5) is None
        assert time.monotonic() - t0 < 4.5
        assert src.state == ERROR
        assert src.error.startswith("camera 97") and "\n" not in src.error
        src.retry()
        assert src.next_frame(timeout=5) is None and src.state == ERROR   # retry fails the same way, again quickly
    finally:
        src.stop()


class _HangingSource(FrameSource):
    """A driver that never returns from open: the source must still give up on time."""

    live = True

    def __init__(self):
        super().__init__("camera 5", open_timeout=0.3)
        self.release = __import__("threading").Event()

    def _open(self):
        self.release.wait(10)
        return object()

    def _read(self, handle):
        return np.zeros((2, 2, 3), np.uint8), 0


def test_an_open_that_hangs_times_out():
    src = _HangingSource().start()
    try:
        assert src.next_frame(timeout=3) is None
        assert src.state == ERROR and "did not open within 0.3 s" in src.error
    finally:
        src.release.set()
        src.stop()


class _Disconnecting(FrameSource):
    """A camera that delivers three frames and then stops sending anything."""

    live = True

    def __init__(self):
        super().__init__("camera 2", read_timeout=0.3)
        self.count = 0

    def _open(self):
        return object()

    def _read(self, handle):
        self.count += 1
        if self.count > 3:
            time.sleep(5)   # a driver blocked in read()
        return np.full((2, 2, 3), self.count, np.uint8), self.count


def test_a_camera_that_goes_silent_becomes_an_error():
    src = _Disconnecting().start()
    try:
        frames = collect(src, timeout=3)
        assert frames and frames[-1].index == 3
        assert src.state == ERROR and "sent no frame" in src.error
    finally:
        src.stop(join=0)


def test_unreadable_video_file(tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    src = VideoSource(str(bad)).start()
    try:
        assert src.next_frame(timeout=5) is None
        assert src.state == ERROR and "broken.avi" in src.error
    finally:
        src.stop()
    with pytest.raises(SourceError, match="does not exist"):
        VideoSource(str(tmp_path / "nothing.mp4"))


def test_image_folder_source(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, fps=100).start()
    try:
        frames = collect(src)
        assert [f.index for f in frames] == [0, 1, 2]
        assert [int(f.image.mean()) for f in frames] == [0, 40, 80]
        assert [p.name for p in src.paths] == ["im0.png", "im1.png", "im2.png"]
    finally:
        src.stop()


def test_classify_paths(tmp_path, video):
    from PIL import Image

    images = tmp_path / "pics"
    images.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / "a.png")
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"")
    req = classify_paths([model, images, images / "a.png", video])
    assert req.model == model and req.images == [images, images / "a.png"] and req.video == str(video)
    assert classify_paths(["rtsp://camera.local/stream"]).video == "rtsp://camera.local/stream"
    with pytest.raises(SourceError, match="one model"):
        classify_paths([model, tmp_path / "other"])


def test_snapshot_writes_image_and_json_but_never_into_the_model_folder(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    dets = Detections.build([[1, 2, 10, 12]], [0.9], [1], ["circle"], 30, 20)
    written = save_snapshot(tmp_path / "snaps", image, dets, stem="s1", info={"frame": 4})
    assert [p.name for p in written] == ["s1.png", "s1.json"]
    record = json.loads((tmp_path / "snaps" / "s1.json").read_text())
    assert record["frame"] == 4 and record["detections"][0]["label"] == "circle"
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(SourceError, match="inside the model folder"):
        save_snapshot(model / "snaps", image, dets, model_folder=model)
    assert not (model / "snaps").exists()


def test_targets():
    assert sources.parse_target("1") == 1 and sources.parse_target(0) == 0
    assert sources.describe_target("2") == "camera 2"
    assert sources.describe_target("rtsp://x/y").startswith("stream")
