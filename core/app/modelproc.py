"""The live model in a process of its own, for a window.

TensorFlow keeps Python's GIL for whole seconds inside some calls (importing the graph of a big
SavedModel, 6 s for one of 50,000 variables), and a window's thread, which needs the GIL for every event,
would stop for as long. So a window's model lives in a child process: :class:`ModelProcess` is its parent
side, driven from the engine thread alone, and :func:`.modelchild.child_main` the child, where a
:class:`~.host.Slot` answers the same calls it answers in the command line's own process (load, switch
checkpoint, detect, read outputs, release): :mod:`.modelchild`. What crosses is plain data: a folder without what was read
from it, load options, images as arrays one way; summaries, detections, outputs, errors the other.

The child also makes two promises the window could not keep alone: a load that will not stop
(TensorFlow deep in a graph) is ended by ending its process, :data:`CANCEL_GRACE_S` after the user asked;
a model that crashes TensorFlow takes down only its process, and the window says so in one line.

Errors come back as the class they were raised as (a refusal keeps ``would_run``, ``options``...) when
that class is already loaded here, else as one ``RuntimeError`` line naming it; the child's traceback is
in the error's notes. A process that has ended is started again for the next load; until then every
other call says that the model has to be opened again.

One process is kept for the next window when a window's engine ends (:meth:`ModelProcess.retire`): a
window opened again (a test suite opens hundreds) finds TensorFlow already imported.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

from ..base.errors import UserError

CHILD_FLAG = "--detscope-model-process"     # a frozen app's executable started as the child
CHILD_MODULE = "detscope.core.app.modelchild"
CANCEL_GRACE_S = 2.0           # a cancelled call that has not ended by then has its process ended
POLL_S = 0.05
NICENESS = 5                   # the child's scheduling priority, below the window's
_TAKES_JOB = frozenset({"load", "switch"})
_OWN_ENV = "DETSCOPE_"
_CALLS = frozenset({"load", "switch", "detect", "mapping_target", "release"})


def _portable(exc: BaseException) -> tuple:
    """An error as data that crosses: its class's name, its line, its attributes (those that pickle)."""
    import pickle
    import traceback

    state = {}
    for key, value in vars(exc).items():
        try:
            pickle.dumps(value)
        except Exception:     # an attribute that cannot cross stays behind; the line still does
            continue
        state[key] = value
    cls = type(exc)
    return cls.__module__, cls.__qualname__, str(exc), state, "".join(traceback.format_exception(exc))


def _rebuild(module: str, name: str, line: str, state: dict, trace: str) -> BaseException:
    """The error again, as its own class when this process has it loaded (never importing anything for it)."""
    cls = sys.modules.get(module)
    for part in name.split("."):
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls.__new__(cls)
            exc.args = (line,)
            vars(exc).update(state)
        except Exception:     # a class that cannot be made this way: said as a line
            exc = RuntimeError(f"{name}: {line}")
    else:
        exc = RuntimeError(f"{name}: {line}")
    exc.add_note("in the model's process:\n" + trace)
    return exc


_CRASHES = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"})


def _ended(returncode: int) -> str:
    """How a child ended, in words: "it crashed (SIGSEGV)", "it was killed (SIGKILL)", "exit status 1"."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"it crashed ({name})" if name in _CRASHES else f"it was killed ({name})"


class ModelProcess:
    """The parent side of one child process holding one model. Driven from one thread (the engine's); a
    child is started at the first call."""

    _spare: list[ModelProcess] = []
    _spare_lock = threading.Lock()

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._calls = 0
        self.has_model = False
        self._lost: str | None = None      # why the last process ended with a model in it

    # --- one process for the next window ---------------------------------------------------------
    @classmethod
    def acquire(cls) -> ModelProcess:
        """A kept process (TensorFlow already imported) if there is one, else a new one."""
        with cls._spare_lock:
            return cls._spare.pop() if cls._spare else cls()

    def retire(self) -> None:
        """Its engine is ending: drop the model and keep the process for the next window (one is kept)."""
        if not self.running:
            self.close()
            return
        try:
            self.release()
        except Exception:       # a process that cannot even drop its model is not kept
            self.close()
            return
        with self._spare_lock:
            if not self._spare:
                self._spare.append(self)
                return
        self.close()

    # --- the child ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        how = [CHILD_FLAG] if getattr(sys, "frozen", False) else ["-P", "-m", CHILD_MODULE]
        self._proc = subprocess.Popen([sys.executable, *how], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      close_fds=True)
        self._send = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdin.close()
        self._proc.stdout.close()

    def _drop(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None
        self._proc = None
        self.has_model = False

    def kill(self) -> None:
        """End the child now (a load that does not stop); the model goes with it."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._drop()

    def close(self, timeout: float = 2.0) -> None:
        """Ask the child to end; end it after ``timeout`` seconds if it has not."""
        if self._proc is None:
            return
        try:
            self._send.send(("exit", 0, "", (), "", {}))
            self._proc.wait(timeout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # --- calls ---------------------------------------------------------------------------------
    def release(self) -> None:
        """Drop the model (the process and TensorFlow stay for the next one)."""
        self._lost = None
        if self.running and self.has_model:
            self.call("release")

    def call(self, method: str, *args, job=None):
        """Run ``Slot.method(*args)`` in the child and return its answer (or raise its error). ``job``: its
        progress lines are passed on, and its cancellation stops the call (ending the process if it must)."""
        if method not in _CALLS:
            raise ValueError(f"not a model call: {method}")
        if self._proc is not None and self._proc.poll() is not None:
            lost = self.has_model or method != "load"
            why = _ended(self._proc.returncode)
            self._drop()
            if lost:
                self._lost = why
        if method == "load":
            self._lost = None
        elif self._lost is not None:
            raise UserError(f"the model's process ended ({self._lost}): open the model again")
        if self._proc is None:
            self._start()
        self._calls += 1
        number = self._calls
        name = job.name if job is not None else method
        try:
            self._send.send(("call", number, method, args, name, _settings()))
        except (OSError, ValueError):
            return self._gone(name)
        asked_at = None
        while True:
            try:
                ready = self._recv.poll(POLL_S)
            except (OSError, ValueError):
                return self._gone(name)
            if ready:
                try:
                    kind, answer_to, payload = self._recv.recv()
                except (EOFError, OSError):
                    return self._gone(name)
                if answer_to != number:
                    continue
                if kind == "progress":
                    if job is not None:
                        job.progress(payload)
                    continue
                if kind == "ok":
                    if method == "load":
                        self.has_model = True
                    elif method == "release":
                        self.has_model = False
                    return payload
                raise _rebuild(*payload)
            if self._proc.poll() is not None:
                return self._gone(name)
            if job is not None and job.cancel_requested:
                if asked_at is None:
                    asked_at = time.monotonic()
                    try:
                        self._send.send(("cancel", number, "", (), "", {}))
                    except (OSError, ValueError):
                        return self._gone(name)
                elif time.monotonic() - asked_at > CANCEL_GRACE_S:
                    from ..runtime.engine import Cancelled

                    had_model = self.has_model
                    self.kill()
                    if had_model:
                        self._lost = f"ended when {name} was cancelled"
                    raise Cancelled(f"{name} cancelled (its process was ended: TensorFlow did not stop)")

    def _gone(self, name: str):
        """The child ended in the middle of a call: one line, and a fresh process for the next load."""
        proc = self._proc
        code = proc.wait() if proc is not None else 0
        self._drop()
        self._lost = _ended(code)
        raise UserError(f"the model's process ended ({self._lost}) during {name}: open the model again "
                        "(its folder is still browsable)")


def _settings() -> dict[str, str]:
    """detscope's own environment (its data folder...), as it is now: a kept process follows what has changed."""
    return {key: value for key, value in os.environ.items() if key.startswith(_OWN_ENV)}


def _follow(settings: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(_OWN_ENV) and k not in settings]:
        del os.environ[key]
    os.environ.update(settings)


@atexit.register
def _close_spares() -> None:
    with ModelProcess._spare_lock:
        spares, ModelProcess._spare[:] = list(ModelProcess._spare), []
    for process in spares:
        process.close(timeout=1.0)
