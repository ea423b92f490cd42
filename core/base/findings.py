"""Findings: what is wrong (or worth knowing) about a model folder, one line each."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    """One finding. ``message`` is a single line a user can act on.

    ``file`` is the file the finding concerns (a path as the user gave it or as
    found in the folder); ``node`` is the inventory path of the tree node it
    concerns, when there is one, so a viewer can select it.
    """

    severity: str
    message: str
    file: str | None = None
    node: str | None = None

    def as_json(self) -> dict:
        return {"severity": self.severity, "message": self.message, "file": self.file}

    def line(self) -> str:
        where = f" ({self.file})" if self.file else ""
        return f"{self.severity}: {self.message}{where}"


def sort_findings(findings) -> list[Finding]:
    """Errors first, then warnings, then information; stable otherwise."""
    return sorted(findings, key=lambda f: _ORDER.get(f.severity, 3))
