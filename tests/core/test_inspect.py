"""`detscope inspect`: every kind of model folder, its JSON, and the broken cases users meet."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import model_artifacts as ma
import tf_artifacts as ta
from detscope.core.cli import main as cli
from detscope.core.browse import folders

tf = pytest.importorskip("tensorflow")


def inspect_json(capsys, *args):
    code = cli.main(["inspect", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def inspect_error(capsys, *args):
    code = cli.main(["inspect", *map(str, args)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), captured
    return lines[0]


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return tmp_path_factory.mktemp("inspect")


@pytest.fixture(scope="module")
def run(art):
    return ma.training_run(art / "run")


def test_importing_core_loads_neither_tensorflow_nor_qt():
    code = ("import sys, detscope.core.cli.main, detscope.core.browse.inventory, detscope.core.runtime.model, detscope.core.runtime.engine;"
            "bad = [m for m in ('tensorflow', 'PySide6', 'keras', 'tf_keras') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("builder", [ta.keras3_checkpoint, ta.tf_keras_checkpoint, ta.all_dtypes_checkpoint,
                                     ta.tf1_checkpoint, ta.sharded_checkpoint])
def test_entries_equal_tensorflows_listing(art, capsys, builder):
    prefix = builder(art)
    data = inspect_json(capsys, prefix)
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    listed = dict(tf.train.list_variables(str(prefix)))
    assert {e["key"]: e["shape"] for e in data["entries"]} == {k: list(s) for k, s in listed.items()}
    for e in data["entries"]:
        expected = dtypes[e["key"]]
        if expected == tf.string:
            assert e["dtype"] == "object"
        elif expected.is_quantized:  # NumPy holds these as structured records; TF's name says more
            assert e["dtype"] == expected.name
        else:
            assert e["dtype"] == np.dtype(expected.as_numpy_dtype).name
    assert data["kind"] == ("tf1_checkpoint" if builder is ta.tf1_checkpoint else "checkpoint")


def test_checkpoint_folder_lists_checkpoints_newest_first_with_steps(run, capsys):
    data = inspect_json(capsys, run / "training")
    assert data["kind"] == "checkpoint_folder"
    assert [(c["prefix"].rsplit("/", 1)[1], c["step"]) for c in data["checkpoints"]] == [("ckpt-2", 6), ("ckpt-1", 3)]
    assert all(c["entries"] == len(data["entries"]) for c in data["checkpoints"])
    older = inspect_json(capsys, run / "training", "--checkpoint", "ckpt-1")
    step = next(e for e in older["entries"] if e["key"] == "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert step["dtype"] == "int64"


@pytest.mark.parametrize("opened", ["training/ckpt-1", "training/ckpt-1.index",
                                    "training/ckpt-1.data-00000-of-00001"])
def test_a_single_checkpoint_by_prefix_index_or_data_file(run, opened):
    mf = folders.recognise(run / opened)
    assert mf.kind == "checkpoint"
    assert mf.selected.name == "ckpt-1" and mf.latest.name == "ckpt-2"


def test_od_api_export_shows_signatures_label_map_and_config(run, capsys):
    data = inspect_json(capsys, run)
    assert data["kind"] == "od_api_export"
    sig = {s["name"]: s for s in data["signatures"]}["serving_default"]
    assert sig["inputs"] == [{"name": "input_tensor", "dtype": "uint8", "shape": [1, None, None, 3]}]
    outputs = {o["name"]: o for o in sig["outputs"]}
    assert outputs["detection_boxes"]["shape"] == [1, ma.ANCHORS, 4]
    assert outputs["num_detections"]["dtype"] == "float32"
    assert data["label_map"] == [{"id": 1, "name": "cat", "display_name": None},
                                 {"id": 2, "name": "dog", "display_name": None},
                                 {"id": 3, "name": "fox", "display_name": None}]
    assert data["problems"] == []


def test_saved_model_alone_browses_its_variables(run, capsys):
    data = inspect_json(capsys, run / "saved_model")
    assert data["kind"] == "saved_model"
    keys = {e["key"] for e in data["entries"]}
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in keys
    assert sum(k.startswith("_model/variables/") for k in keys) == 8  # as TensorFlow keys them
    assert data["checkpoints"][0]["prefix"].endswith("variables/variables")
    assert folders.recognise(run / "saved_model" / "saved_model.pb").kind == "saved_model"
    assert folders.recognise(run / "saved_model" / "variables").kind == "variables"


def test_model_garden_export_is_recognised(run, tmp_path):
    shutil.copytree(run / "saved_model", tmp_path / "export" / "saved_model")
    (tmp_path / "export" / "params.yaml").write_text(
        "task:\n  model:\n    num_classes: 4\n    input_size: [32, 32, 3]\n")
    assert folders.recognise(tmp_path / "export").kind == "model_garden_export"


def test_keras_file(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, name="head")])
    model.save(tmp_path / "m.keras")
    data = inspect_json(capsys, tmp_path / "m.keras")
    assert data["kind"] == "keras"
    assert sorted(e["shape"] for e in data["entries"]) == [[3], [8, 3]]


def test_tensor_statistics_and_npy(run, tmp_path, capsys):
    key = "model/box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    prefix = run / "training" / "ckpt-2"
    code = cli.main(["inspect", str(run / "training"), "--tensor", key, "--json"])
    stats = json.loads(capsys.readouterr().out)
    value = tf.train.load_checkpoint(str(prefix)).get_tensor(key)
    assert code == 0
    assert stats["min"] == pytest.approx(float(value.min())) and stats["max"] == pytest.approx(float(value.max()))
    assert stats["mean"] == pytest.approx(float(value.mean()), rel=1e-6)
    assert cli.main(["inspect", str(run / "training"), "--tensor", key, "--npy", str(tmp_path / "k.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "k.npy"), value)
    capsys.readouterr()
    assert "no entry" in inspect_error(capsys, run / "training", "--tensor", "model/nope")


# --- broken folders ---------------------------------------------------------------------------------

def test_missing_data_shard_still_browses(run, tmp_path, capsys):
    folder = shutil.copytree(run / "training", tmp_path / "training")
    (folder / "ckpt-2.data-00000-of-00001").unlink()
    data = inspect_json(capsys, folder)
    assert any(p["message"].startswith("ckpt-2.data-00000-of-00001 is missing; names and shapes are still browsable")
               for p in data["problems"])
    assert len(data["entries"]) > 10
    line = inspect_error(capsys, folder, "--tensor", "model/box_head/bias/.ATTRIBUTES/VARIABLE_VALUE")
    assert "ckpt-2.data-00000-of-00001" in line and "missing" in line


def test_git_lfs_pointer(run, tmp_path, capsys):
    folder = shutil.copytree(run / "training", tmp_path / "training")
    (folder / "ckpt-2.index").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 123\n")
    data = inspect_json(capsys, folder)
    lfs = [p for p in data["problems"] if "git lfs pull" in p["message"]]
    assert lfs and lfs[0]["severity"] == "error" and lfs[0]["file"].endswith("ckpt-2.index")


def test_saved_model_without_saved_model_pb(run, tmp_path, capsys):
    folder = shutil.copytree(run / "saved_model", tmp_path / "saved_model")
    (folder / "saved_model.pb").unlink()
    data = inspect_json(capsys, folder)
    assert any("saved_model.pb is missing" in p["message"] and p["severity"] == "error" for p in data["problems"])
    assert data["entries"]  # the variables are still browsable


def test_empty_unrelated_and_absent_paths_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "empty folder" in inspect_error(capsys, tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert "holds no model" in inspect_error(capsys, tmp_path / "notes")
    assert "does not exist" in inspect_error(capsys, tmp_path / "nowhere")
    (tmp_path / "bad.index").write_bytes(b"\x00" * 10)
    assert "bad.index" in inspect_error(capsys, tmp_path / "bad.index")


def test_cli_as_a_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "detscope.core.cli.main", "inspect", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


# --- real third-party folders -------------------------------------------------------------------------

def test_real_od_api_training_folder(realdata, capsys):
    folder = realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    data = inspect_json(capsys, folder)
    assert data["kind"] == "checkpoint_folder"
    assert [c["prefix"].rsplit("/", 1)[1] for c in data["checkpoints"]] == [f"ckpt-{n}" for n in range(6, 0, -1)]
    assert data["label_map"] == [{"id": 1, "name": "car", "display_name": None}]
    assert any("ckpt-6.data-00000-of-00001 is missing" in p["message"] for p in data["problems"])
    first = inspect_json(capsys, folder, "--checkpoint", "ckpt-1")
    assert not any(".OPTIMIZER_SLOT" in e["key"] for e in first["entries"])
    assert any(".OPTIMIZER_SLOT" in e["key"] for e in data["entries"])


def test_real_model_zoo_folder(realdata, capsys):
    folder = realdata / "car-ssd-fpnlite-training" / "pre-trained-models" / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"
    data = inspect_json(capsys, folder)
    assert data["kind"] == "od_api_export"
    assert any("saved_model.pb is missing" in p["message"] for p in data["problems"])
    assert data["checkpoints"][0]["prefix"].endswith("ckpt-0")


def test_real_keras2_h5(realdata, capsys):
    data = inspect_json(capsys, realdata / "blazeface-keras2-h5" / "model_weights.h5")
    assert data["kind"] == "keras"
    total = sum(int(np.prod(e["shape"])) for e in data["entries"])
    assert total == 101_390


def test_num_classes_checked_against_label_map_and_class_head(realdata, tmp_path, capsys):
    from detscope.core.browse.inventory import build_inventory, head_classes

    src = realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    inv = build_inventory(src)
    assert head_classes(inv) == 1  # 12 bias values = 6 anchors x (1 class + background)
    assert not any("num_classes" in f.message for f in inv.findings)
    folder = tmp_path / "run"
    folder.mkdir()
    for f in src.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "pipeline.config").unlink()
    (folder / "pipeline.config").write_text((src / "pipeline.config").read_text().replace(
        "num_classes: 1", "num_classes: 2"))
    problems = inspect_json(capsys, folder)["problems"]
    msg = [p for p in problems if "num_classes 2" in p["message"]]
    assert msg and msg[0]["severity"] == "error"
    assert "class head in ckpt-6.index predicts 1 class;" in msg[0]["message"]


def test_detscope_gui_opens_the_window_without_tensorflow(demo):
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "detscope.core.cli.main", "gui", str(demo), "--exit-when-shown"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "window-shown" in proc.stdout and "tensorflow=False" in proc.stdout
