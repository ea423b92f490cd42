"""GUI test fixtures: offscreen Qt, QSettings and detscope's data folder isolated in tmp_path, one window."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_helpers import EngineCalls  # noqa: E402  (tests/gui is on sys.path, as pytest's rootdir import puts it)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every test gets empty settings and its own data folder (snapshots, saved images)."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "settings"


@pytest.fixture
def window(qtbot):
    from detscope.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    assert win.engine.join(30), "the engine thread did not end after the window closed"


@pytest.fixture
def calls(window, monkeypatch):
    return EngineCalls(window.engine, monkeypatch)


