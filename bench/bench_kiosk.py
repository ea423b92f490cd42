"""Kiosk mode: frames per second through the kiosk against a bare capture + inference loop, and a soak.

    python bench/bench_kiosk.py                 # throughput on a video made of the demo's test images
    python bench/bench_kiosk.py --soak 120      # then 120 minutes of the video looping, RSS sampled

Throughput: the same video, read as fast as it decodes (not at its own frame rate), through
(a) OpenCV capture + the SavedModel's serving signature in a plain loop, and (b) the kiosk window
(offscreen Qt, the engine thread, the source thread) counting frames that came back with their
detections. Ratio target: >= 0.9. The soak reports resident memory at the start and end and its
growth per hour after the first minute (the first minute holds TensorFlow's warm-up allocations).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"


def make_video(path: Path, frames: int = 240, size=(320, 240)) -> Path:
    import cv2
    import numpy as np

    from detscope.core.media.images import list_images, load_image

    images = [cv2.resize(load_image(p), size) for p in list_images([DEMO / "test" / "images"])]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(images[i % len(images)]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def bare(video: Path) -> float:
    import cv2
    import tensorflow as tf

    fn = tf.saved_model.load(str(DEMO / "saved_model")).signatures["serving_default"]
    cap = cv2.VideoCapture(str(video))
    ok, bgr = cap.read()
    fn(input_tensor=tf.constant(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]))     # build the function first
    cap.release()
    cap = cv2.VideoCapture(str(video))
    n, start = 0, time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        fn(input_tensor=tf.constant(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]))["detection_boxes"].numpy()
        n += 1
    return n / (time.perf_counter() - start)


def _kiosk(app, loop: bool, video: Path, threshold: float = 0.5):
    from concurrent.futures import ThreadPoolExecutor

    from detscope.core.media.sources import VideoSource
    from detscope.core.runtime.engine import Engine
    from detscope.gui.controllers.session import ModelSession
    from detscope.gui.kiosk_window import KioskWindow
    from detscope.gui.qt.bridge import Bridge

    bridge = Bridge()
    engine = Engine()
    session = ModelSession(engine, bridge, ThreadPoolExecutor(2))
    window = KioskWindow(session, bridge, threshold=threshold)
    window.resize(960, 720)
    window.show()
    session.open(DEMO)
    while session.model is None:
        app.processEvents()
        time.sleep(0.005)
    return window, VideoSource(video, loop=loop, realtime=False), engine


def kiosk(app, video: Path) -> float:
    from detscope.core.media import sources

    window, source, engine = _kiosk(app, False, video)
    window.start(source)
    c = window.controller
    start = first = None
    while source.state not in (sources.ENDED, sources.ERROR) or (c._pending is not None and not c._pending.done()):
        app.processEvents()
        if start is None and c.tally.frames:
            start, first = time.perf_counter(), c.tally.frames     # from the first detections on
        time.sleep(0.001)
    frames = c.tally.frames - (first or 0)
    took = time.perf_counter() - (start or time.perf_counter())
    window.close()
    engine.shutdown(wait=True, timeout=10)
    return frames / took if took > 0 else 0.0


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(app, video: Path, minutes: float) -> None:
    window, source, engine = _kiosk(app, True, video)
    source.realtime = True
    window.start(source)
    start = time.monotonic()
    samples = []
    next_sample = start
    while time.monotonic() - start < minutes * 60:
        app.processEvents()
        time.sleep(0.002)
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - start, rss_mib()))
            next_sample = now + 10
    window.close()
    engine.shutdown(wait=True, timeout=10)
    after_warmup = [(t, m) for t, m in samples if t >= 60] or samples
    (t0, m0), (t1, m1) = after_warmup[0], after_warmup[-1]
    per_hour = (m1 - m0) / max((t1 - t0) / 3600, 1e-9)
    print(f"soak {minutes:.0f} min looping video through the kiosk: {window.controller.tally.frames} frames inferred; "
          f"RSS {samples[0][1]:.0f} MiB at start, {m0:.0f} MiB after 1 min, {m1:.0f} MiB at the end "
          f"({m1 - m0:+.1f} MiB, {per_hour:+.1f} MiB/hour)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "demo.avi", args.frames)
        pairs = []
        for _ in range(args.rounds):          # paired rounds: machine noise falls on both alike
            b, k = bare(video), kiosk(app, video)
            pairs.append((k / b, k, b))
        ratio, k, b = sorted(pairs)[len(pairs) // 2]
        print(f"kiosk on a {args.frames}-frame video: {k:.1f} frames/s with detections; bare capture + signature "
              f"loop: {b:.1f} frames/s; median ratio of {args.rounds} paired rounds {ratio:.3f} "
              f"(spread {pairs and min(r for r, _, _ in pairs):.3f}–{max(r for r, _, _ in pairs):.3f}; target >= 0.9)")
        if args.soak:
            soak(app, video, args.soak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
