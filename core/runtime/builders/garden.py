"""The TensorFlow Model Garden as a builder: ``params.yaml`` → the task it configures → ``build_model()``.

What the Model Garden's exporter (``official/vision/serving/export_saved_model.py``) does with a training
folder, without writing a SavedModel: the experiment's config (``exp_factory.get_exp_config``) overridden
strictly with the folder's ``params.yaml`` (``hyperparams.override_params_dict``), the task's own
``build_model()`` (``task_factory.get_task``), detscope's restore into ``tf.train.Checkpoint(model=…)`` (the
training loop's layout) with its report, and a detector that runs the export module's own serving function
(``DetectionModule.inference_from_image_tensors``: pre-processing, the model, post-processing), so it
detects what the export would serve.

``params.yaml`` does not name its experiment; the task's model type does (read without TensorFlow): RetinaNet,
Faster R-CNN and Mask R-CNN, the detectors the Model Garden's ``DetectionModule`` exports.

The Model Garden (``tf-models-official``) pins the TensorFlow it was released with; it is installed without
its own dependencies, with the few its vision modules import (the ``garden`` extra of detscope).
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Callable

from ...base.findings import INFO, Finding
from ...browse.folders import ModelFolder
from ...detect.conventions import Detector, DetectorError, ImageInput, find_output_mapping
from ...formats.configs import ConfigError, ModelGardenParams, read_params_yaml
from ..report import RestoreError, RestoreReport
from . import BuildPlan, explain_class_head, packaged, register

NAME = "the TensorFlow Model Garden"
MODULE = "official"
PACKAGE = "tf-models-official==2.20.0"
# What ``official.vision`` imports beyond TensorFlow and tf-keras (pyproject.toml's ``garden`` extra).
DEPENDENCIES = ("tensorflow-datasets", "gin-config", "immutabledict", "pycocotools", "matplotlib")
# The experiment whose config a params.yaml of each model type overrides (all its values are in the file).
EXPERIMENTS = {"retinanet": "retinanet_resnetfpn_coco", "fasterrcnn": "fasterrcnn_resnetfpn_coco",
               "maskrcnn": "maskrcnn_resnetfpn_coco"}
EXPORTER = "official.vision.serving.export_saved_model"


# --- recognising a training folder (no TensorFlow) -------------------------------------------------

def _checkpoint_dir(mf: ModelFolder) -> Path:
    ref = mf.selected or mf.latest or (mf.checkpoints[-1] if mf.checkpoints else None)
    return ref.prefix.parent if ref is not None else mf.root


def _params(path: Path, mf: ModelFolder) -> ModelGardenParams | None:
    try:
        return mf.parsed(path, lambda: read_params_yaml(path))
    except ConfigError:
        return None


def find_params_yaml(mf: ModelFolder) -> Path | None:
    """The ``params.yaml`` beside the training checkpoints (here or one folder up), when it reads as one."""
    if not mf.checkpoints or mf.params_yaml is None or (mf.variables_prefix is not None and mf.selected is not None
                                                        and mf.selected.prefix == mf.variables_prefix):
        return None
    return mf.params_yaml if _params(mf.params_yaml, mf) is not None else None


# --- when the framework is not installed -------------------------------------------------------------

def install_line() -> str:
    """How to install the Model Garden into the Python that runs detscope (its own pins ask for an older
    TensorFlow: it goes in without them, its vision modules' imports beside it)."""
    py = shlex.quote(sys.executable)
    return f"{py} -m pip install {' '.join(DEPENDENCIES)} && {py} -m pip install --no-deps {PACKAGE}"


def export_command(plan: BuildPlan) -> str:
    """The Model Garden exporter's command that exports this folder where detscope finds the export."""
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    params = _params(plan.config, plan.folder)
    experiment = EXPERIMENTS.get(params.model_type if params else None, "EXPERIMENT")
    size = params.input_size if params and params.input_size and len(params.input_size) >= 2 else None
    ref = plan.folder.selected or plan.folder.latest
    checkpoint = ref.prefix if ref is not None else _checkpoint_dir(plan.folder)
    out = _checkpoint_dir(plan.folder).resolve() / "export"
    return (f"python -m {EXPORTER} --experiment={experiment} --config_file={q(plan.config.resolve())} "
            f"--checkpoint_path={q(Path(checkpoint).resolve())} --export_dir={q(out)} --batch_size=1 "
            f"--input_image_size={size[0] if size else 'HEIGHT'},{size[1] if size else 'WIDTH'}")


def missing_message(plan: BuildPlan) -> str:
    """One line: what to install, and the alternative (export with the Model Garden elsewhere, or a template).
    The packaged app holds no Model Garden and nothing can be installed into it: there the line says so."""
    what = f"{plan.config.parent.name}/{plan.config.name} is built with {NAME}"
    if packaged():
        return (f"{what}, which this packaged detscope does not include (nothing can be installed into the app); "
                "export the checkpoint in a Python where the Model Garden is installed and open the export here: "
                f"{export_command(plan)} (or give an export of the same model with --template)")
    return (f"{what}, which is not installed for {sys.executable} (install it: {install_line()}); or export the "
            f"checkpoint where it is installed and open this folder again: {export_command(plan)} (or give an "
            "export of the same model with --template)")


# --- the builder --------------------------------------------------------------------------------------------

class ModelGardenModel:
    """A model built by the task's ``build_model()``, its variables made, served by the export module."""

    def __init__(self, plan: BuildPlan, module, params: ModelGardenParams | None, outputs: dict,
                 experiment: str, first_run: float):
        import tensorflow as tf

        self.plan = plan
        self.module = module
        self.params = params
        self.description = f"built from {plan.config.name} with the Model Garden"
        # The training loop's own layout (base_trainer: Checkpoint(global_step=, model=, optimizer=)).
        self.root = tf.train.Checkpoint(model=module.model)
        self.outputs = outputs
        self._serving = None
        what = ", ".join(x for x in (experiment, params.backbone if params else None,
                                     f"num_classes {params.num_classes}" if params and params.num_classes else None)
                         if x)
        self.findings = [Finding(INFO, f"{self.description} ({what}; variables made in {first_run:.1f} s)",
                                 str(plan.config))]

    def explain(self, report: RestoreReport) -> list[str]:
        if self.params is None:
            return []
        # The Model Garden's num_classes counts the background: the head adds no slot of its own.
        return explain_class_head(report, self.params.num_classes, self.plan.config.name, "task.model.num_classes",
                                  f"its backbone{f' ({self.params.backbone})' if self.params.backbone else ''}, "
                                  "decoder, levels or anchors differ", backgrounds=(0,))

    def _serving_fn(self):
        if self._serving is None:
            import tensorflow as tf

            # The export module's own signature function, as the exporter makes it for --input_type image_tensor.
            self._serving = self.module.inference_from_image_tensors.get_concrete_function(
                tf.TensorSpec([1, None, None, 3], tf.uint8))
        return self._serving

    def detector(self, label: Callable[[int], str] | None) -> Detector:
        import tensorflow as tf

        mapping, findings = find_output_mapping(self.outputs)
        if mapping is None:
            raise DetectorError(findings[0].message)

        def call(batch):
            result = self._serving_fn()(tf.constant(batch, tf.uint8))
            return {k: v.numpy() for k, v in result.items()}

        return Detector(call, ImageInput("inputs", "uint8", None, None, 3, 1), mapping, label)


class ModelGarden:
    """``params.yaml`` beside the checkpoints → the task's ``build_model()`` → detscope's restore."""

    name = NAME

    def recognise(self, mf: ModelFolder) -> Path | None:
        return find_params_yaml(mf)

    def available(self) -> bool:
        return importlib.util.find_spec(MODULE) is not None

    def build(self, plan: BuildPlan, job=None) -> ModelGardenModel:
        import time

        if not self.available():
            raise RestoreError(missing_message(plan))
        exp_factory, hyperparams, task_factory, detection = _import_garden(plan)
        params_read = _params(plan.config, plan.folder)
        model_type = params_read.model_type if params_read else None
        experiment = EXPERIMENTS.get(model_type)
        if experiment is None:
            raise RestoreError(f"{plan.config}: detscope builds the Model Garden's RetinaNet, Faster R-CNN and Mask "
                               f"R-CNN; this task.model is {model_type or 'of no model type detscope knows'}: export "
                               f"it with the Model Garden and open the export: {export_command(plan)}")
        try:
            params = exp_factory.get_exp_config(experiment)
            # As the exporter's --config_file: the Model Garden's own YAML reading (it takes 1e-4 for a float).
            # The file has been read safely already (recognise: no Python tags, no alias bombs).
            params = hyperparams.override_params_dict(params, str(plan.config), is_strict=True)
            params.validate()
            params.lock()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a key the experiment does not have
            raise RestoreError(f"{plan.config}: the Model Garden cannot read it as {experiment}: "
                               f"{_first_line(exc)}") from exc
        size = list(params.task.model.input_size[:2])
        try:
            task = task_factory.get_task(params.task)
            model = task.build_model()
            module = detection.DetectionModule(params, batch_size=1, input_image_size=size, model=model)
        except Exception as exc:  # the Model Garden raises ValueError, KeyError, NotImplementedError, ...
            raise RestoreError(f"{plan.config}: the Model Garden could not build the model: "
                               f"{type(exc).__name__}: {_first_line(exc)}") from exc
        if job is not None:
            job.progress("making the model's variables")
            job.check()
        start = time.perf_counter()
        outputs = _first_run(module, size, plan)
        return ModelGardenModel(plan, module, params_read, outputs, experiment, time.perf_counter() - start)


def _import_garden(plan: BuildPlan):
    """``exp_factory``, ``hyperparams``, ``task_factory`` and the detection export module, the vision
    experiments and tasks registered; their import's warnings captured."""
    from ..restore import captured_tf_messages

    with captured_tf_messages():
        try:
            from official.vision import registry_imports  # noqa: F401  (registers the experiments and tasks)
            from official.core import exp_factory, task_factory
            from official.modeling import hyperparams
            from official.vision.serving import detection
        except ImportError as exc:      # installed, but a module its vision code imports is not
            raise RestoreError(f"{plan.config.name} is built with {NAME}, which is installed for {sys.executable} "
                               f"but cannot be imported ({_first_line(exc)}); install what it needs: "
                               f"{install_line()}") from exc
    return exp_factory, hyperparams, task_factory, detection


def _first_run(module, size: list, plan: BuildPlan) -> dict:
    """Serve one blank image eagerly: the model's layers make their variables on first use, and detscope
    restores into variables that exist. Returns the outputs' ``{key: (dtype, shape)}``."""
    import tensorflow as tf

    try:
        outputs = module.serve(tf.zeros([1, *size, 3], tf.uint8))
    except Exception as exc:  # the model the config describes cannot run
        raise RestoreError(f"{plan.config}: the model the Model Garden built cannot run: "
                           f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return {k: (v.dtype.name, (1, *[int(d) if d is not None else None for d in v.shape[1:]]))
            for k, v in outputs.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


register(ModelGarden())
