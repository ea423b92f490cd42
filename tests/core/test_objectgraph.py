"""Object graphs of real TF2 checkpoints (Keras 3, tf_keras, tf.Module) and TF1 name trees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from detscope.core.browse import checks  # noqa: E402
from detscope.core.formats import objectgraph as og  # noqa: E402
from detscope.core.base.findings import INFO, WARNING  # noqa: E402

tf = pytest.importorskip("tensorflow")

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
CAR_RUN = REALDATA / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
ZOO = REALDATA / "car-ssd-fpnlite-training" / "pre-trained-models" / "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"

pytestmark = pytest.mark.slow


# --- artifacts -------------------------------------------------------------------------------

class Built:
    """A checkpoint written during the session plus the live objects that wrote it."""

    def __init__(self, ckpt, prefix, model=None, optimizer=None, library="", extra=None):
        self.ckpt = ckpt
        self.prefix = prefix
        self.model = model
        self.optimizer = optimizer
        self.library = library
        self.extra = extra or {}
        self.reader = tf.train.load_checkpoint(prefix)
        self.keys = set(self.reader.get_variable_to_shape_map())
        self.graph = og.parse_object_graph(self.reader.get_tensor(og.OBJECT_GRAPH_KEY))


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def _keras3_functional(keras):
    inp = keras.Input((4,), name="features")
    x = keras.layers.Dense(3, name="d1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    out = keras.layers.Dense(2, name="d2")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("ckpts")
    x, y = _data()
    out = {}

    # Keras 3, functional, compiled, Adam, one fit step; plus a step counter.
    m = _keras3_functional(keras)
    opt = keras.optimizers.Adam(1e-2)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    ck = tf.train.Checkpoint(model=m, optimizer=opt, step=tf.Variable(1, dtype=tf.int64))
    out["k3"] = Built(ck, ck.save(str(root / "k3" / "ckpt")), m, opt, "keras3")

    # Keras 3 Sequential with SGD momentum, then the optimizer alone.
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    ck = tf.train.Checkpoint(model=m, optimizer=opt)
    out["k3seq"] = Built(ck, ck.save(str(root / "k3seq" / "ckpt")), m, opt, "keras3")
    ck = tf.train.Checkpoint(optimizer=opt)
    out["k3optonly"] = Built(ck, ck.save(str(root / "k3optonly" / "ckpt")), m, opt, "keras3")

    # Keras 3 subclassed model, custom training step.
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.body = keras.layers.Dense(3)
            self.head = keras.layers.Dense(2)

        def call(self, inputs):
            return self.head(self.body(inputs))

    m = Net()
    m(x)
    opt = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((m(x) - y) ** 2)
    opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables), m.trainable_variables))
    ck = tf.train.Checkpoint(model=m, optimizer=opt)
    out["k3sub"] = Built(ck, ck.save(str(root / "k3sub" / "ckpt")), m, opt, "keras3")

    # tf_keras (Keras 2) functional with its current Adam.
    m = _keras3_functional(tf_keras)
    opt = tf_keras.optimizers.Adam(1e-2)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    ck = tf.train.Checkpoint(model=m, optimizer=opt, step=tf.Variable(1, dtype=tf.int64))
    out["tfk"] = Built(ck, ck.save(str(root / "tfk" / "ckpt")), m, opt, "tf_keras")

    # tf_keras with a layer used twice (an aliased object) and the legacy SGD the
    # Object Detection API trains with: slots declared in the object graph.
    inp = tf_keras.Input((4,))
    shared = tf_keras.layers.Dense(4, name="shared")
    out_t = tf_keras.layers.Dense(2, name="head")(shared(shared(inp)))
    m = tf_keras.Model(inp, out_t)
    opt = tf_keras.optimizers.legacy.SGD(0.1, momentum=0.9)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    ck = tf.train.Checkpoint(model=m, optimizer=opt, step=tf.Variable(1, dtype=tf.int64))
    out["tfklegacy"] = Built(ck, ck.save(str(root / "tfklegacy" / "ckpt")), m, opt, "tf_keras_legacy")

    # tf.Module with a variable reachable by two names and names that need escaping.
    mod = tf.Module()
    mod.table = {"a/b": tf.Variable(1.0), "x.y": tf.Variable(2.0)}
    mod.w = tf.Variable([1.0, 2.0])
    mod.same_w = mod.w
    mod.listed = [mod.w, tf.Variable(3.0)]
    ck = tf.train.Checkpoint(net=mod, global_step=tf.Variable(7, dtype=tf.int64))
    out["module"] = Built(ck, ck.save(str(root / "module" / "ckpt")), extra={"module": mod})
    return out


@pytest.fixture(scope="module")
def tf1_ckpt(tmp_path_factory):
    v1 = tf.compat.v1
    root = tmp_path_factory.mktemp("tf1")
    g = tf.Graph()
    with g.as_default():
        w = v1.get_variable("dense/kernel", [4, 2])
        b = v1.get_variable("dense/bias", [2], initializer=v1.ones_initializer())
        h = v1.get_variable("head/w", [2, 1])
        gs = v1.train.get_or_create_global_step()
        loss = tf.reduce_sum(tf.matmul(tf.matmul(tf.ones((1, 4)), w) + b, h))
        train = tf.group(v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, var_list=[w, b], global_step=gs),
                         v1.train.AdamOptimizer(0.1).minimize(loss, var_list=[h]))
        saver = v1.train.Saver()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(train)
            prefix = saver.save(sess, str(root / "model.ckpt"))
    return prefix


# --- decoding agrees with TensorFlow ---------------------------------------------------------

def test_schema_matches_tensorflow():
    from tensorflow.core.protobuf import trackable_object_graph_pb2 as tpb

    def check(mine, theirs):
        for f in mine.fields:
            t = theirs.fields_by_name.get(f.name)
            assert t is not None, f"{mine.full_name}.{f.name} not in TensorFlow's {theirs.full_name}"
            assert (f.number, f.is_repeated) == (t.number, t.is_repeated), f"{mine.full_name}.{f.name}"
            if f.message_type is not None:
                assert t.message_type is not None
                if t.message_type.full_name == "google.protobuf.BoolValue":
                    assert [(x.name, x.number, x.type) for x in f.message_type.fields] == [("value", 1, f.TYPE_BOOL)]
                    continue
                assert f.message_type.name == t.message_type.name
                check(f.message_type, t.message_type)
            else:
                assert f.type == t.type, f"{mine.full_name}.{f.name}"

    check(og.TrackableObjectGraph.DESCRIPTOR, tpb.TrackableObjectGraph.DESCRIPTOR)


@pytest.mark.parametrize("name", ["k3", "k3seq", "k3optonly", "k3sub", "tfk", "tfklegacy", "module"])
def test_every_key_is_reached_and_paths_are_tensorflows(ckpts, name):
    b = ckpts[name]
    graph = b.graph
    named = set(graph.by_key)
    assert named == b.keys - {og.OBJECT_GRAPH_KEY}
    # Node ids are TensorFlow's own breadth-first order of the live objects that were saved.
    descendants = tf.train.TrackableView(b.ckpt).descendants()
    checked = 0
    for node in graph.nodes:
        for attr in node.attributes:
            if f"/{og.OPTIMIZER_SLOT}/" not in attr.checkpoint_key:
                # The canonical breadth-first path is the one TensorFlow named the key by.
                assert attr.checkpoint_key == f"{node.path}/{og.ATTRIBUTES}/{attr.name}"
        if node.is_variable and f"/{og.OPTIMIZER_SLOT}/" not in node.value_key:
            obj = descendants[node.node_id]
            np.testing.assert_array_equal(np.asarray(obj.numpy()), b.reader.get_tensor(node.value_key))
            checked += 1
    assert checked >= 3
    # The tree walks every reached node once.
    walked = [n.node_id for n in graph.root.walk()]
    assert len(walked) == len(set(walked))


def _tf_slot(b: Built, var, slot_name: str):
    """The optimizer's own slot variable for ``var``, asked through each library's optimizer."""
    opt = b.optimizer
    if b.library == "tf_keras_legacy":
        return opt.get_slot(var, slot_name)
    if b.library == "keras3":
        index = opt._get_variable_index(var)
        lists = {"momentum": getattr(opt, "_momentums", None) or getattr(opt, "momentums", None),
                 "velocity": getattr(opt, "_velocities", None)}
        return lists[slot_name][index]
    index = opt._index_dict[opt._var_key(var)]
    return {"m": opt._momentums, "v": opt._velocities}[slot_name][index]


@pytest.mark.parametrize("name", ["k3", "k3seq", "k3sub", "tfk", "tfklegacy"])
def test_slots_are_attached_to_their_variable(ckpts, name):
    b = ckpts[name]
    graph = b.graph
    live = tf.train.TrackableView(b.ckpt).descendants()
    with_slots = [n for n in graph.variables() if n.slots]
    assert len(with_slots) == len(b.model.trainable_variables)
    expected_names = {"keras3": {"momentum", "velocity"} if "Adam" in type(b.optimizer).__name__ else {"momentum"},
                      "tf_keras": {"m", "v"}, "tf_keras_legacy": {"momentum"}}[b.library]
    for node in with_slots:
        assert {s.slot_name for s in node.slots} == expected_names
        var = live[node.node_id]
        assert any(var is v for v in b.model.trainable_variables)
        np.testing.assert_array_equal(b.reader.get_tensor(node.value_key), var.numpy())
        for slot in node.slots:
            assert slot.optimizer_path == "optimizer"
            assert og.classify_key(slot.checkpoint_key, graph) == og.SLOT
            expected = _tf_slot(b, var, slot.slot_name)
            np.testing.assert_array_equal(b.reader.get_tensor(slot.checkpoint_key), np.asarray(expected))
            assert graph.nodes[slot.node_id].slot_of == node.path
    # A training step happened: the first moments are not all zero.
    some = with_slots[0].slots[0].checkpoint_key
    assert np.any(b.reader.get_tensor(some) != 0)


def test_legacy_slot_keys_name_the_variable(ckpts):
    graph = ckpts["tfklegacy"].graph
    node = graph.node("model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert [s.checkpoint_key for s in node.slots] == [
        "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/momentum/.ATTRIBUTES/VARIABLE_VALUE"]
    assert og.slot_key(node.path, "optimizer", "momentum") == node.slots[0].checkpoint_key


def test_aliases_of_shared_objects(ckpts):
    graph = ckpts["tfklegacy"].graph
    shared = graph.find("model/layer_with_weights-0")
    assert "model/layer-1" in shared.aliases
    assert graph.find("model/layer-1") is shared
    model = graph.find("model")
    assert any(link.name == "layer-1" and link.node_id == shared.node_id for link in model.links)
    assert [c.name for c in graph.root.children] == ["model", "optimizer", "step", "save_counter"]
    assert graph.find("optimizer").aliases == ["model/optimizer"]

    mod = ckpts["module"].graph
    w = mod.find("net/w")
    assert w.is_variable and w.value_key == "net/w/.ATTRIBUTES/VARIABLE_VALUE"
    assert set(w.aliases) == {"net/same_w", "net/listed/0"}
    # Escaped local names: "a/b" is written a.Sb, "x.y" is x..y.
    assert mod.find("net/table/a.Sb").name == "a/b"
    assert mod.find("net/table/x..y").name == "x.y"
    assert og.unescape("a.Sb") == "a/b" and og.escape("x.y") == "x..y"
    assert og.classify_key("global_step/.ATTRIBUTES/VARIABLE_VALUE", mod) == og.COUNTER


# --- Keras 3 writes model weights under the optimizer ----------------------------------------

def test_keras3_keys_model_weights_under_optimizer(ckpts):
    b = ckpts["k3"]
    keys = sorted(b.keys)
    # Trainable weights are keyed by the optimizer's list, only the batch-norm statistics by the model.
    assert [k for k in keys if k.startswith("model/")] == [
        "model/_operations/2/moving_mean/.ATTRIBUTES/VARIABLE_VALUE",
        "model/_operations/2/moving_variance/.ATTRIBUTES/VARIABLE_VALUE"]
    assert "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE" in keys
    kernel = b.graph.node("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE")
    assert kernel.full_name == "d1/kernel"
    assert kernel.model_path == "model/_operations/1/_kernel"
    assert "model/_operations/1/_kernel" in kernel.aliases
    groups = og.classify_keys(keys, b.graph)
    assert groups["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"] == og.MODEL
    assert groups["optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE"] == og.SLOT
    assert groups["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == og.OPTIMIZER
    assert groups["optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"] == og.OPTIMIZER
    assert groups["step/.ATTRIBUTES/VARIABLE_VALUE"] == og.COUNTER
    assert groups["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == og.COUNTER
    assert groups[og.OBJECT_GRAPH_KEY] == og.OBJECT_GRAPH
    assert sum(g == og.MODEL for g in groups.values()) == len(b.model.weights)

    findings = checks.check_object_graph(b.graph, b.keys, file=b.prefix)
    assert [f.severity for f in findings] == [INFO]
    assert "keyed under the optimizer" in findings[0].message
    assert findings[0].key == "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"

    # Sequential: not one model/ key at all.
    seq = ckpts["k3seq"]
    assert not [k for k in seq.keys if k.startswith("model/")]
    assert [f.severity for f in checks.check_object_graph(seq.graph, seq.keys)] == [INFO]


def test_keras3_subclassed_model_keeps_model_keys(ckpts):
    b = ckpts["k3sub"]
    assert "model/body/_kernel/.ATTRIBUTES/VARIABLE_VALUE" in b.keys
    assert checks.check_object_graph(b.graph, b.keys) == []


def test_tf_keras_keys_model_weights_under_model(ckpts):
    for name in ("tfk", "tfklegacy"):
        b = ckpts[name]
        groups = og.classify_keys(b.keys, b.graph)
        model_keys = sorted(k for k, g in groups.items() if g == og.MODEL)
        assert model_keys and all(k.startswith("model/layer_with_weights-") for k in model_keys)
        assert checks.check_object_graph(b.graph, b.keys) == []
    assert "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in ckpts["tfk"].keys
    assert "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE" in ckpts["tfk"].keys
    # Name-only classification agrees with the graph where the names carry the slot.
    legacy = ckpts["tfklegacy"]
    assert og.classify_keys(legacy.keys) == og.classify_keys(legacy.keys, legacy.graph)


def test_keras3_optimizer_only_checkpoint_is_flagged_and_really_loses_weights(ckpts):
    import keras

    b = ckpts["k3optonly"]
    assert [c.name for c in b.graph.root.children] == ["optimizer", "save_counter"]
    findings = checks.check_object_graph(b.graph, b.keys, file=b.prefix)
    assert [f.severity for f in findings] == [WARNING]
    message = findings[0].message
    assert "reachable only through the optimizer" in message
    assert "tf.train.Checkpoint(model=" in message
    assert findings[0].file == b.prefix
    only = [n for n in b.graph.variables() if b.graph.group(n) == og.MODEL]
    assert len(only) == len(b.model.trainable_variables) and all(n.model_path is None for n in only)

    # What the warning says, checked with TensorFlow: restoring through the model alone loads nothing.
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    before = [v.numpy().copy() for v in fresh.weights]
    status = tf.train.Checkpoint(model=fresh).restore(b.prefix)
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()
    for v, old in zip(fresh.weights, before):
        np.testing.assert_array_equal(v.numpy(), old)
    # ... and restoring with a built optimizer beside it does.
    fresh_opt = keras.optimizers.SGD(0.1, momentum=0.9)
    fresh_opt.build(fresh.trainable_variables)
    tf.train.Checkpoint(model=fresh, optimizer=fresh_opt).restore(b.prefix).expect_partial()
    for v, src in zip(fresh.weights, b.model.weights):
        np.testing.assert_array_equal(v.numpy(), src.numpy())


def test_keras3_keyed_under_optimizer_restores_through_model(ckpts):
    import keras

    b = ckpts["k3"]
    fresh = _keras3_functional(keras)
    tf.train.Checkpoint(model=fresh).restore(b.prefix).expect_partial().assert_existing_objects_matched()
    for v, src in zip(fresh.weights, b.model.weights):
        np.testing.assert_array_equal(v.numpy(), src.numpy())


def test_check_reports_index_and_graph_disagreements(ckpts):
    b = ckpts["tfk"]
    keys = set(b.keys)
    dropped = "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    findings = checks.check_object_graph(b.graph, (keys - {dropped}) | {"stray/.ATTRIBUTES/VARIABLE_VALUE"})
    by_severity = {f.severity: f for f in findings}
    assert dropped in by_severity["error"].message
    assert by_severity["error"].key == dropped
    assert "stray/.ATTRIBUTES/VARIABLE_VALUE" in by_severity["warning"].message
    assert by_severity["warning"].key == "stray/.ATTRIBUTES/VARIABLE_VALUE"


def test_bad_bytes_raise():
    with pytest.raises(og.ObjectGraphError):
        og.parse_object_graph(b"\x0a\xff\xff\xff")
    with pytest.raises(og.ObjectGraphError):
        og.parse_object_graph(b"")
    bad = og.TrackableObjectGraph()
    node = bad.nodes.add()
    node.children.add(node_id=5, local_name="ghost")
    with pytest.raises(og.ObjectGraphError, match="ghost"):
        og.parse_object_graph(bad.SerializeToString())


def test_cycles_terminate():
    g = og.TrackableObjectGraph()
    a, b = g.nodes.add(), g.nodes.add()
    a.children.add(node_id=1, local_name="b")
    b.children.add(node_id=0, local_name="root")
    b.children.add(node_id=1, local_name="self")
    graph = og.parse_object_graph(g.SerializeToString())
    assert [n.path for n in graph.root.walk()] == ["", "b"]
    assert set(graph.nodes[0].aliases) == {"b/root"} and set(graph.nodes[1].aliases) == {"b/self"}


# --- without an object graph -----------------------------------------------------------------

def test_name_tree_of_tf1_checkpoint(tf1_ckpt):
    keys = [k for k, _ in tf.train.list_variables(tf1_ckpt)]
    assert og.OBJECT_GRAPH_KEY not in keys
    root = og.name_tree(keys)
    dense = next(c for c in root.children if c.name == "dense")
    kernel = next(c for c in dense.children if c.name == "kernel")
    assert kernel.is_variable and kernel.value_key == "dense/kernel"
    assert [(s.slot_name, s.checkpoint_key) for s in kernel.slots] == [("Momentum", "dense/kernel/Momentum")]
    head_w = next(c for c in next(c for c in root.children if c.name == "head").children if c.name == "w")
    assert sorted(s.slot_name for s in head_w.slots) == ["Adam", "Adam_1"]
    groups = og.classify_keys(keys)
    assert groups["global_step"] == og.COUNTER
    assert groups["dense/kernel"] == og.MODEL
    assert groups["dense/kernel/Momentum"] == og.SLOT
    assert groups["head/w/Adam_1"] == og.SLOT
    assert groups["beta1_power"] == og.OPTIMIZER
    graph = og.graph_from_keys(keys)
    assert graph.from_names and set(graph.by_key) == set(keys)


def test_name_tree_of_tf2_keys_matches_object_graph(ckpts):
    b = ckpts["tfklegacy"]
    graph = og.graph_from_keys(b.keys)
    assert og.OBJECT_GRAPH_KEY not in graph.by_key
    for key in b.keys - {og.OBJECT_GRAPH_KEY}:
        named, real = graph.node(key), b.graph.node(key)
        assert named.path == real.path
        assert [s.checkpoint_key for s in named.slots] == [s.checkpoint_key for s in real.slots]
    # Keras 3 names alone: model weights under the optimizer are still told apart.
    k3 = ckpts["k3"]
    names_only = og.classify_keys(k3.keys)
    assert names_only["optimizer/_trainable_variables/3/.ATTRIBUTES/VARIABLE_VALUE"] == og.MODEL
    findings = checks.check_object_graph(og.graph_from_keys(k3.keys))
    assert [f.severity for f in findings] == [INFO]


# --- real third-party checkpoints ------------------------------------------------------------

def _need_realdata():
    if not CAR_RUN.is_dir():
        pytest.skip(f"real data not present at {CAR_RUN}")


def test_real_run_has_no_readable_object_graph():
    _need_realdata()
    reader = tf.train.load_checkpoint(str(CAR_RUN / "ckpt-2"))
    assert og.OBJECT_GRAPH_KEY in reader.get_variable_to_shape_map()
    # The graph lives in the absent data shard: TensorFlow cannot read it either.
    with pytest.raises(tf.errors.OpError):
        reader.get_tensor(og.OBJECT_GRAPH_KEY)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_real_run_name_tree(step):
    _need_realdata()
    keys = list(tf.train.load_checkpoint(str(CAR_RUN / f"ckpt-{step}")).get_variable_to_shape_map())
    graph = og.graph_from_keys(keys)
    root = graph.root
    assert {c.name for c in root.children} >= {"model", "save_counter", "step"}
    model = next(c for c in root.children if c.name == "model")
    assert {c.name for c in model.children} >= {"_feature_extractor", "_box_predictor"}
    slots = [s for n in graph.nodes for s in n.slots]
    groups = og.classify_keys(keys, graph)
    counts = {g: sum(1 for v in groups.values() if v == g) for g in og.GROUPS}
    if step == 1:
        assert slots == [] and counts[og.SLOT] == 0 and counts[og.OPTIMIZER] == 0
        assert len(keys) == 387
    else:
        # 622 entries = 384 model values + 232 momentum slots + 3 optimizer values + step, save_counter
        # and the object graph (622 - 387 = 235 new entries, 3 of them the optimizer's own).
        assert len(slots) == 232 and counts[og.SLOT] == 232
        assert {s.slot_name for s in slots} == {"momentum"}
        assert {s.optimizer_path for s in slots} == {"optimizer"}
        assert all(s.checkpoint_key.startswith(graph.nodes[s.node_id].slot_of + "/.OPTIMIZER_SLOT/") for s in slots)
        assert counts[og.OPTIMIZER] == 3  # optimizer/decay, iter, momentum
        assert len(keys) == 622
    assert counts[og.COUNTER] == 2 and counts[og.OBJECT_GRAPH] == 1 and counts[og.OTHER] == 0
    assert counts[og.MODEL] == len(keys) - counts[og.SLOT] - counts[og.OPTIMIZER] - 3 == 384
    box = graph.find("model/_box_predictor/_base_tower_layers_for_heads/box_encodings/0/1/gamma")
    assert box is not None and box.is_variable
    assert (len(box.slots) == 1) == (step > 1)
    assert checks.check_object_graph(graph) == []


def test_real_zoo_savedmodel_variables_name_tree():
    _need_realdata()
    index = ZOO / "saved_model" / "variables" / "variables"
    if not Path(str(index) + ".index").is_file():
        pytest.skip(f"{index}.index not present")
    keys = list(tf.train.load_checkpoint(str(index)).get_variable_to_shape_map())
    assert len(keys) == 385
    graph = og.graph_from_keys(keys)
    groups = og.classify_keys(keys, graph)
    assert not any(g == og.SLOT for g in groups.values())
    assert graph.root.children


def test_parse_speed_of_a_large_graph():
    # 2,000 layers of kernel + bias with a momentum slot each, built with TensorFlow's own classes:
    # about the size of a detection model's training checkpoint, times five.
    from tensorflow.core.protobuf import trackable_object_graph_pb2 as tpb

    g = tpb.TrackableObjectGraph()
    root, model, opt = g.nodes.add(), g.nodes.add(), g.nodes.add()
    root.children.add(node_id=1, local_name="model")
    root.children.add(node_id=2, local_name="optimizer")
    layers = 2000
    for i in range(layers):
        model.children.add(node_id=3 + i, local_name=f"layer_with_weights-{i}")
    for i in range(layers):
        g.nodes.add()
    variables = []
    for i in range(layers):
        for name in ("kernel", "bias"):
            vid = len(g.nodes)
            var = g.nodes.add()
            g.nodes[3 + i].children.add(node_id=vid, local_name=name)
            path = f"model/layer_with_weights-{i}/{name}"
            var.attributes.add(name="VARIABLE_VALUE", full_name=f"l{i}/{name}",
                               checkpoint_key=f"{path}/.ATTRIBUTES/VARIABLE_VALUE")
            variables.append((vid, path))
    for vid, path in variables:
        sid = len(g.nodes)
        slot = g.nodes.add()
        slot.attributes.add(name="VARIABLE_VALUE", full_name="m",
                            checkpoint_key=f"{path}/.OPTIMIZER_SLOT/optimizer/momentum/.ATTRIBUTES/VARIABLE_VALUE")
        g.nodes[2].slot_variables.add(original_variable_node_id=vid, slot_name="momentum", slot_variable_node_id=sid)
    data = g.SerializeToString()
    graph = og.parse_object_graph(data)
    assert len(graph.nodes) == 3 + layers + 4 * layers
    assert sum(len(n.slots) for n in graph.nodes) == 2 * layers


# --- through the project's own bundle reader -------------------------------------------------

@pytest.mark.parametrize("name", ["k3", "tfklegacy", "module"])
def test_graph_from_bundle_equals_tensorflows_bytes(ckpts, name):
    from detscope.core.formats.bundle import Bundle

    b = ckpts[name]
    bundle = Bundle(b.prefix)
    assert og.object_graph_bytes(bundle) == b.reader.get_tensor(og.OBJECT_GRAPH_KEY)
    graph = og.graph_from_bundle(bundle)
    assert not graph.from_names
    assert [(n.path, n.aliases, n.slots) for n in graph.nodes] == [(n.path, n.aliases, n.slots) for n in b.graph.nodes]
    assert checks.check_object_graph(graph, bundle.entries) == checks.check_object_graph(b.graph, b.keys)


def test_graph_from_bundle_without_data_shard_falls_back_to_names():
    _need_realdata()
    from detscope.core.formats.bundle import Bundle

    bundle = Bundle(str(CAR_RUN / "ckpt-6"))
    graph = og.graph_from_bundle(bundle)
    assert graph.from_names
    assert set(graph.by_key) == set(bundle.entries) - {og.OBJECT_GRAPH_KEY}
    assert sum(len(n.slots) for n in graph.nodes) == 232
