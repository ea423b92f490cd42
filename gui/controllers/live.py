"""Live sources on screen: a camera, a video file or a stream, with detections from the engine.

The source reads on its own thread (``core.sources``). A timer on the GUI thread
picks up the newest frame and hands it to ``engine.submit_latest`` (a newer frame
replaces one still waiting, so inference never queues behind the camera).

Two ways to show it (Source ▸ Hold frames for their boxes):

- held (the default): a frame appears together with its own detections, so boxes
  always match the picture; the picture advances at the inference rate;
- smooth: every frame appears at once with the latest detections drawn on it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal


from ..qt.bridge import Bridge, one_line
from ..panels.image_panel import ImagePanel
from .session import ModelSession

if TYPE_CHECKING:
    from detscope.core.media.sources import FrameSource

POLL_MS = 10
STATS_EVERY_S = 0.25


def _sources():
    """``detscope.core.media.sources``, imported when a source starts (it brings NumPy, not needed to show the window)."""
    from detscope.core.media import sources

    return sources


class LiveController(QObject):
    frame_shown = Signal(object, object)    # Frame, kept Detections (None without a model)
    state_changed = Signal(str, str)        # state, one-line error ("" when none)
    stats_changed = Signal(str)

    def __init__(self, session: ModelSession, panel: ImagePanel, bridge: Bridge, parent=None):
        super().__init__(parent)
        self.session = session
        self.panel = panel
        self.bridge = bridge
        self.source: FrameSource | None = None
        self.hold_frames = True
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._tick)
        self.inference = None                    # FpsMeter of detections, made when a source starts
        self.latency: float | None = None       # seconds from capture to detections, smoothed
        self.frames_shown = 0
        self._state = "stopped"
        self._last = None                        # the last frame taken from the source
        self._shown = None                       # the frame on screen
        self._dets = None                        # the newest detections
        self._detect_error: str | None = None
        self._pending = None                     # the frame future waiting on the engine
        self._stats_at = 0.0
        session.model_ready.connect(self._model_changed)

    @property
    def active(self) -> bool:
        return self.source is not None

    @property
    def state(self) -> str:
        return self._state

    # --- control --------------------------------------------------------------------------------
    def start(self, source) -> None:
        self.stop()
        self.source = source
        self._last = self._shown = self._dets = None
        self._detect_error = None
        self.inference = _sources().FpsMeter()
        self.latency = None
        self.frames_shown = 0
        source.start()
        self._set_state(_sources().OPENING)
        self.timer.start()

    def stop(self) -> None:
        if self.source is None:
            return
        source, self.source = self.source, None
        self.timer.stop()
        if self._pending is not None and not self._pending.done():
            self.session.engine.cancel(self._pending)
        self._pending = None
        source.stop(join=0)          # never wait on the GUI thread; a thread stuck in a driver is abandoned
        self._set_state(_sources().STOPPED)
        self.stats_changed.emit("")

    def retry(self) -> None:
        if self.source is None:
            return
        self.source.retry()
        self._set_state(_sources().OPENING)
        self.timer.start()

    def toggle_pause(self) -> bool:
        if self.source is None:
            return False
        paused = self.source.toggle_pause()
        if not self.timer.isActive():
            self.timer.start()
        return paused

    def step(self, frames: int = 1) -> None:
        if self.source is not None:
            self.source.step(frames)

    def set_hold_frames(self, on: bool) -> None:
        self.hold_frames = on

    # --- the timer -------------------------------------------------------------------------------
    def _set_state(self, state: str, error: str = "") -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state, error)

    def _tick(self) -> None:
        source = self.source
        if source is None:
            self.timer.stop()
            return
        states = _sources()
        state = source.state
        if state == states.ERROR:
            self.timer.stop()
            self._set_state(states.ERROR, source.error or f"{source.name} failed")
            return
        frame = source.latest()
        if frame is not None and frame is not self._last:
            self._last = frame
            self._submit(frame)
        self._set_state(state)
        if state == states.ENDED and frame is self._shown:
            self.timer.stop()
        now = time.monotonic()
        if now - self._stats_at >= STATS_EVERY_S:
            self._stats_at = now
            self.stats_changed.emit(self.stats_text())

    def _submit(self, frame) -> None:
        future = None
        if self._detect_error is None:
            try:
                future = self.session.detect_latest(frame.image)
            except RuntimeError as exc:        # the engine is shut down: the window is closing
                self._detect_error = str(exc)
        if future is None:
            self._show(frame, None)
            return
        self._pending = future
        if not self.hold_frames or self._shown is None:
            self._show(frame, self._dets)
        self.bridge.watch(future, lambda dets, f=frame: self._detected(f, dets), lambda exc: self._failed(exc))

    def _detected(self, frame, dets) -> None:
        if self.source is None:
            return
        now = time.monotonic()
        self.inference.tick(now)
        took = now - frame.timestamp
        self.latency = took if self.latency is None else 0.8 * self.latency + 0.2 * took
        self._dets = dets
        if self.hold_frames or frame is self._shown:
            self._show(frame, dets)
        else:
            self.panel.set_detections(dets)      # the newest boxes over the newest frame

    def _failed(self, exc: BaseException) -> None:
        if self._detect_error is None:
            self._detect_error = one_line(exc)
            self.bridge.report(exc, "detection on live frames stopped")

    def _show(self, frame, dets) -> None:
        self._shown = frame
        self.frames_shown += 1
        name = self.source.name if self.source is not None else ""
        self.panel.set_image(frame.image, f"{name} frame {frame.index}", dets)
        self.frame_shown.emit(frame, dets)

    def _model_changed(self, _model) -> None:
        self._detect_error = None
        self._dets = None

    # --- numbers on screen ------------------------------------------------------------------------
    def stats_text(self) -> str:
        source = self.source
        if source is None:
            return ""
        parts = [f"{source.name}: {source.state}"]
        states = _sources()
        if source.state in (states.RUNNING, states.PAUSED):
            parts.append(f"camera {source.fps:.1f} fps" if source.live else f"video {source.fps:.1f} fps")
        if self.session.model is not None and self._detect_error is None:
            parts.append(f"inference {self.inference.rate():.1f} fps" if self.inference else "inference –")
            if self.latency is not None:
                parts.append(f"latency {self.latency * 1000:.0f} ms")
        elif self._detect_error:
            parts.append("no detections")
        if self._shown is not None:
            parts.append(f"frame {self._shown.index}")
        return " · ".join(parts)
