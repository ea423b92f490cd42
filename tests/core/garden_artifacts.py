"""A real, tiny Model Garden RetinaNet training folder for the builder tests, made with the Model Garden itself.

``python garden_artifacts.py OUT --size S [--images IMG...]`` takes the Model Garden's own
``retinanet_resnetfpn_coco`` experiment, shrinks it (ResNet-18, S-pixel input, narrow FPN and head, 5 classes
counting the background), builds the model with the task's ``build_model()``, trains one step with the task's
own optimizer on a stand-in loss, sets the class head's bias to seeded values (so that a random-weight model
finds something above the score threshold), and saves ``ckpt-1`` as the training loop does
(``tf.train.Checkpoint(global_step=, model=, optimizer=)`` and a ``CheckpointManager``) with ``params.yaml``
(``train_utils.serialize_config``) into ``OUT/training``. It then exports the run with the Model Garden's own
exporter (``export_saved_model_lib.export_inference_graph``, what ``export_saved_model.py`` runs) into
``OUT/serving`` (the SavedModel itself, away from the training folder, where detscope would take it for a
template), and writes what its ``serving_default`` returns for each image to ``OUT/export_detections.npz``.

It runs as its own process, like ``odapi_artifacts.py``. Calling it again on a finished ``OUT`` does nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

DETECTIONS = "export_detections.npz"
DONE = "done"
EXPERIMENT = "retinanet_resnetfpn_coco"


def garden_missing() -> str | None:
    """Why the Model Garden tests cannot run here, or None."""
    if importlib.util.find_spec("official") is None or importlib.util.find_spec("tensorflow_datasets") is None:
        return ("the TensorFlow Model Garden is not installed in this environment (make test installs it: "
                "the `garden` extra and tf-models-official without its pins)")
    return None


def make(out: Path, size: int, images: list[Path], timeout: float = 900) -> Path:
    """Make the run in its own process (nothing when ``out`` is already made); returns ``out``."""
    if (out / DONE).is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), str(out), "--size", str(size),
            "--images", *map(str, images)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with open(out / "make.log", "w") as log:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (out / "make.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"making {out} failed ({proc.returncode}):\n" + "\n".join(tail))
    return out


def tiny_overrides(size: int) -> dict:
    return {"task": {
        "init_checkpoint": "",
        "annotation_file": "",
        "model": {
            "num_classes": 5,
            "input_size": [size, size, 3],
            "backbone": {"type": "resnet", "resnet": {"model_id": 18}},
            "decoder": {"type": "fpn", "fpn": {"num_filters": 32}},
            "head": {"num_convs": 1, "num_filters": 32},
            "anchor": {"num_scales": 2, "aspect_ratios": [0.5, 1.0, 2.0]},
            "detection_generator": {"max_num_detections": 20},
        },
        "train_data": {"input_path": "", "global_batch_size": 2},
        "validation_data": {"input_path": "", "global_batch_size": 2},
    }}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--images", nargs="*", default=[])
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    import tf_keras
    from official.core import exp_factory, task_factory, train_utils
    from official.modeling import hyperparams
    from official.vision import registry_imports  # noqa: F401
    from official.vision.serving import export_saved_model_lib

    from detscope.core.media.images import load_image

    out = Path(args.out)
    training = out / "training"
    training.mkdir(parents=True, exist_ok=True)
    params = exp_factory.get_exp_config(EXPERIMENT)
    params = hyperparams.override_params_dict(params, tiny_overrides(args.size), is_strict=True)
    params.validate()
    params.lock()

    tf_keras.utils.set_random_seed(7)
    task = task_factory.get_task(params.task)
    model = task.build_model()
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    rng = np.random.default_rng(3)
    images = tf.constant(rng.uniform(0, 1, (2, args.size, args.size, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        outputs = model(images, image_shape=tf.constant([[args.size, args.size]] * 2, tf.float32), training=True)
        loss = tf.add_n([tf.reduce_mean(tf.square(v)) for k in ("cls_outputs", "box_outputs")
                         for v in outputs[k].values()])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    global_step.assign_add(1)
    biases = [v for v in model.head.trainable_variables if v.name.endswith("scores/bias:0")]
    assert len(biases) == 1, [v.name for v in biases]
    biases[0].assign(rng.uniform(-3.0, 1.0, biases[0].shape).astype(np.float32))

    ckpt = tf.train.Checkpoint(global_step=global_step, model=model, optimizer=optimizer)
    tf.train.CheckpointManager(ckpt, str(training), max_to_keep=5, step_counter=global_step).save(
        checkpoint_number=global_step)
    train_utils.serialize_config(params, str(training))
    print("trained", float(loss), flush=True)

    serving = out / "serving"
    export_saved_model_lib.export_inference_graph(
        input_type="image_tensor", batch_size=1, input_image_size=[args.size, args.size], params=params,
        checkpoint_path=str(training), export_dir=str(serving))
    serve = tf.saved_model.load(str(serving)).signatures["serving_default"]
    results = {}
    for i, path in enumerate(args.images):
        image = load_image(path)
        for key, value in serve(inputs=tf.constant(image[None])).items():
            results[f"{i}/{key}"] = value.numpy()
    np.savez(out / DETECTIONS, **results)
    (out / DONE).write_text("trained and exported\n")
    print("exported", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
