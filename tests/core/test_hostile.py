"""Hostile models: nothing that runs code or reaches outside the model loads unasked.

Every fixture is a real artifact made here with TensorFlow, Keras or h5py: SavedModels whose graphs read,
write, list files, save checkpoints or call Python (in a signature, or in a resource initializer that
``tf.saved_model.load`` itself runs), Keras 2 and Keras 3 files with a Lambda whose code writes a marker,
and HDF5 files that point at other files. Each test checks that without the flag nothing happens (the
file the model would write does not appear) and that with it the model loads. Ordinary models (the demo,
the test detectors, Keras and TF1 exports, the real BlazeFace file) must not be flagged.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import model_artifacts as ma
from detscope.core.app.host import ModelHost
from detscope.core.base.errors import LoadRefused
from detscope.core.browse.inventory import build_inventory
from detscope.core.cli import main as cli
from detscope.core.formats import effect_ops
from detscope.core.formats.kerasfile import KerasFileError, read_keras_file
from detscope.core.formats.savedmodel import read_saved_model
from detscope.core.runtime.loaders import load_keras_model
from detscope.core.runtime.model import load_model
from detscope.core.runtime.report import RestoreError

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


# --- fixtures ---------------------------------------------------------------------------------------

def _od_module(effect):
    """A tf.Module with an OD API-style serving signature that also runs ``effect()`` (a float scalar)."""

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, images):
            bump = 0.0 * effect()
            return {"detection_boxes": tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.6, 0.7]]]) + bump,
                    "detection_scores": tf.constant([[0.9, 0.8]]),
                    "detection_classes": tf.constant([[1.0, 2.0]]),
                    "num_detections": tf.constant([2.0])}

    return Hostile()


def _save(module, folder: Path) -> Path:
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


class _WritesOnLoad(tf.saved_model.experimental.TrackableResource):
    """A resource whose initializer writes a file: ``tf.saved_model.load`` runs it."""

    def __init__(self, target: str):
        self._target = target
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="detscope_hostile_resource")

    def _initialize(self):
        return tf.io.write_file(self._target, "written by tf.saved_model.load")


@pytest.fixture(scope="module")
def sm(tmp_path_factory):
    """{name: (SavedModel folder, the file it would write or None)}."""
    root = tmp_path_factory.mktemp("hostile_sm")
    secret = root / "secret.txt"
    secret.write_text("the user's private data")
    out = {}

    def files():
        text = tf.io.read_file(str(secret))
        listed = tf.io.matching_files(str(root / "*.txt"))
        return tf.cast(tf.strings.length(text) + tf.size(listed), tf.float32)
    out["read"] = (_save(_od_module(files), root / "read"), None)

    written = root / "written_by_detect.txt"

    def write():
        tf.io.write_file(str(written), "written by detect")
        return tf.constant(0.0)
    out["write"] = (_save(_od_module(write), root / "write"), written)

    by_python = root / "written_by_python.txt"

    def python():
        def callback():
            by_python.write_text("written by Python")
            return np.float32(0.0)
        return tf.py_function(callback, [], tf.float32)
    out["python"] = (_save(_od_module(python), root / "python"), by_python)

    stolen = root / "stolen_ckpt"

    def save():
        op = tf.raw_ops.SaveV2(prefix=str(stolen), tensor_names=["x"], shape_and_slices=[""],
                               tensors=[tf.constant(1.0)])
        with tf.control_dependencies([op]):       # SaveV2 alone is pruned from a tf.function
            return tf.constant(0.0)
    out["save"] = (_save(_od_module(save), root / "save"), root / "stolen_ckpt.index")

    on_load = root / "written_on_load.txt"
    module = _od_module(lambda: tf.constant(0.0))
    module.resource = _WritesOnLoad(str(on_load))
    out["init"] = (_save(module, root / "init"), on_load)

    vocab = root / "vocab.txt"
    vocab.write_text("cat\ndog\n")

    class Table(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                              tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, words):
            return {"ids": self.table.lookup(words)}
    out["table"] = (_save(Table(), root / "table"), None)
    for folder, marker in out.values():
        assert marker is None or not marker.exists(), "building a fixture must not leave its marker behind"
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile_img") / "img.png"
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(path)
    return path


def _lambda_writing(marker: Path):
    """A lambda whose bytecode (not a closure) writes ``marker``: what a Lambda layer would run when loaded."""
    return eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).write_text('lambda ran'), t)[1]")


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """{"k2_h5": (path, marker), "k3_keras": (path, marker), "k3_h5": (path, marker)}."""
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("hostile_keras")
    out = {}
    marker = root / "k2_lambda_ran"
    inp = tf_keras.Input((4,))
    x = tf_keras.layers.Lambda(_lambda_writing(marker), name="scale")(inp)
    tf_keras.Model(inp, tf_keras.layers.Dense(2, name="head")(x)).save(root / "k2.h5")
    out["k2_h5"] = (root / "k2.h5", marker)

    marker3 = root / "k3_lambda_ran"
    inp = keras.Input((4,))
    x = keras.layers.Lambda(_lambda_writing(marker3), name="scale")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(x))
    model.save(root / "k3.keras")
    out["k3_keras"] = (root / "k3.keras", marker3)
    marker3h = root / "k3h5_lambda_ran"
    inp = keras.Input((4,))
    x = keras.layers.Lambda(_lambda_writing(marker3h), name="scale")(inp)
    keras.Model(inp, keras.layers.Dense(2, name="head")(x)).save(root / "k3.h5")
    out["k3_h5"] = (root / "k3.h5", marker3h)
    for _, m in out.values():
        m.unlink(missing_ok=True)           # building the model called the lambda
    return out


@pytest.fixture(scope="module")
def h5_outside(tmp_path_factory):
    """HDF5 Keras files that point outside themselves, and the secret file they point at."""
    import h5py

    root = tmp_path_factory.mktemp("hostile_h5")
    secret = root / "secret.txt"
    secret.write_bytes(b"PRIVATE KEY " * 8)
    other = root / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.frombuffer(b"PRIVATE KEY " * 2, np.uint8)
    key = "model_weights/dense/dense/kernel:0"
    files = {}

    def weights_file(path, how):
        with h5py.File(path, "w") as f:
            f.attrs["keras_version"] = "2.15.0"
            f.create_dataset("model_weights/dense/dense/bias:0", data=np.zeros(2, np.float32))
            if how == "external":
                f.create_dataset(key, shape=(24,), dtype="u1", external=[(str(secret), 0, 24)])
            elif how == "link":
                f[key] = h5py.ExternalLink(str(other), "/x")
            elif how == "virtual":
                layout = h5py.VirtualLayout(shape=(24,), dtype="u1")
                layout[:] = h5py.VirtualSource(str(other), "x", shape=(24,))
                f.create_virtual_dataset(key, layout)
            else:
                f.create_dataset(key, data=np.ones((2, 2), np.float32))
        return path

    for how in ("external", "link", "virtual", "clean"):
        files[how] = weights_file(root / f"{how}.h5", how)
    # A .keras archive whose weights file keeps a dataset in the secret file.
    inner = io.BytesIO()
    with h5py.File(inner, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(24,), dtype="u1", external=[(str(secret), 0, 24)])
    with zipfile.ZipFile(root / "external.keras", "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}}))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("model.weights.h5", inner.getvalue())
    files["keras"] = root / "external.keras"
    return files, secret, key


# --- the op table --------------------------------------------------------------------------------------

def test_the_op_table_is_tensorflows_own_registry_and_lists_the_known_offenders():
    for op in ("ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "EagerPyFunc", "SaveV2", "RestoreV2",
               "MergeV2Checkpoints", "InitializeTableFromTextFileV2", "TFRecordDataset", "CreateSummaryFileWriter",
               "RpcClient", "DataServiceDatasetV4", "CollectiveReduceV2", "_Send", "ImmutableConst"):
        assert op in effect_ops.OPS, op
    assert effect_ops.WHEN["PrintV2"][1] == "output_stream"
    for harmless in ("Conv2D", "ReadVariableOp", "StatefulPartitionedCall", "VarHandleOp", "PrintV2",
                     "StringJoin", "ShardedFilename", "DecodeJpeg", "RegexReplace", "NonMaxSuppressionV5"):
        assert harmless not in effect_ops.OPS, harmless
    # Regenerating from the TensorFlow installed here gives the committed table, byte for byte: in a process
    # of its own, since libraries imported by other tests (the OD API's, the Model Garden's) register ops too.
    check = subprocess.run([sys.executable, str(REPO / "packaging" / "effect_ops.py"), "--check"],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stdout + check.stderr[-2000:]
    assert effect_ops.TENSORFLOW_VERSION == tf.__version__


# --- SavedModels ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, ops", [("read", {"ReadFile", "MatchingFiles"}), ("write", {"WriteFile"}),
                                       ("python", {"EagerPyFunc"}), ("save", {"SaveV2"}),
                                       ("init", {"WriteFile"}), ("table", {"InitializeTableFromTextFileV2"})])
def test_inspect_lists_what_the_graph_does_naming_the_function(sm, name, ops, capsys):
    folder, marker = sm[name]
    effects = read_saved_model(folder).effects
    assert {e.op for e in effects} == ops
    assert all(e.function.startswith("__inference_") for e in effects)
    assert cli.main(["inspect", str(folder), "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    warning = next(p for p in problems if "reaches outside the model" in p["message"])
    assert warning["severity"] == "warning" and "--trust-model" in warning["message"]
    for e in effects:
        assert e.op in warning["message"] and e.function in warning["message"]
    assert (all(e.on_load for e in effects) if name in ("init", "table") else not any(e.on_load for e in effects))
    if name == "init":
        assert "run by loading the model" in warning["message"] and "resource/_initialize" in warning["message"]
    assert build_inventory(folder).would_run
    assert marker is None or not marker.exists()


@pytest.mark.parametrize("name", ["read", "write", "python", "save", "init"])
def test_detect_refuses_a_flagged_savedmodel_before_anything_runs(sm, image, name, capsys):
    folder, marker = sm[name]
    if marker is not None:
        marker.unlink(missing_ok=True)
    assert cli.main(["detect", str(folder), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {folder}: refusing to load it")
    assert "--trust-model" in err
    assert marker is None or not marker.exists()


def test_restore_refuses_a_flagged_template(sm, tmp_path, capsys):
    run = ma.training_run(tmp_path / "run", checkpoints=1, export_model=False)
    folder, marker = sm["init"]
    marker.unlink(missing_ok=True)
    assert cli.main(["restore", str(run / "training"), "--template", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "refusing to load it" in err and "WriteFile" in err and "--trust-model" in err
    assert not marker.exists()


def test_a_resource_initializer_that_writes_runs_only_with_trust(sm):
    folder, marker = sm["init"]
    marker.unlink(missing_ok=True)
    with pytest.raises(LoadRefused) as refused:
        load_model(folder, warmup=False)
    assert not marker.exists(), "tf.saved_model.load must not have run"
    assert refused.value.options == {"trust_model": True} and refused.value.flag == "--trust-model"
    assert any("WriteFile" in line and "run by loading the model" in line for line in refused.value.would_run)
    load_model(folder, warmup=False, **refused.value.options)
    assert marker.read_text() == "written by tf.saved_model.load"
    marker.unlink()


def test_detect_with_trust_model_runs_the_model(sm, image, capsys):
    folder, marker = sm["write"]
    marker.unlink(missing_ok=True)
    assert cli.main(["detect", str(folder), str(image), "--trust-model", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["images"][0]["detections"]) == 2
    assert marker.read_text() == "written by detect"
    marker.unlink()
    for name in ("read", "save"):
        assert cli.main(["detect", str(sm[name][0]), str(image), "--trust-model"]) == 0
    assert sm["save"][1].exists()


def test_a_python_callback_model_loads_with_trust(sm):
    folder, marker = sm["python"]
    with pytest.raises(LoadRefused):
        load_model(folder, warmup=False)
    loaded = load_model(folder, warmup=False, trust_model=True)
    assert loaded.signature_name == "serving_default"


def test_the_window_gets_what_would_run_and_the_options_that_accept_it(sm):
    folder, marker = sm["init"]
    marker.unlink(missing_ok=True)
    host = ModelHost(isolated=True)         # as the window holds it: the refusal crosses from the model's process
    try:
        inventory, loading = host.open(folder)
        assert any("WriteFile" in line for line in inventory.result(timeout=60).would_run)
        with pytest.raises(LoadRefused) as refused:
            loading.result(timeout=120)
        assert not marker.exists()
        _, loading = host.open(folder, warmup=False, **refused.value.options)
        loading.result(timeout=120)
        assert marker.exists()
    finally:
        host.shutdown()
        marker.unlink(missing_ok=True)


def test_ordinary_models_are_not_flagged(demo, tmp_path):
    import keras
    import tf_keras

    assert read_saved_model(demo / "saved_model").effects == []
    assert build_inventory(demo).would_run == []
    run = ma.training_run(tmp_path / "run", checkpoints=1)
    exports = [run / "saved_model", ma.anonymous_outputs_export(tmp_path / "anon")]
    inp = keras.Input((8, 8, 3))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp))).export(str(tmp_path / "k3export"))
    inp = tf_keras.Input((8, 8, 3))
    tf_keras.Model(inp, tf_keras.layers.Dense(2)(tf_keras.layers.Flatten()(inp))).save(str(tmp_path / "tfk"))
    exports += [tmp_path / "k3export", tmp_path / "tfk", _tf1_export(tmp_path / "tf1")]
    for folder in exports:
        info = read_saved_model(folder)
        assert info.effects == [] and info.findings == [] and info.refusal() is None, folder
    # the saver's own SaveV2/RestoreV2/MergeV2Checkpoints are there, and not reported
    ops = read_saved_model(run / "saved_model").meta_graph().op_counts
    assert {"SaveV2", "RestoreV2", "MergeV2Checkpoints"} <= set(ops)
    load_model(run, warmup=False)


def test_a_real_keras_2_file_is_not_flagged(realdata):
    blazeface = read_keras_file(realdata / "blazeface-keras2-h5" / "model_weights.h5")
    assert blazeface.code == [] and blazeface.refusal() is None and blazeface.findings == []


def _tf1_export(folder: Path) -> Path:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        w = tf.compat.v1.get_variable("w", [2, 2])
        y = tf.matmul(x, w, name="y")
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                "serving_default": tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})})
            builder.save()
    return folder


# --- Keras files -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["k2_h5", "k3_keras", "k3_h5"])
def test_inspect_lists_a_lambda_as_code_that_loading_runs(keras_files, name, capsys):
    path, marker = keras_files[name]
    info = read_keras_file(path)
    assert len(info.code) == 1 and info.code[0].startswith("Lambda 'scale'")
    assert cli.main(["inspect", str(path), "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any(p["severity"] == "warning" and "Lambda 'scale'" in p["message"] and "--unsafe-keras" in p["message"]
               for p in problems)
    assert not marker.exists()


@pytest.mark.parametrize("name, command", [("k2_h5", "detect"), ("k3_keras", "restore"), ("k3_h5", "detect")])
def test_a_lambda_file_is_refused_without_unsafe_keras(keras_files, image, name, command, capsys):
    path, marker = keras_files[name]
    marker.unlink(missing_ok=True)
    argv = [command, str(path)] + ([str(image)] if command == "detect" else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {path.name}: refusing to load it")
    assert "--unsafe-keras" in err and "Lambda 'scale'" in err
    with pytest.raises(LoadRefused) as refused:
        load_keras_model(path)
    assert refused.value.options == {"safe_mode": False}
    assert not marker.exists()


@pytest.mark.parametrize("name", ["k2_h5", "k3_keras"])
def test_a_lambda_file_loads_with_unsafe_keras_and_its_code_runs(keras_files, name):
    path, marker = keras_files[name]
    marker.unlink(missing_ok=True)
    loaded = load_model(path, safe_mode=False, warmup=False)
    assert loaded.report is not None and loaded.report.matched
    assert marker.read_text() == "lambda ran"
    marker.unlink()


def test_tf_keras_refuses_a_lambda_itself_even_past_the_check(keras_files):
    """Defence in depth: were the no-Keras reader to miss the code, tf_keras's own safe mode refuses it."""
    path, marker = keras_files["k2_h5"]
    marker.unlink(missing_ok=True)
    info = read_keras_file(path)
    info.code = []                   # pretend the reader saw nothing
    with pytest.raises(RestoreError):
        load_keras_model(path, info=info)
    assert not marker.exists()


# --- HDF5 files that point outside themselves ------------------------------------------------------------

@pytest.mark.parametrize("how, says", [("external", "HDF5 external storage"), ("link", "is an external link to"),
                                       ("virtual", "virtual dataset mapped from other files"),
                                       ("keras", "HDF5 external storage")])
def test_hdf5_pointing_at_other_files_is_refused(h5_outside, tmp_path, how, says, capsys):
    files, secret, key = h5_outside
    path = files[how]
    out = tmp_path / "values.npy"
    for argv in (["inspect", str(path)], ["inspect", str(path), "--tensor", key, "--npy", str(out)],
                 ["inspect", str(path), "--tensor", key, "--json"]):
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.count("\n") == 0 and err.startswith(f"error: {path.name}") and says in err
        assert "does not read HDF5 files that point outside themselves" in err
        assert "PRIVATE" not in captured.out + captured.err
    assert not out.exists()
    with pytest.raises(KerasFileError):
        read_keras_file(path)
    with pytest.raises(KerasFileError):
        load_keras_model(path)


def test_a_file_swapped_for_an_external_one_after_reading_is_refused_on_read(h5_outside, tmp_path):
    import shutil

    files, secret, key = h5_outside
    path = tmp_path / "model.h5"
    shutil.copy(files["clean"], path)
    info = read_keras_file(path)
    assert info.read(key).shape == (2, 2)
    shutil.copy(files["external"], path)
    with pytest.raises(KerasFileError, match="HDF5 external storage"):
        info.read(key)
