"""How shapes, byte sizes and counts are written, the same on the command line and in the window."""

from __future__ import annotations

import re


def fmt_shape(shape) -> str:
    """``[1, ?, ?, 3]``; an unknown rank is the empty string."""
    if shape is None:
        return ""
    return "[" + ", ".join("?" if d is None or d == -1 else str(d) for d in shape) + "]"


def fmt_bytes(n: int | None) -> str:
    """``512 B``, ``1.5 KB``, ``3.2 MB``; the empty string for an unknown size."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 value``, ``3 values``."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """A sort key that orders numbers inside names by value: ``1, 4, 7, 10`` rather than ``1, 10, 4, 7``.

    Runs of digits compare by magnitude (length without leading zeros, then the digits), so a run of any
    length is fine; the text between them compares as text.
    """
    parts = _DIGITS.split(text)
    key = []
    for i, part in enumerate(parts):
        if i % 2:
            digits = part.lstrip("0")
            key.append((len(digits), digits, part))
        else:
            key.append(part)
    return tuple(key)
