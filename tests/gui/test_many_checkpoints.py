"""A folder of 200 checkpoints in the window: the picker lists every one with its step, while only the
selected checkpoint's index is read whole (each other one's index and the 8 bytes of its step once)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gui_helpers import LOAD_TIMEOUT_MS

from detscope.core.formats import bundle as bundle_mod
from detscope.core.formats.bundle import Bundle
from test_real_sizes import many_checkpoints

pytestmark = pytest.mark.slow


def test_picker_of_200_checkpoints(qtbot, window, tmp_path, monkeypatch):
    folder = many_checkpoints(tmp_path / "many")
    decoded = []                    # every entry decoded from an index, whichever thread reads it
    real = bundle_mod._decode_entry
    monkeypatch.setattr(bundle_mod, "_decode_entry", lambda key, *a: decoded.append(key) or real(key, *a))
    opened: list[str] = []
    listening = [True]

    def hook(event, args):
        if listening[0] and event == "open" and isinstance(args[0], str) and str(folder) in args[0]:
            opened.append(Path(args[0]).name)
    sys.addaudithook(hook)          # a real count of the files opened (an audit hook stays: muted below)
    session = window.session
    try:
        with qtbot.waitSignals([session.inventory_ready, session.load_failed], timeout=LOAD_TIMEOUT_MS):
            window.open_paths([str(folder)])
    finally:
        listening[0] = False
        during = len(decoded)
    assert during <= 2 * len(Bundle(folder / "ckpt-200").entries) + 199   # the selected index (by the inventory
    picker = window.model_box.checkpoints                                   # and the load), a step of each other
    assert picker.count() == 200
    assert [picker.itemText(i) for i in (0, 1, 199)] == ["ckpt-200 · step 2,000", "ckpt-199 · step 1,990",
                                                         "ckpt-1 · step 10"]
    assert picker.currentText() == "ckpt-200 · step 2,000"
    for n in range(1, 200):
        assert opened.count(f"ckpt-{n}.index") == 1
        assert opened.count(f"ckpt-{n}.data-00000-of-00001") <= 1
    # nothing to restore a bare checkpoint into: said in one line, the tree still browses
    assert "a checkpoint holds values, not the architecture" in window.status_line.text()
    assert window.tree.model.rowCount() > 0
