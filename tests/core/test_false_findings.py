"""Findings users will believe must be true: each check runs on real or realistic configs and folders where
it must NOT fire, beside a control where it must.

Real configs: the TF2 Object Detection API's own sample configs, vendored under ``../shared/vendor`` (the
tests that need them skip without them), and ``../shared/realdata``. Checkpoints are written by
TensorFlow with the keys and head shapes the OD API builds for each config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import model_artifacts as ma
from detscope.core.browse import folders
from detscope.core.browse.inventory import build_inventory, head_classes
from detscope.core.cli import main as cli
from detscope.core.formats.configs import read_pipeline_config

tf = pytest.importorskip("tensorflow")

VENDOR_CONFIGS = (Path(__file__).resolve().parents[3] / "shared" / "vendor" / "odapi" / "research"
                  / "object_detection" / "configs" / "tf2")
CONFIG_NAMES = sorted(p.name for p in VENDOR_CONFIGS.glob("*.config")) if VENDOR_CONFIGS.is_dir() else []
ZOO = Path("car-ssd-fpnlite-training") / "pre-trained-models" / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"


def class_findings(inv) -> list:
    return [f for f in inv.findings if "num_classes" in f.message or "class head" in f.message
            or "ids up to" in f.message]


def _config(name: str) -> Path:
    if not VENDOR_CONFIGS.is_dir():
        pytest.skip(f"the OD API's sample configs are not vendored at {VENDOR_CONFIGS}")
    return VENDOR_CONFIGS / name


def _module(tree: dict) -> tf.Module:
    """Nested modules (dicts and lists kept as TensorFlow tracks them) with float variables at the leaves
    (a tuple is a variable's shape)."""
    m = tf.Module()
    for name, value in tree.items():
        if isinstance(value, dict):
            value = _module(value)
        elif isinstance(value, list):
            value = [_module(v) for v in value]
        else:
            value = tf.Variable(np.zeros(value, np.float32))
        setattr(m, name, value)
    return m


def _head_tree(cfg, slots_from_config: bool = True) -> dict:
    """The class head's variables the OD API builds for ``cfg`` (the part of the tree the check reads)."""
    n = cfg.num_classes
    if cfg.model_type == "ssd":
        background = 0 if cfg.model.get("add_background_class") is False else 1
        slots = n + (background if slots_from_config else 1)
        anchors = cfg.anchors_per_location
        if "weight_shared_convolutional_box_predictor" in cfg.model.get("box_predictor", {}):
            heads = {"_class_predictor_layers": [{"bias": (anchors * slots,)}]}
        else:  # one head per feature map; the lowest has 3 boxes per cell (reduce_boxes_in_lowest_layer)
            heads = [{"_class_predictor_layers": [{"bias": ((3 if i == 0 else anchors) * slots,)}]} for i in range(6)]
        return {"_box_predictor": {"_prediction_heads": {"class_predictions_with_background": heads}}}
    if cfg.model_type == "center_net":
        return {"_prediction_head_dict": {"object_center": [{"layer_with_weights-0": {"bias": (256,)},
                                                             "layer_with_weights-1": {"bias": (n,)}}]}}
    # Faster R-CNN: no rule says how to read its head, so nothing may be concluded from it.
    return {"_mask_rcnn_box_predictor": {"_class_prediction_head": {"_class_predictor_layers": [{"bias": (n + 1,)}]}}}


def zoo_folder(folder: Path, config: Path, head: dict, labels: int | None = None) -> Path:
    """A Model Zoo download's layout: pipeline.config, checkpoint/ckpt-0 with its state file, and (with
    ``labels``) a label map of that many classes in the folder."""
    folder.mkdir(parents=True)
    shutil.copy(config, folder / "pipeline.config")
    tf.train.Checkpoint(model=_module(head)).write(str(folder / "checkpoint" / "ckpt-0"))
    (folder / "checkpoint" / "checkpoint").write_text('model_checkpoint_path: "ckpt-0"\n')
    if labels:
        _label_map(folder / "label_map.pbtxt", labels)
    return folder


def _label_map(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'item {{\n  id: {i}\n  name: "class{i}"\n}}\n' for i in range(1, n + 1)))
    return path


# --- the class head ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIG_NAMES or ["(vendored configs absent)"])
def test_class_count_checks_are_silent_on_every_vendored_config(tmp_path, name):
    # Must not fire: each sample config with the head the OD API builds for it and a matching label map.
    # EfficientDet (add_background_class: false) keeps no background slot; the other SSDs keep one.
    config = _config(name)
    cfg = read_pipeline_config(config)
    inv = build_inventory(zoo_folder(tmp_path / "zoo", config, _head_tree(cfg), labels=cfg.num_classes))
    assert class_findings(inv) == []
    if cfg.model_type in ("ssd", "center_net"):
        assert head_classes(inv) == cfg.num_classes


def test_efficientdet_head_with_a_background_slot_is_still_caught(tmp_path):
    # The control: an EfficientDet config whose head has 9 x 91 values (a background slot it should not have).
    config = _config("ssd_efficientdet_d0_512x512_coco17_tpu-8.config")
    cfg = read_pipeline_config(config)
    inv = build_inventory(zoo_folder(tmp_path / "zoo", config, _head_tree(cfg, slots_from_config=False), labels=90))
    (f,) = class_findings(inv)
    assert f.severity == "error" and "says num_classes 90 but the class head in ckpt-0.index predicts 91 classes" \
        in f.message


# --- a label map that is not the model's --------------------------------------------------------------

def _workspace(tmp_path: Path, *, named: bool = False) -> Path:
    """A TensorFlow/workspace layout: the fine-tune's one-class label map in annotations/, and the Model Zoo
    base model (EfficientDet D0, 90 classes) two folders below it, whose config names no label map."""
    config = _config("ssd_efficientdet_d0_512x512_coco17_tpu-8.config")
    cfg = read_pipeline_config(config)
    ws = tmp_path / "workspace"
    _label_map(ws / "annotations" / "label_map.pbtxt", 1)
    zoo = zoo_folder(ws / "pre-trained-models" / "efficientdet_d0_coco17_tpu-32", config, _head_tree(cfg))
    if named:
        text = (zoo / "pipeline.config").read_text().replace('"PATH_TO_BE_CONFIGURED/label_map.txt"',
                                                             '"../../annotations/label_map.pbtxt"')
        (zoo / "pipeline.config").write_text(text)
    return zoo


def test_a_label_map_two_folders_up_is_not_compared(tmp_path):
    zoo = _workspace(tmp_path)
    inv = build_inventory(zoo)
    assert inv.label_map is not None and not folders.label_map_is_own(inv.folder)
    (f,) = class_findings(inv)
    assert f.severity == "info"
    assert f.message == ("label_map.pbtxt (found in ../../annotations/) has ids up to 1 but the model has 90 classes; "
                         "it lies outside the model's folder and its config does not name it, so it may belong to "
                         "another model: not compared")


def test_a_label_map_the_config_names_is_compared_wherever_it_is(tmp_path):
    # The control: the same label map, named by the config, is the model's own: the disagreement is an error.
    inv = build_inventory(_workspace(tmp_path, named=True))
    assert folders.label_map_is_own(inv.folder)
    errors = [f for f in class_findings(inv) if f.severity == "error"]
    assert errors and "label_map.pbtxt has ids up to 1" in errors[0].message


def test_own_label_maps_are_recognised_in_the_usual_layouts(tmp_path, demo):
    # Must not be mistaken for a stranger's: the demo's label map beside training/ and saved_model/.
    for opened in (demo, demo / "training", demo / "saved_model"):
        mf = folders.recognise(opened)
        assert mf.label_map == demo / "label_map.pbtxt" and folders.label_map_is_own(mf), opened
    # ... nor a label map in the folder's annotations/.
    zoo = _workspace(tmp_path)
    _label_map(zoo / "annotations" / "label_map.pbtxt", 3)
    mf = folders.recognise(zoo)
    assert mf.label_map == zoo / "annotations" / "label_map.pbtxt" and folders.label_map_is_own(mf)


def test_real_model_zoo_folder_is_not_compared_with_the_fine_tunes_label_map(realdata):
    inv = build_inventory(realdata / ZOO)
    assert not [f for f in class_findings(inv) if f.severity != "info"]
    (f,) = class_findings(inv)
    assert "may belong to another model: not compared" in f.message
    # The fine-tuning run's config names that label map (by its trailing path): it is compared, and agrees.
    run = build_inventory(realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet")
    assert folders.label_map_is_own(run.folder) and class_findings(run) == []


# --- a SavedModel one level deeper ------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("false-findings") / "run")


def _versioned(run: Path, dest: Path, versions=("1",)) -> Path:
    """An export whose SavedModel sits one level deeper, as TensorFlow Serving versions them."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("saved_model"))
    for v in versions:
        shutil.copytree(run / "saved_model", dest / "saved_model" / v)
    return dest


def test_a_savedmodel_one_level_deeper_is_found_not_missing(run, tmp_path, capsys):
    export = _versioned(run, tmp_path / "export")
    data = _inspect(capsys, export)
    assert not any("is missing" in p["message"] for p in data["problems"])
    assert {"severity": "info", "message": "the SavedModel is one level deeper, in saved_model/1/",
            "file": str(export / "saved_model" / "1")} in data["problems"]
    assert data["signatures"]
    # The versions folder opened by itself.
    data = _inspect(capsys, export / "saved_model")
    assert data["kind"] == "saved_model" and data["signatures"]
    img = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(img)
    assert cli.main(["detect", str(export), str(img), "--json", "--threshold", "0"]) == 0
    assert len(json.loads(capsys.readouterr().out)["images"][0]["detections"]) == ma.ANCHORS


def test_two_savedmodels_one_level_deeper_are_named_not_picked(run, tmp_path, capsys):
    export = _versioned(run, tmp_path / "export", versions=("1", "2"))
    data = _inspect(capsys, export)
    assert not any("saved_model.pb is missing" in p["message"] for p in data["problems"])
    assert any(p["message"] == "saved_model/ holds 2 SavedModels one level deeper (1/, 2/); open the one you mean: "
                               "detscope does not pick one" for p in data["problems"])
    code = cli.main(["inspect", str(export / "saved_model")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds no model itself but 2 SavedModels one level deeper (1/, 2/)" \
        in err[0]


def test_a_savedmodel_without_its_graph_is_still_missing(run, tmp_path, capsys):
    # The control: saved_model/ with variables/ and no saved_model.pb, nothing deeper.
    export = shutil.copytree(run, tmp_path / "export")
    (export / "saved_model" / "saved_model.pb").unlink()
    data = _inspect(capsys, export)
    assert any("saved_model/saved_model.pb is missing" in p["message"] and p["severity"] == "error"
               for p in data["problems"])


def _inspect(capsys, path) -> dict:
    code = cli.main(["inspect", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# --- Keras files -----------------------------------------------------------------------------------

def _keras_files(folder: Path, names) -> Path:
    import keras

    folder.mkdir()
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    for name in names:
        model.save(folder / name)
    return folder


def test_a_folder_with_two_keras_files_names_them(tmp_path, capsys):
    folder = _keras_files(tmp_path / "models", ["best.keras", "last.keras"])
    code = cli.main(["inspect", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {folder} holds 2 Keras files (best.keras, last.keras): open the one you "
                                 "mean; detscope does not pick one"]


def test_a_folder_with_one_keras_file_opens_it(tmp_path, capsys):
    # The control, and must not fire: one Keras file is the model.
    folder = _keras_files(tmp_path / "models", ["best.keras"])
    data = _inspect(capsys, folder)
    assert data["kind"] == "keras" and data["problems"] == []


# --- checks of the parts, silent on sound folders --------------------------------------------------

def test_sound_folders_have_no_part_findings(run, demo, realdata):
    # Must not fire: the integrity checks (shards, the export's own variables, frozen TF1 exports) on a
    # training run, the demo opened every way, and the real folders.
    parts = ("shard", "variables/", "variables.index", "is a folder", "is empty", "truncated", "frozen",
             "one level deeper", "not a SavedModel")
    for opened in (run, run / "training", run / "saved_model", demo, demo / "training", demo / "saved_model",
                   realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"):
        inv = build_inventory(opened)
        noisy = [f.message for f in inv.findings if any(p in f.message for p in parts)
                 and "is missing; names and shapes are still browsable" not in f.message
                 and "the object graph is in a data shard" not in f.message]
        assert noisy == [], opened
