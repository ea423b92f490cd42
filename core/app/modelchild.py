"""The model's process (see :mod:`.modelproc`): answers its parent's calls with a :class:`~.host.Slot`."""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection

from .modelproc import _CALLS, _TAKES_JOB, NICENESS, _follow, _portable


def child_main() -> int:
    """Answer the parent's calls on stdin/stdout until it says exit or goes away."""
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)                      # what anything prints goes to the error stream, not into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl+C in a terminal is the window's to handle
    try:
        os.nice(NICENESS)             # when the machine is short of CPU, the window goes first
    except OSError:
        pass

    from ..runtime.engine import Job
    from .host import Slot

    calls: queue.Queue = queue.Queue()
    lock = threading.Lock()
    running: dict = {"number": None, "job": None}
    cancelled: set[int] = set()

    def read() -> None:
        while True:
            try:
                message = inbox.recv()
            except (EOFError, OSError):
                os._exit(0)            # the parent has gone: so does its model
            if message[0] == "cancel":
                with lock:
                    if running["number"] == message[1]:
                        running["job"]._cancel.set()
                    else:
                        cancelled.add(message[1])
            else:
                calls.put(message)

    threading.Thread(target=read, name="detscope-model-inbox", daemon=True).start()
    slot = Slot()
    while True:
        kind, number, method, args, name, settings = calls.get()
        if kind == "exit":
            return 0
        _follow(settings)
        job = Job(name, _progress=lambda line, _n=number: outbox.send(("progress", _n, line)))
        with lock:
            running["number"], running["job"] = number, job
            if number in cancelled:
                cancelled.discard(number)
                job._cancel.set()
        try:
            if method not in _CALLS:
                raise ValueError(f"not a model call: {method}")
            fn = getattr(slot, method)
            answer = ("ok", number, fn(*args, job=job) if method in _TAKES_JOB else fn(*args))
        except BaseException as exc:       # every error goes back to the caller, as data
            answer = ("error", number, _portable(exc))
        with lock:
            running["number"] = running["job"] = None
        try:
            outbox.send(answer)
        except Exception as exc:           # an answer that does not pickle: its error does
            outbox.send(("error", number, _portable(exc)))


if __name__ == "__main__":
    sys.exit(child_main())
