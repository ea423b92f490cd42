"""One owner of the collector's state: overlapping pauses on two threads never turn it back on early."""

from __future__ import annotations

import gc
import threading

from detscope.core.base import collector


def test_overlapping_pauses_keep_the_collector_off_until_the_last_ends():
    assert gc.isenabled()
    first_in, second_done, release_first = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def long_load():
        with collector.paused():
            first_in.set()
            release_first.wait(10)
            seen["during load, after the folder read ended"] = gc.isenabled()

    def folder_read():
        first_in.wait(10)
        with collector.paused():
            pass
        second_done.set()

    a, b = threading.Thread(target=long_load), threading.Thread(target=folder_read)
    a.start(), b.start()
    second_done.wait(10)
    release_first.set()
    a.join(10), b.join(10)
    assert seen == {"during load, after the folder read ended": False}
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Cycle:
    def __init__(self):
        self.me = self


def test_after_a_thaw_the_dropped_cycles_are_freed_and_the_survivors_frozen_again():
    import weakref

    survivors = [_Cycle() for _ in range(50_000)]   # a model's and TensorFlow's long-lived objects
    dropped = _Cycle()
    gone = weakref.ref(dropped)
    collector.freeze_survivors()
    try:
        del dropped
        gc.collect()
        assert gone() is not None, "a frozen cycle is not collected"
        collector.thaw()                              # the model is dropped
        gc.collect()                                  # the next full collection frees it ...
        assert gone() is None
        # ... and freezes what survived it, so that later full passes do not walk them again
        assert gc.get_freeze_count() >= len(survivors)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in survivors[:1000])
    finally:
        gc.unfreeze()
        collector._refreeze = False
