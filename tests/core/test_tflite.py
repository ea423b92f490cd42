""".tflite models: recognised, browsed without TensorFlow exactly as LiteRT sees them, and run with LiteRT.

The models are real conversions made here with ``tf.lite.TFLiteConverter`` (see :mod:`tflite_artifacts`):
the tiny OD API-style export as float and full-integer int8, and the same detector behind the real
``TFLite_Detection_PostProcess`` operator as float and full-integer with uint8 and int8 image inputs.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

import tflite_artifacts as ta
from detscope.core.browse import folders
from detscope.core.browse.folders import FolderError
from detscope.core.browse.inventory import VARIABLE, build_inventory
from detscope.core.cli.main import main
from detscope.core.detect.conventions import prepare
from detscope.core.formats.tflite import DETECTION_POSTPROCESS, TFLiteError, read_tflite

pytestmark = pytest.mark.slow

KINDS = [("od", "float"), ("od", "int8"), ("ssd", "float"), ("ssd", "uint8"), ("ssd", "int8")]


@pytest.fixture(scope="session")
def lite_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tflite")


def build(lite_dir, family: str, quant: str):
    return (ta.converted_export if family == "od" else ta.ssd_tflite)(lite_dir, quant)


@pytest.fixture(scope="session")
def models(lite_dir):
    return {(f, q): build(lite_dir, f, q) for f, q in KINDS}


def interpreter(path, delegates: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_path=str(path), experimental_op_resolver_type=kind)


def image(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


# --- recognising ----------------------------------------------------------------------------------

def test_recognise_file_and_folder(models, tmp_path):
    src = models[("ssd", "float")]
    mf = folders.recognise(src)
    assert mf.kind == folders.TFLITE and mf.tflite_file == src.resolve()

    folder = tmp_path / "detector"
    folder.mkdir()
    shutil.copy(src, folder / "detect.tflite")
    (folder / "labelmap.txt").write_text("???\ncat\ndog\nfox\n")
    mf = folders.recognise(folder)
    assert mf.kind == folders.TFLITE
    assert mf.tflite_file.name == "detect.tflite" and mf.label_map.name == "labelmap.txt"
    inv = build_inventory(folder)
    assert [i.name for i in inv.label_map.items] == ["cat", "dog", "fox"] and inv.label_map.ids == [1, 2, 3]

    shutil.copy(src, folder / "other.tflite")
    with pytest.raises(FolderError, match="2 .tflite models"):
        folders.recognise(folder)


def test_not_a_tflite_file(tmp_path, capsys):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.tflite" in err and "TFL3" in err
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40)
    with pytest.raises(TFLiteError, match="cut.tflite"):
        read_tflite(truncated)


# --- browsing equals LiteRT's own view --------------------------------------------------------------

@pytest.mark.parametrize("family,quant", KINDS)
def test_browse_equals_litert(models, family, quant):
    path = models[(family, quant)]
    info = read_tflite(path)
    it = interpreter(path)
    details = it.get_tensor_details()
    mine = info.main.tensors
    assert len(details) == len(mine)
    for d in details:
        t = mine[d["index"]]
        assert t.name == d["name"]
        assert list(t.shape) == d["shape"].tolist()
        assert list(t.shape_signature if t.shape_signature is not None else t.shape) == d["shape_signature"].tolist()
        assert t.dtype == np.dtype(d["dtype"]).name
        qp = d["quantization_parameters"]
        if t.quantization is None:
            assert not np.any(qp["scales"])
        else:
            np.testing.assert_array_equal(np.float32(t.quantization.scales), qp["scales"])
            np.testing.assert_array_equal(t.quantization.zero_points, qp["zero_points"])
            assert t.quantization.dimension == qp["quantized_dimension"]
            if not t.quantization.per_axis:   # LiteRT's one-pair summary is (0, 0) for per-axis quantisation
                assert (t.quantization.scale, t.quantization.zero_point) == pytest.approx(d["quantization"])

    sigs = it.get_signature_list()
    assert {s.key for s in info.signatures} == set(sigs)
    for s in info.signatures:
        assert [n for n, _ in s.inputs] == sigs[s.key]["inputs"]
        assert [n for n, _ in s.outputs] == sigs[s.key]["outputs"]
        runner = it.get_signature_runner(s.key)
        assert dict(s.inputs) == {n: d["index"] for n, d in runner.get_input_details().items()}
        assert dict(s.outputs) == {n: d["index"] for n, d in runner.get_output_details().items()}

    ops = [o["op_name"] for o in it._get_ops_details()]   # LiteRT's own list of operators
    assert [op.op for op in info.main.operators] == ops
    assert (DETECTION_POSTPROCESS in ops) == (family == "ssd")
    if family == "ssd":
        assert info.custom_ops == (DETECTION_POSTPROCESS,)
        assert any(op.op == DETECTION_POSTPROCESS and op.custom for op in info.main.operators)


@pytest.mark.parametrize("family,quant", [("od", "int8"), ("ssd", "uint8")])
def test_values_dequantised_as_litert_stores_them(models, family, quant):
    path = models[(family, quant)]
    info = read_tflite(path)
    it = interpreter(path)
    it.allocate_tensors()
    constants = [t for t in info.main.tensors if t.is_constant]
    assert any(t.quantization is not None and t.dtype == "int8" for t in constants)
    for t in constants:
        stored = info.read_stored(t.key)
        np.testing.assert_array_equal(stored, it.get_tensor(t.index))
        values = info.read(t.key)
        if t.quantization is not None and t.dtype in ("int8", "uint8", "int32"):
            qp = it.get_tensor_details()[t.index]["quantization_parameters"]
            shape = [1] * stored.ndim
            if len(qp["scales"]) > 1:
                shape[qp["quantized_dimension"]] = -1
            expected = (stored.astype(np.float32) - qp["zero_points"].reshape(shape or [-1])) * \
                qp["scales"].reshape(shape or [-1])
            np.testing.assert_allclose(values, expected, rtol=1e-6)
            assert values.dtype == np.float32
        else:
            np.testing.assert_array_equal(values, stored)


def test_inventory_tree_json_and_stats(models, capsys):
    path = models[("ssd", "int8")]
    inv = build_inventory(path)
    assert inv.kind == "tflite"
    top = inv.root.children[-1]
    titles = [c.name for c in top.children]
    assert titles[0].startswith("Subgraph 0") and "Signatures" in titles and "Metadata" in titles
    ops = next(c for c in top.children[0].children if c.name == "Operators")
    post = next(c for c in ops.children if c.name == DETECTION_POSTPROCESS)
    assert post.params == 1 and "custom op" in post.detail

    weight = next(t for t in inv.tflite.main.tensors if t.is_constant and t.quantization is not None
                  and t.dtype == "int8")
    node = next(n for n in inv.root.walk() if n.key == weight.key)
    assert node.kind == VARIABLE and node.nbytes == weight.nbytes and "per-axis" in node.detail
    st = inv.tensor_stats(weight.key)
    values = inv.tflite.read(weight.key)
    assert st.dtype == "float32" and st.count == values.size
    assert st.mean == pytest.approx(float(values.astype(np.float64).mean()), rel=1e-6)

    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "tflite" and len(data["entries"]) == len(inv.tflite.main.tensors)
    assert data["signatures"][0]["name"] == "serving_default"
    assert [o["name"] for o in data["signatures"][0]["outputs"]] == ["output_0", "output_1", "output_2", "output_3"]
    assert data["tflite"]["custom_ops"] == [DETECTION_POSTPROCESS]
    q = next(e for e in data["entries"] if e["key"] == weight.key)["quantization"]
    assert len(q["scales"]) == len(weight.quantization.scales)

    assert main(["inspect", str(path), "--tensor", weight.key, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"] == pytest.approx(st.mean)


def test_packed_label_file_is_listed_and_used(models, tmp_path):
    """A metadata writer packs label files as a zip appended to the model: they are listed and read."""
    import zipfile

    path = tmp_path / "packed.tflite"
    shutil.copy(models[("ssd", "float")], path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("labelmap.txt", "???\ncat\ndog\nfox\n")
    info = read_tflite(path)
    assert [(f.name, f.nbytes) for f in info.packed_files] == [("labelmap.txt", 16)]
    inv = build_inventory(path)
    assert inv.label_map is not None and [i.name for i in inv.label_map.items] == ["cat", "dog", "fox"]
    from detscope.core.runtime.model import load_model

    loaded = load_model(path, warmup=False, scale="0..1")
    assert loaded.label_map is not None and loaded.detector.mapping.class_offset == 1
    assert set(loaded.detect(image(2)).labels) <= {"cat", "dog", "fox"}


# --- running: the same detections as a direct interpreter call ----------------------------------------

def direct(path, img: np.ndarray, roles: dict, *, pixels: str, offset: int):
    """What a user's own script does: resize, quantise with the input's scale and zero point, invoke, read
    the outputs it knows by name."""
    it = interpreter(path, delegates=True)
    runner = it.get_signature_runner("serving_default")
    (name, d), = runner.get_input_details().items()
    h, w = img.shape[:2]
    fixed = -1 not in d["shape_signature"].tolist()
    size = (int(d["shape"][1]), int(d["shape"][2])) if fixed else (h, w)
    import cv2

    x = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) if size != (h, w) else img
    x = x[None]
    scale, zp = d["quantization"]
    if scale:
        lo, hi = {"0..1": (0.0, 1.0), "0..255": (0.0, 255.0)}[pixels]
        real = x.astype(np.float32) / 255.0 * (hi - lo) + lo
        info = np.iinfo(d["dtype"])
        x = np.clip(np.rint(real / scale + zp), info.min, info.max).astype(d["dtype"])
    elif d["dtype"] == np.float32:
        x = x.astype(np.float32) / (255.0 if pixels == "0..1" else 1.0)
    out = runner(**{name: x})
    n = int(out[roles["num_detections"]].reshape(-1)[0])
    boxes = out[roles["boxes"]][0][:n]
    scores = out[roles["scores"]][0][:n]
    classes = np.rint(out[roles["classes"]][0][:n]).astype(np.int64) + offset
    xyxy = np.clip(boxes[:, [1, 0, 3, 2]] * [w, h, w, h], 0, [w, h, w, h])
    order = np.argsort(-scores, kind="stable")
    return xyxy[order].astype(np.float32), scores[order], classes[order]


OD_ROLES = {"boxes": "detection_boxes", "scores": "detection_scores", "classes": "detection_classes",
            "num_detections": "num_detections"}


@pytest.mark.parametrize("family,quant", KINDS)
def test_detections_equal_a_direct_interpreter_call(models, lite_dir, family, quant):
    from detscope.core.runtime.model import load_model

    path = models[(family, quant)]
    labels = lite_dir / "label_map.pbtxt"
    labels.write_text("".join(f'item {{ id: {i} name: "c{i}" }}\n' for i in (1, 2, 3)))
    pixels = "0..1" if family == "ssd" else "0..255"
    loaded = load_model(path, labels=str(labels), scale="0..1" if quant == "float" and family == "ssd" else None,
                        warmup=False)
    assert loaded.how == "tflite" and loaded.live.runtime.startswith("LiteRT")
    det = loaded.detector
    assert det is not None, loaded.findings
    if family == "ssd":
        # by the operator's contract, traced to the signature's names: not output_0..3 by position
        m = det.mapping
        assert m.convention == "tflite_detection_postprocess"
        assert (m.boxes, m.scores, m.classes, m.num_detections) == \
            (ta.SSD_ROLES["boxes"], ta.SSD_ROLES["scores"], ta.SSD_ROLES["classes"], ta.SSD_ROLES["num_detections"])
        assert m.class_offset == 1
        assert any("class offset +1" in f.message for f in loaded.findings)
        if quant != "float":
            assert det.image_input.scale == "0..1"   # read off the input's scale and zero point
            assert any(f"{quant} quantised" in f.message for f in loaded.findings)
    else:
        assert det.mapping.convention == "od_api" and det.mapping.class_offset == 0
    roles = ta.SSD_ROLES if family == "ssd" else OD_ROLES
    for seed, (h, w) in enumerate([(48, 64), (90, 70)]):
        img = image(seed, h, w)
        got = loaded.detect(img)
        boxes, scores, classes = direct(path, img, roles, pixels=pixels, offset=1 if family == "ssd" else 0)
        assert len(got) == len(scores) > 0
        np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.class_ids, classes)
        np.testing.assert_allclose(got.boxes, boxes, rtol=1e-4, atol=1e-3)
        assert set(got.labels) <= {"c1", "c2", "c3"}


def test_float_conversion_agrees_with_the_saved_model(models, lite_dir):
    """The float conversion gives the SavedModel's own detections (same boxes, scores and classes)."""
    from detscope.core.runtime.model import load_model

    lite = load_model(models[("od", "float")], warmup=False)
    saved = load_model(lite_dir / "export", warmup=False)
    img = image(4, 60, 80)
    a, b = lite.detect(img), saved.detect(img)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)


def test_class_offset_follows_the_label_map(models, tmp_path):
    from detscope.core.runtime.model import load_model

    zero_based = tmp_path / "labels.txt"
    zero_based.write_text("0 cat\n1 dog\n2 fox\n")
    loaded = load_model(models[("ssd", "float")], labels=str(zero_based), scale="0..1", warmup=False)
    assert loaded.detector.mapping.class_offset == 0
    assert any("class offset 0" in f.message for f in loaded.findings)
    alone = tmp_path / "far" / "alone" / "model.tflite"      # no label file anywhere near it
    alone.parent.mkdir(parents=True)
    shutil.copy(models[("ssd", "float")], alone)
    bare = load_model(alone, scale="0..1", warmup=False)
    assert bare.detector.mapping.class_offset == 0 and bare.label_map is None


def test_falls_back_to_tf_lite_where_litert_is_missing(models, monkeypatch):
    from detscope.core.runtime.model import load_model

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)   # import fails as if not installed
    loaded = load_model(models[("ssd", "uint8")], warmup=False)
    assert "tf.lite.Interpreter" in loaded.live.runtime
    monkeypatch.undo()
    litert = load_model(models[("ssd", "uint8")], warmup=False)
    img = image(6)
    a, b = loaded.detect(img), litert.detect(img)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)


def test_cli_detect_and_host(models, capsys):
    from detscope.core.app.host import ModelHost
    from PIL import Image

    path = models[("od", "float")]
    assert main(["detect", str(path), str(_png(path.parent))]) == 0
    assert "image.png" in capsys.readouterr().out
    assert main(["detect", str(path), str(_png(path.parent)), "--json", "--threshold", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["images"][0]["detections"]) == 8

    host = ModelHost()
    try:
        summary = host.load_sync(path)
        assert summary.how == "tflite" and summary.can_detect and summary.signature == "serving_default"
        img = np.asarray(Image.open(_png(path.parent)).convert("RGB"))
        dets = host.detect(img).result()
        assert len(dets) == 8
        target = host.mapping_target().result()
        assert set(target.outputs) == set(OD_ROLES.values()) | {"detection_multiclass_scores"}
        assert target.outputs["detection_boxes"][1] == (1, 8, 4)
    finally:
        host.shutdown()


def _png(folder):
    from PIL import Image

    p = folder / "image.png"
    if not p.is_file():
        Image.fromarray(image(9, 40, 56)).save(p)
    return p
