"""detscope's QSettings: one factory, so tests can point every reader and writer at a temporary folder."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def settings() -> QSettings:
    """detscope's settings, in the default format (tests point that at a temporary folder)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, "detscope", "detscope")
