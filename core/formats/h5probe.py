"""HDF5 files tried in a child process, under a time limit, before this process opens them.

The HDF5 library keeps Python's GIL while it reads, and some damaged files make it loop for ever (a
corrupt reference into the global heap behind a string attribute, found by ``tests/core/test_fuzz.py``):
in-process that would freeze every thread, the window's included, with nothing able to stop it. So
before a Keras ``.h5`` file (or a ``.keras`` archive's ``model.weights.h5``) is opened here, a child
process opens it and reads what detscope and Keras read: every attribute, every object's header and,
up to :data:`VALUE_BYTES` in all, the datasets' values. A child that does not finish within
:data:`SECONDS`, or that crashes, gets the file refused by name; one that finishes (whatever it found:
the readers here say what is wrong in one line) lets it be read. Results are remembered per file
version, so a file is tried once per process. A frozen build has no Python interpreter to start: there the
child is the app's own executable, started with :data:`CHILD_FLAG` (its entry scripts call :func:`child_main`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

SECONDS = 20.0
VALUE_BYTES = 256 << 20

CHILD_FLAG = "--detscope-h5probe"

_CHILD = r"""
import io, sys, zipfile
import h5py
path, member, budget = sys.argv[-3], sys.argv[-2], [int(sys.argv[-1])]
source = io.BytesIO(zipfile.ZipFile(path).read(member)) if member else path

def touch(name, obj):
    for key in list(obj.attrs.keys()):
        try:
            obj.attrs[key]
        except Exception:
            pass
    if isinstance(obj, h5py.Dataset):
        try:
            plist = obj.id.get_create_plist()
            if plist.get_external_count() or obj.is_virtual:
                return  # other files: refused by the reader, never read
            size = obj.size * obj.dtype.itemsize
            if size <= budget[0]:
                budget[0] -= size
                obj[()]
        except Exception:
            pass

try:
    with h5py.File(source, "r") as f:
        touch("/", f)
        f.visititems(touch)
except Exception:
    pass
"""

_tried: dict[tuple, str | None] = {}
_lock = threading.Lock()


def check(path, error: Callable[[str], Exception], member: str | None = None) -> None:
    """Refuse ``path`` (or its zip ``member``) with ``error(one line)`` when HDF5 loops or crashes on it."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        return  # the reader says what is wrong with it
    key = (str(path.resolve()), member, st.st_size, st.st_mtime_ns)
    with _lock:
        known = key in _tried
        verdict = _tried.get(key)
    if not known:
        verdict = _try(path, member)
        with _lock:
            _tried[key] = verdict
    if verdict is not None:
        raise error(f"{path.name}{f' ({member})' if member else ''}: {verdict}")


def _try(path: Path, member: str | None) -> str | None:
    try:
        how = [CHILD_FLAG] if getattr(sys, "frozen", False) else ["-c", _CHILD]
        proc = subprocess.run([sys.executable, *how, str(path), member or "", str(VALUE_BYTES)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=SECONDS)
    except subprocess.TimeoutExpired:
        return (f"reading it did not finish in {SECONDS:.0f} s: a damaged HDF5 file makes the HDF5 library "
                "loop for ever, so detscope does not open it")
    except OSError:
        return None  # no interpreter to start: read it here, as before
    if proc.returncode < 0:
        return f"the HDF5 library crashed reading it (signal {-proc.returncode}): a damaged file"
    return None


def child_main(argv: list[str]) -> int:
    """The child's work, in a frozen app's own executable: ``argv`` is ``[path, member, value bytes]``."""
    sys.argv = [CHILD_FLAG, *argv]
    exec(compile(_CHILD, "<h5probe>", "exec"), {"__name__": "__h5probe__"})
    return 0
