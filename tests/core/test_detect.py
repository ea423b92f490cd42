"""One detections type from real signatures: OD API, fixed-size float inputs, Keras-style and raw outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import model_artifacts as ma
from detscope.core.cli import main as cli
from detscope.core.detect.conventions import OutputMapping, decode, find_image_input, find_output_mapping
from detscope.core.runtime.engine import Engine
from detscope.core.runtime.model import load_model

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ma.training_run(tmp_path_factory.mktemp("detect") / "run")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(11)
    paths = []
    for i, (h, w) in enumerate([(60, 90), (120, 80), (64, 64)]):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_detect_json_equals_a_direct_call_of_the_signature(run, images, capsys):
    assert cli.main(["detect", str(run), *map(str, images), "--threshold", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [im["path"] for im in out["images"]] == [str(p) for p in images]
    fn = tf.saved_model.load(str(run / "saved_model")).signatures["serving_default"]
    labels = {1: "cat", 2: "dog", 3: "fox"}
    for result, path in zip(out["images"], images):
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        assert (result["width"], result["height"]) == (w, h)
        raw = {k: v.numpy()[0] for k, v in fn(input_tensor=tf.constant(img[None])).items()}
        n = int(raw["num_detections"])
        order = np.argsort(-raw["detection_scores"][:n], kind="stable")
        expected_boxes = raw["detection_boxes"][:n][order][:, [1, 0, 3, 2]] * [w, h, w, h]
        got = result["detections"]
        assert len(got) == n
        np.testing.assert_allclose([d["box"] for d in got], expected_boxes, atol=1e-3)
        np.testing.assert_allclose([d["score"] for d in got], raw["detection_scores"][:n][order], atol=1e-5)
        assert [d["class_id"] for d in got] == [int(c) for c in raw["detection_classes"][:n][order]]
        assert [d["label"] for d in got] == [labels[int(c)] for c in raw["detection_classes"][:n][order]]
        assert [d["score"] for d in got] == sorted((d["score"] for d in got), reverse=True)


def test_threshold_filters_kept_results(run, images, capsys):
    cli.main(["detect", str(run), str(images[0]), "--threshold", "0", "--json"])
    everything = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    cut = sorted(d["score"] for d in everything)[len(everything) // 2]
    cli.main(["detect", str(run), str(images[0]), "--threshold", str(cut), "--json"])
    kept = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    assert kept == [d for d in everything if d["score"] >= cut]


def test_detect_writes_annotated_images_and_coco_results(run, images, tmp_path, capsys):
    coco = tmp_path / "results.json"
    out = tmp_path / "annotated"
    assert cli.main(["detect", str(run), str(images[0].parent), "--threshold", "0", "--out", str(out),
                     "--coco-results", str(coco)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img0.png", "img1.png", "img2.png"]
    annotated = np.asarray(Image.open(out / "img0.png"))
    assert annotated.shape == (60, 90, 3)
    assert not np.array_equal(annotated, np.asarray(Image.open(images[0])))  # boxes were drawn
    rows = json.loads(coco.read_text())
    assert len(rows) == 3 * ma.ANCHORS
    assert {r["image_id"] for r in rows} == {1, 2, 3}
    assert all(len(r["bbox"]) == 4 and r["bbox"][2] >= 0 for r in rows)


def test_switching_checkpoint_changes_detections(run, images):
    engine = Engine()
    try:
        loaded = engine.run_sync(load_model, run)
        assert loaded.checkpoint.name == "ckpt-2" and loaded.report.verdict == "complete"
        img = np.asarray(Image.open(images[1]).convert("RGB"))
        latest = engine.run_sync(loaded.detect, img)
        engine.run_sync(loaded.switch_checkpoint, "ckpt-1")
        earlier = engine.run_sync(loaded.detect, img)
    finally:
        engine.shutdown(timeout=30)
    assert not np.allclose(latest.scores, earlier.scores)


def _save_module(path, fn_spec, body):
    class M(tf.Module):
        pass
    m = M()
    m.v = tf.Variable(1.0)
    m.f = tf.function(body, input_signature=fn_spec)
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.f})
    return path


def test_fixed_size_float_input_is_resized_and_boxes_come_back_in_original_pixels(tmp_path):
    # A model with a fixed 32x32 float input whose box is the brightest pixel's cell (normalised).
    def body(images):
        flat = tf.reshape(tf.reduce_mean(images, -1), [1, -1])
        idx = tf.cast(tf.argmax(flat, axis=1), tf.float32)
        y, x = tf.math.floordiv(idx, 32.0) / 32.0, tf.math.floormod(idx, 32.0) / 32.0
        box = tf.stack([y, x, y + 1 / 32, x + 1 / 32], axis=-1)[:, None, :]
        return {"detection_boxes": box, "detection_scores": tf.ones([1, 1]),
                "detection_classes": tf.ones([1, 1]), "num_detections": tf.ones([1])}
    path = _save_module(tmp_path / "fixed", [tf.TensorSpec([1, 32, 32, 3], tf.float32, name="inputs")], body)
    engine = Engine()
    try:
        loaded = engine.run_sync(load_model, path)
        assert loaded.detector.image_input.key == "inputs"
        assert loaded.detector.image_input.fixed_size
        img = np.zeros((64, 128, 3), np.uint8)
        img[40:42, 96:100] = 255  # lands in cell (20, 24) of the 32x32 input
        dets = engine.run_sync(loaded.detect, img)
    finally:
        engine.shutdown(timeout=30)
    assert (dets.width, dets.height) == (128, 64)
    np.testing.assert_allclose(dets.boxes[0], [96, 40, 100, 42], atol=1e-3)
    assert any("0..255" in f.message for f in loaded.findings)


def test_raw_anchor_outputs_get_a_clear_finding(tmp_path):
    def body(images):
        feat = tf.reduce_mean(images)
        return {"regressors": tf.fill([1, 896, 16], feat), "classificators": tf.fill([1, 896, 1], feat)}
    path = _save_module(tmp_path / "raw", [tf.TensorSpec([1, 128, 128, 3], tf.float32, name="input")], body)
    engine = Engine()
    try:
        loaded = engine.run_sync(load_model, path)
    finally:
        engine.shutdown(timeout=30)
    assert loaded.detector is None
    assert any("raw outputs, not decodable without anchors" in f.message for f in loaded.findings)
    with pytest.raises(Exception, match="raw outputs"):
        loaded.detect(np.zeros((10, 10, 3), np.uint8))


def test_conventions_registry():
    od = {"detection_boxes": ("float32", (1, 100, 4)), "detection_scores": ("float32", (1, 100)),
          "detection_classes": ("float32", (1, 100)), "num_detections": ("float32", (1,))}
    assert find_output_mapping(od)[0].convention == "od_api"
    mg = dict(od, image_info=("float32", (1, 4, 2)))
    assert find_output_mapping(mg)[0].convention == "model_garden"
    keras_style = {"boxes": ("float32", (1, 100, 4)), "confidence": ("float32", (1, 100)),
                   "classes": ("int32", (1, 100)), "num_detections": ("int32", (1,))}
    m = find_output_mapping(keras_style)[0]
    assert (m.convention, m.box_layout, m.scores) == ("keras", "xyxy", "confidence")
    assert find_image_input({"input_tensor": ("uint8", (1, None, None, 3))}).fixed_size is False
    with pytest.raises(Exception, match="no image input"):
        find_image_input({"text": ("object", (None,))})


def test_model_garden_boxes_are_scaled_back_by_image_info():
    # An image of 200x100 (w x h) scaled by 0.5 to fit the model: boxes come in the scaled frame.
    outputs = {"detection_boxes": np.array([[[10, 20, 30, 60]]], np.float32),
               "detection_scores": np.array([[0.9]], np.float32),
               "detection_classes": np.array([[2]], np.float32), "num_detections": np.array([1.0]),
               "image_info": np.array([[[100, 200], [50, 100], [0.5, 0.5], [0, 0]]], np.float32)}
    mapping = find_output_mapping({k: ("float32", v.shape) for k, v in outputs.items()})[0]
    dets = decode(outputs, mapping, 200, 100)
    np.testing.assert_allclose(dets.boxes[0], [40, 20, 120, 60])
    assert dets.class_ids.tolist() == [2]


def test_keras_style_padding_rows_are_dropped():
    outputs = {"boxes": np.array([[[5, 5, 20, 30], [0, 0, 0, 0]]], np.float32),
               "confidence": np.array([[0.8, -1]], np.float32), "classes": np.array([[0, -1]], np.int32)}
    mapping = OutputMapping(boxes="boxes", scores="confidence", classes="classes", box_layout="xyxy",
                            normalized=False, class_offset=1, convention="keras")
    dets = decode(outputs, mapping, 40, 40, label=lambda i: {1: "person"}.get(i, "?"))
    assert len(dets) == 1 and dets.labels == ("person",) and dets.class_ids.tolist() == [1]


def test_outputs_mapped_by_hand_are_saved_outside_the_model_folder(tmp_path, monkeypatch, capsys):
    model = ma.anonymous_outputs_export(tmp_path / "anon")
    monkeypatch.setenv("DETSCOPE_DATA_DIR", str(tmp_path / "data"))
    before = sorted(p.name for p in model.rglob("*"))
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(img)
    assert cli.main(["detect", str(model), str(img)]) == 2
    assert "map them by hand" in capsys.readouterr().err
    assert cli.main(["map-outputs", str(model), "--boxes", "a", "--scores", "b", "--classes", "c",
                     "--layout", "xywh", "--coordinates", "pixels", "--class-offset", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["detect", str(model), str(img), "--json", "--threshold", "0"]) == 0
    det = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    assert det == [{"box": [20.0, 20.0, 60.0, 30.0], "score": 0.75, "class_id": 2, "label": "class 2"}]
    assert sorted(p.name for p in model.rglob("*")) == before
    assert list((tmp_path / "data" / "output-mappings").glob("*.json"))


def test_tf1_exported_frozen_graph_without_variables(tmp_path, capsys):
    # What the TF1 exporter writes: a frozen graph (no variables/), input "inputs" uint8, detection_* outputs.
    export = tmp_path / "tf1_export"
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        mean = tf.reduce_mean(tf.cast(inputs, tf.float32)) / 255.0
        boxes = tf.reshape(tf.stack([0.25, 0.5, 0.75, 1.0]), [1, 1, 4]) + 0 * mean
        outputs = {"detection_boxes": boxes, "detection_scores": tf.reshape(mean, [1, 1]),
                   "detection_classes": tf.constant([[2.0]]), "num_detections": tf.constant([1.0])}
        with tf.compat.v1.Session(graph=graph) as sess:
            builder = tf.compat.v1.saved_model.Builder(str(export))
            sig = tf.compat.v1.saved_model.predict_signature_def(inputs={"inputs": inputs}, outputs=outputs)
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()
    assert not (export / "variables" / "variables.index").exists()
    img = tmp_path / "grey.png"
    Image.fromarray(np.full((100, 200, 3), 51, np.uint8)).save(img)
    assert cli.main(["detect", str(export), str(img), "--json", "--threshold", "0", "--tags", "serve"]) == 0
    det = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    assert det == [{"box": [100.0, 25.0, 200.0, 75.0], "score": pytest.approx(0.2, abs=1e-6),
                    "class_id": 2, "label": "class 2"}]


def test_tf1_export_beside_its_model_ckpt_runs_as_it_is(tmp_path, capsys):
    # The TF1 exporter's whole folder: the frozen saved_model/ beside the model.ckpt it was frozen from.
    # Restoring model.ckpt into the frozen graph matches nothing; that is no failure: it is not needed.
    from detscope.core.app.host import ModelHost

    export = ma.tf1_export(tmp_path / "tf1_export")
    frozen = "saved_model/ is a TF1 export: its weights are frozen into the graph; the checkpoint is not needed " \
             "to run it (model.ckpt was not restored)"
    img = tmp_path / "grey.png"
    Image.fromarray(np.full((100, 200, 3), 51, np.uint8)).save(img)
    expected = [{"box": [100.0, 25.0, 200.0, 75.0], "score": pytest.approx(0.2, abs=1e-6), "class_id": 2,
                 "label": "class 2"}]
    for extra in ([], ["--checkpoint", "model.ckpt"]):
        assert cli.main(["detect", str(export), str(img), "--json", "--threshold", "0", *extra]) == 0
        assert json.loads(capsys.readouterr().out)["images"][0]["detections"] == expected

    assert cli.main(["inspect", str(export), "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["severity"], p["message"]) for p in problems] == [("info", frozen)]

    assert cli.main(["restore", str(export)]) == 0
    assert capsys.readouterr().out.strip() == frozen
    assert cli.main(["restore", str(export / "model.ckpt"), "--template", str(export / "saved_model"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "not_needed"

    host = ModelHost()
    try:
        summary = host.open(export, inventory=False)[1].result(timeout=120)
        assert summary.report is None and summary.restore_note == frozen and not summary.partial
        assert host.detect(np.full((10, 10, 3), 51, np.uint8)).result(timeout=60).scores.tolist() == \
            [pytest.approx(0.2, abs=1e-6)]
    finally:
        host.shutdown()
    # model.ckpt is a real TF1 checkpoint of the weight the graph was frozen with.
    assert tf.train.load_checkpoint(str(export / "model.ckpt")).get_tensor("BoxPredictor/ClassPredictor/weights") == 1.0


def test_a_tf1_checkpoint_into_a_savedmodel_with_other_variables_is_not_needed(tmp_path, capsys):
    # A SavedModel carrying its own variables beside a name-based checkpoint none of whose keys it has.
    export = tmp_path / "export"
    _save_module(export / "saved_model", [tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")],
                 lambda input_tensor: {"detection_boxes": tf.constant([[[0.0, 0.0, 0.5, 0.5]]]),
                                       "detection_scores": tf.constant([[0.9]]),
                                       "detection_classes": tf.constant([[1.0]]),
                                       "num_detections": tf.constant([1.0])})
    ma_tf1 = ma.tf1_export(tmp_path / "tf1")
    for f in ma_tf1.glob("model.ckpt*"):
        shutil.copy(f, export / f.name)
    assert cli.main(["restore", str(export)]) == 0
    out = capsys.readouterr().out
    assert "saved_model/ carries its own variables and model.ckpt (a TF1 checkpoint) names none of them: the " \
           "checkpoint is not needed to run it" in out


def test_keras_file_with_keras_style_outputs(tmp_path, capsys):
    import keras

    inputs = keras.Input((None, None, 3), name="images")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    boxes = keras.layers.Reshape((1, 4), name="boxes")(keras.layers.Dense(4, name="box_dense")(pooled))
    conf = keras.layers.Reshape((1,), name="confidence")(keras.layers.Dense(1, name="conf_dense")(pooled))
    classes = keras.layers.Reshape((1,), name="classes")(keras.layers.Dense(1, name="cls_dense")(pooled))
    model = keras.Model(inputs, {"boxes": boxes, "confidence": conf, "classes": classes})
    model.get_layer("box_dense").set_weights([np.zeros((3, 4), np.float32),
                                               np.array([10, 20, 50, 60], np.float32)])
    model.get_layer("conf_dense").set_weights([np.zeros((3, 1), np.float32), np.array([0.9], np.float32)])
    model.get_layer("cls_dense").set_weights([np.zeros((3, 1), np.float32), np.array([0.0], np.float32)])
    model.save(tmp_path / "det.keras")
    (tmp_path / "labels.txt").write_text("person\n")
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(img)
    assert cli.main(["detect", str(tmp_path / "det.keras"), str(img), "--json", "--threshold", "0",
                     "--labels", str(tmp_path / "labels.txt")]) == 0
    det = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    # Keras-style classes are 0-based; labels.txt numbers from 1: class 0 is the first label.
    assert det == [{"box": [10.0, 20.0, 50.0, 60.0], "score": pytest.approx(0.9), "class_id": 1,
                    "label": "person"}]


def test_model_garden_style_export_end_to_end(tmp_path, capsys):
    # Model Garden serving: input "inputs", boxes in the scaled frame, image_info, integer classes.
    def body(inputs):
        h = tf.cast(tf.shape(inputs)[1], tf.float32)
        w = tf.cast(tf.shape(inputs)[2], tf.float32)
        scale = 64.0 / tf.maximum(h, w)
        info = tf.stack([[h, w], [h * scale, w * scale], [scale, scale], [0.0, 0.0]])[None]
        box = tf.stack([h * 0.5, w * 0.25, h * 0.75, w * 0.5]) * scale   # ymin, xmin, ymax, xmax scaled
        return {"detection_boxes": box[None, None], "detection_scores": tf.constant([[0.8]]),
                "detection_classes": tf.constant([[3]], tf.int32), "num_detections": tf.constant([1], tf.int32),
                "image_info": info}
    model = _save_module(tmp_path / "mg", [tf.TensorSpec([1, None, None, 3], tf.uint8, name="inputs")], body)
    (tmp_path / "mg" / "params.yaml").write_text("task:\n  model:\n    num_classes: 91\n")
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(img)
    assert cli.main(["detect", str(model), str(img), "--json", "--threshold", "0"]) == 0
    det = json.loads(capsys.readouterr().out)["images"][0]["detections"]
    assert det == [{"box": [50.0, 50.0, 100.0, 75.0], "score": pytest.approx(0.8), "class_id": 3,
                    "label": "class 3"}]
