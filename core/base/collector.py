"""The one owner of the cyclic garbage collector's on/off state.

``gc.disable()``/``gc.enable()`` are process-wide. When two threads each pause the collector
and restore "what it was", the first to finish turns it back on in the middle of the other's
work (the folder read did exactly that in the middle of a model load). Here pauses are
counted: the collector is off while any pause is held, and on again only when the last ends,
if it was on before the first.

:func:`freeze_survivors` moves everything alive into the permanent generation: after a model
load (or TensorFlow's import) the hundreds of thousands of objects built then live as long as
the model, and later full collections need not walk them again.
"""

from __future__ import annotations

import contextlib
import gc
import threading

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextlib.contextmanager
def paused():
    """No cyclic collection while the block runs (on any thread); nesting and overlap are safe."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()


def freeze_survivors() -> None:
    """Move every object alive now out of the collector's sight (see the module's note)."""
    gc.freeze()


def thaw() -> None:
    """Give frozen objects back to the collector: call when a frozen model is dropped, or its cycles
    would never be freed. The next load freezes what survives again."""
    gc.unfreeze()
