"""Running a ``.tflite`` model with LiteRT (``ai-edge-litert``) on the engine thread.

``tf.lite.Interpreter`` is used only where LiteRT is not installed. :func:`open_tflite` builds the
interpreter, finds the image input and reads the outputs; everything it returns belongs to the engine
thread, like every other live model.

Inputs: float inputs take pixels in the range the user chose (``--scale``, 0..255 by default);
quantised uint8/int8 inputs are quantised with the scale and zero point the model carries, from the
float range those parameters cover (``[s * (qmin - zp), s * (qmax - zp)]`` read as 0..255, 0..1 or
-1..1) unless ``--scale`` says otherwise; plain uint8 inputs take the pixels as they are. A free
input size (``shape_signature`` -1) is fed at the image's own size, resizing the interpreter's input.

Outputs are read by what they are, never by their position (the converter orders them differently
for TF1 and TF2 exports): the outputs of a ``TFLite_Detection_PostProcess`` operator by the operator's
own contract (boxes, classes, scores, count, traced through the graph to the signature's names), else
the signature's names (``detection_boxes``..., Keras-style ``boxes``/``scores``), else the shapes
where they leave no doubt. The post-processing op numbers classes from 0 without a background; the
offset to the label map's ids is set from the label map and said in a finding.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..base.errors import UserError
from ..base.findings import ERROR, INFO, WARNING, Finding
from ..detect.conventions import Detector, DetectorError, ImageInput, OutputMapping, find_image_input, \
    find_output_mapping
from ..detect.mappings import load_mapping, mapping_key
from ..formats.labels import LabelMap
from .tfimport import native_log_filtered
from ..formats.tflite import DETECTION_POSTPROCESS, SignatureInfo, TFLiteInfo, packed_label_map, read_tflite

POSTPROCESS_ROLES = ("boxes", "classes", "scores", "num_detections")   # the op's outputs, in its order
# What LiteRT's native code prints on stderr as a model loads, whatever the log level says.
_NATIVE_NOISE = re.compile(rb"^(?:INFO: Created TensorFlow Lite XNNPACK delegate|INFO: Initialized TensorFlow Lite)")
SCALES = {"0..255": (0.0, 255.0), "0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0)}


def make_interpreter(path: Path, num_threads: int | None = None):
    """A LiteRT interpreter for ``path`` (``tf.lite.Interpreter`` only where LiteRT is missing);
    returns (interpreter, which runtime)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        import ai_edge_litert

        which = f"LiteRT {getattr(ai_edge_litert, '__version__', '')}".strip()
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notice names LiteRT, which is what is missing
            Interpreter = tf.lite.Interpreter
        which = f"tf.lite.Interpreter (TensorFlow {tf.__version__}; LiteRT is not installed)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interp = Interpreter(model_path=str(path), num_threads=num_threads)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path.name}: LiteRT could not load the model: {first}") from exc
    return interp, which


@dataclass
class TFLiteModel:
    """The live TFLite model: its interpreter, the signature it runs and that signature's tensors."""

    path: Path
    info: TFLiteInfo
    interpreter: object
    runtime: str
    signature: str | None
    inputs: dict[str, int]                 # name -> tensor index (subgraph 0)
    outputs: dict[str, int]
    input_quantization: dict = field(default_factory=dict)

    def output_specs(self) -> dict[str, tuple[str, tuple | None]]:
        """``{output name: (dtype, shape)}`` as the interpreter has them now (allocated shapes)."""
        details = {d["index"]: d for d in self.interpreter.get_output_details()}
        tensors = self.info.main.tensors
        out = {}
        for name, idx in self.outputs.items():
            d = details.get(idx)
            if d is not None:
                out[name] = (np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]))
            else:
                t = tensors[idx]
                out[name] = (t.dtype, t.free_shape)
        return out


def _io(info: TFLiteInfo, sig: SignatureInfo | None) -> tuple[dict[str, int], dict[str, int]]:
    if sig is not None:
        return dict(sig.inputs), dict(sig.outputs)
    main = info.main
    # No signature (TF1 conversions): the subgraph's own inputs and outputs, named by their tensors.
    return ({main.tensors[i].name or str(i): i for i in main.inputs},
            {main.tensors[i].name or str(i): i for i in main.outputs})


def _postprocess_mapping(info: TFLiteInfo, outputs: dict[str, int]) -> OutputMapping | None:
    """Roles of the outputs a TFLite_Detection_PostProcess operator makes, traced through the graph."""
    producers = info.producers(0)
    roles: dict[str, str] = {}
    for name, idx in outputs.items():
        made = producers.get(idx)
        if made is not None and made[0].op == DETECTION_POSTPROCESS and made[1] < len(POSTPROCESS_ROLES):
            roles[POSTPROCESS_ROLES[made[1]]] = name
    if "boxes" not in roles or "scores" not in roles:
        return None
    return OutputMapping(boxes=roles["boxes"], scores=roles["scores"], classes=roles.get("classes"),
                         num_detections=roles.get("num_detections"), box_layout="yxyx", normalized=True,
                         class_offset=0, convention="tflite_detection_postprocess")


_HINTS = {"boxes": ("box",), "scores": ("score", "conf"), "classes": ("class", "label"),
          "num_detections": ("num", "count")}


def _shape_mapping(specs: dict[str, tuple[str, tuple | None]]) -> OutputMapping | None:
    """Roles read off shapes (and name hints where two outputs share a shape); None when in doubt."""
    def rank(shape):
        return len(shape) if shape is not None else -1

    boxes = [k for k, (_, s) in specs.items() if rank(s) == 3 and s[-1] == 4]
    if len(boxes) != 1:
        return None
    n = specs[boxes[0]][1][1]
    counts = [k for k, (_, s) in specs.items() if s is not None and (rank(s) == 0 or tuple(s) == (1,))]
    rows = [k for k, (_, s) in specs.items() if rank(s) == 2 and s[1] == n and k not in counts]
    named = {role: [k for k in rows if any(h in k.lower() for h in hints)] for role, hints in _HINTS.items()}
    scores = named["scores"][0] if len(named["scores"]) == 1 else (rows[0] if len(rows) == 1 else None)
    if scores is None:
        return None
    classes = named["classes"][0] if len(named["classes"]) == 1 else None
    if classes is None and len(rows) == 2:
        return None  # two [1, N] outputs and no name says which is which: a user has to say
    return OutputMapping(boxes=boxes[0], scores=scores, classes=classes,
                         num_detections=counts[0] if len(counts) == 1 else None, box_layout="yxyx",
                         normalized=None, class_offset=0, convention="tflite_shapes")


def find_tflite_mapping(info: TFLiteInfo, outputs: dict[str, int],
                        specs: dict[str, tuple[str, tuple | None]]) -> tuple[OutputMapping | None, list[Finding]]:
    """How to read a TFLite model's outputs: the post-processing op's contract, else names, else shapes."""
    mapping = _postprocess_mapping(info, outputs)
    if mapping is not None:
        return mapping, []
    by_name, findings = find_output_mapping(specs)
    if by_name is not None and by_name.convention != "od_api_numbered":  # output_0..3 is a position, not a name
        return by_name, []
    by_shape = _shape_mapping(specs)
    if by_shape is not None:
        return by_shape, [Finding(INFO, f"outputs read by their shapes: boxes {by_shape.boxes!r}, scores "
                                        f"{by_shape.scores!r}, classes {by_shape.classes!r} (map them by hand "
                                        "if that is wrong)")]
    described = ", ".join(f"{k} {list(s) if s is not None else '?'}" for k, (_, s) in sorted(specs.items()))
    return None, [Finding(ERROR, f"outputs follow no known detection convention and their shapes leave doubt "
                                 f"({described}); map them by hand")]


def _class_offset(mapping: OutputMapping, label_map: LabelMap | None, findings: list[Finding]) -> None:
    """The post-processing op's classes start at 0 with no background; a label map counting from 1 gets +1."""
    if mapping.convention != "tflite_detection_postprocess":
        return
    if label_map is not None and label_map.ids and min(label_map.ids) >= 1:
        mapping.class_offset = 1
        where = label_map.source.name if label_map.source else "the label map"
        findings.append(Finding(INFO, f"TFLite_Detection_PostProcess numbers classes from 0 (no background) and "
                                      f"{where} from 1: class offset +1, so class 0 is id 1 "
                                      f"'{label_map.label(1)}' (map the outputs by hand to change it)"))
    else:
        why = "the label map has an id 0" if label_map is not None else "there is no label map"
        findings.append(Finding(INFO, f"TFLite_Detection_PostProcess numbers classes from 0 (no background); "
                                      f"class offset 0, since {why}"))


def _float_range(q, dtype: str) -> str | None:
    """Which pixel range a quantised input's parameters cover: 0..255, 0..1 or -1..1 (None: none of them)."""
    info = np.iinfo(np.dtype(dtype))
    low, high = q.scale * (info.min - q.zero_point), q.scale * (info.max - q.zero_point)
    for name, (a, b) in SCALES.items():
        width = b - a
        if abs(low - a) <= 0.05 * width and abs(high - b) <= 0.05 * width:
            return name
    return None


def _image_input(model: TFLiteModel, scale: str | None, findings: list[Finding]) -> tuple[ImageInput, object]:
    """The image input, as :func:`prepare` should make it, and a function from that batch to what the
    interpreter takes."""
    tensors = model.info.main.tensors
    specs = {name: (tensors[i].dtype, tensors[i].free_shape) for name, i in model.inputs.items()}
    spec = find_image_input(specs, scale=scale)
    t = tensors[model.inputs[spec.key]]
    q = t.quantization
    if t.dtype in ("uint8", "int8") and q is not None and not q.per_axis:
        chosen = scale or _float_range(q, t.dtype)
        if chosen is None:
            chosen = "0..255"
            findings.append(Finding(WARNING, f"image input {spec.key!r} is {t.dtype} quantised ({q.describe()}), "
                                             "covering no usual pixel range; feeding 0..255 (choose --scale if "
                                             "the model expects 0..1 or -1..1)"))
        else:
            findings.append(Finding(INFO, f"image input {spec.key!r} is {t.dtype} quantised ({q.describe()}): "
                                          f"pixels as {chosen}, quantised with the model's scale and zero point"))
        info = np.iinfo(np.dtype(t.dtype))
        inv_scale, zp, dt = 1.0 / q.scale, float(q.zero_point), np.dtype(t.dtype)

        def feed(batch):
            return np.clip(np.rint(batch * inv_scale + zp), info.min, info.max).astype(dt)
        return ImageInput(spec.key, "float32", spec.height, spec.width, spec.channels, spec.batch, chosen), feed
    if t.dtype == "int8":  # int8 without quantisation: pixels shifted into -128..127
        return ImageInput(spec.key, "uint8", spec.height, spec.width, spec.channels, spec.batch, spec.scale), \
            (lambda batch: (batch.astype(np.int16) - 128).astype(np.int8))
    if t.dtype == "uint8":
        return spec, None
    if t.dtype not in ("float32", "float16"):
        raise DetectorError(f"image input {spec.key!r} has dtype {t.dtype}; expected uint8, int8 or float")
    if scale is None:
        findings.append(Finding(INFO, f"image input {spec.key!r} is {t.dtype}; feeding pixel values 0..255 "
                                      "(choose 0..1 or -1..1 if the model expects them)"))
    return spec, None


def _runner(model: TFLiteModel, key: str, feed):
    """batch -> {output name: array}, dequantising quantised outputs; resizes a free-size input."""
    interp = model.interpreter
    index = model.inputs[key]
    current = [tuple(int(x) for x in interp.get_input_details()[_position(interp, index)]["shape"])]
    outputs = list(model.outputs.items())
    quantised = {}
    for d in interp.get_output_details():
        scale, zp = d["quantization"]
        if scale and np.dtype(d["dtype"]).kind in "iu":
            quantised[d["index"]] = (float(scale), float(zp))
    set_tensor, invoke, get_tensor = interp.set_tensor, interp.invoke, interp.get_tensor

    def call(batch: np.ndarray) -> dict[str, np.ndarray]:
        x = feed(batch) if feed is not None else batch
        if x.shape != current[0]:
            interp.resize_tensor_input(index, list(x.shape), strict=False)
            interp.allocate_tensors()
            current[0] = x.shape
        set_tensor(index, x)
        invoke()
        result = {}
        for name, idx in outputs:
            value = get_tensor(idx)
            q = quantised.get(idx)
            result[name] = (value.astype(np.float32) - q[1]) * q[0] if q else value
        return result
    return call


def _position(interp, index: int) -> int:
    for pos, d in enumerate(interp.get_input_details()):
        if d["index"] == index:
            return pos
    raise DetectorError(f"tensor {index} is not an input of the model")


def open_tflite(file: Path, *, label_map: LabelMap | None = None, signature: str | None = None,
                scale: str | None = None, job=None):
    """``(live model, detector, mapping key, findings, label map)``: the detector is None (with an error
    finding) when the outputs cannot be read; the mapping key is where a hand-made output mapping is kept;
    the label map is the one given, else a label file packed into the model. Call on the engine thread."""
    file = Path(file)
    if scale is not None and scale not in SCALES:
        raise UserError(f"--scale {scale!r}: expected one of {', '.join(SCALES)}")
    info = read_tflite(file)
    findings: list[Finding] = [f for f in info.findings if f.severity != INFO]
    if label_map is None and info.packed_labels():
        try:
            label_map = packed_label_map(info)
            findings.append(Finding(INFO, f"labels from {info.packed_labels()}, packed into the model", str(file)))
        except (UserError, ValueError) as exc:
            findings.append(Finding(WARNING, f"the label file packed into the model is unreadable ({exc})", str(file)))
    names = [s.key for s in info.signatures]
    key = mapping_key(file, signature=signature, signatures=names)
    sig = None
    if info.signatures:
        sig = info.signature(key.signature)
        if sig is None:
            raise UserError(f"{file.name}: no signature {key.signature!r} (have: {', '.join(sorted(names))})")
        if sig.subgraph != 0:
            raise UserError(f"{file.name}: signature {sig.key!r} runs subgraph {sig.subgraph}; detscope runs "
                            "signatures of the main subgraph only")
    if job is not None:
        job.progress(f"loading {file.name} with LiteRT")
    with native_log_filtered(not os.environ.get("DETSCOPE_VERBOSE"), noise=_NATIVE_NOISE):
        interp, which = make_interpreter(file)
        interp.allocate_tensors()
    inputs, outputs = _io(info, sig)
    model = TFLiteModel(file, info, interp, which, sig.key if sig else None, inputs, outputs)
    detector = None
    try:
        image_input, feed = _image_input(model, scale, findings)
        other = [k for k in inputs if k != image_input.key]
        if other:
            findings.append(Finding(WARNING, f"the model has inputs besides the image ({', '.join(other)}); "
                                             "they are not fed"))
        specs = model.output_specs()
        mapping = load_mapping(key)
        if mapping is None:
            mapping, more = find_tflite_mapping(info, outputs, specs)
            findings.extend(more)
            if mapping is not None:
                _class_offset(mapping, label_map, findings)
        else:
            missing = [k for k in (mapping.boxes, mapping.scores, mapping.classes) if k and k not in outputs]
            if missing:
                raise DetectorError(f"output mapping names outputs the model lacks: {', '.join(missing)}")
        if mapping is not None:
            label = label_map.label if label_map is not None else None
            detector = Detector(_runner(model, image_input.key, feed), image_input, mapping, label)
    except DetectorError as exc:
        findings.append(Finding(ERROR, str(exc), str(file)))
    return model, detector, key, [replace(f, file=f.file or str(file)) for f in findings], label_map
