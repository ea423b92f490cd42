"""The window's face of :class:`~detscope.core.app.host.ModelHost`: its futures as Qt signals.

The host recognises the folder once, reads the inventory on the pool and keeps the live model on
the engine thread; this controller only hands out what comes back — an :class:`Inventory` and
frozen :class:`ModelSummary` snapshots — on the GUI thread, dropping answers a newer request has
overtaken (:class:`~detscope.core.app.host.Latest`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from detscope.core.app.host import Latest, ModelHost, ModelSummary

from ..qt.bridge import Bridge


class ModelSession(QObject):
    """What the window knows about the open model; every answer arrives as a signal on the GUI thread."""

    opened = Signal(object)               # Path: a new model folder is being opened
    inventory_ready = Signal(object)      # Inventory
    model_ready = Signal(object)          # ModelSummary (after a load or a checkpoint switch)
    report_changed = Signal(object)       # RestoreReport (after a load or a checkpoint switch)
    checkpoint_changed = Signal(str)
    message = Signal(str)                 # a one-line status
    failed = Signal(str)                  # a one-line error
    load_failed = Signal(str)             # the model could not be loaded (the tree still browses)
    read_failed = Signal(str)             # the folder could not be read at all
    load_refused = Signal(object)         # LoadRefused: the model would run code; the user may agree

    def __init__(self, engine, bridge: Bridge, pool: ThreadPoolExecutor, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.bridge = bridge
        self.pool = pool
        self.host = ModelHost(engine, pool, isolated=True)     # TensorFlow never holds this process's GIL
        self.path: Path | None = None
        self.template: Path | None = None  # a SavedModel of the same architecture, for a bare checkpoint
        self.inventory = None
        self.model: ModelSummary | None = None   # the loaded model, as its latest summary
        self.generation = 0               # bumps whenever the weights change (detections are stale)
        self.loading: Future | None = None
        self.switching: Future | None = None
        self._inventory_request = Latest()
        self.allow_partial = False
        self.load_options: dict = {}

    # --- opening -------------------------------------------------------------------------------
    def open(self, path, checkpoint: str | None = None, template=None, **options) -> None:
        """Read the folder at once (tree) and load the model behind it (engine).

        ``template``: a SavedModel of the same architecture to restore the checkpoint into,
        for a checkpoint folder without one beside it. ``options`` go to the load (``trust_model``,
        ``safe_mode``: what the user agreed to after a refusal).
        """
        self.close_model()
        self.path = Path(path)
        self.template = Path(template) if template else None
        self.allow_partial = False        # detections of an incomplete restore only once the user agrees
        self.load_options = dict(options)
        self.generation += 1
        gen = self.generation
        self.opened.emit(self.path)
        name = self.path.name or str(self.path)
        job = f"load {name}"
        inventory, future = self.host.open(self.path, checkpoint=checkpoint, name=job,
                                           template=str(self.template) if self.template else None, **options)
        self._watch_inventory(inventory)
        self.loading = future
        self.bridge.track(f"Loading {name}", future, cancel=lambda: self.engine.cancel(future), name=job)
        self.bridge.watch(future, lambda summary: self._loaded(gen, summary), lambda e: self._load_failed(gen, e),
                          lambda: self._load_cancelled(gen))

    def _watch_inventory(self, future: Future) -> None:
        request = self._inventory_request.stamp()
        self.bridge.track(f"Reading {self.path.name}", future)
        self.bridge.watch(future, lambda inv: self._inventory_done(request, inv),
                          lambda e: self._inventory_failed(request, e))

    def close_model(self) -> None:
        """Cancel what loads and let the engine drop the live model."""
        self.host.close()
        self.loading = self.switching = None
        self.inventory = None
        self.model = None

    def _inventory_done(self, request: int, inv) -> None:
        if not self._inventory_request.is_current(request):
            return                       # a newer read (another folder or checkpoint) is under way
        self.inventory = inv
        self.inventory_ready.emit(inv)

    def _inventory_failed(self, request: int, exc: BaseException) -> None:
        if self._inventory_request.is_current(request):
            line = self.bridge.report(exc, f"cannot read {self.path.name}")
            self.failed.emit(line)
            self.read_failed.emit(line)

    def _loaded(self, gen: int, model: ModelSummary) -> None:
        if gen != self.generation or self.loading is None:
            return
        self.loading = None
        self.model = model
        what = model.report.summary() if model.report is not None else "no checkpoint restored"
        self.message.emit(f"{self.path.name} loaded in {model.loaded_in():.1f} s — {what}")
        self.model_ready.emit(model)
        self.report_changed.emit(model.report)
        if model.checkpoint is not None:
            self.checkpoint_changed.emit(model.checkpoint.name)

    def _load_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self.generation:
            return
        self.loading = None
        from detscope.core.base.errors import LoadRefused

        line = self.bridge.report(exc, f"cannot load {self.path.name}")
        self.failed.emit(line)
        self.load_failed.emit(line)
        if isinstance(exc, LoadRefused):
            self.load_refused.emit(exc)

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
        self._watch_inventory(self.host.read_inventory(name))
        if self.model is None and self.loading is None:
            self.message.emit(f"showing {name}; no model is loaded to restore it into")
            return
        job = f"restore {name}"
        future = self.host.switch(name, name=job)
        self.switching = future
        self.bridge.track(f"Restoring {name}", future, cancel=lambda: self.engine.cancel(future), name=job)
        self.bridge.watch(future, lambda m: self._switched(future, gen, name, m),
                          lambda e: self._switch_failed(future, e),
                          lambda: self._switch_cancelled(future, name))

    def _done_switching(self, future: Future) -> None:
        if self.switching is future:
            self.switching = None

    def _switch_cancelled(self, future: Future, name: str) -> None:
        self._done_switching(future)
        self.message.emit(f"switching to {name} cancelled")

    def _switched(self, future: Future, gen: int, name: str, model: ModelSummary) -> None:
        self._done_switching(future)
        if gen != self.generation:
            return
        self.model = model
        self.message.emit(f"restored {name} — {model.report.summary()}")
        self.report_changed.emit(model.report)
        self.checkpoint_changed.emit(name)
        self.model_ready.emit(model)   # detections are stale: viewers run again

    def _switch_failed(self, future: Future, exc: BaseException) -> None:
        self._done_switching(future)
        self.failed.emit(self.bridge.report(exc, "restore failed"))

    # --- work for viewers ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return any(f is not None and not f.done() for f in (self.loading, self.switching))

    def detect(self, image, name: str = "detect") -> Future | None:
        """Run the model on an RGB image on the engine (None when no model is loaded)."""
        if self.model is None or not self.may_detect:
            return None
        return self.host.detect(image, name=name, allow_partial=self.allow_partial)

    def detect_latest(self, image) -> Future | None:
        """A live frame: replaces any frame still waiting for the engine."""
        if self.model is None or not self.may_detect:
            return None
        return self.host.detect(image, latest=True, allow_partial=self.allow_partial)

    @property
    def may_detect(self) -> bool:
        """A complete restore detects unasked; an incomplete one only after the user agreed."""
        return self.model is not None and (not self.model.partial or self.allow_partial)

    def request_mapping_target(self) -> Future:
        """The loaded model's outputs and current mapping (a ``MappingTarget``), from the engine."""
        return self.host.mapping_target()

    def request_stats(self, key: str) -> Future:
        inv = self.inventory
        if inv is None:
            raise RuntimeError("the model folder is still being read")
        return self.pool.submit(inv.tensor_stats, key)

    def class_names(self) -> dict[int, str]:
        """The label map's names: the one the model loaded with, else the folder's."""
        if self.model is not None and self.model.label_map is not None:
            return self.model.class_names()
        lm = self.inventory.label_map if self.inventory is not None else None
        return {int(item.id): item.label for item in lm.items} if lm is not None else {}

    def findings(self) -> list:
        """The folder's findings and the load's, each message once."""
        seen, out = set(), []
        for f in list(self.inventory.findings if self.inventory else []) + list(
                self.model.findings if self.model else []):
            if f.message not in seen:
                seen.add(f.message)
                out.append(f)
        return out
