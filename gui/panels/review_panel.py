"""The review panel: the image's detections with their verdicts, the progress line, the filter, the comment,
the class picker, and the help overlay that lists every key of the review.

Widgets only: the review controller fills them and turns what they emit into store calls.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import QComboBox, QCompleter, QFrame, QHBoxLayout, QLabel, QLineEdit, QListWidget, \
    QListWidgetItem, QVBoxLayout, QWidget

from ..qt import style
from .image_view import qcolour

# How each verdict is shown: a mark and a few words.
VERDICT_TEXT = {
    "correct": ("✓", "correct"),
    "wrong_class": ("≠", "wrong class"),
    "bad_box": ("▭", "bad box"),
    "duplicate": ("2×", "duplicate"),
    "false_positive": ("✗", "false positive"),
    "missed": ("+", "missed object"),
}
STATE_TEXT = {"done": "done", "relabel": "needs relabelling", "skip": "skipped"}
ALL = "all"


def verdict_colour(kind: str | None) -> QColor:
    if kind is None:
        return QColor(style.TEXT_DIM)
    return QColor(style.OK if kind == "correct" else style.WARNING if kind in ("bad_box", "missed")
                  else style.ERROR)


class ClassPicker(QFrame):
    """A line to type a class name in, completed from the label map as it is typed; Enter picks, Esc gives up.

    The completion is inline (the rest of the first name that starts so, selected) with the names that match
    listed under the line: a completer's popup is a window of its own, and closing it hands the keyboard
    back to whatever the window manager picks rather than to the image.
    """

    picked = Signal(int)          # class id
    cancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.names: dict[str, int] = {}
        self.title = QLabel(self)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("type a class name, Enter to pick, Esc to cancel")
        self.model = QStringListModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setCompletionMode(QCompleter.CompletionMode.InlineCompletion)
        self.edit.setCompleter(self.completer)
        self.edit.returnPressed.connect(self._accept)
        self.edit.textEdited.connect(self._show_matches)
        self.matches = QLabel(self)
        self.matches.setStyleSheet(f"color: {style.TEXT_DIM}")
        self.matches.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setStyleSheet(f"color: {style.ERROR}")
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.edit)
        layout.addWidget(self.matches)
        layout.addWidget(self.error)
        self.hide()

    def set_classes(self, labels: dict[int, str]) -> None:
        self.names = {}
        for cid, name in sorted(labels.items()):
            self.names[name] = cid
            self.names.setdefault(str(cid), cid)
        self.model.setStringList([name for cid, name in sorted(labels.items())])

    def ask(self, title: str, preset: str = "") -> None:
        self.title.setText(title)
        self.error.hide()
        self.edit.setText(preset)
        self.edit.selectAll()
        self._show_matches(preset)
        self.show()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def class_of(self, text: str) -> int | None:
        text = text.strip()
        if text in self.names:
            return self.names[text]
        folded = {n.casefold(): c for n, c in self.names.items()}
        if text.casefold() in folded:
            return folded[text.casefold()]
        hits = {c for n, c in self.names.items() if n.casefold().startswith(text.casefold())} if text else set()
        return hits.pop() if len(hits) == 1 else None

    def _show_matches(self, text: str) -> None:
        typed = text.strip().casefold()
        names = self.model.stringList()
        hits = [n for n in names if typed in n.casefold()] if typed else names
        shown = ", ".join(hits[:12]) + (f" … ({len(hits)})" if len(hits) > 12 else "")
        self.matches.setText(f"matches: {shown}" if hits else "no class matches")

    def _accept(self) -> None:
        cid = self.class_of(self.edit.text())
        if cid is None:
            self.error.setText(f"'{self.edit.text().strip()}' is not a class of the label map")
            self.error.show()
            return
        self.picked.emit(cid)        # whoever asked takes the keyboard back first: hidden with it, the
        self.hide()                  # picker would pass it on to the next field

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            self.hide()
            return
        super().keyPressEvent(event)


class HelpOverlay(QFrame):
    """Every key of the review, over the image (``?`` or F1 shows and hides it; any click hides it)."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("review_help")
        self.setStyleSheet("#review_help { background: rgba(20, 20, 20, 225); border: 1px solid #888; "
                           "border-radius: 6px; } QLabel { color: white; }")
        self.text = QLabel(self)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.text)
        self.hide()

    def set_keys(self, rows: list[tuple[str, str]]) -> None:
        """``(keys, what)`` rows; a row without keys is a heading."""
        cells = []
        for keys, what in rows:
            if not keys:
                cells.append(f"<tr><td colspan='2'><br><b>{escape(what)}</b></td></tr>")
            else:
                cells.append(f"<tr><td align='right' style='padding-right: 12px'><b>{escape(keys)}</b></td>"
                             f"<td>{escape(what)}</td></tr>")
        self.text.setText("<table cellspacing='2'>" + "".join(cells) + "</table>")
        self.adjustSize()

    def toggle(self) -> None:
        self.setVisible(not self.isVisible())
        if self.isVisible():
            self.place()
            self.raise_()

    def place(self) -> None:
        parent = self.parentWidget()
        self.adjustSize()
        self.move(max(0, (parent.width() - self.width()) // 2), max(0, (parent.height() - self.height()) // 2))

    def mousePressEvent(self, event) -> None:
        self.hide()


def key_text(sequences: list[QKeySequence]) -> str:
    return " / ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in sequences)


class ReviewPanel(QWidget):
    """The review of the image on screen: its detections and drawn boxes with their verdicts."""

    target_selected = Signal(str)          # "d<N>" or "m<hex>" (or "" for none)
    filter_chosen = Signal(object)         # dict of ReviewStore.filter's keyword arguments
    comment_done = Signal()                # Enter in the comment field: back to the image

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No review open — Review ▸ Start review… (Ctrl+Shift+R)", self)
        self.title.setWordWrap(True)
        self.progress = QLabel(self)
        self.progress.setStyleSheet("font-weight: bold")
        self.filter = QComboBox(self)
        self.filter.setToolTip("Which images the list shows (Ctrl+Shift+F)")
        self.filter.currentIndexChanged.connect(self._filter_changed)
        self.image_line = QLabel(self)
        self.image_line.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.currentRowChanged.connect(self._row_changed)
        self.picker = ClassPicker(self)
        self.comment = QLineEdit(self)
        self.comment.setPlaceholderText("comment on this image (T), kept with its state (A, R, S)")
        self.comment.returnPressed.connect(self.comment_done)
        self.comment.setFocusPolicy(Qt.FocusPolicy.ClickFocus)   # T or a click: never on its own, so letters stay keys
        self.hint = QLabel("? or F1: every key", self)
        self.hint.setStyleSheet(f"color: {style.TEXT_DIM}")
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(QLabel("Show", self))
        filters.addWidget(self.filter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.progress)
        layout.addLayout(filters)
        layout.addWidget(self.image_line)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.picker)
        layout.addWidget(self.comment)
        layout.addWidget(self.hint)
        self._targets: list[str] = []
        self._filters: list[dict] = []
        self.set_filters({}, ())

    # --- filling ----------------------------------------------------------------------------------
    def set_review(self, title: str) -> None:
        self.title.setText(title)

    def set_progress(self, line: str) -> None:
        self.progress.setText(line)

    def set_filters(self, labels: dict[int, str], verdicts) -> None:
        """The filter box: all, unreviewed, disputed, one per verdict kind, one per class."""
        self.filter.blockSignals(True)
        self.filter.clear()
        self._filters = []

        def add(text, kwargs):
            self.filter.addItem(text)
            self._filters.append(kwargs)

        add("All images", {})
        add("Unreviewed", {"unreviewed": True})
        add("Disputed (a correction, or to relabel)", {"disputed": True})
        for kind in verdicts:
            add(f"Verdict: {VERDICT_TEXT.get(kind, (None, STATE_TEXT.get(kind, kind)))[1]}", {"verdict": kind})
        for cid, name in sorted(labels.items()):
            add(f"Class: {name}", {"class_id": cid})
        self.filter.blockSignals(False)

    def current_filter(self) -> dict:
        i = self.filter.currentIndex()
        return dict(self._filters[i]) if 0 <= i < len(self._filters) else {}

    def _filter_changed(self, _index: int) -> None:
        self.filter_chosen.emit(self.current_filter())

    def set_rows(self, rows: list[tuple[str, int, str, str | None]], select: str = "") -> None:
        """``(target, class_id, text, verdict kind or None)`` per row; ``select`` is made current."""
        self.list.blockSignals(True)
        self.list.clear()
        self._targets = []
        for target, cid, text, kind in rows:
            mark, words = VERDICT_TEXT.get(kind, ("·", "not judged"))
            item = QListWidgetItem(f"{mark}  {text} — {words}")
            item.setForeground(verdict_colour(kind))
            item.setData(Qt.ItemDataRole.DecorationRole, qcolour(cid))
            self.list.addItem(item)
            self._targets.append(target)
        row = self._targets.index(select) if select in self._targets else (0 if self._targets else -1)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)

    def set_image_line(self, name: str, state: str | None, comment: str | None) -> None:
        said = STATE_TEXT.get(state, "not reviewed yet") if state else "not reviewed yet"
        tail = f" — “{escape(comment)}”" if comment else ""
        colour = style.OK if state == "done" else style.WARNING if state else style.TEXT_DIM
        self.image_line.setText(f"<b>{escape(name)}</b>: <span style='color: {colour}'>{said}</span>{tail}")
        self.comment.setText(comment or "")

    # --- the current row ------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        row = self.list.currentRow()
        return self._targets[row] if 0 <= row < len(self._targets) else ""

    def select(self, target: str) -> None:
        if target in self._targets:
            self.list.setCurrentRow(self._targets.index(target))

    def step(self, delta: int) -> None:
        if self._targets:
            row = self.list.currentRow()
            self.list.setCurrentRow(max(0, min(len(self._targets) - 1, (row if row >= 0 else -1) + delta)))

    def _row_changed(self, row: int) -> None:
        self.target_selected.emit(self._targets[row] if 0 <= row < len(self._targets) else "")
