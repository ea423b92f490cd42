"""Findings: what is wrong (or worth knowing) about a model folder, one line each."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: the same behaviour, spelled out
    class StrEnum(str, Enum):
        """An Enum whose members are their string values (``str()``, f-strings, JSON)."""

        __str__ = str.__str__
        __format__ = str.__format__


class Severity(StrEnum):
    """How bad a finding is. Members are their strings: ``Severity.ERROR == "error"``, and JSON writes "error"."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    """One finding. ``message`` is a single line a user can act on.

    ``file`` is the file the finding concerns (a path as the user gave it or as
    found in the folder). What it concerns inside the folder, so a viewer can
    select it (``Inventory.node_for`` answers which tree node that is):

    * ``key``: the checkpoint key (bundle entry, or Keras file weight) of the value
      it is about: its stable identity, the same in every checkpoint of a folder,
      in the restore report and in ``inspect --tensor``, whatever row the tree
      shows it on. Every finding about a variable or value sets it.
    * ``node``: the inventory path of a tree row that is not a value (say
      ``Label map``), for findings about such a row.

    ``severity`` is a :class:`Severity` (a plain string is converted).
    """

    severity: Severity
    message: str
    file: str | None = None
    node: str | None = None
    key: str | None = None

    def __post_init__(self):
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))

    def as_json(self) -> dict:
        return {"severity": self.severity.value, "message": self.message, "file": self.file}

    def line(self) -> str:
        where = f" ({self.file})" if self.file else ""
        return f"{self.severity}: {self.message}{where}"


def sort_findings(findings) -> list[Finding]:
    """Errors first, then warnings, then information; stable otherwise."""
    return sorted(findings, key=lambda f: _ORDER.get(f.severity, 3))
