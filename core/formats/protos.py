"""The project's own protobuf message definitions for TensorFlow's file formats.

TensorFlow's ``.proto`` files are public and their field numbers are stable, so
detscope declares the subset it reads here and builds message classes with the
protobuf runtime: no ``import tensorflow``, no generated code to keep in step
with the protobuf version.

A schema is plain Python data::

    TENSOR = schema("tensor", [
        message("TensorShapeProto",
                field("dim", 2, "Dim", repeated=True),
                field("unknown_rank", 3, "bool"),
                nested=[message("Dim", field("size", 1, "int64"), field("name", 2, "string"))]),
    ])
    TENSOR["TensorShapeProto"].FromString(data)

Enums are declared as ``int32`` (the wire format is the same varint); map fields
with :func:`map_field`. Schemas are proto2 so presence (``HasField``) is kept. Every schema lives in one private descriptor pool under
the package ``detscope.tf`` so it never collides with TensorFlow's own classes
when both are loaded in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "detscope.tf"
POOL = descriptor_pool.DescriptorPool()

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "fixed64": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
    "fixed32": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "sint32": descriptor_pb2.FieldDescriptorProto.TYPE_SINT32,
    "sint64": descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
}


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    type: str
    repeated: bool = False


@dataclass(frozen=True)
class Message:
    name: str
    fields: tuple[Field, ...]
    nested: tuple["Message", ...] = ()
    map_entry: bool = False


def field(name: str, number: int, type_: str, *, repeated: bool = False) -> Field:
    """One field: ``type_`` is a scalar name or a message name.

    Message names resolve like protobuf's own scoping: a bare name is looked up in
    the enclosing messages first, then at the package level; ``Outer.Inner``
    names a nested message from anywhere.
    """
    return Field(name, number, type_, repeated)


def map_field(name: str, number: int, key: str, value: str) -> tuple[Field, Message]:
    """A ``map<key, value>`` field: the field plus its nested entry message.

    Pass the returned pair's message in the owner's ``nested`` and the field in
    its fields; :func:`message` accepts the pair directly and does both.
    """
    entry = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    entry_msg = Message(entry, (Field("key", 1, key), Field("value", 2, value)), map_entry=True)
    return Field(name, number, entry, repeated=True), entry_msg


def message(name: str, *fields: Field | tuple[Field, Message], nested: list[Message] | tuple = ()) -> Message:
    own: list[Field] = []
    inner: list[Message] = list(nested)
    for item in fields:
        if isinstance(item, tuple):
            own.append(item[0])
            inner.append(item[1])
        else:
            own.append(item)
    return Message(name, tuple(own), tuple(inner))


def _all_names(messages, prefix: str) -> set[str]:
    names = set()
    for m in messages:
        full = f"{prefix}.{m.name}"
        names.add(full)
        names |= _all_names(m.nested, full)
    return names


def _resolve(type_name: str, scope: str, known: set[str]) -> str:
    # Walk outwards from the innermost scope, as protoc does.
    parts = scope.split(".")
    while parts:
        candidate = ".".join(parts + [type_name])
        if candidate in known:
            return "." + candidate
        parts.pop()
    if type_name in known:
        return "." + type_name
    raise KeyError(f"unknown message type {type_name!r} in scope {scope}")


def _to_descriptor(m: Message, scope: str, known: set[str]) -> descriptor_pb2.DescriptorProto:
    full = f"{scope}.{m.name}"
    d = descriptor_pb2.DescriptorProto(name=m.name)
    if m.map_entry:
        d.options.map_entry = True
    for f in m.fields:
        fd = d.field.add(name=f.name, number=f.number, json_name=f.name)
        fd.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if f.repeated
                    else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
        if f.type in _SCALARS:
            fd.type = _SCALARS[f.type]
        else:
            fd.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
            fd.type_name = _resolve(f.type, full, known)
    for inner in m.nested:
        d.nested_type.append(_to_descriptor(inner, full, known))
    return d


_KNOWN: set[str] = set()


def schema(file: str, messages: list[Message], *, deps: tuple[str, ...] = (), syntax: str = "proto2") -> dict:
    """Register ``messages`` as ``detscope/<file>.proto`` and return ``{name: class}``.

    ``deps`` names earlier schema files whose messages these refer to. Nested
    messages are reachable as ``"Outer.Inner"`` keys too.
    """
    own = _all_names(messages, PACKAGE)
    known = _KNOWN | own
    fdp = descriptor_pb2.FileDescriptorProto(name=f"detscope/{file}.proto", package=PACKAGE, syntax=syntax)
    fdp.dependency.extend(f"detscope/{d}.proto" for d in deps)
    for m in messages:
        fdp.message_type.append(_to_descriptor(m, PACKAGE, known))
    POOL.Add(fdp)
    _KNOWN.update(own)
    classes = {}
    for full in sorted(own):
        short = full[len(PACKAGE) + 1:]
        classes[short] = message_factory.GetMessageClass(POOL.FindMessageTypeByName(full))
    return classes


# --- shared by the bundle, object-graph and SavedModel readers -------------------------------

TENSOR = schema("tensor", [
    message("TensorShapeProto",
            field("dim", 2, "Dim", repeated=True),
            field("unknown_rank", 3, "bool"),
            nested=[message("Dim", field("size", 1, "int64"), field("name", 2, "string"))]),
    message("TensorSliceProto",
            field("extent", 1, "Extent", repeated=True),
            # ``length`` is a oneof in TensorFlow's file; absent means "the whole dimension".
            nested=[message("Extent", field("start", 1, "int64"), field("length", 2, "int64"))]),
    message("VersionDef",
            field("producer", 1, "int32"),
            field("min_consumer", 2, "int32"),
            field("bad_consumers", 3, "int32", repeated=True)),
])


# --- the wire format, walked without decoding -------------------------------------------------

class WireError(ValueError):
    """Bytes that do not walk as protobuf fields (truncated, a group, a field number 0)."""


def split_fields(data: bytes, start: int, end: int, wanted=frozenset(), runs_of: int = 0, *,
                 max_bytes: int = 1 << 20, max_count: int = 4096) -> tuple[list, list, list]:
    """The fields of the message serialized in ``data[start:end]``, walked without decoding them.

    Returns ``(runs, found, rest)``:

    * ``runs``: ``(start, end)`` byte ranges of consecutive whole fields numbered ``runs_of`` (length-delimited),
      each at most ``max_count`` fields and ended by the field that takes it to ``max_bytes``, so that each
      range is the serialization of a message holding only those elements and decodes in one short call;
    * ``found``: ``(number, value start, value end)`` of each length-delimited field numbered in ``wanted``;
    * ``rest``: ``(start, end)`` ranges of every other field, whole (adjacent ones merged), which decode as the
      message without the fields above, cut as the runs are.

    Decoding a message's fields one range at a time is decoding it whole: protobuf merges what it reads.
    Raises :class:`WireError` where the bytes do not walk.
    """
    runs: list[tuple[int, int]] = []
    found: list[tuple[int, int, int]] = []
    rest: list[list[int]] = []
    # What each one-byte tag is: 1 the runs' field, 2 another length-delimited field to pass over, 0 anything
    # else (walked field by field). Node lists have hundreds of thousands of fields: they take the tight loops.
    kinds = bytearray(256)
    for number in range(1, 16):
        tag = (number << 3) | 2
        kinds[tag] = 1 if number == runs_of else 0 if number in wanted else 2
    pos = start
    try:
        while pos < end:
            kind = kinds[data[pos]]
            if kind:
                first = pos
                limit = min(pos + max_bytes, end)
                count = 0
                while pos < limit and kinds[data[pos]] == kind and count < max_count:
                    n = data[pos + 1]
                    if n < 0x80:
                        pos += 2 + n
                    else:
                        n2 = data[pos + 2]
                        if n2 < 0x80:
                            pos += 3 + ((n & 0x7F) | (n2 << 7))
                        else:
                            n, pos = _varint(data, pos + 1)
                            pos += n
                    count += kind == 1
                if pos > end:
                    raise WireError("a field runs past the end of its message")
                if kind == 1:
                    runs.append((first, pos))
                elif rest and rest[-1][1] == first and pos - rest[-1][0] <= max_bytes:
                    rest[-1][1] = pos
                else:
                    rest.append([first, pos])
                continue
            fstart = pos
            tag, pos = _varint(data, pos)
            if pos - fstart == 2 and tag & 7 == 2 and tag >> 3 != runs_of and tag >> 3 not in wanted:
                # a length-delimited field numbered 16 to 2047 (a function's control outputs, one per
                # variable for the saver's): it and the same fields after it, passed over at once
                t0, t1 = data[fstart], data[fstart + 1]
                pos = fstart
                limit = min(pos + max_bytes, end)
                while pos < limit and data[pos] == t0 and data[pos + 1] == t1:
                    n = data[pos + 2]
                    if n < 0x80:
                        pos += 3 + n
                    else:
                        n, pos = _varint(data, pos + 2)
                        pos += n
                if pos > end:
                    raise WireError("a field runs past the end of its message")
                if rest and rest[-1][1] == fstart and pos - rest[-1][0] <= max_bytes:
                    rest[-1][1] = pos
                else:
                    rest.append([fstart, pos])
                continue
            wire = tag & 7
            number = tag >> 3
            if number == 0:
                raise WireError("field number 0")
            vstart = pos
            if wire == 2:
                n, pos = _varint(data, pos)
                vstart = pos
                pos += n
            elif wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise WireError(f"wire type {wire}")
            if pos > end:
                raise WireError("a field runs past the end of its message")
            if wire == 2 and number == runs_of:   # a tag of two bytes or more (or written long)
                runs.append((fstart, pos))
            elif wire == 2 and number in wanted:
                found.append((number, vstart, pos))
            elif rest and rest[-1][1] == fstart and pos - rest[-1][0] <= max_bytes:
                rest[-1][1] = pos
            else:
                rest.append([fstart, pos])
    except IndexError:
        raise WireError("truncated") from None
    return runs, found, [(a, b) for a, b in rest]


def read_varint(data, pos: int, error: type[Exception] = WireError) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it; ``error`` for one longer than 10 bytes (an
    ``IndexError`` where the bytes end first)."""
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise error("a varint longer than 10 bytes")


_varint = read_varint
