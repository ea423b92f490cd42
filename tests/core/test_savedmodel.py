"""saved_model.pb read without TensorFlow, checked against TensorFlow's own reading of the same files."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from detscope.core.formats import dtypes  # noqa: E402
from detscope.core.formats import objectgraph as og  # noqa: E402
from detscope.core.formats import savedmodel as sm  # noqa: E402

tf = pytest.importorskip("tensorflow")

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
ZOO_SAVED_MODEL = (REALDATA / "car-ssd-fpnlite-training" / "pre-trained-models"
                   / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8" / "saved_model")

pytestmark = pytest.mark.slow


# --- artifacts -------------------------------------------------------------------------------

class Detector(tf.Module):
    """Two signatures: uint8 images of unknown size, and float features with a scalar and an unknown-rank input."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(1)
        self.w = tf.Variable(rng.normal(size=(3, 4)).astype("float32"))
        self.bias = tf.Variable(np.zeros(4, "float32"), trainable=False)
        self.settings = {"scale": tf.Variable(2.0), "head/offset": tf.Variable(0.5)}
        self.same_w = self.w

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
    def detect(self, images):
        feats = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])
        scores = tf.nn.sigmoid(tf.matmul(feats, self.w) + self.bias)
        return {
            "detection_scores": scores,
            "detection_classes": tf.argmax(scores, axis=-1),
            "num_detections": tf.cast(tf.shape(images)[0], tf.float32),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features"),
                                  tf.TensorSpec([], tf.float32, name="scale"),
                                  tf.TensorSpec(None, tf.float32, name="anything")])
    def other(self, features, scale, anything):
        y = tf.matmul(features, self.w) * scale * self.settings["scale"] + self.settings["head/offset"]
        return {"y": y, "total": tf.reduce_sum(anything), "label": tf.strings.as_string(tf.reduce_sum(y))}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("savedmodels")
    out = {}

    det = Detector()
    tf.saved_model.save(det, str(root / "module"), signatures={"serving_default": det.detect, "other": det.other})
    out["module"] = root / "module"

    import keras
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="logits")(x))
    model.export(str(root / "keras3_export"), verbose=False)
    out["keras3_export"] = root / "keras3_export"

    import tf_keras
    tk = tf_keras.applications.MobileNetV2(weights=None, input_shape=(320, 320, 3))
    tf_keras.models.save_model(tk, str(root / "tf_keras"), save_format="tf")
    out["tf_keras"] = root / "tf_keras"

    out["tf1_frozen"] = _tf1_frozen(root / "tf1_frozen")

    # The same SavedModel as text.
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel.FromString((out["module"] / "saved_model.pb").read_bytes())
    from google.protobuf import text_format
    (root / "as_text").mkdir()
    (root / "as_text" / "saved_model.pbtxt").write_text(text_format.MessageToString(proto))
    out["as_text"] = root / "as_text"
    return out


def _tf1_frozen(folder: Path) -> Path:
    """A TF1 graph whose variables were folded into constants, saved with the v1 Builder."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        w = v1.get_variable("w", initializer=np.arange(8, dtype="float32").reshape(4, 2))
        tf.identity(tf.matmul(x, w), name="y")
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), ["y"])
    g2 = tf.Graph()
    with g2.as_default():
        tf.graph_util.import_graph_def(frozen, name="")
        with v1.Session(graph=g2) as sess:
            builder = v1.saved_model.Builder(str(folder))
            sig = v1.saved_model.predict_signature_def({"x": g2.get_tensor_by_name("x:0")},
                                                       {"y": g2.get_tensor_by_name("y:0")})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()
    # The Builder leaves an empty variables/ behind; frozen models are shipped without one.
    shutil.rmtree(folder / "variables")
    return folder


def _tf_proto(folder: Path):
    from tensorflow.core.protobuf import saved_model_pb2
    return saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())


# --- the schema ------------------------------------------------------------------------------

def test_schema_matches_tensorflow():
    from tensorflow.core.framework import attr_value_pb2, function_pb2, graph_pb2, node_def_pb2, op_def_pb2
    from tensorflow.core.protobuf import (meta_graph_pb2, saved_model_pb2, saved_object_graph_pb2,
                                          saver_pb2, trackable_object_graph_pb2)

    enum_ok = {("int32", "enum")}
    seen = set()

    def kind(f):
        if f.type == f.TYPE_MESSAGE:
            return "message"
        if f.type == f.TYPE_ENUM:
            return "enum"
        return {f.TYPE_INT32: "int32", f.TYPE_INT64: "int64", f.TYPE_BOOL: "bool", f.TYPE_STRING: "string",
                f.TYPE_BYTES: "bytes", f.TYPE_FLOAT: "float", f.TYPE_DOUBLE: "double",
                f.TYPE_UINT32: "uint32", f.TYPE_UINT64: "uint64"}.get(f.type, str(f.type))

    def check(mine, theirs):
        if mine.full_name in seen:
            return
        seen.add(mine.full_name)
        assert mine.name == theirs.name
        for f in mine.fields:
            t = theirs.fields_by_name.get(f.name)
            assert t is not None, f"{mine.full_name}.{f.name} is not a field of {theirs.full_name}"
            where = f"{mine.full_name}.{f.name}"
            assert f.number == t.number, where
            assert f.is_repeated == t.is_repeated, where
            a, b = kind(f), kind(t)
            assert a == b or (a, b) in enum_ok, f"{where}: {a} vs {b}"
            if a == "message":
                check(f.message_type, t.message_type)

    pairs = [
        (sm.MESSAGES["SavedModel"], saved_model_pb2.SavedModel),
        (sm.MESSAGES["MetaGraphDef"], meta_graph_pb2.MetaGraphDef),
        (sm.MESSAGES["SignatureDef"], meta_graph_pb2.SignatureDef),
        (sm.MESSAGES["TensorInfo"], meta_graph_pb2.TensorInfo),
        (sm.MESSAGES["AssetFileDef"], meta_graph_pb2.AssetFileDef),
        (sm.MESSAGES["SaverDef"], saver_pb2.SaverDef),
        (sm.MESSAGES["GraphDef"], graph_pb2.GraphDef),
        (sm.MESSAGES["NodeDef"], node_def_pb2.NodeDef),
        (sm.MESSAGES["AttrValue"], attr_value_pb2.AttrValue),
        (sm.MESSAGES["FunctionDefLibrary"], function_pb2.FunctionDefLibrary),
        (sm.MESSAGES["FunctionDef"], function_pb2.FunctionDef),
        (sm.MESSAGES["OpDef"], op_def_pb2.OpDef),
        (sm.MESSAGES["SavedObjectGraph"], saved_object_graph_pb2.SavedObjectGraph),
        (sm.MESSAGES["SavedObject"], saved_object_graph_pb2.SavedObject),
        (og.MESSAGES["TrackableObjectGraph.TrackableObject.ObjectReference"],
         trackable_object_graph_pb2.TrackableObjectGraph.TrackableObject.ObjectReference),
    ]
    for mine, theirs in pairs:
        check(mine.DESCRIPTOR, theirs.DESCRIPTOR)
    # Every message declared for the SavedModel was reached from TensorFlow's.
    declared = {m.DESCRIPTOR.full_name for m in sm.MESSAGES.values() if not m.DESCRIPTOR.GetOptions().map_entry}
    assert declared <= seen


def test_enum_names_match_tensorflow():
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saver_pb2

    theirs = dict(types_pb2.DataType.items())
    for name, number in sm.ENUM_NUMBERS.items():
        if name.startswith("DT_"):
            assert theirs[name] == number, name
    for name, number in theirs.items():
        if 0 < number < 100 and number <= 30:
            assert sm.ENUM_NUMBERS[name] == number
    for name, number in saver_pb2.SaverDef.CheckpointFormatVersion.items():
        assert sm.ENUM_NUMBERS[name] == number


# --- against TensorFlow's own reading --------------------------------------------------------

def _tf_spec_dtype(dtype) -> str:
    return dtypes.name(dtype.as_datatype_enum)


def _tf_shape(shape):
    return None if shape.rank is None else tuple(shape.as_list())


@pytest.mark.parametrize("name", ["module", "keras3_export", "tf_keras", "tf1_frozen", "as_text"])
def test_signatures_match_loaded_model(artifacts, name):
    folder = artifacts[name]
    info = sm.read_saved_model(folder)
    meta = info.meta_graph()
    assert meta.tags == ["serve"]
    loaded = tf.saved_model.load(str(artifacts["module"] if name == "as_text" else folder))
    assert sorted(meta.signature_names) == sorted(loaded.signatures)
    for sig in meta.signatures:
        fn = loaded.signatures[sig.name]
        _, kwargs = fn.structured_input_signature
        assert [t.key for t in sig.inputs] == sorted(kwargs)
        for t in sig.inputs:
            spec = kwargs[t.key]
            assert (t.dtype, t.shape) == (_tf_spec_dtype(spec.dtype), _tf_shape(spec.shape)), t
        outputs = fn.structured_outputs
        assert [t.key for t in sig.outputs] == sorted(outputs)
        for t in sig.outputs:
            spec = outputs[t.key]
            assert (t.dtype, t.shape) == (_tf_spec_dtype(spec.dtype), _tf_shape(spec.shape)), t
        assert sig.method == "tensorflow/serving/predict"


@pytest.mark.parametrize("name", ["module", "keras3_export", "tf_keras", "tf1_frozen"])
def test_meta_graph_matches_tensorflows_parse(artifacts, name):
    from tensorflow.python.tools import saved_model_utils

    folder = artifacts[name]
    info = sm.read_saved_model(folder / "saved_model.pb")
    assert info.path == str(folder)
    theirs = _tf_proto(folder)
    assert info.schema_version == theirs.saved_model_schema_version
    assert len(info.meta_graphs) == len(theirs.meta_graphs)
    meta, tmeta = info.meta_graph(), saved_model_utils.get_meta_graph_def(str(folder), "serve")
    assert meta.tensorflow_version == tmeta.meta_info_def.tensorflow_version == tf.__version__
    assert meta.tensorflow_git_version == tmeta.meta_info_def.tensorflow_git_version
    # saved_model_cli's view: every signature's tensors, names, dtypes and shapes.
    for sig in meta.signatures:
        tsig = tmeta.signature_def[sig.name]
        assert sig.method == tsig.method_name
        for mine, theirs_map in ((sig.inputs, tsig.inputs), (sig.outputs, tsig.outputs)):
            assert [t.key for t in mine] == sorted(theirs_map)
            for t in mine:
                ti = theirs_map[t.key]
                assert t.name == ti.name
                assert t.dtype == dtypes.name(ti.dtype)
                expected = None if ti.tensor_shape.unknown_rank else tuple(
                    d.size if d.size >= 0 else None for d in ti.tensor_shape.dim)
                assert t.shape == expected
    internal = [k for k in tmeta.signature_def if k.startswith("__saved_model_")]
    assert (meta.init_op is not None) == ("__saved_model_init_op" in internal)
    # Op counts over the graph and every library function.
    counts = Counter(n.op for n in tmeta.graph_def.node)
    for fn in tmeta.graph_def.library.function:
        counts.update(n.op for n in fn.node_def)
    assert meta.op_counts == dict(counts)
    assert meta.function_names == [fn.signature.name for fn in tmeta.graph_def.library.function]
    assert meta.graph_node_count == len(tmeta.graph_def.node)
    assert meta.has_saver == tmeta.HasField("saver_def")


def test_module_details(artifacts):
    meta = sm.read_saved_model(artifacts["module"]).meta_graph()
    det = meta.signature("serving_default")
    assert [(t.key, t.dtype, t.shape) for t in det.inputs] == [("input_tensor", "uint8", (None, None, None, 3))]
    assert det.inputs[0].name == "serving_default_input_tensor:0"
    assert [(t.key, t.dtype, t.shape) for t in det.outputs] == [
        ("detection_classes", "int64", (None,)),
        ("detection_scores", "float32", (None, 4)),
        ("num_detections", "float32", ()),
    ]
    other = meta.signature("other")
    assert [(t.key, t.dtype, t.shape) for t in other.inputs] == [
        ("anything", "float32", None), ("features", "float32", (None, 3)), ("scale", "float32", ())]
    assert other.output("label").dtype == "object"
    assert meta.has_variables
    assert "MatMul" in meta.op_counts and meta.op_counts["VarHandleOp"] >= 4


def test_keras3_export(artifacts):
    meta = sm.read_saved_model(artifacts["keras3_export"]).meta_graph()
    assert sorted(meta.signature_names) == ["serve", "serving_default"]
    for name in ("serve", "serving_default"):
        sig = meta.signature(name)
        assert [(t.key, t.dtype, t.shape) for t in sig.inputs] == [("image", "float32", (None, 16, 16, 3))]
        assert [(t.key, t.dtype, t.shape) for t in sig.outputs] == [("output_0", "float32", (None, 2))]
    assert meta.signature("serving_default").inputs[0].name == "serving_default_image:0"
    assert meta.has_variables
    tree = meta.object_graph
    assert [c.name for c in tree.root.children][:4] == ["variables", "trainable_variables",
                                                        "non_trainable_variables", "_all_variables"]
    assert tree.root.identifier == "_generic_user_object"
    signatures = next(c for c in tree.root.children if c.name == "signatures")
    assert signatures.identifier == "signature_map"
    assert {c.kind for c in signatures.children} == {"bare_concrete_function"}


def test_tf1_frozen_graph(artifacts):
    folder = artifacts["tf1_frozen"]
    assert not (folder / "variables").exists()
    info = sm.read_saved_model(folder)
    meta = info.meta_graph()
    assert info.variables_index is None
    assert meta.object_graph is None and not meta.has_variables
    assert meta.function_names == []
    # The variable became a Const; its read (w/read) stays an Identity.
    assert meta.op_counts == {"Placeholder": 1, "Const": 1, "MatMul": 1, "Identity": 2}
    assert sm.variable_keys(meta) == {}
    # TensorFlow runs it without a variables/ folder.
    loaded = tf.saved_model.load(str(folder))
    y = loaded.signatures["serving_default"](x=tf.ones((1, 4)))["y"].numpy()
    np.testing.assert_allclose(y, [[12.0, 16.0]])


@pytest.mark.parametrize("name", ["module", "keras3_export", "tf_keras", "tf1_frozen"])
def test_the_variables_check_is_silent_on_every_real_savedmodel(artifacts, name):
    # Must not fire: each SavedModel as TensorFlow wrote it (a frozen TF1 graph needs no variables/ at all).
    from detscope.core.browse.integrity import saved_model_variables_findings

    folder = artifacts[name]
    assert saved_model_variables_findings(sm.read_saved_model(folder), folder) == []


def test_the_variables_check_names_what_is_wrong(artifacts, tmp_path):
    from detscope.core.browse.integrity import saved_model_variables_findings

    def findings(folder):
        return [(f.severity, f.message) for f in saved_model_variables_findings(sm.read_saved_model(folder), folder)]

    gone = shutil.copytree(artifacts["module"], tmp_path / "gone")
    shutil.rmtree(gone / "variables")
    assert findings(gone) == [("error", "gone/variables/ is missing; its graph has 4 variables and TensorFlow cannot "
                                        "load the SavedModel without their values")]
    # The variables of another build of the module: one variable has another shape.
    other = Detector()
    other.w = tf.Variable(np.zeros((3, 5), "float32"))
    other.bias = tf.Variable(np.zeros(5, "float32"))
    tf.saved_model.save(other, str(tmp_path / "other"))
    swapped = shutil.copytree(artifacts["module"], tmp_path / "swapped")
    shutil.rmtree(swapped / "variables")
    shutil.copytree(tmp_path / "other" / "variables", swapped / "variables")
    # (the other build's w is a new variable, so its same_w is one more value the graph does not declare)
    assert [m for s, m in findings(swapped) if s == "warning"] == [
        "variables.index holds 1 value the graph of swapped does not declare (same_w): it may have been changed "
        "or come from another model"]
    (message,) = [m for s, m in findings(swapped) if s == "error"]
    assert message.startswith("variables.index holds 2 values whose shape or dtype differs "
                                                      "from the graph of swapped (first: ")
    assert "[3, 5] float32 in the index, [3, 4] float32 in the graph" in message or \
        "[5] float32 in the index, [4] float32 in the graph" in message


@pytest.mark.parametrize("what", ["graph_def", "meta_graph"])
def test_a_graphdef_or_metagraphdef_renamed_saved_model_pb_is_not_a_savedmodel(artifacts, tmp_path, what):
    # Protobuf decodes either as a SavedModel without complaint; detscope must not.
    proto = _tf_proto(artifacts["module"])
    part = proto.meta_graphs[0] if what == "meta_graph" else proto.meta_graphs[0].graph_def
    folder = shutil.copytree(artifacts["module"], tmp_path / what)
    (folder / "saved_model.pb").write_bytes(part.SerializeToString())
    name = {"graph_def": "a GraphDef", "meta_graph": "a MetaGraphDef"}[what]
    with pytest.raises(sm.SavedModelError, match=f"saved_model.pb: is {name} .*not a SavedModel"):
        sm.read_saved_model(folder)
    # A frozen TF1 graph (frozen_inference_graph.pb) renamed is a GraphDef too.
    if what == "graph_def":
        frozen = _tf_proto(artifacts["tf1_frozen"]).meta_graphs[0].graph_def
        (folder / "saved_model.pb").write_bytes(frozen.SerializeToString())
        with pytest.raises(sm.SavedModelError, match="is a GraphDef"):
            sm.read_saved_model(folder)


def test_text_format_reads_like_binary(artifacts):
    text = sm.read_saved_model(artifacts["as_text"])
    binary = sm.read_saved_model(artifacts["module"])
    a, b = text.meta_graph(), binary.meta_graph()
    assert a.signatures == b.signatures
    assert a.op_counts == b.op_counts
    assert a.function_names == b.function_names
    assert [(n.path, n.kind, n.identifier, n.variable) for n in a.object_graph.nodes] == [
        (n.path, n.kind, n.identifier, n.variable) for n in b.object_graph.nodes]
    assert sm.read_saved_model(artifacts["as_text"] / "saved_model.pbtxt").meta_graph().signatures == b.signatures


# --- the SavedModel's object graph -----------------------------------------------------------

@pytest.mark.parametrize("name", ["module", "keras3_export", "tf_keras"])
def test_object_graph_matches_tensorflow(artifacts, name):
    folder = artifacts[name]
    meta = sm.read_saved_model(folder).meta_graph()
    tree = meta.object_graph
    theirs = _tf_proto(folder).meta_graphs[0].object_graph_def
    assert len(tree.nodes) == len(theirs.nodes)
    for node, t in zip(tree.nodes, theirs.nodes):
        assert node.kind == (t.WhichOneof("kind") or "")
        out_edges = [(c.name, c.node_id) for c in node.children] + [(link.name, link.node_id) for link in node.links]
        assert sorted(out_edges) == sorted((c.local_name, c.node_id) for c in t.children)
        if node.kind == "user_object":
            assert node.identifier == t.user_object.identifier
        if node.kind == "variable":
            v = t.variable
            assert node.variable == sm.VariableInfo(
                name=v.name, dtype=dtypes.name(v.dtype),
                shape=tuple(d.size for d in v.shape.dim), trainable=v.trainable)
        if node.kind == "function":
            assert node.concrete_functions == list(t.function.concrete_functions)
    assert tree.concrete_functions == sorted(theirs.concrete_functions)


@pytest.mark.parametrize("name", ["module", "keras3_export", "tf_keras"])
def test_variable_keys(artifacts, name):
    folder = artifacts[name]
    meta = sm.read_saved_model(folder).meta_graph()
    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    index_keys = set(reader.get_variable_to_shape_map())
    data = reader.get_tensor(og.OBJECT_GRAPH_KEY)
    keys = sm.variable_keys(meta, data)
    variables = meta.object_graph.variables()
    assert set(keys) == {n.node_id for n in variables}
    assert set(keys.values()) == index_keys - {og.OBJECT_GRAPH_KEY}
    for node in variables:
        assert node.checkpoint_key == keys[node.node_id]
        shape = reader.get_variable_to_shape_map()[node.checkpoint_key]
        assert tuple(shape) == node.variable.shape
        dtype = reader.get_variable_to_dtype_map()[node.checkpoint_key]
        assert dtypes.name(dtype.as_datatype_enum) == node.variable.dtype
    # Derived from the tree alone (no readable object graph), the keys are the same.
    assert sm.variable_keys(meta) == keys
    assert sm.variable_keys(meta, og.parse_object_graph(data)) == keys
    assert sm.variable_keys(meta, og.graph_from_keys(index_keys)) == keys


def test_variable_values_through_paths(artifacts):
    folder = artifacts["module"]
    meta = sm.read_saved_model(folder).meta_graph()
    keys = sm.variable_keys(meta)
    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    loaded = tf.saved_model.load(str(folder))
    tree = meta.object_graph
    w = tree.find("w")
    assert w.kind == "variable" and "same_w" in w.aliases
    np.testing.assert_array_equal(reader.get_tensor(keys[w.node_id]), loaded.w.numpy())
    offset = tree.find("settings/head.Soffset")
    assert offset.name == "head/offset"
    assert reader.get_tensor(offset.checkpoint_key) == pytest.approx(0.5)
    bias = tree.find("bias")
    assert bias.variable.trainable is False and bias.variable.shape == (4,)
    settings = tree.find("settings")
    assert settings.identifier == "trackable_dict_wrapper"
    detect = tree.find("detect")
    assert detect.kind == "function" and detect.concrete_functions


# --- errors ----------------------------------------------------------------------------------

def test_errors(tmp_path, artifacts):
    with pytest.raises(sm.SavedModelError, match="no such file"):
        sm.read_saved_model(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(sm.SavedModelError, match="no saved_model.pb"):
        sm.read_saved_model(empty)

    lfs = tmp_path / "lfs"
    lfs.mkdir()
    (lfs / "saved_model.pb").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12345678\n")
    with pytest.raises(sm.SavedModelError, match="git lfs pull") as err:
        sm.read_saved_model(lfs)
    assert str(lfs / "saved_model.pb") in str(err.value) and "\n" not in str(err.value)

    data = (artifacts["module"] / "saved_model.pb").read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "saved_model.pb").write_bytes(data[: len(data) // 2])
    with pytest.raises(sm.SavedModelError, match="truncated or not a SavedModel"):
        sm.read_saved_model(cut)

    for i, junk in enumerate([b"", b"\x00" * 64, b"hello world, not a model", os.urandom(4096)]):
        folder = tmp_path / f"junk{i}"
        folder.mkdir()
        (folder / "saved_model.pb").write_bytes(junk)
        with pytest.raises(sm.SavedModelError):
            sm.read_saved_model(folder)

    bad_text = tmp_path / "badtext"
    bad_text.mkdir()
    (bad_text / "saved_model.pbtxt").write_text("meta_graphs { graph_def { node { name: ")
    with pytest.raises(sm.SavedModelError, match="text format"):
        sm.read_saved_model(bad_text)

    info = sm.read_saved_model(artifacts["module"])
    with pytest.raises(sm.SavedModelError, match="tags present: serve"):
        info.meta_graph(["train"])
    assert info.meta_graph("serve") is info.meta_graphs[0]


def test_realdata_zoo_folder_without_saved_model_pb():
    if not ZOO_SAVED_MODEL.is_dir():
        pytest.skip(f"real data not present at {ZOO_SAVED_MODEL}")
    with pytest.raises(sm.SavedModelError, match="no saved_model.pb in this folder \\(variables/ present\\)"):
        sm.read_saved_model(ZOO_SAVED_MODEL)
    # The variables bundle's keys still make a tree (its data shard, and so its object graph, is absent).
    reader = tf.train.load_checkpoint(str(ZOO_SAVED_MODEL / "variables" / "variables"))
    keys = list(reader.get_variable_to_shape_map())
    with pytest.raises(tf.errors.OpError):
        reader.get_tensor(og.OBJECT_GRAPH_KEY)
    graph = og.graph_from_keys(keys)
    assert len(graph.by_key) == len(keys) - 1
    assert graph.root.children


# --- speed -----------------------------------------------------------------------------------

def test_large_keras_saved_model(artifacts):
    info = sm.read_saved_model(artifacts["tf_keras"] / "saved_model.pb")
    meta = info.meta_graph()
    assert meta.function_node_count > 3000 and len(meta.object_graph.nodes) > 1000
    reader = tf.train.load_checkpoint(str(artifacts["tf_keras"] / "variables" / "variables"))
    keys = sm.variable_keys(meta, reader.get_tensor(og.OBJECT_GRAPH_KEY))
    assert len(keys) == len(reader.get_variable_to_shape_map()) - 1


def test_variable_keys_from_bundle(artifacts):
    from detscope.core.formats.bundle import Bundle

    folder = artifacts["tf_keras"]
    meta = sm.read_saved_model(folder).meta_graph()
    bundle = Bundle(str(folder / "variables" / "variables"))
    keys = sm.variable_keys_from_bundle(meta, bundle)
    assert set(keys.values()) == set(bundle.entries) - {og.OBJECT_GRAPH_KEY}
    conv = next(n for n in meta.object_graph.variables() if n.variable.name == "Conv1/kernel:0"
                or n.variable.name == "Conv1/kernel")
    assert bundle.entries[keys[conv.node_id]].shape == conv.variable.shape == (3, 3, 3, 32)
