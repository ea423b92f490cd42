"""Findings carry the checkpoint key of the variable they name, and the inventory says which tree node that is.

Real artifacts only: Keras 3 and Keras 2 (tf_keras) checkpoints written by TensorFlow, an OD API-shaped
training run, the bundled demo's training checkpoints and ../shared/realdata's SSD training run (each also
with its config changed so that the class-head check fires), and a checkpoint whose index and object graph
disagree, written with TensorFlow's own SaveV2.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import model_artifacts as ma
import tf_artifacts as ta
from detscope.core.base.findings import ERROR, INFO, WARNING, Finding, Severity
from detscope.core.browse.inventory import FINDING, VALUE_KINDS, NodeKind, build_inventory, class_head
from detscope.core.formats.objectgraph import OBJECT_GRAPH_KEY

pytestmark = pytest.mark.slow

VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
PATH_TOKEN = re.compile(r"[\w.\-]+(?:/[\w.\-]+)+")
DEMO_HEAD = "model/class_head/out/bias" + VALUE_SUFFIX
SSD_HEAD = ("model/_box_predictor/_prediction_heads/class_predictions_with_background/_class_predictor_layers/0/"
            "bias" + VALUE_SUFFIX)


@pytest.fixture(scope="session")
def art_dir(tmp_path_factory) -> Path:
    """The directory test_bundle.py shares too (the builders return what is already there)."""
    path = tmp_path_factory.getbasetemp() / "tf_artifacts"
    path.mkdir(exist_ok=True)
    return path


def _keys_named(inv, message: str) -> set[str]:
    """The checkpoint keys a message names, by key or by object path (the key without its attribute)."""
    known = set(inv.bundle.entries) | (set(inv.object_graph.by_key) if inv.object_graph else set())
    by_path = {k[:-len(VALUE_SUFFIX)]: k for k in known if k.endswith(VALUE_SUFFIX)}
    named = set()
    for token in PATH_TOKEN.findall(message):
        token = token.rstrip(".")
        if token in known:
            named.add(token)
        elif token in by_path:
            named.add(by_path[token])
    return named


def check_findings_resolve(inv, head_key: str | None = None) -> list[Finding]:
    """Every finding that names a variable carries its key and resolves to the node with that key; every
    other finding of the inventory resolves to its own row under Problems. Returns the variable findings."""
    about_variables = []
    for f in inv.findings:
        named = _keys_named(inv, f.message)
        if "but the class head" in f.message:      # the head's count is one of the two that disagree
            named.add(head_key)
        node = inv.node_for(f)
        if named or f.key:
            assert f.key is not None and f.key in named, f"{f.line()}: key {f.key!r}, names {sorted(named)}"
            assert node is not None and node.key == f.key and node.kind in VALUE_KINDS, f.line()
            about_variables.append(f)
        else:
            assert node is not None and node.kind == FINDING and node.name == f.message, f.line()
    return about_variables


# --- Keras checkpoints ------------------------------------------------------------------------------------

def test_keras3_findings_name_the_variable_under_the_optimizer(art_dir):
    inv = build_inventory(ta.keras3_checkpoint(art_dir))
    (f,) = check_findings_resolve(inv)
    assert f.severity is Severity.INFO and "keyed under the optimizer" in f.message
    assert f.key.startswith("optimizer/_trainable_variables/")
    node = inv.node_for(f)
    # The tree shows the value under the model layer that owns it, not under the optimizer's list.
    assert node.kind == NodeKind.VARIABLE and node.path.startswith("Checkpoint/model/")
    assert "_trainable_variables" not in node.path


def test_keras_checkpoints_without_variable_findings(art_dir):
    for prefix in (ta.keras3_model_checkpoint(art_dir), ta.tf_keras_checkpoint(art_dir)):
        inv = build_inventory(prefix)
        assert check_findings_resolve(inv) == []


def test_keras3_optimizer_only_checkpoint_names_a_model_variable(tmp_path):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(ta.SEED)
    model = ta._small_detector_layers(keras)
    optimizer = keras.optimizers.Adam(1e-3)
    ta._train_one_step(tf, model, optimizer)
    prefix = tmp_path / "optimizer_only" / "ckpt"
    tf.train.Checkpoint(optimizer=optimizer).write(str(prefix))

    inv = build_inventory(prefix)
    (f,) = check_findings_resolve(inv)
    assert f.severity == WARNING and "reachable only through the optimizer" in f.message
    assert inv.node_for(f).kind == NodeKind.VALUE     # only the optimizer reaches it: a value, not a model weight
    assert inv.node_for(f).shape is not None


def test_index_and_object_graph_disagreements_name_their_keys(art_dir, tmp_path):
    """A checkpoint whose object graph names a value the index lacks, and whose index has a value no object
    names: both findings select the value's row (the first shown as not in this checkpoint)."""
    import tensorflow as tf

    source = str(ta.tf_keras_checkpoint(art_dir))
    reader = tf.train.load_checkpoint(source)
    dropped = "model/layer_with_weights-0/kernel" + VALUE_SUFFIX
    stray = "stray/value" + VALUE_SUFFIX
    names = [k for k in sorted(reader.get_variable_to_shape_map()) if k != dropped]
    tensors = [tf.constant(reader.get_tensor(k)) for k in names] + [tf.constant([1.0, 2.0])]
    names.append(stray)
    prefix = tmp_path / "doctored" / "ckpt"
    prefix.parent.mkdir()
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    assert OBJECT_GRAPH_KEY in names

    inv = build_inventory(prefix)
    found = {f.severity: f for f in check_findings_resolve(inv)}
    assert found[ERROR].key == dropped and found[WARNING].key == stray
    missing = inv.node_for(found[ERROR])
    assert missing.shape is None and "not in this checkpoint" in missing.detail
    assert inv.node_for(found[WARNING]).parent.name == "(not in the object graph)"


# --- OD API training checkpoints -----------------------------------------------------------------------------

def _with_num_classes(config: Path, count: int) -> None:
    text, n = re.subn(r"num_classes: \d+", f"num_classes: {count}", config.read_text(), count=1)
    assert n == 1
    config.write_text(text)


def test_od_api_shaped_training_run(art_dir):
    inv = build_inventory(ma.training_run(art_dir / "od_run") / "training")
    assert check_findings_resolve(inv) == []


def test_demo_training_checkpoints(demo, tmp_path):
    inv = build_inventory(demo / "training")
    assert class_head(inv) == (3, DEMO_HEAD)
    assert check_findings_resolve(inv, DEMO_HEAD) == []

    # The same checkpoints under a config that asks for one more class: the head check names the head.
    copy = tmp_path / "demo"
    shutil.copytree(demo / "training", copy / "training")
    for name in ("pipeline.config", "label_map.pbtxt"):
        shutil.copy2(demo / name, copy / name)
    _with_num_classes(copy / "pipeline.config", 4)
    inv = build_inventory(copy / "training")
    (f,) = check_findings_resolve(inv, DEMO_HEAD)
    assert f.severity == ERROR and "but the class head" in f.message and f.key == DEMO_HEAD
    assert inv.node_for(f).path.endswith("class_head/out/bias")
    # The config-versus-label-map disagreement concerns no variable: it selects its own row.
    other = next(g for g in inv.findings if g.severity == ERROR and g is not f)
    assert other.key is None and inv.node_for(other).kind == FINDING


def test_realdata_ssd_training_run(realdata, tmp_path):
    run = realdata / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    if not run.is_dir():
        pytest.skip(f"{run} is not present")
    inv = build_inventory(run)
    assert class_head(inv) == (1, SSD_HEAD)
    assert check_findings_resolve(inv, SSD_HEAD) == []
    assert any(f.severity == INFO and "rebuilt from key names" in f.message for f in inv.findings)

    copy = tmp_path / "my_ssd_mobnet"
    shutil.copytree(run, copy)
    _with_num_classes(copy / "pipeline.config", 2)
    inv = build_inventory(copy)
    (f,) = check_findings_resolve(inv, SSD_HEAD)
    assert f.severity == ERROR and f.key == SSD_HEAD
    assert inv.node_for(f).name == "bias"


# --- findings without a variable, and the identity itself ----------------------------------------------------

def test_node_for_without_a_subject_and_for_foreign_findings(art_dir):
    inv = build_inventory(ta.keras3_checkpoint(art_dir))
    assert inv.node_for(Finding(INFO, "said by a loaded model, not by this folder")) is None
    assert inv.node_for(Finding(INFO, "no such value", key="nowhere" + VALUE_SUFFIX)) is None
    group = next(n for n in inv.root.children if n.name == "Checkpoint")
    assert inv.node_for(Finding(INFO, "about a row", node=group.path)) is group
    variable = next(n for n in inv.root.walk() if n.kind == NodeKind.VARIABLE)
    assert inv.node_for(Finding(WARNING, "about a value", key=variable.key)) is variable


def test_severity_and_kinds_are_their_strings():
    f = Finding("error", "a message", "a.file")
    assert f.severity is Severity.ERROR and f.severity == "error" and ERROR == "error"
    assert f.as_json() == {"severity": "error", "message": "a message", "file": "a.file"}
    assert type(f.as_json()["severity"]) is str
    assert f.line() == "error: a message (a.file)" and f"{WARNING}" == "warning" and str(INFO) == "info"
    assert NodeKind.VARIABLE == "variable" and "slot" in VALUE_KINDS
    with pytest.raises(ValueError):
        Finding("fatal", "not a severity")
