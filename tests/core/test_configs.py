"""pipeline.config, params.yaml, the schema-less text-format parser and the class-count check."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from detscope.core.browse.checks import check_num_classes
from detscope.core.formats.configs import ConfigError, ModelGardenParams, PipelineConfig, pipeline_config_from_text, read_params_yaml, read_pipeline_config
from detscope.core.formats.textproto import TextFormatError, as_list, get_path, parse_text_proto
from detscope.core.formats.labels import LabelItem, LabelMap, read_label_map
from detscope.core.base.findings import ERROR, INFO, WARNING

RUN = "car-ssd-fpnlite-training/models/my_ssd_mobnet/pipeline.config"
ZOO = "car-ssd-fpnlite-training/pre-trained-models/ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8/pipeline.config"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def messages(findings, severity):
    return [f.message for f in findings if f.severity == severity]


# --- real pipeline.config files ------------------------------------------------------------------

def test_fine_tuned_ssd_fpnlite(realdata):
    cfg = read_pipeline_config(realdata / RUN)
    assert isinstance(cfg, PipelineConfig)
    assert cfg.model_type == "ssd"
    assert cfg.num_classes == 1
    assert cfg.image_resizer == {"type": "fixed_shape_resizer", "height": 320, "width": 320}
    assert cfg.input_size == (320, 320)
    assert cfg.max_detections == 100
    assert cfg.score_threshold == pytest.approx(1e-08)
    assert cfg.feature_extractor_type == "ssd_mobilenet_v2_fpn_keras"
    assert cfg.fine_tune_checkpoint.endswith("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8/checkpoint/ckpt-0")
    assert cfg.fine_tune_checkpoint_type == "detection"
    assert cfg.label_map_path == "Tensorflow/workspace/annotations/label_map.pbtxt"
    assert cfg.batch_size == 10 and cfg.num_steps == 50000
    # multiscale_anchor_generator: 3 aspect ratios x 2 scales per octave.
    assert cfg.anchors_per_location == 6
    # The path is the training machine's; its trailing part is found two folders up.
    assert cfg.label_map_found == realdata / "car-ssd-fpnlite-training/annotations/label_map.pbtxt"
    info = messages(cfg.findings, INFO)
    assert len(info) == 1 and "does not exist relative to the config's folder" in info[0]
    assert "annotations/label_map.pbtxt" in info[0]
    assert not messages(cfg.findings, WARNING) and not messages(cfg.findings, ERROR)
    # Repeated fields and deep nesting are all in raw.
    assert get_path(cfg.raw, "model.ssd.anchor_generator.multiscale_anchor_generator.aspect_ratios") == [1.0, 2.0, 0.5]
    assert len(as_list(cfg.raw["train_config"]["data_augmentation_options"])) == 2
    assert cfg.raw["model"]["ssd"]["feature_extractor"]["conv_hyperparams"]["activation"] == "RELU_6"
    assert cfg.raw["model"]["ssd"]["encode_background_as_zeros"] is True
    json.dumps(cfg.as_json())
    assert cfg.as_json()["input_size"] == [320, 320]


def test_model_zoo_template(realdata):
    cfg = read_pipeline_config(realdata / ZOO)
    assert cfg.model_type == "ssd" and cfg.num_classes == 90
    assert cfg.batch_size == 128
    assert cfg.fine_tune_checkpoint == "PATH_TO_BE_CONFIGURED"
    assert cfg.fine_tune_checkpoint_type == "classification"
    # Written by protobuf from float32 values.
    assert cfg.raw["model"]["ssd"]["box_predictor"]["weight_shared_convolutional_box_predictor"][
        "class_prediction_bias_init"] == -4.599999904632568
    assert any("fine_tune_checkpoint is still PATH_TO_BE_CONFIGURED" in m for m in messages(cfg.findings, WARNING))
    assert any("label_map_path is still PATH_TO_BE_CONFIGURED" in m for m in messages(cfg.findings, INFO))
    assert cfg.label_map_found is None


def test_real_config_and_label_map_agree(realdata):
    cfg = read_pipeline_config(realdata / RUN)
    lm = read_label_map(cfg.label_map_found)
    assert check_num_classes(cfg.num_classes, lm, 1, [str(cfg.path), str(lm.source), None]) == []
    coco = read_label_map(realdata / "labelmaps/tensorflow_models/mscoco_label_map.pbtxt")
    zoo = read_pipeline_config(realdata / ZOO)
    assert check_num_classes(zoo.num_classes, coco, 90, None) == []
    # The fine-tuned config against the COCO map is the classic mix-up.
    (f,) = check_num_classes(cfg.num_classes, coco, None, {"config": cfg.path, "label_map": coco.source})
    assert f.message == ("pipeline.config says num_classes 1 but mscoco_label_map.pbtxt has ids up to 90 "
                         "(80 labels); the class head's size is unknown")


# --- parse_text_proto -----------------------------------------------------------------------

def test_text_proto_values():
    raw = parse_text_proto(r'''
# a comment line
a: 1   # trailing comment
a: 2
neg: -3 f: -4.6 e: 1e-08 e2: 3.9999998989515007e-05 h: 0x1F fl: 1.0f inf: -inf n: nan
s: 'it\'s' t: "tab\there" u: "caf\303\251" joined: "ab" 'cd'
b: true c: false enum: RELU_6
''')
    assert raw["a"] == [1, 2]
    assert raw["neg"] == -3 and isinstance(raw["neg"], int)
    assert raw["f"] == -4.6 and raw["e"] == 1e-08 and raw["e2"] == 3.9999998989515007e-05
    assert raw["h"] == 31 and raw["fl"] == 1.0 and isinstance(raw["fl"], float)
    assert raw["inf"] == -math.inf and math.isnan(raw["n"])
    assert raw["s"] == "it's" and raw["t"] == "tab\there" and raw["u"] == "café" and raw["joined"] == "abcd"
    assert raw["b"] is True and raw["c"] is False and raw["enum"] == "RELU_6"


def test_text_proto_structure():
    raw = parse_text_proto('''
outer {
  inner { x: 1 }
  inner: { x: 2 },
  angle < y: "z" >;
  empty {}
  list: [1, 2, 3]
  msgs [{ k: 1 }, < k: 2 >]
  once: [7]
  one { only: 1 }
}
[some.extension] { v: 1 }
''')
    outer = raw["outer"]
    assert outer["inner"] == [{"x": 1}, {"x": 2}]
    assert outer["angle"] == {"y": "z"}
    assert outer["empty"] == {}
    assert outer["list"] == [1, 2, 3]
    assert outer["msgs"] == [{"k": 1}, {"k": 2}]
    assert outer["once"] == [7]
    assert outer["one"] == {"only": 1}
    assert raw["[some.extension]"] == {"v": 1}
    assert as_list(outer["one"]) == [{"only": 1}] and as_list(None) == [] and as_list(outer["inner"])[1] == {"x": 2}
    assert get_path(raw, "outer.inner.x") == 1
    assert get_path(raw, "outer.missing.x", "dflt") == "dflt"
    assert parse_text_proto("") == {}
    assert parse_text_proto("# only a comment\n") == {}


@pytest.mark.parametrize("text, where", [
    ("a {\n  b: 1\n", "line 3, column 1"),
    ("a {\n  b: 1 >\n", "line 2, column 8"),
    ("a: }", "line 1, column 4"),
    ("a: 'open", "line 1, column 4"),
    ("a b", "line 1, column 3"),
    ("{ }", "line 1, column 1"),
    ("a: [1 2]", "line 1, column 7"),
    ("a: @", "line 1, column 4"),
])
def test_text_proto_syntax_errors(text, where):
    with pytest.raises(TextFormatError) as info:
        parse_text_proto(text, source="pipeline.config")
    msg = str(info.value)
    assert msg.startswith(f"pipeline.config: {where}: "), msg
    assert "\n" not in msg


# --- pipeline.config written here ----------------------------------------------------------------

def test_faster_rcnn_keep_aspect_ratio(tmp_path):
    write(tmp_path, "label_map.pbtxt", "item { id: 1 name: 'a' }")
    p = write(tmp_path, "pipeline.config", '''
model { faster_rcnn {
  num_classes: 3
  image_resizer { keep_aspect_ratio_resizer { min_dimension: 640 max_dimension: 1024 pad_to_max_dimension: true } }
  feature_extractor { type: "faster_rcnn_resnet50_keras" }
  first_stage_anchor_generator { grid_anchor_generator { scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] } }
  second_stage_post_processing { batch_non_max_suppression { score_threshold: 0.3 max_total_detections: 300 } }
} }
train_config { fine_tune_checkpoint: "/data/ckpt-0" }
train_input_reader { label_map_path: "/home/someone/train_map.pbtxt" }
eval_input_reader { label_map_path: "C:\\\\Users\\\\someone\\\\label_map.pbtxt" }
''')
    cfg = read_pipeline_config(p)
    assert cfg.model_type == "faster_rcnn" and cfg.num_classes == 3
    assert cfg.image_resizer == {"type": "keep_aspect_ratio_resizer", "min_dimension": 640, "max_dimension": 1024,
                                 "pad_to_max_dimension": True}
    assert cfg.input_size == (1024, 1024)
    assert cfg.max_detections == 300 and cfg.score_threshold == 0.3
    assert cfg.anchors_per_location == 12
    # eval_input_reader is preferred; a Windows path's file name is found beside the config.
    assert cfg.label_map_path == "C:\\Users\\someone\\label_map.pbtxt"
    assert cfg.label_map_found == tmp_path / "label_map.pbtxt"
    (info,) = messages(cfg.findings, INFO)
    assert "a file named label_map.pbtxt is beside the config" in info


def test_center_net_and_missing_label_map(tmp_path):
    p = write(tmp_path, "pipeline.config", '''
model { center_net {
  num_classes: 2
  max_box_predictions: 50
  image_resizer { fixed_shape_resizer { height: 512 width: 512 } }
  feature_extractor { type: "hourglass_104" }
} }
eval_input_reader: { label_map_path: "/mnt/train/annotations/my_map.pbtxt" }
''')
    cfg = read_pipeline_config(p)
    assert cfg.model_type == "center_net" and cfg.num_classes == 2
    assert cfg.max_detections == 50 and cfg.score_threshold is None
    assert cfg.input_size == (512, 512)
    assert cfg.label_map_found is None
    (info,) = messages(cfg.findings, INFO)
    assert info == ("label_map_path '/mnt/train/annotations/my_map.pbtxt' does not exist relative to the config's "
                    "folder (paths in a config are usually the training machine's); no file named my_map.pbtxt "
                    "beside the config either")


def test_label_map_path_relative_to_config(tmp_path):
    write(tmp_path, "data/map.pbtxt", "item { id: 1 name: 'a' }")
    cfg = read_pipeline_config(write(tmp_path, "pipeline.config", 'model { ssd { num_classes: 1 } }\n'
                                     'eval_input_reader { label_map_path: "data/map.pbtxt" }'))
    assert cfg.label_map_found == tmp_path / "data/map.pbtxt"
    assert cfg.findings == []


def test_num_classes_missing(tmp_path):
    cfg = read_pipeline_config(write(tmp_path, "pipeline.config", "model { ssd { } }\ntrain_config { batch_size: 2 }"))
    assert cfg.num_classes is None and cfg.max_detections is None and cfg.image_resizer is None
    assert messages(cfg.findings, WARNING) == ["num_classes is missing from model.ssd"]


def test_config_without_model(tmp_path):
    cfg = pipeline_config_from_text("train_config { batch_size: 2 }")
    assert cfg.model_type is None and cfg.path is None
    assert any("no model" in m for m in messages(cfg.findings, WARNING))


def test_not_a_pipeline_config(tmp_path):
    with pytest.raises(ConfigError, match=r"pipeline\.config: not a pipeline\.config"):
        read_pipeline_config(write(tmp_path, "pipeline.config", "item { id: 1 name: 'a' }"))
    with pytest.raises(ConfigError, match=r"pipeline\.config: not a pipeline\.config"):
        read_pipeline_config(write(tmp_path, "pipeline.config", ""))


def test_pipeline_syntax_error_names_file_and_line(tmp_path):
    p = write(tmp_path, "pipeline.config", "model {\n  ssd {\n    num_classes 3\n  }\n}\n")
    with pytest.raises(ConfigError) as info:
        read_pipeline_config(p)
    assert str(info.value) == f'{p}: line 3, column 17: expected ":" or "{{" after "num_classes" but found 3'


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.config: no such file"):
        read_pipeline_config(tmp_path / "nope.config")
    (tmp_path / "bin.config").write_bytes(b"model {\xff\xfe}")
    with pytest.raises(ConfigError, match=r"bin\.config: not a text file"):
        read_pipeline_config(tmp_path / "bin.config")


# --- params.yaml ----------------------------------------------------------------------------

RETINANET = """
runtime:
  distribution_strategy: mirrored
task:
  annotation_file: /gcs/coco/instances_val2017.json
  init_checkpoint: gs://bucket/resnet50/ckpt-62400
  init_checkpoint_modules: backbone
  model:
    num_classes: 91
    input_size: [640, 640, 3]
    min_level: 3
    max_level: 7
    anchor: {num_scales: 3, aspect_ratios: [0.5, 1.0, 2.0], anchor_size: 4.0}
    backbone:
      type: resnet
      resnet: {model_id: 50}
    decoder:
      type: fpn
      fpn: {num_filters: 256}
    head: {num_convs: 4, num_filters: 256}
    detection_generator:
      apply_nms: true
      pre_nms_score_threshold: 0.05
      nms_iou_threshold: 0.5
      max_num_detections: 100
  train_data: {global_batch_size: 64, input_path: /gcs/coco/train*}
trainer:
  train_steps: 231000
"""


def test_params_yaml_retinanet(tmp_path):
    write(tmp_path, "instances_val2017.json", "{}")
    p = read_params_yaml(write(tmp_path, "params.yaml", RETINANET))
    assert isinstance(p, ModelGardenParams)
    assert p.model_type == "retinanet"
    assert p.num_classes == 91 and p.foreground_classes == 90
    assert p.input_size == [640, 640, 3]
    assert p.max_detections == 100 and p.score_threshold == 0.05
    assert p.backbone == "resnet"
    assert p.init_checkpoint == "gs://bucket/resnet50/ckpt-62400"
    assert p.annotation_file == "/gcs/coco/instances_val2017.json"
    assert p.annotation_found == tmp_path / "instances_val2017.json"
    assert any("a file named instances_val2017.json is beside" in m for m in messages(p.findings, INFO))
    json.dumps(p.as_json())


def test_params_yaml_maskrcnn_and_yolo(tmp_path):
    mask = read_params_yaml(write(tmp_path, "mask/params.yaml", """
task:
  model:
    num_classes: 3
    input_size: [1024, 1024, 3]
    include_mask: true
    rpn_head: {num_convs: 1}
    detection_head: {num_fcs: 1}
    mask_head: {upsample_factor: 2}
    detection_generator: {max_num_detections: 200}
"""))
    assert mask.model_type == "maskrcnn" and mask.max_detections == 200 and mask.foreground_classes == 2
    assert mask.findings == []
    yolo = read_params_yaml(write(tmp_path, "yolo/params.yaml", """
task:
  init_checkpoint: ''
  model:
    num_classes: 80
    input_size: [640, 640, 3]
    backbone: {type: darknet, darknet: {model_id: cspdarknet53}}
    decoder: {type: yolo_decoder}
    detection_generator: {box_type: {all: scaled}, max_boxes: 300, nms_thresh: 0.6}
"""))
    assert yolo.model_type == "yolo" and yolo.num_classes == 80 and yolo.foreground_classes == 80
    assert yolo.max_detections == 300 and yolo.init_checkpoint is None


def test_params_yaml_tolerates_missing_parts(tmp_path):
    p = read_params_yaml(write(tmp_path, "params.yaml", "task:\n  model:\n    backbone: {type: spinenet}\n"))
    assert p.model_type is None and p.num_classes is None and p.input_size is None and p.max_detections is None
    assert messages(p.findings, WARNING) == ["num_classes is missing from task.model"]
    p = read_params_yaml(write(tmp_path, "bare.yaml", "task:\n  init_checkpoint: x\n"))
    assert p.init_checkpoint == "x"
    assert any("no task.model" in m for m in messages(p.findings, WARNING))


def test_params_yaml_errors(tmp_path):
    bad = write(tmp_path, "params.yaml", "task:\n  model:\n    num_classes: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        read_params_yaml(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}: line ") and "\n" not in msg
    with pytest.raises(ConfigError, match="no task: section"):
        read_params_yaml(write(tmp_path, "other.yaml", "runtime: {}\n"))
    with pytest.raises(ConfigError, match="top level is not a mapping"):
        read_params_yaml(write(tmp_path, "list.yaml", "- 1\n- 2\n"))


# --- check_num_classes ----------------------------------------------------------------------

def lm_with(ids, name="label_map.pbtxt"):
    return LabelMap([LabelItem(i, f"c{i}") for i in ids], Path("/x") / name, [])


FILES = {"config": "/m/pipeline.config", "label_map": "/m/label_map.pbtxt", "head": "/m/ckpt-6.index"}


def test_check_num_classes_agreement():
    assert check_num_classes(3, lm_with([1, 2, 3]), 3, FILES) == []
    assert check_num_classes(None, None, None, None) == []
    assert check_num_classes(3, None, None, FILES) == []
    assert check_num_classes(None, lm_with([1, 2]), None, FILES) == []


def test_check_num_classes_config_vs_label_map():
    (f,) = check_num_classes(3, lm_with([1, 2, 4]), 3, FILES)
    assert f.severity == ERROR and f.file == "/m/pipeline.config"
    assert f.message == ("pipeline.config says num_classes 3 but label_map.pbtxt has ids up to 4 (3 labels); "
                         "the class head in ckpt-6.index predicts 3 classes")


def test_check_num_classes_config_vs_head():
    (f,) = check_num_classes(3, lm_with([1, 2, 3]), 90, FILES)
    assert f.message == ("pipeline.config says num_classes 3 but the class head in ckpt-6.index predicts 90 "
                         "classes; label_map.pbtxt has ids up to 3")


def test_check_num_classes_two_disagreements():
    found = check_num_classes(1, lm_with([1, 2]), 90, ["pipeline.config", "labels.txt", "ckpt-0.index"])
    assert [f.message for f in found] == [
        "pipeline.config says num_classes 1 but labels.txt has ids up to 2; the class head in ckpt-0.index "
        "predicts 90 classes",
        "pipeline.config says num_classes 1 but the class head in ckpt-0.index predicts 90 classes; labels.txt "
        "has ids up to 2",
    ]


def test_check_num_classes_without_config():
    (f,) = check_num_classes(None, lm_with([1, 2]), 5, None)
    assert f.file == str(Path("/x/label_map.pbtxt"))
    assert f.message == ("label_map.pbtxt has ids up to 2 but the class head predicts 5 classes; "
                         "no config gives num_classes")
    # An empty label map gives no number to compare.
    assert check_num_classes(3, LabelMap(), 3, None) == []
