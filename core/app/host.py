"""One opened model, Qt-free: the command line and the window both open models through a :class:`ModelHost`.

The host recognises the folder once and hands the same :class:`ModelFolder` to the inventory (read on
a worker pool, no TensorFlow) and to the loader (on the engine thread), so each of the folder's files
is parsed once per open. The live model (a :class:`~detscope.core.runtime.model.LoadedModel`, full of
TensorFlow objects) never leaves the engine thread: every call returns a ``Future`` of plain, frozen
data — a :class:`ModelSummary`, a :class:`RestoreReport`, :class:`Detections` — like a slice
response in napari. Dropping the model happens on the engine thread too.

:class:`Latest` is the one helper for "the newest request wins": a caller stamps each request and
drops answers that a newer request has overtaken.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..base.errors import UserError
from ..base.findings import Finding
from ..browse import folders
from ..browse.folders import CheckpointRef, ModelFolder
from ..browse.inventory import Inventory, build_inventory
from ..detect.conventions import ImageInput, OutputMapping
from ..detect.detections import Detections
from ..formats.labels import LabelMap
from ..runtime.engine import Engine
from ..runtime.report import RestoreReport


@dataclass(frozen=True)
class ModelSummary:
    """What a loaded model is, as plain data any thread may read (a snapshot: a checkpoint switch
    gives a new one)."""

    path: Path
    folder: ModelFolder
    how: str                                   # "saved_model", "checkpoint+template", "factory", "keras"
    checkpoint: CheckpointRef | None
    report: RestoreReport | None
    label_map: LabelMap | None
    findings: tuple[Finding, ...]
    seconds: dict = field(default_factory=dict)   # load, restore, warmup
    signature: str | None = None
    image_input: ImageInput | None = None
    mapping: OutputMapping | None = None       # how the outputs are read (a copy)
    can_detect: bool = False

    @property
    def checkpoint_name(self) -> str | None:
        return self.checkpoint.name if self.checkpoint is not None else None

    def loaded_in(self) -> float:
        return sum(self.seconds.get(k, 0.0) for k in ("load", "restore", "warmup"))

    def class_names(self) -> dict[int, str]:
        if self.label_map is None:
            return {}
        return {int(item.id): item.label for item in self.label_map.items}


def summarise(loaded) -> ModelSummary:
    """A frozen summary of a live model (call on the engine thread)."""
    det = loaded.detector
    return ModelSummary(loaded.path, loaded.folder, loaded.how, loaded.checkpoint, loaded.report,
                        loaded.label_map, tuple(loaded.findings), dict(loaded.seconds), loaded.signature_name,
                        det.image_input if det is not None else None,
                        replace(det.mapping) if det is not None else None, det is not None)


class Latest:
    """Newest request wins: ``stamp()`` before asking, ``is_current(stamp)`` when the answer comes."""

    def __init__(self):
        self._n = 0
        self._lock = threading.Lock()

    def stamp(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def is_current(self, stamp: int) -> bool:
        return stamp == self._n


class _Slot:
    """The live model, written and dropped only on the engine thread."""

    model = None


def _load(slot: _Slot, folder: Future, options: dict, job=None) -> ModelSummary:
    from ..runtime.model import load_model

    slot.model = load_model(folder.result(), job=job, **options)
    return summarise(slot.model)


def _live(slot: _Slot, what: str):
    if slot.model is None:
        raise UserError(f"no model is loaded: cannot {what}")
    return slot.model


def _switch(slot: _Slot, name: str, job=None) -> ModelSummary:
    _live(slot, f"switch to {name}").switch_checkpoint(name, job=job)
    return summarise(slot.model)


def _detect(image, slot: _Slot) -> Detections:
    return _live(slot, "detect").detect(image)


def _mapping_target(slot: _Slot):
    from ..runtime.model import mapping_target

    return mapping_target(_live(slot, "map its outputs"))


def _release(slot: _Slot) -> None:
    slot.model = None


class ModelHost:
    """Opens one model at a time. ``open()`` returns the futures of its inventory and its load.

    ``engine`` runs every TensorFlow call; ``pool`` (two workers by default) reads folders. The host
    is not thread-safe for its own calls: one owner (the CLI's main thread, the window's GUI thread)
    drives it; the futures it returns may be waited on anywhere.
    """

    def __init__(self, engine: Engine | None = None, pool: ThreadPoolExecutor | None = None):
        self._own_engine = engine is None
        self.engine = engine or Engine()
        self._own_pool = pool is None
        self.pool = pool or ThreadPoolExecutor(2, thread_name_prefix="detscope-io")
        self._slot = _Slot()
        self.folder: Future | None = None          # Future[ModelFolder]
        self.inventory: Future | None = None       # Future[Inventory]
        self.loading: Future | None = None         # Future[ModelSummary]
        self.switching: Future | None = None
        self.path: Path | None = None

    # --- opening ---------------------------------------------------------------------------------
    def recognise(self, path) -> Future:
        """Recognise ``path`` once, on the pool; the same folder then serves every reader."""
        return self.pool.submit(folders.recognise, path)

    def open(self, path, *, checkpoint: str | None = None, load: bool = True, inventory: bool = True,
             name: str | None = None, **options) -> tuple[Future | None, Future | None]:
        """Forget the open model, then read ``path`` (its inventory, unless ``inventory`` is False) and,
        with ``load``, load it on the engine.

        ``options`` go to :func:`~detscope.core.runtime.model.load_model` (``template``, ``factory``,
        ``labels``, ``signature``, ``tags``, ``scale``, ``safe_mode``, ``warmup``).
        """
        self.close()
        self.path = Path(path)
        self.folder = self.recognise(path)
        self.inventory = self.read_inventory(checkpoint) if inventory else None
        self.loading = None
        if load:
            self._slot = slot = _Slot()
            options = dict(options, checkpoint=checkpoint)
            self.loading = self.engine.submit(_load, slot, self.folder, options,
                                              name=name or f"load {self.path.name}")
        return self.inventory, self.loading

    def read_inventory(self, checkpoint: str | None = None) -> Future:
        """The inventory of the open folder, for ``checkpoint`` (the selected one by default)."""
        folder = self.folder

        def read() -> Inventory:
            return build_inventory(folder.result(), checkpoint=checkpoint)
        return self.pool.submit(read)

    def load_sync(self, path, **options) -> ModelSummary:
        """Open and load, waiting (the command line's way); raises the load's one-line error."""
        _, loading = self.open(path, inventory=False, **options)
        return loading.result()

    # --- while open ------------------------------------------------------------------------------
    def switch(self, checkpoint: str, *, name: str | None = None) -> Future:
        """Re-assign the weights from another ``ckpt-N`` (no reload); a new summary comes back."""
        self.switching = self.engine.submit(_switch, self._slot, checkpoint, name=name or f"restore {checkpoint}")
        return self.switching

    def detect(self, image, *, latest: bool = False, name: str = "detect") -> Future:
        """Run the model on an RGB ``uint8`` image; ``latest``: a live frame that replaces any frame
        still waiting for the engine."""
        if latest:
            return self.engine.submit_latest(_detect, image, self._slot, name="frame")
        return self.engine.submit(_detect, image, self._slot, name=name)

    def detect_many(self, paths):
        """Yield ``(path, image, detections)``, decoding the next image while the engine runs the model
        on the current one."""
        from ..media.images import load_image

        pending = None
        for path in paths:
            image = load_image(path)
            future = self.detect(image)
            if pending is not None:
                yield pending[0], pending[1], pending[2].result()
            pending = (path, image, future)
        if pending is not None:
            yield pending[0], pending[1], pending[2].result()

    def mapping_target(self) -> Future:
        """The loaded model's outputs and its current output mapping (a ``MappingTarget``)."""
        return self.engine.submit(_mapping_target, self._slot, name="read outputs")

    @property
    def loaded(self) -> bool:
        return self.loading is not None and self.loading.done() and not self.loading.cancelled() \
            and self.loading.exception() is None

    @property
    def busy(self) -> bool:
        return any(f is not None and not f.done() for f in (self.loading, self.switching))

    # --- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Cancel what still loads and let the engine drop the live model (queued behind any work on it)."""
        for future in (self.loading, self.switching):
            if future is not None and not future.done():
                self.engine.cancel(future)
        had_model = self.loading is not None
        self.loading = self.switching = self.inventory = self.folder = None
        if had_model:
            try:
                self.engine.submit(_release, self._slot, name="release model")
            except RuntimeError:       # the engine is shut down: the model goes with the process
                self._slot.model = None
        self._slot = _Slot()

    def shutdown(self, timeout: float | None = 30) -> None:
        """Close, then stop the engine and the pool if this host made them."""
        self.close()
        if self._own_engine:
            self.engine.shutdown(timeout=timeout)
        if self._own_pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
