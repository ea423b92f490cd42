"""Real Object Detection API training runs for the builder tests, made with the OD API itself.

``python odapi_artifacts.py CONFIG OUT --size S [--num-classes N] [--images IMG...]`` takes a real
``pipeline.config`` (the car run in ``../shared/realdata``, or one of the OD API's ``configs/tf2``
samples), shrinks its input to ``S`` pixels, builds the model with ``model_builder`` for training,
trains two steps on random images, and saves ``ckpt-1`` and ``ckpt-2`` (or the last only) with ``CheckpointManager``
(``tf.train.Checkpoint(step=, model=, optimizer=)``, as ``model_lib_v2`` does) into ``OUT/training``
beside the config. It then exports the run with ``exporter_lib_v2.export_inference_graph`` into
the folder ``--export-to`` names (the tests keep it away from the training folder, where detscope would
take it for a template) and writes what the export's ``serving_default`` returns for each image to
``OUT/export_detections.npz``.

It runs as its own process (the OD API needs ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported,
and the three runs of the tests build side by side). Calling it again on a finished ``OUT`` does nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENDOR = (REPO.parent / "shared" / "vendor" / "odapi").resolve()
SAMPLES = VENDOR / "research" / "object_detection" / "configs" / "tf2"
DETECTIONS = "export_detections.npz"
DONE = "done"


def od_api_missing() -> str | None:
    """Why the OD API tests cannot run here, or None."""
    if importlib.util.find_spec("object_detection") is None:
        return ("the TensorFlow Object Detection API is not installed in this environment "
                "(make test installs it from ../shared/vendor/odapi when that folder is present)")
    return None


def start(config: Path, out: Path, size: int, images: list[Path], num_classes: int | None = None,
          strip_keypoints: bool = False, checkpoints: int = 2, export: Path | None = None) -> subprocess.Popen | None:
    """Start a run in its own process (None when ``out`` is already made)."""
    if (out / DONE).is_file():
        return None
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), str(config), str(out), "--size", str(size)]
    if num_classes:
        argv += ["--num-classes", str(num_classes)]
    if strip_keypoints:
        argv.append("--strip-keypoints")
    argv += ["--export-to", str(export)] if export else ["--no-export"]
    argv += ["--checkpoints", str(checkpoints)]
    argv += ["--images", *map(str, images)]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    log = open(out / "make.log", "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def finish(proc: subprocess.Popen | None, out: Path, timeout: float = 900) -> Path:
    if proc is not None:
        proc.wait(timeout=timeout)
        if proc.returncode != 0:
            tail = (out / "make.log").read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"making {out} failed ({proc.returncode}):\n" + "\n".join(tail))
    return out


def _shrink(pipe, size: int, num_classes: int | None, strip_keypoints: bool) -> None:
    arch = pipe.model.WhichOneof("model")
    m = getattr(pipe.model, arch)
    r = m.image_resizer
    if r.HasField("fixed_shape_resizer"):
        r.fixed_shape_resizer.height = size
        r.fixed_shape_resizer.width = size
    elif r.HasField("keep_aspect_ratio_resizer"):
        r.keep_aspect_ratio_resizer.min_dimension = size
        r.keep_aspect_ratio_resizer.max_dimension = size
    if num_classes:
        m.num_classes = num_classes
    if strip_keypoints and arch == "center_net":
        del m.keypoint_estimation_task[:]
        m.ClearField("keypoint_label_map_path")
    # Paths of the machine the sample was written for; this run reads no data files.
    pipe.train_config.fine_tune_checkpoint = ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("out")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--strip-keypoints", action="store_true")
    p.add_argument("--checkpoints", type=int, default=2, help="save after each of the last N of 2 steps")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--export-to", help="where the export goes")
    p.add_argument("--images", nargs="*", default=[])
    args = p.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    import numpy as np
    import tensorflow as tf
    from object_detection import exporter_lib_v2
    from object_detection.builders import model_builder, optimizer_builder
    from object_detection.utils import config_util

    from detscope.core.media.images import load_image

    out = Path(args.out)
    training = out / "training"
    training.mkdir(parents=True, exist_ok=True)
    pipe = config_util.create_pipeline_proto_from_configs(config_util.get_configs_from_pipeline_file(args.config))
    _shrink(pipe, args.size, args.num_classes, args.strip_keypoints)
    config_util.save_pipeline_config(pipe, str(training))
    arch = pipe.model.WhichOneof("model")
    num_classes = getattr(pipe.model, arch).num_classes

    tf.keras.utils.set_random_seed(7)
    model = model_builder.build(pipe.model, is_training=True)
    optimizer, _ = optimizer_builder.build(pipe.train_config.optimizer)
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(training), max_to_keep=5)
    rng = np.random.default_rng(3)
    for n in range(2):
        images = tf.constant(rng.uniform(0, 255, (2, args.size, args.size, 3)).astype(np.float32))
        prep, shapes = model.preprocess(images)
        model.provide_groundtruth(
            groundtruth_boxes_list=[tf.constant([[0.1, 0.2, 0.6, 0.7], [0.5, 0.1, 0.9, 0.4]], tf.float32)] * 2,
            groundtruth_classes_list=[tf.one_hot([0, num_classes - 1], num_classes)] * 2,
            groundtruth_weights_list=[tf.ones([2])] * 2)
        with tf.GradientTape() as tape:
            losses = model.loss(model.predict(prep, shapes), shapes)
            total = tf.add_n([v for k, v in losses.items() if k.startswith("Loss/")])
        variables = model.trainable_variables
        grads = tape.gradient(total, variables)
        # model_lib_v2 clips by the config's gradient_clipping_by_norm; 10 keeps random-weight runs finite
        grads, _ = tf.clip_by_global_norm(grads, pipe.train_config.gradient_clipping_by_norm or 10.0)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        step.assign_add(1)
        if n >= 2 - args.checkpoints:
            manager.save()
        assert np.isfinite(float(total)), f"loss {float(total)} at step {n + 1}"
    assert all(np.isfinite(v.numpy()).all() for v in model.variables), "a variable is not finite"
    print("trained", float(total), flush=True)
    if args.no_export:
        (out / DONE).write_text("trained\n")
        return 0

    exporter_lib_v2.export_inference_graph("image_tensor", pipe, str(training), args.export_to)
    serve = tf.saved_model.load(str(Path(args.export_to) / "saved_model")).signatures["serving_default"]
    results = {}
    for i, path in enumerate(args.images):
        image = load_image(path)
        outputs = serve(input_tensor=tf.constant(image[None]))
        for key, value in outputs.items():
            results[f"{i}/{key}"] = value.numpy()
    np.savez(out / DETECTIONS, **results)
    (out / DONE).write_text("trained and exported\n")
    print("exported", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
