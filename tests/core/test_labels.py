"""Label maps from label_map.pbtxt, COCO JSON and labels.txt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detscope.core.formats.labels import LabelItem, LabelMap, LabelMapError, label_map_from_names, read_label_map
from detscope.core.base.findings import ERROR, INFO, WARNING



def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def severities(lm: LabelMap, severity: str) -> list[str]:
    return [f.message for f in lm.findings if f.severity == severity]


# --- real files -------------------------------------------------------------------------------

def test_coco_label_map(realdata):
    lm = read_label_map(realdata / "labelmaps/tensorflow_models/mscoco_label_map.pbtxt")
    assert len(lm) == 80
    assert lm.max_id == 90
    assert lm.label(1) == "person"
    assert lm.label(90) == "toothbrush"
    assert lm.items[0] == LabelItem(1, "/m/01g317", "person")
    assert 12 not in lm.ids and lm.label(12) == "class 12"
    assert not severities(lm, ERROR) and not severities(lm, WARNING)
    info = severities(lm, INFO)
    assert any("ids 1–90 with 10 gaps (COCO style)" in m for m in info), info
    # 68 items are named "NA" and told apart by display_name only.
    assert any("68 items share the name 'NA'" in m for m in info), info
    assert all(f.file == str(realdata / "labelmaps/tensorflow_models/mscoco_label_map.pbtxt") for f in lm.findings)


def test_one_class_label_map(realdata):
    # Written by hand with single quotes and a tab indent.
    lm = read_label_map(realdata / "car-ssd-fpnlite-training/annotations/label_map.pbtxt")
    assert len(lm) == 1 and lm.ids == [1] and lm.max_id == 1
    assert lm.label(1) == "car"
    assert lm.items[0].display_name is None
    assert lm.findings == []


def test_labelme_labels_txt_agrees_with_coco_json(realdata):
    base = realdata / "voc2011-samples/examples"
    txt = read_label_map(base / "bbox_detection/labels.txt")
    coco = read_label_map(base / "instance_segmentation/data_dataset_coco/annotations.json")
    voc_names = read_label_map(base / "bbox_detection/data_dataset_voc/class_names.txt")
    # labels.txt starts with __ignore__ and _background_; the JSON has a category 0 _background_.
    assert len(txt) == len(coco) == len(voc_names) == 20
    assert [(i.id, i.name) for i in txt] == [(i.id, i.name) for i in coco] == [(i.id, i.name) for i in voc_names]
    assert txt.label(1) == "aeroplane" and txt.label(15) == "person" and txt.label(20) == "tv/monitor"
    assert any("__ignore__" in m for m in severities(txt, INFO))
    assert any("background" in m for m in severities(coco, INFO))
    assert not severities(coco, WARNING) and not severities(coco, ERROR)


# --- label_map.pbtxt --------------------------------------------------------------------------

def test_display_name_preferred_and_fallbacks(tmp_path):
    p = write(tmp_path, "label_map.pbtxt", """
item { name: "/m/01g317" id: 1 display_name: "person" }
item { name: "dog" id: 3 }
item { id: 4 }
""")
    lm = read_label_map(p)
    assert lm.label(1) == "person"
    assert lm.label(3) == "dog"
    assert lm.label(4) == "class 4"
    assert lm.label(np.int64(3)) == "dog"
    assert lm.label(np.float32(1.0)) == "person"
    assert lm.label(77) == "class 77"
    assert lm.as_json() == [
        {"id": 1, "name": "/m/01g317", "display_name": "person"},
        {"id": 3, "name": "dog", "display_name": None},
        {"id": 4, "name": "", "display_name": None},
    ]
    assert any("ids 1–4 with 1 gap: missing 2" in m for m in severities(lm, INFO))


@pytest.mark.parametrize("text", [
    "item {\n  name: 'cat'\n  id: 1\n}\nitem {\n  name: 'dog'\n  id: 2\n}\n",           # single quotes
    "item { id: 1, name: 'cat', }\nitem { id: 2, name: 'dog' }",                         # commas
    "item { id: 1; name: \"cat\"; }\nitem { id: 2; name: \"dog\"; }",                   # semicolons
    "item { id: 1 name: 'cat' }, item { id: 2 name: 'dog' }",                            # comma between items
    "# my classes\nitem { id: 1 name: 'cat' } # first\nitem { id: 2 name: 'dog' }  # last\n",
    "item: { id: 1 name: 'cat' }\nitem: { id: 2 name: 'dog' }",                          # colon before brace
    "item < id: 1 name: 'cat' >\nitem < id: 2 name: 'dog' >",                            # angle brackets
    "item [{ id: 1 name: 'cat' }, { id: 2 name: 'dog' }]",                               # list
    "\ufeffitem {\r\n  id: 1\r\n  name: 'cat'\r\n}\r\nitem {\r\n  id: 2\r\n  name: 'dog'\r\n}\r\n",  # BOM, CRLF
])
def test_hand_written_variants(tmp_path, text):
    p = tmp_path / "label_map.pbtxt"
    p.write_bytes(text.encode("utf-8"))
    lm = read_label_map(p)
    assert [(i.id, i.name) for i in lm] == [(1, "cat"), (2, "dog")]
    assert lm.findings == []


def test_newer_item_fields_are_tolerated(tmp_path):
    p = write(tmp_path, "label_map.pbtxt", """
item {
  name: "person" id: 1 display_name: "Person"
  keypoints { id: 0 label: "nose" }
  ancestor_ids: 5 descendant_ids: 7 descendant_ids: 8
  frequency: FREQUENT
  instance_count: 1234
}
""")
    lm = read_label_map(p)
    assert lm.label(1) == "Person"
    assert lm.findings == []


def test_unknown_field_is_a_warning(tmp_path):
    p = write(tmp_path, "label_map.pbtxt", "item { id: 1 name: 'a' displayname: 'A' }\n"
                                           "item { id: 2 name: 'b' displayname: 'B' }\n")
    lm = read_label_map(p)
    assert lm.label(1) == "a"
    assert severities(lm, WARNING) == ["unknown field 'displayname' ignored (2 times); a label map item has "
                                       "name, id and display_name"]


@pytest.mark.parametrize("text, line, words", [
    ("item {\n  id: 1\n  name: car\n}\n", 3, "quotes"),
    ("item {\n  id: 1\n  name: 'car'\n", 3, "no matching }"),
    ("item {\n  id: 1.5\n  name: 'car'\n}\n", 2, "whole number"),
    ("item {\n  id: 1\n  name: 'car\n}\n", 3, "ending quote"),
    ("item {\n  id 1\n}\n", 2, 'Expected ":"'),
    ("item {\n  id: 1\n  id: 2\n}\n", 3, 'StringIntLabelMapItem" should not have multiple "id" fields'),
])
def test_broken_pbtxt_names_file_and_line(tmp_path, text, line, words):
    p = write(tmp_path, "label_map.pbtxt", text)
    with pytest.raises(LabelMapError) as info:
        read_label_map(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: line {line}, column ")
    assert words in msg
    assert "\n" not in msg


def test_item_without_id(tmp_path):
    lm = read_label_map(write(tmp_path, "label_map.pbtxt", "item { name: 'a' id: 1 }\nitem { name: 'b' }\n"))
    assert lm.ids == [1]
    assert severities(lm, ERROR) == ["item 2 (b) has no id and is left out"]


def test_pbtxt_content_with_another_suffix(tmp_path):
    lm = read_label_map(write(tmp_path, "label_map.txt", "item {\n name: 'x'\n id: 1\n}\n"))
    assert [(i.id, i.name) for i in lm] == [(1, "x")]


# --- findings shared by all formats --------------------------------------------------------------

def test_duplicate_ids_error(tmp_path):
    lm = read_label_map(write(tmp_path, "m.pbtxt", "item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n"
                                                  "item { id: 2 name: 'c' }"))
    assert lm.ids == [1, 2] and lm.label(1) == "a"
    assert severities(lm, ERROR) == ["id 1 is used 2 times ('a', 'b'); 'a' (item 1) is used"]


def test_duplicate_names_warning(tmp_path):
    lm = read_label_map(write(tmp_path, "m.pbtxt", "item { id: 1 name: 'car' }\nitem { id: 2 name: 'car' }"))
    assert len(lm) == 2
    assert severities(lm, WARNING) == ["name 'car' is used by 2 ids (1, 2): detections of these classes look the same"]


def test_id_zero(tmp_path):
    lm = read_label_map(write(tmp_path, "m.pbtxt", "item { id: 0 name: 'car' }\nitem { id: 1 name: 'bus' }"))
    assert lm.ids == [0, 1]
    assert any("id 0 ('car') is used: 0 is reserved for the background" in m for m in severities(lm, WARNING))
    # The OD API's own spelling of a background item is simply skipped.
    lm = read_label_map(write(tmp_path, "b.pbtxt", "item { id: 0 name: 'background' }\nitem { id: 1 name: 'bus' }"))
    assert lm.ids == [1]
    assert not severities(lm, WARNING)
    assert any("background" in m for m in severities(lm, INFO))


def test_ids_not_starting_at_one(tmp_path):
    lm = read_label_map(write(tmp_path, "m.pbtxt", "item { id: 5 name: 'a' }\nitem { id: 6 name: 'b' }\n"
                                                  "item { id: 9 name: 'c' }"))
    assert severities(lm, INFO) == ["ids 5–9 with 2 gaps: missing 7, 8; they start at 5, not 1"]
    lm = read_label_map(write(tmp_path, "n.pbtxt", "item { id: 3 name: 'a' }\nitem { id: 4 name: 'b' }"))
    assert severities(lm, INFO) == ["ids 3–4: they start at 3, not 1"]


@pytest.mark.parametrize("name, text", [
    ("label_map.pbtxt", ""),
    ("label_map.pbtxt", "# nothing yet\n"),
    ("labels.txt", "\n\n"),
    ("annotations.json", '{"images": [], "categories": []}'),
])
def test_empty_map_is_an_error(tmp_path, name, text):
    lm = read_label_map(write(tmp_path, name, text))
    assert len(lm) == 0 and lm.max_id is None and lm.ids == []
    assert severities(lm, ERROR) == ["the label map is empty: no classes to name"]
    assert lm.findings[0].file == str(tmp_path / name)


# --- labels.txt ----------------------------------------------------------------------------

def test_labels_txt_ids_by_position(tmp_path):
    lm = read_label_map(write(tmp_path, "labels.txt", "person\n\nbicycle\n  car  \n"))
    assert [(i.id, i.name) for i in lm] == [(1, "person"), (2, "bicycle"), (3, "car")]
    assert lm.findings == []


@pytest.mark.parametrize("first", ["background", "???", "_background_", "__background__", "Background"])
def test_labels_txt_background_first_line(tmp_path, first):
    lm = read_label_map(write(tmp_path, "labels.txt", f"{first}\nperson\ncar\n"))
    assert [(i.id, i.name) for i in lm] == [(1, "person"), (2, "car")]
    assert any("index 0" in m for m in severities(lm, INFO))


def test_labels_txt_tflite_placeholders_leave_gaps(tmp_path):
    lm = read_label_map(write(tmp_path, "labelmap.txt", "???\nperson\nbicycle\n???\nbus\n"))
    assert [(i.id, i.name) for i in lm] == [(1, "person"), (2, "bicycle"), (4, "bus")]
    assert any("missing 3" in m for m in severities(lm, INFO))


def test_labels_txt_explicit_ids(tmp_path):
    lm = read_label_map(write(tmp_path, "labels.txt", "0 background\n1 person\n2: bicycle\n3,car\n5 = traffic light\n"))
    assert [(i.id, i.name) for i in lm] == [(1, "person"), (2, "bicycle"), (3, "car"), (5, "traffic light")]
    assert any("background" in m for m in severities(lm, INFO))
    assert any("missing 4" in m for m in severities(lm, INFO))
    lm = read_label_map(write(tmp_path, "zero.txt", "0 person\n1 car\n"))
    assert lm.ids == [0, 1]
    assert any("id 0 ('person')" in m for m in severities(lm, WARNING))


def test_labels_txt_names_starting_with_digits(tmp_path):
    lm = read_label_map(write(tmp_path, "labels.txt", "3d printer\n2 wheeler\nbus\n"))
    assert [(i.id, i.name) for i in lm] == [(1, "3d printer"), (2, "2 wheeler"), (3, "bus")]
    assert any("1 of 3 lines start with a number" in m for m in severities(lm, WARNING))


# --- JSON --------------------------------------------------------------------------------

def test_coco_json_categories(tmp_path):
    data = {"images": [], "annotations": [],
            "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"},
                           {"id": 1, "name": "person", "supercategory": "person"}]}
    lm = read_label_map(write(tmp_path, "annotations.json", json.dumps(data)))
    assert [(i.id, i.name) for i in lm] == [(1, "person"), (3, "car")]


def test_bare_list_and_id_mapping(tmp_path):
    lm = read_label_map(write(tmp_path, "cats.json", '[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]'))
    assert lm.label(2) == "b"
    lm = read_label_map(write(tmp_path, "names.json", '{"1": "a", "2": "b"}'))
    assert [(i.id, i.name) for i in lm] == [(1, "a"), (2, "b")]


def test_bad_json(tmp_path):
    p = write(tmp_path, "annotations.json", '{"categories": [\n  {"id": 1, "name": "a"},\n]}')
    with pytest.raises(LabelMapError, match=r"annotations\.json: line 3, column 1: "):
        read_label_map(p)
    with pytest.raises(LabelMapError, match="no 'categories' list"):
        read_label_map(write(tmp_path, "other.json", '{"images": []}'))
    lm = read_label_map(write(tmp_path, "partial.json", '{"categories": [{"id": 1, "name": "a"}, {"name": "b"}]}'))
    assert lm.ids == [1]
    assert any("category 2 is not an {id, name} pair" in m for m in severities(lm, ERROR))


# --- the type itself --------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(LabelMapError, match=r"nope\.pbtxt: no such file"):
        read_label_map(tmp_path / "nope.pbtxt")


def test_label_map_type():
    lm = LabelMap([LabelItem(2, "b"), LabelItem(1, "a", "A")])
    assert lm.ids == [1, 2] and lm.max_id == 2 and len(lm) == 2
    assert lm.label(1) == "A" and lm.items[0].label == "A"
    assert LabelMap().max_id is None and LabelMap().label(3) == "class 3"
    names = label_map_from_names(["x", "y"])
    assert [(i.id, i.name) for i in names] == [(1, "x"), (2, "y")]
