"""The one thread that owns every TensorFlow object.

Everything that touches TensorFlow (importing it, loading a model, restoring a
checkpoint, running a signature) is submitted here and runs on a single worker
thread; callers get ``concurrent.futures.Future`` objects back. (A window's
engine thread drives a child process that holds the model instead:
``detscope.core.app.modelproc``; the work and its futures are the same.) TensorFlow is
imported lazily by the work itself, so importing ``detscope.core`` stays cheap.

Two paths in:

- ``submit(fn, *args)``: ordinary work, first come first served. ``fn`` may take a
  keyword ``job`` (a :class:`Job`) to report progress and to notice cancellation.
- ``submit_latest(fn, frame)``: camera and video frames. At most one frame waits;
  a newer frame replaces the waiting one (whose future is cancelled), so a fast
  camera never builds a queue behind a slow model. Ordinary work goes first.

``cancel(future)`` cancels waiting work outright and asks running work to stop
at its next ``job.check()``; it then ends with :class:`Cancelled`, a
``CancelledError``.
"""

from __future__ import annotations

import inspect
import threading
import time
import traceback
from collections import deque
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Callable


class Cancelled(CancelledError):
    """Raised inside work whose cancellation was asked for."""


@dataclass
class Job:
    """What running work sees of itself: its cancel flag and a progress callback."""

    name: str
    started: float = field(default_factory=time.monotonic)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _progress: Callable[[str], None] | None = None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Stop here if cancellation was asked for."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.name} cancelled")

    def progress(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)


@dataclass
class _Work:
    fn: Callable
    args: tuple
    kwargs: dict
    future: Future
    job: Job


class Engine:
    """A single worker thread with a FIFO of work and a one-frame slot for live sources."""

    def __init__(self, name: str = "detscope-engine", on_progress: Callable[[str, str], None] | None = None):
        """``on_progress(job name, message)`` is called from the engine's thread."""
        self._cond = threading.Condition()
        self._queue: deque[_Work] = deque()
        self._frame: _Work | None = None
        self._running: _Work | None = None
        self._closed = False
        self._on_progress = on_progress
        self._at_exit: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread_ident: int | None = None
        self._thread.start()

    # --- submitting --------------------------------------------------------------------------
    def _make(self, fn, args, kwargs, name) -> _Work:
        job = Job(name or getattr(fn, "__name__", "work"))
        if self._on_progress is not None:
            job._progress = lambda msg, _n=job.name: self._on_progress(_n, msg)
        if _takes_job(fn):
            kwargs = {**kwargs, "job": job}
        return _Work(fn, args, kwargs, Future(), job)

    def submit(self, fn: Callable, *args, name: str | None = None, **kwargs) -> Future:
        work = self._make(fn, args, kwargs, name)
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            self._queue.append(work)
            self._cond.notify()
        return work.future

    def submit_latest(self, fn: Callable, frame: Any, *args, name: str | None = None, **kwargs) -> Future:
        """Run ``fn(frame, *args)`` soon; a newer call replaces this one while it still waits."""
        work = self._make(fn, (frame, *args), kwargs, name or "frame")
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is shut down")
            stale, self._frame = self._frame, work
            self._cond.notify()
        if stale is not None:
            stale.future.cancel()
        return work.future

    def cancel(self, future: Future) -> bool:
        """Cancel waiting work, or ask running work to stop. True if either happened."""
        if future.cancel():
            return True
        with self._cond:
            running = self._running
        if running is not None and running.future is future:
            running.job._cancel.set()
            return True
        return False

    def at_exit(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` on the engine thread when it ends (after :meth:`shutdown`): closing what only the
        engine thread may touch, such as the process that holds the model."""
        self._at_exit.append(fn)

    def run_sync(self, fn: Callable, *args, timeout: float | None = None, **kwargs):
        """Submit and wait (for the CLI and tests; the GUI never waits on the engine)."""
        if threading.get_ident() == self.thread_ident:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result(timeout)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._running is not None or bool(self._queue) or self._frame is not None

    def shutdown(self, wait: bool = True, cancel_pending: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; cancel what waits (and ask running work to stop) when ``cancel_pending``."""
        with self._cond:
            self._closed = True
            pending = list(self._queue) + ([self._frame] if self._frame else [])
            if cancel_pending:
                self._queue.clear()
                self._frame = None
                if self._running is not None:
                    self._running.job._cancel.set()
            self._cond.notify_all()
        if cancel_pending:
            for w in pending:
                w.future.cancel()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the worker to end (after :meth:`shutdown`); True when it has.

        On the engine thread itself it does not wait (and says whether the thread has ended: it has not).
        """
        if threading.get_ident() != self.thread_ident:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the worker --------------------------------------------------------------------------
    def _next(self) -> _Work | None:
        with self._cond:
            while not self._queue and self._frame is None:
                if self._closed:
                    return None
                self._cond.wait()
            if self._queue:
                work = self._queue.popleft()
            else:
                work, self._frame = self._frame, None
            self._running = work
            return work

    def _loop(self) -> None:
        self.thread_ident = threading.get_ident()
        while True:
            work = self._next()
            if work is None:
                for fn in self._at_exit:
                    try:
                        fn()
                    except Exception:       # one closer failing does not keep the others from running
                        traceback.print_exc()
                return
            try:
                if work.future.set_running_or_notify_cancel():
                    try:
                        result = work.fn(*work.args, **work.kwargs)
                    except BaseException as exc:  # handed to the caller through the future
                        work.future.set_exception(exc)
                    else:
                        if work.job.cancel_requested:
                            work.future.set_exception(Cancelled(f"{work.job.name} cancelled"))
                        else:
                            work.future.set_result(result)
            finally:
                with self._cond:
                    self._running = None


def _takes_job(fn: Callable) -> bool:
    try:
        return "job" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
