"""Training configs: the OD API's ``pipeline.config`` and the Model Garden's ``params.yaml``.

detscope reads only what a tester needs before trusting a model's output: the
model type, the number of classes, the input size, how many detections come out
and which label map and checkpoint the run used. Everything else stays in
``raw`` for the viewer.

``pipeline.config`` is protobuf text format, read without a schema by
:mod:`.textproto` (detscope does not declare the OD API's hundreds of config messages).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..base.files import read_text
from ..base.findings import INFO, WARNING, Finding
from .textproto import TextFormatError, as_list, get_path, parse_text_proto  # noqa: F401  (as_list, get_path: part of this API)

PLACEHOLDER = "PATH_TO_BE_CONFIGURED"

# How many folders above a config detscope looks for a file named in it (see _locate).
_SEARCH_LEVELS = 3


class ConfigError(TextFormatError):
    """A config detscope cannot read; the message is one line naming the file and the cause."""


# --- shared helpers ---------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    return read_text(path, ConfigError, "config file")


def _split_any(path: str) -> list[str]:
    """The parts of a path written on any machine (``/`` or ``\\`` separators, a drive)."""
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("/", "", ".")]
    if parts and parts[0].endswith(":"):
        parts = parts[1:]
    return parts


@dataclass
class _Located:
    path: Path | None
    how: str  # "as written", "trailing", "beside" or "missing"


def _locate(written: str, base: Path) -> _Located:
    """Where a file named in a config is on this machine, if anywhere.

    Tried in order: the path as written (absolute, or relative to the config's
    folder); its trailing parts (two or more, longest first) under the config's
    folder and up to three folders above it, which finds a training workspace
    copied elsewhere; a file of the same name beside the config.
    """
    p = Path(written)
    if p.is_absolute() and p.is_file():
        return _Located(p, "as written")
    if not p.is_absolute() and (base / p).is_file():
        return _Located(base / p, "as written")
    parts = _split_any(written)
    if not parts:
        return _Located(None, "missing")
    places = [base, *list(base.parents)[:_SEARCH_LEVELS]]
    for n in range(len(parts) - 1, 1, -1):
        tail = Path(*parts[-n:])
        for place in places:
            if (place / tail).is_file():
                return _Located(place / tail, "trailing")
    if (base / parts[-1]).is_file():
        return _Located(base / parts[-1], "beside")
    return _Located(None, "missing")


def _relative(p: Path, base: Path) -> str:
    return os.path.relpath(p, base)


def _where_finding(key: str, written: str, found: _Located, base: Path, file: str) -> Finding | None:
    if found.how == "as written":
        return None
    name = _split_any(written)[-1] if _split_any(written) else written
    head = (f"{key} '{written}' does not exist relative to the config's folder "
            f"(paths in a config are usually the training machine's)")
    if found.how == "trailing":
        tail = f"; found {_relative(found.path, base)} by its trailing path"
    elif found.how == "beside":
        tail = f"; a file named {name} is beside the config"
    else:
        tail = f"; no file named {name} beside the config either"
    return Finding(INFO, head + tail, file)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num_or_none(v: Any) -> float | int | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


# --- pipeline.config ------------------------------------------------------------------------

_PIPELINE_KEYS = ("model", "train_config", "train_input_reader", "eval_config", "eval_input_reader",
                  "graph_rewriter")

# Where each meta-architecture keeps its non-max suppression.
_NMS_PATHS = {
    "ssd": "post_processing.batch_non_max_suppression",
    "faster_rcnn": "second_stage_post_processing.batch_non_max_suppression",
}


@dataclass
class PipelineConfig:
    """The parts of an OD API ``pipeline.config`` a tester needs.

    Fields are ``None`` where the config does not write them (the OD API then uses
    its defaults, e.g. 100 detections). ``label_map_found`` is where the label map
    named by ``label_map_path`` is on this machine, if detscope found it.
    """

    path: Path | None
    raw: dict
    model_type: str | None = None
    num_classes: int | None = None
    image_resizer: dict | None = None
    max_detections: int | None = None
    score_threshold: float | None = None
    feature_extractor_type: str | None = None
    fine_tune_checkpoint: str | None = None
    fine_tune_checkpoint_type: str | None = None
    label_map_path: str | None = None
    batch_size: int | None = None
    num_steps: int | None = None
    label_map_found: Path | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def model(self) -> dict:
        """The meta-architecture's block (``model.ssd`` and so on), empty when absent."""
        block = get_path(self.raw, ["model", self.model_type]) if self.model_type else None
        return block if isinstance(block, dict) else {}

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(height, width) the model resizes images to, when the resizer fixes it."""
        r = self.image_resizer or {}
        if r.get("type") == "fixed_shape_resizer":
            h, w = _int_or_none(r.get("height")), _int_or_none(r.get("width"))
            return (h, w) if h and w else None
        if r.get("type") == "keep_aspect_ratio_resizer" and r.get("pad_to_max_dimension") is True:
            m = _int_or_none(r.get("max_dimension"))
            return (m, m) if m else None
        return None

    @property
    def anchors_per_location(self) -> int | None:
        """Anchors per feature-map cell of the class head (SSD and the first stage of Faster R-CNN).

        With ``ssd_anchor_generator`` the lowest layer may have fewer boxes; this is
        the count of the other layers.
        """
        gen = self.model.get("anchor_generator") or self.model.get("first_stage_anchor_generator")
        if not isinstance(gen, dict) or not gen:
            return None
        kind, spec = next(iter(gen.items()))
        spec = spec if isinstance(spec, dict) else {}
        ratios = len(as_list(spec.get("aspect_ratios")))
        if kind == "multiscale_anchor_generator":
            per_octave = _int_or_none(spec.get("scales_per_octave"))
            return (ratios or 3) * (per_octave if per_octave is not None else 2)
        if kind == "ssd_anchor_generator":
            extra = spec.get("interpolated_scale_aspect_ratio", 1.0)
            return ratios + (1 if _num_or_none(extra) and extra > 0 else 0) if ratios else None
        if kind == "grid_anchor_generator":
            scales = len(as_list(spec.get("scales")))
            return scales * ratios if scales and ratios else None
        return None

    def as_json(self) -> dict:
        return {
            "path": str(self.path) if self.path else None,
            "model_type": self.model_type,
            "num_classes": self.num_classes,
            "image_resizer": self.image_resizer,
            "input_size": list(self.input_size) if self.input_size else None,
            "max_detections": self.max_detections,
            "score_threshold": self.score_threshold,
            "feature_extractor_type": self.feature_extractor_type,
            "fine_tune_checkpoint": self.fine_tune_checkpoint,
            "fine_tune_checkpoint_type": self.fine_tune_checkpoint_type,
            "label_map_path": self.label_map_path,
            "label_map_found": str(self.label_map_found) if self.label_map_found else None,
            "batch_size": self.batch_size,
            "num_steps": self.num_steps,
            "findings": [f.as_json() for f in self.findings],
        }


def read_pipeline_config(path: str | Path) -> PipelineConfig:
    """Read an OD API ``pipeline.config``; :class:`ConfigError` when it cannot be parsed."""
    path = Path(path)
    return pipeline_config_from_text(_read_text(path), path)


def pipeline_config_from_text(text: str, path: str | Path | None = None) -> PipelineConfig:
    """As :func:`read_pipeline_config` for text already in memory; ``path`` names it in messages
    and is where files named in the config are looked for."""
    path = Path(path) if path is not None else None
    name = str(path) if path else "pipeline.config"
    try:
        raw = parse_text_proto(text, source=name)
    except TextFormatError as exc:
        raise ConfigError(str(exc)) from None
    if not any(k in raw for k in _PIPELINE_KEYS):
        found = ", ".join(list(raw)[:4]) or "nothing"
        raise ConfigError(f"{name}: not a pipeline.config (no model, train_config or input reader; found {found})")

    cfg = PipelineConfig(path, raw)
    file = str(path) if path else None
    model = raw.get("model")
    if isinstance(model, list):
        model = model[0]
    if isinstance(model, dict) and model:
        cfg.model_type = next(iter(model))
    else:
        cfg.findings.append(Finding(WARNING, "no model { } block: the model type and class count are unknown", file))
    m = cfg.model

    cfg.num_classes = _int_or_none(m.get("num_classes"))
    if cfg.model_type and cfg.num_classes is None:
        cfg.findings.append(Finding(WARNING, f"num_classes is missing from model.{cfg.model_type}", file))

    resizer = m.get("image_resizer")
    if isinstance(resizer, dict) and resizer:
        kind, spec = next(iter(resizer.items()))
        cfg.image_resizer = {"type": kind, **(spec if isinstance(spec, dict) else {})}

    cfg.feature_extractor_type = _str_or_none(get_path(m, "feature_extractor.type"))
    if cfg.model_type == "center_net":
        cfg.max_detections = _int_or_none(m.get("max_box_predictions"))
    else:
        nms = get_path(m, _NMS_PATHS.get(cfg.model_type, _NMS_PATHS["ssd"]))
        if isinstance(nms, dict):
            cfg.max_detections = _int_or_none(nms.get("max_total_detections"))
            cfg.score_threshold = _num_or_none(nms.get("score_threshold"))

    train = get_path(raw, "train_config") or {}
    cfg.fine_tune_checkpoint = _str_or_none(get_path(train, "fine_tune_checkpoint"))
    cfg.fine_tune_checkpoint_type = _str_or_none(get_path(train, "fine_tune_checkpoint_type"))
    cfg.batch_size = _int_or_none(get_path(train, "batch_size"))
    cfg.num_steps = _int_or_none(get_path(train, "num_steps"))
    if cfg.fine_tune_checkpoint == PLACEHOLDER:
        cfg.findings.append(Finding(WARNING, f"fine_tune_checkpoint is still {PLACEHOLDER}: this is the Model "
                                             f"Zoo's template, not the config a training run used", file))

    # eval_input_reader is repeated in the schema; the first one naming a label map wins.
    readers = as_list(raw.get("eval_input_reader")) + as_list(raw.get("train_input_reader"))
    for reader in readers:
        if isinstance(reader, dict) and isinstance(reader.get("label_map_path"), str):
            cfg.label_map_path = reader["label_map_path"]
            break
    if cfg.label_map_path == PLACEHOLDER:
        cfg.findings.append(Finding(INFO, f"label_map_path is still {PLACEHOLDER}: the config names no "
                                          f"label map", file))
    elif cfg.label_map_path and path is not None:
        found = _locate(cfg.label_map_path, path.parent)
        cfg.label_map_found = found.path
        note = _where_finding("label_map_path", cfg.label_map_path, found, path.parent, file)
        if note:
            cfg.findings.append(note)
    return cfg


# --- Model Garden params.yaml -----------------------------------------------------------------

# How many values a params.yaml may stand for once its aliases are expanded (real ones: about a thousand).
# Aliases let a few lines stand for billions of values ("billion laughs"); whatever walks them would hang.
YAML_MAX_VALUES = 1_000_000


def _safe_yaml(yaml, text: str, name: str):
    """``yaml.safe_load``, refusing a document whose aliases expand to more than YAML_MAX_VALUES values."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(yaml, node) > YAML_MAX_VALUES:
            raise ConfigError(f"{name}: its aliases expand to more than {YAML_MAX_VALUES:,} values; "
                              "not a real params.yaml")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_values(yaml, root) -> int:
    """How many nodes a YAML node graph stands for with every alias expanded (no recursion; cycles once)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.SequenceNode):
            kids = node.value
        elif isinstance(node, yaml.MappingNode):
            kids = [k for pair in node.value for k in pair]
        else:
            kids = []
        if ready:
            busy.discard(key)
            sizes[key] = min(1 + sum(sizes.get(id(k), 1) for k in kids), YAML_MAX_VALUES + 1)
        elif key not in busy:
            busy.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes and id(k) not in busy)
    return sizes[id(root)]

@dataclass
class ModelGardenParams:
    """The parts of a TF Model Garden ``params.yaml`` (``task.model`` and friends) a tester needs.

    ``num_classes`` is what the file says. The Model Garden's RetinaNet and Mask
    R-CNN count the background in it (COCO: 91), YOLO does not (COCO: 80);
    :attr:`foreground_classes` gives the count comparable with the OD API's.
    """

    path: Path | None
    raw: dict
    model_type: str | None = None
    num_classes: int | None = None
    input_size: list | None = None
    max_detections: int | None = None
    score_threshold: float | None = None
    backbone: str | None = None
    init_checkpoint: str | None = None
    annotation_file: str | None = None
    annotation_found: Path | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def foreground_classes(self) -> int | None:
        """Classes without the background, where the model type says how to count them."""
        if self.num_classes is None:
            return None
        if self.model_type in ("retinanet", "maskrcnn", "fasterrcnn"):
            return self.num_classes - 1
        if self.model_type == "yolo":
            return self.num_classes
        return None

    def as_json(self) -> dict:
        return {
            "path": str(self.path) if self.path else None,
            "model_type": self.model_type,
            "num_classes": self.num_classes,
            "foreground_classes": self.foreground_classes,
            "input_size": self.input_size,
            "max_detections": self.max_detections,
            "score_threshold": self.score_threshold,
            "backbone": self.backbone,
            "init_checkpoint": self.init_checkpoint,
            "annotation_file": self.annotation_file,
            "annotation_found": str(self.annotation_found) if self.annotation_found else None,
            "findings": [f.as_json() for f in self.findings],
        }


def _garden_model_type(model: dict) -> str | None:
    if any(k in model for k in ("rpn_head", "roi_sampler", "roi_generator", "mask_head")):
        return "maskrcnn" if model.get("include_mask") is True else "fasterrcnn"
    decoder = str(get_path(model, "decoder.type") or "")
    backbone = str(get_path(model, "backbone.type") or "")
    generator = get_path(model, "detection_generator") or {}
    if ("yolo" in decoder or backbone == "darknet" or "anchor_boxes" in model
            or (isinstance(generator, dict) and "box_type" in generator)):
        return "yolo"
    if "head" in model and ("anchor" in model or "detection_generator" in model):
        return "retinanet"
    return None


def read_params_yaml(path: str | Path) -> ModelGardenParams:
    """Read a Model Garden ``params.yaml``; :class:`ConfigError` when it cannot be parsed."""
    path = Path(path)
    return params_yaml_from_text(_read_text(path), path)


def params_yaml_from_text(text: str, path: str | Path | None = None) -> ModelGardenParams:
    """As :func:`read_params_yaml` for text already in memory."""
    import yaml  # only Model Garden folders need it

    path = Path(path) if path is not None else None
    name = str(path) if path else "params.yaml"
    try:
        raw = _safe_yaml(yaml, text, name)
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply to be a params.yaml") from None
    except (ValueError, OverflowError, TypeError) as exc:  # a timestamp such as 2020-13-45, and the like
        raise ConfigError(f"{name}: invalid YAML ({' '.join(str(exc).split())})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        cause = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{name}: {where}{cause}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: not a Model Garden params.yaml (the top level is not a mapping)")
    task = raw.get("task") if isinstance(raw.get("task"), dict) else None
    if task is None and isinstance(raw.get("model"), dict):
        task = raw  # a task section saved on its own
    if task is None:
        raise ConfigError(f"{name}: not a Model Garden params.yaml (no task: section)")

    file = str(path) if path else None
    p = ModelGardenParams(path, raw)
    model = task.get("model") if isinstance(task.get("model"), dict) else {}
    if not model:
        p.findings.append(Finding(WARNING, "no task.model section: the model type and class count are unknown",
                                  file))
    p.model_type = _garden_model_type(model) if model else None
    p.num_classes = _int_or_none(model.get("num_classes"))
    if model and p.num_classes is None:
        p.findings.append(Finding(WARNING, "num_classes is missing from task.model", file))
    size = model.get("input_size")
    p.input_size = list(size) if isinstance(size, (list, tuple)) else None
    p.backbone = _str_or_none(get_path(model, "backbone.type"))
    gen = model.get("detection_generator") if isinstance(model.get("detection_generator"), dict) else {}
    p.max_detections = _int_or_none(gen.get("max_num_detections", gen.get("max_boxes")))
    p.score_threshold = _num_or_none(gen.get("pre_nms_score_threshold"))
    p.init_checkpoint = _str_or_none(task.get("init_checkpoint")) or None
    p.annotation_file = _str_or_none(task.get("annotation_file")) or None
    if p.annotation_file and path is not None:
        found = _locate(p.annotation_file, path.parent)
        p.annotation_found = found.path
        note = _where_finding("annotation_file", p.annotation_file, found, path.parent, file)
        if note:
            p.findings.append(note)
    return p


# --- consistency of class counts --------------------------------------------------------------
