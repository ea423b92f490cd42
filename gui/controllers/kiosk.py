"""Kiosk mode's flow: a live source through the model onto the kiosk screen, unattended.

A timer on the GUI thread takes the newest frame from the source (its own thread), shows it, and
every Nth frame hands it to the engine (a newer frame replaces one still waiting). A camera or
stream that fails or goes silent is reopened with back-off while the last frame stays, dimmed;
videos and image folders loop. Nothing is shown before the model has warmed up, and no boxes are
shown from a model that was not completely restored (``core.app.kiosk.detections_allowed``).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from detscope.core.app.kiosk import Backoff, Cadence, Tally, detections_allowed, downscale

from ..panels.kiosk_view import KioskView
from ..qt.bridge import Bridge, one_line
from .session import ModelSession

POLL_MS = 10
TEXT_EVERY_S = 0.25
THRESHOLD_STEP = 0.05


def make_source(target: str, *, loop: bool = True):
    """``camera:N``, a camera index, a video file, a folder of images or a stream URL, as a frame source.
    Files and folders loop."""
    from detscope.core.media.sources import ImageFolderSource, VideoSource

    text = str(target)
    if text.startswith("camera:"):
        text = text[len("camera:"):]
    if Path(text).is_dir():
        return ImageFolderSource(text, fps=2.0, loop=loop)
    return VideoSource(text, loop=loop)


class KioskController(QObject):
    leave = Signal()
    message = Signal(str)

    def __init__(self, session: ModelSession, view: KioskView, bridge: Bridge, *, threshold: float = 0.5,
                 every: int = 1, max_width: int | None = None, parent=None):
        super().__init__(parent)
        from detscope.core.media.sources import FpsMeter

        self.session, self.view, self.bridge = session, view, bridge
        self.threshold = threshold
        self.cadence = Cadence(every)
        self.max_width = max_width
        self.backoff = Backoff()
        self.tally = Tally()
        self.source = None
        self.shown_fps, self.inference_fps = FpsMeter(), FpsMeter()
        self.latency: float | None = None
        self.recorder = None
        self.recording_path: Path | None = None
        self._last = None            # the last frame taken from the source
        self._image = None           # the image on screen (downscaled)
        self._dets = None            # the newest detections (kept, at threshold 0)
        self._pending = None
        self._paused = False
        self._detect_error: str | None = None
        self._text_at = 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._tick)
        session.model_ready.connect(self._model_ready)
        session.failed.connect(lambda line: self.view.set_notice(line))

    # --- control -------------------------------------------------------------------------------
    def start(self, source) -> None:
        self.stop()
        self.source = source
        source.paced = not source.live and self.cadence.every == 1
        self.backoff = Backoff()
        source.start()
        self.timer.start()
        self._update_notice()

    def stop(self) -> None:
        self.stop_recording()
        if self.source is not None:
            source, self.source = self.source, None
            source.stop(join=0)
        self.timer.stop()

    def step_threshold(self, delta: float) -> None:
        self.threshold = min(1.0, max(0.0, round(self.threshold + delta, 2)))
        self._redraw()

    def toggle_pause(self) -> bool:
        self._paused = not self._paused
        if self.source is not None:
            (self.source.pause if self._paused else self.source.resume)()
        self._update_notice()
        return self._paused

    @property
    def paused(self) -> bool:
        return self._paused

    def snapshot(self) -> list[Path]:
        """The frame, its detections and the annotated picture, in detscope's data folder."""
        from detscope.core.base.paths import data_dir
        from detscope.core.media.snapshots import save_snapshot

        if self._image is None:
            self.message.emit("no frame to save yet")
            return []
        shown = self._shown_detections()
        written = save_snapshot(data_dir() / "snapshots", self._image, shown, annotated=self._annotated(),
                                info={"threshold": self.threshold, "model": str(self.session.path)})
        self.message.emit(f"snapshot saved: {written[0]}")
        return written

    def toggle_recording(self) -> bool:
        if self.recorder is not None:
            self.stop_recording()
            return False
        if self._image is None:
            self.message.emit("nothing to record yet")
            return False
        import cv2

        from detscope.core.base.paths import data_dir

        folder = data_dir() / "recordings"
        folder.mkdir(parents=True, exist_ok=True)
        self.recording_path = folder / time.strftime("kiosk-%Y%m%d-%H%M%S.mp4")
        h, w = self._image.shape[:2]
        fps = max(1.0, min(60.0, self.shown_fps.rate() or 10.0))
        self.recorder = cv2.VideoWriter(str(self.recording_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        self.message.emit(f"recording to {self.recording_path}")
        return True

    def stop_recording(self) -> None:
        if self.recorder is not None:
            self.recorder.release()
            self.recorder = None
            self.message.emit(f"recording saved: {self.recording_path}")

    # --- frames --------------------------------------------------------------------------------
    def _tick(self) -> None:
        from detscope.core.media import sources as states

        source = self.source
        if source is None:
            return
        state = source.state
        if state == states.ERROR or (state == states.ENDED and not source.live):
            self._source_lost(source)
            return
        if source.paced and self._pending is not None and not self._pending.done():
            frame = None                            # a file waits for the model: every frame is inferred
        else:
            frame = source.take()
        if frame is not None and frame is not self._last:
            self._last = frame
            if self.backoff.attempts or self.backoff.due is not None:
                self.backoff.succeeded()
                self._update_notice()
            self._new_frame(frame)
        now = time.monotonic()
        if now - self._text_at >= TEXT_EVERY_S:
            self._text_at = now
            self._update_texts()

    def _source_lost(self, source) -> None:
        self.view.set_dimmed(True)
        if self.backoff.due is None:
            delay = self.backoff.failed()
            reason = source.error or f"{source.name} ended"
            self.message.emit(f"{reason}; reconnecting in {delay:.0f} s")
        if self.backoff.ready():
            self.backoff.attempt()
            source.retry()
        remaining = self.backoff.remaining()
        what = source.name
        self.view.set_notice(f"{what} is not delivering frames — trying again"
                             + (f" in {remaining:.0f} s" if remaining >= 1 else " now"))

    def _new_frame(self, frame) -> None:
        image = downscale(frame.image, self.max_width)
        allowed, _ = detections_allowed(self.session.model)
        if self.session.model is None:
            return                                  # nothing is shown before the model has warmed up
        if allowed and self._detect_error is None and self.cadence.take() and \
                (self._pending is None or self._pending.done() or self.cadence.every == 1):
            try:
                future = self.session.detect_latest(image)
            except RuntimeError:                    # the engine is shut down: the kiosk is closing
                return
            if future is not None:
                self._pending = future
                started = frame.timestamp
                self.bridge.watch(future, lambda dets, im=image: self._detected(im, dets, started),
                                  self._failed)
                if self.cadence.every == 1 and self._image is not None:
                    return                          # held: the frame appears with its own boxes
        self._show(image, self._dets if allowed else None)

    def _detected(self, image, dets, started: float) -> None:
        if self.source is None:
            return
        now = time.monotonic()
        self.inference_fps.tick(now)
        took = now - started
        self.latency = took if self.latency is None else 0.8 * self.latency + 0.2 * took
        self._dets = dets
        self.tally.add(dets.above(self.threshold).labels)
        if self.source.paced:
            self._tick()        # a file: the next frame goes to the engine now, while this one is drawn
        if self.cadence.every == 1:
            self._show(image, dets)
        else:
            self.view.show_boxes(self._shown_detections())

    def _failed(self, exc: BaseException) -> None:
        self._detect_error = one_line(exc)
        self.bridge.report(exc, "detection on live frames stopped")
        self._update_notice()

    def _show(self, image, dets) -> None:
        self._image = image
        self.shown_fps.tick(time.monotonic())
        self.view.show_frame(image, dets.above(self.threshold) if dets is not None else None)
        if self.recorder is not None:
            import cv2

            self.recorder.write(cv2.cvtColor(self._annotated(), cv2.COLOR_RGB2BGR))

    def _shown_detections(self):
        allowed, _ = detections_allowed(self.session.model)
        return self._dets.above(self.threshold) if (allowed and self._dets is not None) else None

    def _annotated(self):
        from detscope.core.detect.render import draw_detections

        shown = self._shown_detections()
        return draw_detections(self._image, shown) if shown is not None else self._image.copy()

    def _redraw(self) -> None:
        self.view.show_boxes(self._shown_detections())
        self._update_texts()

    # --- text ----------------------------------------------------------------------------------
    def _model_ready(self, _summary) -> None:
        self._dets = None
        self._detect_error = None
        self.tally = Tally()
        self._update_notice()

    def _update_notice(self) -> None:
        model = self.session.model
        if self._paused:
            text = "paused — Space to go on"
        elif model is None:
            text = f"warming up {self.session.path.name if self.session.path else 'the model'}…"
        else:
            allowed, why = detections_allowed(model)
            text = why if not allowed else (f"detection stopped: {self._detect_error}" if self._detect_error else "")
        self.view.set_notice(text)

    def _update_texts(self) -> None:
        model = self.session.model
        title = self.session.path.name if self.session.path else ""
        if model is not None and model.checkpoint_name:
            title += f" · {model.checkpoint_name}"
        counts = "\n".join(self.tally.lines()[:8])
        parts = [f"{self.shown_fps.rate():.1f} fps shown"]
        if model is not None:
            parts.append(f"inference {self.inference_fps.rate():.1f} fps")
            if self.latency is not None:
                parts.append(f"latency {self.latency * 1000:.0f} ms")
        parts.append(f"score ≥ {self.threshold:.2f}")
        if self.cadence.every > 1:
            parts.append(f"inferring every {self.cadence.every} frames: boxes are from the last inferred frame")
        if self.recorder is not None:
            parts.append("● recording")
        self.view.set_texts(title, counts, " · ".join(parts))
