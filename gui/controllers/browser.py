"""Browsing image files: the list, loading off the GUI thread, and detections from the engine (cached)."""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..qt.bridge import Bridge
from ..panels.image_panel import ImagePanel
from .session import ModelSession

CACHE_SIZE = 256        # detections of this many images (per model state) are kept for going back


def _list(paths):
    from detscope.core.media.images import list_images

    return list_images(paths)


def _load(path):
    from detscope.core.media.images import load_image

    return load_image(path)


class ImageBrowser(QObject):
    image_shown = Signal(object)          # Path
    detections_shown = Signal(object)     # kept Detections of the image on screen
    message = Signal(str)

    def __init__(self, session: ModelSession, panel: ImagePanel, bridge: Bridge, pool: ThreadPoolExecutor,
                 parent=None):
        super().__init__(parent)
        self.session = session
        self.panel = panel
        self.bridge = bridge
        self.pool = pool
        self.paths: list[Path] = []
        self.index = -1
        self.image = None
        self.enabled = True                    # off while a live source owns the panel
        self._request = 0
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._detecting = None
        panel.file_chosen.connect(self.go)
        session.model_ready.connect(self._model_changed)

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if 0 <= self.index < len(self.paths) else None

    # --- choosing -------------------------------------------------------------------------------
    def open(self, paths) -> None:
        """Images and folders of images; the first one is shown."""
        future = self.pool.submit(_list, [str(p) for p in paths])
        self.bridge.watch(future, self._listed)

    def _listed(self, paths) -> None:
        if not paths:
            self.message.emit("no images there")
            return
        self.paths = list(paths)
        self.panel.set_files([p.name for p in self.paths])
        self.go(0)

    def go(self, row: int) -> None:
        if not self.paths:
            return
        row = max(0, min(row, len(self.paths) - 1))
        self.index = row
        self.panel.set_current_file(row)
        if not self.enabled:
            return
        self._request += 1
        request = self._request
        path = self.paths[row]
        future = self.pool.submit(_load, path)
        self.bridge.watch(future, lambda rgb: self._loaded(request, path, rgb),
                          lambda exc: self._load_failed(request, exc))

    def step(self, delta: int) -> None:
        if self.paths:
            self.go(self.index + delta if self.index >= 0 else 0)

    def first(self) -> None:
        self.go(0)

    def last(self) -> None:
        self.go(len(self.paths) - 1)

    def reshow(self) -> None:
        """Show the current image again (after a live source let go of the panel)."""
        self.enabled = True
        if self.current is not None:
            self.go(self.index)

    def cancel(self) -> None:
        """Drop the detection under way (the window is closing or the panel changes hands)."""
        self._request += 1
        if self._detecting is not None and not self._detecting.done():
            self.session.engine.cancel(self._detecting)
        self._detecting = None

    # --- loading and detecting ---------------------------------------------------------------
    def _loaded(self, request: int, path: Path, rgb) -> None:
        if request != self._request or not self.enabled:
            return
        self.image = rgb
        cached = self._cache.get(self._key(path))
        self.panel.set_image(rgb, path.name, cached)
        self.image_shown.emit(path)
        if cached is not None:
            self._cache.move_to_end(self._key(path))
            self.detections_shown.emit(cached)
        else:
            self._detect(request, path, rgb)

    def _load_failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.panel.set_image(None)
            self.bridge.report(exc)

    def _key(self, path: Path) -> tuple:
        return (str(path), self.session.generation)

    def _detect(self, request: int, path: Path, rgb) -> None:
        if self.session.model is None:
            if self.session.busy:
                self.message.emit(f"{path.name}: detections follow when the model has loaded")
            return
        if not self.session.may_detect:
            return               # an incomplete restore: the banner over the image says why, and asks
        if self._detecting is not None and not self._detecting.done():
            self.session.engine.cancel(self._detecting)   # only the image on screen matters
        started = time.perf_counter()
        key = self._key(path)
        try:
            future = self.session.detect(rgb, name=f"detect {path.name}")
        except RuntimeError:            # the engine is shut down: the window is closing
            return
        self._detecting = future
        self.bridge.watch(future, lambda dets: self._detected(request, key, dets, started),
                          lambda exc: self._detect_failed(request, exc))

    def _detected(self, request: int, key: tuple, dets, started: float) -> None:
        self._cache[key] = dets
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        if request != self._request or not self.enabled:
            return
        self.panel.set_detections(dets)
        ms = (time.perf_counter() - started) * 1000
        self.message.emit(f"{Path(key[0]).name}: {len(self.panel.shown)} of {len(dets)} detections shown "
                          f"(score ≥ {self.panel.threshold:.2f}), {ms:.0f} ms")
        self.detections_shown.emit(dets)

    def _detect_failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.bridge.report(exc, "detection failed")

    def _model_changed(self, _model) -> None:
        """New weights: the image on screen is run again."""
        if self.enabled and self.image is not None and self.current is not None:
            self._request += 1
            self._detect(self._request, self.current, self.image)
