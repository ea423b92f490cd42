"""`detscope compare A B IMAGES` against two separate `detscope detect` runs, on the demo.

A and B are the demo's ckpt-3 and ckpt-5 (each restored into the demo's SavedModel), the images its 36
test images (repeated ``--copies`` times, as more files). Every command runs as a whole process (start-up
included, as a user meets it); each round runs `compare --no-cache --json` (with an empty detections
cache, so both models run on every image), then `detect A --json` and `detect B --json`, back to back, and
the ratio is compare's time over the two detects' sum. Prints the median of the rounds' ratios, the median
times, and compare's peak memory over the larger of the two detects' (compare holds one model at a time).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import ENV, PY, REPO, detscope_cmd, measure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="paired rounds (default 5)")
    ap.add_argument("--copies", type=int, default=1, help="how many times the test images are repeated")
    args = ap.parse_args()
    demo = REPO / "resources" / "demo"
    a, b = str(demo / "training" / "ckpt-3"), str(demo / "training" / "ckpt-5")
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        for k in range(args.copies):
            for p in sorted((demo / "test" / "images").iterdir()):
                if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                    shutil.copy(p, images / f"{k}_{p.name}")
        count = sum(1 for _ in images.iterdir())
        ENV["DETSCOPE_DATA_DIR"] = str(Path(tmp) / "data")       # an empty detections cache
        compare = detscope_cmd("compare", a, b, str(images), "--json", "--no-cache")
        detect_a = detscope_cmd("detect", a, str(images), "--json")
        detect_b = detscope_cmd("detect", b, str(images), "--json")
        rounds = []
        for _ in range(args.repeat):
            rounds.append((measure(compare, 1), measure(detect_a, 1), measure(detect_b, 1)))
    ratios = [c[0] / (da[0] + db[0]) for c, da, db in rounds]
    med = lambda xs: statistics.median(xs)  # noqa: E731
    c_t, a_t, b_t = (med(r[k][0] for r in rounds) for k in range(3))
    c_m, a_m, b_m = (med(r[k][1] for r in rounds) for k in range(3))
    print(f"A {Path(a).name}, B {Path(b).name}: {count} images, {args.repeat} paired rounds (medians), python {PY}")
    print(f"detscope compare --no-cache : {c_t:7.2f} s  {c_m:7.1f} MiB peak")
    print(f"detscope detect A           : {a_t:7.2f} s  {a_m:7.1f} MiB peak")
    print(f"detscope detect B           : {b_t:7.2f} s  {b_m:7.1f} MiB peak")
    print(f"ratio wall   (compare / (detect A + detect B)): {med(ratios):.3f}  "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"ratio memory (compare / max(detect A, detect B)): {c_m / max(a_m, b_m):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
