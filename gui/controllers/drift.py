"""Weight drift in the model tree: Model ▸ Compare weights with… diffs the checkpoint the tree shows (A) against
another one (B) on the worker pool — the window's ``detscope diff`` — and shows a "drift" column beside the
names; Model ▸ Clear weight comparison removes it.

B is another ``ckpt-N`` of the same folder (from the checkpoint picker's list), a checkpoint's ``.index`` or a
model folder (its selected checkpoint). The diff reads both bundles without TensorFlow, chunk by chunk; the
column's cells are laid over the tree on the pool too, so the GUI thread only swaps them in. When the tree is
read again for another checkpoint, A changes and the comparison runs again against the same B; opening
another model drops it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog

from detscope.core.app.host import Latest

from ..panels.drift_column import drift_cells
from ..qt.settings import settings

OTHER_FILE = "A checkpoint file (.index)…"
OTHER_FOLDER = "A model folder (its latest checkpoint)…"


def _diff(a: str, b: str, root, progress=None):
    from detscope.core.browse.diff import diff_checkpoints

    return drift_cells(root, diff_checkpoints(a, b, progress=progress))


class DriftFlows(QObject):
    """Owns the comparison the tree shows; what happens is said through ``message``/``failed``."""

    message = Signal(str)
    failed = Signal(str)
    shown = Signal(object)            # the DriftColumn now in the tree (None: removed)

    def __init__(self, session, bridge, pool, tree, parent=None):
        super().__init__(parent)
        self.session, self.bridge, self.pool, self.tree = session, bridge, pool, tree
        self._dialog_parent = parent
        self.other: str | None = None         # B: a checkpoint prefix or a folder
        self.column = None                    # the DriftColumn shown
        self.running = None
        self._request = Latest()
        session.opened.connect(lambda _path: self.clear(quiet=True))
        session.inventory_ready.connect(self._tree_replaced)

    # --- choosing B -----------------------------------------------------------------------------
    def choose(self) -> None:
        """Ask for B: another checkpoint of this folder, a checkpoint file, or a model folder."""
        inv = self.session.inventory
        if inv is None or inv.checkpoint is None:
            self.failed.emit("open a model with a checkpoint first (File ▸ Open model folder)")
            return
        others = [c for c in inv.checkpoints if c.name != inv.checkpoint.name]
        labels = [f"{c.name}" + (f" · step {c.step:,}" if c.step is not None else "") for c in others]
        items = labels + [OTHER_FILE, OTHER_FOLDER]
        choice, ok = QInputDialog.getItem(self._dialog_parent, "Compare weights with…",
                                          f"Compare {inv.checkpoint.name} (A, shown) with B:", items, 0, False)
        if not ok:
            return
        if choice in labels:
            self.compare_with(others[labels.index(choice)].prefix)
            return
        start = str(Path(inv.checkpoint.prefix).parent)
        if choice == OTHER_FILE:
            path, _ = QFileDialog.getOpenFileName(self._dialog_parent, "Checkpoint to compare with", start,
                                                  "Checkpoint index (*.index);;All files (*)")
        else:
            path = QFileDialog.getExistingDirectory(self._dialog_parent, "Model folder to compare with", start)
        if path:
            settings().setValue("last_compare_dir", str(Path(path).parent))
            self.compare_with(path)

    # --- comparing ------------------------------------------------------------------------------
    def compare_with(self, other) -> None:
        """Diff the tree's checkpoint (A) against ``other`` (B) off the GUI thread, then show the column."""
        inv = self.session.inventory
        if inv is None or inv.checkpoint is None:
            self.failed.emit("open a model with a checkpoint first (File ▸ Open model folder)")
            return
        other = str(other)
        if other.endswith(".index"):
            other = other[: -len(".index")]
        self.other = other
        a = str(inv.checkpoint.prefix)
        root = inv.root                     # the tree the panel shows (set_drift checks it still is)
        request = self._request.stamp()
        name = Path(other).name
        future = self.pool.submit(_diff, a, other, root)
        self.running = future
        self.bridge.track(f"Comparing {inv.checkpoint.name} with {name}", future,
                          cancel=lambda: future.cancel())
        self.bridge.watch(future, lambda column: self._done(request, column),
                          lambda exc: self._failed(request, exc, name), lambda: self._cancelled(request))
        self.message.emit(f"comparing the weights of {inv.checkpoint.name} with {name}…")

    def _done(self, request: int, column) -> None:
        if not self._request.is_current(request):
            return
        self.running = None
        if not self.tree.set_drift(column):
            return                       # the tree was replaced meanwhile: its own comparison follows
        self.column = column
        extra = ""
        if column.only_in_b:
            more = " …" if len(column.only_in_b) > 3 else ""
            extra = f" (only in {column.b}: {', '.join(column.only_in_b[:3])}{more})"
        self.message.emit(column.summary + extra)
        self.shown.emit(column)

    def _failed(self, request: int, exc: BaseException, name: str) -> None:
        if self._request.is_current(request):
            self.running = None
            self.other = None
            self.failed.emit(self.bridge.report(exc, f"cannot compare with {name}"))

    def _cancelled(self, request: int) -> None:
        if self._request.is_current(request):
            self.running = None
            self.message.emit("weight comparison cancelled")

    def clear(self, quiet: bool = False) -> None:
        """Remove the drift column (and forget B)."""
        self._request.stamp()               # an answer still on its way is dropped
        had = self.column is not None or self.other is not None
        self.other = None
        self.column = None
        self.running = None
        self.tree.set_drift(None)
        self.shown.emit(None)
        if had and not quiet:
            self.message.emit("weight comparison cleared")

    def _tree_replaced(self, inv) -> None:
        """The tree was read again (another checkpoint is A now): compare again with the same B."""
        self.column = None
        if self.other is not None and inv.checkpoint is not None:
            self.compare_with(self.other)
