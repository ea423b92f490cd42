"""The model dock: what is open (name, kind, size), the checkpoint picker and the model tree."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from detscope.core.base.text import fmt_bytes

from .model_tree import ModelTreePanel


class ModelBox(QWidget):
    """Shows an inventory; ``checkpoint_chosen(name)`` when the user picks another ``ckpt-N``."""

    checkpoint_chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tree = ModelTreePanel(self)
        self.label = QLabel("No model open — File ▸ Open model folder (Ctrl+O) or drop one here", self)
        self.label.setWordWrap(True)
        self.label.setContentsMargins(4, 4, 4, 0)
        self.checkpoints = QComboBox(self)
        self.checkpoints.setToolTip("Restore another checkpoint of this folder into the loaded model (no reload)")
        self.checkpoints.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.checkpoints.activated.connect(lambda row: self.checkpoint_chosen.emit(self.checkpoints.itemData(row) or ""))
        self.checkpoint_label = QLabel("Checkpoint", self)
        picker = QHBoxLayout()
        picker.setContentsMargins(4, 0, 4, 0)
        picker.addWidget(self.checkpoint_label)
        picker.addWidget(self.checkpoints)
        picker.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.label)
        box.addLayout(picker)
        box.addWidget(self.tree, 1)
        self._show_picker(False)

    def opened(self, path: Path) -> None:
        """A new folder is being read: clear what was shown."""
        self.label.setText(f"<b>{path.name}</b> — reading…")
        self.label.setToolTip(str(path))
        self.tree.set_root(None)
        self._show_picker(False)

    def failed(self, path: Path, line: str) -> None:
        self.label.setText(f"<b>{path.name}</b> — could not be read")
        self.label.setToolTip(line)

    def show_inventory(self, inv) -> None:
        """The inventory's tree (keeping the selected row where it still exists), its size and checkpoints."""
        node = self.tree.current_node()
        keep = (node.path, node.key) if node is not None else None
        self.tree.set_root(inv.root)
        params, nbytes = inv.totals()
        kind = inv.kind.replace("_", " ")
        size = f", {params:,} parameters, {fmt_bytes(nbytes)}" if params else ""
        self.label.setText(f"<b>{inv.folder.path.name}</b> — {kind}{size}")
        self._fill_picker(inv)
        if keep is not None:     # the same row again (by key when another checkpoint renamed its group)
            model = self.tree.model
            found = model.find_path(keep[0]) or (model.find_key(keep[1]) if keep[1] else None)
            if found is not None:
                self.tree.select_node(found)

    def _fill_picker(self, inv) -> None:
        numbered = [c for c in inv.checkpoints if c.number is not None]
        self.checkpoints.blockSignals(True)
        self.checkpoints.clear()
        for c in numbered:
            step = f" · step {c.step:,}" if c.step is not None else ""
            self.checkpoints.addItem(f"{c.name}{step}", c.name)
        self.checkpoints.blockSignals(False)
        self.set_checkpoint(inv.checkpoint.name if inv.checkpoint is not None else None)
        self._show_picker(len(numbered) > 0)
        self.checkpoints.setEnabled(len(numbered) > 1)

    def set_checkpoint(self, name: str | None) -> None:
        """Show ``name`` as the current checkpoint (without asking for a switch)."""
        i = self.checkpoints.findData(name)
        if i >= 0 and i != self.checkpoints.currentIndex():
            self.checkpoints.blockSignals(True)
            self.checkpoints.setCurrentIndex(i)
            self.checkpoints.blockSignals(False)

    def _show_picker(self, on: bool) -> None:
        self.checkpoints.setVisible(on)
        self.checkpoint_label.setVisible(on)
