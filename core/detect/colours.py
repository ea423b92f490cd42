"""Each class's colour, the same in the window, the drawn images and the report (no NumPy: the window's GUI
thread imports it)."""

from __future__ import annotations

import colorsys


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour for a class id (golden-ratio hue steps)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)
