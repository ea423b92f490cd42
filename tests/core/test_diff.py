"""`detscope diff`: weight drift between two checkpoints, read without TensorFlow, checked against NumPy on the
values TensorFlow's own checkpoint reader returns."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

import model_artifacts as ma
from detscope.core.browse.diff import VARIABLE, diff_checkpoints, key_kind, key_path
from detscope.core.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("diff_run"), checkpoints=2, export_model=False)


def tf_values(prefix) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_diff_equals_numpy_on_tensorflow_values(run, chunk):
    a, b = run / "training" / "ckpt-1", run / "training" / "ckpt-2"
    drift = diff_checkpoints(a, b, include_optimizer=True, chunk_elements=chunk)
    va, vb = tf_values(a), tf_values(b)
    compared = {v.key: v for v in drift.variables}
    numeric = {k for k in va if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and va[k].dtype != object}
    assert set(compared) == numeric
    for key, v in compared.items():
        x, y = va[key].astype(np.float64), vb[key].astype(np.float64)
        d = y - x
        assert v.diff_norm == pytest.approx(np.linalg.norm(d), rel=1e-9, abs=1e-12)
        assert v.norm_a == pytest.approx(np.linalg.norm(x), rel=1e-9)
        assert v.max_abs_change == pytest.approx(np.abs(d).max() if d.size else 0.0, rel=1e-12)
        assert v.changed == int(np.count_nonzero(va[key] != vb[key]))
        if np.linalg.norm(x):
            assert v.relative_change == pytest.approx(np.linalg.norm(d) / np.linalg.norm(x), rel=1e-9)
    # a subtree sums its variables: sqrt(sum |B-A|^2) / sqrt(sum |A|^2)
    head = [k for k in numeric if key_path(k).startswith("model/class_head/")]
    num = math.sqrt(sum(np.sum((vb[k].astype(np.float64) - va[k]) ** 2) for k in head))
    den = math.sqrt(sum(np.sum(va[k].astype(np.float64) ** 2) for k in head))
    assert drift.subtree("model/class_head").relative_change == pytest.approx(num / den, rel=1e-9)
    assert drift.subtree("model/class_head").variables == len(head)


def test_optimizer_state_left_out_by_default(run):
    drift = diff_checkpoints(run / "training" / "ckpt-1", run / "training" / "ckpt-2")
    assert drift.variables and all(v.kind == VARIABLE for v in drift.variables)
    assert sum(drift.skipped.values()) > 0     # optimizer state and slots (this optimizer keeps its own)
    assert key_kind("model/k/.OPTIMIZER_SLOT/optimizer/momentum/.ATTRIBUTES/VARIABLE_VALUE") == "slot"
    same = diff_checkpoints(run / "training" / "ckpt-2", run / "training" / "ckpt-2")
    assert not same.changed and all(v.relative_change == 0 for v in same.variables)


def test_only_in_one_and_shape_changes(tmp_path):
    base = ma.training_run(tmp_path / "base", num_classes=3, checkpoints=1, export_model=False)
    other = ma.training_run(tmp_path / "more", num_classes=4, variant="extra", checkpoints=1, export_model=False)
    drift = diff_checkpoints(base / "training", other / "training")     # folders: their latest checkpoints
    only_b = {key_path(e.key) for e in drift.only_b}
    assert {"model/refine/kernel", "model/refine/bias"} <= only_b and not drift.only_a
    changed = {key_path(ea.key): (ea.shape, eb.shape) for ea, eb in drift.shape_changes}
    assert changed["model/class_head/kernel"] == ((8, 32), (8, 40))
    assert changed["model/class_head/bias"] == ((32,), (40,))


def test_demo_checkpoints_differ(demo, capsys):
    a, b = demo / "training" / "ckpt-3", demo / "training" / "ckpt-5"
    drift = diff_checkpoints(a, b)
    model = drift.subtree("model")
    assert model.variables > 50 and model.relative_change > 0.01
    assert len(drift.changed) == len(drift.variables)
    assert not drift.only_a and not drift.only_b and not drift.shape_changes

    assert main(["diff", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["a"], data["b"]) == ("ckpt-3", "ckpt-5") and data["compared"] == len(drift.variables)
    assert next(s for s in data["subtrees"] if s["path"] == "model")["relative_change"] == \
        pytest.approx(model.relative_change)
    assert main(["diff", str(a), str(b), "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ckpt-3 -> ckpt-5:") and "feature_extractor" in out and "class_head" in out


def test_diff_errors_are_one_line(tmp_path, capsys):
    assert main(["diff", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and err.count("\n") == 1


def test_diff_imports_no_tensorflow(demo):
    import subprocess

    code = ("import sys; from detscope.core.browse.diff import diff_checkpoints; "
            f"diff_checkpoints({str(demo / 'training' / 'ckpt-3')!r}, {str(demo / 'training' / 'ckpt-5')!r}); "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
