"""The bundle reader against TensorFlow's own reader, on real artifacts TensorFlow writes."""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
from pathlib import Path

import google_crc32c
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import tensor_bundle_pb2  # noqa: E402

from detscope.core.formats import bundle as bundle_mod  # noqa: E402
from detscope.core.formats import dtypes, protos  # noqa: E402
from detscope.core.formats.bundle import Bundle, BundleError, ChecksumError, Entry, MissingShardError, decode_tensor_name_slice, encode_tensor_name_slice, mask_crc, table_items, unmask_crc

try:  # tests/core as a package, or as a plain folder on sys.path (pytest's default)
    from . import tf_artifacts  # noqa: E402
except ImportError:
    import tf_artifacts  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REALDATA = REPO / ".." / "shared" / "realdata"


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def art_dir(tmp_path_factory) -> Path:
    """One directory per test session shared by the modules that build artifacts (builders are idempotent)."""
    path = tmp_path_factory.getbasetemp() / "tf_artifacts"
    path.mkdir(exist_ok=True)
    return path


def _prefixes(art_dir: Path) -> dict[str, Path]:
    manager = tf_artifacts.checkpoint_manager_folder(art_dir)
    found = {
        "keras3": tf_artifacts.keras3_checkpoint(art_dir),
        "keras3_model": tf_artifacts.keras3_model_checkpoint(art_dir),
        "tf_keras": tf_artifacts.tf_keras_checkpoint(art_dir),
        "sharded": tf_artifacts.sharded_checkpoint(art_dir),
        "dtypes": tf_artifacts.all_dtypes_checkpoint(art_dir),
        "specials": tf_artifacts.special_floats_checkpoint(art_dir),
        "tf1": tf_artifacts.tf1_checkpoint(art_dir),
        "many": tf_artifacts.many_entries_checkpoint(art_dir),
        "big": tf_artifacts.big_tensor_checkpoint(art_dir),
    }
    for i in (1, 2, 3):
        found[f"manager-{i}"] = manager / f"ckpt-{i}"
    return found


ARTIFACTS = ["keras3", "keras3_model", "tf_keras", "sharded", "dtypes", "specials", "tf1", "many", "big",
             "manager-1", "manager-2", "manager-3"]


@pytest.fixture(scope="session")
def prefixes(art_dir) -> dict[str, Path]:
    return _prefixes(art_dir)


def _copy_bundle(prefix: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(f, dest / f.name)
    return dest / prefix.name


def _tf_numpy_dtype(tf_dtype) -> np.dtype:
    """NumPy's dtype for a TF dtype; quantized types (structured in TF) by their storage integer."""
    dt = np.dtype(tf_dtype.as_numpy_dtype)
    return dt.fields[dt.names[0]][0] if dt.names else dt


def _tf_value_list(value) -> list:
    return list(np.asarray(value, dtype=object).reshape(-1))


# --- the schema against TensorFlow's generated descriptors ------------------------------------

def test_schema_matches_tensorflow_descriptors():
    from google.protobuf import descriptor

    enum_as_int32 = {descriptor.FieldDescriptor.TYPE_ENUM: descriptor.FieldDescriptor.TYPE_INT32}
    for name in ("BundleHeaderProto", "BundleEntryProto"):
        theirs = tensor_bundle_pb2.DESCRIPTOR.message_types_by_name[name]
        ours = bundle_mod.TENSOR_BUNDLE[name].DESCRIPTOR
        assert [f.name for f in ours.fields] == [f.name for f in theirs.fields]
        for f in ours.fields:
            t = theirs.fields_by_name[f.name]
            assert f.number == t.number, f.name
            assert f.type == enum_as_int32.get(t.type, t.type), f.name
            assert f.is_repeated == t.is_repeated, f.name
            if t.message_type is not None:
                assert f.message_type.name == t.message_type.name, f.name
    for name in ("TensorShapeProto", "TensorSliceProto", "VersionDef"):
        assert protos.TENSOR[name].DESCRIPTOR.name == name


def test_hand_decoder_matches_protobuf(prefixes):
    """Every entry of every artifact: the fast decoder agrees with the protobuf runtime."""
    for label in ARTIFACTS:
        b = Bundle(prefixes[label])
        for raw_key, value in table_items(b.index_path):
            if not raw_key:
                header = bundle_mod.BundleHeaderProto.FromString(value)
                assert (header.num_shards, header.endianness) == (b.num_shards, b.endianness)
                continue
            m = bundle_mod.BundleEntryProto.FromString(value)
            if raw_key[0] == 0:
                entry = b.slice_entries[decode_tensor_name_slice(raw_key)]
            else:
                entry = b.entries[raw_key.decode()]
            assert entry.dtype == m.dtype
            assert entry.shape == tuple(d.size for d in m.shape.dim)
            assert (entry.shard_id, entry.offset, entry.size) == (m.shard_id, m.offset, m.size)
            assert entry.crc32c == (m.crc32c if m.HasField("crc32c") else None)
            assert entry.slices == tuple(
                tuple((e.start, e.length if e.HasField("length") else None) for e in s.extent) for s in m.slices)


# --- every artifact against TensorFlow ------------------------------------------------------

@pytest.mark.parametrize("label", ARTIFACTS)
def test_matches_tensorflow(prefixes, label):
    prefix = prefixes[label]
    b = Bundle(prefix)
    names = dict(tf.train.list_variables(str(prefix)))
    reader = tf.train.load_checkpoint(str(prefix))
    tf_dtypes = reader.get_variable_to_dtype_map()
    assert list(b.entries) == sorted(names)  # same keys, and the index is in sorted order
    assert b.missing_shards() == []
    for key, entry in b.entries.items():
        assert list(entry.shape) == names[key], key
        expected_dtype = _tf_numpy_dtype(tf_dtypes[key])
        assert dtypes.numpy_dtype(entry.dtype) == expected_dtype, key
        assert entry.dtype == tf_dtypes[key].as_datatype_enum, key
        value = b.read(key)
        ref = reader.get_tensor(key)
        assert value.shape == np.shape(ref), key
        if expected_dtype == np.dtype(object):
            assert _tf_value_list(value) == _tf_value_list(ref), key
            assert all(isinstance(v, bytes) for v in value.reshape(-1))
        else:
            assert value.dtype == expected_dtype, key
            assert value.tobytes() == np.asarray(ref).tobytes(), key


@pytest.mark.parametrize("label", ["dtypes", "sharded", "tf1", "specials"])
def test_iter_chunks_and_read_raw(prefixes, label):
    b = Bundle(prefixes[label])
    for key, entry in b.entries.items():
        whole = b.read(key)
        chunks = list(b.iter_chunks(key, chunk_elements=3))
        assert all(len(c) <= 3 for c in chunks)
        if not whole.size:
            assert chunks == []
        elif whole.dtype == object:
            assert [v for c in chunks for v in c] == list(whole.reshape(-1))
        else:
            assert np.concatenate(chunks).tobytes() == whole.reshape(-1).tobytes()
        if entry.slices:
            with pytest.raises(BundleError, match="slices"):
                b.read_raw(key)
        elif whole.dtype != object:
            assert b.read_raw(key) == whole.tobytes()
        elif whole.size == 1:
            assert b.read_raw(key) == whole.reshape(-1)[0]
        else:
            with pytest.raises(BundleError, match="strings"):
                b.read_raw(key)


def test_object_graph_read_raw_parses(prefixes):
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    for label in ("keras3", "tf_keras", "sharded"):
        b = Bundle(prefixes[label])
        raw = b.read_raw(bundle_mod.OBJECT_GRAPH_KEY)
        assert raw == tf.train.load_checkpoint(str(b.prefix)).get_tensor(bundle_mod.OBJECT_GRAPH_KEY)
        graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
        assert graph.nodes[0].children


def test_entry_properties(prefixes):
    b = Bundle(prefixes["dtypes"])
    e = b.entries["f32/.ATTRIBUTES/VARIABLE_VALUE"]
    assert isinstance(e, Entry)
    assert (e.dtype_name, e.num_elements, e.nbytes, e.shape) == ("float32", 15, 60, (3, 5))
    assert b.entries["bf16/.ATTRIBUTES/VARIABLE_VALUE"].dtype_name == "bfloat16"
    assert b.entries["text/.ATTRIBUTES/VARIABLE_VALUE"].dtype_name == "object"
    assert b.entries["scalar/.ATTRIBUTES/VARIABLE_VALUE"].num_elements == 1
    assert b.entries["empty/.ATTRIBUTES/VARIABLE_VALUE"].num_elements == 0
    assert b.version.producer >= 1
    assert b.endianness == bundle_mod.LITTLE
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.size = 3  # type: ignore[misc]
    with pytest.raises(KeyError):
        b.read("no/such/tensor")


def test_prefix_forms(prefixes):
    prefix = prefixes["sharded"]
    b = Bundle(prefix)
    assert b.num_shards == 4
    assert [p.name for p in b.shard_paths()] == [f"ckpt.data-0000{i}-of-00004" for i in range(4)]
    assert {e.shard_id for e in b.entries.values()} | {e.shard_id for e in b.slice_entries.values()} \
        == {0, 1, 2, 3}
    for form in (prefix, str(prefix), Path(str(prefix) + ".index"), b.shard_path(2)):
        other = Bundle(form)
        assert other.prefix == prefix and other.index_path == b.index_path
        assert list(other.entries) == list(b.entries)


# --- partitioned tensors --------------------------------------------------------------------

def test_tf1_partitioned_variable(prefixes):
    b = Bundle(prefixes["tf1"])
    entry = b.entries["detector/embedding"]
    assert entry.slices == (((0, 4), (0, 4)), ((4, 3), (0, 4)), ((7, 3), (0, 4)))
    assert entry.size == 0 and entry.crc32c is None
    value = b.read("detector/embedding")
    ref = tf.train.load_checkpoint(str(b.prefix)).get_tensor("detector/embedding")
    assert value.tobytes() == ref.tobytes()
    assert sorted(b.slice_entries) == [("detector/embedding", s) for s in entry.slices]


def test_tf2_sharding_policy_slices_tensors(prefixes):
    """MaxShardSizePolicy splits a tensor larger than a shard into slices across shards."""
    b = Bundle(prefixes["sharded"])
    sliced = [k for k, e in b.entries.items() if e.slices]
    assert sliced
    shards = {b.slice_entries[(k, s)].shard_id for k in sliced for s in b.entries[k].slices}
    assert len(shards) > 1


def test_slice_keys_are_tensorflows(prefixes):
    seen = 0
    for label in ("tf1", "sharded"):
        b = Bundle(prefixes[label])
        for (name, extents), raw in b._slice_keys.items():
            assert encode_tensor_name_slice(name, extents) == raw
            assert decode_tensor_name_slice(raw) == (name, extents)
            seen += 1
    assert seen >= 12


def test_slice_key_encoding_round_trips_and_sorts():
    numbers = [-(2 ** 63), -(2 ** 40), -8193, -8192, -65, -64, -1, 0, 1, 63, 64, 8191, 8192, 2 ** 40, 2 ** 63 - 1]
    keys = [encode_tensor_name_slice("t", ((n, 1),)) for n in numbers]
    assert keys == sorted(keys)  # OrderedCode keeps numeric order
    for name in ("a", "x\x00y", "caf\u00e9", "z\udcff", ""):
        for extents in ((), ((0, None),), ((5, 2), (0, None)), tuple((n, None) for n in numbers)):
            assert decode_tensor_name_slice(encode_tensor_name_slice(name, extents)) == (name, extents)


# --- corruption -----------------------------------------------------------------------------

def test_flipped_data_byte_is_a_checksum_error(prefixes, tmp_path):
    prefix = _copy_bundle(prefixes["dtypes"], tmp_path / "flip")
    b = Bundle(prefix)
    entry = b.entries["f32/.ATTRIBUTES/VARIABLE_VALUE"]
    shard = b.shard_path(0)
    data = bytearray(shard.read_bytes())
    data[entry.offset + 5] ^= 0x10
    shard.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=re.escape(shard.name)) as info:
        b.read("f32/.ATTRIBUTES/VARIABLE_VALUE")
    assert "\n" not in str(info.value) and info.value.path == shard
    with pytest.raises(ChecksumError, match=re.escape(shard.name)):
        b.read_raw("f32/.ATTRIBUTES/VARIABLE_VALUE")
    with pytest.raises(ChecksumError, match=re.escape(shard.name)):
        list(b.iter_chunks("f32/.ATTRIBUTES/VARIABLE_VALUE", chunk_elements=4))
    b.read("f64/.ATTRIBUTES/VARIABLE_VALUE")  # other tensors still read


def test_flipped_string_bytes_are_checksum_errors(prefixes, tmp_path):
    prefix = _copy_bundle(prefixes["dtypes"], tmp_path / "flipstr")
    b = Bundle(prefix)
    key = "text/.ATTRIBUTES/VARIABLE_VALUE"
    entry = b.entries[key]
    shard = b.shard_path(0)
    original = shard.read_bytes()
    # the last byte of the string data, then a byte of the lengths checksum
    for where in (entry.offset + entry.size - 1, entry.offset + 5 + 1):
        data = bytearray(original)
        data[where] ^= 0x01
        shard.write_bytes(bytes(data))
        with pytest.raises(ChecksumError, match=re.escape(shard.name)):
            b.read(key)
    shard.write_bytes(original)
    assert list(b.read(key))[2] == b"a longer label \x00 with a NUL"


def test_missing_shard(prefixes, tmp_path):
    prefix = _copy_bundle(prefixes["sharded"], tmp_path / "missing")
    b = Bundle(prefix)
    gone = b.shard_path(1)
    gone.unlink()
    b = Bundle(prefix)  # the index still opens
    assert b.missing_shards() == [gone]
    on_shard_1 = [k for k, e in b.entries.items() if e.shard_id == 1 and not e.slices]
    assert on_shard_1
    with pytest.raises(MissingShardError) as info:
        b.read(on_shard_1[0])
    assert str(info.value) == f"{gone.name} is missing; names and shapes are still browsable"
    with pytest.raises(MissingShardError):
        list(b.iter_chunks(on_shard_1[0]))
    # a partitioned tensor with one slice on the missing shard
    with pytest.raises(MissingShardError, match=gone.name):
        b.read("d/.ATTRIBUTES/VARIABLE_VALUE")
    b.read("a/.ATTRIBUTES/VARIABLE_VALUE")


def test_short_shard(prefixes, tmp_path):
    prefix = _copy_bundle(prefixes["big"], tmp_path / "short")
    b = Bundle(prefix)
    shard = b.shard_path(0)
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size // 2)
    with pytest.raises(BundleError, match=re.escape(shard.name) + " is truncated"):
        b.read("big/.ATTRIBUTES/VARIABLE_VALUE")
    with pytest.raises(BundleError, match="truncated"):
        next(iter(b.iter_chunks("big/.ATTRIBUTES/VARIABLE_VALUE")))


@pytest.mark.parametrize("keep", [0, 1, 10, 47, 48, 100, -1, -9, 0.5])
def test_truncated_index(prefixes, tmp_path, keep):
    prefix = _copy_bundle(prefixes["keras3"], tmp_path / "trunc")
    index = Path(str(prefix) + ".index")
    data = index.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    index.write_bytes(data[:cut])
    with pytest.raises(BundleError, match=re.escape(index.name)) as info:
        Bundle(prefix)
    assert "\n" not in str(info.value)


def test_index_corruption_never_escapes_as_another_error(prefixes, tmp_path):
    """Flip, zero or truncate bytes all over a real index: either it still parses or a BundleError says why."""
    prefix = _copy_bundle(prefixes["tf1"], tmp_path / "fuzz")
    index = Path(str(prefix) + ".index")
    original = index.read_bytes()
    rng = random.Random(7)
    outcomes = {"ok": 0, "error": 0}
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= rng.choice([0x01, 0x80, 0xFF])
        index.write_bytes(bytes(data))
        try:
            Bundle(prefix)
            outcomes["ok"] += 1
        except BundleError as exc:
            assert index.name in str(exc) and "\n" not in str(exc)
            outcomes["error"] += 1
    # every flip inside a checksummed block is caught
    assert outcomes["error"] >= len(original) - 48


def test_corrupt_index_block_is_a_checksum_error(prefixes, tmp_path):
    prefix = _copy_bundle(prefixes["keras3"], tmp_path / "blockcrc")
    index = Path(str(prefix) + ".index")
    data = bytearray(index.read_bytes())
    data[20] ^= 0x04
    index.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="ckpt.index is corrupt: checksum mismatch"):
        Bundle(prefix)


def test_wrong_magic_and_not_a_checkpoint(tmp_path):
    index = tmp_path / "notes.index"
    index.write_bytes(b"hello world, this is not a table at all" * 4)
    with pytest.raises(BundleError, match="notes.index is not a TensorFlow checkpoint index"):
        Bundle(index)
    with pytest.raises(BundleError, match="nothing.index does not exist"):
        Bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="is a folder"):
        Bundle(tmp_path)


def test_git_lfs_pointers(prefixes, tmp_path):
    pointer = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    prefix = _copy_bundle(prefixes["keras3"], tmp_path / "lfs")
    shard = Path(str(prefix) + ".data-00000-of-00001")
    shard.write_text(pointer)
    b = Bundle(prefix)
    with pytest.raises(BundleError, match=re.escape(f"{shard.name} is a Git LFS pointer, not the file; "
                                                    "run `git lfs pull`")):
        b.read(next(iter(b.entries)))
    index = Path(str(prefix) + ".index")
    index.write_text(pointer)
    with pytest.raises(BundleError, match=re.escape("ckpt.index is a Git LFS pointer, not the file; "
                                                    "run `git lfs pull`")):
        Bundle(prefix)


# --- hand-written tables: what TensorFlow does not write by default -------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _snappy_literal(data: bytes) -> bytes:
    """A valid snappy stream made of literals only (what a snappy block needs to be, minus compression)."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), 60):
        piece = data[start:start + 60]
        out.append((len(piece) - 1) << 2)
        out += piece
    return bytes(out)


def write_table(items: list[tuple[bytes, bytes]], *, compression: int = 0, block_bytes: int = 200,
                restart_interval: int = 4) -> bytes:
    """A sorted table in the index's format, written independently of the reader."""
    out = bytearray()

    def block(entries) -> tuple[int, int]:
        buf = bytearray()
        restarts = []
        previous = b""
        for i, (key, value) in enumerate(entries):
            shared = 0
            if i % restart_interval == 0:
                restarts.append(len(buf))
            else:
                while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                    shared += 1
            buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
            previous = key
        restarts = restarts or [0]
        for r in restarts:
            buf += r.to_bytes(4, "little")
        buf += len(restarts).to_bytes(4, "little")
        contents = _snappy_literal(bytes(buf)) if compression == 1 else bytes(buf)
        handle = (len(out), len(contents))
        trailer = bytes([compression])
        out.extend(contents + trailer + mask_crc(google_crc32c.value(contents + trailer)).to_bytes(4, "little"))
        return handle

    index_entries = []
    pending: list = []
    size = 0
    for key, value in items:
        pending.append((key, value))
        size += len(key) + len(value)
        if size >= block_bytes:
            off, n = block(pending)
            index_entries.append((key, _varint(off) + _varint(n)))
            pending, size = [], 0
    if pending:
        off, n = block(pending)
        index_entries.append((pending[-1][0], _varint(off) + _varint(n)))
    meta = block([])
    index = block(index_entries)
    footer = (_varint(meta[0]) + _varint(meta[1]) + _varint(index[0]) + _varint(index[1])).ljust(40, b"\0")
    out += footer + bundle_mod.TABLE_MAGIC.to_bytes(8, "little")
    return bytes(out)


def _header(num_shards=1, endianness=0) -> bytes:
    h = bundle_mod.BundleHeaderProto(num_shards=num_shards, endianness=endianness)
    h.version.producer = 1
    return h.SerializeToString()


def _entry_bytes(dtype: int, shape, offset: int, size: int, crc: int | None) -> bytes:
    m = bundle_mod.BundleEntryProto(dtype=dtype, offset=offset, size=size)
    for d in shape:
        m.shape.dim.add(size=d)
    if crc is not None:
        m.crc32c = crc
    return m.SerializeToString()


def test_snappy_blocks_decode(tmp_path):
    values = np.arange(6, dtype=np.float32)
    raw = values.tobytes()
    items = [(b"", _header()), (b"v", _entry_bytes(1, (6,), 0, len(raw), mask_crc(google_crc32c.value(raw))))]
    (tmp_path / "snap.index").write_bytes(write_table(items, compression=1))
    (tmp_path / "snap.data-00000-of-00001").write_bytes(raw)
    assert Bundle(tmp_path / "snap").read("v").tobytes() == raw


def test_snappy_decoder_copies():
    # literal "abc", then a 1-byte-offset copy of 8 overlapping bytes at offset 3
    assert bundle_mod.snappy_decompress(b"\x0b" + b"\x08abc" + b"\x11\x03") == b"abcabcabcab"
    # literal "xyz", then 2- and 4-byte-offset copies
    assert bundle_mod.snappy_decompress(b"\x0b\x08xyz" + bytes([(5 - 1) << 2 | 2]) + (2).to_bytes(2, "little")
                                        + bytes([(3 - 1) << 2 | 3]) + (8).to_bytes(4, "little")) == b"xyzyzyzyxyz"
    long_literal = bytes(range(256)) * 2
    assert bundle_mod.snappy_decompress(_varint(512) + bytes([61 << 2]) + (511).to_bytes(2, "little")
                                        + long_literal) == long_literal
    for broken in (b"\x05\x08abc", b"\x0b\x08abc\x11\x09", b"\x03\x10ab", b"\x80"):
        with pytest.raises(bundle_mod._Corrupt):
            bundle_mod.snappy_decompress(broken)


def test_corrupt_snappy_block_is_a_bundle_error(tmp_path):
    contents = b"\x20\x08abc"  # declares 32 bytes, holds 3
    table = bytearray(write_table([(b"", _header())]))
    bad = contents + b"\x01" + mask_crc(google_crc32c.value(contents + b"\x01")).to_bytes(4, "little")
    # point the index at a block that cannot decode
    footer_at = len(table) - 48
    table = table[:footer_at] + bad + _snappy_index_footer(footer_at, len(contents))
    (tmp_path / "bad.index").write_bytes(bytes(table))
    with pytest.raises(BundleError, match="bad.index is corrupt: the snappy-compressed block"):
        Bundle(tmp_path / "bad")


def _snappy_index_footer(block_offset: int, block_size: int) -> bytes:
    """An index block (uncompressed) naming one data block, then the footer."""
    handle = _varint(block_offset) + _varint(block_size)
    index_block = _varint(0) + _varint(1) + _varint(len(handle)) + b"\xff" + handle
    index_block += (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    index_offset = block_offset + block_size + 5
    trailer = b"\x00" + mask_crc(google_crc32c.value(index_block + b"\x00")).to_bytes(4, "little")
    footer = (_varint(0) + _varint(0) + _varint(index_offset) + _varint(len(index_block))).ljust(40, b"\0")
    return index_block + trailer + footer + bundle_mod.TABLE_MAGIC.to_bytes(8, "little")


def test_hand_written_table_with_many_blocks(tmp_path):
    """Many small blocks, long shared prefixes and multi-byte varints all decode."""
    data = bytearray()
    items = [(b"", _header())]
    expected = {}
    for i in range(300):
        key = ("model/" + "very_long_scope_name/" * 10 + f"layer_{i:04d}/kernel").encode()
        values = np.full((i % 7 + 1,), i, dtype=np.int64)
        raw = values.tobytes()
        items.append((key, _entry_bytes(9, values.shape, len(data), len(raw), mask_crc(google_crc32c.value(raw)))))
        data += raw
        expected[key.decode()] = values
    (tmp_path / "t.index").write_bytes(write_table(items, block_bytes=1000, restart_interval=16))
    (tmp_path / "t.data-00000-of-00001").write_bytes(bytes(data))
    b = Bundle(tmp_path / "t")
    assert list(b.entries) == list(expected)
    for key, values in expected.items():
        assert np.array_equal(b.read(key), values)


def test_resource_and_variant_entries_are_refused(tmp_path):
    items = [(b"", _header()), (b"handle", _entry_bytes(dtypes.DT_RESOURCE, (), 0, 0, None)),
             (b"state", _entry_bytes(dtypes.DT_VARIANT, (), 0, 0, None))]
    (tmp_path / "r.index").write_bytes(write_table(items))
    (tmp_path / "r.data-00000-of-00001").write_bytes(b"")
    b = Bundle(tmp_path / "r")
    assert b.entries["handle"].dtype_name == "resource"
    with pytest.raises(BundleError, match="handle in r.index is a resource tensor, which is not readable"):
        b.read("handle")
    with pytest.raises(BundleError, match="variant tensor"):
        list(b.iter_chunks("state"))


def test_missing_header_is_an_error(tmp_path):
    (tmp_path / "h.index").write_bytes(write_table([(b"a", _entry_bytes(1, (), 0, 4, None))]))
    with pytest.raises(BundleError, match="h.index has no bundle header"):
        Bundle(tmp_path / "h")


def _big_endian_copy(b: Bundle, dest: Path) -> Path:
    """Rewrite a little-endian bundle as a big-endian machine would have written it."""
    data = bytearray()
    items = [(b"", _header(endianness=bundle_mod.BIG))]
    for key, entry in b.entries.items():
        value = b.read(key)
        if value.dtype == object:
            strings = list(value.reshape(-1))
            lengths = b"".join(_varint(len(s)) for s in strings)
            length_crc = google_crc32c.value(b"".join(len(s).to_bytes(4, "big") for s in strings))
            stored = mask_crc(length_crc).to_bytes(4, "big")
            payload = b"".join(strings)
            raw = lengths + stored + payload
            crc = google_crc32c.extend(google_crc32c.extend(length_crc, stored), payload)
        else:
            raw = value.byteswap().tobytes()
            crc = google_crc32c.value(raw)
        items.append((key.encode(), _entry_bytes(entry.dtype, entry.shape, len(data), len(raw), mask_crc(crc))))
        data += raw
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "be.index").write_bytes(write_table(items))
    (dest / "be.data-00000-of-00001").write_bytes(bytes(data))
    return dest / "be"


def test_big_endian_bundle(prefixes, tmp_path):
    little = Bundle(prefixes["dtypes"])
    big = Bundle(_big_endian_copy(little, tmp_path))
    assert big.endianness == bundle_mod.BIG
    for key in little.entries:
        expected = little.read(key)
        got = big.read(key)
        assert got.shape == expected.shape
        if expected.dtype == object:
            assert list(got.reshape(-1)) == list(expected.reshape(-1))
        else:
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), key
            assert got.dtype.isnative
            chunks = list(big.iter_chunks(key, chunk_elements=4))
            if expected.size:
                assert np.concatenate(chunks).tobytes() == expected.reshape(-1).tobytes()


def test_crc_mask_round_trip():
    for value in (0, 1, 0xFFFFFFFF, 0x12345678, google_crc32c.value(b"detscope")):
        assert unmask_crc(mask_crc(value)) == value
    assert mask_crc(0) == 0xA282EAD8


# --- real third-party checkpoints -----------------------------------------------------------

def _real_indexes() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(REALDATA.resolve().rglob("*.index"))


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent (real third-party checkpoints)")
def test_real_checkpoints_browse_without_shards():
    indexes = _real_indexes()
    assert indexes
    for index in indexes:
        b = Bundle(index)
        prefix = str(b.prefix)
        names = dict(tf.train.list_variables(prefix))
        tf_dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
        assert list(b.entries) == sorted(names)
        for key, entry in b.entries.items():
            assert list(entry.shape) == names[key]
            assert dtypes.numpy_dtype(entry.dtype) == _tf_numpy_dtype(tf_dtypes[key])
        assert b.missing_shards() == b.shard_paths()
        key = next(k for k in b.entries if k != bundle_mod.OBJECT_GRAPH_KEY)
        with pytest.raises(MissingShardError, match=re.escape(b.shard_path(0).name) + " is missing"):
            b.read(key)
        with pytest.raises(MissingShardError):
            b.read_raw(bundle_mod.OBJECT_GRAPH_KEY)


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent (real third-party checkpoints)")
def test_real_checkpoint_slots():
    run = REALDATA / "car-ssd-fpnlite-training" / "models" / "my_ssd_mobnet"
    first = Bundle(run / "ckpt-1")
    later = Bundle(run / "ckpt-6.index")
    assert not any(".OPTIMIZER_SLOT" in k for k in first.entries)
    assert any(k.endswith(".OPTIMIZER_SLOT/optimizer/momentum/.ATTRIBUTES/VARIABLE_VALUE") for k in later.entries)


# --- size (speed is measured in bench/, never asserted in tests) ----------------------------------

def test_wide_index_reads_every_entry(prefixes, art_dir):
    many = Bundle(prefixes["many"])
    assert len(many.entries) >= 1000
    wide = Bundle(tf_artifacts.wide_checkpoint(art_dir))
    assert len(wide.entries) == 10_000
    assert wide.read("model/block_999/layer_9/kernel/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [9999.0, 9999.0]


# --- decoders on garbage --------------------------------------------------------------------

def test_decoders_on_random_bytes_fail_cleanly():
    rng = random.Random(11)
    for _ in range(3000):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        for decode in (bundle_mod.snappy_decompress, decode_tensor_name_slice):
            try:
                decode(blob)
            except bundle_mod._Corrupt:
                pass


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent (real third-party checkpoints)")
def test_corrupted_snappy_index_fails_cleanly(tmp_path):
    """The Model Zoo's ckpt-0.index has snappy blocks; damage to it is always a one-line BundleError."""
    source = REALDATA / "car-ssd-fpnlite-training" / "pre-trained-models" / \
        "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8" / "checkpoint" / "ckpt-0.index"
    original = source.read_bytes()
    assert any(kind == 1 for kind in _block_kinds(original))
    index = tmp_path / "ckpt-0.index"
    rng = random.Random(5)
    for position in rng.sample(range(len(original) - 48), 150):
        data = bytearray(original)
        data[position] ^= 1 << rng.randrange(8)
        index.write_bytes(bytes(data))
        with pytest.raises(BundleError, match="ckpt-0.index"):
            Bundle(index)


def _block_kinds(data: bytes) -> list[int]:
    """The compression byte of every data block of a table."""
    footer = data[-48:]
    _, pos = bundle_mod._varint(footer, 0)
    _, pos = bundle_mod._varint(footer, pos)
    offset, pos = bundle_mod._varint(footer, pos)
    size, pos = bundle_mod._varint(footer, pos)
    index_block = data[offset:offset + size]
    kinds = []
    for _, start, _ in bundle_mod._block_items(index_block):
        block_offset, p = bundle_mod._varint(index_block, start)
        block_size, p = bundle_mod._varint(index_block, p)
        kinds.append(data[block_offset + block_size])
    return kinds
