"""Process start to first detection from an Object Detection API training folder (no export).

detscope: ``detscope detect TRAINING_FOLDER IMAGE`` (it builds the model from ``pipeline.config``
with the OD API, restores the latest ``ckpt-N`` with its report, warms up and detects). Baseline,
measured in the same run: the tutorials' script, in a fresh process, on the same folder and image
(``config_util.get_configs_from_pipeline_file``, ``model_builder.build(is_training=False)``,
``tf.train.Checkpoint(model=…).restore(latest).expect_partial()``, then ``preprocess`` →
``predict`` → ``postprocess`` in a ``tf.function``). Target: detscope at most 1.1× the script.

``--garden``: the same from a Model Garden training folder (``params.yaml`` + ``ckpt-N``); baseline, the
Model Garden's own way in a fresh process (``exp_factory.get_exp_config`` overridden with ``params.yaml``,
``task.build_model()``, ``tf.train.Checkpoint(model=…).read(latest).expect_partial()``, then the export
module's ``DetectionModule`` serving one image). Target: the same 1.1×. Without ``--training`` a tiny
RetinaNet run is made first (``tests/core/garden_artifacts.py``).

For the OD API, without ``--training`` a run is made first: the car run's real ``pipeline.config`` from
``../shared/realdata`` (SSD MobileNet V2 FPNLite 320×320; else the OD API's own sample of it) trained
two steps and saved with ``CheckpointManager`` (see ``tests/core/odapi_artifacts.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from common import BENCH, PY, REPO, detscope_cmd, interleaved

import common

TUTORIAL = """
import os, sys
import numpy as np
import tensorflow as tf
from PIL import Image
from object_detection.utils import config_util
from object_detection.builders import model_builder

configs = config_util.get_configs_from_pipeline_file(os.path.join(sys.argv[1], "pipeline.config"))
detection_model = model_builder.build(model_config=configs["model"], is_training=False)
ckpt = tf.compat.v2.train.Checkpoint(model=detection_model)
ckpt.restore(tf.train.latest_checkpoint(sys.argv[1])).expect_partial()

@tf.function
def detect_fn(image):
    image, shapes = detection_model.preprocess(image)
    prediction_dict = detection_model.predict(image, shapes)
    return detection_model.postprocess(prediction_dict, shapes)

image_np = np.asarray(Image.open(sys.argv[2]).convert("RGB"))
detections = detect_fn(tf.convert_to_tensor(np.expand_dims(image_np, 0), dtype=tf.float32))
detections["detection_boxes"].numpy()
"""


GARDEN_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
from PIL import Image
from official.core import exp_factory, task_factory
from official.modeling import hyperparams
from official.vision import registry_imports
from official.vision.serving import detection

params = exp_factory.get_exp_config(sys.argv[3])
params = hyperparams.override_params_dict(params, sys.argv[1] + "/params.yaml", is_strict=True)
model = task_factory.get_task(params.task).build_model()
tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(sys.argv[1])).expect_partial()
module = detection.DetectionModule(params, batch_size=1, input_image_size=list(params.task.model.input_size[:2]),
                                   model=model)
image_np = np.asarray(Image.open(sys.argv[2]).convert("RGB"))
detections = module.inference_from_image_tensors(tf.constant(image_np[np.newaxis]))
detections["detection_boxes"].numpy()
"""


def _make_garden_run(root: Path, image: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "core"))
    import garden_artifacts as ga

    return ga.make(root / "garden", 128, [image]) / "training"


def _make_run(root: Path, image: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "core"))
    import odapi_artifacts as oa

    car = REPO.parent / "shared" / "realdata" / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    sample = oa.SAMPLES / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8.config"
    config = car / "pipeline.config" if car.is_dir() else sample
    out = root / "run"
    oa.finish(oa.start(config, out, 320, [image], num_classes=1), out)
    return out / "training"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--training", help="an OD API training folder (pipeline.config + ckpt-N)")
    ap.add_argument("--image", default=None, help="the image (default: the demo's first test image)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--garden", action="store_true", help="a Model Garden training folder (params.yaml)")
    args = ap.parse_args()
    if args.garden:
        return _garden(args)
    if importlib.util.find_spec("object_detection") is None:
        print("skipped: the TensorFlow Object Detection API is not installed "
              "(../shared/vendor/odapi/install.sh .venv installs it)")
        return 0
    image = Path(args.image) if args.image else sorted((REPO / "resources" / "demo" / "test" / "images").iterdir())[0]
    with tempfile.TemporaryDirectory() as tmp:
        training = Path(args.training) if args.training else _make_run(Path(tmp), image)
        script = Path(tmp) / "tutorial.py"
        script.write_text(TUTORIAL)
        # The tutorial needs TF_USE_LEGACY_KERAS=1 in its environment; detscope sets it itself.
        common.ENV.pop("TF_USE_LEGACY_KERAS", None)
        tutorial = ["env", "TF_USE_LEGACY_KERAS=1", PY, str(script), str(training), str(image)]
        cmds = {
            "detscope": detscope_cmd("detect", str(training), str(image), "--threshold", "0", "--json"),
            "tutorial": tutorial,
        }
        r = interleaved(cmds, repeat=args.repeat)
    print(f"training folder: {training}   image: {image.name}")
    for k, (t, m) in r.items():
        print(f"  {k:10s} {t:7.3f} s  {m:7.1f} MiB peak")
    print(f"start to first detection from a training folder: detscope {r['detscope'][0]:.3f} s   "
          f"tutorial script {r['tutorial'][0]:.3f} s   ratio {r['detscope'][0] / r['tutorial'][0]:.3f} "
          "(target <= 1.1)")
    return 0


def _garden(args) -> int:
    if importlib.util.find_spec("official") is None or importlib.util.find_spec("tensorflow_datasets") is None:
        print("skipped: the TensorFlow Model Garden is not installed (pip install -e '.[garden]' && "
              "pip install --no-deps tf-models-official==2.20.0)")
        return 0
    image = Path(args.image) if args.image else sorted((REPO / "resources" / "demo" / "test" / "images").iterdir())[0]
    with tempfile.TemporaryDirectory() as tmp:
        training = Path(args.training) if args.training else _make_garden_run(Path(tmp), image)
        script = Path(tmp) / "garden.py"
        script.write_text(GARDEN_SCRIPT)
        cmds = {
            "detscope": detscope_cmd("detect", str(training), str(image), "--threshold", "0", "--json"),
            "garden": [PY, str(script), str(training), str(image), "retinanet_resnetfpn_coco"],
        }
        r = interleaved(cmds, repeat=args.repeat)
    print(f"training folder: {training}   image: {image.name}")
    for k, (t, m) in r.items():
        print(f"  {k:10s} {t:7.3f} s  {m:7.1f} MiB peak")
    print(f"start to first detection from a Model Garden training folder: detscope {r['detscope'][0]:.3f} s   "
          f"Model Garden script {r['garden'][0]:.3f} s   ratio {r['detscope'][0] / r['garden'][0]:.3f} "
          "(target <= 1.1)")
    return 0


if __name__ == "__main__":
    os.chdir(BENCH)
    sys.exit(main())
