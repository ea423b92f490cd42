"""The inventory tree model, its filter and the tree panel (synthetic trees: no TensorFlow)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication

from detscope.core.browse.inventory import Node
from detscope.gui.panels.model_tree import NAME, SIZE, ModelTreePanel, NodeModel, TreeFilter


def synthetic_tree(layers: int = 4, per_layer: int = 3) -> Node:
    root = Node("", "group")
    problems = root.add(Node("Problems", "group"))
    problems.add(Node("backbone/conv_1/kernel has NaN values", "finding", detail="error"))
    ckpt = root.add(Node("Checkpoint ckpt-2", "group"))
    model = ckpt.add(Node("model", "object"))
    for i in range(layers):
        layer = model.add(Node(f"block_{i}", "object"))
        for j in range(per_layer):
            key = f"model/block_{i}/w_{j}/.ATTRIBUTES/VARIABLE_VALUE"
            var = layer.add(Node(f"w_{j}", "variable", shape=(3, 3, 8), dtype="float32", params=72, nbytes=288,
                                 key=key))
            var.add(Node("m (optimizer)", "slot", shape=(3, 3, 8), dtype="float32", params=72, nbytes=288,
                         key=f"{key[:-len('.ATTRIBUTES/VARIABLE_VALUE')]}.OPTIMIZER_SLOT/optimizer/m/"
                             ".ATTRIBUTES/VARIABLE_VALUE", detail="optimizer slot"))
    head = model.add(Node("class_head", "object"))
    head.add(Node("bias", "variable", shape=(4,), dtype="float32", params=4, nbytes=16,
                  key="model/class_head/bias/.ATTRIBUTES/VARIABLE_VALUE"))
    return root


def test_model_is_consistent(qtmodeltester):
    model = NodeModel(synthetic_tree())
    qtmodeltester.check(model)
    empty = NodeModel()
    qtmodeltester.check(empty)
    assert empty.rowCount() == 0


def test_parent_is_the_node_row(qtmodeltester):
    root = synthetic_tree()
    model = NodeModel(root)
    bias = model.find_key("model/class_head/bias/.ATTRIBUTES/VARIABLE_VALUE")
    idx = model.index_of(bias)
    assert model.data(idx) == "bias"
    assert model.data(idx.siblingAtColumn(SIZE)) == "4 · 16 B"
    parent = model.parent(idx)
    assert model.node(parent) is bias.parent and parent.row() == bias.parent.row
    assert model.find_path("Checkpoint ckpt-2/model/block_1/w_2").key.startswith("model/block_1/w_2")


def test_filter_keeps_matching_descendants_and_their_ancestors(qtmodeltester):
    model = NodeModel(synthetic_tree())
    proxy = TreeFilter()
    proxy.setSourceModel(model)
    proxy.set_text("W_2")            # case-insensitive
    qtmodeltester.check(proxy)

    def names(parent=QModelIndex()):
        return [proxy.index(r, NAME, parent).data() for r in range(proxy.rowCount(parent))]

    assert names() == ["Checkpoint ckpt-2"]               # the problems group has no match
    ckpt = proxy.index(0, 0)
    model_idx = proxy.index(0, 0, ckpt)
    assert names(model_idx) == [f"block_{i}" for i in range(4)]   # class_head has no match
    block = proxy.index(1, 0, model_idx)
    assert names(block) == ["w_2"]
    # The match keeps its own subtree (its optimizer slot), though "m (optimizer)" does not match.
    assert names(proxy.index(0, 0, block)) == ["m (optimizer)"]

    proxy.set_text("OPTIMIZER_SLOT")  # keys match too
    assert proxy.rowCount() == 1
    proxy.set_text("no such thing")
    assert proxy.rowCount() == 0 and proxy.match_count == 0
    proxy.set_text("")
    assert proxy.rowCount() == 2


def test_sorting_by_size(qtmodeltester):
    root = Node("", "group")
    for name, n in (("a", 5), ("b", 500), ("c", 50)):
        root.add(Node(name, "variable", shape=(n,), dtype="float32", params=n, nbytes=4 * n, key=name))
    proxy = TreeFilter()
    proxy.setSourceModel(NodeModel(root))
    proxy.sort(SIZE, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(proxy)
    assert [proxy.index(r, 0).data() for r in range(3)] == ["b", "c", "a"]


def test_panel_filter_box_copy_key_and_select(qtbot):
    panel = ModelTreePanel()
    qtbot.addWidget(panel)
    root = synthetic_tree()
    panel.set_root(root)
    with qtbot.waitSignal(panel.node_selected) as blocker:
        bias = panel.model.find_key("model/class_head/bias/.ATTRIBUTES/VARIABLE_VALUE")
        assert panel.select_node(bias)
    assert blocker.args == [bias]
    panel.view.setFocus()
    panel.copy_key()
    assert QGuiApplication.clipboard().text() == bias.key

    qtbot.keyClicks(panel.filter, "block_3")
    qtbot.waitUntil(lambda: panel.proxy.text == "block_3")      # applied when the typing pauses
    assert panel.count.text() == "7 matches"     # the block, its 3 variables and their 3 slots (by key)
    # Selecting a node the filter hides clears the filter.
    w0 = panel.model.find_path("Checkpoint ckpt-2/model/block_0/w_0")
    assert panel.select_node(w0) and panel.filter.text() == ""
    assert panel.current_node() is w0


def test_ten_thousand_rows_are_not_copied(qtbot):
    root = Node("", "group")
    group = root.add(Node("Checkpoint", "group"))
    for i in range(10_000):
        group.add(Node(f"v{i}", "variable", shape=(4,), dtype="float32", params=4, nbytes=16, key=f"v{i}"))
    panel = ModelTreePanel()
    qtbot.addWidget(panel)
    panel.set_root(root)
    assert panel.model.rowCount(panel.model.index_of(group)) == 10_000
    qtbot.keyClicks(panel.filter, "v9999")
    qtbot.waitUntil(lambda: panel.count.text() == "1 match")
    assert panel.proxy.rowCount() == 1


def test_pyside_reference_guard_keeps_long_sessions_alive():
    """Thousands of emits and void calls (a video plays that many a minute) must not exhaust None/True."""
    import sys

    import detscope.gui  # noqa: F401  (applies the guard where this PySide6 needs it)
    from PySide6.QtCore import QObject, Signal

    class Ticker(QObject):
        tick = Signal(object)

    ticker = Ticker()
    ticker.tick.connect(lambda _: None)
    for i in range(20_000):
        ticker.tick.emit(i)
        ticker.setObjectName("t")
    assert sys.getrefcount(None) > 1000 and sys.getrefcount(True) > 1000
