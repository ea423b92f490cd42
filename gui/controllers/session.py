"""One opened model folder: its inventory (read off the GUI thread) and its live model (on the engine).

Every TensorFlow object stays on the engine thread: the functions submitted there
are module-level (``_load``, ``_switch``, ``_release``) and keep the live model in
a holder only the engine thread writes, so a checkpoint switch queued while the
model still loads runs right after it, and dropping a model frees it there too.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..qt.bridge import Bridge, log


class _Holder:
    """The live model, written only on the engine thread."""

    model = None


def _load(holder: _Holder, path: str, checkpoint: str | None, template: str | None, job=None):
    from detscope.core.runtime.model import load_model

    holder.model = load_model(path, checkpoint=checkpoint, template=template, job=job)
    return holder          # the future keeps the holder, not the model: the engine alone lets the model go


def _switch(holder: _Holder, name: str, job=None):
    from detscope.core.base.errors import UserError

    if holder.model is None:
        raise UserError(f"cannot switch to {name}: no model is loaded")
    return holder.model.switch_checkpoint(name, job=job)


def _mapping_target(holder: _Holder):
    from detscope.core.base.errors import UserError
    from detscope.core.runtime.model import mapping_target

    if holder.model is None:
        raise UserError("no model is loaded: its outputs cannot be mapped")
    return mapping_target(holder.model)


def _release(holder: _Holder, handed_over: list) -> None:
    """Drop the model here, on the engine thread, with the GUI's reference it handed over."""
    holder.model = None
    handed_over.clear()


def _inventory(path: str, checkpoint: str | None):
    from detscope.core.browse.inventory import build_inventory

    return build_inventory(path, checkpoint=checkpoint)


class ModelSession(QObject):
    """What the window knows about the open model; every answer arrives as a signal on the GUI thread."""

    opened = Signal(object)               # Path: a new model folder is being opened
    inventory_ready = Signal(object)      # Inventory
    model_ready = Signal(object)          # LoadedModel
    report_changed = Signal(object)       # RestoreReport (after a load or a checkpoint switch)
    checkpoint_changed = Signal(str)
    message = Signal(str)                 # a one-line status
    failed = Signal(str)                  # a one-line error
    load_failed = Signal(str)             # the model could not be loaded (the tree still browses)

    def __init__(self, engine, bridge: Bridge, pool: ThreadPoolExecutor, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.bridge = bridge
        self.pool = pool
        self.path: Path | None = None
        self.template: Path | None = None  # a SavedModel of the same architecture, for a bare checkpoint
        self.inventory = None
        self.loaded = None
        self.generation = 0               # bumps whenever the weights change (detections are stale)
        self.loading: Future | None = None
        self.switching: Future | None = None
        self._holder = _Holder()
        self._inventory_request = 0

    # --- opening -------------------------------------------------------------------------------
    def open(self, path, checkpoint: str | None = None, template=None) -> None:
        """Read the folder at once (tree) and load the model behind it (engine).

        ``template``: a SavedModel of the same architecture to restore the checkpoint into,
        for a checkpoint folder without one beside it.
        """
        self.close_model()
        self.path = Path(path)
        self.template = Path(template) if template else None
        self.generation += 1
        gen = self.generation
        self.opened.emit(self.path)
        name = self.path.name or str(self.path)
        self._read_inventory(checkpoint)
        self._holder = holder = _Holder()
        job = f"load {name}"
        future = self.engine.submit(_load, holder, str(self.path), checkpoint,
                                    str(self.template) if self.template else None, name=job)
        self.loading = future
        self.bridge.track(f"Loading {name}", future, cancel=lambda: self.engine.cancel(future), name=job)
        self.bridge.watch(future, lambda h: self._loaded(gen, h.model), lambda e: self._load_failed(gen, e),
                          lambda: self._load_cancelled(gen))

    def _read_inventory(self, checkpoint: str | None) -> None:
        self._inventory_request += 1
        request = self._inventory_request
        future = self.pool.submit(_inventory, str(self.path), checkpoint)
        self.bridge.track(f"Reading {self.path.name}", future)
        self.bridge.watch(future, lambda inv: self._inventory_done(request, inv),
                          lambda e: self._inventory_failed(request, e))

    def close_model(self) -> None:
        """Cancel what loads and let the engine drop the live model."""
        in_flight = False
        for future in (self.loading, self.switching):
            if future is not None and not future.done():
                self.engine.cancel(future)
                in_flight = True
        self.loading = self.switching = None
        self.inventory = None
        # The release queues behind a load or restore still running, so whatever they leave goes too.
        handed_over = [self.loaded] if self.loaded is not None else []
        self.loaded = None
        if handed_over or in_flight or self._holder.model is not None:
            try:
                self.engine.submit(_release, self._holder, handed_over, name="release model")
            except RuntimeError:       # the engine is shut down: the process is ending anyway
                log.debug("engine already shut down; the model goes with the process")
        self._holder = _Holder()

    def _inventory_done(self, request: int, inv) -> None:
        if request != self._inventory_request:
            return                       # a newer read (another folder or checkpoint) is under way
        self.inventory = inv
        self.inventory_ready.emit(inv)

    def _inventory_failed(self, request: int, exc: BaseException) -> None:
        if request == self._inventory_request:
            self.failed.emit(self.bridge.report(exc, f"cannot read {self.path.name}"))

    def _loaded(self, gen: int, loaded) -> None:
        if gen != self.generation or self.loading is None or loaded is None:
            return
        self.loading = None
        self.loaded = loaded
        took = sum(loaded.seconds.get(k, 0.0) for k in ("load", "restore", "warmup"))
        what = loaded.report.summary() if loaded.report is not None else "no checkpoint restored"
        self.message.emit(f"{self.path.name} loaded in {took:.1f} s — {what}")
        self.model_ready.emit(loaded)
        self.report_changed.emit(loaded.report)
        if loaded.checkpoint is not None:
            self.checkpoint_changed.emit(loaded.checkpoint.name)

    def _load_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self.generation:
            return
        self.loading = None
        line = self.bridge.report(exc, f"cannot load {self.path.name}")
        self.failed.emit(line)
        self.load_failed.emit(line)

    def _load_cancelled(self, gen: int) -> None:
        if gen == self.generation:
            self.loading = None
            self.message.emit(f"loading {self.path.name} cancelled; the tree is still browsable")

    # --- checkpoints ---------------------------------------------------------------------------
    def switch_checkpoint(self, name: str) -> None:
        """Re-assign weights from another ckpt-N (no reload) and re-read the tree for that checkpoint."""
        if self.path is None:
            return
        if self.switching is not None and not self.switching.done():
            self.engine.cancel(self.switching)
        self.generation += 1
        gen = self.generation
        self._read_inventory(name)
        if self.loaded is None and self.loading is None:
            self.message.emit(f"showing {name}; no model is loaded to restore it into")
            return
        job = f"restore {name}"
        future = self.engine.submit(_switch, self._holder, name, name=job)
        self.switching = future
        self.bridge.track(f"Restoring {name}", future, cancel=lambda: self.engine.cancel(future), name=job)
        self.bridge.watch(future, lambda r: self._switched(future, gen, name, r),
                          lambda e: self._switch_failed(future, e),
                          lambda: self._switch_cancelled(future, name))

    def _done_switching(self, future: Future) -> None:
        if self.switching is future:
            self.switching = None

    def _switch_cancelled(self, future: Future, name: str) -> None:
        self._done_switching(future)
        self.message.emit(f"switching to {name} cancelled")

    def _switched(self, future: Future, gen: int, name: str, report) -> None:
        self._done_switching(future)
        if gen != self.generation:
            return
        self.message.emit(f"restored {name} — {report.summary()}")
        self.report_changed.emit(report)
        self.checkpoint_changed.emit(name)
        if self.loaded is not None:
            self.model_ready.emit(self.loaded)   # detections are stale: viewers run again

    def _switch_failed(self, future: Future, exc: BaseException) -> None:
        self._done_switching(future)
        self.failed.emit(self.bridge.report(exc, "restore failed"))

    # --- work for viewers ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return any(f is not None and not f.done() for f in (self.loading, self.switching))

    def detect(self, image, name: str = "detect") -> Future | None:
        """Run the model on an RGB image on the engine (None when no model is loaded)."""
        if self.loaded is None:
            return None
        return self.engine.submit(self.loaded.detect, image, name=name)

    def detect_latest(self, image) -> Future | None:
        """A live frame: replaces any frame still waiting for the engine."""
        if self.loaded is None:
            return None
        return self.engine.submit_latest(self.loaded.detect, image, name="frame")

    def request_mapping_target(self) -> Future:
        """The loaded model's outputs and current mapping (a ``core.model.MappingTarget``), from the engine."""
        return self.engine.submit(_mapping_target, self._holder, name="read outputs")

    def request_stats(self, key: str) -> Future:
        inv = self.inventory
        if inv is None:
            raise RuntimeError("the model folder is still being read")
        return self.pool.submit(inv.tensor_stats, key)

    def class_names(self) -> dict[int, str]:
        lm = (self.loaded.label_map if self.loaded is not None else None) or \
            (self.inventory.label_map if self.inventory is not None else None)
        if lm is None:
            return {}
        return {int(item.id): item.label for item in lm.items}

    def findings(self) -> list:
        seen, out = set(), []
        for f in list(self.inventory.findings if self.inventory else []) + list(
                self.loaded.findings if self.loaded else []):
            if f.message not in seen:
                seen.add(f.message)
                out.append(f)
        return out

