"""A worker process for the fuzz test: runs ``detscope`` command lines in-process, one per input line.

Started by ``test_fuzz.py`` with a memory limit (``--memory BYTES``: ``RLIMIT_AS``); reads one JSON
object per line (``{"id": n, "argv": [...]}``) and answers each with one JSON line on its own stdout:
``{"id", "code", "err", "out", "rss_kb", "seconds"}``. ``err`` is everything the command wrote to
stderr, Python's ``sys.stderr`` and file descriptor 2 both (a C library printing there breaks the
one-line contract as surely as Python does). The parent kills the worker when an answer takes longer
than its timeout (a hang) and starts a new one. Running in-process keeps a few hundred inputs fast:
importing the command line once costs more than inspecting a small model.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import time


def main() -> None:
    memory = int(sys.argv[sys.argv.index("--memory") + 1]) if "--memory" in sys.argv else 0
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    from detscope.core.cli import main as cli  # imported once, under the limit
    import h5py  # noqa: F401  (what Keras files need, loaded before the first one)
    import numpy  # noqa: F401

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)   # stray C-level output must not corrupt the answers
    fd2 = tempfile.TemporaryFile()
    os.dup2(fd2.fileno(), 2)
    for line in sys.stdin:
        job = json.loads(line)
        fd2.seek(0)
        fd2.truncate()
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(job["argv"])
        except SystemExit as exc:   # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001  (reported as the crash it is)
            code = -1
            err.write(f"CRASH {type(exc).__name__}: {exc}\n")
        seconds = time.perf_counter() - start
        fd2.seek(0)
        c_err = fd2.read().decode("utf-8", "replace")
        answers.write(json.dumps({
            "id": job["id"], "code": code, "err": err.getvalue() + c_err, "out": len(out.getvalue()),
            "rss_kb": peak_rss_kb(), "seconds": seconds}) + "\n")


def peak_rss_kb() -> int:
    """This process's peak resident memory. ``VmHWM``, not ``ru_maxrss``: that one keeps, across the
    exec, what the forking parent (a pytest with TensorFlow loaded) had resident."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
