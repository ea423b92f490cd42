"""Broken parts that used to pass in silence: each is a finding naming the file in `inspect`, and in
`detect` a one-line error naming it (or, where detscope falls back to something sound, a warning saying so).

Every case is a copy of a real training run (training/ckpt-N, saved_model/, pipeline.config) with one part
broken as users and copies break them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import model_artifacts as ma
from detscope.core.cli import main as cli

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("blind") / "run")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("blind-images") / "x.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(path)
    return path


def _truncate(path, size=0):
    path.write_bytes(path.read_bytes()[:size])


def _folder_for(path):
    path.unlink()
    path.mkdir()


def _flip(path, at=40):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _replace_pb(run, copy, what):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((run / "saved_model" / "saved_model.pb").read_bytes())
    part = proto.meta_graphs[0] if what == "meta" else proto.meta_graphs[0].graph_def
    (copy / "saved_model" / "saved_model.pb").write_bytes(part.SerializeToString())


VARS = "saved_model/variables/"
DATA = "training/ckpt-2.data-00000-of-00001"

# (case, how to break the copy, the file the finding names, what the message says)
CASES = [
    ("variables missing", lambda r, c: shutil.rmtree(c / VARS), VARS.rstrip("/"),
     "saved_model/variables/ is missing; its graph has 8 variables and TensorFlow cannot load the SavedModel"),
    ("variables.index unreadable", lambda r, c: (c / VARS / "variables.index").write_bytes(b"\x00" * 300),
     VARS + "variables.index", "variables.index is not a TensorFlow checkpoint index"),
    ("variables.index 0 bytes", lambda r, c: _truncate(c / VARS / "variables.index"), VARS + "variables.index",
     "variables.index is truncated (0 bytes)"),
    ("variables.index mutated", lambda r, c: _flip(c / VARS / "variables.index"), VARS + "variables.index",
     "variables.index is corrupt: checksum mismatch"),
    ("variables.index a folder", lambda r, c: _folder_for(c / VARS / "variables.index"), VARS + "variables.index",
     "saved_model/variables/variables.index is a folder, not a file"),
    ("variables data 0 bytes", lambda r, c: _truncate(c / VARS / "variables.data-00000-of-00001"),
     VARS + "variables.data-00000-of-00001", "variables.data-00000-of-00001 is empty (0 bytes) but variables.index "
                                            "places values up to byte"),
    ("saved_model.pb a GraphDef", lambda r, c: _replace_pb(r, c, "graph"), "saved_model/saved_model.pb",
     "saved_model.pb: is a GraphDef (a frozen graph such as frozen_inference_graph.pb, renamed?), not a SavedModel"),
    ("saved_model.pb a MetaGraphDef", lambda r, c: _replace_pb(r, c, "meta"), "saved_model/saved_model.pb",
     "saved_model.pb: is a MetaGraphDef"),
    ("saved_model.pb a folder", lambda r, c: _folder_for(c / "saved_model" / "saved_model.pb"),
     "saved_model/saved_model.pb", "saved_model/saved_model.pb is a folder, not a file"),
    ("ckpt data 0 bytes", lambda r, c: _truncate(c / DATA), DATA,
     "ckpt-2.data-00000-of-00001 is empty (0 bytes) but ckpt-2.index places values up to byte"),
    ("ckpt data cut short", lambda r, c: _truncate(c / DATA, 300), DATA,
     "ckpt-2.data-00000-of-00001 is truncated (300 bytes)"),
    ("ckpt data a folder", lambda r, c: _folder_for(c / DATA), DATA,
     "ckpt-2.data-00000-of-00001 is a folder, not a file"),
    ("ckpt index 0 bytes", lambda r, c: _truncate(c / "training" / "ckpt-2.index"), "training/ckpt-2.index",
     "ckpt-2.index is truncated (0 bytes)"),
    ("ckpt index a folder", lambda r, c: _folder_for(c / "training" / "ckpt-2.index"), "training/ckpt-2.index",
     "ckpt-2.index is a folder, not a checkpoint index"),
]


@pytest.mark.parametrize("case, breaks, file, message", CASES, ids=[c[0] for c in CASES])
def test_inspect_names_the_broken_part(run, tmp_path, capsys, case, breaks, file, message):
    copy = shutil.copytree(run, tmp_path / "run")
    breaks(run, copy)
    code = cli.main(["inspect", str(copy), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    errors = [p for p in json.loads(captured.out)["problems"] if p["severity"] == "error"]
    assert any(message in p["message"] and p["file"] == str(copy / file) for p in errors), errors


# What `detect` says for the same copies: one line naming the part (TensorFlow never sees a broken one).
DETECT = {
    "variables missing": "error: saved_model/variables/ is missing",
    "variables.index 0 bytes": "error: variables.index is truncated (0 bytes)",
    "variables data 0 bytes": "error: variables.data-00000-of-00001 is empty (0 bytes)",
    "saved_model.pb a GraphDef": "is a GraphDef",
    "ckpt data 0 bytes": "error: ckpt-2 restored nothing into saved_model (failed: ckpt-2.data-00000-of-00001 is "
                         "empty (0 bytes)",
    "ckpt data a folder": "error: ckpt-2 restored nothing into saved_model (failed: ckpt-2.data-00000-of-00001 is "
                          "a folder, not a file",
    "ckpt index a folder": "error: ckpt-2.index is a folder, not a checkpoint index",
}


@pytest.mark.parametrize("case", sorted(DETECT))
def test_detect_stops_with_one_line_naming_the_part(run, tmp_path, image, capsys, case):
    breaks = next(c[1] for c in CASES if c[0] == case)
    copy = shutil.copytree(run, tmp_path / "run")
    breaks(run, copy)
    code = cli.main(["detect", str(copy), str(image)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
    assert DETECT[case] in lines[0]


def test_a_prefix_or_data_file_without_its_index(run, tmp_path, image, capsys):
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "training" / "ckpt-2.index").unlink()
    for opened in (copy / "training" / "ckpt-2", copy / DATA):
        for argv in (["inspect", str(opened)], ["detect", str(opened), str(image)]):
            code = cli.main(argv)
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1 and "ckpt-2.index" in err[0], (argv, err)


def test_a_latest_checkpoint_without_its_index_is_not_replaced_in_silence(run, tmp_path, image, capsys):
    copy = shutil.copytree(run, tmp_path / "run")
    (copy / "training" / "ckpt-2.index").unlink()
    data = json.loads(_ok(capsys, "inspect", copy, "--json"))
    assert any(p["severity"] == "error" and p["message"] == "ckpt-2.index is missing; the values in "
               "ckpt-2.data-00000-of-00001 cannot be read without it" for p in data["problems"])
    code = cli.main(["detect", str(copy), str(image)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert err == [f"warning: checkpoint state file names ckpt-2 as the latest but ckpt-2.index is not here; restored "
                   f"ckpt-1 instead, the newest checkpoint with an index ({copy / 'training' / 'checkpoint'})"]


def test_a_folder_with_only_a_checkpoint_state_file(run, tmp_path, image, capsys):
    copy = shutil.copytree(run, tmp_path / "run")
    for f in (copy / "training").glob("ckpt-*"):
        f.unlink()
    data = json.loads(_ok(capsys, "inspect", copy / "training", "--json"))
    assert any(p["severity"] == "error" and "ckpt-2.index is not here" in p["message"] for p in data["problems"])
    # The checkpoint folder opened: nothing to restore (the export one level up is not run in its place).
    code = cli.main(["detect", str(copy / "training"), str(image)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: training: checkpoint state file names ckpt-2 as the latest but ckpt-2.index "
                                 "is not here: there is nothing to restore"]
    # The export opened: it runs as exported, and says its training checkpoints are not there.
    code = cli.main(["detect", str(copy), str(image)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0 and len(err) == 1 and err[0].startswith("warning: checkpoint state file names ckpt-2 as the "
                                                              "latest but ckpt-2.index is not here; ran saved_model/ "
                                                              "as exported, without the training checkpoints")


def test_variables_of_another_model_are_named(run, tmp_path, capsys):
    # A mutated index that still reads: the variables/ of the same code built for 4 classes.
    four = ma.training_run(tmp_path / "four", num_classes=4)
    copy = shutil.copytree(run, tmp_path / "run")
    shutil.rmtree(copy / VARS)
    shutil.copytree(four / VARS, copy / VARS)
    data = json.loads(_ok(capsys, "inspect", copy, "--json"))
    (p,) = [p for p in data["problems"] if p["severity"] == "error"]
    assert p["file"] == str(copy / VARS / "variables.index")
    assert p["message"].startswith("variables.index holds 2 values whose shape or dtype differs from the graph of "
                                   "saved_model (first: ")
    assert "[8, 40] float32 in the index, [8, 32] float32 in the graph" in p["message"] or \
        "[40] float32 in the index, [32] float32 in the graph" in p["message"]


def _ok(capsys, *argv) -> str:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out
