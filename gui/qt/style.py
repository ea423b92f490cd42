"""Colours and sizes shared by the panels (readable on light and dark palettes)."""

from __future__ import annotations

ERROR = "#d03b3b"
WARNING = "#c27c0e"
INFO = "#3f7fbf"
OK = "#2e8b57"
TEXT_DIM = "#808080"

SEVERITY_COLOURS = {"error": ERROR, "warning": WARNING, "info": INFO}
VERDICT_COLOURS = {"complete": OK, "partial": WARNING, "failed": ERROR}

HISTOGRAM_BAR = "#4a90d9"
HISTOGRAM_ZERO = "#c0c0c0"
