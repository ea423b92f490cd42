"""A guard against PySide6 builds that hand back ``None``, ``True`` and ``False`` without a reference.

From CPython 3.12 these three objects are immortal and their reference counts do not matter, and some
PySide6 builds (6.12.0 seen here) return them from void methods and from ``Signal.emit`` without
counting a reference. On CPython 3.11 every such call then takes one reference away, and after a few
thousand calls (emits, ``update()``, ``setPixmap()``: a video plays thousands a minute) Python aborts
with "deallocating None" or "deallocating True or False".

:func:`guard` measures whether the installed PySide6 does that and, only then, gives the three objects
a reference count so large that no session can exhaust it, which is what 3.12 does for them anyway.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("detscope.gui")
_RESERVE = 1 << 48
_applied = False


def _leaks() -> bool:
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(64):
        probe.setObjectName("probe")      # a void method: returns None
        probe.ping.emit()                 # returns True
    return sys.getrefcount(None) < none_before - 32 or sys.getrefcount(True) < true_before - 32


def guard() -> bool:
    """Apply the reserve when this PySide6 drops references on this CPython; True when applied."""
    global _applied
    if _applied:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or hasattr(sys, "getobjects"):
        return False      # immortal singletons, another runtime, or a debug build's different object layout
    if not _leaks():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _RESERVE
    _applied = True
    log.debug("PySide6 returns None/True/False without a reference on this Python; reserve applied")
    return True
