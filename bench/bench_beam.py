"""`detscope detect --runner DirectRunner` (two worker processes) against the local single-process path.

500 images (the demo's test set repeated, copied into a temporary folder), whole processes from start to
exit, in paired rounds (local, then Beam) so that machine noise falls on both alike; prints the median of
each and the median of the paired ratios (Beam / local: below 1 is faster). Both print `--json`, and the
two outputs are checked to hold the same detections.

The DirectRunner's worker processes each start Python, import TensorFlow and load the model: on a machine
with few cores that start-up, and the two processes sharing them, is what the ratio measures. A cluster run
(FlinkRunner, DataflowRunner: see the README's "Large test sets") gains from many machines instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, REPO, detscope_cmd


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr}")
    return seconds, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(REPO / "resources" / "demo"))
    ap.add_argument("--images", default=str(REPO / "resources" / "demo" / "test" / "images"))
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if importlib.util.find_spec("apache_beam") is None:
        print("skipped: Apache Beam is not installed (pip install 'detscope[beam]')")
        return 0
    sources = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        many = Path(tmp) / "images"
        many.mkdir()
        for i in range(args.count):
            src = sources[i % len(sources)]
            shutil.copy(src, many / f"{i:04d}{src.suffix}")
        local = detscope_cmd("detect", args.model, str(many), "--json")
        beam = detscope_cmd("detect", args.model, str(many), "--json", "--out", str(Path(tmp) / "out"),
                            "--runner", "DirectRunner", "--direct_running_mode=multi_processing",
                            f"--direct_num_workers={args.workers}")
        t_local, t_beam = [], []
        for n in range(args.pairs):
            a, out_a = timed(local)
            b, out_b = timed(beam)
            if json.loads(out_a)["images"] != json.loads(out_b)["images"]:
                raise SystemExit("the Beam run's detections differ from the local run's")
            t_local.append(a)
            t_beam.append(b)
            print(f"  pair {n + 1}: local {a:.1f} s, Beam {b:.1f} s", flush=True)
    ratios = [b / a for a, b in zip(t_local, t_beam)]
    ml, mb = statistics.median(t_local), statistics.median(t_beam)
    print(f"detect, {args.count} images, whole process, median of {args.pairs} pairs:")
    print(f"  local, one process:                        {ml:6.1f} s  ({args.count / ml:5.1f} images/s)")
    print(f"  DirectRunner, {args.workers} worker processes:        {mb:6.1f} s  ({args.count / mb:5.1f} images/s)")
    print(f"  ratio Beam / local: {statistics.median(ratios):.2f} (median of paired ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
