"""Browsing image files: the list, loading off the GUI thread, and detections from the engine (cached).

The list may show a subset of the opened images in another order (the evaluation's filters: images with a
confusion, sorted by errors) with :meth:`ImageBrowser.show_only`; ``all_paths`` keeps every opened image.
Detections known without the model (an evaluation's, computed at threshold 0) come from ``known``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

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
    files_listed = Signal(object)         # list[Path]: every image just opened
    detections_shown = Signal(object)     # kept Detections of the image on screen
    message = Signal(str)

    def __init__(self, session: ModelSession, panel: ImagePanel, bridge: Bridge, pool: ThreadPoolExecutor,
                 parent=None):
        super().__init__(parent)
        self.session = session
        self.panel = panel
        self.bridge = bridge
        self.pool = pool
        self.all_paths: list[Path] = []        # every opened image
        self.paths: list[Path] = []            # what the list shows, in its order
        self.index = -1
        self.image = None
        self.shown: Path | None = None         # the image on screen (it may be filtered out of the list)
        self.known: Callable[[Path], object] | None = None   # path -> Detections known without the model
        self._relisting = False
        self.enabled = True                    # off while a live source owns the panel
        self._request = 0
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._detecting = None
        panel.file_chosen.connect(self._chosen)
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
        self.all_paths = list(paths)
        self.paths = list(paths)
        self.panel.set_files([p.name for p in self.paths])
        self.files_listed.emit(list(self.all_paths))
        self.go(0)

    def show_only(self, paths: list[Path] | None, captions: list[str] | None = None, *,
                  keep_current: bool = True) -> None:
        """List these of the opened images, in this order (None: all of them), named ``captions``.

        With ``keep_current`` the image on screen stays (selected when it is listed); otherwise the first
        listed image is shown.
        """
        self.paths = list(self.all_paths if paths is None else paths)
        names = list(captions) if captions is not None else [p.name for p in self.paths]
        shown = self.shown
        rows = {p: i for i, p in enumerate(self.paths)}
        row = rows.get(shown, -1) if shown is not None else -1
        self._relisting = True
        try:
            self.panel.set_files(names, current=max(row, 0))
            if row < 0:
                self.panel.files.setCurrentRow(-1)
        finally:
            self._relisting = False
        total = len(self.all_paths)
        self.panel.files_title.setText(f"Images ({len(self.paths)} of {total})" if len(self.paths) != total
                                       else f"Images ({total})" if total else "Images")
        self.index = row
        if not keep_current and self.paths and row != 0:
            self.go(0)

    def _chosen(self, row: int) -> None:
        if not self._relisting:
            self.go(row)

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
        self.shown = path
        cached = self._cache.get(self._key(path))
        if cached is None and self.known is not None:
            cached = self.known(path)
        self.panel.set_image(rgb, path.name, cached)
        self.image_shown.emit(path)
        if cached is not None:
            if self._key(path) in self._cache:
                self._cache.move_to_end(self._key(path))
            self.detections_shown.emit(cached)
        else:
            self._detect(request, path, rgb)

    def _load_failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.shown = None
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
