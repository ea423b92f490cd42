"""Model Garden training folders built with the Model Garden (core.runtime.builders.garden).

A real run, made by the Model Garden itself (``garden_artifacts.py``, in its own process): a tiny RetinaNet
from the ``retinanet_resnetfpn_coco`` experiment, ``ckpt-1`` and ``params.yaml`` as its training loop saves
them, exported with its own exporter. detscope opens the training folder (no export, no code) and must detect
what the export serves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import garden_artifacts as ga
from detscope.core.browse.folders import recognise
from detscope.core.detect.conventions import decode, prepare
from detscope.core.formats.bundle import Bundle
from detscope.core.media.images import load_image
from detscope.core.runtime import builders
from detscope.core.runtime.builders import garden
from detscope.core.runtime.engine import Engine
from detscope.core.runtime.model import load_model

REPO = Path(__file__).resolve().parents[2]
CAR = (REPO.parent / "shared" / "realdata" / "car-ssd-fpnlite-training").resolve()
DESCRIPTION = "built from params.yaml with the Model Garden"
SIZE = 128
SCORES = "model/_head/_classifier/{}/.ATTRIBUTES/VARIABLE_VALUE"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Run:
    root: Path
    images: list

    @property
    def training(self) -> Path:
        return self.root / "training"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """The run (made once; DETSCOPE_GARDEN_RUNS keeps it in a folder of your choice for later sessions)."""
    if ga.garden_missing():
        pytest.skip(ga.garden_missing())
    root = Path(os.environ["DETSCOPE_GARDEN_RUNS"]) if os.environ.get("DETSCOPE_GARDEN_RUNS") else \
        tmp_path_factory.mktemp("garden")
    images = sorted((CAR / "images" / "test").glob("*.jpeg"))[:2] if CAR.is_dir() else []
    if not images:
        from PIL import Image

        rng = np.random.default_rng(5)
        (root / "images").mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate([(97, 131), (120, 80)]):
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"img{i}.png")
            images.append(root / "images" / f"img{i}.png")
    return Run(ga.make(root / "retinanet", SIZE, images), images)


@pytest.fixture(scope="module")
def engine():
    e = Engine()
    yield e
    e.shutdown(timeout=30)


# --- recognising, without TensorFlow -------------------------------------------------------------

def test_the_registry_names_the_model_garden_and_params_yaml_without_tensorflow(run):
    code = textwrap.dedent(f"""
        import sys
        from detscope.core.browse.folders import recognise
        from detscope.core.runtime.builders import plan_for
        plan = plan_for(recognise({str(run.training)!r}))
        print(plan.builder.name, "|", plan.config.name)
        assert "tensorflow" not in sys.modules and "official" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "the TensorFlow Model Garden | params.yaml"


# --- detections equal the export's ----------------------------------------------------------------

def test_detections_from_the_training_folder_equal_the_model_gardens_export(run, engine):
    model = engine.run_sync(load_model, run.training)
    assert model.how == "built"
    report = model.report
    assert report.verdict == "complete" and report.target == DESCRIPTION and report.source == "ckpt-1"
    assert not report.missing and not report.shape_mismatches
    assert {u.group for u in report.unused} <= {"optimizer", "optimizer_slot", "counter"}
    assert any(f.message.startswith(f"{DESCRIPTION} (retinanet_resnetfpn_coco, resnet, num_classes 5;")
               for f in model.findings)
    assert model.detector.mapping.convention == "model_garden"
    export = np.load(run.root / ga.DETECTIONS)
    found = 0
    for i, path in enumerate(run.images):
        image = load_image(path)
        h, w = image.shape[:2]
        theirs = {k.split("/", 1)[1]: v for k, v in export.items() if k.startswith(f"{i}/")}
        raw = engine.run_sync(model.detector.call, prepare(image, model.detector.image_input))
        assert set(raw) == set(theirs)
        for key in theirs:
            assert raw[key].shape == theirs[key].shape and raw[key].dtype == theirs[key].dtype, key
            assert np.abs(raw[key].astype(np.float64) - theirs[key]).max(initial=0) <= 1e-4, key
        ours = engine.run_sync(model.detect, image)
        expected = decode(theirs, model.detector.mapping, w, h)
        n = int(theirs["num_detections"][0])
        assert len(ours) == len(expected) == n
        assert np.abs(ours.boxes - expected.boxes).max(initial=0) <= 1e-3
        assert np.array_equal(ours.class_ids, expected.class_ids)
        assert np.allclose(ours.scores, expected.scores, rtol=0, atol=1e-6)
        assert ours.class_ids.min(initial=1) >= 1 and ours.class_ids.max(initial=4) <= 4   # 0 is the background
        found += n
    assert found > 0


# --- a num_classes change --------------------------------------------------------------------------

def test_a_num_classes_change_lists_the_class_head_and_the_config_value(run, engine, tmp_path):
    folder = tmp_path / "training"
    shutil.copytree(run.training, folder)
    config = folder / "params.yaml"
    text = config.read_text()
    assert text.count("  num_classes: 5\n") == 1
    config.write_text(text.replace("  num_classes: 5\n", "  num_classes: 3\n"))
    model = engine.run_sync(load_model, folder, warmup=False)
    report = model.report
    assert report.verdict == "partial"
    bundle = Bundle(folder / "ckpt-1")
    assert {m.key for m in report.shape_mismatches} == {SCORES.format("kernel"), SCORES.format("bias")}
    for m in report.shape_mismatches:
        assert tuple(m.checkpoint_shape) == tuple(bundle.entries[m.key].shape)
        # 6 anchors (2 scales x 3 aspect ratios) x 5 classes in the checkpoint, x 3 in the model
        assert m.checkpoint_shape[-1] == 30 and m.model_shape[-1] == 18
    note = next(n for n in report.notes if "class head" in n)
    assert note.startswith("2 shape mismatches are the class head: params.yaml has task.model.num_classes: 3, the "
                           "checkpoint was trained with num_classes: 5; set task.model.num_classes to 5")


# --- without the framework -----------------------------------------------------------------------------

def test_without_the_model_garden_one_line_says_what_to_install_and_the_export_command(run):
    training = run.training
    code = textwrap.dedent(f"""
        import sys
        sys.modules["official"] = None      # not installed, as far as this process can tell
        from detscope.core.cli.main import main
        sys.exit(main(["detect", {str(training)!r}, {str(run.images[0])!r}]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    line = lines[0]
    assert line.startswith("error: training/params.yaml is built with the TensorFlow Model Garden, which is not "
                           f"installed for {sys.executable} (install it: {sys.executable} -m pip install "
                           "tensorflow-datasets gin-config immutabledict pycocotools matplotlib && "
                           f"{sys.executable} -m pip install --no-deps tf-models-official==2.20.0); or export ")
    t = training.resolve()
    assert line.endswith(
        "open this folder again: python -m official.vision.serving.export_saved_model "
        f"--experiment=retinanet_resnetfpn_coco --config_file={t / 'params.yaml'} --checkpoint_path={t / 'ckpt-1'} "
        f"--export_dir={t / 'export'} --batch_size=1 --input_image_size={SIZE},{SIZE} "
        "(or give an export of the same model with --template)")


def test_the_packaged_app_offers_the_export_command_not_an_install(run, monkeypatch):
    plan = builders.plan_for(recognise(run.training))
    assert plan.builder.name == garden.NAME
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    line = garden.missing_message(plan)
    assert "\n" not in line and "pip install" not in line and sys.executable not in line
    assert line.startswith("training/params.yaml is built with the TensorFlow Model Garden, which this packaged "
                           "detscope does not include (nothing can be installed into the app); export the checkpoint "
                           "in a Python where the Model Garden is installed and open the export here: python -m "
                           "official.vision.serving.export_saved_model --experiment=retinanet_resnetfpn_coco ")
