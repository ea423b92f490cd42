"""The restore report: what one restore matched, left unused, missed, and got wrong. Plain data.

:func:`report_sections` is the one place the report is cut into what a user reads (the
command line prints the sections, the window's problems panel shows them as rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base.errors import UserError
from ..base.findings import StrEnum
from ..base.text import fmt_shape
from ..formats.objectgraph import COUNTER, MODEL, OPTIMIZER, OTHER, SLOT


class Verdict(StrEnum):
    """A restore's verdict; only a complete one runs unasked. Members are their strings (JSON writes "complete")."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"


COMPLETE, PARTIAL, FAILED = Verdict.COMPLETE, Verdict.PARTIAL, Verdict.FAILED
GROUP_TITLES = {SLOT: "optimizer slots", OPTIMIZER: "optimizer state", COUNTER: "step and counters",
                MODEL: "model values", OTHER: "other values"}


class RestoreError(UserError):
    """A restore that cannot start (no such factory, a broken file); one line."""


@dataclass(frozen=True)
class Unused:
    key: str
    group: str
    shape: tuple


@dataclass(frozen=True)
class Missing:
    key: str          # the model variable's path in the live object tree
    shape: tuple
    dtype: str


@dataclass(frozen=True)
class Mismatch:
    key: str
    checkpoint_shape: tuple
    model_shape: tuple
    checkpoint_dtype: str = ""
    model_dtype: str = ""


@dataclass
class RestoreReport:
    verdict: Verdict
    source: str                                   # the checkpoint (or file) restored from
    target: str                                   # what it was restored into
    matched: list[str] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    shape_mismatches: list[Mismatch] = field(default_factory=list)
    dtype_mismatches: list[Mismatch] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)    # checkpoint path -> live path of the roots
    notes: list[str] = field(default_factory=list)
    tf_messages: dict[str, int] = field(default_factory=dict)  # summarised TensorFlow warnings
    # False when the values could not be read (a data shard missing or short): the lists are then the plan made
    # from the index alone, what would match, miss and mismatch, and nothing was assigned.
    assigned: bool = True

    def __post_init__(self):
        self.verdict = Verdict(self.verdict)

    def unused_by_group(self) -> dict[str, list[Unused]]:
        groups: dict[str, list[Unused]] = {}
        for u in self.unused:
            groups.setdefault(u.group, []).append(u)
        return groups

    def summary(self) -> str:
        parts = [f"{self.verdict}: {len(self.matched)} values matched" if self.assigned else
                 f"{self.verdict}: nothing assigned ({len(self.matched)} values would match)"]
        if self.missing:
            parts.append(f"{len(self.missing)} model variables not restored")
        if self.shape_mismatches:
            parts.append(f"{len(self.shape_mismatches)} shape mismatches")
        if self.dtype_mismatches:
            parts.append(f"{len(self.dtype_mismatches)} dtype mismatches")
        for group, items in self.unused_by_group().items():
            parts.append(f"{len(items)} unused {GROUP_TITLES.get(group, group)}")
        return ", ".join(parts)

    def as_json(self) -> dict:
        return {
            "verdict": str(self.verdict),
            "source": self.source,
            "target": self.target,
            "matched": len(self.matched),
            "assigned": self.assigned,
            "matched_keys": list(self.matched),
            "unused": [{"key": u.key, "group": GROUP_TITLES.get(u.group, u.group), "shape": list(u.shape)}
                       for u in self.unused],
            "missing": [{"key": m.key, "shape": list(m.shape), "dtype": m.dtype} for m in self.missing],
            "shape_mismatches": [{"key": m.key, "checkpoint_shape": list(m.checkpoint_shape),
                                  "model_shape": list(m.model_shape)} for m in self.shape_mismatches],
            "dtype_mismatches": [{"key": m.key, "checkpoint_dtype": m.checkpoint_dtype,
                                  "model_dtype": m.model_dtype} for m in self.dtype_mismatches],
            "mapping": dict(self.mapping),
            "notes": list(self.notes),
            "tensorflow_warnings": dict(self.tf_messages),
        }


@dataclass(frozen=True)
class ReportSection:
    """One part of a report as a user reads it: a title, a tone and ``(text, key)`` rows.

    ``tone`` is ``error``, ``warning``, ``ok``, ``info`` or ``dim``; ``key`` (a checkpoint key or
    model variable path) is what a click on the row locates; ``open`` says the part deserves to
    be shown unfolded (mismatches, missing variables, unused model values).
    """

    id: str
    title: str
    tone: str
    rows: tuple[tuple[str, str | None], ...]
    open: bool = False


def report_sections(report: RestoreReport) -> list[ReportSection]:
    """The report's parts in reading order; empty parts are left out."""
    out: list[ReportSection] = []

    def add(id_, title, tone, rows, open_=False):
        if rows:
            out.append(ReportSection(id_, f"{title} ({len(rows)})", tone, tuple(rows), open_))

    add("shape_mismatches", "Shape mismatches", "error",
        [(f"{m.key}: checkpoint {fmt_shape(m.checkpoint_shape)}, model {fmt_shape(m.model_shape)}", m.key)
         for m in report.shape_mismatches], True)
    add("dtype_mismatches", "Dtype mismatches", "error",
        [(f"{m.key}: checkpoint {m.checkpoint_dtype}, model {m.model_dtype}", m.key)
         for m in report.dtype_mismatches], True)
    add("missing", "Missing: model variables not restored", "warning",
        [(f"{m.key}  {fmt_shape(m.shape)} {m.dtype}", m.key) for m in report.missing], True)
    for group, items in report.unused_by_group().items():
        # Unused model values mean part of the model kept its initial weights: worth a look.
        add(f"unused:{group}", f"Unused {GROUP_TITLES.get(group, group)}", "warning" if group == MODEL else "dim",
            [(f"{u.key}  {fmt_shape(u.shape)}", u.key) for u in items], group == MODEL)
    add("matched", "Matched" if report.assigned else "Would match (not assigned)", "ok" if report.assigned else "dim",
        [(k, k) for k in report.matched])
    add("notes", "Notes", "info", [(n, None) for n in report.notes], True)
    add("tf_messages", "TensorFlow said", "dim",
        [(f"{count} × {msg}", None) for msg, count in sorted(report.tf_messages.items(), key=lambda kv: -kv[1])])
    return out
