"""Builders of real TensorFlow artifacts for detscope's tests.

Each builder takes a directory, writes its artifact there with TensorFlow itself
and returns the path a reader opens (a checkpoint prefix, or a folder). Calling a
builder again on the same directory returns the existing artifact without
rebuilding it, so test modules can share one directory per session.

TensorFlow is imported only when a builder runs: importing this module is cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEED = 1234


def _tf():
    import tensorflow as tf

    return tf


def _done(prefix: Path) -> bool:
    return Path(str(prefix) + ".index").exists()


def _small_detector_layers(keras, num_classes: int = 3):
    """A tiny conv net shaped like a detector head: a backbone, a box and a class branch."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="backbone_conv")(inputs)
    x = keras.layers.BatchNormalization(name="backbone_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    boxes = keras.layers.Dense(4, name="box_head")(x)
    classes = keras.layers.Dense(num_classes, name="class_head")(x)
    return keras.Model(inputs, [boxes, classes], name="tiny_detector")


def _train_one_step(tf, model, optimizer):
    rng = np.random.default_rng(SEED)
    images = tf.constant(rng.normal(size=(2, 16, 16, 3)).astype(np.float32))
    target_boxes = tf.constant(rng.uniform(size=(2, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        boxes, classes = model(images, training=True)
        loss = tf.reduce_mean(tf.square(boxes - target_boxes)) + tf.reduce_mean(tf.square(classes))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


def _keras_checkpoint(directory, keras_name: str, folder: str, with_optimizer: bool) -> Path:
    """The small detector built with ``keras_name`` ("keras" or "tf_keras"), written with
    ``tf.train.Checkpoint``: with its Adam optimizer after one training step, or alone."""
    import importlib

    prefix = Path(directory) / folder / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    keras = importlib.import_module(keras_name)
    keras.utils.set_random_seed(SEED)
    model = _small_detector_layers(keras)
    if not with_optimizer:
        tf.train.Checkpoint(model=model).write(str(prefix))
        return prefix
    optimizer = keras.optimizers.Adam(1e-3)
    _train_one_step(tf, model, optimizer)
    tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(prefix))
    return prefix


def keras3_checkpoint(directory) -> Path:
    """A Keras 3 (``tf.keras``) model and its Adam optimizer after one step, via ``tf.train.Checkpoint``."""
    return _keras_checkpoint(directory, "keras", "keras3", with_optimizer=True)


def keras3_model_checkpoint(directory) -> Path:
    """The Keras 3 model alone (no optimizer) via ``tf.train.Checkpoint(model=...)``.

    Without an optimizer the kernels appear under ``model/_operations/N/_kernel``;
    with one (see :func:`keras3_checkpoint`) the shorter path through the optimizer's
    ``_trainable_variables`` list names them instead.
    """
    return _keras_checkpoint(directory, "keras", "keras3_model", with_optimizer=False)


def tf_keras_checkpoint(directory) -> Path:
    """The same model built with ``tf_keras`` (Keras 2) and its Adam optimizer after one step."""
    return _keras_checkpoint(directory, "tf_keras", "tf_keras", with_optimizer=True)


def checkpoint_manager_folder(directory) -> Path:
    """A ``tf.train.CheckpointManager`` folder: ckpt-1..3 and the ``checkpoint`` state file.

    Returns the folder. Each checkpoint follows one more SGD-with-momentum step, so
    values differ between them while names stay the same.
    """
    folder = Path(directory) / "manager"
    if (folder / "checkpoint").exists() and _done(folder / "ckpt-3"):
        return folder
    tf = _tf()
    import keras

    keras.utils.set_random_seed(SEED)
    model = _small_detector_layers(keras)
    optimizer = keras.optimizers.SGD(1e-2, momentum=0.9)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(folder), max_to_keep=5)
    for _ in range(3):
        _train_one_step(tf, model, optimizer)
        manager.save()
    return folder


def sharded_checkpoint(directory, max_shard_size: int = 2048) -> Path:
    """A TF2 checkpoint written in several ``.data`` shards by ``MaxShardSizePolicy``."""
    prefix = Path(directory) / "sharded" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    rng = np.random.default_rng(SEED)
    root = tf.Module()
    root.a = tf.Variable(rng.normal(size=(20, 10)).astype(np.float32), name="a")
    root.b = tf.Variable(rng.normal(size=(300,)).astype(np.float64), name="b")
    root.c = tf.Variable(rng.integers(-100, 100, size=(7, 3)).astype(np.int32), name="c")
    root.d = tf.Variable(rng.normal(size=(1000,)).astype(np.float32), name="d")
    root.small = tf.Variable(3.5, name="small")
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=max_shard_size))
    tf.train.Checkpoint(root=root).write(str(prefix), options=options)
    return prefix


def all_dtypes_checkpoint(directory) -> Path:
    """One ``tf.Variable`` of every dtype a variable can hold and detscope reads.

    Floats (float8 e5m2/e4m3fn, bfloat16, float16/32/64), complex, bool, int4..int64,
    uint4..uint64, quantized qint8/quint8/qint32, and strings. (TensorFlow 2.21 also
    saves int2, uint2 and float4_e2m1fn variables; the other float8 types have no
    variable kernels.)
    """
    prefix = Path(directory) / "dtypes" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    rng = np.random.default_rng(SEED)
    root = tf.Module()
    floats = rng.normal(size=(3, 5)) * 10
    values = {
        "f16": tf.constant(floats, dtype=tf.float16),
        "bf16": tf.constant(floats, dtype=tf.bfloat16),
        "f32": tf.constant(floats, dtype=tf.float32),
        "f64": tf.constant(floats, dtype=tf.float64),
        "c64": tf.constant((floats + 1j * floats[::-1]).astype(np.complex64)),
        "c128": tf.constant(floats - 2j * floats, dtype=tf.complex128),
        "flag": tf.constant(rng.uniform(size=(4, 2)) > 0.5),
        "scalar": tf.constant(2.25, dtype=tf.float32),
        "empty": tf.zeros((0, 3), dtype=tf.float32),
        "text": tf.constant([b"", b"cat", b"a longer label \x00 with a NUL", "caf\u00e9".encode(), b"x" * 300]),
        "text_matrix": tf.constant([[b"a", b"bb"], [b"ccc", b""]]),
        "text_scalar": tf.constant(b"background"),
    }
    for np_type in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        info = np.iinfo(np_type)
        ints = np.array([info.min, info.max, 0, 1, 7], dtype=np_type)
        values[np.dtype(np_type).name] = tf.constant(ints)
    import ml_dtypes

    experimental = tf.dtypes.experimental
    values["f8e5m2"] = tf.cast(tf.constant(floats[:2]), experimental.float8_e5m2)
    values["f8e4m3fn"] = tf.cast(tf.constant(floats[:2]), experimental.float8_e4m3fn)
    values["i4"] = tf.constant(np.array([-8, -1, 0, 7, 3], dtype=ml_dtypes.int4))
    values["u4"] = tf.constant(np.array([0, 1, 15, 9], dtype=ml_dtypes.uint4))
    for quantized in (tf.qint8, tf.quint8, tf.qint32):
        values[quantized.name] = tf.constant(np.array([1, 2, 3], dtype=quantized.as_numpy_dtype), dtype=quantized)
    for name, value in values.items():
        setattr(root, name, tf.Variable(value, name=name))
    tf.train.Checkpoint(root=root).write(str(prefix))
    return prefix


def special_floats_checkpoint(directory) -> Path:
    """Float tensors with NaN, +-Inf, zeros and subnormals, for statistics."""
    prefix = Path(directory) / "specials" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    rng = np.random.default_rng(SEED)
    root = tf.Module()
    x = rng.normal(size=1000).astype(np.float32)
    x[::10] = 0.0
    x[3] = np.nan
    x[7] = np.inf
    x[11] = -np.inf
    x[13] = np.nan
    x[17] = np.float32(1e-42)
    root.mixed = tf.Variable(x)
    root.all_nan = tf.Variable(np.full((4,), np.nan, dtype=np.float32))
    root.constant = tf.Variable(np.full((3, 3), 2.5, dtype=np.float64))
    root.half = tf.Variable(x.astype(np.float16))
    root.ints = tf.Variable(rng.integers(-5, 6, size=(50,)).astype(np.int64))
    root.flags = tf.Variable(rng.uniform(size=(33,)) > 0.3)
    tf.train.Checkpoint(root=root).write(str(prefix))
    return prefix


def tf1_checkpoint(directory) -> Path:
    """A TF1 name-based checkpoint (``model.ckpt``) from a ``tf.compat.v1`` graph and Saver.

    Holds plain variables, a global step and a variable partitioned into 3 slices
    (saved as slice entries of one full tensor).
    """
    prefix = Path(directory) / "tf1" / "model.ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    v1 = tf.compat.v1
    prefix.parent.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(SEED)
        with v1.variable_scope("detector"):
            v1.get_variable("conv/weights", shape=(3, 3, 3, 8), initializer=v1.glorot_uniform_initializer())
            v1.get_variable("conv/biases", shape=(8,), initializer=v1.constant_initializer(0.1))
            v1.get_variable("embedding", shape=(10, 4), initializer=v1.random_normal_initializer(),
                            partitioner=v1.fixed_size_partitioner(3))
            v1.get_variable("labels", initializer=tf.constant([b"car", b"person"]), trainable=False)
        v1.train.create_global_step()
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(prefix), write_meta_graph=False, write_state=False)
    return prefix


def many_entries_checkpoint(directory, count: int = 1200) -> Path:
    """A checkpoint with ``count`` small variables (plus the object graph), for benchmarks."""
    prefix = Path(directory) / f"many{count}" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    root = tf.Module()
    layers = []
    for i in range(count):
        layers.append(tf.Variable(np.full((2,), i, dtype=np.float32), name=f"v{i}"))
    root.layers = layers
    tf.train.Checkpoint(root=root).write(str(prefix))
    return prefix


def wide_checkpoint(directory, count: int = 10_000) -> Path:
    """``count`` small tensors with object-path names, written by the ``SaveV2`` op.

    A ``tf.train.Checkpoint`` of 10,000 variables takes TensorFlow many seconds to
    build; ``SaveV2`` writes the same kind of bundle in about one.
    """
    prefix = Path(directory) / f"wide{count}" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    names = [f"model/block_{i // 10}/layer_{i % 10}/kernel/.ATTRIBUTES/VARIABLE_VALUE" for i in range(count)]
    tensors = [tf.constant(np.full((2,), i, dtype=np.float32)) for i in range(count)]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * count, tensors=tensors)
    return prefix


def big_tensor_checkpoint(directory, count: int = 5_000_000) -> Path:
    """One float32 tensor of ``count`` normal values (with a few NaN/Inf), for statistics."""
    prefix = Path(directory) / f"big{count}" / "ckpt"
    if _done(prefix):
        return prefix
    tf = _tf()
    rng = np.random.default_rng(SEED)
    values = rng.standard_normal(count, dtype=np.float32)
    values[::100_003] = np.nan
    values[5::200_003] = np.inf
    root = tf.Module()
    root.big = tf.Variable(values.reshape(-1, 1000) if count % 1000 == 0 else values)
    tf.train.Checkpoint(root=root).write(str(prefix))
    return prefix
