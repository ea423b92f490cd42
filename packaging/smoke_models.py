#!/usr/bin/env python
"""Make the small models packaging/smoke.sh gives the frozen app beyond the demo (run with .venv's Python).

    .venv/bin/python packaging/smoke_models.py OUT_DIR

Each one reaches a part of the bundle the demo's SavedModel does not:

- ``k3.keras``: a Keras 3 file (``keras``, ``h5py``);
- ``k2.h5``: a Keras 2 HDF5 file with a ``TFOpLambda`` layer, which Keras 3 cannot read, so that detscope
  falls back to ``tf_keras``;
- ``demo.tflite``: the demo's ``serving_default`` at a fixed 160 x 160 input, run by LiteRT (``ai_edge_litert``)
  and browsed with the ``tflite`` package;
- ``labels.txt`` and ``x.png`` for the two Keras files. Each Keras file, given a black image, detects one box
  ``[10, 20, 50, 60]`` with score 0.9.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"      # tf.math ops on tf_keras tensors become TFOpLambda layers

REPO = Path(__file__).resolve().parents[1]


def keras_style(k, tf=None):
    """A detector with Keras-style outputs (``boxes``, ``confidence``, ``classes``) and fixed answers."""
    import numpy as np

    inputs = k.Input((None, None, 3), name="images")
    pooled = k.layers.GlobalAveragePooling2D()(inputs)
    if tf is not None:
        pooled = tf.math.multiply(pooled, 1.0)
    boxes = k.layers.Reshape((1, 4), name="boxes")(k.layers.Dense(4, name="box_dense")(pooled))
    conf = k.layers.Reshape((1,), name="confidence")(k.layers.Dense(1, name="conf_dense")(pooled))
    classes = k.layers.Reshape((1,), name="classes")(k.layers.Dense(1, name="cls_dense")(pooled))
    model = k.Model(inputs, {"boxes": boxes, "confidence": conf, "classes": classes})
    model.get_layer("box_dense").set_weights([np.zeros((3, 4), np.float32), np.array([10, 20, 50, 60], np.float32)])
    model.get_layer("conf_dense").set_weights([np.zeros((3, 1), np.float32), np.array([0.9], np.float32)])
    model.get_layer("cls_dense").set_weights([np.zeros((3, 1), np.float32), np.array([0.0], np.float32)])
    return model


def main(out: Path) -> int:
    import warnings

    import keras
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from PIL import Image

    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(out / "x.png")
    (out / "labels.txt").write_text("person\n")
    keras_style(keras).save(out / "k3.keras")
    keras_style(tf_keras, tf).save(out / "k2.h5")

    loaded = tf.saved_model.load(str(REPO / "resources" / "demo" / "saved_model"))
    signature = loaded.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([1, 160, 160, 3], tf.uint8, name="input_tensor")])
    def serve(input_tensor):
        return signature(input_tensor=input_tensor)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], loaded)
    tflite_dir = out / "tflite"
    tflite_dir.mkdir(exist_ok=True)
    (tflite_dir / "demo.tflite").write_bytes(converter.convert())
    # labelmap.txt beside the .tflite: one name a line, as the TFLite examples ship it
    (tflite_dir / "labelmap.txt").write_text("circle\ntriangle\ncross\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
