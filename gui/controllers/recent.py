"""File ▸ Recent models: the last models opened (kept in the settings), newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QMenu

from ..qt.settings import settings

MAX_RECENT = 10
KEY = "recent_models"


class RecentModels:
    """Fills ``menu`` with the recent models; choosing one calls ``open_model(path)``."""

    def __init__(self, menu: QMenu, open_model: Callable[[str], object]):
        self.menu = menu
        self.open_model = open_model
        self.fill()

    def items(self) -> list[str]:
        value = settings().value(KEY, [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path) -> None:
        path = Path(path)
        text = str(path.resolve()) if path.exists() else str(path)
        settings().setValue(KEY, ([text] + [p for p in self.items() if p != text])[:MAX_RECENT])
        self.fill()

    def clear(self) -> None:
        settings().setValue(KEY, [])
        self.fill()

    def fill(self) -> None:
        self.menu.clear()
        items = self.items()
        for i, p in enumerate(items):
            action = self.menu.addAction(f"&{i + 1 if i < 9 else 0} {Path(p).name}  —  {p}")
            action.triggered.connect(lambda _=False, p=p: self.open_model(p))
        if items:
            self.menu.addSeparator()
            self.menu.addAction("Clear list").triggered.connect(self.clear)
        self.menu.setEnabled(bool(items))
