"""Read ``saved_model.pb`` without TensorFlow.

The project declares the parts of TensorFlow's SavedModel, MetaGraphDef,
GraphDef and SavedObjectGraph messages it reads (see :mod:`.protos`). A
``saved_model.pb`` is decoded a piece at a time (:func:`_read_parts`): the
wire format is walked down to the node lists, which are decoded a few thousand
nodes at a time, so that no single call holds other threads (the window's) up
for long. :func:`read_saved_model` returns the signatures (inputs
and outputs with dtypes and shapes), the op counts of the graph and of every
library function, and the SavedModel's own object tree (user objects,
variables, functions). :func:`variable_keys` maps the object tree's variables to
the keys of ``variables/variables.index``.
"""

from __future__ import annotations

import operator

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from . import dtypes, protos
from . import objectgraph as og
from ..base import files
from ..base.errors import LoadRefused
from ..base.findings import WARNING, Finding
from .graph_effects import Effect, GraphScan, scan_whole, summary, would_run

SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_INDEX = "variables/variables.index"
SERVE = "serve"
# TensorFlow's own entries in signature_def (``__saved_model_init_op``), not callable signatures.
INTERNAL_SIGNATURE_PREFIX = "__saved_model_"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
TRUST_MODEL_FLAG = "--trust-model"

_f = protos.field
_m = protos.message
_map = protos.map_field

_SAVED_OBJECT = (
    _f("children", 1, "TrackableObjectGraph.TrackableObject.ObjectReference", repeated=True),
    _f("slot_variables", 3, "TrackableObjectGraph.TrackableObject.SlotVariableReference", repeated=True),
    _f("user_object", 4, "SavedUserObject"),
    _f("asset", 5, "SavedAsset"),
    _f("function", 6, "SavedFunction"),
    _f("variable", 7, "SavedVariable"),
    _f("bare_concrete_function", 8, "SavedBareConcreteFunction"),
    _f("constant", 9, "SavedConstant"),
    _f("resource", 10, "SavedResource"),
    _f("captured_tensor", 12, "CapturedTensor"),
    _f("registered_name", 13, "string"),
    _f("dependencies", 15, "TrackableObjectGraph.TrackableObject.ObjectReference", repeated=True),
    _f("registered_saver", 16, "string"))

MESSAGES = protos.schema("saved_model", [
    _m("AttrValue",
       _f("list", 1, "ListValue"),
       _f("s", 2, "bytes"),
       _f("i", 3, "int64"),
       _f("f", 4, "float"),
       _f("b", 5, "bool"),
       _f("type", 6, "int32"),                # DataType
       _f("shape", 7, "TensorShapeProto"),
       # tensor = 8 (TensorProto) is not declared: constants stay undecoded.
       _f("placeholder", 9, "string"),
       _f("func", 10, "NameAttrList"),
       nested=[_m("ListValue",
                  _f("s", 2, "bytes", repeated=True),
                  _f("i", 3, "int64", repeated=True),
                  _f("f", 4, "float", repeated=True),
                  _f("b", 5, "bool", repeated=True),
                  _f("type", 6, "int32", repeated=True),
                  _f("shape", 7, "TensorShapeProto", repeated=True),
                  _f("func", 9, "NameAttrList", repeated=True))]),
    _m("NameAttrList",
       _f("name", 1, "string"),
       _map("attr", 2, "string", "AttrValue")),
    _m("NodeDef",
       _f("name", 1, "string"),
       _f("op", 2, "string"),
       _f("input", 3, "string", repeated=True),
       _f("device", 4, "string"),
       _map("attr", 5, "string", "AttrValue")),
    _m("OpDef",
       _f("name", 1, "string"),
       _f("input_arg", 2, "ArgDef", repeated=True),
       _f("output_arg", 3, "ArgDef", repeated=True),
       _f("control_output", 20, "string", repeated=True),
       nested=[_m("ArgDef",
                  _f("name", 1, "string"),
                  _f("description", 2, "string"),
                  _f("type", 3, "int32"),     # DataType
                  _f("type_attr", 4, "string"),
                  _f("number_attr", 5, "string"),
                  _f("type_list_attr", 6, "string"),
                  _f("is_ref", 16, "bool"))]),
    _m("FunctionDef",
       _f("signature", 1, "OpDef"),
       _f("node_def", 3, "NodeDef", repeated=True),
       _map("ret", 4, "string", "string"),
       _map("attr", 5, "string", "AttrValue"),
       _map("control_ret", 6, "string", "string")),
    _m("GradientDef",
       _f("function_name", 1, "string"),
       _f("gradient_func", 2, "string")),
    _m("FunctionDefLibrary",
       _f("function", 1, "FunctionDef", repeated=True),
       _f("gradient", 2, "GradientDef", repeated=True)),
    _m("GraphDef",
       _f("node", 1, "NodeDef", repeated=True),
       _f("library", 2, "FunctionDefLibrary"),
       _f("version", 3, "int32"),
       _f("versions", 4, "VersionDef")),
    _m("TensorInfo",
       _f("name", 1, "string"),
       _f("dtype", 2, "int32"),               # DataType
       _f("tensor_shape", 3, "TensorShapeProto"),
       _f("coo_sparse", 4, "CooSparse"),
       _f("composite_tensor", 5, "CompositeTensor"),
       nested=[_m("CooSparse",
                  _f("values_tensor_name", 1, "string"),
                  _f("indices_tensor_name", 2, "string"),
                  _f("dense_shape_tensor_name", 3, "string")),
               # type_spec = 1 (TypeSpecProto) is not declared.
               _m("CompositeTensor",
                  _f("components", 2, "TensorInfo", repeated=True))]),
    _m("SignatureDef",
       _map("inputs", 1, "string", "TensorInfo"),
       _map("outputs", 2, "string", "TensorInfo"),
       _f("method_name", 3, "string")),
    _m("SaverDef",
       _f("filename_tensor_name", 1, "string"),
       _f("save_tensor_name", 2, "string"),
       _f("restore_op_name", 3, "string"),
       _f("max_to_keep", 4, "int32"),
       _f("sharded", 5, "bool"),
       _f("keep_checkpoint_every_n_hours", 6, "float"),
       _f("version", 7, "int32")),            # CheckpointFormatVersion
    _m("AssetFileDef",
       _f("tensor_info", 1, "TensorInfo"),
       _f("filename", 2, "string")),
    _m("SavedObject", *_SAVED_OBJECT),
    _m("SavedUserObject",
       _f("identifier", 1, "string"),
       _f("version", 2, "VersionDef"),
       _f("metadata", 3, "string")),
    _m("SavedAsset", _f("asset_file_def_index", 1, "int32")),
    _m("SavedFunction", _f("concrete_functions", 1, "string", repeated=True)),
    _m("SavedVariable",
       _f("dtype", 1, "int32"),               # DataType
       _f("shape", 2, "TensorShapeProto"),
       _f("trainable", 3, "bool"),
       _f("name", 6, "string"),
       _f("device", 7, "string")),
    _m("SavedBareConcreteFunction",
       _f("concrete_function_name", 1, "string"),
       _f("argument_keywords", 2, "string", repeated=True),
       _f("allowed_positional_arguments", 3, "int64")),
    _m("SavedConstant", _f("operation", 1, "string")),
    _m("SavedResource", _f("device", 1, "string")),
    _m("CapturedTensor",
       _f("name", 1, "string"),
       _f("concrete_function", 2, "string")),
    _m("SavedConcreteFunction",
       _f("bound_inputs", 2, "int32", repeated=True)),
    _m("SavedObjectGraph",
       _f("nodes", 1, "SavedObject", repeated=True),
       _map("concrete_functions", 2, "string", "SavedConcreteFunction")),
    _m("MetaGraphDef",
       _f("meta_info_def", 1, "MetaInfoDef"),
       _f("graph_def", 2, "GraphDef"),
       _f("saver_def", 3, "SaverDef"),
       # collection_def = 4 is not declared (TF1 collections).
       _map("signature_def", 5, "string", "SignatureDef"),
       _f("asset_file_def", 6, "AssetFileDef", repeated=True),
       _f("object_graph_def", 7, "SavedObjectGraph"),
       nested=[_m("MetaInfoDef",
                  _f("meta_graph_version", 1, "string"),
                  _f("tags", 4, "string", repeated=True),
                  _f("tensorflow_version", 5, "string"),
                  _f("tensorflow_git_version", 6, "string"),
                  _f("stripped_default_attrs", 7, "bool"),
                  _map("function_aliases", 8, "string", "string"))]),
    _m("SavedModel",
       _f("saved_model_schema_version", 1, "int64"),
       _f("meta_graphs", 2, "MetaGraphDef", repeated=True)),
], deps=("tensor", "trackable_object_graph"))

SavedModelProto = MESSAGES["SavedModel"]

# The object graph as the piecewise read decodes it: a variable's shape left as its bytes (every field written,
# in order: their concatenation decodes as protobuf merges them), so that the 50,000 shapes of a big model,
# nearly all alike, are each decoded once (in :func:`_object_tree`) rather than walked object by object.
_RAW = protos.schema("saved_model_raw", [
    _m("SavedObjectRaw",
       *[_f("variable", 7, "SavedVariableRaw") if f.name == "variable" else f for f in _SAVED_OBJECT]),
    _m("SavedVariableRaw",
       _f("dtype", 1, "int32"),
       _f("shape", 2, "bytes", repeated=True),
       _f("trainable", 3, "bool"),
       _f("name", 6, "string"),
       _f("device", 7, "string")),
    _m("SavedObjectGraphRaw",
       _f("nodes", 1, "SavedObjectRaw", repeated=True),
       _map("concrete_functions", 2, "string", "SavedConcreteFunction")),
], deps=("saved_model", "tensor", "trackable_object_graph"))

# The members of SavedObject's ``kind`` oneof that are declared here.
_KINDS = ("user_object", "asset", "function", "variable", "bare_concrete_function", "constant", "resource",
          "captured_tensor")
_UNSEEN = object()
_VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable", "VarIsInitializedOp"})


class SavedModelError(Exception):
    """A SavedModel that cannot be read; the message is one line naming the file and the cause."""


# --- results ---------------------------------------------------------------------------------

Shape = tuple  # of int | None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature.

    ``key`` is the signature's keyword, ``name`` the graph tensor
    (``serving_default_images:0``), ``dtype`` NumPy's spelling, ``shape`` a
    tuple with None for unknown dimensions (None for unknown rank).
    ``encoding`` is ``dense``, ``coo_sparse`` or ``composite``.
    """

    key: str
    name: str
    dtype: str
    shape: Shape | None
    encoding: str = "dense"


@dataclass
class Signature:
    name: str
    method: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def input(self, key: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.key == key), None)

    def output(self, key: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.key == key), None)


@dataclass(frozen=True)
class VariableInfo:
    """A variable of the SavedModel's object graph."""

    name: str
    dtype: str
    shape: Shape | None
    trainable: bool


@dataclass(eq=False)
class SavedNode:
    """One object of the SavedModel's object graph.

    ``kind`` is the object's kind (``user_object``, ``variable``, ``function``,
    ``bare_concrete_function``, ``asset``, ``constant``, ``resource``,
    ``captured_tensor``; "" when unset). ``identifier`` is the user object's
    identifier (``_generic_user_object``, ``trackable_dict_wrapper``,
    ``_tf_keras_layer`` ...). ``path``/``children``/``links``/``aliases``
    follow the same canonical breadth-first rule as checkpoint object trees.
    ``checkpoint_key`` is set on variables by :func:`variable_keys`.
    """

    node_id: int
    name: str
    path: str
    kind: str
    identifier: str = ""
    children: list["SavedNode"] = field(default_factory=list)
    links: list[og.Link] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    variable: VariableInfo | None = None
    concrete_functions: list[str] = field(default_factory=list)
    registered_name: str = ""
    checkpoint_key: str | None = None
    parent: "SavedNode | None" = field(default=None, repr=False)

    def walk(self):
        """This node and its tree descendants, depth first in stored order."""
        return og.walk_tree(self)


@dataclass
class SavedObjectTree:
    root: SavedNode
    nodes: list[SavedNode]
    concrete_functions: list[str]

    def variables(self) -> list[SavedNode]:
        return [n for n in self.nodes if n.kind == "variable"]

    def find(self, path: str) -> SavedNode | None:
        """The node with canonical path or alias ``path``."""
        return og.find_by_path(self, path)


@dataclass
class MetaGraph:
    """One meta graph: ``op_counts`` counts the graph's nodes and every library
    function's nodes by op; ``function_names`` lists the library functions.
    """

    tags: list[str]
    tensorflow_version: str
    tensorflow_git_version: str
    signatures: list[Signature]
    op_counts: dict[str, int]
    function_names: list[str]
    object_graph: SavedObjectTree | None
    has_variables: bool
    graph_node_count: int = 0
    function_node_count: int = 0
    has_saver: bool = False
    asset_files: list[str] = field(default_factory=list)
    init_op: str | None = None
    # Ops that reach outside the model (files, Python, network, other processes): see :mod:`.graph_effects`.
    effects: list[Effect] = field(default_factory=list)

    def signature(self, name: str = "serving_default") -> Signature | None:
        return next((s for s in self.signatures if s.name == name), None)

    @property
    def signature_names(self) -> list[str]:
        return [s.name for s in self.signatures]


@dataclass
class SavedModelInfo:
    path: str
    schema_version: int
    meta_graphs: list[MetaGraph]
    variables_index: str | None = None

    def meta_graph(self, tags: Iterable[str] | str | None = None) -> MetaGraph:
        """The meta graph with exactly ``tags``; by default the one tagged ``serve``, else the first."""
        if tags is None:
            for mg in self.meta_graphs:
                if SERVE in mg.tags:
                    return mg
            return self.meta_graphs[0]
        wanted = {tags} if isinstance(tags, str) else set(tags)
        for mg in self.meta_graphs:
            if set(mg.tags) == wanted:
                return mg
        have = "; ".join(",".join(mg.tags) or "(none)" for mg in self.meta_graphs)
        raise SavedModelError(f"{self.path}: no meta graph tagged {','.join(sorted(wanted))} (tags present: {have})")

    @property
    def effects(self) -> list[Effect]:
        """The ops of every meta graph that reach outside the model (files, Python, network ...)."""
        return [e for mg in self.meta_graphs for e in mg.effects]

    @property
    def findings(self) -> list[Finding]:
        effects = self.effects
        if not effects:
            return []
        return [Finding(WARNING, f"the graph reaches outside the model: {summary(effects)}; detect and restore "
                                 f"refuse to load it without {TRUST_MODEL_FLAG} (the window asks first)", self.path)]

    def refusal(self) -> LoadRefused | None:
        """The error that refuses to load this SavedModel unasked, when its graph reaches outside the model."""
        effects = self.effects
        if not effects:
            return None
        return LoadRefused(f"{self.path}: refusing to load it: its graph reaches outside the model: "
                           f"{summary(effects)}; pass {TRUST_MODEL_FLAG} to load it anyway, only if you "
                           "trust where it came from",
                           file=self.path, would_run=would_run(effects), options={"trust_model": True},
                           flag=TRUST_MODEL_FLAG)


# --- conversion ------------------------------------------------------------------------------

def shape_of(proto) -> Shape | None:
    """A TensorShapeProto as a tuple (None for unknown dims), or None for unknown rank."""
    if proto.unknown_rank:
        return None
    sizes = tuple(map(_SIZE, proto.dim))
    return sizes if not sizes or min(sizes) >= 0 else tuple(d if d >= 0 else None for d in sizes)


_SIZE = operator.attrgetter("size")


def _tensor_spec(key: str, info) -> TensorSpec:
    encoding = "dense"
    name = info.name
    if info.HasField("coo_sparse"):
        encoding = "coo_sparse"
        name = info.coo_sparse.values_tensor_name
    elif info.HasField("composite_tensor"):
        encoding = "composite"
    shape = shape_of(info.tensor_shape) if info.HasField("tensor_shape") else None
    # A composite tensor has no dtype of its own (DT_INVALID): its components do.
    dtype = dtypes.name(info.dtype) if info.dtype else ""
    return TensorSpec(key=key, name=name, dtype=dtype, shape=shape, encoding=encoding)


def _signatures(meta) -> list[Signature]:
    out = []
    for name in sorted(meta.signature_def):
        if name.startswith(INTERNAL_SIGNATURE_PREFIX):
            continue
        sd = meta.signature_def[name]
        out.append(Signature(
            name=name,
            method=sd.method_name,
            inputs=[_tensor_spec(k, sd.inputs[k]) for k in sorted(sd.inputs)],
            outputs=[_tensor_spec(k, sd.outputs[k]) for k in sorted(sd.outputs)],
        ))
    return out


def _object_tree(graph, concrete_functions=None) -> SavedObjectTree | None:
    """The object tree of a ``SavedObjectGraph`` message, or of its objects (a list) and the names of its
    concrete functions."""
    if concrete_functions is None:
        objects, concrete_functions = graph.nodes, graph.concrete_functions
    else:
        objects = graph
    count = len(objects)
    if count == 0:
        return None
    edges = og.child_edges(objects, lambda i, local, child: SavedModelError(
        f"object {i} names child {local!r} as node {child} of {count}"))
    try:
        walk = og.traverse(edges)
    except og.ObjectGraphError as exc:  # nested deeper than any real model
        raise SavedModelError(f"the object graph: {exc}") from None
    nodes = []
    names, paths = walk.name, walk.path
    dtype_names: dict[int, str] = {}
    shapes: dict[bytes, Shape | None] = {}
    for i, obj in enumerate(objects):
        # the kind oneof, its members tried in order (the variables first when it is one: most objects are)
        has = obj.HasField
        kind = "variable" if has("variable") and not (has("user_object") or has("asset") or has("function")) \
            else next((k for k in _KINDS if has(k)), "")
        node = SavedNode(i, names[i], paths[i] or "", kind, registered_name=obj.registered_name)
        if kind == "variable":
            v = obj.variable
            dtype = dtype_names.get(v.dtype)
            if dtype is None:
                dtype = dtype_names[v.dtype] = dtypes.name(v.dtype)
            shape = v.shape
            if type(shape) is not _TensorShapeProto:     # the piecewise read's bytes, each written field
                raw = shape[0] if len(shape) == 1 else b"".join(shape)
                shape = shapes.get(raw, _UNSEEN)
                if shape is _UNSEEN:
                    shape = shapes[raw] = shape_of(_TensorShapeProto.FromString(raw))
            else:
                shape = shape_of(shape)
            node.variable = VariableInfo(v.name, dtype, shape, v.trainable)
        elif kind == "user_object":
            node.identifier = obj.user_object.identifier
        elif kind == "function":
            node.concrete_functions = list(obj.function.concrete_functions)
        elif kind == "bare_concrete_function":
            node.concrete_functions = [obj.bare_concrete_function.concrete_function_name]
        nodes.append(node)
    if not _all_text(n.identifier for n in nodes) or not _all_text(n.registered_name for n in nodes) or \
            not _all_text(n.variable.name for n in nodes if n.variable is not None) or \
            not _all_text(f for n in nodes for f in n.concrete_functions) or \
            not _all_text(concrete_functions):
        raise SavedModelError("corrupt: a name in it is not UTF-8 text")
    for i in range(count):
        nodes[i].children = [nodes[c] for c in walk.tree[i]]
        for c in walk.tree[i]:
            nodes[c].parent = nodes[i]
        for local, child in walk.extra[i]:
            nodes[i].links.append(og.Link(local, child, nodes[child].path))
            if walk.path[i] is not None:
                nodes[child].aliases.append(og.join(nodes[i].path, local))
    return SavedObjectTree(root=nodes[0], nodes=nodes, concrete_functions=sorted(concrete_functions))


def _all_text(values) -> bool:
    """Whether every value is a ``str`` (protobuf hands a proto2 string that is not UTF-8 over as ``bytes``):
    one join, in C."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _meta_graph(meta, object_graph=None, scan: GraphScan | None = None,
                function_names: list[str] | None = None) -> MetaGraph:
    """One meta graph. ``meta`` is the ``MetaGraphDef`` message: whole, or (from :func:`_read_parts`) without
    its graph and object graph, which come as ``object_graph`` (the ``SavedObjectGraph``'s objects and the
    names of its concrete functions; None when absent) and ``scan`` (its nodes, walked) with the library's
    ``function_names``."""
    if scan is None:
        scan = scan_whole(meta)
        function_names = [fn.signature.name for fn in meta.graph_def.library.function]
        graph = meta.object_graph_def
        object_graph = (graph.nodes, graph.concrete_functions) if meta.HasField("object_graph_def") else None
    tree = _object_tree(*object_graph) if object_graph is not None else None
    has_vars = bool(tree and any(n.kind == "variable" for n in tree.nodes)) or \
        any(op in scan.graph_op_counts for op in _VARIABLE_OPS)
    info = meta.meta_info_def
    mg = MetaGraph(
        tags=list(info.tags),
        tensorflow_version=info.tensorflow_version,
        tensorflow_git_version=info.tensorflow_git_version,
        signatures=_signatures(meta),
        op_counts=dict(scan.op_counts),
        function_names=list(function_names),
        object_graph=None,
        has_variables=has_vars,
        graph_node_count=scan.graph_node_count,
        function_node_count=scan.function_node_count,
        has_saver=meta.HasField("saver_def"),
        asset_files=[a.filename for a in meta.asset_file_def],
        init_op=_init_op(meta),
        effects=scan.effects(meta, tree),
    )
    scan.release()
    # protobuf hands a proto2 string that is not UTF-8 over as bytes: the object tree checked its own strings
    # as it was built, the rest (a few hundred values at most) is walked here
    if _has_bytes(mg):
        raise SavedModelError("corrupt: a name in it is not UTF-8 text")
    mg.object_graph = tree
    return mg


def _init_op(meta) -> str | None:
    sd = meta.signature_def.get(INTERNAL_SIGNATURE_PREFIX + "init_op")
    if sd is None:
        return None
    return next((t.name for t in sd.outputs.values()), None)


# --- reading ---------------------------------------------------------------------------------

# TensorFlow's enum names as the text format writes them.
_DT_NAMES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF"}


def _enum_numbers() -> dict[str, int]:
    table = {"DT_INVALID": 0, "LEGACY": 0, "V1": 1, "V2": 2}
    for number in range(1, dtypes.REF_OFFSET):
        tf_name = dtypes.tf_name(number)
        if tf_name.startswith("dtype_"):
            continue
        name = _DT_NAMES.get(tf_name, "DT_" + tf_name.upper())
        table[name] = number
        table[name + "_REF"] = number + dtypes.REF_OFFSET
    return table


ENUM_NUMBERS = _enum_numbers()
_ENUM_VALUE = re.compile(r"^(\s*(?:dtype|type|version)\s*:\s*)([A-Z][A-Z0-9_]*)\s*$", re.M)


def _parse_text(text: str, where: str):
    def number(m: re.Match) -> str:
        value = ENUM_NUMBERS.get(m.group(2))
        return m.group(0) if value is None else f"{m.group(1)}{value}"

    proto = SavedModelProto()
    try:
        text_format.Parse(_ENUM_VALUE.sub(number, text), proto, allow_unknown_field=True,
                          allow_unknown_extension=True)
    except text_format.ParseError as exc:
        raise SavedModelError(f"{where}: not a SavedModel in text format ({exc})") from exc
    except RecursionError:
        raise SavedModelError(f"{where}: nested too deeply to be a SavedModel") from None
    return proto


def _top_level_fields(data: bytes) -> list[tuple[int, int]] | None:
    """``(field number, wire type)`` of each top-level field of a serialized message; None when the bytes do
    not even walk as one (truncated, or not protobuf: protobuf's own decoder then says why)."""
    out = []
    pos, end = 0, len(data)
    view = memoryview(data)

    def varint(p: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if p >= end or shift > 63:
                raise ValueError
            b = view[p]
            value |= (b & 0x7F) << shift
            p += 1
            if not b & 0x80:
                return value, p
            shift += 7
    try:
        while pos < end:
            tag, pos = varint(pos)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = varint(pos)
            elif wire == 1:
                pos += 8
            elif wire == 2:
                size, pos = varint(pos)
                pos += size
            elif wire == 5:
                pos += 4
            else:
                return None
            if pos > end or number == 0:
                return None
            out.append((number, wire))
    except ValueError:
        return None
    return out


def _other_message(data: bytes) -> str | None:
    """What a ``saved_model.pb`` holds when it is plainly another TensorFlow message, in words; None for what
    may be a SavedModel (whose top level is only ``saved_model_schema_version`` = 1, a varint, and
    ``meta_graphs`` = 2). Protobuf decodes a GraphDef or MetaGraphDef as a SavedModel without complaint,
    mistaking their fields for unknown ones, so the wire types decide."""
    fields = _top_level_fields(data)
    if not fields or all((n, w) in ((1, 0), (2, 2)) for n, w in fields):
        return None
    numbers = {n for n, w in fields if w == 2}
    if numbers & {3, 5, 6, 7} or (1 in numbers and sum(1 for n, w in fields if n == 1) == 1 and 2 in numbers):
        return "a MetaGraphDef (a .meta file or one graph of a SavedModel, renamed?)"
    if 1 in numbers:
        return "a GraphDef (a frozen graph such as frozen_inference_graph.pb, renamed?)"
    return None


def _check_kind(data: bytes, where: str) -> None:
    """Refuse bytes that are plainly not a SavedModel, saying what they are."""
    if data.startswith(LFS_POINTER):
        raise SavedModelError(f"{where}: is a Git LFS pointer, not the model; run `git lfs pull` in its repository")
    if not data:
        raise SavedModelError(f"{where}: the file is empty")
    other = _other_message(data)
    if other:
        raise SavedModelError(f"{where}: is {other}, not a SavedModel; TensorFlow cannot load it as one")


def parse_saved_model(data: bytes, where: str = SAVED_MODEL_PB):
    """Decode ``saved_model.pb`` bytes into the project's SavedModel message, whole."""
    _check_kind(data, where)
    try:
        proto = SavedModelProto.FromString(data)
    except DecodeError as exc:
        raise SavedModelError(f"{where}: truncated or not a SavedModel ({exc})") from exc
    except MemoryError:
        raise SavedModelError(f"{where}: decoding its {len(data)} bytes ran out of memory") from None
    if not proto.meta_graphs:
        raise SavedModelError(f"{where}: not a SavedModel (no meta graph in {len(data)} bytes)")
    return proto


# A piece of a node list decoded at a time: each decode is one call that holds every other thread (the
# window's) up while it runs, so none may take long.
PIECE_BYTES = 1 << 19
PIECE_NODES = 4096

_MetaGraphDef = MESSAGES["MetaGraphDef"]
_GraphDef = MESSAGES["GraphDef"]
_FunctionDefLibrary = MESSAGES["FunctionDefLibrary"]
_FunctionDef = MESSAGES["FunctionDef"]
_SavedObjectGraph = MESSAGES["SavedObjectGraph"]
_OpDef = MESSAGES["OpDef"]
_SavedObjectGraphRaw = _RAW["SavedObjectGraphRaw"]
_TensorShapeProto = protos.TENSOR["TensorShapeProto"]


def _decode(cls, view, pieces):
    """``cls`` decoded from the concatenation of ``pieces`` (``(start, end)`` ranges of ``view``)."""
    if not pieces:
        return cls()
    data = view[pieces[0][0]:pieces[0][1]] if len(pieces) == 1 else b"".join(view[a:b] for a, b in pieces)
    return cls.FromString(data)


def _pieces(cls, view, pieces) -> list:
    """``cls`` decoded from each of ``pieces`` in turn (each a short call): the fields of a message whose
    pieces :func:`_split` cut, decoded to be checked as a whole decode checks them, or read."""
    return [cls.FromString(view[a:b]) for a, b in pieces]


def _split(data, ranges, wanted: dict[int, list], runs_of: int = 0, runs: list | None = None) -> list:
    """Walk the fields of a message serialized in ``ranges`` of ``data``: the value ranges of each length-delimited
    field numbered in ``wanted`` go to its list, runs of field ``runs_of`` to ``runs``; returns the ranges of
    every other field (whole), which decode as the message without those fields."""
    rest = []
    for start, end in ranges:
        found_runs, found, others = protos.split_fields(data, start, end, wanted, runs_of, max_bytes=PIECE_BYTES,
                                                        max_count=PIECE_NODES)
        if runs is not None:
            runs.extend(found_runs)
        for number, vstart, vend in found:
            wanted[number].append((vstart, vend))
        rest.extend(others)
    return rest


def _read_parts(data: bytes, where: str) -> tuple[int, list[MetaGraph]]:
    """``saved_model.pb`` read a part at a time: the wire format is walked down to the node lists of the graph
    and of each library function, and those are decoded a piece (:data:`PIECE_BYTES`, :data:`PIECE_NODES`)
    at a time, never the whole file in one call. Every byte is decoded, with the same message definitions as
    a whole decode, so a file that does not decode whole does not decode here either. Raises
    ``protos.WireError`` where the bytes do not walk as protobuf (the caller decodes them whole to say why)."""
    view = memoryview(data)
    metas: list = []
    top = _decode(SavedModelProto, view, _split(data, [(0, len(data))], {2: metas}))
    if not metas:
        raise SavedModelError(f"{where}: not a SavedModel (no meta graph in {len(data)} bytes)")
    parts = []
    for meta_range in metas:
        graphs: list = []
        object_graphs: list = []
        meta = _decode(_MetaGraphDef, view, _split(data, [meta_range], {2: graphs, 7: object_graphs}))
        object_graph = None
        if object_graphs:
            runs = []
            rest = _split(data, object_graphs, {}, 1, runs)
            objects = []
            for a, b in runs:
                objects.extend(_SavedObjectGraphRaw.FromString(view[a:b]).nodes)
            concrete_functions = {}
            for piece in _pieces(_SavedObjectGraph, view, rest):
                concrete_functions.update(dict.fromkeys(piece.concrete_functions))
            object_graph = (objects, concrete_functions)
        libraries: list = []
        node_runs: list = []
        _pieces(_GraphDef, view, _split(data, graphs, {2: libraries}, 1, node_runs))   # versions: checked
        functions: list = []
        _pieces(_FunctionDefLibrary, view, _split(data, libraries, {1: functions}))     # gradients: checked
        bodies = []
        for fn_range in functions:
            runs: list = []
            name = ""
            # its signature (an argument per variable for the saver's: decoded a piece at a time), attributes
            # and the attributes of its arguments
            signatures: list = []
            _pieces(_FunctionDef, view, _split(data, [fn_range], {1: signatures}, 3, runs))
            for signature in signatures:
                args: list = []
                heads = _pieces(_OpDef, view, _split(data, [signature], {}, 2, args))
                _pieces(_OpDef, view, args)        # its arguments: checked
                for head in heads:
                    if head.HasField("name"):
                        name = head.name
            bodies.append((name, runs))
        names = [name for name, _ in bodies]
        scan = GraphScan(names)
        for a, b in node_runs:
            piece = data[a:b]
            scan.graph_part(_GraphDef.FromString(piece).node, piece)
        for name, runs in bodies:
            scan.function_start(name)
            for a, b in runs:
                piece = data[a:b]
                scan.function_part(_FunctionDef.FromString(piece).node_def, piece)
        parts.append((meta, object_graph, scan, names))
    return top.saved_model_schema_version, [_meta_graph(*p) for p in parts]


def _locate(path) -> tuple[Path, Path]:
    """(the .pb/.pbtxt file, the SavedModel folder)."""
    p = Path(path)
    if p.is_dir():
        for name in (SAVED_MODEL_PB, SAVED_MODEL_PBTXT):
            if (p / name).is_file():
                return p / name, p
        present = "variables/ present" if (p / "variables").is_dir() else "folder has no variables/ either"
        raise SavedModelError(f"{p}: no {SAVED_MODEL_PB} in this folder ({present})")
    if p.is_file():
        return p, p.parent
    raise SavedModelError(f"{p}: no such file or folder")


def read_saved_model(path) -> SavedModelInfo:
    """Read a SavedModel: ``path`` is its folder, its ``saved_model.pb`` or ``saved_model.pbtxt``."""
    pb, folder = _locate(path)
    data = files.read_bytes(pb, what="SavedModel graph", limit=files.SAVED_MODEL_LIMIT, error=SavedModelError)
    if pb.suffix == ".pbtxt":
        if data.startswith(LFS_POINTER):
            raise SavedModelError(f"{pb}: is a Git LFS pointer, not the model; run `git lfs pull` in its repository")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SavedModelError(f"{pb}: not text ({exc.reason})") from exc
        proto = _parse_text(text, str(pb))
        if not proto.meta_graphs:
            raise SavedModelError(f"{pb}: not a SavedModel (no meta graph)")
    try:
        with og.no_gc_pauses():
            if pb.suffix == ".pbtxt":
                schema_version, metas = proto.saved_model_schema_version, [_meta_graph(m) for m in proto.meta_graphs]
            else:
                schema_version, metas = _read_binary(data, str(pb))
    except SavedModelError as exc:
        if str(exc).startswith(str(pb)):
            raise
        raise SavedModelError(f"{pb}: {exc}") from exc
    except (UnicodeDecodeError, TypeError) as exc:  # a name that is not UTF-8, met on the way
        raise SavedModelError(f"{pb}: corrupt: a name in it is not UTF-8 text ({type(exc).__name__})") from exc
    index = folder / VARIABLES_INDEX
    return SavedModelInfo(path=str(folder), schema_version=schema_version, meta_graphs=metas,
                          variables_index=str(index) if index.is_file() else None)


def _read_binary(data: bytes, where: str) -> tuple[int, list[MetaGraph]]:
    """``saved_model.pb`` read a part at a time (:func:`_read_parts`); decoded whole when its bytes do not
    walk as protobuf, so that protobuf's decoder says what is wrong (or reads what walking did not)."""
    _check_kind(data, where)
    try:
        return _read_parts(data, where)
    except protos.WireError:
        pass
    except DecodeError as exc:
        raise SavedModelError(f"{where}: truncated or not a SavedModel ({exc})") from exc
    except MemoryError:
        raise SavedModelError(f"{where}: decoding its {len(data)} bytes ran out of memory") from None
    proto = parse_saved_model(data, where)
    return proto.saved_model_schema_version, [_meta_graph(m) for m in proto.meta_graphs]


def _has_bytes(value) -> bool:
    """Whether ``bytes`` hide anywhere in what was read (dataclasses, lists, dicts; each object once).

    It visits every object of a 50,000-variable model, so plain values are told by their exact type and a
    dataclass's fields are read by one ``attrgetter`` per class.
    """
    seen: set[int] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t in _PLAIN:
            continue
        if isinstance(v, (bytes, bytearray)):
            return True
        if isinstance(v, (str, int, float, bool)) or v is None or id(v) in seen:
            continue
        seen.add(id(v))
        if t is list or t is tuple or isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif hasattr(v, "__dataclass_fields__"):
            fields = _FIELDS.get(t)
            if fields is None:
                names = tuple(v.__dataclass_fields__)
                fields = _FIELDS[t] = (lambda o, g=operator.attrgetter(*names): (g(o),)) if len(names) == 1 \
                    else operator.attrgetter(*names) if names else (lambda o: ())
            stack.extend(fields(v))
    return False


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, object] = {}


# --- variables ↔ checkpoint keys -------------------------------------------------------------

def variable_keys(meta: MetaGraph, object_graph: bytes | og.ObjectGraph | None = None) -> dict[int, str]:
    """``{saved object node id: key in variables/variables.index}`` for every variable.

    The variables bundle of a TF2 SavedModel carries its own object graph whose
    node ids are the SavedObjectGraph's: a variable's key is the
    ``VARIABLE_VALUE`` key of the same node there. Without that graph (a bundle
    whose data shard is missing), the key is derived from the variable's
    canonical path, which is how TensorFlow names it. Sets
    :attr:`SavedNode.checkpoint_key` too.
    """
    tree = meta.object_graph
    if tree is None:
        return {}
    graph = og.parse_object_graph(object_graph) if isinstance(object_graph, (bytes, bytearray)) else object_graph
    out: dict[int, str] = {}
    for node in tree.variables():
        key = None
        if graph is not None and not graph.from_names and node.node_id < len(graph.nodes):
            key = graph.nodes[node.node_id].value_key
        if key is None:
            key = f"{node.path}/{og.ATTRIBUTES}/{og.VARIABLE_VALUE}"
        node.checkpoint_key = key
        out[node.node_id] = key
    return out


def variable_keys_from_bundle(meta: MetaGraph, bundle) -> dict[int, str]:
    """:func:`variable_keys` with the object graph read from the variables bundle when it can be."""
    from .bundle import BundleError

    try:
        data = og.object_graph_bytes(bundle)
    except BundleError:
        data = None
    return variable_keys(meta, data)
