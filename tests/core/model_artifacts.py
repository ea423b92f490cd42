"""Real, tiny detection models for restore and detect tests, in the layouts users have.

``training_run(dir, ...)`` writes what a fine-tuning run leaves behind, shaped like
the TF2 Object Detection API's: ``training/`` with ``CheckpointManager``
checkpoints of ``tf.train.Checkpoint(model=..., optimizer=..., step=...)``, and
``saved_model/`` exported from an export module that tracks the model as
``_model`` with an OD API ``serving_default`` signature (``input_tensor`` uint8
``[1, None, None, 3]`` → ``detection_boxes`` ... ``num_detections``), plus a
``label_map.pbtxt`` and a ``pipeline.config``.

The model is a subclassed ``tf_keras`` model, so its checkpoint keys carry the
attribute names (``model/class_head/kernel``): a renamed attribute or an extra
layer really changes what matches. ``variant`` picks one of those changes.
TensorFlow is imported only when a builder runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 32          # the model's fixed internal input size
ANCHORS = 8        # detections per image before sorting


def _model_class(tf, keras, num_classes: int, variant: str):
    class TinyDetector(keras.Model):
        def __init__(self):
            super().__init__(name="tiny_detector")
            self.backbone = keras.Sequential([
                keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
            ], name="backbone")
            self.box_head = keras.layers.Dense(ANCHORS * 4, name="box_head")
            head = keras.layers.Dense(ANCHORS * (num_classes + 1), name="class_head")
            if variant == "renamed":
                self.cls_head = head
            else:
                self.class_head = head
            if variant == "extra":
                self.refine = keras.layers.Dense(ANCHORS * 4, name="refine")

        def call(self, images):
            x = self.backbone(images)
            boxes = self.box_head(x)
            if variant == "extra":
                boxes = boxes + self.refine(x)
            head = self.cls_head if variant == "renamed" else self.class_head
            logits = head(x)
            return (tf.reshape(tf.sigmoid(boxes), [-1, ANCHORS, 4]),
                    tf.reshape(logits, [-1, ANCHORS, num_classes + 1]))

    return TinyDetector


def build_model(num_classes: int = 3, variant: str = "base", seed: int = 7):
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model = _model_class(tf, tf_keras, num_classes, variant)()
    model(tf.zeros([1, SIZE, SIZE, 3]))
    return model


def export(model, directory: Path) -> Path:
    """An OD API-style SavedModel of ``model`` (tracked as ``_model``)."""
    import tensorflow as tf

    class DetectionModule(tf.Module):
        def __init__(self, m):
            super().__init__()
            self._model = m

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            images = tf.image.resize(tf.cast(input_tensor, tf.float32) / 255.0, [SIZE, SIZE])
            raw_boxes, logits = self._model(images)
            probs = tf.nn.softmax(logits, axis=-1)
            scores = tf.reduce_max(probs[..., 1:], axis=-1)
            classes = tf.cast(tf.argmax(probs[..., 1:], axis=-1) + 1, tf.float32)
            top = tf.math.top_k(scores, k=ANCHORS)
            y0x0 = raw_boxes[..., :2] * 0.5
            y1x1 = y0x0 + 0.1 + raw_boxes[..., 2:] * 0.4
            boxes = tf.concat([y0x0, y1x1], axis=-1)
            return {
                "detection_boxes": tf.gather(boxes, top.indices, batch_dims=1),
                "detection_scores": top.values,
                "detection_classes": tf.gather(classes, top.indices, batch_dims=1),
                "num_detections": tf.constant([float(ANCHORS)]),
                "detection_multiclass_scores": tf.gather(probs, top.indices, batch_dims=1),
            }

    module = DetectionModule(model)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})
    return directory


def _train_steps(model, optimizer, steps: int, seed: int):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        images = tf.constant(rng.uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32))
        with tf.GradientTape() as tape:
            boxes, logits = model(images)
            loss = tf.reduce_mean(tf.square(boxes - 0.5)) + tf.reduce_mean(tf.square(logits - 0.1))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))


def training_run(directory, num_classes: int = 3, variant: str = "base", checkpoints: int = 2,
                 export_model: bool = True, labels=("cat", "dog", "fox", "owl", "eel")) -> Path:
    """A fine-tuning run folder: training/ckpt-1..N, saved_model/, label_map.pbtxt, pipeline.config."""
    import tensorflow as tf
    import tf_keras

    root = Path(directory)
    if (root / "training" / "checkpoint").exists():
        return root
    model = build_model(num_classes, variant)
    optimizer = tf_keras.optimizers.SGD(0.05, momentum=0.9)
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(ckpt, str(root / "training"), max_to_keep=5)
    for n in range(checkpoints):
        _train_steps(model, optimizer, 3, seed=n)
        step.assign_add(3)
        manager.save()
    if export_model:
        export(model, root / "saved_model")
    items = "".join(f'item {{\n  id: {i + 1}\n  name: "{labels[i]}"\n}}\n' for i in range(num_classes))
    (root / "label_map.pbtxt").write_text(items)
    (root / "pipeline.config").write_text(
        "model {\n  ssd {\n    num_classes: %d\n    image_resizer { fixed_shape_resizer { height: %d width: %d } }\n"
        "  }\n}\ntrain_config { batch_size: 2 fine_tune_checkpoint_type: \"detection\" }\n"
        "eval_input_reader { label_map_path: \"label_map.pbtxt\" }\n" % (num_classes, SIZE, SIZE))
    return root


def model_values(model) -> dict[str, np.ndarray]:
    return {v.name: v.numpy() for v in model.weights}


def anonymous_outputs_export(directory, signature: str = "serving_default") -> Path:
    """A SavedModel whose outputs follow no convention: ``a`` is a box in pixels (x, y, w, h) of
    the image, ``b`` its score and ``c`` a 0-based class; input ``images`` uint8 of any size.
    ``signature`` names its one signature."""
    import tensorflow as tf

    directory = Path(directory)

    class Anonymous(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="images")])
        def serve(self, images):
            h = tf.cast(tf.shape(images)[1], tf.float32)
            w = tf.cast(tf.shape(images)[2], tf.float32)
            return {"a": tf.reshape(tf.stack([w * 0.25, h * 0.5, w * 0.5, h * 0.25]), [1, 1, 4]),
                    "b": tf.constant([[0.75]]), "c": tf.constant([[1.0]])}

    module = Anonymous()
    tf.saved_model.save(module, str(directory), signatures={signature: module.serve})
    return directory


def tf1_export(directory) -> Path:
    """What the TF1 Object Detection API's exporter leaves: ``saved_model/`` whose weights are frozen into
    constants (its ``variables/`` empty), beside ``model.ckpt`` (the name-based TF1 checkpoint it was frozen
    from) with its ``checkpoint`` state file, ``frozen_inference_graph.pb`` and ``pipeline.config``.

    Input ``inputs`` (``image_tensor``) uint8; one detection: box (y0, x0, y1, x1) = (0.25, 0.5, 0.75, 1.0),
    score = mean pixel / 255 times a weight of 1.0 (a variable before freezing), class 2.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    root = Path(directory)
    if (root / "saved_model" / "saved_model.pb").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    names = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        weight = v1.get_variable("BoxPredictor/ClassPredictor/weights", initializer=tf.constant(1.0))
        mean = tf.reduce_mean(tf.cast(images, tf.float32)) / 255.0 * weight
        tf.identity(tf.reshape(tf.stack([0.25, 0.5, 0.75, 1.0]), [1, 1, 4]) + 0 * mean, name=names[0])
        tf.identity(tf.reshape(mean, [1, 1]), name=names[1])
        tf.identity(tf.constant([[2.0]]), name=names[2])
        tf.identity(tf.constant([1.0]), name=names[3])
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(root / "model.ckpt"))
            frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), list(names))
    (root / "frozen_inference_graph.pb").write_bytes(frozen.SerializeToString())
    served = tf.Graph()
    with served.as_default():
        tf.graph_util.import_graph_def(frozen, name="")
        with v1.Session(graph=served) as sess:
            builder = v1.saved_model.Builder(str(root / "saved_model"))
            sig = v1.saved_model.predict_signature_def(
                inputs={"inputs": served.get_tensor_by_name("image_tensor:0")},
                outputs={n: served.get_tensor_by_name(n + ":0") for n in names})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()
    (root / "pipeline.config").write_text(
        "model {\n  ssd {\n    num_classes: 3\n    image_resizer { fixed_shape_resizer { height: 300 width: 300 } }\n"
        "  }\n}\n")
    return root
