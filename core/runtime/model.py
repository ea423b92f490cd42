"""A loaded model: the live TensorFlow object, its detector and its restore report.

:func:`load_model` decides how to get a live model from what the user opened
(a SavedModel; a checkpoint into a SavedModel template or into a model built by
the user's factory; a Keras file), restores, builds the detector and warms it up.
Call it on the engine thread (``engine.submit(load_model, path, ...)``); the
returned :class:`LoadedModel` belongs to that thread too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..browse import folders
from ..browse.inventory import object_graph_of
from ..formats.bundle import Bundle, BundleError
from ..detect.detections import Detections
from ..detect.conventions import Detector, DetectorError, OutputMapping, find_image_input, find_output_mapping
from ..detect.mappings import MappingKey, load_mapping, mapping_key
from .signatures import detector_for_signature, signature_io
from ..base.errors import UserError
from ..browse.folders import CheckpointRef, ModelFolder
from ..formats.labels import LabelMap, LabelMapError, read_label_map
from ..base.findings import ERROR, INFO, WARNING, Finding
from .tfimport import collector_paused, import_tensorflow
from .loaders import keras_report, load_factory, load_keras_model, load_saved_model
from .report import RestoreError, RestoreReport
from .restore import restore_checkpoint

TEMPLATE_PLACES = ("saved_model", "../saved_model", "exported/saved_model", "../exported/saved_model",
                   "export/saved_model", "../export/saved_model")


@dataclass
class LoadedModel:
    path: Path
    folder: ModelFolder
    how: str                                  # "saved_model", "checkpoint+template", "factory", "keras"
    live: object                              # the live root object
    signature_name: str | None = None
    mapping_key: MappingKey | None = None      # where a hand-made output mapping for it is kept
    detector: Detector | None = None
    report: RestoreReport | None = None
    checkpoint: CheckpointRef | None = None
    label_map: LabelMap | None = None
    findings: list[Finding] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)   # load, restore, warmup

    def detect(self, image: np.ndarray) -> Detections:
        if self.detector is None:
            reason = next((f.message for f in self.findings if f.severity == ERROR), "no detector signature")
            raise DetectorError(f"{self.path.name}: cannot detect: {reason}")
        return self.detector(image)

    def switch_checkpoint(self, name: str, job=None) -> RestoreReport:
        """Re-assign weights from another ``ckpt-N`` of the same folder, without reloading the graph."""
        ref = self.folder.require_checkpoint(name)
        self.report = _restore(self.folder, ref, self.live, self.how, job)
        self.checkpoint = ref
        return self.report


def _restore(mf: ModelFolder, ref: CheckpointRef, live, target: str, job) -> RestoreReport:
    try:
        bundle = Bundle(ref.prefix)
    except BundleError as exc:
        raise RestoreError(str(exc)) from exc
    return restore_checkpoint(bundle, live, source=ref.name, target=target, job=job,
                              graph=object_graph_of(mf, bundle))


def find_template(mf: ModelFolder) -> Path | None:
    """A SavedModel beside a checkpoint folder (``saved_model/`` here or one level up)."""
    if mf.saved_model is not None and mf.saved_model_pb is not None:
        return mf.saved_model
    base = mf.root
    for rel in TEMPLATE_PLACES:
        candidate = (base / rel).resolve()
        if (candidate / "saved_model.pb").is_file():
            return candidate
    return None


def _label_map(mf: ModelFolder, labels: str | None, findings: list[Finding]) -> LabelMap | None:
    path = labels or mf.label_map
    if path is None:
        return None
    try:
        return mf.parsed(Path(path), lambda: read_label_map(path)) if not labels else read_label_map(path)
    except LabelMapError as exc:
        if labels:
            raise
        findings.append(Finding(ERROR, str(exc), str(path)))
        return None


def _keras_outputs(model) -> dict[str, tuple[str, tuple]]:
    """``{name: (dtype, shape)}`` of a Keras model's outputs, named by ``model.output_names``."""
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    return {n: ("float32", tuple(None if d is None else int(d) for d in t.shape)) for n, t in zip(names, model.outputs)}


def _keras_detector(model, label, mapping: OutputMapping | None, scale: str | None):
    """A Detector around a Keras model's ``__call__`` (outputs named by ``model.output_names``)."""
    inp = model.inputs[0]
    dtype = getattr(inp.dtype, "name", str(inp.dtype))
    shape = tuple(None if d is None else int(d) for d in inp.shape)
    image_input = find_image_input({"image": (dtype, shape)}, scale=scale or "0..1")
    outs = _keras_outputs(model)
    names = list(outs)
    findings: list[Finding] = []
    if mapping is None:
        mapping, findings = find_output_mapping(outs)
        if mapping is None:
            return None, findings

    def call(batch):
        result = model(batch, training=False)
        if isinstance(result, dict):
            return {k: np.asarray(v) for k, v in result.items()}
        if not isinstance(result, (list, tuple)):
            result = [result]
        return {n: np.asarray(v) for n, v in zip(names, result)}

    return Detector(call, image_input, mapping, label), findings


def _align_classes(loaded: LoadedModel) -> None:
    """Keras-style detectors number classes from 0; a label map numbering them from 1 gets +1."""
    det, lm = loaded.detector, loaded.label_map
    if det is None or lm is None or not lm.ids or det.mapping.convention != "keras" or min(lm.ids) < 1:
        return
    det.mapping.class_offset = 1
    where = lm.source.name if lm.source else "the label map"
    loaded.findings.append(Finding(INFO, f"Keras-style class indexes start at 0 and {where} starts at 1: class 0 "
                                         "is shown as id 1 (map the outputs by hand to change it)"))


def _warm_up(loaded: LoadedModel, job) -> None:
    if loaded.detector is None:
        return
    if job is not None:
        job.progress("warming up")
    spec = loaded.detector.image_input
    h, w = (spec.height, spec.width) if spec.fixed_size else (64, 64)
    start = time.perf_counter()
    loaded.detect(np.zeros((h, w, 3), np.uint8))
    loaded.seconds["warmup"] = time.perf_counter() - start


def load_model(path: str | Path | ModelFolder, **options) -> LoadedModel:
    """Load what ``path`` names, restore its checkpoint when there is one, and build its detector.

    Options: ``checkpoint`` (ckpt-N), ``template`` (a SavedModel), ``factory`` (FILE.py:build),
    ``signature``, ``tags``, ``safe_mode`` (Keras), ``labels`` (a label map), ``scale`` (float
    input range), ``warmup``, ``job``. ``path`` may be a folder already recognised (its parsed files are
    then shared with whoever else holds it). The collector is paused meanwhile: a load builds many
    objects, and its full passes would stall the other threads.
    """
    with collector_paused():
        return _load_model(path, **options)


def _load_model(path: str | Path | ModelFolder, *, checkpoint: str | None = None, template: str | Path | None = None,
               factory: str | None = None, signature: str | None = None, tags: list[str] | None = None,
               safe_mode: bool = True, labels: str | None = None, scale: str | None = None,
               warmup: bool = True, job=None) -> LoadedModel:
    start = time.perf_counter()
    mf = path if isinstance(path, ModelFolder) else folders.recognise(path)
    path = mf.path
    findings: list[Finding] = []
    label_map = _label_map(mf, labels, findings)
    label = label_map.label if label_map is not None else None
    ref = mf.require_checkpoint(checkpoint) if checkpoint else None
    own_variables = mf.selected is not None and mf.selected.prefix == mf.variables_prefix
    if ref is None and not own_variables:
        ref = mf.selected

    # here, on the engine thread, so the caller's start stays fast; the inventory (read on other threads)
    # is loaded first so that no thread imports it while TensorFlow's libraries are being mapped
    import_tensorflow(job, preload=("detscope.core.browse.inventory",))

    messages: dict[str, int] = {}
    if factory:
        live = load_factory(factory, job)
        how, target = "factory", factory
    elif mf.kind == folders.KERAS:
        model, which, notes = load_keras_model(mf.keras_file, safe_mode=safe_mode, job=job)
        loaded = LoadedModel(Path(path), mf, "keras", model, label_map=label_map, findings=findings)
        loaded.report = keras_report(model, mf.keras_file, which, notes)
        loaded.seconds["load"] = time.perf_counter() - start
        try:
            mapping = load_mapping(mapping_key(mf.keras_file, keras=True))
            loaded.detector, more = _keras_detector(model, label, mapping, scale)
        except DetectorError as exc:
            loaded.detector, more = None, [Finding(ERROR, str(exc), str(mf.keras_file))]
        findings.extend(replace(f, file=f.file or str(mf.keras_file)) for f in more)
        _align_classes(loaded)
        if warmup:
            _warm_up(loaded, job)
        return loaded
    else:
        tpl = Path(template) if template else find_template(mf)
        if tpl is None:
            raise UserError(f"{mf.path.name}: a checkpoint holds values, not the architecture: restore it into "
                            "an export of the same model (--template SAVEDMODEL; in the window, Model ▸ Restore "
                            "into a SavedModel) or a model your code builds (--factory FILE.py:build)")
        live, messages = load_saved_model(tpl, tags=tags, job=job)
        how, target = ("saved_model", str(tpl)) if ref is None else ("checkpoint+template", str(tpl))
        if messages:
            findings.append(Finding(INFO, f"TensorFlow said {sum(messages.values())} things while loading "
                                          f"(most: {max(messages, key=messages.get)!r})", str(tpl)))

    loaded = LoadedModel(Path(path), mf, how, live, label_map=label_map, findings=findings)
    loaded.seconds["load"] = time.perf_counter() - start
    if ref is not None:
        t0 = time.perf_counter()
        if job is not None:
            job.progress(f"restoring {ref.name}")
        loaded.report = _restore(mf, ref, live, target, job)
        loaded.report.tf_messages.update(messages)
        loaded.checkpoint = ref
        loaded.seconds["restore"] = time.perf_counter() - t0

    sigs = getattr(live, "signatures", None)
    if sigs is not None and len(sigs):
        key = mapping_key(factory if factory else mf.path, signature=signature, signatures=sigs)
        name = key.signature
        if name not in sigs:
            raise UserError(f"{mf.path}: no signature {name!r} (have: {', '.join(sorted(sigs))})")
        loaded.signature_name = name
        loaded.mapping_key = key
        try:
            mapping = load_mapping(key)
            loaded.detector, more = detector_for_signature(sigs[name], label=label, mapping=mapping, scale=scale)
            findings.extend(more)
        except DetectorError as exc:
            findings.append(Finding(ERROR, str(exc), str(mf.path)))
    elif hasattr(live, "inputs") and hasattr(live, "outputs"):
        loaded.detector, more = _keras_detector(live, label, None, scale)
        findings.extend(more)
    else:
        findings.append(Finding(WARNING, "the model has no signatures to run; browse and restore only",
                                str(mf.path)))
    _align_classes(loaded)
    if warmup:
        _warm_up(loaded, job)
    return loaded


@dataclass(frozen=True)
class MappingTarget:
    """What a hand-made output mapping is for: the model file or folder, the signature, its outputs."""

    key: MappingKey
    outputs: dict          # {output key: (dtype, shape)}
    current: OutputMapping | None

    @property
    def model_path(self) -> Path:
        return self.key.model

    @property
    def signature(self) -> str:
        return self.key.signature


def mapping_target(loaded: LoadedModel) -> MappingTarget:
    """The outputs a user can map by hand for this model (call on the engine thread).

    The key is the one :func:`load_model` looked the mapping up by.
    """
    if loaded.how == "keras":
        key, outputs = mapping_key(loaded.folder.keras_file, keras=True), _keras_outputs(loaded.live)
    elif loaded.mapping_key is not None:
        key = loaded.mapping_key
        outputs = signature_io(loaded.live.signatures[key.signature])[1]
    else:
        raise UserError(f"{loaded.path.name} has no signature whose outputs could be mapped")
    current = loaded.detector.mapping if loaded.detector is not None else load_mapping(key)
    return MappingTarget(key, outputs, current)
