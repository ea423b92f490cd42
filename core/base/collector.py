"""The one owner of the cyclic garbage collector's on/off state.

``gc.disable()``/``gc.enable()`` are process-wide. When two threads each pause the collector
and restore "what it was", the first to finish turns it back on in the middle of the other's
work (the folder read did exactly that in the middle of a model load). Here pauses are
counted: the collector is off while any pause is held, and on again only when the last ends,
if it was on before the first.

:func:`freeze_survivors` moves everything alive into the permanent generation: after a model
load, TensorFlow's import or a big folder's inventory, the hundreds of thousands of objects built
then live as long as the model, and later full collections need not walk them again.

:func:`thaw` gives them back when a model is dropped, so that its cycles can be freed; the first full
collection after it frees them, and what survives that collection (TensorFlow's modules, the folder
still open) is frozen again at its end. One full pass pays for the dropped model; without the
re-freeze every later full pass would walk everything again (0.7 s each with a big model's remains).
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


_refreeze = False


def freeze_survivors() -> None:
    """Move every object alive now out of the collector's sight (see the module's note)."""
    gc.freeze()


def thaw() -> None:
    """Give frozen objects back to the collector: call when a frozen model is dropped, or its cycles
    would never be freed. What survives the next full collection is frozen again at its end."""
    global _refreeze
    with _lock:
        if _after_collection not in gc.callbacks:
            gc.callbacks.append(_after_collection)
        _refreeze = True
    gc.unfreeze()


def _after_collection(phase: str, info: dict) -> None:
    """The collector's callback: at the end of the first full collection after :func:`thaw`, freeze."""
    global _refreeze
    if _refreeze and phase == "stop" and info.get("generation") == 2:
        _refreeze = False
        gc.freeze()
