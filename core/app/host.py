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

from ..base import collector
from ..base.errors import UserError
from ..base.findings import Finding
from ..browse import folders
from ..browse.folders import CheckpointRef, ModelFolder
from ..browse.inventory import Inventory, build_inventory
from ..detect.conventions import ImageInput, OutputMapping
from ..detect.detections import Detections
from ..formats.labels import LabelMap
from ..runtime.engine import Engine
from .modelproc import ModelProcess
from ..base.text import fmt_shape, plural
from ..formats.objectgraph import MODEL
from ..runtime.report import COMPLETE, FAILED, RestoreReport


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
    restore_note: str | None = None            # why the folder's checkpoint was left alone (a frozen TF1 export)

    @property
    def refusal(self) -> str | None:
        """Why detections of this model are refused unasked, in one line (what was not restored); None when
        it may run: only a complete restore runs unasked (see :func:`restore_refusal`)."""
        return restore_refusal(self.how, self.report)

    @property
    def partial(self) -> bool:
        """The restore was not complete (partial, failed, or matched nothing): detecting needs the user's
        word (``allow_partial``), and what it gives is marked."""
        return self.refusal is not None

    def partial_restore(self) -> dict | None:
        """What marks every output of a detection run on an incomplete restore (``"partial_restore"`` in
        ``detect --json``); None for a complete one."""
        reason = self.refusal
        if reason is None:
            return None
        r = self.report
        return {"verdict": str(r.verdict), "source": r.source, "target": r.target, "summary": r.summary(),
                "reason": reason}

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
                        replace(det.mapping) if det is not None else None, det is not None,
                        restore_note=getattr(loaded, "restore_note", None))


# --- only a complete restore runs unasked -----------------------------------------------------------

class PartialRestoreRefused(UserError):
    """A detection refused because the model's restore was not complete; ``str()`` is the one line saying
    what was not restored. ``report`` is that restore's report. Detect again with ``allow_partial=True``
    once the user has agreed (the command line's ``--allow-partial``)."""

    def __init__(self, reason: str, report: RestoreReport):
        super().__init__(reason)
        self.report = report


def _short(key: str) -> str:
    return key.split("/.ATTRIBUTES/")[0]


def _listed(keys: list[str], limit: int = 2) -> str:
    shown = ", ".join(_short(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def restore_refusal(how: str, report: RestoreReport | None) -> str | None:
    """Why a model's detections would not be its checkpoint's, in one line; None when it may run unasked.

    The one rule, for the command line and the window alike: only a **complete** restore runs unasked. A
    partial one (a class head left at the model's own weights after a ``num_classes`` change, a layer
    renamed), a failed one (a corrupt or unreadable checkpoint) and one that matched nothing (a checkpoint
    of another model) are refused until the user agrees. A model with no checkpoint to restore (a
    SavedModel run as it is, a frozen TF1 export, a Keras file, which loads whole or not at all) is
    complete as it is.
    """
    if report is None or how == "keras" or report.verdict == COMPLETE:
        return None
    target = Path(report.target).name or report.target
    if report.verdict == FAILED:
        if not report.matched or not report.assigned:
            why = report.notes[0] if report.notes else "no value matched"
            return (f"{report.source} restored nothing into {target} (failed: {why}); detections would come from "
                    "the model's own weights, not the checkpoint's")
        why = report.notes[-1] if report.notes else report.summary()
        return (f"{report.source} failed to restore into {target} ({why}); detections would mix the checkpoint's "
                "weights with the model's own")
    parts = []
    if report.shape_mismatches:
        m = report.shape_mismatches[0]
        parts.append(f"{plural(len(report.shape_mismatches), 'value')} with the wrong shape ({_short(m.key)}: checkpoint "
                     f"{fmt_shape(m.checkpoint_shape)}, model {fmt_shape(m.model_shape)}"
                     f"{' …' if len(report.shape_mismatches) > 1 else ''})")
    if report.dtype_mismatches:
        m = report.dtype_mismatches[0]
        parts.append(f"{plural(len(report.dtype_mismatches), 'value')} with the wrong dtype ({_short(m.key)}: checkpoint "
                     f"{m.checkpoint_dtype}, model {m.model_dtype}{' …' if len(report.dtype_mismatches) > 1 else ''})")
    if report.missing:
        parts.append(f"{plural(len(report.missing), 'model variable')} not in the checkpoint "
                     f"({_listed([m.key for m in report.missing])})")
    unused = [u.key for u in report.unused if u.group == MODEL]
    if unused:
        parts.append(f"{plural(len(unused), 'checkpoint model value')} unused ({_listed(unused)})")
    return (f"{report.source} was restored only in part into {target} (partial: {'; '.join(parts) or report.summary()}); "
            "detections would mix the checkpoint's weights with the model's own")


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


class Slot:
    """The live model, written and dropped only on the thread that owns it (the engine's, in this process or in
    the model's process: :mod:`.modelproc`). Every method returns plain data."""

    def __init__(self):
        self.model = None

    def load(self, folder: ModelFolder, options: dict, job=None) -> ModelSummary:
        from ..runtime.model import load_model

        self.model = load_model(folder, job=job, **options)
        return summarise(self.model)

    def _live(self, what: str):
        if self.model is None:
            raise UserError(f"no model is loaded: cannot {what}")
        return self.model

    def switch(self, name: str, job=None) -> ModelSummary:
        self._live(f"switch to {name}").switch_checkpoint(name, job=job)
        return summarise(self.model)

    def detect(self, image, allow_partial: bool = False) -> Detections:
        model = self._live("detect")
        if not allow_partial:      # asked here, so a checkpoint switch queued before counts
            reason = restore_refusal(model.how, model.report)
            if reason is not None:
                raise PartialRestoreRefused(reason, model.report)
        return model.detect(image)

    def mapping_target(self):
        from ..runtime.model import mapping_target

        return mapping_target(self._live("map its outputs"))

    def release(self) -> None:
        if self.model is not None:
            self.model = None
            collector.thaw()     # the load froze the model's objects; now they may be collected


class ProcessSlot:
    """A :class:`Slot` in the model's own process (:class:`~.modelproc.ModelProcess`): the same calls, made
    from the engine thread, answered by the child."""

    def __init__(self, process: ModelProcess):
        self.process = process
        self.folder: ModelFolder | None = None

    def load(self, folder: ModelFolder, options: dict, job=None) -> ModelSummary:
        self.folder = folder
        return self._here(self.process.call("load", folder, options, job=job))

    def _here(self, summary: ModelSummary) -> ModelSummary:
        return replace(summary, folder=self.folder)   # the folder this process holds, with what it has read

    def switch(self, name: str, job=None) -> ModelSummary:
        return self._here(self.process.call("switch", name, job=job))

    def detect(self, image, allow_partial: bool = False) -> Detections:
        return self.process.call("detect", image, allow_partial)

    def mapping_target(self):
        return self.process.call("mapping_target")

    def release(self) -> None:
        self.process.release()


def _load(slot, folder: Future, options: dict, job=None) -> ModelSummary:
    """On the engine thread, once the folder has been recognised."""
    return slot.load(folder.result(), options, job=job)


class ModelHost:
    """Opens one model at a time. ``open()`` returns the futures of its inventory and its load.

    ``engine`` runs every TensorFlow call; ``pool`` (two workers by default) reads folders. With
    ``isolated`` the model lives in a process of its own (:class:`~.modelproc.ModelProcess`, driven from the
    engine thread): TensorFlow, which holds this process's GIL for seconds while it loads a big graph, then
    never stops a window's thread; a load can be stopped even inside TensorFlow; a crash in it is an error
    line. The command line keeps the model in its own process. The host is not thread-safe for its own
    calls: one owner (the CLI's main thread, the window's GUI thread) drives it; the futures it returns may be
    waited on anywhere.
    """

    def __init__(self, engine: Engine | None = None, pool: ThreadPoolExecutor | None = None, *,
                 isolated: bool = False):
        self._own_engine = engine is None
        self.engine = engine or Engine()
        self._own_pool = pool is None
        self.pool = pool or ThreadPoolExecutor(2, thread_name_prefix="detscope-io")
        self.process: ModelProcess | None = None
        if isolated:
            self.process = ModelProcess.acquire()
            self.engine.at_exit(self.process.retire)
        self._slot = self._new_slot()
        self.folder: Future | None = None          # Future[ModelFolder]
        self.inventory: Future | None = None       # Future[Inventory]
        self.loading: Future | None = None         # Future[ModelSummary]
        self.switching: Future | None = None
        self.path: Path | None = None

    def _new_slot(self):
        return ProcessSlot(self.process) if self.process is not None else Slot()

    # --- opening ---------------------------------------------------------------------------------
    def recognise(self, path) -> Future:
        """Recognise ``path`` once, on the pool; the same folder then serves every reader."""
        return self.pool.submit(folders.recognise, path)

    def open(self, path, *, checkpoint: str | None = None, load: bool = True, inventory: bool = True,
             name: str | None = None, **options) -> tuple[Future | None, Future | None]:
        """Forget the open model, then read ``path`` (its inventory, unless ``inventory`` is False) and,
        with ``load``, load it on the engine.

        ``options`` go to :func:`~detscope.core.runtime.model.load_model` (``template``, ``factory``,
        ``labels``, ``signature``, ``tags``, ``scale``, ``safe_mode``, ``trust_model``, ``warmup``).
        A model that would run code unasked (a Keras file's stored Python, a SavedModel whose graph reads or
        writes files, runs Python or uses the network) fails its load with
        :class:`~detscope.core.base.errors.LoadRefused` before TensorFlow sees it: ``would_run`` says what
        it would do, for a confirmation; opening again with ``**refused.options`` accepts it.
        """
        self.close()
        self.path = Path(path)
        self.folder = self.recognise(path)
        self.inventory = self.read_inventory(checkpoint) if inventory else None
        self.loading = None
        if load:
            self._slot = slot = self._new_slot()
            options = dict(options, checkpoint=checkpoint)
            self.loading = self.engine.submit(_load, slot, self.folder, options,
                                              name=name or f"load {self.path.name}")
        return self.inventory, self.loading

    def read_inventory(self, checkpoint: str | None = None) -> Future:
        """The inventory of the open folder, for ``checkpoint`` (the selected one by default)."""
        folder = self.folder

        def read() -> Inventory:
            inventory = build_inventory(folder.result(), checkpoint=checkpoint)
            # It lives as long as the folder is open: later full collections need not walk its objects.
            collector.freeze_survivors()
            return inventory
        return self.pool.submit(read)

    def load_sync(self, path, **options) -> ModelSummary:
        """Open and load, waiting (the command line's way); raises the load's one-line error."""
        _, loading = self.open(path, inventory=False, **options)
        return loading.result()

    # --- while open ------------------------------------------------------------------------------
    def switch(self, checkpoint: str, *, name: str | None = None) -> Future:
        """Re-assign the weights from another ``ckpt-N`` (no reload); a new summary comes back."""
        self.switching = self.engine.submit(self._slot.switch, checkpoint, name=name or f"restore {checkpoint}")
        return self.switching

    def detect(self, image, *, latest: bool = False, name: str = "detect", allow_partial: bool = False) -> Future:
        """Run the model on an RGB ``uint8`` image; ``latest``: a live frame that replaces any frame
        still waiting for the engine.

        On a restore that is not complete the future fails with :class:`PartialRestoreRefused` (its line
        says what was not restored) unless ``allow_partial``: the user has agreed, and marks what is shown
        (``ModelSummary.partial_restore()``).
        """
        if latest:
            return self.engine.submit_latest(self._slot.detect, image, allow_partial, name="frame")
        return self.engine.submit(self._slot.detect, image, allow_partial, name=name)

    def detect_many(self, paths, *, allow_partial: bool = False, on_error=None):
        """Yield ``(path, image, detections)``, decoding the next image while the engine runs the model
        on the current one (``allow_partial`` as for :meth:`detect`).

        An image that cannot be read, or that the model fails on, is a one-line UserError naming the image:
        with ``on_error``, ``on_error(path, error)`` is called and the run goes on with the next image;
        without it, the error ends the run. A refusal that concerns the model, not the image
        (:class:`PartialRestoreRefused`), always ends it.
        """
        from ..media.images import load_image

        def failed(path, exc: UserError) -> None:
            if on_error is None:
                raise exc
            on_error(path, exc)

        def finish(item):
            path, image, future = item
            try:
                return path, image, future.result()
            except PartialRestoreRefused:
                raise
            except UserError as exc:  # the model failed on this image: say which (the reader's errors name it)
                failed(path, UserError(f"{path}: {exc}").with_traceback(exc.__traceback__))
                return None

        pending = None
        for path in paths:
            try:
                image = load_image(path)
            except UserError as exc:
                failed(path, exc)
                continue
            future = self.detect(image, allow_partial=allow_partial)
            if pending is not None:
                done = finish(pending)
                if done is not None:
                    yield done
            pending = (path, image, future)
        if pending is not None:
            done = finish(pending)
            if done is not None:
                yield done

    def mapping_target(self) -> Future:
        """The loaded model's outputs and its current output mapping (a ``MappingTarget``)."""
        return self.engine.submit(self._slot.mapping_target, name="read outputs")

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
        if self.inventory is not None:
            collector.thaw()           # the inventory was frozen when read: its tree's cycles may go now
        self.loading = self.switching = self.inventory = self.folder = None
        if had_model:
            try:
                self.engine.submit(self._slot.release, name="release model")
            except RuntimeError:       # the engine is shut down: nothing will run the model again
                if isinstance(self._slot, Slot):
                    self._slot.model = None
        self._slot = self._new_slot()

    def shutdown(self, timeout: float | None = 30) -> None:
        """Close, then stop the engine and the pool if this host made them."""
        self.close()
        if self._own_engine:
            self.engine.shutdown(timeout=timeout)
        if self._own_pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
