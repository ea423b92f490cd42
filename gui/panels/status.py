"""The status-bar widget for background work: what runs, its latest progress, seconds ticking, Cancel."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..qt.bridge import Bridge


class TaskStatus(QWidget):
    def __init__(self, bridge: Bridge, parent=None):
        super().__init__(parent)
        self.bridge = bridge
        self.label = QLabel(self)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)                 # indeterminate: the work reports steps, not fractions
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop this work (Esc)")
        self.cancel_button.clicked.connect(self.cancel_current)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.busy)
        layout.addWidget(self.label)
        layout.addWidget(self.cancel_button)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.refresh)
        bridge.tasks_changed.connect(self.refresh)
        bridge.progress.connect(lambda *_: self.refresh())
        self.refresh()

    def current(self):
        """The first task that can be cancelled (loading, restoring), else the first one."""
        tasks = self.bridge.tasks
        return next((t for t in tasks if t.cancel is not None), tasks[0] if tasks else None)

    def refresh(self) -> None:
        task = self.current()
        if task is None:
            self.setVisible(False)
            self.timer.stop()
            return
        more = f" (+{len(self.bridge.tasks) - 1} more)" if len(self.bridge.tasks) > 1 else ""
        step = f": {task.message}" if task.message else ""
        self.label.setText(f"{task.title}{step} — {task.elapsed():.0f} s{more}")
        self.cancel_button.setEnabled(task.cancel is not None)
        self.setVisible(True)
        if not self.timer.isActive():
            self.timer.start()

    def cancel_current(self) -> None:
        task = self.current()
        if task is not None and task.cancel is not None:
            task.message = "cancelling…"
            task.cancel()
            self.refresh()
