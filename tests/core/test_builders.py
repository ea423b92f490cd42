"""Training folders built with the framework that trained them (core.runtime.builders).

Real Object Detection API runs: models built by the OD API's own ``model_builder`` from real
``pipeline.config``s (the car run in ``../shared/realdata``, the OD API's ``configs/tf2`` samples),
shrunk to tiny inputs, trained two steps, saved with ``CheckpointManager`` and exported with the OD
API's own ``exporter_lib_v2`` (see ``odapi_artifacts.py``, run in their own processes, side by side).
detscope opens the training folder (no export, no code) and must detect what the export serves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import odapi_artifacts as oa
from detscope.core.browse.folders import recognise
from detscope.core.detect.conventions import decode, prepare
from detscope.core.formats.bundle import Bundle
from detscope.core.media.images import load_image
from detscope.core.runtime import builders
from detscope.core.runtime.builders import odapi
from detscope.core.runtime.engine import Engine
from detscope.core.runtime.model import load_model
from detscope.core.runtime.report import RestoreReport

REPO = Path(__file__).resolve().parents[2]
CAR = (REPO.parent / "shared" / "realdata" / "car-ssd-fpnlite-training").resolve()
CAR_RUN = CAR / "models" / "my_ssd_mobnet"
DESCRIPTION = "built from pipeline.config with the Object Detection API"

# name: (config, input size, num_classes, strip keypoint tasks, checkpoints saved)
RUNS = {
    "ssd": (CAR_RUN / "pipeline.config" if CAR_RUN.is_dir()
            else oa.SAMPLES / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8.config", 128, 1, False, 2),
    # CenterNet ResNet-50 v1 FPN, its keypoint tasks left out (they need COCO's keypoint label map); the
    # MobileNetV2 variant downloads ImageNet weights at build time, which fails offline.
    "centernet": (oa.SAMPLES / "centernet_resnet50_v1_fpn_512x512_kpts_coco17_tpu-8.config", 128, 3, True, 1),
    "faster_rcnn": (oa.SAMPLES / "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8.config", 128, 3, False, 1),
    # EfficientDet D0 (SSD, EfficientNet-B0 + BiFPN, no background class): its feature extractor refuses
    # images under 129 pixels, and 256 is the smallest power of two above (the BiFPN halves it to level 7).
    "efficientdet": (oa.SAMPLES / "ssd_efficientdet_d0_512x512_coco17_tpu-8.config", 256, 3, False, 1),
}

needs_od_api = pytest.mark.skipif(oa.od_api_missing() is not None, reason=oa.od_api_missing() or "")
pytestmark = pytest.mark.slow


def _images(root: Path) -> list[Path]:
    real = sorted((CAR / "images" / "test").glob("*.jpeg"))[:2] if CAR.is_dir() else []
    if real:
        return real
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    out = []
    for i, (h, w) in enumerate([(97, 131), (120, 80)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        out.append(root / f"img{i}.png")
    return out


def _wanted(session) -> list[str]:
    """The runs the selected tests use, in RUNS order (those without a run parameter use the SSD run)."""
    names = {getattr(item, "callspec", None) and item.callspec.params.get("name") or "ssd"
             for item in session.items if "runs" in getattr(item, "fixturenames", ())}
    return [n for n in RUNS if n in names]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """The runs, made in their own processes, two at a time (each peaks at a few GiB); ``runs(name)``
    waits for one. Only the runs the selected tests use are made ahead."""
    if oa.od_api_missing():
        pytest.skip(oa.od_api_missing())
    if not oa.SAMPLES.is_dir():
        pytest.skip(f"the OD API's sample configs are not at {oa.SAMPLES}")
    # DETSCOPE_ODAPI_RUNS keeps the runs in a folder of your choice, made once and reused by later sessions.
    root = Path(os.environ["DETSCOPE_ODAPI_RUNS"]) if os.environ.get("DETSCOPE_ODAPI_RUNS") else \
        tmp_path_factory.mktemp("odapi")
    images = _images(root / "images")
    # The exports are kept where detscope does not look for a template: it must build from pipeline.config.
    runs_dir, serving = root / "runs", root / "serving"
    pending = _wanted(request.session) or list(RUNS)
    running: dict[str, object] = {}
    done: dict[str, Path] = {}

    def launch(name: str) -> None:
        pending.remove(name)
        cfg, size, nc, strip, checkpoints = RUNS[name]
        running[name] = oa.start(cfg, runs_dir / name, size, images, nc, strip, checkpoints, serving / name)

    def finish(name: str) -> None:
        done[name] = oa.finish(running.pop(name), runs_dir / name)

    def get(name: str) -> Path:
        if name not in done and name not in running and name not in pending:
            pending.insert(0, name)
        while name not in done:
            if name in running:
                finish(name)
            elif len(running) < 2:
                launch(name)
            else:
                finish(next(iter(running)))
        while pending and len(running) < 2:
            launch(pending[0])
        return done[name]

    while pending and len(running) < 2:
        launch(pending[0])
    get.images = images
    yield get
    for proc in running.values():
        if proc is not None and proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def engine():
    e = Engine()
    yield e
    e.shutdown(timeout=30)


@pytest.fixture(scope="module")
def loaded(runs, engine):
    """detscope's model for each run, opened from its training folder (loaded once per module)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = engine.run_sync(load_model, runs(name) / "training")
        return cache[name]
    return get


# --- recognising, without TensorFlow -------------------------------------------------------------

def test_the_registry_names_the_builder_and_its_config_without_tensorflow(tmp_path):
    run = tmp_path / "models" / "my_model"
    run.mkdir(parents=True)
    shutil.copy(RUNS["ssd"][0], run / "my_model.config")     # a config named for the folder
    for name in ("ckpt-1.index", "checkpoint"):
        (run / name).write_bytes(b"")
    code = textwrap.dedent(f"""
        import sys
        from detscope.core.browse.folders import recognise
        from detscope.core.runtime.builders import plan_for
        plan = plan_for(recognise({str(run)!r}))
        print(plan.builder.name, plan.config.name)
        assert "tensorflow" not in sys.modules and "object_detection" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["the", "Object", "Detection", "API", "my_model.config"]


def test_no_builder_for_a_folder_without_a_config(tmp_path):
    (tmp_path / "ckpt-1.index").write_bytes(b"")
    assert builders.plan_for(recognise(tmp_path)) is None


# --- detections equal the export's ----------------------------------------------------------------

@needs_od_api
@pytest.mark.parametrize("name", list(RUNS))
def test_detections_from_the_training_folder_equal_the_exports(runs, loaded, engine, name):
    model = loaded(name)
    assert model.how == "built"
    assert model.report.verdict == "complete" and model.report.target == DESCRIPTION
    assert model.report.source == f"ckpt-{RUNS[name][4]}"      # the latest
    assert not model.report.missing and not model.report.shape_mismatches
    assert any(f.message.startswith(DESCRIPTION) for f in model.findings)
    export = np.load(runs(name) / oa.DETECTIONS)
    for i, path in enumerate(runs.images):
        image = load_image(path)
        h, w = image.shape[:2]
        theirs = {k.split("/", 1)[1]: v for k, v in export.items() if k.startswith(f"{i}/")}
        raw = engine.run_sync(model.detector.call, prepare(image, model.detector.image_input))
        assert set(raw) == set(theirs)
        for key in theirs:
            assert raw[key].shape == theirs[key].shape, key
            assert np.abs(raw[key] - theirs[key]).max(initial=0) <= 1e-5, key
        ours = engine.run_sync(model.detect, image)
        expected = decode(theirs, model.detector.mapping, w, h)
        n = int(theirs["num_detections"][0])
        assert len(ours) == len(expected) == n
        assert np.abs(ours.boxes - expected.boxes).max(initial=0) <= 1e-5 * max(w, h)
        assert np.array_equal(ours.class_ids, expected.class_ids)
        order = np.argsort(-theirs["detection_scores"][0][:n], kind="stable")
        assert np.array_equal(ours.class_ids, np.rint(theirs["detection_classes"][0][:n]).astype(np.int64)[order])
        assert np.allclose(ours.scores, expected.scores, rtol=0, atol=1e-6)
        assert ours.class_ids.min(initial=1) >= 1           # 1-based, as the exporter numbers them
        assert ours.multiclass_scores is not None and len(ours.multiclass_scores) == len(ours)


@needs_od_api
def test_switching_checkpoints_reassigns_without_rebuilding(runs, loaded, engine):
    model = loaded("ssd")
    root, detector = model.live, model.detector
    image = load_image(runs.images[0])
    report = engine.run_sync(model.switch_checkpoint, "ckpt-1")
    assert report.verdict == "complete" and report.source == "ckpt-1" and report.target == DESCRIPTION
    assert model.live is root and model.detector is detector
    bundle = Bundle(runs("ssd") / "training" / "ckpt-1")
    key = next(k for k in report.matched if "_class_predictor_layers" in k and "/bias/" in k)
    variable = dict(engine.run_sync(_live_by_key, model, report))[key]
    assert np.array_equal(variable, bundle.read(key))
    engine.run_sync(model.detect, image)
    back = engine.run_sync(model.switch_checkpoint, "ckpt-2")
    assert back.verdict == "complete"
    assert np.array_equal(dict(engine.run_sync(_live_by_key, model, back))[key], Bundle(
        runs("ssd") / "training" / "ckpt-2").read(key))


def _live_by_key(model, report: RestoreReport):
    """The live values of the matched keys (the restore's own pairing, re-planned)."""
    from detscope.core.runtime.restore import plan_restore

    _, to_assign = plan_restore(Bundle(model.checkpoint.prefix), model.live)
    return [(k, v.numpy()) for k, v in to_assign.items()]


# --- a num_classes change --------------------------------------------------------------------------

@needs_od_api
@pytest.mark.parametrize("name, changed", [("ssd", 3), ("faster_rcnn", 5), ("efficientdet", 5)])
def test_a_num_classes_change_lists_every_mismatch_and_the_config_value(runs, engine, tmp_path, name, changed):
    trained = RUNS[name][2]
    folder = tmp_path / name
    shutil.copytree(runs(name) / "training", folder)
    config = folder / "pipeline.config"
    text = config.read_text()
    assert f"num_classes: {trained}\n" in text
    config.write_text(text.replace(f"num_classes: {trained}\n", f"num_classes: {changed}\n", 1))
    model = engine.run_sync(load_model, folder, warmup=False)
    report = model.report
    assert report.verdict == "partial"
    # Every mismatch, with both shapes: the entries of the checkpoint whose shape the class count decides.
    bundle = Bundle(folder / f"ckpt-{RUNS[name][4]}")
    live = dict(engine.run_sync(_shapes, model))
    expected = {k for k, e in bundle.entries.items() if k in live and tuple(e.shape) != live[k]}
    assert expected and {m.key for m in report.shape_mismatches} == expected
    for m in report.shape_mismatches:
        assert tuple(m.checkpoint_shape) == tuple(bundle.entries[m.key].shape)
        assert tuple(m.model_shape) == live[m.key]
        assert "class" in m.key.lower() or "box" in m.key.lower()
    arch = {"ssd": "ssd", "faster_rcnn": "faster_rcnn", "efficientdet": "ssd"}[name]
    note = next(n for n in report.notes if "class head" in n)
    assert f"model.{arch}.num_classes: {changed}" in note and f"trained with num_classes: {trained}" in note
    assert f"{len(expected)} shape mismatch" in note


def _shapes(model):
    from detscope.core.runtime.restore import live_variables

    out = {}
    for path, var in live_variables(model.live).values():
        out[path + "/.ATTRIBUTES/VARIABLE_VALUE"] = tuple(int(d) for d in var.shape)
    return list(out.items())


def test_explanations_need_no_tensorflow():
    from detscope.core.formats.configs import pipeline_config_from_text
    from detscope.core.runtime.report import Mismatch

    cfg = pipeline_config_from_text("model { center_net { num_classes: 3 } }")
    report = RestoreReport("partial", "ckpt-1", "x", shape_mismatches=[
        Mismatch("model/_prediction_head_dict/object_center/0/layer_with_weights-1/kernel", (3, 3, 256, 90),
                 (3, 3, 256, 3)),
        Mismatch("model/_prediction_head_dict/object_center/0/layer_with_weights-1/bias", (90,), (3,)),
        Mismatch("model/_feature_extractor/conv/kernel", (3, 3, 64, 64), (3, 3, 32, 64))])
    notes = odapi.explain_mismatches(report, cfg)
    assert notes[0].startswith("2 shape mismatches are the class head: pipeline.config has "
                               "model.center_net.num_classes: 3, the checkpoint was trained with num_classes: 90")
    assert notes[1].startswith("1 shape mismatch is not explained by model.center_net.num_classes")


# --- the real training folder ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def car_run(realdata) -> Path:
    return realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"


@needs_od_api
def test_the_real_car_run_is_planned_from_its_index_before_the_missing_shard_is_reported(car_run, engine):
    """The user's own ckpt-6 (index only: its .data shard is not in the repository) against the model
    its pipeline.config builds, at its real size: the loader plans the restore from the index (every model
    value pairs by name and shape), assigns nothing, and says why, naming the file."""
    from detscope.core.app.host import restore_refusal

    plan = builders.plan_for(recognise(car_run))
    assert plan is not None and plan.config == car_run / "pipeline.config"
    model = engine.run_sync(load_model, car_run, warmup=False)
    report = model.report
    assert model.how == "built" and report.source == "ckpt-6"
    assert report.verdict == "failed" and report.assigned is False
    assert len(report.matched) == 384 and not report.missing and not report.shape_mismatches
    groups = {g: len(items) for g, items in report.unused_by_group().items()}
    assert groups == {"optimizer_slot": 232, "optimizer": 3, "counter": 2}     # all 622 entries of its index, less the graph
    assert report.notes[0].startswith("ckpt-6.data-00000-of-00001 is missing")
    assert report.notes[1] == "nothing was assigned: the lists are what ckpt-6.index says would be restored"
    assert report.summary().startswith("failed: nothing assigned (384 values would match)")
    assert report.as_json()["assigned"] is False
    refusal = restore_refusal(model.how, report)
    assert refusal.startswith(f"ckpt-6 restored nothing into {DESCRIPTION} (failed: ckpt-6.data-00000-of-00001 "
                              "is missing")


@needs_od_api
def test_a_num_classes_change_on_the_real_index_lists_the_class_head_and_the_config_value(car_run, engine,
                                                                                            tmp_path):
    """The same index-only run with num_classes 1 -> 3 in its config: every class-head value is listed with
    both shapes and explained by model.ssd.num_classes, before the missing shard is reported."""
    folder = tmp_path / "my_ssd_mobnet"
    shutil.copytree(car_run, folder)
    config = folder / "pipeline.config"
    text = config.read_text()
    assert "num_classes: 1\n" in text
    config.write_text(text.replace("num_classes: 1\n", "num_classes: 3\n", 1))
    report = engine.run_sync(load_model, folder, warmup=False).report
    assert report.verdict == "failed" and report.assigned is False
    assert len(report.matched) == 382 and not report.missing
    bundle = Bundle(folder / "ckpt-6")
    head = ("model/_box_predictor/_prediction_heads/class_predictions_with_background/_class_predictor_layers/0/"
            "{}/.ATTRIBUTES/VARIABLE_VALUE")
    assert {m.key for m in report.shape_mismatches} == {head.format("bias"), head.format("pointwise_kernel")}
    for m in report.shape_mismatches:
        assert tuple(m.checkpoint_shape) == tuple(bundle.entries[m.key].shape)
        # 6 anchors x (1 class + background) in the checkpoint, 6 x (3 + background) in the model
        assert m.checkpoint_shape[-1] == 12 and m.model_shape[-1] == 24 and m.model_shape[:-1] == m.checkpoint_shape[:-1]
    assert report.notes[0].startswith("ckpt-6.data-00000-of-00001 is missing")
    note = next(n for n in report.notes if "class head" in n)
    assert note.startswith("2 shape mismatches are the class head: pipeline.config has model.ssd.num_classes: 3, "
                           "the checkpoint was trained with num_classes: 1")


# --- without the framework -----------------------------------------------------------------------------

def test_without_the_od_api_one_line_says_what_to_install_and_the_export_command(realdata, tmp_path):
    run = realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    image = next((realdata / "car-ssd-fpnlite-training" / "images" / "test").glob("*.jpeg"))
    code = textwrap.dedent(f"""
        import sys
        sys.modules["object_detection"] = None      # not installed, as far as this process can tell
        from detscope.core.cli.main import main
        sys.exit(main(["detect", {str(run)!r}, {str(image)!r}]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    line = lines[0]
    assert line.startswith("error: my_ssd_mobnet/pipeline.config is built with the TensorFlow Object Detection "
                           f"API, which is not installed for {sys.executable} ")
    assert "(it is not on PyPI; install it from the models repository: git clone --depth 1 " \
           "https://github.com/tensorflow/models && cd models/research && protoc object_detection/protos/*.proto " \
           "--python_out=. && cp object_detection/packages/tf2/setup.py . && " in line
    assert f"{sys.executable} -m pip install .)" in line
    assert ("python models/research/object_detection/exporter_main_v2.py --input_type image_tensor "
            f"--pipeline_config_path {run.resolve() / 'pipeline.config'} --trained_checkpoint_dir {run.resolve()} "
            f"--output_directory {run.resolve() / 'export'}") in line


def test_the_packaged_app_offers_the_export_command_not_an_install(car_run, monkeypatch):
    """In the packaged app (sys.frozen) nothing can be pip-installed: the line says so and gives the export
    command to run where the OD API is installed."""
    plan = builders.plan_for(recognise(car_run))
    assert "pip install" in odapi.missing_message(plan)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    line = odapi.missing_message(plan)
    assert "\n" not in line and "pip install" not in line and sys.executable not in line
    assert line.startswith("my_ssd_mobnet/pipeline.config is built with the TensorFlow Object Detection API, which "
                           "this packaged detscope does not include (nothing can be installed into the app); "
                           "export the checkpoint in a Python where the OD API is installed and open the export "
                           "here: python models/research/object_detection/exporter_main_v2.py ")
    assert f"--pipeline_config_path {car_run.resolve() / 'pipeline.config'} " in line
    assert line.endswith("(or give an export of the same model with --template)")


# --- Keras 2 for the OD API, Keras 3 for .keras files, in one process ------------------------------------

@needs_od_api
def test_an_od_api_folder_and_keras_3_files_in_one_process(runs, tmp_path):
    """TF_USE_LEGACY_KERAS=1 (set before TensorFlow is imported, because the OD API is installed) makes
    tf.keras Keras 2; a Keras 3 .keras file opened before and after the OD API model still loads as Keras 3."""
    training = runs("ssd") / "training"
    code = textwrap.dedent(f"""
        import json, os
        import numpy as np
        from detscope.core.app.host import ModelHost
        from detscope.core.runtime.tfimport import import_tensorflow

        def make_keras3(path):
            import keras
            inputs = keras.Input((None, None, 3), name="images")
            pooled = keras.layers.GlobalAveragePooling2D()(inputs)
            boxes = keras.layers.Reshape((1, 4), name="boxes")(keras.layers.Dense(4, name="box_dense")(pooled))
            conf = keras.layers.Reshape((1,), name="confidence")(keras.layers.Dense(1, name="conf_dense")(pooled))
            keras.Model(inputs, {{"boxes": boxes, "confidence": conf}}).save(path)

        host = ModelHost()
        host.engine.run_sync(import_tensorflow)          # as any load does first
        a, b = {str(tmp_path / "a.keras")!r}, {str(tmp_path / "b.keras")!r}
        host.engine.run_sync(make_keras3, a)
        host.engine.run_sync(make_keras3, b)
        seen = []
        for path in (a, {str(training)!r}, b):
            summary = host.load_sync(path)
            dets = host.detect(np.zeros((40, 50, 3), np.uint8)).result()
            seen.append([summary.how, summary.report.target, str(summary.report.verdict), len(dets)])
        import tensorflow as tf
        seen.append([os.environ.get("TF_USE_LEGACY_KERAS"), tf.keras.__name__])
        host.shutdown()
        print(json.dumps(seen))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert [s[0] for s in seen[:3]] == ["keras", "built", "keras"]
    assert seen[0][1].startswith("keras 3 ") and seen[2][1].startswith("keras 3 ")
    assert seen[1][1] == DESCRIPTION
    assert [s[2] for s in seen[:3]] == ["complete"] * 3
    assert seen[3] == ["1", "tf_keras.api._v2.keras"]
