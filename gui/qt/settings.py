"""detscope's QSettings: one factory, so tests can point every reader and writer at a temporary folder."""

from __future__ import annotations

from PySide6.QtCore import QSettings

_open: dict[tuple, QSettings] = {}


def settings() -> QSettings:
    """detscope's settings, in the default format (tests point that at a temporary folder).

    One object per settings file, kept: a QSettings written to writes its file when it is dropped, so a
    fresh object per call would write the file on the GUI thread at every change (a slider's every step);
    a kept one is written once the event loop has a moment, and by :func:`save`.
    """
    fresh = QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, "detscope", "detscope")
    key = (fresh.format(), fresh.fileName())
    kept = _open.get(key)
    if kept is None:
        kept = _open[key] = fresh
    return kept


def save() -> None:
    """Write what has changed now (before the window goes)."""
    for kept in _open.values():
        kept.sync()
