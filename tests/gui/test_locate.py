"""Clicking a problem selects the tree node it concerns: a real Keras 3 checkpoint, whose finding names a
variable by its key under the optimizer while the tree shows that variable under its model layer."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

import tf_artifacts as ta
from detscope.core.base.findings import Finding
from detscope.core.browse.inventory import NodeKind
from detscope.gui.panels.problems_panel import PAYLOAD

from gui_helpers import LOAD_TIMEOUT_MS

pytestmark = pytest.mark.slow


def _click(qtbot, view, index) -> None:
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())


def test_clicking_each_problem_selects_its_variable(qtbot, window, tmp_path, qtmodeltester):
    prefix = window.engine.run_sync(ta.keras3_checkpoint, tmp_path)     # TensorFlow stays on the engine thread
    window.open_paths([str(prefix.parent)])
    qtbot.waitUntil(lambda: window.session.inventory is not None and window.tree.model.rowCount() > 0,
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.session.busy, timeout=LOAD_TIMEOUT_MS)   # loading done (or failed)
    inv = window.session.inventory
    qtmodeltester.check(window.problems.model)

    problems = window.problems
    rows = [r for r in problems.rows(problems.findings_item) if isinstance(r.data(PAYLOAD), Finding)]
    about_variables = [r for r in rows if r.data(PAYLOAD).key]
    assert about_variables, [r.text() for r in rows]
    for row in rows:
        finding = row.data(PAYLOAD)
        window.tree.view.setCurrentIndex(window.tree.proxy.index(0, 0))     # start from elsewhere
        start = window.tree.current_node()
        _click(qtbot, problems.tree, row.index())
        node = window.tree.current_node()
        if finding.key:
            assert node is not None and node.kind == NodeKind.VARIABLE and node.key == finding.key, row.text()
            # Shown where the model owns it, though its key runs through the optimizer's list.
            assert finding.key.startswith("optimizer/_trainable_variables/")
            assert node.path.startswith("Checkpoint/model/"), node.path
        elif inv.node_for(finding) is not None:        # a finding about the folder: its own row in the tree
            assert node is inv.node_for(finding) and node.kind == NodeKind.FINDING, row.text()
        else:                                          # the loaded model's: no row of the tree
            assert node is start and "does not concern" in window.status_line.text(), row.text()

