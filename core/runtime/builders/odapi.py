"""The TensorFlow 2 Object Detection API as a builder: ``pipeline.config`` → the model it describes.

What the tutorials' five lines do (``config_util.get_configs_from_pipeline_file``,
``model_builder.build(model_config, is_training=False)``, ``tf.train.Checkpoint(model=…).restore``,
then ``preprocess`` → ``predict`` → ``postprocess``), with detscope's own restore in place of
``Checkpoint.restore`` (every matched, missing, unused and mismatched value, instead of an error on
the first mismatch or nothing at all with ``expect_partial``), and a detector that computes what the
OD API's exporter (``exporter_lib_v2``) serves: boxes, scores, 1-based classes and multiclass scores.

The OD API is Keras 2 code: ``tf.keras`` must be ``tf_keras`` (``TF_USE_LEGACY_KERAS=1``) when
TensorFlow first resolves it. :func:`~detscope.core.runtime.tfimport.import_tensorflow` sets it
before TensorFlow is imported when the OD API is installed; Keras 3 models still load through
``import keras``, which that flag does not change.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from pathlib import Path
from typing import Callable

from ...base.findings import INFO, Finding
from ...browse.folders import ModelFolder
from ...detect.conventions import Detector, DetectorError, ImageInput, find_output_mapping
from ...formats.configs import ConfigError, PipelineConfig, read_pipeline_config
from ..report import RestoreError, RestoreReport
from . import BuildPlan, explain_class_head, packaged, register

NAME = "the Object Detection API"
MODULE = "object_detection"
REPOSITORY = "https://github.com/tensorflow/models"
LEGACY_KERAS = "TF_USE_LEGACY_KERAS"
_TRUE = ("1", "true", "True")
# A small image for the first, variable-making run (the model resizes it as its config says).
_FIRST_RUN_SIZE = 64


# --- recognising a training folder (no TensorFlow) -------------------------------------------------

def _checkpoint_dir(mf: ModelFolder) -> Path:
    ref = mf.selected or mf.latest or (mf.checkpoints[-1] if mf.checkpoints else None)
    return ref.prefix.parent if ref is not None else mf.root


def _model_config(path: Path, mf: ModelFolder) -> PipelineConfig | None:
    try:
        cfg = mf.parsed(path, lambda: read_pipeline_config(path))
    except ConfigError:
        return None
    return cfg if cfg.model_type else None


def find_pipeline_config(mf: ModelFolder) -> Path | None:
    """The OD API config beside the checkpoints: ``pipeline.config`` (here or one folder up), else a
    ``.config`` named for the folder or the checkpoint, else the one ``.config`` there with a model."""
    if not mf.checkpoints or (mf.variables_prefix is not None and mf.selected is not None
                              and mf.selected.prefix == mf.variables_prefix):
        return None
    if mf.pipeline_config is not None:
        return mf.pipeline_config if _model_config(mf.pipeline_config, mf) is not None else None
    ckpt_dir = _checkpoint_dir(mf)
    for place in dict.fromkeys((ckpt_dir, mf.root)):
        if not place.is_dir():
            continue
        named = [place / f"{n}.config" for n in (ckpt_dir.name, mf.root.name,
                                                 mf.selected.name if mf.selected else "")]
        for candidate in named:
            if candidate.is_file() and _model_config(candidate, mf) is not None:
                return candidate
        configs = [p for p in sorted(place.glob("*.config")) if _model_config(p, mf) is not None]
        if len(configs) == 1:
            return configs[0]
    return None


# --- when the framework is not installed -------------------------------------------------------------

def install_line() -> str:
    """How to install the OD API into the Python that runs detscope (it is not on PyPI)."""
    py = shlex.quote(sys.executable)
    return (f"git clone --depth 1 {REPOSITORY} && cd models/research && "
            "protoc object_detection/protos/*.proto --python_out=. && "
            f"cp object_detection/packages/tf2/setup.py . && {py} -m pip install .")


def export_command(config: Path, checkpoint_dir: Path) -> str:
    """The ``exporter_main_v2.py`` command that exports this folder where detscope finds the export."""
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    return ("python models/research/object_detection/exporter_main_v2.py --input_type image_tensor "
            f"--pipeline_config_path {q(config)} --trained_checkpoint_dir {q(checkpoint_dir)} "
            f"--output_directory {q(checkpoint_dir / 'export')}")


def missing_message(plan: BuildPlan) -> str:
    """One line: what to install, and the alternative (export with the OD API elsewhere, or a template).

    The packaged app holds no OD API and nothing can be installed into it: there the line says so, and
    gives the export command to run in a Python where the OD API is installed."""
    config = plan.config.resolve()
    ckpt_dir = _checkpoint_dir(plan.folder).resolve()
    if packaged():
        return (f"{plan.config.parent.name}/{plan.config.name} is built with the TensorFlow Object Detection API, "
                "which this packaged detscope does not include (nothing can be installed into the app); export "
                "the checkpoint in a Python where the OD API is installed and open the export here: "
                f"{export_command(config, ckpt_dir)} (or give an export of the same model with --template)")
    return (f"{plan.config.parent.name}/{plan.config.name} is built with the TensorFlow Object Detection API, "
            f"which is not installed for {sys.executable} (it is not on PyPI; install it from the models repository: "
            f"{install_line()}); or export the checkpoint where the OD API is installed and open this folder "
            f"again: {export_command(config, ckpt_dir)} (or give an export of the same model with --template)")


# --- tf.keras must be Keras 2 --------------------------------------------------------------------------

def _tf_keras_state(tf) -> str | None:
    """What ``tf.keras`` is in this process: "tf_keras", "keras 3", or None while not yet resolved.

    Reads the lazy loader's own fields, never its attributes (asking it anything resolves it)."""
    loader = vars(tf).get("keras")
    fields = getattr(loader, "__dict__", {})
    if "_tfll_initialized" in fields and not fields["_tfll_initialized"]:
        return None
    name = fields.get("__name__", "") or ""
    version = fields.get("_tfll_keras_version")
    return "tf_keras" if version == "tf_keras" or name.startswith("tf_keras") else "keras 3"


def use_legacy_keras() -> None:
    """Make ``tf.keras`` resolve to ``tf_keras``, or say in one line why it cannot in this process."""
    import tensorflow as tf

    state = _tf_keras_state(tf)
    if state == "tf_keras":
        return
    if state is None:
        if os.environ.get(LEGACY_KERAS, "1") not in _TRUE:
            raise RestoreError(f"the Object Detection API is Keras 2 code, and {LEGACY_KERAS}="
                               f"{os.environ[LEGACY_KERAS]} is set: start detscope with {LEGACY_KERAS}=1")
        if importlib.util.find_spec("tf_keras") is None:
            raise RestoreError("the Object Detection API is Keras 2 code and needs tf-keras: "
                               f"{shlex.quote(sys.executable)} -m pip install tf-keras")
        os.environ[LEGACY_KERAS] = "1"     # read by TensorFlow when tf.keras is first used
        return
    raise RestoreError("the Object Detection API is Keras 2 code, but tf.keras is already Keras 3 in this "
                       f"process: start detscope with {LEGACY_KERAS}=1")


# --- what a num_classes change looks like ----------------------------------------------------------------

def explain_mismatches(report: RestoreReport, cfg: PipelineConfig | None) -> list[str]:
    """Notes saying which config value explains the report's shape mismatches (no TensorFlow)."""
    if not report.shape_mismatches or cfg is None:
        return []
    extractor = f" ({cfg.feature_extractor_type})" if cfg.feature_extractor_type else ""
    return explain_class_head(report, cfg.num_classes, cfg.path.name if cfg.path else "pipeline.config",
                              f"model.{cfg.model_type}.num_classes",
                              f"its feature extractor{extractor}, box predictor depth or anchors differ")


# --- the builder --------------------------------------------------------------------------------------------

class ObjectDetectionAPIModel:
    """A model built by ``model_builder.build(model_config, is_training=False)``, its variables made."""

    def __init__(self, plan: BuildPlan, model, cfg: PipelineConfig | None, outputs: dict, first_run: float):
        import tensorflow as tf

        self.plan = plan
        self.model = model
        self.cfg = cfg
        self.description = f"built from {plan.config.name} with the Object Detection API"
        # The training loop's own layout (model_lib_v2: Checkpoint(step=, model=, optimizer=)), so the
        # report's keys read as the checkpoint's do.
        self.root = tf.train.Checkpoint(model=model)
        self.outputs = outputs
        self._serving = None
        what = ", ".join(x for x in (cfg.model_type if cfg else None, cfg.feature_extractor_type if cfg else None,
                                     f"{cfg.num_classes} classes" if cfg and cfg.num_classes else None) if x)
        self.findings = [Finding(INFO, f"{self.description} ({what}; variables made in {first_run:.1f} s)",
                                 str(plan.config))]

    def explain(self, report: RestoreReport) -> list[str]:
        return explain_mismatches(report, self.cfg)

    def serve(self, input_tensor):
        """What ``exporter_lib_v2.DetectionFromImageModule`` serves, op for op."""
        import tensorflow as tf

        model = self.model

        def one(image):
            image, true_shape = model.preprocess(tf.cast(image, tf.float32)[tf.newaxis])
            return image[0], true_shape[0]

        images, true_shapes = tf.map_fn(one, input_tensor, parallel_iterations=32,
                                        fn_output_signature=(tf.float32, tf.int32))
        detections = model.postprocess(model.predict(images, true_shapes), true_shapes)
        detections["detection_classes"] = tf.cast(detections["detection_classes"], tf.float32) + 1
        return {k: tf.cast(v, tf.float32) for k, v in detections.items()}

    def _serving_fn(self):
        if self._serving is None:
            import tensorflow as tf

            # No AutoGraph: the OD API writes its control flow with tf.cond/tf.while_loop itself, and
            # converting its code takes five times as long as tracing it.
            self._serving = tf.function(self.serve, autograph=False, input_signature=[
                tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        return self._serving

    def detector(self, label: Callable[[int], str] | None) -> Detector:
        import tensorflow as tf

        mapping, findings = find_output_mapping(self.outputs)
        if mapping is None:
            raise DetectorError(findings[0].message)
        multi = self.outputs.get(mapping.multiclass_scores or "", (None, None))[1]
        num_classes = self.cfg.num_classes if self.cfg is not None else None
        if multi and num_classes and multi[-1] == num_classes:
            mapping.multiclass_background = False     # CenterNet: one column per class, no background

        def call(batch):
            result = self._serving_fn()(tf.constant(batch, tf.uint8))
            return {k: v.numpy() for k, v in result.items()}

        return Detector(call, ImageInput("input_tensor", "uint8", None, None, 3, 1), mapping, label)


class ObjectDetectionAPI:
    """``pipeline.config`` beside the checkpoints → ``model_builder.build`` → detscope's restore."""

    name = NAME

    def recognise(self, mf: ModelFolder) -> Path | None:
        return find_pipeline_config(mf)

    def available(self) -> bool:
        return importlib.util.find_spec(MODULE) is not None

    def build(self, plan: BuildPlan, job=None) -> ObjectDetectionAPIModel:
        import time

        if not self.available():
            raise RestoreError(missing_message(plan))
        use_legacy_keras()
        config_util, model_builder = _import_od_api(plan)
        try:
            configs = config_util.get_configs_from_pipeline_file(str(plan.config))
        except Exception as exc:  # text_format.ParseError and the like: the config is the user's file
            raise RestoreError(f"{plan.config}: the Object Detection API cannot read it: {_first_line(exc)}") from exc
        try:
            model = model_builder.build(model_config=configs["model"], is_training=False)
        except Exception as exc:  # the OD API raises ValueError, KeyError, NotImplementedError, ...
            raise RestoreError(f"{plan.config}: the Object Detection API could not build the model: "
                               f"{type(exc).__name__}: {_first_line(exc)}") from exc
        if job is not None:
            job.progress("making the model's variables")
            job.check()
        start = time.perf_counter()
        outputs = _first_run(model, plan)
        try:
            cfg = plan.folder.parsed(plan.config, lambda: read_pipeline_config(plan.config))
        except ConfigError:
            cfg = None
        return ObjectDetectionAPIModel(plan, model, cfg, outputs, time.perf_counter() - start)


def _import_od_api(plan: BuildPlan):
    """``config_util`` and ``model_builder``, their import's warnings captured (tensorflow_io's compiled
    ops do not load on every TensorFlow, and say so; the OD API does not need them)."""
    from ..restore import captured_tf_messages

    with captured_tf_messages():
        try:
            from object_detection.builders import model_builder
            from object_detection.utils import config_util
        except ImportError as exc:      # installed but broken (its protos not compiled, a dependency missing)
            raise RestoreError(f"{plan.config.name} is built with the TensorFlow Object Detection API, which is "
                               f"installed for {sys.executable} but cannot be imported ({_first_line(exc)}); "
                               f"install it again from the models repository: {install_line()}") from exc
    return config_util, model_builder


def _first_run(model, plan: BuildPlan) -> dict:
    """Run the model once, eagerly, on a blank image: the OD API makes its variables on first use, and
    detscope restores into variables that exist. Returns the outputs' ``{key: (dtype, shape)}``."""
    import tensorflow as tf

    try:
        images, shapes = model.preprocess(tf.zeros([1, _FIRST_RUN_SIZE, _FIRST_RUN_SIZE, 3], tf.float32))
        detections = model.postprocess(model.predict(images, shapes), shapes)
    except Exception as exc:  # the model the config describes cannot run
        raise RestoreError(f"{plan.config}: the model the Object Detection API built cannot run: "
                           f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return {k: ("float32", (1, *[int(d) if d is not None else None for d in v.shape[1:]]))
            for k, v in detections.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


register(ObjectDetectionAPI())
