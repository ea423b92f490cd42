"""Kiosk decisions: reconnect back-off, inference cadence, per-class tallies, what may be shown."""

from __future__ import annotations

import numpy as np

from detscope.core.app.kiosk import Backoff, Cadence, Tally, downscale


def test_backoff_doubles_up_to_its_ceiling_and_resets_when_frames_flow():
    b = Backoff(first=1, longest=8)
    assert [b.failed(now=0) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert not b.ready(now=7.9) and b.ready(now=8.0)
    b.attempt()
    assert b.due is None
    b.succeeded()
    assert b.failed(now=100) == 1 and b.remaining(now=100.25) == 0.75


def test_cadence_infers_every_nth_frame():
    c = Cadence(3)
    assert [c.take() for _ in range(7)] == [True, False, False, True, False, False, True]


def test_tally_counts_this_frame_and_the_frames_each_class_was_seen_in():
    t = Tally()
    t.add(["Circle", "Circle", "Square"])
    t.add(["Circle"])
    assert t.current == {"Circle": 1}
    assert t.lines() == ["Circle  1 now · in 2 of 2 frames", "Square  0 now · in 1 of 2 frames"]


def test_downscale_keeps_the_aspect_and_leaves_small_frames_alone():
    big = np.zeros((480, 640, 3), np.uint8)
    assert downscale(big, 320).shape == (240, 320, 3)
    assert downscale(big, None) is big and downscale(big, 1000) is big
