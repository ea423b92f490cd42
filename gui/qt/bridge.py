"""Futures finishing on worker threads, handed to the GUI thread as Qt signals.

The GUI thread never waits on a future. It asks :class:`Bridge` to ``watch`` one;
when the future finishes (on whatever thread), ``add_done_callback`` emits a
queued signal and the callback runs on the GUI thread. An exception in the work
is never silent: without an ``on_error`` it becomes one line on ``errored``, which
the window shows in its status bar and problems panel. Cancellation is not an
error: it calls ``on_cancel`` if given and is otherwise dropped.

Any other thread may hand an exception over with ``post_report`` (the exception hooks
that ``gui.app`` installs do, for errors nothing caught).

Progress messages from the engine thread (``Engine(on_progress=bridge.post_progress)``)
arrive as the ``progress`` signal on the GUI thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger("detscope.gui")


def one_line(exc: BaseException) -> str:
    """What a user sees of an exception: its own line for expected errors, type and first line otherwise."""
    from detscope.core.base.errors import USER_ERRORS

    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, USER_ERRORS) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclass
class Task:
    """One piece of background work the user may watch and cancel."""

    title: str
    future: Future
    cancel: Callable[[], object] | None = None
    name: str = ""                         # the engine job name whose progress messages it shows
    started: float = field(default_factory=time.monotonic)
    message: str = ""

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# How long a thread may keep the interpreter while another waits for it. With Python's 5 ms, a worker running
# pure Python for seconds (reading a big folder) keeps the GUI thread waiting up to 30 ms at a time; with 1 ms
# the window waits little longer than its own work takes.
SWITCH_INTERVAL_S = 0.001


def favour_gui_thread() -> None:
    """Let a waiting GUI thread have the interpreter sooner (a window's process)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


class Bridge(QObject):
    """Lives on the GUI thread; carries finished futures and progress over to it."""

    _finished = Signal(object, object)     # future, (on_result, on_error, on_cancel)
    _progress = Signal(str, str)           # job name, message (from the engine thread)
    _task_done = Signal(object)
    _report = Signal(object, str)          # exception, context (from any thread)
    progress = Signal(str, str)
    errored = Signal(str)                  # one line, for the status bar and the problems panel
    tasks_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        favour_gui_thread()
        self._closed = False
        self.tasks: list[Task] = []
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._task_done.connect(self._untrack, Qt.ConnectionType.QueuedConnection)
        self._report.connect(self.report, Qt.ConnectionType.QueuedConnection)

    # --- any thread ----------------------------------------------------------------------------
    def post_progress(self, name: str, message: str) -> None:
        """The engine's ``on_progress`` callback (runs on the engine thread)."""
        self._emit(self._progress, name, message)

    def post_report(self, exc: BaseException, context: str = "") -> bool:
        """:meth:`report` on the GUI thread, from any thread; False when there is no window to show it on."""
        if self._closed:
            return False
        try:
            if threading.current_thread() is threading.main_thread():     # the GUI thread
                self.report(exc, context)
            else:
                self._report.emit(exc, context)
        except RuntimeError:   # the Qt object is already deleted
            return False
        return True

    def _emit(self, signal, *args) -> None:
        if self._closed:
            return
        try:
            signal.emit(*args)
        except RuntimeError:   # the window is gone while the work finished: nothing to show it on
            log.debug("a result arrived after the window closed")

    # --- GUI thread ----------------------------------------------------------------------------
    def watch(self, future: Future, on_result: Callable[[object], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None,
              on_cancel: Callable[[], None] | None = None) -> Future:
        """Call ``on_result(value)`` / ``on_error(exc)`` / ``on_cancel()`` on the GUI thread when done.

        Always queued, even for a future that is already finished, so callbacks never run inside ``watch``.
        """
        callbacks = (on_result, on_error, on_cancel)
        future.add_done_callback(lambda f: self._emit(self._finished, f, callbacks))
        return future

    def track(self, title: str, future: Future, cancel: Callable[[], object] | None = None,
              name: str = "") -> Task:
        """Show ``future`` as a running task (elapsed time, progress, Cancel) until it finishes."""
        task = Task(title, future, cancel, name)
        self.tasks.append(task)
        self.tasks_changed.emit()
        future.add_done_callback(lambda f: self._emit(self._task_done, task))
        return task

    def _untrack(self, task: Task) -> None:
        if task in self.tasks:
            self.tasks.remove(task)
            self.tasks_changed.emit()

    def cancel_all(self) -> None:
        """Cancel every tracked task that can be cancelled and has not finished."""
        for task in list(self.tasks):
            if task.cancel is not None and not task.future.done():
                task.cancel()

    def close(self) -> None:
        """Stop delivering: results that arrive from now on are dropped."""
        self._closed = True

    def _deliver(self, future: Future, callbacks) -> None:
        on_result, on_error, on_cancel = callbacks
        if future.cancelled():
            if on_cancel is not None:
                on_cancel()
            return
        exc = future.exception()
        if exc is None:
            if on_result is not None:
                on_result(future.result())
        elif isinstance(exc, CancelledError):
            if on_cancel is not None:
                on_cancel()
        elif on_error is not None:
            on_error(exc)
        else:
            self.report(exc)

    def report(self, exc: BaseException, context: str = "") -> str:
        """Show an exception as one line (and log its traceback when it is not a user's error)."""
        from detscope.core.base.errors import USER_ERRORS

        line = one_line(exc)
        if context:
            line = f"{context}: {line}"
        if not isinstance(exc, USER_ERRORS):
            log.error("%s", line, exc_info=exc)
        self.errored.emit(line)
        return line

    def _on_progress(self, name: str, message: str) -> None:
        for task in self.tasks:
            if task.name == name:
                task.message = message
        self.progress.emit(name, message)
