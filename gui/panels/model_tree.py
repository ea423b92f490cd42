"""The inventory tree: a read-only item model over ``Node``, a filter proxy and the panel around them.

``NodeModel`` never copies the tree: every index points at its ``Node`` and each
node knows its own row, so ``parent()`` is O(1) and a 10,000-entry checkpoint is
shown as soon as the model is reset (the view asks only for visible rows).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu, QTreeView, \
    QVBoxLayout, QWidget

from detscope.core.base.text import fmt_bytes, fmt_shape  # noqa: F401  (fmt_shape: used by the panels beside)
from detscope.core.browse.inventory import VALUE_KINDS, NodeKind

from ..qt import style
from .drift_column import MOVED_COLOUR, ONLY_A, SHAPE as SHAPE_CHANGE, STRUCTURE_COLOUR, UNCHANGED

NAME, SHAPE, DTYPE, SIZE, DETAIL, DRIFT = range(6)
HEADERS = ("Name", "Shape", "Dtype", "Parameters / size", "Detail")   # DRIFT shows only while a drift is set
NODE_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
FILTER_DELAY_MS = 150


def fmt_size(node) -> str:
    if node.kind in VALUE_KINDS:
        parts = [f"{node.params:,}" if node.params is not None else "", fmt_bytes(node.nbytes)]
        return " · ".join(p for p in parts if p)
    if node.kind in (NodeKind.GROUP, NodeKind.OBJECT):
        parts = [f"{node.params:,}" if node.params else "", fmt_bytes(node.nbytes)]
        return " · ".join(p for p in parts if p)
    if node.params is not None:
        return f"{node.params:,}"
    return ""


class NodeModel(QAbstractItemModel):
    """Read-only model over an inventory ``Node`` tree (the root itself is not shown)."""

    def __init__(self, root=None, parent=None):
        super().__init__(parent)
        self._root = root
        self._by_path: dict[str, object] | None = None
        self.drift = None                 # a DriftColumn over this root: the DRIFT column is there while set
        self._bold = QFont()
        self._bold.setBold(True)

    # --- the tree ---------------------------------------------------------------------------
    @property
    def root(self):
        return self._root

    def set_root(self, root) -> None:
        self.beginResetModel()
        self._root = root
        self._by_path = None
        self.drift = None                 # its cells belong to the old tree
        self.endResetModel()

    def set_drift(self, drift) -> None:
        """Show (a ``DriftColumn`` made for this root) or remove (None) the drift column."""
        if drift is not None and drift.root is not self._root:
            return                        # made for a tree that has been replaced since
        if self.drift is not None:
            self.beginRemoveColumns(QModelIndex(), DRIFT, DRIFT)
            self.drift = None
            self.endRemoveColumns()
        if drift is not None:
            self.beginInsertColumns(QModelIndex(), DRIFT, DRIFT)
            self.drift = drift
            self.endInsertColumns()

    def node(self, index: QModelIndex):
        if not index.isValid():
            return self._root
        return index.internalPointer()

    def index_of(self, node, column: int = 0) -> QModelIndex:
        if node is None or node is self._root or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    def find_path(self, path: str):
        if self._root is None:
            return None
        if self._by_path is None:
            self._by_path = {n.path: n for n in self._root.walk()}
        return self._by_path.get(path)

    def find_key(self, key: str):
        if self._root is None or not key:
            return None
        return next((n for n in self._root.walk() if n.key == key), None)

    # --- QAbstractItemModel -----------------------------------------------------------------
    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:
        if self._root is None or column < 0 or column >= self.columnCount() or row < 0:
            return QModelIndex()
        if parent.isValid() and parent.column() != 0:
            return QModelIndex()
        node = self.node(parent)
        if row >= len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # noqa: D401 (Qt's name)
        if not index.isValid():
            return QModelIndex()
        parent = index.internalPointer().parent
        if parent is None or parent is self._root:
            return QModelIndex()
        return self.createIndex(parent.row, 0, parent)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        if self._root is None or (parent.isValid() and parent.column() != 0):
            return 0
        return len(self.node(parent).children)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return len(HEADERS) + (1 if self.drift is not None else 0)

    def hasChildren(self, parent: QModelIndex = QModelIndex()) -> bool:
        return self.rowCount(parent) > 0

    def flags(self, index: QModelIndex):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(HEADERS):
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and section == DRIFT and self.drift is not None:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.drift.title
            if role == Qt.ItemDataRole.ToolTipRole:
                return (f"How far the weights moved from {self.drift.a} (A, shown) to {self.drift.b} (B): "
                        "‖B−A‖ / ‖A‖ per variable, summed over the float variables below each row")
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node = index.internalPointer()
        col = index.column()
        if col == DRIFT:
            return self._drift_data(node, role)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == NAME:
                if node.kind == NodeKind.FACT and node.detail and node.params is None:
                    return f"{node.name} = {node.detail}"      # a config value is read with its name
                return node.name
            if col == SHAPE:
                return fmt_shape(node.shape)
            if col == DTYPE:
                return node.dtype or ""
            if col == SIZE:
                return fmt_size(node)
            if col == DETAIL:
                return node.detail
            return None
        if role == SORT_ROLE:
            if col == NAME:
                return node.name.lower()
            if col == SHAPE:
                return -1 if node.shape is None else len(node.shape) * 1e15 + (node.params or 0)
            if col == DTYPE:
                return node.dtype or ""
            if col == SIZE:
                return float(node.nbytes if node.nbytes is not None else (node.params or -1))
            return node.detail
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [node.path]
            if node.key and node.key != node.path:
                lines.append(f"key: {node.key}")
            if node.detail:
                lines.append(node.detail)
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(node, col)
        if role == Qt.ItemDataRole.FontRole and col == NAME and node.parent is self._root:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and col == SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == NODE_ROLE:
            return node
        return None

    def _drift_data(self, node, role: int):
        cell = self.drift.cell(node) if self.drift is not None else None
        if role == NODE_ROLE:
            return node
        if cell is None:
            return -2.0 if role == SORT_ROLE else None
        if role == Qt.ItemDataRole.DisplayRole:
            return cell.text
        if role == SORT_ROLE:
            return cell.value
        if role == Qt.ItemDataRole.ToolTipRole:
            return cell.tooltip
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and cell.status == UNCHANGED:
            return QBrush(QColor(style.TEXT_DIM))
        if role == Qt.ItemDataRole.BackgroundRole and cell.status != UNCHANGED:
            if cell.status in (ONLY_A, SHAPE_CHANGE):
                return QBrush(QColor(*STRUCTURE_COLOUR))
            colour = QColor(*MOVED_COLOUR)
            colour.setAlpha(int(25 + 175 * cell.grade))
            return QBrush(colour)
        return None

    def _foreground(self, node, col: int):
        if node.kind == NodeKind.FINDING:
            return QBrush(QColor(style.SEVERITY_COLOURS.get(node.detail, style.TEXT_DIM)))
        if node.kind in VALUE_KINDS and node.key and node.shape is None:
            return QBrush(QColor(style.TEXT_DIM))          # named but not in this checkpoint
        if node.kind == NodeKind.SLOT or (col != NAME and col != SIZE):
            return QBrush(QColor(style.TEXT_DIM))
        return None


class TreeFilter(QSortFilterProxyModel):
    """Case-insensitive substring filter over names and keys, recursive: a match keeps its ancestors and its
    subtree visible.

    The recursion is done here, once per filter text, in one walk of the tree: the rows to show are the
    matches, their ancestors and everything below them. Qt's own ``setRecursiveFilteringEnabled`` gives
    the same rows but asks Python three questions per row of every subtree without a match (about
    140 ms for 10,000 variables against about 10 ms this way), so it is left off.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._needle = ""
        self._matches: set[int] | None = None
        self._shown: set[int] | None = None
        self.match_count = 0
        self.setRecursiveFilteringEnabled(False)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(False)

    @property
    def text(self) -> str:
        return self._needle

    def matches(self, node) -> bool:
        needle = self._needle
        return needle in node.name.lower() or (node.key is not None and needle in node.key.lower())

    def set_text(self, text: str) -> None:
        needle = text.strip().lower()
        if needle == self._needle and (self._matches is not None or not needle):
            return
        root = self.sourceModel().root if self.sourceModel() is not None else None
        if hasattr(self, "beginFilterChange"):        # Qt 6.9+
            self.beginFilterChange()
        self._needle = needle
        self._matches = self._shown = None
        if needle and root is not None:
            self._find(root)
        self.match_count = len(self._matches) if self._matches is not None else 0
        if hasattr(self, "endFilterChange"):
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def _find(self, root) -> None:
        matches: set[int] = set()
        shown: set[int] = set()
        stack = [(child, False) for child in reversed(root.children)]
        while stack:
            node, inside = stack.pop()          # inside: below a match, so shown whatever it is called
            hit = self.matches(node)
            if hit:
                matches.add(id(node))
                parent = node.parent
                while parent is not None and parent is not root and id(parent) not in shown:
                    shown.add(id(parent))
                    parent = parent.parent
            if hit or inside:
                shown.add(id(node))
            stack.extend((child, hit or inside) for child in reversed(node.children))
        self._matches, self._shown = matches, shown

    def forget(self) -> None:
        """Drop the matches (the source tree is about to be replaced); ``set_text`` finds them again."""
        self._matches = self._shown = None

    def is_match(self, node) -> bool:
        return self._matches is not None and id(node) in self._matches

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        if self._shown is None:
            return True
        parent = self.sourceModel().node(source_parent)
        if parent is None or source_row >= len(parent.children):
            return False
        return id(parent.children[source_row]) in self._shown


class ModelTreePanel(QWidget):
    """Filter box + tree view; emits ``node_selected(node)``; Ctrl+C copies the key of the current row."""

    node_selected = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = NodeModel(parent=self)
        self.proxy = TreeFilter(self)
        self.proxy.setSourceModel(self.model)

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter names and keys  (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.filter.returnPressed.connect(self.apply_filter)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.count = QLabel(self)
        self.count.setStyleSheet(f"color: {style.TEXT_DIM}")

        self.view = QTreeView(self)
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)          # lets the view skip measuring every row
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)   # inventory order until a header is clicked
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        header = self.view.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in ((NAME, 200), (SHAPE, 85), (DTYPE, 60), (SIZE, 130)):
            header.resizeSection(col, width)
        self.view.selectionModel().currentChanged.connect(self._current_changed)

        self.copy_action = QAction("Copy key", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(self.copy_key)
        self.view.addAction(self.copy_action)
        self.copy_path_action = QAction("Copy path", self)
        self.copy_path_action.triggered.connect(lambda: self._copy(self.current_node(), "path"))
        self.expand_action = QAction("Expand all below", self)
        self.expand_action.triggered.connect(lambda: self.view.expandRecursively(self.view.currentIndex()))
        focus = QAction(self)
        focus.setShortcut(QKeySequence.StandardKey.Find)
        focus.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        focus.triggered.connect(lambda: (self.filter.setFocus(), self.filter.selectAll()))
        self.addAction(focus)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

    # --- content ------------------------------------------------------------------------------
    def set_root(self, root) -> None:
        self.view.collapseAll()
        self.proxy.forget()
        self.model.set_root(root)
        if self.filter.text().strip():
            self.apply_filter()
        else:
            self._expand_top()
        self._update_count()

    def set_drift(self, drift) -> bool:
        """Show a ``DriftColumn`` made for the tree on screen beside the names (None removes it); False when
        it was made for a tree that has been replaced since."""
        if drift is not None and drift.root is not self.model.root:
            return False
        self.model.set_drift(drift)
        # The proxy maps columns per parent: rebuild its mappings (expanded rows survive as persistent indexes).
        self.proxy.invalidate()
        if drift is not None:
            header = self.view.header()
            header.moveSection(header.visualIndex(DRIFT), 1)     # read beside the names, not off to the right
            header.resizeSection(DRIFT, 110)
        return True

    def _expand_top(self) -> None:
        """Open the first level (except long lists of functions and ops), and the problems."""
        root = self.model.root
        if root is None:
            return
        for node in root.children:
            if node.name in ("Functions", "Op types"):
                continue
            self.view.expand(self.proxy.mapFromSource(self.model.index_of(node)))
            # A checkpoint's single top object (the model) opens too: its layers are what people look for.
            objects = [c for c in node.children if c.kind == NodeKind.OBJECT]
            if len(objects) == 1:
                self.view.expand(self.proxy.mapFromSource(self.model.index_of(objects[0])))

    def current_node(self):
        idx = self.view.currentIndex()
        if not idx.isValid():
            return None
        return self.proxy.mapToSource(idx).internalPointer()

    def select_node(self, node) -> bool:
        """Make ``node`` current and visible (clearing a filter that hides it)."""
        src = self.model.index_of(node)
        if not src.isValid():
            return False
        idx = self.proxy.mapFromSource(src)
        if not idx.isValid():
            self.filter.clear()
            self.apply_filter()
            idx = self.proxy.mapFromSource(src)
        self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    # --- slots ------------------------------------------------------------------------------
    def _filter_changed(self, text: str) -> None:
        self._filter_timer.start()       # typing stays fluid: the filter runs when the keys pause

    def apply_filter(self) -> None:
        self._filter_timer.stop()
        text = self.filter.text()
        # Expanded rows are persistent indexes the proxy would remap one by one: fold first.
        self.view.collapseAll()
        self.proxy.set_text(text)
        if text.strip():
            if self._visible_count() <= 2000:      # show every match; a huge result stays folded
                self.view.expandAll()
        else:
            self._expand_top()
        self._update_count()

    def _visible_count(self, parent: QModelIndex = QModelIndex(), limit: int = 2001) -> int:
        count = 0
        stack = [parent]
        while stack and count < limit:
            p = stack.pop()
            rows = self.proxy.rowCount(p)
            count += rows
            stack.extend(self.proxy.index(r, 0, p) for r in range(rows) if self.proxy.hasChildren(
                self.proxy.index(r, 0, p)))
        return count

    def _update_count(self) -> None:
        if not self.proxy.text or self.model.root is None:
            self.count.setText("")
            return
        n = self.proxy.match_count
        self.count.setText("no match" if n == 0 else f"{n:,} match{'es' if n > 1 else ''}")

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        node = self.proxy.mapToSource(current).internalPointer() if current.isValid() else None
        self.node_selected.emit(node)

    def copy_key(self) -> None:
        self._copy(self.current_node(), "key")

    def _copy(self, node, what: str) -> None:
        if node is None:
            return
        text = node.key if what == "key" and node.key else node.path
        QGuiApplication.clipboard().setText(text)

    def _context_menu(self, pos) -> None:
        idx = self.view.indexAt(pos)
        if not idx.isValid():
            return
        node = self.proxy.mapToSource(idx).internalPointer()
        menu = QMenu(self)
        self.copy_action.setEnabled(bool(node.key))
        menu.addAction(self.copy_action)
        menu.addAction(self.copy_path_action)
        if node.children:
            menu.addSeparator()
            menu.addAction(self.expand_action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
        self.copy_action.setEnabled(True)

