"""`detscope detect` throughput and start-up against a bare script, in the same run.

- Images per second over 100 images: `detscope detect MODEL DIR` against a bare loop
  (decode with Pillow, call the signature), as whole processes (start-up included),
  and the same per-image work inside one process, where start-up noise cannot blur
  it. Target: detscope at least 0.9 of the bare loop.
- Time from process start to the first detection: both with one image, as whole
  processes. Target: detscope at most 1.1x the bare script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import PY, REPO, detscope_cmd, interleaved

BARE = """
import sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from PIL import Image
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
for p in sorted(Path(sys.argv[2]).iterdir()):
    img = np.asarray(Image.open(p).convert("RGB"))
    out = fn(input_tensor=tf.constant(img[None]))
    out["detection_boxes"].numpy()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(REPO / "resources" / "demo" / "saved_model"))
    ap.add_argument("--images", default=str(REPO / "resources" / "demo" / "test" / "images"))
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sources = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not sources:
        raise SystemExit(f"no images in {args.images}")
    with tempfile.TemporaryDirectory() as tmp:
        many, one = Path(tmp) / "many", Path(tmp) / "one"
        many.mkdir()
        one.mkdir()
        for i in range(args.count):
            src = sources[i % len(sources)]
            shutil.copy(src, many / f"{i:04d}{src.suffix}")
        shutil.copy(sources[0], one / f"0000{sources[0].suffix}")
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        cmds = {
            "detscope many": detscope_cmd("detect", args.model, str(many), "--threshold", "0", "--json"),
            "bare many": [PY, str(script), args.model, str(many)],
            "detscope one": detscope_cmd("detect", args.model, str(one), "--threshold", "0", "--json"),
            "bare one": [PY, str(script), args.model, str(one)],
        }
        r = interleaved(cmds, repeat=args.repeat)
    ds_rate = args.count / r["detscope many"][0]
    bare_rate = args.count / r["bare many"][0]
    print(f"model: {args.model}   images: {args.count} (cycled from {len(sources)})")
    for k, (t, m) in r.items():
        print(f"  {k:14s} {t:7.3f} s  {m:7.1f} MiB peak")
    print(f"whole process, {args.count} images: detscope {ds_rate:7.1f} images/s   bare loop {bare_rate:7.1f} "
          f"images/s   ratio {ds_rate / bare_rate:.3f} (target >= 0.9)")
    print(f"start to first detection: detscope {r['detscope one'][0]:.3f} s   bare {r['bare one'][0]:.3f} s   "
          f"ratio {r['detscope one'][0] / r['bare one'][0]:.3f} (target <= 1.1)")
    in_process(args.model, sources, args.count, args.repeat)
    return 0


def in_process(model: str, sources: list[Path], count: int, repeat: int) -> None:
    """The same per-image work inside one process, where start-up noise cannot blur it.

    detscope: its own loop (``ModelHost.detect_many``: decode the next image while the engine
    thread runs the model), as `detscope detect` runs it. Bare: decode with Pillow, call the signature, fetch the boxes.
    """
    import time

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from detscope.core.app.host import ModelHost

    paths = [sources[i % len(sources)] for i in range(count)]
    host = ModelHost()
    host.load_sync(model)
    fn = tf.saved_model.load(model).signatures["serving_default"]

    def detscope_loop():
        for _, _, dets in host.detect_many(paths):
            dets.above(0).as_json()

    def bare_loop():
        for p in paths:
            img = np.asarray(Image.open(p).convert("RGB"))
            fn(input_tensor=tf.constant(img[None]))["detection_boxes"].numpy()

    best = {"detscope": float("inf"), "bare": float("inf")}
    bare_loop()  # first calls build the functions
    for _ in range(repeat):
        for name, loop in (("detscope", detscope_loop), ("bare", bare_loop)):
            start = time.perf_counter()
            loop()
            best[name] = min(best[name], time.perf_counter() - start)
    host.shutdown()
    ds, bare = count / best["detscope"], count / best["bare"]
    print(f"in one process over {count} images: detscope {ds:7.1f} images/s   bare loop {bare:7.1f} images/s   "
          f"ratio {ds / bare:.3f} (target >= 0.9)")


if __name__ == "__main__":
    sys.exit(main())
