"""TFRecord files and ``tf.train.Example`` messages, read without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64  length            (little-endian)
    uint32  masked CRC-32C of the 8 length bytes
    bytes   data[length]
    uint32  masked CRC-32C of the data

with the same CRC masking as tensor bundles (:func:`~detscope.core.formats.bundle.mask_crc`).
Files written with ``GZIP`` compression are recognised by their gzip magic and read through
:mod:`gzip`. The Object Detection API's datasets hold one serialised ``tf.train.Example`` per
record; :data:`EXAMPLE` declares that message (``tensorflow/core/example/{example,feature}.proto``)
with the project's schema builder, and :func:`example_features` turns one into plain Python lists.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

from . import protos
from .bundle import crc32c, mask_crc
from ..base.errors import UserError

# ``oneof kind`` in feature.proto: declared as three optional fields (the wire format is the same).
# The numeric lists are ``[packed = true]`` there; protobuf parses packed and unpacked alike.
EXAMPLE = protos.schema("example", [
    protos.message("BytesList", protos.field("value", 1, "bytes", repeated=True)),
    protos.message("FloatList", protos.field("value", 1, "float", repeated=True)),
    protos.message("Int64List", protos.field("value", 1, "int64", repeated=True)),
    protos.message("Feature",
                   protos.field("bytes_list", 1, "BytesList"),
                   protos.field("float_list", 2, "FloatList"),
                   protos.field("int64_list", 3, "Int64List")),
    protos.message("Features", protos.map_field("feature", 1, "string", "Feature")),
    protos.message("Example", protos.field("features", 1, "Features")),
])

Example = EXAMPLE["Example"]

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
GZIP_MAGIC = b"\x1f\x8b"


class TFRecordError(UserError):
    """A TFRecord file that cannot be read; one line naming the file and the record."""


def _open(path: Path) -> BinaryIO:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise TFRecordError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TFRecordError(f"{path}: is a folder, not a TFRecord file") from None
    except OSError as exc:
        raise TFRecordError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    head = f.read(2)
    f.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")
    return f


def read_records(path: str | Path, *, check_crc: bool = True) -> Iterator[bytes]:
    """Yield each record's bytes; a :class:`TFRecordError` names the record (counted from 1) and
    the byte offset when the framing or a checksum is wrong."""
    path = Path(path)
    f = _open(path)
    with f:
        n = 0
        offset = 0
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return
            n += 1
            where = f"{path}: record {n} (byte {offset})"
            if len(header) < _HEADER.size:
                raise TFRecordError(f"{where}: the file ends inside a record header (truncated?)")
            length, length_crc = _HEADER.unpack(header)
            if check_crc and mask_crc(crc32c(header[:8])) != length_crc:
                raise TFRecordError(f"{where}: the length's checksum is wrong (not a TFRecord file, or damaged)")
            data = f.read(length)
            footer = f.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                raise TFRecordError(f"{where}: the file ends inside the record ({length} bytes announced; "
                                    f"truncated?)")
            if check_crc and mask_crc(crc32c(data)) != _FOOTER.unpack(footer)[0]:
                raise TFRecordError(f"{where}: the data's checksum is wrong (damaged file)")
            offset += _HEADER.size + length + _FOOTER.size
            yield data


def write_records(path: str | Path, records) -> int:
    """Write ``records`` (bytes each) as an uncompressed TFRecord file; returns how many."""
    n = 0
    with Path(path).open("wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", mask_crc(crc32c(length))))
            f.write(data + struct.pack("<I", mask_crc(crc32c(data))))
            n += 1
    return n


def looks_like_tfrecord(path: str | Path) -> bool:
    """True when the file starts with a TFRecord frame whose length checksum holds (or is gzip)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(_HEADER.size)
    except OSError:
        return False
    if head[:2] == GZIP_MAGIC:
        return True
    if len(head) < _HEADER.size:
        return False
    length, length_crc = _HEADER.unpack(head)
    return mask_crc(crc32c(head[:8])) == length_crc


def example_features(data: bytes) -> dict[str, list]:
    """A serialised ``tf.train.Example`` as ``{key: [values]}`` (bytes, floats or ints).

    Raises ``ValueError`` when ``data`` is not an Example (the caller names the record).
    """
    try:
        ex = Example.FromString(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(f"not a tf.train.Example ({exc})") from None
    out: dict[str, list] = {}
    for key, feature in ex.features.feature.items():
        if feature.HasField("bytes_list"):
            out[key] = list(feature.bytes_list.value)
        elif feature.HasField("float_list"):
            out[key] = list(feature.float_list.value)
        elif feature.HasField("int64_list"):
            out[key] = list(feature.int64_list.value)
        else:
            out[key] = []
    return out
