"""Turn any detector signature into :class:`~detscope.core.detect.detections.Detections`.

Two halves, both free of TensorFlow so they can be checked and configured anywhere:

- :func:`find_image_input` picks the image input of a signature (``input_tensor``
  from the OD API exporter, ``inputs`` from the TF1 exporter and the Model Garden,
  ``images``, ...), its dtype, fixed or free size and batch; :func:`prepare` makes
  an RGB ``uint8`` image into what that input takes.
- :func:`find_output_mapping` reads the outputs by convention (a small registry:
  OD API, Model Garden, Keras-style); :func:`decode` turns output arrays into
  detections in original image pixels. Outputs no convention explains get a
  "raw outputs" finding, and a user can write an :class:`OutputMapping` by hand
  (kept by :mod:`.mappings` in detscope's own data folder, never in the model folder).

:class:`Detector` joins them around a callable; :mod:`detscope.core.runtime.signatures` builds
one around a TensorFlow signature (run on the engine thread).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Callable

import numpy as np

from .detections import Detections
from ..base.errors import UserError
from ..base.findings import ERROR, Finding


class DetectorError(UserError):
    """A signature that cannot be used as a detector; one line saying why."""


# --- inputs -------------------------------------------------------------------------------------

IMAGE_INPUT_NAMES = ("input_tensor", "inputs", "images", "image", "input_image", "input", "x", "input_1")


@dataclass(frozen=True)
class ImageInput:
    key: str                      # the keyword the signature is called with
    dtype: str                    # NumPy spelling
    height: int | None            # None: any size (the image is fed at its own size)
    width: int | None
    channels: int = 3
    batch: int | None = 1         # None: any batch
    scale: str = "0..255"         # float inputs: "0..255", "0..1" or "-1..1"

    @property
    def fixed_size(self) -> bool:
        return self.height is not None and self.width is not None


def find_image_input(inputs: dict[str, tuple[str, tuple | None]], scale: str | None = None) -> ImageInput:
    """The image input among ``{key: (dtype, shape)}``: a 4-D (or 3-D) input with 1 or 3 channels."""
    def rank_ok(shape):
        return shape is not None and len(shape) in (3, 4) and shape[-1] in (None, -1, 1, 3)

    candidates = [k for k in IMAGE_INPUT_NAMES if k in inputs and rank_ok(inputs[k][1])]
    candidates += sorted(k for k, (_, shape) in inputs.items() if rank_ok(shape) and k not in candidates)
    if not candidates:
        described = ", ".join(f"{k} {d} {list(s) if s is not None else '?'}" for k, (d, s) in inputs.items())
        raise DetectorError(f"no image input among the signature's inputs ({described or 'none'})")
    key = candidates[0]
    dtype, shape = inputs[key]
    dims = [None if d is None or d == -1 else int(d) for d in shape]
    if len(dims) == 3:
        dims = [None, *dims]  # an unbatched input: prepare() still adds no batch dimension
        batch = 0
    else:
        batch = dims[0]
    h, w, c = dims[1], dims[2], dims[3] or 3
    if scale is None:
        scale = "0..255"
    return ImageInput(key, dtype, h, w, c, batch, scale)


def prepare(image: np.ndarray, spec: ImageInput) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` image as the input takes it (resized only when the size is fixed)."""
    img = image
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if spec.channels == 1 and img.shape[-1] == 3:
        import cv2  # OpenCV is loaded only by models that need a conversion

        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
    if spec.fixed_size and (img.shape[0] != spec.height or img.shape[1] != spec.width):
        import cv2

        img = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if img.ndim == 2:
            img = img[..., None]
    if spec.dtype == "uint8":
        out = img.astype(np.uint8, copy=False)
    else:
        out = img.astype(np.float32)
        if spec.scale == "0..1":
            out /= 255.0
        elif spec.scale == "-1..1":
            out = out / 127.5 - 1.0
        out = out.astype(np.dtype(spec.dtype) if spec.dtype in ("float16", "float64") else np.float32)
    return out if spec.batch == 0 else out[None]


# --- outputs ------------------------------------------------------------------------------------

BOX_LAYOUTS = ("yxyx", "xyxy", "xywh", "cxcywh")


@dataclass
class OutputMapping:
    """Which output is what. ``convention`` names where it came from ("od_api", ..., "user")."""

    boxes: str
    scores: str | None = None
    classes: str | None = None
    num_detections: str | None = None
    multiclass_scores: str | None = None
    multiclass_background: bool = True   # column 0 of the multiclass scores is the background
    image_info: str | None = None        # Model Garden: [original size, scaled size, scale, offset]
    masks: str | None = None
    keypoints: str | None = None
    box_layout: str = "yxyx"
    normalized: bool | None = None       # None: decide per image (all coordinates within 0..1.5)
    class_offset: int = 0                # added to the model's class values to give label-map ids
    convention: str = "user"

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "OutputMapping":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise DetectorError(f"output mapping has unknown fields: {', '.join(sorted(unknown))}")
        if "boxes" not in data:
            raise DetectorError("output mapping must name the boxes output")
        mapping = cls(**data)
        if mapping.box_layout not in BOX_LAYOUTS:
            raise DetectorError(f"box layout {mapping.box_layout!r} is not one of {', '.join(BOX_LAYOUTS)}")
        return mapping


Outputs = dict[str, tuple[str, tuple | None]]   # key -> (dtype, shape)


def _od_api(outputs: Outputs) -> OutputMapping | None:
    if not {"detection_boxes", "detection_scores"} <= set(outputs):
        return None
    mg = "image_info" in outputs
    return OutputMapping(
        boxes="detection_boxes", scores="detection_scores",
        classes="detection_classes" if "detection_classes" in outputs else None,
        num_detections="num_detections" if "num_detections" in outputs else None,
        multiclass_scores="detection_multiclass_scores" if "detection_multiclass_scores" in outputs else None,
        image_info="image_info" if mg else None,
        masks="detection_masks" if "detection_masks" in outputs else None,
        keypoints="detection_keypoints" if "detection_keypoints" in outputs else None,
        box_layout="yxyx", normalized=True if not mg else None, class_offset=0,
        convention="model_garden" if mg else "od_api")


def _keras_style(outputs: Outputs) -> OutputMapping | None:
    if "boxes" not in outputs:
        return None
    scores = next((k for k in ("confidence", "scores", "score") if k in outputs), None)
    classes = next((k for k in ("classes", "labels", "class_ids") if k in outputs), None)
    if scores is None:
        return None
    return OutputMapping(boxes="boxes", scores=scores, classes=classes,
                         num_detections="num_detections" if "num_detections" in outputs else None,
                         box_layout="xyxy", normalized=None, class_offset=0, convention="keras")


def _numbered_od_api(outputs: Outputs) -> OutputMapping | None:
    """TF1-exported or converted graphs whose outputs kept only positional names (output_0..3)."""
    keys = set(outputs)
    if not {"output_0", "output_1", "output_2", "output_3"} <= keys:
        return None
    shapes = {k: outputs[k][1] for k in ("output_0", "output_1", "output_2", "output_3")}
    if shapes["output_0"] is None or len(shapes["output_0"]) != 3 or shapes["output_0"][-1] != 4:
        return None
    return OutputMapping(boxes="output_0", classes="output_1", scores="output_2", num_detections="output_3",
                         box_layout="yxyx", normalized=True, convention="od_api_numbered")


CONVENTIONS: list[Callable[[Outputs], OutputMapping | None]] = [_od_api, _keras_style, _numbered_od_api]


def find_output_mapping(outputs: Outputs) -> tuple[OutputMapping | None, list[Finding]]:
    """The first convention that explains the outputs, or None with a finding that says why."""
    for convention in CONVENTIONS:
        mapping = convention(outputs)
        if mapping is not None:
            return mapping, []
    described = ", ".join(f"{k} {list(s) if s is not None else '?'}" for k, (_, s) in sorted(outputs.items()))
    rawish = any(s is not None and len(s) == 3 and (s[1] or 0) > 300 for _, s in outputs.values())
    if rawish:
        msg = (f"raw outputs, not decodable without anchors ({described}); map the outputs by hand "
               "or export the model with its post-processing")
    else:
        msg = f"outputs follow no known detection convention ({described}); map them by hand"
    return None, [Finding(ERROR, msg)]


def _to_xyxy(boxes: np.ndarray, layout: str) -> np.ndarray:
    b = boxes.astype(np.float32, copy=True)
    if layout == "yxyx":
        return b[:, [1, 0, 3, 2]]
    if layout == "xyxy":
        return b
    if layout == "xywh":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    if layout == "cxcywh":
        return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                         b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1)
    raise DetectorError(f"unknown box layout {layout!r}")


def decode(outputs: dict[str, np.ndarray], mapping: OutputMapping, width: int, height: int,
           input_size: tuple[int, int] | None = None, label: Callable[[int], str] | None = None) -> Detections:
    """Output arrays (batch of one) as detections in original image pixels.

    ``input_size`` is the ``(width, height)`` the image was fed at when it was
    resized for a fixed-size input; pixel boxes are scaled back from it.
    """
    def first(key):
        if key is None:
            return None
        if key not in outputs:
            raise DetectorError(f"the signature has no output {key!r}")
        a = np.asarray(outputs[key])
        return a[0] if a.ndim >= 1 and a.shape[0] == 1 else a

    boxes = first(mapping.boxes).reshape(-1, 4)
    n = len(boxes)
    if mapping.num_detections is not None:
        n = min(n, int(np.asarray(first(mapping.num_detections)).reshape(-1)[0]))
    scores = first(mapping.scores)
    scores = np.ones(len(boxes), np.float32) if scores is None else scores.reshape(-1).astype(np.float32)
    classes = first(mapping.classes)
    classes = np.zeros(len(boxes), np.int64) if classes is None else np.rint(classes.reshape(-1)).astype(np.int64)
    boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
    keep = classes >= 0 if mapping.convention == "keras" else np.ones(n, bool)  # -1 pads Keras-style rows
    xyxy = _to_xyxy(boxes, mapping.box_layout)

    if mapping.image_info is not None:
        info = first(mapping.image_info).reshape(-1, 2)   # rows: original, scaled, scale, offset (y, x)
        scale_y, scale_x = float(info[2][0]) or 1.0, float(info[2][1]) or 1.0
        off_y, off_x = float(info[3][0]), float(info[3][1])
        xyxy = (xyxy + [off_x, off_y, off_x, off_y]) / [scale_x, scale_y, scale_x, scale_y]
    else:
        normalized = mapping.normalized
        if normalized is None:
            normalized = bool(len(xyxy) == 0 or float(np.abs(xyxy[keep]).max(initial=0.0)) <= 1.5)
        if normalized:
            xyxy = xyxy * [width, height, width, height]
        elif input_size is not None and tuple(input_size) != (width, height):
            sx, sy = width / input_size[0], height / input_size[1]
            xyxy = xyxy * [sx, sy, sx, sy]
    xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
    class_ids = classes + mapping.class_offset

    multi = first(mapping.multiclass_scores)
    columns: tuple[int, ...] = ()
    if multi is not None:
        multi = multi.reshape(len(first(mapping.boxes).reshape(-1, 4)), -1)[:n]
        start = 0 if mapping.multiclass_background else 1
        columns = tuple(-1 if (mapping.multiclass_background and i == 0) else i + start
                        for i in range(multi.shape[1]))
    extras = {}
    for name, key in (("masks", mapping.masks), ("keypoints", mapping.keypoints)):
        arr = first(key)
        if arr is not None:
            extras[name] = arr[:n][keep]
    label = label or (lambda i: f"class {i}")
    class_ids = class_ids[keep]
    return Detections.build(xyxy[keep], scores[keep], class_ids, [label(int(c)) for c in class_ids],
                            width, height, None if multi is None else multi[keep], columns, extras)


# --- the detector -------------------------------------------------------------------------------

@dataclass
class Detector:
    """A callable signature with its image input and output mapping. Call it on the engine thread."""

    call: Callable[[np.ndarray], dict[str, np.ndarray]]   # batch -> output arrays
    image_input: ImageInput
    mapping: OutputMapping
    label: Callable[[int], str] | None = None

    def __call__(self, image: np.ndarray) -> Detections:
        if image.ndim not in (2, 3):
            raise DetectorError(f"an image must be H x W (x C); got shape {image.shape}")
        h, w = image.shape[:2]
        batch = prepare(image, self.image_input)
        outputs = self.call(batch)
        fed = (batch.shape[-2], batch.shape[-3])
        return decode(outputs, self.mapping, w, h, input_size=fed, label=self.label)
