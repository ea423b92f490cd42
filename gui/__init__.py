"""detscope GUI: the PySide6 window; wiring only, logic lives in detscope.core."""

from .qt.compat import guard as _guard

_guard()   # before any window exists: see compat.py (PySide6 6.12 on CPython 3.11)
