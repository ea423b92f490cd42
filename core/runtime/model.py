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
from ..base.collector import freeze_survivors
from .tfimport import collector_paused, import_tensorflow
from .loaders import (keras_report, load_factory, load_keras_model, load_saved_model, read_before_loading,
                      refuse_keras_code, refuse_untrusted_saved_model, tf_error_line)
from ..formats.kerasfile import read_keras_file
from ..formats.savedmodel import SavedModelError, SavedModelInfo, read_saved_model
from ..browse import integrity
from .report import FAILED, RestoreError, RestoreReport
from .restore import plan_restore, restore_checkpoint
from . import builders
from .templates import TemplateChoice, choose_template

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
    # Why the folder's checkpoint was left alone, in one line (a TF1 export whose weights are frozen into its
    # graph runs as it is); None when there was none or it was restored.
    restore_note: str | None = None
    built: object | None = None               # a model a builder made from the folder's config (see .builders)

    def detect(self, image: np.ndarray) -> Detections:
        if self.detector is None:
            reason = next((f.message for f in self.findings if f.severity == ERROR), "no detector signature")
            raise DetectorError(f"{self.path.name}: cannot detect: {reason}")
        import tensorflow as tf

        try:
            return self.detector(image)
        except (tf.errors.OpError, ValueError, TypeError) as exc:  # TensorFlow or Keras running the model
            raise DetectorError(f"the model failed: {tf_error_line(exc)}") from exc

    def switch_checkpoint(self, name: str, job=None) -> RestoreReport:
        """Re-assign weights from another ``ckpt-N`` of the same folder, without reloading the graph."""
        ref = self.folder.require_checkpoint(name)
        self.report = _restore(self.folder, ref, self.live, self.report.target if self.report else self.how, job)
        if self.built is not None:
            self.report.notes.extend(self.built.explain(self.report))
        self.checkpoint = ref
        return self.report


def _restore(mf: ModelFolder, ref: CheckpointRef, live, target: str, job) -> RestoreReport:
    try:
        bundle = Bundle(ref.prefix)
    except BundleError as exc:
        raise RestoreError(str(exc)) from exc
    graph = object_graph_of(mf, bundle)
    # A data shard that is missing, a folder, empty or short: nothing is assigned (a restore from what can be
    # read would mix the checkpoint's values with the model's own), and the report names the file. The plan
    # comes first, from the index alone: what would match, what the model misses, every shape mismatch.
    broken = integrity.shard_findings(bundle)
    if broken:
        report, _ = plan_restore(bundle, live, graph, source=ref.name, target=target)
        report.verdict, report.assigned = FAILED, False
        report.notes[:0] = [f.message for f in broken] + [
            f"nothing was assigned: the lists are what {ref.name}.index says would be restored"]
        return report
    report = restore_checkpoint(bundle, live, source=ref.name, target=target, job=job, graph=graph)
    if not report.matched and not report.missing and not report.shape_mismatches:
        report.notes.append(f"the model has no variables: its {integrity.FROZEN}")
    return report


def _check_parts(mf: ModelFolder, ref: CheckpointRef | None, *, template, factory, explicit: bool,
                 vetted, findings: list[Finding]) -> tuple[CheckpointRef | None, str | None]:
    """The files behind what is about to be restored and loaded, checked before TensorFlow sees them.

    Returns the checkpoint to restore (None to run the model as it is) and why a checkpoint was left alone.
    A broken part that TensorFlow would trip over is one line naming it (UserError); a fallback (an older
    checkpoint than the state file names, an export run without its training checkpoints) is a warning.
    """
    own = mf.variables_prefix
    training = [c for c in mf.checkpoints if c.prefix != own]
    state_errors = [f for f in mf.findings if f.severity == ERROR and mf.state_file is not None
                    and f.file == str(mf.state_file)]
    if ref is None and mf.kind in (folders.CHECKPOINT_FOLDER, folders.CHECKPOINT, folders.TF1_CHECKPOINT):
        why = state_errors[0].message if state_errors else "no checkpoint (ckpt-N.index) is here"
        raise UserError(f"{mf.path.name}: {why}: there is nothing to restore")
    if ref is None and mf.state_file is not None and not training:
        why = state_errors[0].message if state_errors else "the checkpoint state file names no checkpoint that is here"
        ran = f"{mf.saved_model.name}/" if mf.saved_model is not None else "the model"
        findings.append(Finding(WARNING, f"{why}; ran {ran} as exported, without the training checkpoints",
                                str(mf.state_file)))
    elif ref is not None and not explicit and mf.kind != folders.CHECKPOINT and state_errors:
        findings.append(Finding(WARNING, f"{state_errors[0].message}; restored {ref.name} instead, the newest "
                                         "checkpoint with an index", str(mf.state_file)))
    if factory or mf.kind == folders.KERAS:
        return ref, None
    tpl = Path(template) if template else find_template(mf)
    if tpl is None or not (tpl / "saved_model.pb").is_file() and not (tpl / "saved_model.pbtxt").is_file():
        return ref, None
    info = vetted if isinstance(vetted, SavedModelInfo) else None
    if info is None:
        pb = tpl / "saved_model.pb" if (tpl / "saved_model.pb").is_file() else tpl / "saved_model.pbtxt"
        try:
            info = mf.parsed(pb, lambda: read_saved_model(pb))
        except SavedModelError as exc:
            raise UserError(str(exc)) from exc
    for f in integrity.saved_model_variables_findings(info, tpl):
        if f.severity == ERROR and f.key is None:      # missing, unreadable or short: TensorFlow cannot load it
            raise UserError(f.message)
        findings.append(f)
    variables = integrity.own_variables(tpl)
    if variables is not None:
        for f in integrity.shard_findings(variables):  # what is left: a data shard that is not there at all
            raise UserError(f"{f.message}; TensorFlow cannot load {tpl.name}/ without it")
    if ref is None:
        return ref, None
    try:
        bundle = Bundle(ref.prefix)
    except BundleError:
        return ref, None        # the restore says why, naming the file
    reason = integrity.frozen_export(info, bundle, variables, name=tpl.name)
    if reason is None or (explicit and variables is not None and variables.entries):
        return ref, None
    findings.append(Finding(INFO, reason, str(tpl)))
    return None, reason


def find_template(mf: ModelFolder) -> Path | None:
    """A SavedModel beside a checkpoint folder (``saved_model/`` here or one level up)."""
    if mf.saved_model is not None and mf.saved_model_pb is not None:
        return mf.saved_model
    return template_choice(mf).path


def template_choice(mf: ModelFolder) -> TemplateChoice:
    """The template for a checkpoint folder, found once per open: the usual places first; when exports lie
    further around (``exported-models/*``, siblings), the best match by key and shape, said in ``note``."""
    if mf.saved_model is not None and mf.saved_model_pb is not None:
        return TemplateChoice(mf.saved_model)

    def choose() -> TemplateChoice:
        near = []
        for rel in TEMPLATE_PLACES:
            candidate = (mf.root / rel).resolve()
            if (candidate / "saved_model.pb").is_file() and candidate not in near:
                near.append(candidate)
        return choose_template(mf, near)
    return mf.parsed(("template choice",), choose)


def _vet(mf: ModelFolder, template, *, safe_mode: bool, trust: bool):
    """Read what will be loaded, without TensorFlow, and refuse it (LoadRefused) when loading or running it
    would run code unasked; returns what was read (shared with the inventory through ``mf.parsed``)."""
    if mf.kind == folders.KERAS:
        info = mf.parsed(mf.keras_file, lambda: read_keras_file(mf.keras_file))
        return refuse_keras_code(mf.keras_file, info) if safe_mode else info
    tpl = Path(template) if template else find_template(mf)
    if tpl is None or trust:
        return None
    own = mf.saved_model is not None and mf.saved_model_pb is not None and \
        Path(tpl).resolve() == Path(mf.saved_model).resolve()
    pb = mf.saved_model_pb
    info = read_before_loading(tpl, (lambda: mf.parsed(pb, lambda: read_saved_model(pb))) if own else None)
    refuse_untrusted_saved_model(tpl, info)
    return info


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
    try:
        loaded.detect(np.zeros((h, w, 3), np.uint8))
    except DetectorError as exc:  # the model's own fault: name it, in one line
        raise DetectorError(f"{loaded.path.name}: warming up on a blank {w}x{h} image: {exc}") from exc
    loaded.seconds["warmup"] = time.perf_counter() - start


NOTHING_TO_RESTORE_INTO = ("{name}: a checkpoint holds values, not the architecture: restore it into an export of "
                           "the same model (--template SAVEDMODEL; in the window, Model ▸ Restore into a SavedModel) "
                           "or a model your code builds (--factory FILE.py:build)")


def load_model(path: str | Path | ModelFolder, **options) -> LoadedModel:
    """Load what ``path`` names, restore its checkpoint when there is one, and build its detector.

    Options: ``checkpoint`` (ckpt-N), ``template`` (a SavedModel), ``factory`` (FILE.py:build),
    ``signature``, ``tags``, ``safe_mode`` (Keras), ``trust_model`` (a SavedModel whose graph reaches
    outside the model), ``labels`` (a label map), ``scale`` (float input range), ``warmup``, ``job``.
    What would run code unasked (a Keras file's marshalled Python with ``safe_mode``, a SavedModel
    reading or writing files, running Python or using the network without ``trust_model``) is refused
    with :class:`~detscope.core.base.errors.LoadRefused` before TensorFlow is imported; its
    ``options`` are what accepts it. ``path`` may be a folder already recognised (its parsed files are
    then shared with whoever else holds it). The collector is paused meanwhile: a load builds many
    objects, and its full passes would stall the other threads.
    """
    with collector_paused():
        loaded = _load_model(path, **options)
    # What the load built lives as long as the model: later full collections need not walk it again.
    freeze_survivors()
    return loaded


def _load_model(path: str | Path | ModelFolder, *, checkpoint: str | None = None, template: str | Path | None = None,
               factory: str | None = None, signature: str | None = None, tags: list[str] | None = None,
               safe_mode: bool = True, labels: str | None = None, scale: str | None = None,
               warmup: bool = True, trust_model: bool = False, job=None) -> LoadedModel:
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
    _refuse_lfs_pointers(mf, ref, template, factory)     # before TensorFlow is imported, in a few milliseconds
    if mf.kind == folders.TFLITE:  # LiteRT runs it; TensorFlow is not imported
        return _load_tflite(mf, label_map, findings, start, signature=signature, scale=scale, warmup=warmup,
                            job=job)

    # before TensorFlow is imported and before anything of the model runs: refuse what would run code unasked
    vetted = None if factory else _vet(mf, template, safe_mode=safe_mode, trust=trust_model)
    # ... and say which part is broken, naming it, before TensorFlow trips over it
    ref, restore_note = _check_parts(mf, ref, template=template, factory=factory, explicit=checkpoint is not None,
                                     vetted=vetted, findings=findings)
    # ... and a checkpoint with nothing to restore into (no export, no config a builder knows, no factory)
    # is said from the folder alone: importing TensorFlow to say so would cost seconds and half a gigabyte
    if not factory and mf.kind != folders.KERAS and not template and find_template(mf) is None \
            and builders.plan_for(mf) is None:
        raise UserError(NOTHING_TO_RESTORE_INTO.format(name=mf.path.name))

    # here, on the engine thread, so the caller's start stays fast; the inventory (read on other threads)
    # is loaded first so that no thread imports it while TensorFlow's libraries are being mapped
    import_tensorflow(job, preload=("detscope.core.browse.inventory",))

    messages: dict[str, int] = {}
    chosen = None       # why this template, when several exports lie around the training folder
    if factory:
        live = load_factory(factory, job)
        how, target = "factory", factory
    elif mf.kind == folders.KERAS:
        model, which, notes = load_keras_model(mf.keras_file, safe_mode=safe_mode, job=job, info=vetted)
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
        chosen = None if template or tpl is None else template_choice(mf).note
        if chosen:      # several exports around the training folder: which one, and why, is said
            findings.append(Finding(INFO, chosen, str(tpl)))
        plan = builders.plan_for(mf) if tpl is None else None
        if plan is not None:        # a training config beside the checkpoints: its framework builds the model
            return _load_built(mf, plan, ref, label_map, findings, start, warmup=warmup, job=job)
        if tpl is None:
            raise UserError(NOTHING_TO_RESTORE_INTO.format(name=mf.path.name))
        live, messages = load_saved_model(tpl, tags=tags, job=job, trust=trust_model, info=vetted)
        how, target = ("saved_model", str(tpl)) if ref is None else ("checkpoint+template", str(tpl))
        if messages:
            findings.append(Finding(INFO, f"TensorFlow said {sum(messages.values())} things while loading "
                                          f"(most: {max(messages, key=messages.get)!r})", str(tpl)))

    loaded = LoadedModel(Path(path), mf, how, live, label_map=label_map, findings=findings,
                         restore_note=restore_note)
    loaded.seconds["load"] = time.perf_counter() - start
    if ref is not None:
        t0 = time.perf_counter()
        if job is not None:
            job.progress(f"restoring {ref.name}")
        loaded.report = _restore(mf, ref, live, target, job)
        loaded.report.tf_messages.update(messages)
        if chosen:
            loaded.report.notes.insert(0, chosen)
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
    elif getattr(live, "inputs", None) and getattr(live, "outputs", None):  # a subclassed model has None
        loaded.detector, more = _keras_detector(live, label, None, scale)
        findings.extend(more)
    else:
        findings.append(Finding(WARNING, "the model has no signatures to run; browse and restore only",
                                str(mf.path)))
    _align_classes(loaded)
    if warmup:
        _warm_up(loaded, job)
    return loaded


def _refuse_lfs_pointers(mf: ModelFolder, ref: CheckpointRef | None, template, factory) -> None:
    """A part about to be loaded that is a Git LFS pointer: one line naming it, saying `git lfs pull`."""
    lfs = [f for f in mf.findings if f.severity == ERROR and "Git LFS pointer" in f.message]
    if ref is not None and ref is not mf.selected:
        lfs += [f for f in folders.check_checkpoint_files(ref) if "Git LFS pointer" in f.message]
    if not lfs and not factory and mf.kind not in (folders.KERAS, folders.TFLITE):
        tpl = Path(template) if template else find_template(mf)
        if tpl is not None and not (mf.saved_model is not None and Path(tpl).resolve() == mf.saved_model.resolve()):
            parts = [Path(tpl) / "saved_model.pb", Path(tpl) / "variables" / "variables.index"]
            lfs += [folders.lfs_finding(p) for p in parts if p.is_file() and folders.is_lfs_pointer(p)]
    if lfs:
        raise UserError(lfs[0].message)


def _load_built(mf: ModelFolder, plan, ref: CheckpointRef | None, label_map: LabelMap | None,
                findings: list[Finding], start: float, *, warmup: bool, job) -> LoadedModel:
    """Build the model from its training config with the framework that trained it (``plan``, from
    :func:`.builders.plan_for`), restore ``ref`` into it with detscope's own restore, and detect with the
    model's own pre- and post-processing."""
    if job is not None:
        job.progress(f"building the model from {plan.config.name} with {plan.builder.name}")
    built = plan.build(job)
    findings.extend(built.findings)
    loaded = LoadedModel(Path(mf.path), mf, "built", built.root, label_map=label_map, findings=findings, built=built)
    loaded.seconds["load"] = time.perf_counter() - start
    if ref is not None:
        t0 = time.perf_counter()
        if job is not None:
            job.progress(f"restoring {ref.name}")
        loaded.report = _restore(mf, ref, built.root, built.description, job)
        loaded.report.notes.extend(built.explain(loaded.report))
        loaded.checkpoint = ref
        loaded.seconds["restore"] = time.perf_counter() - t0
    loaded.detector = built.detector(label_map.label if label_map is not None else None)
    if warmup:
        _warm_up(loaded, job)
    return loaded


def _load_tflite(mf: ModelFolder, label_map: LabelMap | None, findings: list[Finding], start: float, *,
                 signature: str | None, scale: str | None, warmup: bool, job) -> LoadedModel:
    """A ``.tflite`` model, run by LiteRT (see :mod:`.tflite`); there is nothing to restore."""
    from .tflite import open_tflite

    live, detector, key, more, label_map = open_tflite(mf.tflite_file, label_map=label_map, signature=signature,
                                                       scale=scale, job=job)
    findings.extend(more)
    loaded = LoadedModel(Path(mf.path), mf, "tflite", live, signature_name=live.signature, mapping_key=key,
                         detector=detector, label_map=label_map, findings=findings)
    loaded.seconds["load"] = time.perf_counter() - start
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
    elif loaded.how == "tflite":
        key, outputs = loaded.mapping_key, loaded.live.output_specs()
    elif loaded.mapping_key is not None:
        key = loaded.mapping_key
        outputs = signature_io(loaded.live.signatures[key.signature])[1]
    else:
        raise UserError(f"{loaded.path.name} has no signature whose outputs could be mapped")
    current = loaded.detector.mapping if loaded.detector is not None else load_mapping(key)
    return MappingTarget(key, outputs, current)
