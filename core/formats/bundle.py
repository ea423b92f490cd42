"""Read TensorFlow tensor bundles (checkpoints) without TensorFlow.

A bundle is ``<prefix>.index`` plus ``<prefix>.data-NNNNN-of-NNNNN`` shards. The
index is a LevelDB-style sorted table:

* a 48-byte footer: two block handles (metaindex, index), each a pair of
  varint64 (offset, size), zero-padded to 40 bytes, then the 8-byte magic
  ``0xdb4775248b80fb57`` little-endian;
* the index block maps a separator key to the handle of each data block;
* every block is followed by a 5-byte trailer: a compression byte (0 none,
  1 snappy) and the masked CRC-32C of the block contents plus that byte;
  TensorFlow writes bundles uncompressed today, but older indexes (the Model
  Zoo's TPU-trained checkpoints among them) have snappy blocks, decoded here
  in pure Python;
* a block holds prefix-compressed entries (varint shared, varint non-shared,
  varint value length, key suffix, value), then restart offsets (uint32 each)
  and their count (uint32).

Key ``""`` holds a BundleHeaderProto; every other key a BundleEntryProto naming
the dtype, shape, shard, byte range and masked CRC-32C of one tensor. A TF1
partitioned variable has an entry without data that lists its slices; each
slice is stored under a key built by :func:`encode_tensor_name_slice`.

Entries are decoded by hand from the index bytes (a checkpoint can have tens of
thousands); the protobuf classes declared here read the header and serve as the
reference the hand decoder is tested against.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import google_crc32c

from . import dtypes, protos
from ..base import files
from ..base.errors import UserError
from ..base.text import fmt_bytes

if TYPE_CHECKING:  # NumPy is imported where values are read, so listing a bundle never loads it
    import numpy as np

TENSOR_BUNDLE = protos.schema("tensor_bundle", [
    protos.message("BundleHeaderProto",
                   protos.field("num_shards", 1, "int32"),
                   protos.field("endianness", 2, "int32"),  # enum Endianness { LITTLE = 0; BIG = 1; }
                   protos.field("version", 3, "VersionDef")),
    protos.message("BundleEntryProto",
                   protos.field("dtype", 1, "int32"),  # enum DataType
                   protos.field("shape", 2, "TensorShapeProto"),
                   protos.field("shard_id", 3, "int32"),
                   protos.field("offset", 4, "int64"),
                   protos.field("size", 5, "int64"),
                   protos.field("crc32c", 6, "fixed32"),
                   protos.field("slices", 7, "TensorSliceProto", repeated=True)),
], deps=("tensor",))

BundleHeaderProto = TENSOR_BUNDLE["BundleHeaderProto"]
BundleEntryProto = TENSOR_BUNDLE["BundleEntryProto"]

LITTLE = 0
BIG = 1
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
HEADER_KEY = ""
MAX_SHARDS = 100_000  # TensorFlow numbers shards with five digits; real checkpoints have one to a few hundred
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"

_CRC_MASK_DELTA = 0xA282EAD8
_CRC_PIECE = 1 << 22  # bytes handed to google_crc32c at a time
_READ_PIECE = 1 << 24  # bytes read from a shard at a time
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")


# --- errors ---------------------------------------------------------------------------------

class BundleError(UserError):
    """A checkpoint file cannot be read. ``str(e)`` is one line naming the file; ``path`` is its full path."""

    def __init__(self, message: str, path: Path | str | None = None):
        super().__init__(" ".join(str(message).split()))
        self.path = Path(path) if path is not None else None


class MissingShardError(BundleError):
    """A ``.data`` shard the index refers to does not exist."""


class ChecksumError(BundleError):
    """Bytes on disk do not match the CRC-32C recorded for them."""


class _Corrupt(Exception):
    """Internal: a structural problem found while decoding bytes; turned into a BundleError."""


# --- CRC-32C ---------------------------------------------------------------------------------

def mask_crc(crc: int) -> int:
    """LevelDB's masking of a stored CRC: rotate right by 15 bits, add a constant."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - _CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of any bytes-like ``data`` (google_crc32c takes only bytes, so big buffers go in pieces)."""
    if isinstance(data, bytes):
        return google_crc32c.extend(crc, data)
    view = memoryview(data).cast("B")
    for start in range(0, len(view), _CRC_PIECE):
        crc = google_crc32c.extend(crc, bytes(view[start:start + _CRC_PIECE]))
    return crc


# --- varints and OrderedCode ----------------------------------------------------------------

_varint = functools.partial(protos.read_varint, error=_Corrupt)   # (buf, pos) -> (value, position after)


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ordered_unsigned(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return bytes([len(body)]) + body


def _ordered_signed(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    length = magnitude.bit_length() // 7 + 1
    raw = value % (1 << (8 * length))
    raw ^= ((1 << length) - 1) << (7 * length)
    return raw.to_bytes(length, "big")


_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}
_TO_ESCAPE = re.compile(b"[\x00\xff]")


def _ordered_string(text: bytes) -> bytes:
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + b"\x00\x01"


def encode_tensor_name_slice(name: str, extents) -> bytes:
    """The key a slice of tensor ``name`` is stored under (TF's ``checkpoint::EncodeTensorNameSlice``).

    ``extents`` is one ``(start, length)`` per dimension, ``length`` None for the whole dimension.
    The key is OrderedCode: 0, the name, the rank, then start and length (-1 = whole) per dimension.
    """
    parts = [_ordered_unsigned(0), _ordered_string(name.encode("utf-8", "surrogateescape")),
             _ordered_unsigned(len(extents))]
    for start, length in extents:
        parts.append(_ordered_signed(start))
        parts.append(_ordered_signed(-1 if length is None else length))
    return b"".join(parts)


def decode_tensor_name_slice(key: bytes) -> tuple[str, tuple]:
    """Inverse of :func:`encode_tensor_name_slice`: ``(name, ((start, length-or-None), ...))``."""
    try:
        pos = 0

        def unsigned() -> int:
            nonlocal pos
            n = key[pos]
            value = int.from_bytes(key[pos + 1:pos + 1 + n], "big")
            if len(key) < pos + 1 + n:
                raise _Corrupt("short number")
            pos += 1 + n
            return value

        def signed() -> int:
            nonlocal pos
            first = key[pos]
            negative = not first & 0x80
            bits = (key[pos] << 8) | (key[pos + 1] if pos + 1 < len(key) else 0)
            if negative:
                bits ^= 0xFFFF
            length = 0
            while length < 16 and bits & (0x8000 >> length):
                length += 1
            if not 1 <= length <= 10 or len(key) < pos + length:
                raise _Corrupt("bad signed number")
            raw = int.from_bytes(key[pos:pos + length], "big") ^ (((1 << length) - 1) << (7 * length))
            pos += length
            return raw - (1 << (8 * length)) if negative else raw

        if unsigned() != 0:
            raise _Corrupt("not a slice key")
        raw_name = bytearray()
        while True:  # NUL is written 00 ff, 0xff is written ff 00, and 00 01 ends the string
            b = key[pos]
            if b == 0 or b == 0xFF:
                following = key[pos + 1]
                pos += 2
                if b == 0 and following == 1:
                    break
                if following != (0xFF if b == 0 else 0):
                    raise _Corrupt("bad escape in a slice key")
                raw_name.append(b)
            else:
                raw_name.append(b)
                pos += 1
        rank = unsigned()
        extents = []
        for _ in range(rank):
            start = signed()
            length = signed()
            extents.append((start, None if length == -1 else length))
        if pos != len(key):
            raise _Corrupt("trailing bytes")
        return bytes(raw_name).decode("utf-8", "surrogateescape"), tuple(extents)
    except (IndexError, ValueError) as exc:
        raise _Corrupt(f"malformed slice key {key!r}") from exc


# --- entries ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Entry:
    """One tensor of the bundle, as the index describes it.

    ``crc32c`` is the masked CRC-32C exactly as stored (None when absent);
    ``slices`` lists, for a partitioned tensor, one ``((start, length-or-None), ...)``
    per stored slice; it is empty for an ordinary tensor.
    """

    key: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    slices: tuple = ()

    @property
    def dtype_name(self) -> str:
        name = _DTYPE_NAMES.get(self.dtype)
        if name is None:
            name = _DTYPE_NAMES[self.dtype] = dtypes.name(self.dtype)
        return name

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size


_DTYPE_NAMES: dict[int, str] = {}    # read for every entry of a checkpoint: each dtype's name worked out once


def _decode_shape(buf, pos: int, end: int) -> tuple[int, ...]:
    dims = []
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag == 0x12:  # dim
            n, pos = _varint(buf, pos)
            dim_end = pos + n
            size = 0
            while pos < dim_end:
                t = buf[pos]
                pos += 1
                if t == 0x08:
                    size, pos = _varint(buf, pos)
                else:
                    pos = _skip(buf, pos, t)
            if pos != dim_end:
                raise _Corrupt("dimension overruns its length")
            dims.append(_int64(size))
        else:
            pos = _skip(buf, pos, tag)
    if pos != end:
        raise _Corrupt("shape overruns its length")
    return tuple(dims)


def _decode_slice(buf, pos: int, end: int) -> tuple:
    extents = []
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag == 0x0A:  # extent
            n, pos = _varint(buf, pos)
            ext_end = pos + n
            start, length = 0, None
            while pos < ext_end:
                t = buf[pos]
                pos += 1
                if t == 0x08:
                    start, pos = _varint(buf, pos)
                elif t == 0x10:
                    length, pos = _varint(buf, pos)
                else:
                    pos = _skip(buf, pos, t)
            extents.append((_int64(start), None if length is None else _int64(length)))
        else:
            pos = _skip(buf, pos, tag)
    return tuple(extents)


def _skip(buf, pos: int, tag: int) -> int:
    """Skip one unknown field whose first tag byte is ``tag`` (the tag may continue)."""
    if tag & 0x80:  # a field number above 15: the tag varint goes on
        while buf[pos] & 0x80:
            pos += 1
        pos += 1
    wire = tag & 7
    if wire == 0:
        _, pos = _varint(buf, pos)
    elif wire == 1:
        pos += 8
    elif wire == 2:
        n, pos = _varint(buf, pos)
        pos += n
    elif wire == 5:
        pos += 4
    else:
        raise _Corrupt(f"unsupported protobuf wire type {wire}")
    return pos


def _decode_entry(key: str, buf, pos: int, end: int, shapes: dict) -> Entry:
    """Decode a BundleEntryProto from ``buf[pos:end]`` without building a protobuf object.

    Tuned for speed (it runs once per tensor of a checkpoint): the common fields'
    varints are decoded inline and shapes are cached by their encoded bytes.
    """
    dtype = 0
    shape = ()
    shard_id = offset = size = 0
    crc = None
    slices = ()
    while pos < end:
        tag = buf[pos]
        if tag == 0x20 or tag == 0x28 or tag == 0x08 or tag == 0x18:  # offset, size, dtype, shard_id
            b = buf[pos + 1]
            pos += 2
            if b < 0x80:
                value = b
            else:  # inline varint: offsets of real checkpoints take 3-5 bytes
                value = b & 0x7F
                shift = 7
                while True:
                    b = buf[pos]
                    pos += 1
                    value |= (b & 0x7F) << shift
                    if b < 0x80:
                        break
                    shift += 7
                    if shift > 63:
                        raise _Corrupt(f"entry {key!r} has a varint longer than 10 bytes")
            if tag == 0x20:
                offset = value
            elif tag == 0x28:
                size = value
            elif tag == 0x08:
                dtype = value
            else:
                shard_id = value
        elif tag == 0x35:  # crc32c, fixed32
            crc = int.from_bytes(buf[pos + 1:pos + 5], "little")
            pos += 5
        elif tag == 0x12:  # shape
            n = buf[pos + 1]
            if n < 0x80:
                pos += 2
            else:
                n, pos = _varint(buf, pos + 1)
            raw = buf[pos:pos + n]
            shape = shapes.get(raw)
            if shape is None:
                shape = shapes[raw] = _decode_shape(buf, pos, pos + n)
            pos += n
        elif tag == 0x3A:  # slices
            n, pos = _varint(buf, pos + 1)
            slices += (_decode_slice(buf, pos, pos + n),)
            pos += n
        else:
            pos = _skip(buf, pos + 1, tag)
    if pos != end:
        raise _Corrupt(f"entry {key!r} overruns its length")
    if offset >= 1 << 63 or size >= 1 << 63:
        offset, size = _int64(offset), _int64(size)
    return Entry(key, dtype, shape, shard_id, offset, size, crc, slices)


# --- the table ------------------------------------------------------------------------------

def snappy_decompress(data: bytes) -> bytes:
    """Decode a raw snappy stream (the block compression of older, e.g. TPU-written, indexes).

    The stream is a varint of the decoded length, then elements, each a tag byte whose
    low two bits say: 0 literal (length in the tag or in 1-4 following bytes), 1 copy
    with an 11-bit offset, 2 copy with a 2-byte offset, 3 copy with a 4-byte offset.
    A copy may overlap what it produces (offset < length), repeating the last bytes.
    """
    try:
        expected, pos = _varint(data, 0)
        out = bytearray()
        n = len(data)
        while pos < n:
            tag = data[pos]
            pos += 1
            kind = tag & 3
            if kind == 0:
                length = tag >> 2
                if length >= 60:
                    extra = length - 59
                    if pos + extra > n:
                        raise _Corrupt("snappy literal length runs past the block")
                    length = int.from_bytes(data[pos:pos + extra], "little")
                    pos += extra
                length += 1
                if pos + length > n:
                    raise _Corrupt("snappy literal runs past the block")
                out += data[pos:pos + length]
                pos += length
                continue
            if kind == 1:
                length = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                length = 1 + (tag >> 2)
                if pos + width > n:
                    raise _Corrupt("snappy copy runs past the block")
                offset = int.from_bytes(data[pos:pos + width], "little")
                pos += width
            start = len(out) - offset
            if offset == 0 or start < 0:
                raise _Corrupt("snappy copy refers before the start of the block")
            if offset >= length:
                out += out[start:start + length]
            else:
                pattern = bytes(out[start:])
                out += (pattern * (length // offset + 1))[:length]
            if len(out) > expected:
                raise _Corrupt("snappy block decodes to more bytes than it declares")
        if len(out) != expected:
            raise _Corrupt(f"snappy block decodes to {len(out)} bytes, expected {expected}")
        return bytes(out)
    except IndexError as exc:
        raise _Corrupt("snappy block is truncated") from exc


def _read_block(data: bytes, offset: int, size: int, name: str, path: Path) -> bytes:
    end = offset + size
    if offset < 0 or size < 0 or end + BLOCK_TRAILER_SIZE > len(data) - FOOTER_SIZE:
        raise BundleError(f"{name} is truncated or corrupt: a block at byte {offset} runs past the end of the file",
                          path)
    kind = data[end]
    stored = int.from_bytes(data[end + 1:end + 5], "little")
    actual = google_crc32c.value(data[offset:end + 1])
    if unmask_crc(stored) != actual:
        raise ChecksumError(f"{name} is corrupt: checksum mismatch in the block at byte {offset}", path)
    block = data[offset:end]
    if kind == 0:
        return block
    if kind == 1:
        try:
            return snappy_decompress(block)
        except _Corrupt as exc:
            raise BundleError(f"{name} is corrupt: the snappy-compressed block at byte {offset} "
                              f"does not decode ({exc})", path) from exc
    raise BundleError(f"{name} has a block with unknown compression type {kind}", path)


def _block_items(block: bytes):
    """Yield ``(key, value_start, value_end)`` of every entry of a table block, in order."""
    n = len(block)
    if n < 4:
        raise _Corrupt("block shorter than its restart count")
    num_restarts = int.from_bytes(block[n - 4:], "little")
    limit = n - 4 - 4 * num_restarts
    if limit < 0:
        raise _Corrupt("restart array larger than the block")
    pos = 0
    key = b""
    while pos < limit:
        shared, unshared, vlen, pos = _entry_head(block, pos)
        if shared > len(key):
            raise _Corrupt("key shares more bytes than the previous key has")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        end = pos + vlen
        if end > limit:
            raise _Corrupt("entry runs past the end of its block")
        yield key, pos, end
        pos = end


def _restarts(block: bytes) -> tuple[tuple[int, int, int, int], int]:
    """A table block's first, second and last restart offsets and its number of restarts; where its entries end."""
    n = len(block)
    if n < 4:
        raise _Corrupt("block shorter than its restart count")
    runs = int.from_bytes(block[n - 4:], "little")
    limit = n - 4 - 4 * runs
    if limit < 0 or runs == 0 and limit > 0:
        raise _Corrupt("restart array larger than the block")

    def at(i: int) -> int:
        return int.from_bytes(block[limit + 4 * i:limit + 4 * i + 4], "little")
    if runs == 0:
        return (0, 0, 0, 0), limit
    return (at(0), at(1) if runs > 1 else limit, at(runs - 1), runs), limit


def _entry_head(block: bytes, pos: int) -> tuple[int, int, int, int]:
    """An entry's shared and unshared key lengths, its value length, and where its key bytes start
    (one-byte varints, nearly all of them in an index, read inline)."""
    shared = block[pos]
    if shared < 0x80:
        pos += 1
    else:
        shared, pos = _varint(block, pos)
    unshared = block[pos]
    if unshared < 0x80:
        pos += 1
    else:
        unshared, pos = _varint(block, pos)
    vlen = block[pos]
    if vlen < 0x80:
        pos += 1
    else:
        vlen, pos = _varint(block, pos)
    return shared, unshared, vlen, pos


def _run_length(block: bytes, pos: int, stop: int) -> int:
    """Entries between byte ``pos`` and ``stop`` of a block, read by their lengths only."""
    n = 0
    while pos < stop:
        _, unshared, vlen, pos = _entry_head(block, pos)
        pos += unshared + vlen
        n += 1
    if pos != stop:
        raise _Corrupt("entry runs past its restart point")
    return n


def _block_count(block: bytes, restarts: list[int], limit: int) -> int:
    """Entries of a block: the first run's length times the runs before the last, plus the last run."""
    if limit == 0:
        return 0
    first, second, last, runs = restarts
    if runs == 1:
        return _run_length(block, first, limit)
    if not first < second <= last < limit:
        raise _Corrupt("restart points out of order")
    return _run_length(block, first, second) * (runs - 1) + _run_length(block, last, limit)


def _restart_key(block: bytes, offset: int) -> bytes:
    shared, unshared, _, pos = _entry_head(block, offset)
    if shared:
        raise _Corrupt("a restart point shares bytes with the key before it")
    return block[pos:pos + unshared]


def _seek(block: bytes, restarts: tuple[int, int, int, int], limit: int, key: bytes) -> tuple[int, int] | None:
    """Where the value of ``key`` lies in a block (binary search of the restart points, then one run)."""
    runs = restarts[3]
    if limit == 0:
        return None

    def restart(i: int) -> int:
        return int.from_bytes(block[limit + 4 * i:limit + 4 * i + 4], "little")

    lo, hi = 0, runs - 1
    while lo < hi:              # the last restart whose key is <= key
        mid = (lo + hi + 1) // 2
        if _restart_key(block, restart(mid)) <= key:
            lo = mid
        else:
            hi = mid - 1
    pos = restart(lo)
    stop = restart(lo + 1) if lo + 1 < runs else limit
    current = b""
    while pos < stop:
        shared, unshared, vlen, pos = _entry_head(block, pos)
        current = current[:shared] + block[pos:pos + unshared]
        pos += unshared
        if current == key:
            return pos, pos + vlen
        if current > key:
            return None
        pos += vlen
    return None


def _is_lfs_pointer(head: bytes) -> bool:
    return head.startswith(LFS_SIGNATURE)


def read_table_file(path) -> bytes:
    """The bytes of a sorted-table file, checked to be one: exists, not an LFS pointer, footer and magic."""
    path = Path(path)
    name = path.name
    # a regular file of at most files.INDEX_LIMIT bytes: a FIFO, /dev/zero or a 3 GB sparse file is one line
    data = files.read_bytes(path, what="checkpoint index", limit=files.INDEX_LIMIT, name=name,
                            error=lambda message: BundleError(message, path))
    if _is_lfs_pointer(data[:200]):
        raise BundleError(f"{name} is a Git LFS pointer, not the file; run `git lfs pull`", path)
    if len(data) < FOOTER_SIZE:
        raise BundleError(f"{name} is truncated ({len(data)} bytes) or not a TensorFlow checkpoint index", path)
    if int.from_bytes(data[-8:], "little") != TABLE_MAGIC:
        raise BundleError(f"{name} is not a TensorFlow checkpoint index (wrong magic number; "
                          "truncated or a different format)", path)
    return data


def _data_blocks(data: bytes, name: str, path: Path) -> Iterator[bytes]:
    """The decoded data blocks of a table, in key order, checksums verified."""
    footer = data[-FOOTER_SIZE:]
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    index_block = _read_block(data, index_offset, index_size, name, path)
    for _, start, _ in _block_items(index_block):
        block_offset, pos = _varint(index_block, start)
        block_size, pos = _varint(index_block, pos)
        yield _read_block(data, block_offset, block_size, name, path)


def table_items(path) -> list[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of a sorted-table file, in order, block checksums verified.

    A plain walk of the table for tools and tests; :class:`Bundle` decodes entries on the fly.
    """
    path = Path(path)
    data = read_table_file(path)
    try:
        return [(key, block[start:end])
                for block in _data_blocks(data, path.name, path)
                for key, start, end in _block_items(block)]
    except (_Corrupt, IndexError, ValueError, OverflowError, MemoryError) as exc:
        raise BundleError(f"{path.name} is truncated or corrupt ({exc})", path) from exc


# --- the bundle -----------------------------------------------------------------------------

def split_prefix(path) -> Path:
    """The bundle prefix for a prefix, a ``.index`` path or a ``.data-*`` path."""
    path = Path(path)
    name = path.name
    if name.endswith(".index"):
        return path.with_name(name[: -len(".index")])
    match = _DATA_SUFFIX.search(name)
    if match:
        return path.with_name(name[: match.start()])
    return path


class Bundle:
    """A tensor bundle: the whole index read eagerly; values read from shards on demand.

    ``entries`` holds every tensor TensorFlow lists for the checkpoint (what
    ``tf.train.list_variables`` shows), in index order; a partitioned tensor is one
    entry whose ``slices`` name its parts. The stored parts themselves are in
    ``slice_entries``, keyed by ``(name, extents)``. ``num_shards``, ``endianness``
    (:data:`LITTLE` or :data:`BIG`) and ``version`` (a VersionDef) come from the header.
    """

    def __init__(self, prefix, *, _read: bool = True):
        self.prefix = split_prefix(prefix)
        self.index_path = Path(str(self.prefix) + ".index")
        self.entries: dict[str, Entry] = {}
        self.slice_entries: dict[tuple[str, tuple], Entry] = {}
        self._slice_keys: dict[tuple[str, tuple], bytes] = {}
        self.num_shards = 1
        self.endianness = LITTLE
        self.version = protos.TENSOR["VersionDef"]()
        self.partial = False        # a glance: ``entries`` holds only the keys asked for
        self.count = 0              # entries of the whole index (``len(entries)`` unless partial)
        if _read:
            self._read_index()
            self.count = len(self.entries)

    @classmethod
    def glance(cls, prefix, wanted=(), *, first: bool = False) -> "Bundle":
        """The bundle's header, its entry count and the entries of the ``wanted`` keys, every other entry left
        undecoded: a few hundred microseconds for an index of thousands of entries, where decoding it all
        takes tens of milliseconds (a folder of 200 checkpoints lists each one's count and step this way).

        ``partial`` is True and ``entries`` holds only the wanted keys that are there (with ``first``, only the
        first of them, in the order given, that is there); ``count`` is what ``len(Bundle(prefix).entries)``
        would be. Values of those entries read as usual (``read_raw``). Block checksums are verified as for a
        full read.
        """
        bundle = cls(prefix, _read=False)
        bundle.partial = True
        if Path(bundle.prefix).is_dir() and not bundle.index_path.exists():
            raise BundleError(f"{bundle.prefix.name} is a folder, not a checkpoint prefix", bundle.prefix)
        data = read_table_file(bundle.index_path)
        name = bundle.index_path.name
        try:
            keys = [k.encode("utf-8", "surrogateescape") for k in dict.fromkeys(wanted)]
            bundle._glance_table(data, name, [k for k in keys if k and k[0] != 0], first)  # tensor names only
        except _Corrupt as exc:
            raise BundleError(f"{name} is corrupt: {exc}", bundle.index_path) from exc
        except (IndexError, ValueError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
            raise BundleError(f"{name} is truncated or corrupt ({type(exc).__name__}: {exc})",
                              bundle.index_path) from exc
        return bundle

    def _glance_table(self, data: bytes, name: str, wanted: list[bytes], first: bool) -> None:
        """Count the entries block by block from the restart arrays, decoding only the header and ``wanted``.

        A table block starts a restart run every ``interval`` entries (LevelDB's block builder, 16 in
        TensorFlow's writer), so a block with R restarts holds ``interval * (R - 1)`` entries plus its last
        run: only the first and the last run of each block are walked. The header and any slice keys
        (key byte 0) sort before every tensor name, so they are met, and not counted, at the start.
        """
        path = self.index_path
        footer = data[-FOOTER_SIZE:]
        _, pos = _varint(footer, 0)
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        index_block = _read_block(data, index_offset, index_size, name, path)
        leading = True          # still among the header and slice keys at the start of the table
        header_seen = False
        count = 0
        found: dict[bytes, tuple[bytes, int, int]] = {}
        best = len(wanted)      # with ``first``: the keys from this one on need no seeking
        for _, start, _ in _block_items(index_block):
            block_offset, pos = _varint(index_block, start)
            block_size, pos = _varint(index_block, pos)
            block = _read_block(data, block_offset, block_size, name, path)
            restarts, limit = _restarts(block)
            skipped = 0
            if leading:
                for raw_key, vstart, vend in _block_items(block):
                    if not raw_key:
                        self._parse_header(block[vstart:vend], name, path)
                        header_seen = True
                    elif raw_key[0] != 0:
                        leading = False
                        break
                    skipped += 1
            count += _block_count(block, restarts, limit) - skipped
            for i, key in enumerate(wanted[:best]):
                if key not in found:
                    at = _seek(block, restarts, limit, key)
                    if at is not None:
                        found[key] = (block, *at)
                        if first:       # the keys after this one are not wanted any more
                            best = i
                            break
        for key in wanted:
            if key in found:
                block, vstart, vend = found[key]
                text = key.decode("utf-8", "surrogateescape")
                self.entries[text] = _decode_entry(text, block, vstart, vend, {})
                if first:
                    break
        if not header_seen:
            raise BundleError(f"{name} has no bundle header; not a TensorFlow V2 checkpoint index", path)
        self.count = count

    # -- index ---------------------------------------------------------------------------
    def _read_index(self) -> None:
        if Path(self.prefix).is_dir() and not self.index_path.exists():
            raise BundleError(f"{self.prefix.name} is a folder, not a checkpoint prefix", self.prefix)
        data = read_table_file(self.index_path)
        name = self.index_path.name
        try:
            self._parse_table(data, name, self.index_path)
        except _Corrupt as exc:
            raise BundleError(f"{name} is corrupt: {exc}", self.index_path) from exc
        except (IndexError, ValueError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
            raise BundleError(f"{name} is truncated or corrupt ({type(exc).__name__}: {exc})",
                              self.index_path) from exc

    def _parse_table(self, data: bytes, name: str, path: Path) -> None:
        header_seen = False
        entries = self.entries
        shapes: dict = {}
        previous = None
        for block in _data_blocks(data, name, path):
            for raw_key, start, end in _block_items(block):
                if previous is not None and raw_key <= previous:
                    raise _Corrupt("keys out of order")
                previous = raw_key
                if not raw_key:
                    self._parse_header(block[start:end], name, path)
                    header_seen = True
                elif raw_key[0] == 0:
                    slice_name, extents = decode_tensor_name_slice(raw_key)
                    entry = _decode_entry(slice_name, block, start, end, shapes)
                    self.slice_entries[(slice_name, extents)] = entry
                    self._slice_keys[(slice_name, extents)] = raw_key
                else:
                    key = raw_key.decode("utf-8", "surrogateescape")
                    entries[key] = _decode_entry(key, block, start, end, shapes)
        if not header_seen:
            raise BundleError(f"{name} has no bundle header; not a TensorFlow V2 checkpoint index", path)

    def _parse_header(self, raw: bytes, name: str, path: Path) -> None:
        from google.protobuf.message import DecodeError

        try:
            header = BundleHeaderProto.FromString(raw)
        except DecodeError as exc:
            raise BundleError(f"{name} has an unreadable bundle header", path) from exc
        self.num_shards = header.num_shards
        self.endianness = header.endianness
        self.version = header.version
        if self.num_shards < 1:
            raise BundleError(f"{name} declares {self.num_shards} data shards", path)
        if self.num_shards > MAX_SHARDS:  # whoever lists or checks the shards would loop for hours
            raise BundleError(f"{name} is corrupt: it declares {self.num_shards} data shards, more than any "
                              "real checkpoint", path)
        if self.endianness not in (LITTLE, BIG):
            raise BundleError(f"{name} declares an unknown byte order ({self.endianness})", path)

    # -- shards ----------------------------------------------------------------------------
    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def shard_paths(self) -> list[Path]:
        return [self.shard_path(i) for i in range(self.num_shards)]

    def missing_shards(self) -> list[Path]:
        return [p for p in self.shard_paths() if not p.is_file()]

    def _entry(self, key: str) -> Entry:
        try:
            return self.entries[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in {self.index_path.name}") from None

    def _check_readable(self, entry: Entry, what: str) -> int:
        """The entry's base dtype; a resource, variant or unknown one is refused (without importing NumPy)."""
        base = entry.dtype - dtypes.REF_OFFSET if entry.dtype > dtypes.REF_OFFSET else entry.dtype
        if base in (dtypes.DT_RESOURCE, dtypes.DT_VARIANT):
            raise BundleError(f"{what} in {self.index_path.name} is a {dtypes.tf_name(base)} tensor, "
                              "which is not readable as values", self.index_path)
        if not dtypes.known(base):
            raise BundleError(f"{what} in {self.index_path.name} has dtype {dtypes.tf_name(base)}, "
                              "which detscope cannot read", self.index_path)
        return base

    def _numpy_dtype(self, entry: Entry, what: str) -> np.dtype:
        import numpy as np

        base = self._check_readable(entry, what)
        dt = dtypes.numpy_dtype(base)
        if dt is None:
            raise BundleError(f"{what} in {self.index_path.name} has dtype {dtypes.tf_name(base)}, "
                              "which detscope cannot read", self.index_path)
        if self.endianness == BIG and dt.itemsize > 1 and dt != np.dtype(object):
            dt = dt.newbyteorder(">")
        return dt

    def _check_shard(self, entry: Entry, what: str) -> Path:
        """The shard holding ``entry``, checked to exist and to be long enough."""
        if not 0 <= entry.shard_id < self.num_shards:
            raise BundleError(f"{self.index_path.name} is corrupt: {what} names shard {entry.shard_id} "
                              f"of {self.num_shards}", self.index_path)
        path = self.shard_path(entry.shard_id)
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise MissingShardError(f"{path.name} is missing; names and shapes are still browsable", path) from exc
        except OSError as exc:
            raise BundleError(f"{path.name} cannot be read: {exc.strerror or exc}", path) from exc
        kind = files.kind_of(st.st_mode)
        if kind is not None:  # a FIFO or a device would never end a read
            raise BundleError(f"{path.name} is {kind}, not a checkpoint data shard", path)
        length = st.st_size
        if any(d < 0 for d in entry.shape):
            raise BundleError(f"{self.index_path.name} is corrupt: {what} has shape {list(entry.shape)}",
                              self.index_path)
        if entry.offset < 0 or entry.size < 0:
            raise BundleError(f"{self.index_path.name} is corrupt: {what} has a negative byte range",
                              self.index_path)
        if length < entry.offset + entry.size:
            if length < 1024:
                if _is_lfs_pointer(files.head(path, len(LFS_SIGNATURE)) or b""):
                    raise BundleError(f"{path.name} is a Git LFS pointer, not the file; run `git lfs pull`",
                                      path)
            raise BundleError(f"{path.name} is truncated: {what} needs bytes {entry.offset}..."
                              f"{entry.offset + entry.size} but the file has {length}", path)
        return path

    def _read_bytes(self, entry: Entry, what: str) -> tuple[bytearray, Path]:
        path = self._check_shard(entry, what)

        def error(message):
            return BundleError(message, path)
        files.check_memory(entry.size, f"{what} in {path.name}", error)
        try:
            buf = bytearray(entry.size)
        except MemoryError:
            raise error(f"{what} in {path.name} ({fmt_bytes(entry.size)}) does not fit in memory") from None
        view = memoryview(buf)
        got = 0
        try:
            with files.open_regular(path, what="checkpoint data shard", name=path.name, error=error) as f:
                f.seek(entry.offset)
                while got < entry.size:  # in bounded pieces: one huge read can fail or stall on some systems
                    n = f.readinto(view[got:got + _READ_PIECE])
                    if not n:
                        break
                    got += n
        except OSError as exc:
            raise BundleError(f"{path.name} cannot be read: {exc.strerror or exc}", path) from exc
        if got != entry.size:
            raise BundleError(f"{path.name} is truncated: {what} is short by {entry.size - got} bytes", path)
        return buf, path

    def _verify(self, entry: Entry, crc: int, path: Path, what: str) -> None:
        if entry.crc32c is not None and unmask_crc(entry.crc32c) != crc:
            raise ChecksumError(f"{path.name} is corrupt: checksum mismatch for {what} "
                                f"(bytes {entry.offset}...{entry.offset + entry.size})", path)

    # -- values ----------------------------------------------------------------------------
    def read(self, key: str) -> np.ndarray:
        """The tensor's values, checked against their CRC-32C; strings as an object array of bytes."""
        entry = self._entry(key)
        if entry.slices:
            return self._assemble(entry)
        return self._read_entry(entry, key)

    def _read_entry(self, entry: Entry, what: str) -> np.ndarray:
        import numpy as np

        dt = self._numpy_dtype(entry, what)
        count = entry.num_elements
        if count < 0 or any(d < 0 for d in entry.shape):
            raise BundleError(f"{self.index_path.name} is corrupt: {what} has shape {list(entry.shape)}",
                              self.index_path)
        if dt == np.dtype(object):
            if count and count + 4 > entry.size:  # each string takes a byte of length at least, then a CRC
                raise BundleError(f"{self.index_path.name} is corrupt: {what} claims {count} strings in "
                                  f"{entry.size} bytes", self.index_path)
            return self._read_strings(entry, what, count)
        if entry.size != count * dt.itemsize:
            raise BundleError(f"{self.index_path.name} is corrupt: {what} is {entry.size} bytes but "
                              f"{count} x {dt.name} needs {count * dt.itemsize}", self.index_path)
        if count == 0:
            return np.zeros(entry.shape, dtype=dt.newbyteorder("="))
        buf, path = self._read_bytes(entry, what)
        self._verify(entry, crc32c(buf), path, what)
        array = np.frombuffer(buf, dtype=dt).reshape(entry.shape)
        if dt.byteorder == ">":
            array = array.byteswap().view(dt.newbyteorder("="))
        return array

    def _read_strings(self, entry: Entry, what: str, count: int) -> np.ndarray:
        """Decode a DT_STRING tensor: varint64 lengths, masked CRC of the lengths, then the bytes.

        The entry's CRC covers each length as a fixed-width integer in the writer's byte
        order (uint32, or uint64 for a string of 4 GiB or more), then the 4 stored bytes of
        the lengths checksum, then all string bytes.
        """
        import numpy as np

        result = np.empty(count, dtype=object)
        for i, value in enumerate(self._string_values(entry, what, count)):
            result[i] = value
        return result.reshape(entry.shape)

    def _string_values(self, entry: Entry, what: str, count: int) -> list[bytes]:
        """The strings of a string tensor, CRC-checked (layout as in :meth:`_read_strings`)."""
        if count == 0:
            return []
        buf, path = self._read_bytes(entry, what)
        order = "big" if self.endianness == BIG else "little"
        try:
            lengths = []
            pos = 0
            crc = 0
            for _ in range(count):
                n, pos = _varint(buf, pos)
                lengths.append(n)
                crc = google_crc32c.extend(crc, n.to_bytes(4 if n <= 0xFFFFFFFF else 8, order))
            stored = bytes(buf[pos:pos + 4])
            if len(stored) != 4:
                raise _Corrupt("lengths checksum missing")
            pos += 4
        except (IndexError, _Corrupt) as exc:
            raise BundleError(f"{path.name} is corrupt: the string lengths of {what} are unreadable", path) from exc
        if unmask_crc(int.from_bytes(stored, order)) != crc:
            raise ChecksumError(f"{path.name} is corrupt: checksum mismatch in the string lengths of {what}", path)
        if pos + sum(lengths) != len(buf):
            raise BundleError(f"{path.name} is corrupt: the strings of {what} do not fill its "
                              f"{entry.size} bytes", path)
        crc = google_crc32c.extend(crc, stored)
        crc = crc32c(memoryview(buf)[pos:], crc)
        self._verify(entry, crc, path, what)
        view = bytes(buf)
        values = []
        for n in lengths:
            values.append(view[pos:pos + n])
            pos += n
        return values

    def _assemble(self, entry: Entry) -> np.ndarray:
        """Build a partitioned tensor from its slice entries."""
        import numpy as np

        key = entry.key
        dt = self._numpy_dtype(entry, key).newbyteorder("=")
        if any(d < 0 for d in entry.shape):
            raise BundleError(f"{self.index_path.name} is corrupt: {key} has shape {list(entry.shape)}",
                              self.index_path)
        nbytes = entry.num_elements * dt.itemsize
        files.check_memory(nbytes, f"{key} in {self.index_path.name}",
                           lambda message: BundleError(message, self.index_path))
        try:
            full = np.zeros(entry.shape, dtype=dt) if dt != np.dtype(object) else np.empty(entry.shape, dtype=object)
        except (MemoryError, ValueError) as exc:
            raise BundleError(f"{self.index_path.name}: {key} of shape {list(entry.shape)} cannot be held in "
                              f"memory ({fmt_bytes(nbytes)})", self.index_path) from exc
        covered = 0
        for extents in entry.slices:
            if len(extents) != len(entry.shape):
                raise BundleError(f"{self.index_path.name} is corrupt: slice {_slice_text(extents)} of {key} "
                                  f"does not match its shape {list(entry.shape)}", self.index_path)
            part = self.slice_entries.get((key, extents))
            if part is None:
                raise BundleError(f"{self.index_path.name} lists slice {_slice_text(extents)} of {key} "
                                  "but does not hold it", self.index_path)
            where = tuple(slice(start, None if length is None else start + length)
                          for start, length in extents)
            target = full[where]
            if part.shape != target.shape or part.dtype != entry.dtype:
                raise BundleError(f"{self.index_path.name} is corrupt: slice {_slice_text(extents)} of {key} "
                                  f"has shape {list(part.shape)}", self.index_path)
            full[where] = self._read_entry(part, f"{key}[{_slice_text(extents)}]")
            covered += target.size
        if covered != full.size:
            raise BundleError(f"{self.index_path.name}: the slices of {key} cover {covered} of "
                              f"{full.size} values; cannot assemble it", self.index_path)
        return full

    def read_raw(self, key: str) -> bytes:
        """The value's exact bytes, CRC-checked.

        Numeric tensors: the bytes as stored. A string tensor of one element (such as
        ``_CHECKPOINTABLE_OBJECT_GRAPH``): that string's bytes.
        """
        entry = self._entry(key)
        if entry.slices:
            raise BundleError(f"{key} in {self.index_path.name} is partitioned into slices; "
                              "it has no single stored byte range", self.index_path)
        if entry.dtype == dtypes.DT_STRING:
            if entry.num_elements != 1:
                raise BundleError(f"{key} in {self.index_path.name} holds {entry.num_elements} strings, "
                                  "not one value", self.index_path)
            return self._string_values(entry, key, 1)[0]
        self._check_readable(entry, key)  # refuses resource and variant tensors; NumPy is not needed for bytes
        buf, path = self._read_bytes(entry, key)
        self._verify(entry, crc32c(buf), path, key)
        return bytes(buf)

    def iter_chunks(self, key: str, chunk_elements: int = 1 << 22) -> Iterator[np.ndarray]:
        """The tensor's values, flattened, in chunks of at most ``chunk_elements``.

        Numeric values are read from the shard one chunk at a time (memory and address space
        stay bounded whatever size the entry claims); the CRC is accumulated on the way and a
        mismatch raises ChecksumError after the last chunk. Strings and partitioned tensors
        are read whole, then chunked.
        """
        import numpy as np

        if chunk_elements < 1:
            raise ValueError("chunk_elements must be positive")
        entry = self._entry(key)
        dt = self._numpy_dtype(entry, key)
        if entry.slices or dt == np.dtype(object):
            flat = self.read(key).reshape(-1)
            for start in range(0, flat.size, chunk_elements):
                yield flat[start:start + chunk_elements]
            return
        count = entry.num_elements
        if count < 0 or any(d < 0 for d in entry.shape):
            raise BundleError(f"{self.index_path.name} is corrupt: {key} has shape {list(entry.shape)}",
                              self.index_path)
        if entry.size != count * dt.itemsize:
            raise BundleError(f"{self.index_path.name} is corrupt: {key} is {entry.size} bytes but "
                              f"{count} x {dt.name} needs {count * dt.itemsize}", self.index_path)
        if count == 0:
            return
        path = self._check_shard(entry, key)
        crc = 0
        with files.open_regular(path, what="checkpoint data shard", name=path.name,
                                error=lambda message: BundleError(message, path)) as f:
            try:
                f.seek(entry.offset)
                for start in range(0, count, chunk_elements):
                    want = min(chunk_elements, count - start) * dt.itemsize
                    raw = f.read(want)
                    if len(raw) != want:
                        raise BundleError(f"{path.name} is truncated: {key} ends before byte "
                                          f"{entry.offset + entry.size}", path)
                    crc = google_crc32c.extend(crc, raw)
                    chunk = np.frombuffer(raw, dtype=dt)
                    if dt.byteorder == ">":
                        chunk = chunk.byteswap().view(dt.newbyteorder("="))
                    yield chunk
            except OSError as exc:
                raise BundleError(f"{path.name} cannot be read: {exc.strerror or exc}", path) from exc
        self._verify(entry, crc, path, key)

    # -- conveniences ------------------------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Bundle({str(self.prefix)!r}, {len(self.entries)} entries, {self.num_shards} shard(s))"


def _slice_text(extents) -> str:
    """TF's slice spec spelling: ``start,length`` per dimension, ``-`` for a whole one."""
    return ":".join("-" if length is None else f"{start},{length}" for start, length in extents)
