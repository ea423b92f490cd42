"""Findings, the restore report and this session's errors, coloured by severity.

Clicking a row that concerns a tree node emits ``locate(finding_or_key)``; the
window selects that node (core answers which: Inventory.node_for, by the checkpoint key a finding carries).
Long lists (the matched values of a big model) are filled in when their group is
first opened.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QVBoxLayout, QWidget

from detscope.core.runtime.report import report_sections

from ..qt import style

PAYLOAD = Qt.ItemDataRole.UserRole + 1
PENDING = Qt.ItemDataRole.UserRole + 2     # a group whose rows are made when it is first opened
MAX_LISTED = 5000      # rows per restore-report group; the title keeps the full count


class ProblemsPanel(QWidget):
    locate = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = QStandardItemModel(self)
        self.model.setHorizontalHeaderLabels(["Message", "Where"])
        self.tree = QTreeView(self)
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setStretchLastSection(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.header().resizeSection(0, 640)
        self.tree.activated.connect(self._index_activated)
        self.tree.clicked.connect(self._index_activated)
        self.tree.expanded.connect(lambda index: self._fill(self.model.itemFromIndex(index)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        self._bold = QFont(self.tree.font())
        self._bold.setBold(True)
        self._pending: dict[int, list] = {}      # PENDING number of a group -> its rows, not yet made
        self._next_pending = 0
        self.findings_item = self._group("Problems")
        self.report_item = self._group("Restore report")
        self.session_item = self._group("Messages")
        self.findings: list = []
        self.report = None
        self.set_findings([])
        self.set_report(None)
        self._set_hidden(self.session_item, True)

    # --- building -----------------------------------------------------------------------------
    def _group(self, title: str) -> QStandardItem:
        item = QStandardItem(title)
        item.setFont(self._bold)
        item.setEditable(False)
        where = QStandardItem("")
        where.setEditable(False)
        self.model.appendRow([item, where])
        self.tree.setFirstColumnSpanned(item.row(), QModelIndex(), True)    # titles are long: use the width
        return item

    def _row(self, parent: QStandardItem, text: str, where: str = "", colour: str | None = None,
             payload=None) -> QStandardItem:
        item = QStandardItem(text)
        item.setEditable(False)
        item.setToolTip(text)
        if colour:
            item.setForeground(QBrush(QColor(colour)))
        if payload is not None:
            item.setData(payload, PAYLOAD)
        place = QStandardItem(where)
        place.setEditable(False)
        place.setToolTip(where)
        parent.appendRow([item, place])
        return item

    def _clear(self, item: QStandardItem) -> None:
        if item.rowCount():
            item.removeRows(0, item.rowCount())

    def _colour(self, item: QStandardItem, colour: str | None) -> None:
        item.setForeground(QBrush(QColor(colour)) if colour else QBrush())

    def _set_hidden(self, item: QStandardItem, hidden: bool) -> None:
        self.tree.setRowHidden(item.row(), QModelIndex(), hidden)

    def _expand(self, item: QStandardItem, on: bool = True) -> None:
        self.tree.setExpanded(item.index(), on)

    def clear(self) -> None:
        self.set_findings([])
        self.set_report(None)

    def set_findings(self, findings) -> None:
        self.findings = list(findings)
        self._clear(self.findings_item)
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
            self._row(self.findings_item, f"{f.severity}: {f.message}", f.file or "",
                      style.SEVERITY_COLOURS.get(f.severity), payload=f)
        summary = ", ".join(f"{n} {sev}{'s' if n > 1 else ''}" for sev, n in counts.items()) or "none"
        self.findings_item.setText(f"Problems ({summary})")
        worst = next((s for s in ("error", "warning", "info") if s in counts), None)
        self._colour(self.findings_item, style.SEVERITY_COLOURS.get(worst, style.OK))
        self._expand(self.findings_item)

    def set_report(self, report, note: str = "") -> None:
        """Show a restore report (None: nothing restored yet; ``note`` says why)."""
        self.report = report
        item = self.report_item
        self._clear(item)
        self._pending.clear()
        if report is None:
            item.setText(f"Restore report: {note or 'nothing restored yet'}")
            self._colour(item, style.TEXT_DIM)
            return
        item.setText(f"Restore report ({report.source} → {_short(report.target)}): {report.summary()}")
        self._colour(item, style.VERDICT_COLOURS.get(report.verdict, style.TEXT_DIM))
        tones = {"error": style.ERROR, "warning": style.WARNING, "ok": style.OK, "info": style.INFO,
                 "dim": style.TEXT_DIM}
        for section in report_sections(report):
            colour = tones.get(section.tone, style.TEXT_DIM)
            if section.id in ("notes", "tf_messages"):   # short lists of sentences, nothing to locate
                group = self._row(item, section.title, colour=colour)
                for text, _ in section.rows:
                    self._row(group, text, colour=colour)
                if section.open:
                    self._expand(group)
                continue
            self._list(item, section.title, colour, list(section.rows), expand=section.open)
        self._expand(item)

    def _list(self, parent: QStandardItem, title: str, colour: str, rows, expand: bool = False) -> None:
        if not rows:
            return
        group = self._row(parent, title, colour=colour)
        self.tree.setFirstColumnSpanned(group.row(), parent.index(), True)
        self._next_pending += 1
        group.setData(self._next_pending, PENDING)
        self._pending[self._next_pending] = rows
        if expand:
            self._fill(group)
            self._expand(group)
        else:
            self._row(group, "…")    # so the group shows it can open; the rows come when it does

    def _fill(self, group: QStandardItem | None) -> None:
        if group is None:
            return
        number = group.data(PENDING)
        rows = self._pending.pop(number, None) if number is not None else None
        if rows is None:
            return
        self._clear(group)
        for text, key in rows[:MAX_LISTED]:
            self._row(group, text, payload=("key", key))
        if len(rows) > MAX_LISTED:
            self._row(group, f"… and {len(rows) - MAX_LISTED:,} more", colour=style.TEXT_DIM)

    def add_message(self, line: str, severity: str = "error") -> None:
        """A line from this session (a failed load, a camera that did not open)."""
        self._set_hidden(self.session_item, False)
        self._row(self.session_item, f"{time.strftime('%H:%M:%S')}  {line}",
                  colour=style.SEVERITY_COLOURS.get(severity))
        self.session_item.setText(f"Messages ({self.session_item.rowCount()})")
        self._colour(self.session_item, style.SEVERITY_COLOURS.get(severity))
        self._expand(self.session_item)

    # --- clicking -------------------------------------------------------------------------------
    def _index_activated(self, index: QModelIndex) -> None:
        item = self.model.itemFromIndex(index.siblingAtColumn(0))
        if item is not None:
            self._activated(item)

    def _activated(self, item: QStandardItem) -> None:
        payload = item.data(PAYLOAD)
        if payload is not None:
            self.locate.emit(payload)

    def rows(self, group: QStandardItem | None = None) -> list[QStandardItem]:
        """Every row below ``group`` (all groups when None), depth first, long lists filled in."""
        out = []
        stack = [group] if group is not None else [self.model.item(r) for r in range(self.model.rowCount())]
        while stack:
            it = stack.pop(0)
            self._fill(it)
            out.append(it)
            stack[0:0] = [it.child(r) for r in range(it.rowCount())]
        return out


def _short(target: str) -> str:
    parts = str(target).replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else str(target)
