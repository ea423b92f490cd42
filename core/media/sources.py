"""Frame sources: a folder of images, a video file, a stream URL or a camera.

Each source reads on its own thread and keeps only the newest frame; a viewer
polls :meth:`FrameSource.latest` as often as it likes and never waits. Nothing
here blocks the caller: opening (which can hang inside a camera or network
driver) happens on the reading thread, and a source that does not open, or stops
delivering frames, within its timeout turns into an error with a one-line
message; :meth:`FrameSource.retry` starts it again. A reading thread stuck in a
driver is abandoned (its frames are ignored by generation number), never joined
forever.

Files can be paused, stepped frame by frame (forwards and back) and are played at
their own frame rate; live sources can be paused (the shown frame freezes) and
stepped (the next captured frame is handed over). ``fps`` is the measured rate
at which frames arrive.

Also here: what a list of dropped or command-line paths is (a model, images,
a video) and saving a snapshot (image + detections JSON) outside any model folder.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..base.errors import UserError
from .images import IMAGE_SUFFIXES, list_images, load_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mjpeg")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")

# Source states.
IDLE, OPENING, RUNNING, PAUSED, ENDED, ERROR, STOPPED = "idle", "opening", "running", "paused", "ended", "error", \
    "stopped"


class SourceError(UserError):
    """A source that cannot deliver frames; one line naming it."""


class Frame(NamedTuple):
    image: np.ndarray     # (H, W, 3) uint8 RGB
    index: int            # frame number: position in a file, or a running count for live sources
    timestamp: float      # time.monotonic() when the frame was captured


class FpsMeter:
    """Frames per second over a short sliding window of arrival times."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def clear(self) -> None:
        self._times.clear()


class FrameSource:
    """The threading, newest-frame hand-over, pause/step and timeouts shared by every source.

    Subclasses implement ``_open`` (returns a handle; may block), ``_read(handle)``
    (the next RGB frame and its index, or None at the end), ``_close(handle)``, and,
    when ``seekable``, ``_seek(handle, index)``.
    """

    seekable = False
    live = False

    def __init__(self, name: str, *, realtime: bool = True, loop: bool = False,
                 open_timeout: float = 10.0, read_timeout: float = 5.0):
        self.name = name
        self.realtime = realtime
        self.loop = loop
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.nominal_fps: float | None = None
        self.frame_count: int | None = None
        self._cond = threading.Condition()
        self._generation = 0
        self._state = IDLE
        self._error: str | None = None
        self._frame: Frame | None = None
        self._since = time.monotonic()       # when the current state began / the last frame came
        self._paused = False
        self._steps = 0                      # frames to hand over while paused (negative: back)
        self._seek_to: int | None = None
        self._meter = FpsMeter()
        self._thread: threading.Thread | None = None
        # Paced (files only): the next frame is read only once the viewer has taken this one with take(),
        # so a viewer slower than the file (a model on a CPU) sees every frame and nothing is decoded in vain.
        self.paced = False
        self._taken = True

    # --- what a viewer calls -----------------------------------------------------------------
    def start(self) -> "FrameSource":
        """Start reading (again) on a new thread; returns at once."""
        with self._cond:
            self._generation += 1
            gen = self._generation
            self._state = OPENING
            self._error = None
            self._since = time.monotonic()
            self._steps = 0
            self._meter.clear()
            self._cond.notify_all()
        self._thread = threading.Thread(target=self._run, args=(gen,), name=f"detscope-source-{gen}", daemon=True)
        self._thread.start()
        return self

    def stop(self, join: float = 1.0) -> None:
        """Stop reading; waits at most ``join`` seconds for the thread (a stuck one is abandoned)."""
        with self._cond:
            self._generation += 1
            self._state = STOPPED
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(join)

    def retry(self) -> "FrameSource":
        self.stop(join=0.2)
        return self.start()

    def latest(self) -> Frame | None:
        """The newest frame (the same one again until a newer one comes), or None before the first."""
        self._check_timeouts()
        with self._cond:
            return self._frame

    def take(self) -> Frame | None:
        """The newest frame, marked as taken (a paced source then reads the next one)."""
        self._check_timeouts()
        with self._cond:
            if self._frame is not None and not self._taken:
                self._taken = True
                self._cond.notify_all()
            return self._frame

    def next_frame(self, after: int | None = None, timeout: float = 5.0) -> Frame | None:
        """Wait (never on a GUI thread) for a frame not numbered ``after``; None on timeout, end, error or stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._check_timeouts_locked()
                frame = self._frame
                if frame is not None and (after is None or frame.index != after):
                    return frame
                if self._state in (ERROR, STOPPED, ENDED):
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    @property
    def state(self) -> str:
        self._check_timeouts()
        with self._cond:
            return self._state

    @property
    def error(self) -> str | None:
        self._check_timeouts()
        with self._cond:
            return self._error

    @property
    def fps(self) -> float:
        """Measured frames per second handed over (0 while nothing arrives)."""
        with self._cond:
            return self._meter.rate()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            if self._state == RUNNING:
                self._state = PAUSED
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._steps = 0
            if self._state == PAUSED:
                self._state = RUNNING
                self._since = time.monotonic()
            replay = self._state == ENDED
            if replay:          # play at the end means play again from the start: a fresh open
                self._frame = None
                self._seek_to = None
            self._cond.notify_all()
        if replay:
            self.start()

    def toggle_pause(self) -> bool:
        """Pause or resume; True when now paused."""
        if self.paused:
            self.resume()
            return False
        self.pause()
        return True

    def step(self, frames: int = 1) -> None:
        """While paused: hand over the next frame (or, for files, go back with a negative count)."""
        if frames < 0 and not self.seekable:
            raise SourceError(f"{self.name}: a live source cannot step back")
        with self._cond:
            if not self._paused:
                self._paused = True
                if self._state == RUNNING:
                    self._state = PAUSED
            self._steps += frames
            self._cond.notify_all()

    def seek(self, index: int) -> None:
        if not self.seekable:
            raise SourceError(f"{self.name} cannot seek")
        with self._cond:
            self._seek_to = max(0, int(index))
            self._frame = None if self._state == ENDED else self._frame
            self._cond.notify_all()

    # --- timeouts, checked whenever a viewer looks (no watchdog thread needed) -----------------
    def _check_timeouts(self) -> None:
        with self._cond:
            self._check_timeouts_locked()

    def _check_timeouts_locked(self) -> None:
        now = time.monotonic()
        if self._state == OPENING and now - self._since > self.open_timeout:
            self._fail_locked(f"{self.name} did not open within {self.open_timeout:g} s")
        elif self._state in (RUNNING, PAUSED) and self.live and now - self._since > self.read_timeout:
            self._fail_locked(f"{self.name} sent no frame for {self.read_timeout:g} s (disconnected?)")

    def _fail_locked(self, message: str) -> None:
        self._generation += 1   # a thread stuck in the driver is abandoned; its frames are ignored
        self._state = ERROR
        self._error = message
        self._cond.notify_all()

    # --- the reading thread --------------------------------------------------------------------
    def _current(self, gen: int) -> bool:
        return gen == self._generation

    def _run(self, gen: int) -> None:
        handle = None
        try:
            handle = self._open()
            with self._cond:
                if not self._current(gen):
                    return
                self._state = PAUSED if self._paused else RUNNING
                self._since = time.monotonic()
                self._cond.notify_all()
            self._read_loop(gen, handle)
        except UserError as exc:
            with self._cond:
                if self._current(gen):
                    self._fail_locked(str(exc))
        except Exception as exc:  # a driver error: one line for the user, the source stays usable (retry)
            with self._cond:
                if self._current(gen):
                    self._fail_locked(f"{self.name}: {type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            if handle is not None:
                self._close(handle)

    def _read_loop(self, gen: int, handle) -> None:
        due = time.monotonic()
        while True:
            with self._cond:
                if not self._current(gen):
                    return
                if self._seek_to is not None and self.seekable:
                    target, self._seek_to = self._seek_to, None
                    self._seek(handle, target)
                    due = time.monotonic()
                if self._steps < 0:
                    last = self._frame.index if self._frame is not None else 0
                    self._seek(handle, max(0, last + self._steps))
                    self._steps = 1
                paused = self._paused
                stepping = paused and self._steps > 0
                if paused and not stepping and not self.live:
                    self._cond.wait(0.25)      # a paused file reads nothing
                    continue
                if self.paced and not self.live and not self._taken and not stepping:
                    self._since = time.monotonic()   # waiting on the viewer is not a silent source
                    self._cond.wait(0.25)
                    continue
                if not paused and self.realtime and self.nominal_fps and not self.live:
                    now = time.monotonic()
                    if due > now:
                        self._cond.wait(due - now)
                        continue               # look again: a stop, pause or seek may have come
                    due = max(due + 1.0 / self.nominal_fps, now - 0.5)
                if stepping:
                    self._steps -= 1
            # A paused live source keeps reading (so its buffer stays fresh) but hands nothing over.
            got = self._read(handle)
            now = time.monotonic()
            with self._cond:
                if not self._current(gen):
                    return
                if got is None:
                    if self.loop and self.seekable and self._frame is not None:
                        self._seek_to = 0
                        continue
                    self._state = ENDED
                    self._cond.notify_all()
                    return
                self._since = now
                image, index = got
                if stepping or not self._paused:
                    self._frame = Frame(image, index, now)
                    self._taken = False
                    self._meter.tick(now)
                    self._cond.notify_all()
                elif not self.live and self._seek_to is None:
                    self._seek_to = index    # paused while this frame was read: it comes next on resume

    # --- what subclasses provide ---------------------------------------------------------------
    def _open(self):
        raise NotImplementedError

    def _read(self, handle) -> tuple[np.ndarray, int] | None:
        raise NotImplementedError

    def _close(self, handle) -> None:
        pass

    def _seek(self, handle, index: int) -> None:
        raise SourceError(f"{self.name} cannot seek")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._state}>"


class ImageFolderSource(FrameSource):
    """The images of a folder (or a list of files) handed over one by one at ``fps``."""

    seekable = True

    def __init__(self, paths, fps: float = 1.0, **kwargs):
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        first = Path(paths[0]) if paths else Path(".")
        super().__init__(f"images in {first.name if len(paths) == 1 else first.parent.name}", **kwargs)
        self._paths_in = paths
        self.paths: list[Path] = []
        self.nominal_fps = fps

    def _open(self):
        self.paths = list_images(self._paths_in)
        if not self.paths:
            raise SourceError(f"{self.name}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.frame_count = len(self.paths)
        return {"next": 0}

    def _read(self, handle):
        i = handle["next"]
        if i >= len(self.paths):
            return None
        handle["next"] = i + 1
        return load_image(self.paths[i]), i

    def _seek(self, handle, index: int) -> None:
        handle["next"] = min(max(0, index), len(self.paths))


def parse_target(target) -> int | str:
    """A camera index (``0``, ``"1"``), or a file path / stream URL as given."""
    if isinstance(target, int):
        return target
    text = str(target).strip()
    if text.isdigit():
        return int(text)
    return text


def describe_target(target) -> str:
    target = parse_target(target)
    if isinstance(target, int):
        return f"camera {target}"
    if target.lower().startswith(STREAM_SCHEMES):
        return f"stream {target}"
    return Path(target).name


class VideoSource(FrameSource):
    """A camera (by index), a video file or a stream URL, read with OpenCV's ``VideoCapture``."""

    def __init__(self, target, *, open_timeout: float | None = None, read_timeout: float | None = None,
                 **kwargs):
        self.target = parse_target(target)
        is_camera = isinstance(self.target, int)
        is_stream = not is_camera and self.target.lower().startswith(STREAM_SCHEMES)
        self.live = is_camera or is_stream
        self.seekable = not self.live
        if not self.live and not Path(self.target).exists():
            raise SourceError(f"{self.target} does not exist")
        super().__init__(describe_target(self.target),
                         open_timeout=open_timeout if open_timeout is not None else (10.0 if is_stream else 5.0),
                         read_timeout=read_timeout if read_timeout is not None else (5.0 if self.live else 10.0),
                         **kwargs)
        self.size: tuple[int, int] | None = None
        self._count = 0

    def _open(self):
        import cv2

        _quiet_opencv(cv2)
        if isinstance(self.target, int):
            cap = cv2.VideoCapture(self.target)
        else:
            ms = int(self.open_timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout * 1000)]
            cap = cv2.VideoCapture(self.target, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            if isinstance(self.target, int):
                raise SourceError(f"camera {self.target} did not open (not connected, or in use by another program)")
            raise SourceError(f"{self.name} did not open (not a video OpenCV can read, or unreachable)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = float(fps) if fps and 0 < fps < 1000 else (25.0 if not self.live else None)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 and not self.live else None
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._count = 0
        return cap

    def _read(self, handle):
        import cv2

        index = int(handle.get(cv2.CAP_PROP_POS_FRAMES)) if not self.live else self._count
        ok, bgr = handle.read()
        tries = 1
        while self.live and (not ok or bgr is None) and tries < 3:   # one dropped frame is not a disconnect
            time.sleep(0.05)
            ok, bgr = handle.read()
            tries += 1
        if not ok or bgr is None:
            if self.live:
                raise SourceError(f"{self.name} stopped sending frames (disconnected?)")
            return None
        self._count += 1
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB), index
        if bgr.shape[2] == 4:
            return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB), index
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index

    def _seek(self, handle, index: int) -> None:
        import cv2

        handle.set(cv2.CAP_PROP_POS_FRAMES, index)

    def _close(self, handle) -> None:
        handle.release()


def _quiet_opencv(cv2) -> None:
    """OpenCV's own warnings (``can't open camera by index``) repeat what the one-line error says."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
