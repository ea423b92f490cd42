"""Real ``.tflite`` models for tests and benchmarks, made with ``tf.lite.TFLiteConverter``.

- :func:`converted_export`: the tiny detector SavedModel of :mod:`model_artifacts` (OD API serving contract,
  ``input_tensor`` uint8 of any size) converted as it is: ``float`` or full-integer quantised (``int8``: every
  operator int8, the uint8 image input and float outputs kept at the edges).
- :func:`ssd_tflite`: the same tiny detector behind the Object Detection API's real
  ``TFLite_Detection_PostProcess`` operator, made as the OD API's TF2 exporter makes it (an empty
  ``tf.function`` whose ``experimental_implements`` the converter turns into the custom op, and outputs returned
  reversed, so the signature's ``output_0`` is the count and ``output_3`` the boxes). ``quant``: ``float``
  (float32 input 0..1), ``uint8`` or ``int8`` (full-integer quantised, quantised image input of that type).
- :func:`demo_tflite`: the bundled demo's SavedModel at a fixed input size, for the benchmark.

Each builder returns the ``.tflite`` path and reuses one already made in the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import model_artifacts as ma

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NUM_CLASSES = 3
SSD_ROLES = {"boxes": "output_3", "classes": "output_2", "scores": "output_1", "num_detections": "output_0"}
ANCHORS = np.array([[0.25 + 0.5 * (i % 2), 0.15 + 0.1 * i, 0.3, 0.25] for i in range(ma.ANCHORS)], np.float32)


def _convert(converter, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(converter.convert())
    return out


def converted_export(directory, quant: str = "float") -> Path:
    """The tiny OD API-style export converted to TFLite (``float`` or full-integer ``int8``)."""
    import tensorflow as tf

    out = Path(directory) / f"od_{quant}.tflite"
    if out.is_file():
        return out
    export = Path(directory) / "export"
    if not (export / "saved_model.pb").is_file():
        ma.export(ma.build_model(NUM_CLASSES), export)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(export))
    if quant == "int8":
        rng = np.random.default_rng(3)

        def representative():
            for _ in range(8):
                yield {"input_tensor": rng.integers(0, 256, (1, 48, 64, 3)).astype(np.uint8)}
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return _convert(conv, out)


def postprocess_implements(max_detections: int, num_classes: int) -> str:
    """The ``experimental_implements`` the OD API's TF2 exporter gives its post-processing stub."""
    return " ".join([
        'name: "TFLite_Detection_PostProcess"',
        f'attr {{ key: "max_detections" value {{ i: {max_detections} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "use_regular_nms" value { b: false } }',
        'attr { key: "nms_score_threshold" value { f: 0.000000 } }',
        'attr { key: "nms_iou_threshold" value { f: 0.600000 } }',
        'attr { key: "y_scale" value { f: 10.000000 } }',
        'attr { key: "x_scale" value { f: 10.000000 } }',
        'attr { key: "h_scale" value { f: 5.000000 } }',
        'attr { key: "w_scale" value { f: 5.000000 } }',
        f'attr {{ key: "num_classes" value {{ i: {num_classes} }} }}',
    ])


def ssd_tflite(directory, quant: str = "float") -> Path:
    """The tiny detector with TFLite_Detection_PostProcess (float, or full-integer with uint8/int8 input)."""
    import tensorflow as tf

    out = Path(directory) / f"ssd_{quant}.tflite"
    if out.is_file():
        return out
    saved = Path(directory) / "ssd_saved_model"
    if not (saved / "saved_model.pb").is_file():
        model = ma.build_model(NUM_CLASSES)

        @tf.function(experimental_implements=postprocess_implements(ma.ANCHORS, NUM_CLASSES))
        def post_processing(box_encodings, class_predictions, anchors):
            z = tf.constant(0.0)
            return z, z, z, z

        class SSDModule(tf.Module):
            def __init__(self, m):
                super().__init__()
                self._model = m

            @tf.function(input_signature=[tf.TensorSpec([1, ma.SIZE, ma.SIZE, 3], tf.float32,
                                                        name="normalized_input_image_tensor")])
            def serve(self, image):
                raw_boxes, logits = self._model(image)
                box_encodings = tf.identity(raw_boxes - 0.5, name="box_encodings")
                class_predictions = tf.identity(tf.sigmoid(logits * 4.0), name="class_predictions")
                return post_processing(box_encodings, class_predictions, tf.constant(ANCHORS))[::-1]

        module = SSDModule(model)
        tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.allow_custom_ops = True
    if quant in ("uint8", "int8"):
        rng = np.random.default_rng(5)

        def representative():
            for _ in range(16):
                yield [rng.uniform(0, 1, (1, ma.SIZE, ma.SIZE, 3)).astype(np.float32)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        conv.inference_input_type = tf.uint8 if quant == "uint8" else tf.int8
    return _convert(conv, out)


def demo_tflite(saved_model, directory, size: int = 160) -> Path:
    """The demo's ``serving_default`` at a fixed ``size`` x ``size`` uint8 input, as float TFLite."""
    import tensorflow as tf

    out = Path(directory) / f"demo_{size}.tflite"
    if out.is_file():
        return out
    loaded = tf.saved_model.load(str(saved_model))
    signature = loaded.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8, name="input_tensor")])
    def serve(input_tensor):
        return signature(input_tensor=input_tensor)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], loaded)
    return _convert(conv, out)
