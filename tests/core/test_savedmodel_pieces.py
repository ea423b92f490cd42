"""saved_model.pb read a piece at a time: the wire walk, protobuf's merge rules, names that are not UTF-8.

The demo's SavedModel, changed with the project's own message classes (no TensorFlow), stands in for every
SavedModel: the piecewise read must give what one decode of the whole file gives, and refuse what it refuses.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from detscope.core.formats import protos
from detscope.core.formats import savedmodel as sm

REPO = Path(__file__).resolve().parents[2]
DEMO_PB = REPO / "resources" / "demo" / "saved_model" / "saved_model.pb"
GraphDef = sm.MESSAGES["GraphDef"]
NodeDef = sm.MESSAGES["NodeDef"]


def _facts(mg) -> tuple:
    tree = mg.object_graph
    objects = [(n.node_id, n.path, n.kind, n.identifier, n.variable, n.concrete_functions, n.aliases,
                n.registered_name, [c.node_id for c in n.children]) for n in tree.nodes] if tree is not None else None
    return (mg.tags, mg.tensorflow_version, mg.signatures, mg.op_counts, list(mg.op_counts), mg.function_names,
            mg.graph_node_count, mg.function_node_count, mg.has_variables, mg.has_saver, mg.asset_files,
            mg.init_op, mg.effects, objects, tree.concrete_functions if tree is not None else None)


def _whole(data: bytes) -> list[tuple]:
    """What one decode of the whole file gives, every node walked in Python."""
    return [_facts(sm._meta_graph(m)) for m in sm.SavedModelProto.FromString(data).meta_graphs]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, written by hand."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


# --- the walk ----------------------------------------------------------------------------------------------

def test_node_lists_are_cut_into_whole_pieces_within_the_limits():
    graph = GraphDef(node=[NodeDef(name=f"n{i}" * (1 + i % 40), op="Identity", input=[f"x{i}"]) for i in range(300)],
                     version=7)
    graph.library.function.add().signature.name = "f"
    data = b"xx" + graph.SerializeToString() + b"yy"       # the message inside a bigger buffer
    start, end = 2, len(data) - 2
    runs, found, rest = protos.split_fields(data, start, end, {2}, 1, max_bytes=500, max_count=7)
    assert len(runs) > 300 // 7
    nodes = []
    for a, b in runs:
        piece = GraphDef.FromString(data[a:b])
        last = len(piece.node[-1].SerializeToString()) + 3
        assert 1 <= len(piece.node) <= 7 and b - a - last < 500
        assert not piece.HasField("library") and not piece.HasField("version")
        nodes.extend(piece.node)
    assert nodes == list(graph.node)
    assert [number for number, _, _ in found] == [2]
    assert GraphDef.FromString(b"".join(data[a:b] for a, b in rest)).version == 7
    # every byte is in exactly one of them
    spans = sorted(runs + rest + [(a - 2, b) for _, a, b in found])   # a short library: a 2-byte field head
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(x[1] == y[0] for x, y in zip(spans, spans[1:]))


def test_fields_numbered_above_15_and_long_written_tags_are_walked_too():
    data = _field(20, b"abc") + _field(3, b"node") + b"\x9a\x00" + bytes([4]) + b"long" + _field(3, b"again")
    runs, found, rest = protos.split_fields(data, 0, len(data), {20}, 3)
    assert [data[v:e] for _, v, e in found] == [b"abc"]
    assert b"".join(data[a:b] for a, b in runs) == data[6:]       # field 3 three times, one tag written long
    assert rest == []
    # fields numbered 16 and up passed over together (a function's control outputs), cut as runs are
    many = b"".join(_field(20, b"out%d" % i) for i in range(100)) + _field(1, b"name")
    runs, found, rest = protos.split_fields(many, 0, len(many), {1}, 3, max_bytes=64)
    assert runs == [] and [many[v:e] for _, v, e in found] == [b"name"]
    assert b"".join(many[a:b] for a, b in rest) == many[:-6] and all(b - a < 64 + 8 for a, b in rest)
    assert all(x[1] == y[0] for x, y in zip(rest, rest[1:])) and len(rest) > 1


@pytest.mark.parametrize("data", [
    _field(1, b"abcdef")[:-2],              # truncated
    b"\x0b\x0c",                            # a group: not walked (decoded whole instead)
    b"\x02\x01a",                           # field number 0
    b"\x08" + b"\xff" * 11,                 # a varint longer than 10 bytes
])
def test_bytes_that_do_not_walk_are_refused(data):
    with pytest.raises(protos.WireError):
        protos.split_fields(data, 0, len(data), {2}, 1)


# --- protobuf's own rules, kept ----------------------------------------------------------------------------

def _demo() -> tuple[bytes, object]:
    data = DEMO_PB.read_bytes()
    return data, sm.SavedModelProto.FromString(data)


def test_a_graph_and_an_object_graph_given_in_several_fields_merge_as_protobuf_merges_them():
    data, proto = _demo()
    meta = proto.meta_graphs[0]
    graph, objects = meta.graph_def, meta.object_graph_def
    half = len(graph.node) // 2
    g1 = GraphDef(node=graph.node[:half])
    g2 = GraphDef(node=graph.node[half:], library=graph.library, versions=graph.versions)
    o1 = type(objects)(nodes=objects.nodes[:10])
    o2 = type(objects)(nodes=objects.nodes[10:])
    for key in objects.concrete_functions:
        o2.concrete_functions[key].CopyFrom(objects.concrete_functions[key])
    bare = type(meta)()
    bare.CopyFrom(meta)
    bare.ClearField("graph_def")
    bare.ClearField("object_graph_def")
    parts = [_field(2, g1.SerializeToString()), _field(7, o1.SerializeToString()), bare.SerializeToString(),
             _field(2, g2.SerializeToString()), _field(7, o2.SerializeToString())]
    merged = _field(2, b"".join(parts)) + b"\x08\x01"          # the schema version after the meta graph
    assert _whole(merged) == _whole(data)
    version, metas = sm._read_parts(merged, "saved_model.pb")
    assert version == 1 and [_facts(mg) for mg in metas] == _whole(data)


def test_a_field_the_walk_cannot_take_is_decoded_whole(tmp_path):
    data, proto = _demo()
    meta = proto.meta_graphs[0].SerializeToString() + b"\xcb\x06\xcc\x06"   # an unknown group, field 105
    odd = _field(2, meta) + b"\x08\x01"
    with pytest.raises(protos.WireError):
        sm._read_parts(odd, "saved_model.pb")
    folder = tmp_path / "saved_model"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(odd)
    assert [_facts(mg) for mg in sm.read_saved_model(folder).meta_graphs] == _whole(data)


def test_a_damaged_piece_is_one_line_naming_the_file(tmp_path):
    data, proto = _demo()
    graph = proto.meta_graphs[0].graph_def
    fn = graph.library.function[0]
    broken = _field(3, b"\x12\x05ab")                           # a node whose op runs past its end
    fn_bytes = fn.SerializeToString() + broken
    library = b"".join(_field(1, f.SerializeToString()) for f in graph.library.function[1:]) + _field(1, fn_bytes)
    graph_bytes = b"".join(_field(1, n.SerializeToString()) for n in graph.node) + _field(2, library)
    bare = type(proto.meta_graphs[0])()
    bare.CopyFrom(proto.meta_graphs[0])
    bare.ClearField("graph_def")
    folder = tmp_path / "saved_model"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(_field(2, bare.SerializeToString() + _field(2, graph_bytes)))
    with pytest.raises(sm.SavedModelError) as err:
        sm.read_saved_model(folder)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(folder / "saved_model.pb"))
    assert "truncated or not a SavedModel" in message


# --- names that are not UTF-8 ------------------------------------------------------------------------------

MARK = "QQ-a-marked-name-QQ"


def _objects_of(meta, kind):
    return next(o for o in meta.object_graph_def.nodes if o.HasField(kind))


def _add_writer(meta):
    fn = meta.graph_def.library.function[0]
    fn.node_def.add(name=MARK, op="WriteFile", input=["a", "b"])


POISON = {
    "an object's identifier": lambda m: setattr(_objects_of(m, "user_object").user_object, "identifier", MARK),
    "a variable's name": lambda m: setattr(_objects_of(m, "variable").variable, "name", MARK),
    "a registered name": lambda m: setattr(m.object_graph_def.nodes[3], "registered_name", MARK),
    "a concrete function": lambda m: _objects_of(m, "function").function.concrete_functions.append(MARK),
    "an object's child": lambda m: setattr(m.object_graph_def.nodes[0].children[0], "local_name", MARK),
    "a library function": lambda m: setattr(m.graph_def.library.function[0].signature, "name", MARK),
    "a signature key": lambda m: m.signature_def[MARK].CopyFrom(m.signature_def["serving_default"]),
    "a signature's tensor": lambda m: setattr(next(iter(m.signature_def["serving_default"].inputs.values())),
                                              "name", MARK),
    "a tag": lambda m: m.meta_info_def.tags.append(MARK),
    "the node of an op that reaches out": _add_writer,
}


@pytest.mark.parametrize("where", sorted(POISON))
def test_a_name_that_is_not_utf8_is_refused_wherever_it_is(tmp_path, where):
    data, proto = _demo()
    POISON[where](proto.meta_graphs[0])
    poisoned = proto.SerializeToString().replace(MARK.encode(), b"\xfe" + MARK.encode()[1:])
    assert poisoned != proto.SerializeToString()
    folder = tmp_path / "saved_model"
    shutil.copytree(DEMO_PB.parent, folder)
    (folder / "saved_model.pb").write_bytes(poisoned)
    with pytest.raises(sm.SavedModelError) as err:
        sm.read_saved_model(folder)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(folder / "saved_model.pb")) and "UTF-8" in message


def test_the_demo_reads_as_before():
    data, _ = _demo()
    info = sm.read_saved_model(DEMO_PB.parent)
    assert [_facts(mg) for mg in info.meta_graphs] == _whole(data)
    assert info.meta_graph().op_counts and info.effects == []


def test_variables_are_told_by_the_object_graph_or_the_graphs_own_nodes(tmp_path):
    """A TF1-style graph (no object graph) has variables when its own nodes make them; a variable op inside a
    library function alone does not count, read piecewise or whole."""
    _, proto = _demo()
    meta = proto.meta_graphs[0]
    meta.ClearField("object_graph_def")
    kept = [n for n in meta.graph_def.node if n.op not in sm._VARIABLE_OPS]
    del meta.graph_def.node[:]
    meta.graph_def.node.extend(kept)
    meta.graph_def.library.function[0].node_def.add(name="v", op="VarHandleOp")
    data = proto.SerializeToString()
    assert [f[8] for f in _whole(data)] == [False]
    assert [mg.has_variables for mg in sm._read_parts(data, "saved_model.pb")[1]] == [False]
    meta.graph_def.node.add(name="w", op="VarHandleOp")
    data = proto.SerializeToString()
    assert [mg.has_variables for mg in sm._read_parts(data, "saved_model.pb")[1]] == [True]
