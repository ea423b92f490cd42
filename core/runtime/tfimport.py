"""Importing TensorFlow without freezing the other threads (the GUI's above all).

Two things stop every thread while TensorFlow imports: mapping its big shared
libraries (Python loads an extension's libraries while holding the GIL) and
Python's cyclic garbage collector, whose full passes over the hundreds of
thousands of objects the import creates hold the GIL for 50 to 150 ms each.
:func:`import_tensorflow` maps the libraries through a ``dlopen`` that releases
the GIL, and pauses the collector; :func:`collector_paused` does the same for a
model load. Both run on the engine thread.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from pathlib import Path

from ..base import collector


def preload_tensorflow_libraries() -> list[str]:
    """Map TensorFlow's two big shared libraries before ``import tensorflow``, without holding the GIL.

    Python loads an extension's libraries while holding the GIL, which freezes the GUI thread for
    about a quarter of a second on ``libtensorflow_cc``. A ``dlopen`` made through ctypes releases the
    GIL for the call; the import that follows then finds the libraries already mapped. Runs on the
    engine thread; returns what it mapped (nothing where the libraries are not found).
    """
    import ctypes
    import importlib.util

    if not sys.platform.startswith("linux"):
        return []
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return []
    base = Path(list(spec.submodule_search_locations)[0])
    mapped = []
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    except (OSError, AttributeError):
        return []
    for pattern in ("libtensorflow_framework.so.*", "libtensorflow_cc.so.*"):
        for lib in sorted(base.glob(pattern))[:1]:
            if dlopen(str(lib).encode(), sys.getdlopenflags()):
                mapped.append(lib.name)
    return mapped


def import_tensorflow(job=None, preload: tuple[str, ...] = ()) -> None:
    """Import TensorFlow on the engine thread without long pauses of the other threads.

    Two things stop every thread while TensorFlow imports: mapping its shared libraries (see
    :func:`preload_tensorflow_libraries`) and Python's cyclic garbage collector, whose full passes over
    the hundreds of thousands of objects the import creates hold the GIL for 50 to 150 ms each. The
    collector is paused during the import and the module objects it created are then frozen (they live
    as long as the process, so later passes need not visit them). ``preload`` names modules the caller
    wants imported before the libraries are mapped.
    """
    if "tensorflow" in sys.modules:
        return
    # detscope's own modules first: a thread importing an extension module while the big libraries are
    # being mapped would wait for the loader's lock while holding the GIL, and freeze the GUI with it.
    for name in preload:
        importlib.import_module(name)

    verbose = bool(os.environ.get("DETSCOPE_VERBOSE"))
    if not verbose:
        # TensorFlow's native INFO/WARNING/ERROR logs (CUDA probing on a CPU machine and the like)
        # are noise to a user; its real failures still arrive as Python exceptions.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    choose_tf_keras()
    with native_log_filtered(enabled=not verbose):
        if job is not None:
            job.progress("mapping TensorFlow")
        preload_tensorflow_libraries()
        if job is not None:
            job.progress("importing TensorFlow")
        with collector_paused():
            import tensorflow  # noqa: F401  (on the engine thread, never the GUI's)

            collector.freeze_survivors()


def choose_tf_keras() -> None:
    """``tf.keras`` is Keras 2 (``tf_keras``) in a process where the Object Detection API is installed.

    The OD API is Keras 2 code and TensorFlow decides what ``tf.keras`` is once, from
    ``TF_USE_LEGACY_KERAS``, so it is set here, before TensorFlow is imported. Keras 3 models are
    unaffected: detscope loads them through ``import keras``, which the flag does not change; only code
    that says ``tf.keras`` (the OD API, a ``--factory`` of a user who trains with it) sees Keras 2. A
    value the user set is kept. Cheap: a look-up of two module names, nothing is imported.
    """
    if "TF_USE_LEGACY_KERAS" in os.environ:
        return
    import importlib.util

    if importlib.util.find_spec("object_detection") is not None and importlib.util.find_spec("tf_keras") is not None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


# What TensorFlow's native code prints before its logging is set up, whatever TF_CPP_MIN_LOG_LEVEL says.
_NATIVE_NOISE = re.compile(rb"^(?:[IWE]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl|"
                           rb"To enable the following instructions|This TensorFlow binary is optimized)")


@contextlib.contextmanager
def native_log_filtered(enabled: bool = True, noise: re.Pattern = _NATIVE_NOISE):
    """Route the process's stderr (file descriptor 2) through a file while TensorFlow (or LiteRT) loads,
    then write back every line that ``noise`` does not match (start-up chatter). Other threads' messages
    of that moment are kept, only delayed."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (a GUI launched without a console): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            kept = b"".join(line for line in buffer if not noise.match(line))
            if kept:
                os.write(2, kept)


collector_paused = collector.paused   # the one owner of the collector's state (core.base.collector)
