"""`detscope detect` on a .tflite model against a bare LiteRT interpreter loop, in the same run.

The demo's SavedModel is converted to float TFLite at a fixed 160x160 input (as users convert for a
phone). Both loops decode each image with Pillow, resize it to the input size with OpenCV, run the model
and read its outputs; detscope's loop is its own (``ModelHost.detect_many``: the engine thread runs the
model while the next image decodes, and the outputs become Detections). Images per second, best of N
rounds, in one process. Target: detscope at least 0.9 of the bare loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import REPO

sys.path.insert(0, str(REPO / "tests" / "core"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="a .tflite model (default: the demo converted here)")
    ap.add_argument("--images", default=str(REPO / "resources" / "demo" / "test" / "images"))
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sources = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    paths = [sources[i % len(sources)] for i in range(args.count)]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            import tflite_artifacts

            model = str(tflite_artifacts.demo_tflite(REPO / "resources" / "demo" / "saved_model", Path(tmp)))
        run(model, paths, args.repeat)
    return 0


def run(model: str, paths: list[Path], repeat: int) -> None:
    import cv2
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from detscope.core.app.host import ModelHost

    host = ModelHost()
    summary = host.load_sync(model)
    assert summary.can_detect, summary.findings

    it = Interpreter(model_path=model)
    it.allocate_tensors()
    d, = it.get_input_details()
    index, (h, w) = d["index"], (int(d["shape"][1]), int(d["shape"][2]))
    outputs = [o["index"] for o in it.get_output_details()]

    def bare_loop():
        for p in paths:
            img = np.asarray(Image.open(p).convert("RGB"))
            x = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)[None]
            it.set_tensor(index, x)
            it.invoke()
            for o in outputs:
                it.get_tensor(o)

    def detscope_loop():
        for _, _, dets in host.detect_many(paths):
            dets.above(0)

    best = {"detscope": float("inf"), "bare": float("inf")}
    bare_loop()
    detscope_loop()
    for _ in range(repeat):
        for label, loop in (("detscope", detscope_loop), ("bare", bare_loop)):
            start = time.perf_counter()
            loop()
            best[label] = min(best[label], time.perf_counter() - start)
    host.shutdown()
    ds, bare = len(paths) / best["detscope"], len(paths) / best["bare"]
    print(f"model: {model} ({summary.how}, input {w}x{h})   images: {len(paths)}")
    print(f"in one process: detscope {ds:7.1f} images/s   bare LiteRT loop {bare:7.1f} images/s   "
          f"ratio {ds / bare:.3f} (target >= 0.9)")


if __name__ == "__main__":
    sys.exit(main())
