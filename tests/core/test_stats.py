"""Tensor statistics against NumPy on the values TensorFlow itself reads back."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from detscope.core.formats.bundle import Bundle, BundleError  # noqa: E402
from detscope.core.browse.stats import TensorStats, array_stats, tensor_stats  # noqa: E402

try:  # tests/core as a package, or as a plain folder on sys.path (pytest's default)
    from . import tf_artifacts  # noqa: E402
except ImportError:
    import tf_artifacts  # noqa: E402

REL = 1e-6


@pytest.fixture(scope="session")
def art_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "tf_artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def bundles(art_dir) -> dict[str, Bundle]:
    return {
        "dtypes": Bundle(tf_artifacts.all_dtypes_checkpoint(art_dir)),
        "specials": Bundle(tf_artifacts.special_floats_checkpoint(art_dir)),
        "tf1": Bundle(tf_artifacts.tf1_checkpoint(art_dir)),
        "sharded": Bundle(tf_artifacts.sharded_checkpoint(art_dir)),
        "big": Bundle(tf_artifacts.big_tensor_checkpoint(art_dir)),
    }


def _is_integer(dtype: np.dtype) -> bool:
    return dtype.kind in "iub" or dtype.name in ("int4", "uint4")


def _tf_value(b: Bundle, key: str) -> np.ndarray:
    """TensorFlow's own reading of a tensor; quantized values as their storage integers."""
    value = np.asarray(tf.train.load_checkpoint(str(b.prefix)).get_tensor(key))
    return value.view(value.dtype.fields[value.dtype.names[0]][0]) if value.dtype.names else value


def _reference(values: np.ndarray, bins: int) -> dict:
    """What the statistics must be, computed by NumPy on the whole array at once."""
    if values.dtype.kind == "c":
        nan = np.isnan(values)
        inf = np.isinf(values) & ~nan
        finite = np.abs(values[~(nan | inf)]).astype(np.float64)
        zeros = np.count_nonzero(values == 0)
    else:
        as_float = values.astype(np.float64)
        nan = np.isnan(as_float)
        inf = np.isinf(as_float)
        finite = as_float[np.isfinite(as_float)]
        zeros = np.count_nonzero(as_float == 0)
    ref = {"count": values.size, "nan_count": int(nan.sum()), "inf_count": int(inf.sum()),
           "finite_count": finite.size, "zero_fraction": zeros / values.size if values.size else None}
    if finite.size:
        if _is_integer(values.dtype):
            low, high = values.min(), values.max()
        else:
            low, high = finite.min(), finite.max()
        counts, edges = np.histogram(finite, bins=bins, range=(float(low), float(high)))
        ref.update(min=low, max=high, mean=finite.mean(), std=finite.std(),
                   histogram=tuple(int(c) for c in counts), bin_edges=tuple(float(e) for e in edges))
    else:
        ref.update(min=None, max=None, mean=None, std=None, histogram=(), bin_edges=())
    return ref


def _assert_matches(stats: TensorStats, values: np.ndarray, bins: int) -> None:
    ref = _reference(values, bins)
    for name in ("count", "nan_count", "inf_count", "finite_count", "zero_fraction", "histogram", "bin_edges"):
        assert getattr(stats, name) == ref[name], name
    for name in ("min", "max", "mean", "std"):
        got, want = getattr(stats, name), ref[name]
        if want is None:
            assert got is None, name
        elif _is_integer(values.dtype) and name in ("min", "max"):
            assert got == int(want) and isinstance(got, int), name  # integers exactly
        else:
            assert got == pytest.approx(float(want), rel=REL, abs=1e-12), name
    assert sum(stats.histogram) == stats.finite_count


NUMERIC = [
    ("dtypes", k) for k in (
        "bf16", "c128", "c64", "empty", "f16", "f32", "f64", "flag", "int16", "int32", "int64", "int8",
        "scalar", "uint16", "uint32", "uint64", "uint8", "f8e5m2", "f8e4m3fn", "i4", "u4", "qint8", "quint8",
        "qint32")
] + [("specials", k) for k in ("mixed", "all_nan", "constant", "half", "ints", "flags")]


@pytest.mark.parametrize("label,name", NUMERIC)
@pytest.mark.parametrize("bins", [64, 7])
def test_numeric_stats_match_numpy(bundles, label, name, bins):
    b = bundles[label]
    key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
    values = _tf_value(b, key)
    stats = tensor_stats(b, key, bins=bins)
    assert stats.key == key and stats.shape == values.shape
    assert stats.dtype == b.entries[key].dtype_name
    _assert_matches(stats, values, bins)
    # chunking does not change the answer
    small = tensor_stats(b, key, bins=bins, chunk_elements=3)
    assert (small.count, small.nan_count, small.inf_count, small.histogram, small.min, small.max) == \
        (stats.count, stats.nan_count, stats.inf_count, stats.histogram, stats.min, stats.max)
    if stats.mean is not None:
        assert small.mean == pytest.approx(stats.mean, rel=REL, abs=1e-12)
        assert small.std == pytest.approx(stats.std, rel=REL, abs=1e-12)


def test_special_values_are_counted(bundles):
    s = tensor_stats(bundles["specials"], "mixed/.ATTRIBUTES/VARIABLE_VALUE")
    assert (s.kind, s.nan_count, s.inf_count, s.count, s.finite_count) == ("float", 2, 2, 1000, 996)
    assert s.zero_fraction == pytest.approx(100 / 1000)
    none = tensor_stats(bundles["specials"], "all_nan/.ATTRIBUTES/VARIABLE_VALUE")
    assert (none.nan_count, none.min, none.mean, none.histogram) == (4, None, None, ())
    const = tensor_stats(bundles["specials"], "constant/.ATTRIBUTES/VARIABLE_VALUE", bins=4)
    assert (const.min, const.max, const.std) == (2.5, 2.5, 0.0)
    assert const.histogram == (0, 0, 9, 0) and const.bin_edges == (2.0, 2.25, 2.5, 2.75, 3.0)
    flags = tensor_stats(bundles["specials"], "flags/.ATTRIBUTES/VARIABLE_VALUE", bins=2)
    assert flags.kind == "bool" and (flags.min, flags.max) == (0, 1)
    assert flags.histogram[0] + flags.histogram[1] == 33


def test_partitioned_and_sliced_tensors(bundles):
    for label, key in (("tf1", "detector/embedding"), ("sharded", "d/.ATTRIBUTES/VARIABLE_VALUE")):
        b = bundles[label]
        _assert_matches(tensor_stats(b, key, chunk_elements=5), _tf_value(b, key), 64)


def test_string_stats(bundles):
    b = bundles["dtypes"]
    s = tensor_stats(b, "text/.ATTRIBUTES/VARIABLE_VALUE")
    lengths = [0, 3, len(b"a longer label \x00 with a NUL"), len("caf\u00e9".encode()), 300]
    assert s.kind == "string" and s.count == 5 and s.shape == (5,)
    assert (s.min_length, s.max_length, s.total_bytes) == (min(lengths), max(lengths), sum(lengths))
    assert s.mean_length == pytest.approx(np.mean(lengths))
    assert (s.min, s.max, s.mean, s.histogram) == (None, None, None, ())
    graph = tensor_stats(b, "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert graph.count == 1 and graph.min_length == len(b.read_raw("_CHECKPOINTABLE_OBJECT_GRAPH"))
    labels = tensor_stats(bundles["tf1"], "detector/labels")
    assert (labels.count, labels.min_length, labels.max_length) == (2, 3, 6)


def test_big_tensor_in_bounded_memory(bundles):
    b = bundles["big"]
    key = "big/.ATTRIBUTES/VARIABLE_VALUE"
    chunk = 1 << 18
    tracemalloc.start()
    try:
        stats = tensor_stats(b, key, chunk_elements=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_float32 = b.entries[key].nbytes
    # a handful of chunk-sized float64 temporaries, far below the 20 MB tensor
    assert peak < 6 * chunk * 8 < whole_float32 * 2
    values = _tf_value(b, key)
    _assert_matches(stats, values, 64)
    assert stats.nan_count == len(range(0, values.size, 100_003))
    assert stats.inf_count == len(range(5, values.size, 200_003))


def test_array_stats_agrees_with_tensor_stats(bundles):
    b = bundles["specials"]
    for name in ("mixed", "ints", "half", "flags"):
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        from_file = tensor_stats(b, key, chunk_elements=64)
        in_memory = array_stats(b.read(key), chunk_elements=64, key=key)
        assert in_memory == from_file
    rng = np.random.default_rng(3)
    x = rng.normal(size=(37, 11))
    _assert_matches(array_stats(x, bins=10, chunk_elements=50), x, 10)
    strings = array_stats(np.array([b"ab", b"", b"xyz"], dtype=object))
    assert (strings.count, strings.min_length, strings.max_length, strings.total_bytes) == (3, 0, 3, 5)
    empty = array_stats(np.zeros((0, 4), dtype=np.float32))
    assert (empty.count, empty.zero_fraction, empty.mean, empty.histogram) == (0, None, None, ())


def test_as_json_is_plain_json(bundles):
    b = bundles["dtypes"]
    for key in b.entries:
        data = tensor_stats(b, key).as_json()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
        assert data["key"] == key and isinstance(data["shape"], list)


def test_unreadable_types_and_bad_arguments(bundles):
    with pytest.raises(ValueError):
        array_stats(np.arange(4), bins=0)
    with pytest.raises(TypeError):
        array_stats(np.array([1], dtype="datetime64[ns]"))
    b = bundles["dtypes"]
    entry = b.entries["f32/.ATTRIBUTES/VARIABLE_VALUE"]
    # a resource entry, as a handle variable would be stored
    import dataclasses

    b_resource = Bundle(b.prefix)
    b_resource.entries["handle"] = dataclasses.replace(entry, key="handle", dtype=20)
    with pytest.raises(BundleError, match="handle in ckpt.index is a resource tensor"):
        tensor_stats(b_resource, "handle")
