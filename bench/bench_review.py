#!/usr/bin/env python
"""Review benchmark: verdict latency, key press to committed, with a 100,000-verdict review file.

    .venv/bin/python bench/bench_review.py [--verdicts 100000] [--presses 300] [--folder DIR]

1. The store alone: ``ReviewStore.judge`` (one commit, ``synchronous=FULL``: one fsync of the WAL) on
   random detections of a file holding ``--verdicts`` verdicts, against the same calls on a file holding
   none (the baseline, measured in the same run); and ``progress()`` (the progress line's query).
2. Through the window: a real ``MainWindow`` with the review open on that file, ``C`` pressed with
   ``QTest.keyClick`` (the shortcut, the verdict committed, the panel, the boxes' tags and the progress
   line redrawn, all on the GUI thread) and ``A`` (the image's state, the list refiltered, the next image).

Prints p50/p99 in ms against the 20 ms p99 target. The review files go in ``--folder`` (default: a
temporary folder; the fsync cost is the disk's). Nothing is asserted: these are figures to compare.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 20.0
DETECTIONS_PER_IMAGE = 20
KINDS = ("correct", "correct", "correct", "duplicate", "false_positive")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def line(what: str, ms: list[float], baseline: list[float] | None = None) -> str:
    p50, p99 = statistics.median(ms), pct(ms, 99)
    out = f"{what}: p50 {p50:.2f} ms, p99 {p99:.2f} ms (n={len(ms)}; target p99 < {TARGET_MS:.0f} ms: " \
          f"{'met' if p99 < TARGET_MS else 'NOT met'})"
    if baseline:
        out += f"; x{p50 / statistics.median(baseline):.2f} p50 / x{p99 / pct(baseline, 99):.2f} p99 " \
               f"of the empty file's {statistics.median(baseline):.2f} / {pct(baseline, 99):.2f} ms"
    return out


def make_store(path: Path, verdicts: int, real: list[tuple[str, str, int, int]], images: int):
    """A review file of ``images`` images (``real`` first: images that exist on disk, as (key, name, width,
    height)), each with 20 detections, and ``verdicts`` verdicts on them."""
    from detscope.core.review.store import ModelId, ReviewStore

    model = ModelId("b" * 32, "ckpt-1", "bench")
    store = ReviewStore.create(path, model, threshold=0.3, labels={1: "circle", 2: "triangle", 3: "cross"},
                               annotator="bench")
    n_images = max(len(real), images, -(-verdicts // DETECTIONS_PER_IMAGE))
    rng = random.Random(0)

    def dets():
        out = []
        for i in range(DETECTIONS_PER_IMAGE):
            x, y = rng.uniform(0, 200), rng.uniform(0, 150)
            out.append(((x, y, x + 30, y + 30), 0.99 - i * 0.01, 1 + i % 3))
        return out

    entries = [(k, n, w, h, dets()) for k, n, w, h in real]
    entries += [(f"{i:064x}", f"synthetic/{i:06d}.jpg", 256, 192, dets()) for i in range(len(real), n_images)]
    store.add_images(entries)
    store.close()
    if verdicts:
        # The log and the current table filled in one transaction (the verdicts' content does not matter to
        # the timings; the sizes of the tables and their indexes do).
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN")
        keys = [e[0] for e in entries]
        rows = []
        for n in range(verdicts):
            key, idx = keys[n // DETECTIONS_PER_IMAGE], n % DETECTIONS_PER_IMAGE
            if key in {r[0] for r in real} and idx < 3:
                continue                    # the window's presses judge the real images' first detections
            rows.append((key, model.fingerprint, model.checkpoint, f"d{idx}", KINDS[n % len(KINDS)], "bench",
                         "2026-01-01T00:00:00.000+00:00"))
        db.executemany("INSERT INTO verdicts (image_key, model, checkpoint, target, kind, annotator, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("INSERT INTO current SELECT image_key, target, id, kind FROM verdicts")
        db.execute("COMMIT")
        db.close()
    return ReviewStore.open(path, annotator="bench")


def bench_store(folder: Path, verdicts: int, presses: int) -> None:
    rng = random.Random(1)
    samples = {}
    for label, n in (("empty", 0), ("full", verdicts)):
        store = make_store(folder / f"store-{label}.review.db", n, [], verdicts // DETECTIONS_PER_IMAGE)
        keys = store.image_keys()
        times = []
        for _ in range(presses):
            key, idx = rng.choice(keys), rng.randrange(DETECTIONS_PER_IMAGE)
            t0 = time.perf_counter()
            store.judge(key, idx, rng.choice(("correct", "duplicate", "false_positive")))
            times.append((time.perf_counter() - t0) * 1000)
        prog = []
        for _ in range(50):
            t0 = time.perf_counter()
            store.progress()
            prog.append((time.perf_counter() - t0) * 1000)
        samples[label] = (times, prog, store.progress().verdicts)
        store.close()
    times, prog, held = samples["full"]
    print(line(f"store.judge() on a file of {held:,} verdicts", times, samples["empty"][0]))
    print(line(f"store.progress() on a file of {held:,} verdicts", prog, samples["empty"][1]))


def bench_window(folder: Path, verdicts: int, presses: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from detscope.core.review.store import image_key
    from detscope.gui.main_window import MainWindow

    images = folder / "images"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    real = []
    for i in range(8):
        p = images / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (192, 256, 3), dtype=np.uint8)).save(p)
        real.append((p, image_key(p)))
    store = make_store(folder / "window.review.db", verdicts, [(k, p.name, 256, 192) for p, k in real], 0)
    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    win.show()
    win.browser.open([str(p) for p, _ in real])
    deadline = time.monotonic() + 30
    while win.browser.shown is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    win.review.open_store(store, {p: k for p, k in real})
    while win.review.current is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    win.image_panel.view.setFocus()
    # The progress line is counted on the pool (its own connection): when it is redrawn is timed too.
    redrawn: list[float] = []
    set_progress = win.review.panel.set_progress
    win.review.panel.set_progress = lambda text: (redrawn.append(time.perf_counter()), set_progress(text))

    def press(key) -> tuple[float, float]:
        redrawn.clear()
        t0 = time.perf_counter()
        QTest.keyClick(win, key)
        committed = time.perf_counter()
        until = committed + 2.0
        while not redrawn and time.perf_counter() < until:
            app.processEvents()
            time.sleep(0.0002)
        return (committed - t0) * 1000, ((redrawn[0] if redrawn else float("nan")) - t0) * 1000

    correct, correct_line, done, done_line = [], [], [], []
    for n in range(presses):
        if n % 3 == 0:
            win.review.panel.select("d0")
        a, b = press(Qt.Key.Key_C)
        correct.append(a)
        correct_line.append(b)
    for n in range(len(real) - 1):
        a, b = press(Qt.Key.Key_A)
        done.append(a)
        done_line.append(b)
        for _ in range(20):                      # the next image loads
            app.processEvents()
            time.sleep(0.002)
    held = win.review.store.progress().verdicts
    print(line(f"window, C pressed to verdict committed and shown ({held:,} verdicts)", correct))
    print(line("window, C pressed to the progress line redrawn", correct_line))
    print(line(f"window, A pressed to image state committed, list refiltered ({held:,} verdicts)", done))
    print(line("window, A pressed to the progress line redrawn", done_line))
    win.shutdown()
    win.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--verdicts", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=300)
    ap.add_argument("--folder", type=Path, help="where the review files go (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="detscope-bench-review-", dir=args.folder) as tmp:
        os.environ["DETSCOPE_DATA_DIR"] = str(Path(tmp) / "data")
        bench_store(Path(tmp), args.verdicts, args.presses)
        bench_window(Path(tmp), args.verdicts, args.presses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
