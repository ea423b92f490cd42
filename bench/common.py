"""Helpers shared by the benchmarks: whole-process timing with a baseline measured in the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PY = sys.executable
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def measure(cmd: list[str], repeat: int = 5) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``cmd`` run ``repeat`` times, interleaved by the caller."""
    times, peaks = [], []
    for _ in range(repeat):
        out = subprocess.run([PY, str(BENCH / "_measure.py"), *cmd], capture_output=True, text=True, env=ENV)
        if out.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr}")
        seconds, kib = out.stdout.strip().splitlines()[-1].split()
        times.append(float(seconds))
        peaks.append(int(kib) / 1024)
    return statistics.median(times), statistics.median(peaks)


def interleaved(cmds: dict[str, list[str]], repeat: int = 5) -> dict[str, tuple[float, float]]:
    """Measure several commands round-robin so machine noise falls on all of them alike.

    Reports the best wall time of the runs (noise on a shared machine only ever adds
    time) and the median peak memory.
    """
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            samples[name].append(measure(cmd, repeat=1))
    return {k: (min(t for t, _ in v), statistics.median(m for _, m in v)) for k, v in samples.items()}


def detscope_cmd(*args: str) -> list[str]:
    return [PY, "-m", "detscope.core.cli.main", *args]
