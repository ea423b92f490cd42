"""The model host: one opened model, recognised once, its live model kept on the engine thread."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

import model_artifacts as ma
from detscope.core.app.host import Latest, ModelHost, ModelSummary
from detscope.core.browse import folders, inventory
from detscope.core.cli import main as cli
from detscope.core.formats import configs, labels, objectgraph

tf = pytest.importorskip("tensorflow")


@pytest.fixture
def reads(monkeypatch):
    """How often each reader of the folder's files runs (the real readers, counted)."""
    counts: dict[str, int] = {}

    def counted(name, fn):
        def wrapper(*a, **k):
            counts[name] = counts.get(name, 0) + 1
            return fn(*a, **k)
        return wrapper

    recognise = counted("recognise", folders.recognise)
    monkeypatch.setattr(folders, "recognise", recognise)
    pipeline = counted("pipeline.config", configs.read_pipeline_config)
    monkeypatch.setattr(configs, "read_pipeline_config", pipeline)
    monkeypatch.setattr(inventory, "read_pipeline_config", pipeline)
    label_map = counted("label map", labels.read_label_map)
    monkeypatch.setattr(inventory, "read_label_map", label_map)
    from detscope.core.runtime import model
    monkeypatch.setattr(model, "read_label_map", label_map)
    monkeypatch.setattr(objectgraph, "parse_object_graph", counted("object graph", objectgraph.parse_object_graph))
    return counts


def test_an_open_reads_each_file_once_and_hands_out_only_plain_data(demo, reads):
    host = ModelHost()
    try:
        # The export with its training checkpoints, pipeline.config and label map: the inventory reads on
        # the pool while the engine loads and restores, both from the one recognised folder.
        inventory_future, loading = host.open(demo)
        inv = inventory_future.result(timeout=60)
        summary = loading.result(timeout=120)
        assert reads == {"recognise": 1, "pipeline.config": 1, "label map": 1, "object graph": 1}, reads
        assert isinstance(summary, ModelSummary) and summary.can_detect
        with pytest.raises(dataclasses.FrozenInstanceError):
            summary.report = None
        # Nothing in the summary is a TensorFlow object: it may cross to any thread.
        for f in dataclasses.fields(summary):
            assert "tensorflow" not in type(getattr(summary, f.name)).__module__, f.name
        assert summary.class_names() == {int(i.id): i.label for i in inv.label_map.items}

        # A checkpoint switch re-reads that checkpoint only: the configs and labels stay parsed.
        reads.clear()
        other = inv.checkpoints[-1].name
        switched = host.switch(other).result(timeout=60)
        host.read_inventory(other).result(timeout=60)
        assert switched.checkpoint_name == other and switched.report.source == other
        assert "pipeline.config" not in reads and "label map" not in reads and "recognise" not in reads
        image = np.zeros((64, 64, 3), np.uint8)
        assert host.detect(image).result(timeout=60).width == 64
    finally:
        host.shutdown()


def test_the_live_model_is_dropped_on_the_engine_thread(demo):
    host = ModelHost()
    try:
        host.open(demo, inventory=False)[1].result(timeout=120)
        slot = host._slot
        dropped_on = []
        host.engine.submit(lambda: dropped_on.append(threading.get_ident())).result(timeout=10)
        host.close()
        host.engine.submit(lambda: None).result(timeout=10)   # the release ran before this
        assert slot.model is None and dropped_on == [host.engine.thread_ident]
        with pytest.raises(Exception, match="no model is loaded"):
            host.detect(np.zeros((8, 8, 3), np.uint8)).result(timeout=10)
    finally:
        host.shutdown()


def test_a_folders_inventory_is_kept_from_the_collector_while_open_and_freed_after(demo):
    import gc
    import weakref

    host = ModelHost()
    try:
        inv = host.open(demo, load=False)[0].result(timeout=120)
        tree = weakref.ref(inv.root)
        tracked = {id(o) for o in gc.get_objects()}
        assert id(inv.root) not in tracked, "full collections walk the open folder's tree"
        del inv
        host.close()
        gc.collect()
        assert tree() is None, "the closed folder's tree is never freed"
    finally:
        host.shutdown()
        gc.unfreeze()


def test_map_outputs_and_the_loader_agree_on_a_savedmodel_without_serving_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    model = ma.anonymous_outputs_export(tmp_path / "anon", signature="detect")
    assert cli.main(["map-outputs", str(model), "--boxes", "a", "--scores", "b", "--classes", "c",
                     "--layout", "xywh", "--coordinates", "pixels", "--class-offset", "1"]) == 0
    assert "(detect)" in capsys.readouterr().out
    image = tmp_path / "img.png"
    from PIL import Image
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(image)
    assert cli.main(["detect", str(model), str(image), "--threshold", "0", "--json"]) == 0
    dets = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    assert [d["box"] for d in dets] == [[20.0, 20.0, 60.0, 30.0]] and [d["class_id"] for d in dets] == [2]


def test_latest_request_wins():
    latest = Latest()
    first = latest.stamp()
    second = latest.stamp()
    assert not latest.is_current(first) and latest.is_current(second)
