"""The window as a shell: its keys (one table, each key once per context), errors nothing caught, the overlay's
pixels. No demo model needed."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QTimer, qInstallMessageHandler
from PySide6.QtGui import QAction, QColor, QKeySequence, QShortcut

from detscope.core.detect.detections import Detections
from detscope.core.detect.colours import class_colour
from detscope.gui import actions
from detscope.gui.app import install_excepthooks
from detscope.gui.panels.image_panel import ImagePanel

WINDOW_CONTEXTS = (Qt.ShortcutContext.WindowShortcut, Qt.ShortcutContext.ApplicationShortcut)


def text(seq: QKeySequence) -> str:
    return seq.toString(QKeySequence.SequenceFormat.PortableText)


def bindings(window):
    """(scope, key sequence, what) for every QAction and QShortcut of the window that has a key."""
    out = []
    for obj in window.findChildren(QAction) + window.findChildren(QShortcut):
        seqs = obj.shortcuts() if isinstance(obj, QAction) else [obj.key()] + list(obj.alternateKeys())
        context = obj.shortcutContext()
        if context in WINDOW_CONTEXTS:
            scopes = ["window"]
        elif isinstance(obj, QAction):
            scopes = [id(w) for w in obj.associatedObjects()]
        else:
            scopes = [id(obj.parentWidget())]
        for seq in seqs:
            if not seq.isEmpty():
                out.extend((scope, text(seq), obj.objectName() or obj.text()) for scope in scopes)
    return out


@pytest.fixture
def qt_messages():
    """What Qt prints (warnings such as "QAction::event: Ambiguous shortcut overload: ]")."""
    messages: list[str] = []
    previous = qInstallMessageHandler(lambda _mode, _context, message: messages.append(message))
    yield messages
    qInstallMessageHandler(previous)


def ambiguous(messages) -> list[str]:
    return [m for m in messages if "Ambiguous shortcut" in m]


def click(qtbot, window, seq: QKeySequence) -> None:
    combo = seq[0]
    qtbot.keyClick(window, combo.key(), combo.keyboardModifiers())


# --- keys ---------------------------------------------------------------------------------------------

def test_the_action_table_binds_every_key_once(qapp):
    keys = Counter(text(s) for act in actions.table() for s in actions.key_sequences(act))
    assert keys and not [k for k, n in keys.items() if n > 1]
    names = Counter(act.name for act in actions.table())
    assert not [n for n, c in names.items() if c > 1]


def test_every_key_of_the_window_is_bound_once_per_context(window):
    seen = Counter((scope, key) for scope, key, _ in bindings(window))
    twice = [(key, [w for s, k, w in bindings(window) if (s, k) == (scope, key)])
             for (scope, key), n in seen.items() if n > 1]
    assert not twice, f"bound more than once: {twice}"
    # Every action of the table is in the window, with the keys the table gives it.
    for act in actions.table():
        action = window.menu_actions[act.name]
        assert [text(s) for s in action.shortcuts()] == [text(s) for s in actions.key_sequences(act)]


def test_each_key_fires_its_own_action(qtbot, window, qt_messages):
    fired = []
    for act in actions.table():
        action = window.menu_actions[act.name]
        action.triggered.disconnect()              # only count: Ctrl+O would open a dialog, Ctrl+Q quit
        action.triggered.connect(lambda _=False, name=act.name: fired.append(name))
    window.image_panel.view.setFocus()
    pressed = 0
    for act in actions.table():
        for seq in window.menu_actions[act.name].shortcuts():
            click(qtbot, window, seq)
            assert fired == [act.name], f"{text(seq)} fired {fired}, not {act.name}"
            fired.clear()
            pressed += 1
    assert pressed >= 30 and not ambiguous(qt_messages)


def test_brackets_step_the_threshold_by_005(qtbot, window, qt_messages):
    """They were bound by the window and by the image panel: Qt ran neither, and the slider stayed at 50."""
    panel = window.image_panel
    panel.view.setFocus()
    assert panel.slider.value() == 50
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert panel.slider.value() == 55 and panel.threshold == pytest.approx(0.55)
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert panel.slider.value() == 60
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert panel.slider.value() == 55
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert panel.slider.value() == 50
    assert not ambiguous(qt_messages)
    # L hides the labels; the panel's check box and the menu's tick follow each other.
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert not panel.labels_box.isChecked() and not window.menu_actions["labels"].isChecked()
    panel.set_labels_visible(True)
    assert window.menu_actions["labels"].isChecked()


# --- errors nothing caught ------------------------------------------------------------------------------

@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_slot_reaches_the_problems_panel_as_one_line(qtbot, window):
    uninstall = install_excepthooks(window.bridge)
    try:
        def broken_slot():
            raise ValueError("the slot broke\nwith a second line nobody needs")
        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: any("the slot broke" in r.text() for r in window.problems.rows()), timeout=5000)
    finally:
        uninstall()
    row = next(r.text() for r in window.problems.rows() if "the slot broke" in r.text())
    assert row.endswith("ValueError: the slot broke") and "\n" not in row
    assert window.status_line.text() == "ValueError: the slot broke"


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_thread_reaches_the_problems_panel(qtbot, window):
    uninstall = install_excepthooks(window.bridge)
    try:
        def broken_work():
            raise RuntimeError("the worker broke")
        worker = threading.Thread(target=broken_work, name="detscope-test-worker")
        worker.start()
        worker.join(5)
        qtbot.waitUntil(lambda: any("the worker broke" in r.text() for r in window.problems.rows()), timeout=5000)
    finally:
        uninstall()
    assert window.status_line.text() == "detscope-test-worker: RuntimeError: the worker broke"


# --- the overlay's pixels -------------------------------------------------------------------------------

def test_a_box_is_drawn_in_its_class_colour(qtbot):
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    grey, cid = 90, 2
    dets = Detections.build([[40, 30, 160, 150]], [0.9], [cid], ["triangle"], 200, 180)
    panel.set_image(np.full((180, 200, 3), grey, np.uint8), "plain", dets)
    panel.set_labels_visible(False)
    panel.actual_size()                        # one image pixel per screen pixel
    image = panel.view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    colour = QColor(*class_colour(cid))

    def pixel(x: float, y: float) -> QColor:
        p = panel.view.mapFromScene(QPointF(x, y))
        return image.pixelColor(round(p.x() * ratio), round(p.y() * ratio))

    def distance(a: QColor, b: QColor) -> int:
        return max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue()))

    # The pen is 2 px wide and antialiased: one of the pixels across the left edge carries the full colour.
    across = [pixel(x, 90) for x in (38.5, 39.5, 40.5, 41.5)]
    assert min(distance(c, colour) for c in across) <= 24, [c.name() for c in across]
    inside = pixel(100, 90)
    assert distance(inside, QColor(grey, grey, grey)) <= 3 and distance(inside, colour) > 60
    # Save and Copy draw the same colour on the same edge (antialiased too), and nothing inside.
    annotated = panel.annotated()
    assert min(distance(QColor(*map(int, annotated[90, x])), colour) for x in (39, 40, 41)) <= 24
    assert tuple(annotated[90, 100]) == (grey, grey, grey)
