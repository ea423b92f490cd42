"""Ground-truth readers on real annotation files: every format reads back the same boxes.

``../shared/realdata/voc2011-samples`` has Pascal VOC XML and labelme JSON drawn as boxes for three VOC 2011
images, and a COCO file of the same images made from instance *polygons* (so its boxes are close to, not
equal to, the VOC ones, and it labels a bottle, a chair and a sofa the box files leave out). The CSV, YOLO and
TFRecord forms are written from them here (the TFRecords with TensorFlow's own writer and tf.train.Example)
and must read back equal.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detscope.core.eval import readers
from detscope.core.eval.annotations import UNMAPPED, GroundTruthError
from detscope.core.eval.matching import box_iou
from detscope.core.formats import tfrecord
from detscope.core.formats.labels import label_map_from_names, read_label_map
from detscope.core.media.images import list_images

VOC2011 = "voc2011-samples/examples"


@pytest.fixture(scope="module")
def voc2011(realdata) -> Path:
    root = realdata / VOC2011
    if not root.is_dir():
        pytest.skip(f"{root} is not there")
    return root


def _same(a, b, atol=1e-9):
    """Two GroundTruths hold the same images (by stem), names, boxes and flags."""
    stems = lambda gt: {Path(k).stem: v for k, v in gt.images.items()}  # noqa: E731
    sa, sb = stems(a), stems(b)
    assert sorted(sa) == sorted(sb)
    for k in sa:
        x, y = sa[k], sb[k]
        assert x.names == y.names, k
        np.testing.assert_allclose(x.boxes, y.boxes, atol=atol, err_msg=k)
        assert x.difficult.tolist() == y.difficult.tolist() and x.crowd.tolist() == y.crowd.tolist(), k
        assert x.class_ids.tolist() == y.class_ids.tolist(), k


# --- the real files ------------------------------------------------------------------------------

def test_voc_and_labelme_read_the_same_boxes(voc2011):
    lm = read_label_map(voc2011 / "bbox_detection" / "labels.txt")
    voc = readers.read_ground_truth(voc2011 / "bbox_detection/data_dataset_voc/Annotations", [], label_map=lm)
    labelme = readers.read_ground_truth(voc2011 / "bbox_detection/data_annotated", [], label_map=lm)
    assert (voc.format, labelme.format) == ("voc", "labelme")
    assert voc.objects == 9 and voc.unmapped == {} and labelme.unmapped == {}
    _same(voc, labelme)
    a = voc.images["2011_000006"]
    assert a.names == ("person",) * 4 and a.class_ids.tolist() == [15] * 4 and (a.width, a.height) == (500, 375)
    np.testing.assert_allclose(a.boxes[2], [254.38461538461536, 115.38461538461539, 369.38461538461536,
                                            292.38461538461536])


def test_coco_reads_what_the_file_says_and_agrees_with_voc(voc2011):
    path = voc2011 / "instance_segmentation/data_dataset_coco/annotations.json"
    lm = read_label_map(voc2011 / "bbox_detection" / "labels.txt")
    coco = readers.read_ground_truth(path, [], label_map=lm)
    raw = json.loads(path.read_text())
    assert coco.objects == len(raw["annotations"]) == 12
    names = {c["id"]: c["name"] for c in raw["categories"]}
    for im in raw["images"]:
        ann = coco.images[im["file_name"]]
        rows = [a for a in raw["annotations"] if a["image_id"] == im["id"]]
        assert ann.names == tuple(names[a["category_id"]] for a in rows)
        np.testing.assert_array_equal(ann.boxes, [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in rows)])
        np.testing.assert_array_equal(ann.areas, [a["area"] for a in rows])
        assert (ann.width, ann.height) == (im["width"], im["height"])
    # the same objects as the box-drawn VOC files (its boxes come from polygons, so close, not equal)
    voc = readers.read_ground_truth(voc2011 / "bbox_detection/data_dataset_voc/Annotations", [], label_map=lm)
    for stem, v in voc.images.items():
        c = coco.lookup(Path(stem + ".jpg"))
        same = np.array(v.names)[:, None] == np.array(c.names)[None]
        assert (np.where(same, box_iou(v.boxes, c.boxes), 0).max(axis=1) >= 0.8).all(), stem
    extra = sorted(n for a in coco.images.values() for n in a.names if n not in ("person", "bus", "car"))
    assert extra == ["bottle", "chair", "sofa"]
    # found by the images' path relative to the COCO file, and by name from anywhere else
    assert coco.lookup(path.parent / "JPEGImages" / "2011_000025.jpg").names == ("bus", "bus", "car")


def test_found_beside_the_images(voc2011):
    images = list_images([voc2011 / "bbox_detection/data_dataset_voc/JPEGImages"])
    fmt, where, _ = readers.find_ground_truth(None, images)
    assert (fmt, where.name) == ("voc", "Annotations")          # the Annotations/ sibling of JPEGImages/
    images = list_images([voc2011 / "instance_segmentation/data_dataset_coco/JPEGImages"])
    fmt, where, _ = readers.find_ground_truth(None, images)
    assert (fmt, where.name) == ("coco", "data_dataset_coco")   # annotations.json one folder up
    truth = readers.read_ground_truth(None, images)
    assert all(truth.lookup(p) is not None for p in images)


def test_demo_voc_and_coco_read_back_equal(demo):
    images = list_images([demo / "test" / "images"])
    lm = read_label_map(demo / "label_map.pbtxt")
    voc = readers.read_ground_truth(None, images, label_map=lm)
    coco = readers.read_ground_truth(None, images, fmt="coco", label_map=lm)
    assert (voc.format, coco.format) == ("voc", "coco")
    assert voc.objects == coco.objects == 119
    for p in images:
        a, b = voc.lookup(p), coco.lookup(p)
        assert a.names == b.names and a.class_ids.tolist() == b.class_ids.tolist()
        np.testing.assert_array_equal(a.boxes, b.boxes)


# --- forms written in the test ---------------------------------------------------------------------

def _write_csv(gt, path: Path) -> None:
    """As the OD API tutorials' xml_to_csv.py writes it."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
        for key, a in gt.images.items():
            for name, (x0, y0, x1, y1) in zip(a.names, a.boxes):
                w.writerow([Path(key).stem + ".jpg", a.width, a.height, name, *(repr(float(v)) for v in (x0, y0, x1, y1))])


def _write_tfrecord(gt, path: Path, label_map, compression=None) -> None:
    """As the OD API's dataset tools write it: tf.train.Example with the standard image/... keys."""
    tf = pytest.importorskip("tensorflow")
    feat = tf.train.Feature
    b = lambda v: feat(bytes_list=tf.train.BytesList(value=v))  # noqa: E731
    fl = lambda v: feat(float_list=tf.train.FloatList(value=v))  # noqa: E731
    i64 = lambda v: feat(int64_list=tf.train.Int64List(value=v))  # noqa: E731
    with tf.io.TFRecordWriter(str(path), options=compression) as w:
        for key, a in gt.images.items():
            name = (Path(key).stem + ".jpg").encode()
            ids = [label_map.get(int(c)).id if c != UNMAPPED else 0 for c in a.class_ids]
            ex = tf.train.Example(features=tf.train.Features(feature={
                "image/height": i64([a.height]), "image/width": i64([a.width]),
                "image/filename": b([name]), "image/source_id": b([name]), "image/format": b([b"jpeg"]),
                "image/object/bbox/xmin": fl((a.boxes[:, 0] / a.width).tolist()),
                "image/object/bbox/xmax": fl((a.boxes[:, 2] / a.width).tolist()),
                "image/object/bbox/ymin": fl((a.boxes[:, 1] / a.height).tolist()),
                "image/object/bbox/ymax": fl((a.boxes[:, 3] / a.height).tolist()),
                "image/object/class/text": b([n.encode() for n in a.names]),
                "image/object/class/label": i64(ids),
                "image/object/difficult": i64(a.difficult.astype(int).tolist()),
                "image/object/is_crowd": i64(a.crowd.astype(int).tolist()),
            }))
            w.write(ex.SerializeToString())


def _write_yolo(gt, folder: Path) -> None:
    folder.mkdir()
    names = sorted({n for a in gt.images.values() for n in a.names})
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    for key, a in gt.images.items():
        rows = []
        for n, (x0, y0, x1, y1) in zip(a.names, a.boxes):
            rows.append(f"{names.index(n)} {float((x0 + x1) / 2 / a.width)!r} {float((y0 + y1) / 2 / a.height)!r} "
                        f"{float((x1 - x0) / a.width)!r} {float((y1 - y0) / a.height)!r}")
        (folder / (Path(key).stem + ".txt")).write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("source", ["voc", "coco"])
def test_csv_tfrecord_and_yolo_written_from_the_real_files_read_back_equal(voc2011, tmp_path, source):
    lm = read_label_map(voc2011 / "bbox_detection" / "labels.txt")
    path = {"voc": voc2011 / "bbox_detection/data_dataset_voc/Annotations",
            "coco": voc2011 / "instance_segmentation/data_dataset_coco/annotations.json"}[source]
    truth = readers.read_ground_truth(path, [], label_map=lm)
    if source == "coco":       # a crowd box and a difficult one, so the flags travel too
        first = truth.images["JPEGImages/2011_000006.jpg"]
        first.crowd[3] = True
        first.difficult[5] = True

    _write_csv(truth, tmp_path / "test_labels.csv")
    got = readers.read_ground_truth(tmp_path / "test_labels.csv", [], label_map=lm)
    assert got.format == "csv"
    if source == "voc":
        _same(truth, got)
    else:                      # a CSV has no crowd or difficult columns
        for k, a in truth.images.items():
            b = got.lookup(Path(k))
            assert a.names == b.names and np.array_equal(a.boxes, b.boxes)

    for compression in (None, "GZIP"):
        record = tmp_path / f"test-{compression}.record"
        _write_tfrecord(truth, record, lm, compression)
        got = readers.read_ground_truth(record, [], label_map=lm)
        assert got.format == "tfrecord"
        _same(truth, got, atol=1e-3)            # normalised float32 boxes: a thousandth of a pixel

    images = tmp_path / "images"
    images.mkdir()
    jpegs = voc2011 / "bbox_detection/data_dataset_voc/JPEGImages"
    for p in jpegs.iterdir():
        shutil.copy(p, images / p.name)
    _write_yolo(truth, tmp_path / "labels")
    got = readers.read_ground_truth(None, list_images([images]), label_map=lm)
    assert got.format == "yolo"
    _same(truth, got, atol=1e-9) if source == "voc" else None
    for k, a in truth.images.items():
        b = got.images[Path(k).stem]
        assert a.names == b.names
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-6)


def test_detscope_reads_a_tfrecord_tensorflow_reads_and_the_other_way(tmp_path):
    tf = pytest.importorskip("tensorflow")
    records = [b"", b"x", bytes(range(256)) * 40]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.record")) as w:
        for r in records:
            w.write(r)
    assert list(tfrecord.read_records(tmp_path / "tf.record")) == records
    tfrecord.write_records(tmp_path / "ours.record", records)
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.record"))] == records
    assert tfrecord.looks_like_tfrecord(tmp_path / "ours.record")


# --- class names, unannotated and empty images -------------------------------------------------

def test_names_the_label_map_lacks_are_listed_once_and_kept_out(voc2011):
    lm = label_map_from_names(["person", "car"])
    voc = readers.read_ground_truth(voc2011 / "bbox_detection/data_dataset_voc/Annotations", [], label_map=lm)
    assert voc.unmapped == {"bus": 2}
    assert voc.images["2011_000025"].class_ids.tolist() == [UNMAPPED, UNMAPPED, 2]
    line = voc.unmapped_line()
    assert "\n" not in line and "'bus' (2)" in line and "left out of the metrics" in line
    # names match ignoring case and separators; display names count
    lm = read_label_map(voc2011 / "bbox_detection" / "labels.txt")
    assert readers.ClassMapper(lm).id_for("Potted_Plant") == readers.ClassMapper(lm).id_for("potted plant") == 16


def test_unannotated_is_not_empty(voc2011, tmp_path):
    images = tmp_path / "JPEGImages"
    shutil.copytree(voc2011 / "bbox_detection/data_dataset_voc/JPEGImages", images)
    ann = tmp_path / "Annotations"
    ann.mkdir()
    for p in (voc2011 / "bbox_detection/data_dataset_voc/Annotations").glob("*.xml"):
        if p.stem != "2011_000025":
            shutil.copy(p, ann / p.name)
    xml = (ann / "2011_000003.xml").read_text()
    start, end = xml.index("<object>"), xml.rindex("</object>") + len("</object>")
    (ann / "2011_000003.xml").write_text(xml[:start] + xml[end:])        # a file with no objects: empty
    files = list_images([images])
    truth = readers.read_ground_truth(None, files)
    got = {p.stem: truth.lookup(p) for p in files}
    assert got["2011_000025"] is None                                    # no file: unannotated
    assert len(got["2011_000003"]) == 0 and len(got["2011_000006"]) == 4
    # COCO: an image listed without annotations is empty; one not listed is unannotated
    data = json.loads((voc2011 / "instance_segmentation/data_dataset_coco/annotations.json").read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in (1, 2)]
    data["images"] = [im for im in data["images"] if im["id"] != 2]
    (tmp_path / "coco.json").write_text(json.dumps(data))
    coco = readers.read_ground_truth(tmp_path / "coco.json", files)
    assert len(coco.lookup(images / "2011_000025.jpg")) == 0 and coco.lookup(images / "2011_000006.jpg") is None


# --- bad files: one line naming the file and the line or record ----------------------------------

VOC_GOOD = """<annotation>
  <filename>a.jpg</filename>
  <size><width>100</width><height>80</height><depth>3</depth></size>
  <object>
    <name>person</name>
    <bndbox>
      <xmin>10</xmin>
      <ymin>5</ymin>
      <xmax>40</xmax>
      <ymax>60</ymax>
    </bndbox>
  </object>
</annotation>
"""


@pytest.mark.parametrize("name, text, expected", [
    ("a.xml", VOC_GOOD.replace("</bndbox>", "</bndbx>"), "a.xml: line 11, column"),
    ("a.xml", VOC_GOOD.replace("<xmin>10</xmin>", "<xmin>ten</xmin>"), "a.xml: line 7 (object 1): xmin is 'ten', not a number"),
    ("a.xml", VOC_GOOD.replace("<ymax>60</ymax>", ""), "a.xml: line 6 (object 1): <bndbox> of 'person' has no <ymax>"),
    ("a.xml", VOC_GOOD.replace("<xmax>40</xmax>", "<xmax>4</xmax>"), "a.xml: line 4 (object 1): the box (10, 5, 4, 60)"),
    ("a.xml", "<doc><x/></doc>", "a.xml: line 1: not a Pascal VOC annotation"),
    ("c.json", '{"images": [], "annotations": [\n  {"id": 1,}\n]}', "c.json: line 2, column"),
    ("c.json", json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "p"}],
                           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
                                           {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}),
     "c.json: annotation 2 (id 7): bbox is [1, 2, 3], not [x, y, width, height]"),
    ("c.json", json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "p"}],
                           "annotations": [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [1, 2, 3, 4]}]}),
     "c.json: annotation 1 (id 1): image_id 9 is not among the images"),
    ("l.csv", "filename,width,height,class,xmin,ymin,xmax,ymax\na.jpg,100,80,person,1,2,30,40\na.jpg,100,80,person,1,x,30,40\n",
     "l.csv: line 3: ymin is 'x', not a number"),
    ("l.csv", "filename,class,xmin\na.jpg,p,1\n", "l.csv: line 1: the header has no ymin, xmax, ymax column"),
    ("m.json", json.dumps({"shapes": [{"label": "p", "points": [[1, 2]], "shape_type": "rectangle"}]}),
     "m.json: shape 1: rectangle 'p' needs two corner points"),
])
def test_a_bad_annotation_file_is_one_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GroundTruthError) as err:
        readers.read_ground_truth(path, [])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path)), msg
    assert expected in msg, msg


def test_bad_yolo_and_tfrecord_files_name_the_line_and_record(voc2011, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(voc2011 / "bbox_detection/data_dataset_voc/JPEGImages/2011_000003.jpg", images)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("person\n")
    (labels / "2011_000003.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n")
    with pytest.raises(GroundTruthError, match=r"2011_000003\.txt: line 2: 4 values"):
        readers.read_ground_truth(None, list_images([images]))
    (labels / "2011_000003.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(GroundTruthError, match=r"line 1: class 3, but classes.txt has 1 names"):
        readers.read_ground_truth(None, list_images([images]))

    lm = read_label_map(voc2011 / "bbox_detection" / "labels.txt")
    truth = readers.read_ground_truth(voc2011 / "bbox_detection/data_dataset_voc/Annotations", [], label_map=lm)
    good = tmp_path / "good.record"
    _write_tfrecord(truth, good, lm)
    data = good.read_bytes()
    frames = list(tfrecord.read_records(good))
    cut = tmp_path / "cut.record"
    cut.write_bytes(data[:-7])
    with pytest.raises(GroundTruthError, match=r"cut\.record: record 3 \(byte \d+\): the file ends inside the record"):
        readers.read_ground_truth(cut, [])
    flipped = bytearray(data)
    flipped[12 + len(frames[0]) + 4 + 12 + 20] ^= 0xFF           # a byte inside record 2's data
    (tmp_path / "flip.record").write_bytes(bytes(flipped))
    with pytest.raises(GroundTruthError, match=r"flip\.record: record 2 \(byte \d+\): the data's checksum is wrong"):
        readers.read_ground_truth(tmp_path / "flip.record", [])
    # a well-framed record whose lists disagree
    tf = pytest.importorskip("tensorflow")
    ex = tf.train.Example.FromString(frames[1])
    ex.features.feature["image/object/class/text"].bytes_list.value.append(b"person")
    tfrecord.write_records(tmp_path / "odd.record", [frames[0], ex.SerializeToString()])
    with pytest.raises(GroundTruthError, match=r"odd\.record: record 2 \(2011_000006\.jpg\): the object lists differ"):
        readers.read_ground_truth(tmp_path / "odd.record", [])


def test_a_real_fine_tuning_runs_test_set(realdata):
    """labelImg's VOC files beside the JPEGs of a real OD API fine-tuning run, with its one-class label map."""
    test = realdata / "car-ssd-fpnlite-training" / "images" / "test"
    if not test.is_dir():
        pytest.skip(f"{test} is not there")
    images = list_images([test])
    lm = read_label_map(realdata / "car-ssd-fpnlite-training" / "annotations" / "label_map.pbtxt")
    truth = readers.read_ground_truth(None, images, label_map=lm)
    assert truth.format == "voc" and truth.unmapped == {}
    assert all(truth.lookup(p) is not None for p in images) and len(images) == 11
    a = truth.lookup(test / "images.jpeg")
    assert a.names == ("car", "car") and a.class_ids.tolist() == [1, 1] and (a.width, a.height) == (322, 156)
    np.testing.assert_array_equal(a.boxes, [[204, 70, 285, 113], [21, 78, 156, 149]])
