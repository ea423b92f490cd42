"""A :class:`~detscope.core.detect.conventions.Detector` around a TensorFlow concrete function.

The TensorFlow half of detection (the conventions themselves are TensorFlow-free, in ``detect``).
Everything here runs on the engine thread.
"""

from __future__ import annotations

import numpy as np

from ..base.findings import INFO, WARNING, Finding
from ..detect.conventions import Detector, DetectorError, OutputMapping, Outputs, find_image_input, \
    find_output_mapping


def signature_io(fn) -> tuple[Outputs, Outputs]:
    """``({key: (dtype, shape)}, {key: (dtype, shape)})`` of a TensorFlow concrete function."""
    _, kwargs = fn.structured_input_signature
    inputs = {k: (spec.dtype.name if spec.dtype.name != "string" else "object",
                  tuple(spec.shape.as_list()) if spec.shape.rank is not None else None)
              for k, spec in kwargs.items()}
    outs = fn.structured_outputs
    if not isinstance(outs, dict):
        outs = {f"output_{i}": t for i, t in enumerate(outs if isinstance(outs, (list, tuple)) else [outs])}
    outputs = {k: (t.dtype.name, tuple(t.shape.as_list()) if t.shape.rank is not None else None)
               for k, t in outs.items()}
    return inputs, outputs


def detector_for_signature(fn, *, label=None, mapping: OutputMapping | None = None,
                           scale: str | None = None) -> tuple[Detector, list[Finding]]:
    """A Detector around a TensorFlow concrete function (a SavedModel signature)."""
    import tensorflow as tf

    inputs, outputs = signature_io(fn)
    image_input = find_image_input(inputs, scale=scale)
    findings: list[Finding] = []
    if mapping is None:
        mapping, findings = find_output_mapping(outputs)
        if mapping is None:
            raise DetectorError(findings[0].message)
    else:
        missing = [k for k in (mapping.boxes, mapping.scores, mapping.classes) if k and k not in outputs]
        if missing:
            raise DetectorError(f"output mapping names outputs the signature lacks: {', '.join(missing)}")
    if image_input.dtype not in ("uint8", "float32", "float16", "float64"):
        raise DetectorError(f"image input {image_input.key!r} has dtype {image_input.dtype}; "
                            "expected uint8 or float")
    if image_input.dtype != "uint8" and scale is None:
        findings.append(Finding(INFO, f"image input {image_input.key!r} is {image_input.dtype}; feeding pixel "
                                      "values 0..255 (choose 0..1 or -1..1 if the model expects them)"))
    other = [k for k in inputs if k != image_input.key]
    if other:
        findings.append(Finding(WARNING, f"the signature has inputs besides the image ({', '.join(other)}); "
                                         "they are not fed"))
    key = image_input.key
    dtype = tf.as_dtype(image_input.dtype)

    def call(batch: np.ndarray) -> dict[str, np.ndarray]:
        result = fn(**{key: tf.constant(batch, dtype=dtype)})
        if not isinstance(result, dict):
            result = {f"output_{i}": t for i, t in enumerate(result if isinstance(result, (list, tuple))
                                                              else [result])}
        return {k: v.numpy() for k, v in result.items()}

    return Detector(call, image_input, mapping, label), findings
