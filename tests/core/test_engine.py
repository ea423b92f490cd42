"""The engine thread: one worker, futures, cancellation, and the newest-frame-only path."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from detscope.core.runtime.engine import Cancelled, Engine


@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.shutdown(timeout=10)


def test_all_work_runs_on_one_thread_in_order(engine):
    seen = []
    futures = [engine.submit(lambda i=i: seen.append((i, threading.get_ident())) or i) for i in range(20)]
    assert [f.result(5) for f in futures] == list(range(20))
    assert [i for i, _ in seen] == list(range(20))
    assert {t for _, t in seen} == {engine.thread_ident} != {threading.get_ident()}


def test_errors_reach_the_caller(engine):
    def boom():
        raise ValueError("bad model")
    with pytest.raises(ValueError, match="bad model"):
        engine.submit(boom).result(5)
    assert engine.submit(lambda: 7).result(5) == 7  # the thread survives


def test_latest_frame_replaces_a_waiting_frame(engine):
    gate = threading.Event()
    engine.submit(gate.wait, 5)  # keep the worker busy
    handled = []
    frames = [engine.submit_latest(handled.append, n) for n in range(50)]
    gate.set()
    frames[-1].result(5)
    assert handled == [49]
    assert all(f.cancelled() for f in frames[:-1])


def test_ordinary_work_goes_before_a_waiting_frame(engine):
    gate = threading.Event()
    order = []
    engine.submit(gate.wait, 5)
    frame = engine.submit_latest(lambda n: order.append("frame"), 1)
    work = engine.submit(lambda: order.append("load"))
    gate.set()
    frame.result(5), work.result(5)
    assert order == ["load", "frame"]


def test_cancel_running_work_at_its_next_check(engine):
    started = threading.Event()

    def long_load(job):
        started.set()
        for _ in range(500):
            job.check()
            threading.Event().wait(0.01)
        return "finished"

    fut = engine.submit(long_load)
    assert started.wait(5)
    assert engine.cancel(fut)
    with pytest.raises(CancelledError):
        fut.result(5)
    with pytest.raises(Cancelled):
        fut.result(0)
    assert engine.submit(lambda: "next").result(5) == "next"


def test_cancel_waiting_work_never_runs_it(engine):
    gate = threading.Event()
    ran = []
    engine.submit(gate.wait, 5)
    fut = engine.submit(ran.append, 1)
    assert engine.cancel(fut) and fut.cancelled()
    gate.set()
    engine.submit(lambda: None).result(5)
    assert ran == []


def test_progress_is_reported_with_the_job_name():
    messages = []
    e = Engine(on_progress=lambda name, msg: messages.append((name, msg)))
    try:
        def load(job):
            job.progress("importing TensorFlow")
            job.progress("warming up")
        e.submit(load, name="load demo").result(5)
    finally:
        e.shutdown(timeout=5)
    assert messages == [("load demo", "importing TensorFlow"), ("load demo", "warming up")]


def test_shutdown_cancels_what_waits_and_stops_the_thread():
    e = Engine()
    gate = threading.Event()
    e.submit(gate.wait, 5)
    waiting = e.submit(lambda: "never")
    gate.set()
    e.shutdown(timeout=5)
    assert waiting.cancelled() or waiting.result(1) == "never"
    assert e.join(0)
    with pytest.raises(RuntimeError):
        e.submit(lambda: None)


def test_what_only_the_engine_thread_may_close_is_closed_there_when_it_ends():
    """``at_exit`` closers (the window's model process) run on the engine thread after its last work, and one
    that fails does not keep the next from running."""
    e = Engine()
    closed = []

    def broken():
        raise RuntimeError("could not close")
    e.at_exit(broken)
    e.at_exit(lambda: closed.append(threading.get_ident()))
    e.submit(lambda: None).result(5)
    assert closed == []
    e.shutdown(timeout=10)
    assert closed == [e.thread_ident]
