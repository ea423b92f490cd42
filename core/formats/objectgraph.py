"""The object tree of a TF2 checkpoint, read from ``_CHECKPOINTABLE_OBJECT_GRAPH``.

A TF2 checkpoint keys every value by the path of the object that owns it
(``model/_feature_extractor/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE``)
and stores the object graph itself, a serialized ``TrackableObjectGraph``, under
the key ``_CHECKPOINTABLE_OBJECT_GRAPH``. This module decodes that graph without
TensorFlow into a tree a viewer can show: model → layers → variables, optimizer
slots attached to the variable they belong to, step and save counters.

The graph is a DAG (a shared layer, the optimizer a compiled Keras model keeps)
and may even have cycles. Each node gets the path of its first breadth-first
discovery from the root, walking children in stored order: that is the rule
TensorFlow uses to name checkpoint keys, so ``node.path + "/.ATTRIBUTES/" +
attribute.name`` is the key. Every other edge into a node is recorded as an
alias (the canonical path of the other parent plus the edge's local name) and as
a :class:`Link` on that parent, so the tree never repeats a subtree.

When there is no object graph (TF1 name-based checkpoints, or an ``.index``
whose data shard is missing) :func:`name_tree` builds the same kind of tree
from the key names alone.
"""

from __future__ import annotations

import operator
import re
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from google.protobuf.message import DecodeError

from . import protos
from ..base import collector
from ..base.errors import UserError
from ..base.text import natural_key

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

# Bounds no real checkpoint comes near, so that a crafted one can neither exhaust memory nor the stack
# of whatever walks the tree: objects nest under 20 levels in real models (protobuf's own decoder allows
# 100 levels of nesting); a detection model's graph is about 1 MB with a few thousand objects.
MAX_DEPTH = 100
MAX_OBJECTS = 500_000
OBJECT_GRAPH_LIMIT = 128 << 20  # bytes
ATTRIBUTES = ".ATTRIBUTES"
OPTIMIZER_SLOT = ".OPTIMIZER_SLOT"
VARIABLE_VALUE = "VARIABLE_VALUE"

# Groups of checkpoint keys, as restore reports present them.
MODEL = "model"                # values of the model (weights, batch-norm statistics, ...)
SLOT = "optimizer_slot"        # per-variable optimizer state (momentum, Adam m/v, ...)
OPTIMIZER = "optimizer"        # optimizer hyperparameters and its iteration counter
COUNTER = "counter"            # save_counter, step, global_step
OBJECT_GRAPH = "object_graph"  # the serialized object graph itself
OTHER = "other"                # anything else (non-variable attributes such as Python state)
GROUPS = (MODEL, SLOT, OPTIMIZER, COUNTER, OBJECT_GRAPH, OTHER)

COUNTER_NAMES = frozenset({"save_counter", "step", "global_step"})
_OPTIMIZER_EDGES = frozenset({"optimizer", "_optimizer"})
_ITERATION_NAMES = frozenset({"iter", "_iterations", "iterations"})
# Lists the Keras optimizers keep that are not per-variable slots.
_NON_SLOT_LISTS = frozenset({"_variables", "_trainable_variables", "_trainable_variables_indices", "_index_dict"})
# Slot names of TF1 (``tf.compat.v1.train``) optimizers, appended to the variable's name.
_TF1_SLOT_SUFFIX = re.compile(
    r"^(?P<var>.+)/(?P<slot>Momentum|Adam(?:_1)?|RMSProp(?:_1)?|Adagrad|AdagradDA(?:_1)?|Ftrl(?:_1)?|Adadelta(?:_1)?|"
    r"ProximalAdagrad|LARSOptimizer|Nadam(?:_1)?|AdaMax(?:_1)?)$")
_TF1_OPTIMIZER_STATE = re.compile(r"(^|/)(beta1_power|beta2_power)$")


# --- message definitions ---------------------------------------------------------------------

MESSAGES = protos.schema("trackable_object_graph", [
    protos.message(
        "TrackableObjectGraph",
        protos.field("nodes", 1, "TrackableObject", repeated=True),
        nested=[
            protos.message(
                "TrackableObject",
                protos.field("children", 1, "ObjectReference", repeated=True),
                protos.field("attributes", 2, "SerializedTensor", repeated=True),
                protos.field("slot_variables", 3, "SlotVariableReference", repeated=True),
                protos.field("registered_saver", 4, "RegisteredSaver"),
                protos.field("has_checkpoint_values", 5, "BoolValue"),
                nested=[
                    protos.message("ObjectReference",
                                   protos.field("node_id", 1, "int32"),
                                   protos.field("local_name", 2, "string")),
                    protos.message("SerializedTensor",
                                   protos.field("name", 1, "string"),
                                   protos.field("full_name", 2, "string"),
                                   protos.field("checkpoint_key", 3, "string")),
                    protos.message("SlotVariableReference",
                                   protos.field("original_variable_node_id", 1, "int32"),
                                   protos.field("slot_name", 2, "string"),
                                   protos.field("slot_variable_node_id", 3, "int32")),
                ]),
            # google.protobuf.BoolValue has the same wire format; declared here so
            # this file depends on no other schema.
            protos.message("BoolValue", protos.field("value", 1, "bool")),
        ]),
    protos.message("RegisteredSaver",
                   protos.field("name", 1, "string"),
                   protos.field("object_name", 2, "string")),
])
TrackableObjectGraph = MESSAGES["TrackableObjectGraph"]


class ObjectGraphError(UserError):
    """The object graph bytes are not a TrackableObjectGraph (one line, the cause)."""


# --- the tree --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribute:
    """A value saved for an object: ``name`` is usually ``VARIABLE_VALUE``."""

    name: str
    full_name: str
    checkpoint_key: str


@dataclass(frozen=True)
class SlotRef:
    """An optimizer slot of a variable: ``slot_name`` is ``momentum``, ``m``, ``v`` ...

    ``checkpoint_key`` is the key of the slot's value; ``node_id`` the slot
    variable's own node (-1 when the tree was built from names).
    """

    slot_name: str
    optimizer_path: str
    checkpoint_key: str
    node_id: int = -1


@dataclass(frozen=True)
class Link:
    """An edge to a node whose canonical place in the tree is elsewhere."""

    name: str
    node_id: int
    target_path: str


@dataclass(eq=False)
class ObjectNode:
    """One object of the checkpoint.

    ``name`` is the local name on the edge from the canonical parent ("" for the
    root); ``path`` the escaped canonical path, the prefix of the node's keys.
    ``children`` are the nodes whose canonical parent this is; ``links`` the
    other edges out of it. ``aliases`` are the other paths reaching this node
    directly. ``slots`` are the optimizer slots OF this variable; ``slot_of`` is
    set on a slot variable (the path of the variable it belongs to).
    ``model_path`` is the first path reaching the node without passing through
    an optimizer (None when only the optimizer reaches it).
    """

    node_id: int
    name: str
    path: str  # "" for the root, and for a node no edge reaches (not a slot either)
    children: list["ObjectNode"] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    slots: list[SlotRef] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    slot_of: str | None = None
    model_path: str | None = None
    registered_saver: str = ""
    has_checkpoint_values: bool | None = None
    parent: "ObjectNode | None" = field(default=None, repr=False)

    @property
    def is_variable(self) -> bool:
        attributes = self.attributes
        if len(attributes) == 1:      # most objects that hold values hold one
            return attributes[0].name == VARIABLE_VALUE
        return any(a.name == VARIABLE_VALUE for a in attributes)

    @property
    def value_key(self) -> str | None:
        """The checkpoint key of the node's variable value, if it is a variable."""
        for a in self.attributes:
            if a.name == VARIABLE_VALUE:
                return a.checkpoint_key
        return None

    @property
    def full_name(self) -> str:
        """The variable's own name (``dense/kernel``) as saved, "" when there is none."""
        for a in self.attributes:
            if a.name == VARIABLE_VALUE:
                return a.full_name
        return ""

    def walk(self) -> Iterator["ObjectNode"]:
        """This node and its tree descendants, depth first in stored order."""
        return walk_tree(self)


@dataclass
class ObjectGraph:
    """A decoded object graph: ``nodes[i]`` is node ``i``; ``by_key`` maps keys to nodes.

    ``from_names`` is True when the tree was rebuilt from key names only.
    ``optimizers`` are the nodes recognised as optimizers; ``groups`` maps node
    ids to one of :data:`GROUPS` for nodes that hold values.
    """

    root: ObjectNode
    nodes: list[ObjectNode]
    by_key: dict[str, ObjectNode]
    optimizers: list[ObjectNode] = field(default_factory=list)
    groups: dict[int, str] = field(default_factory=dict)
    from_names: bool = False
    unreadable: str | None = None   # why the stored graph could not be decoded (the tree is then from names)

    def node(self, key: str) -> ObjectNode | None:
        return self.by_key.get(key)

    def find(self, path: str) -> ObjectNode | None:
        """The node with canonical path or alias ``path``."""
        return find_by_path(self, path)

    def variables(self) -> list[ObjectNode]:
        return [n for n in self.nodes if n.is_variable]

    def group(self, node: ObjectNode) -> str:
        return self.groups.get(node.node_id, OTHER)

    def keys(self) -> list[str]:
        return list(self.by_key)


def walk_tree(root):
    """A node with ``children`` and its descendants, depth first in stored order (no recursion)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def find_by_path(graph, path: str):
    """The node of ``graph.nodes`` whose canonical path or an alias is ``path`` (index built once)."""
    index = graph.__dict__.get("_path_index")
    if index is None:
        index = {}
        for n in graph.nodes:
            index.setdefault(n.path, n)
            for a in n.aliases:
                index.setdefault(a, n)
        graph.__dict__["_path_index"] = index
    return index.get(path)


# --- paths -----------------------------------------------------------------------------------

def escape(local_name: str) -> str:
    """A local name as it appears in a checkpoint key ("." doubled, "/" as ".S")."""
    return local_name.replace(".", "..").replace("/", ".S")


def unescape(part: str) -> str:
    out = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "." and i + 1 < len(part):
            nxt = part[i + 1]
            if nxt == ".":
                out.append(".")
                i += 2
                continue
            if nxt == "S":
                out.append("/")
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


def join(parent_path: str, local_name: str) -> str:
    part = escape(local_name)
    return f"{parent_path}/{part}" if parent_path else part


def slot_key(variable_path: str, optimizer_path: str, slot_name: str) -> str:
    """The checkpoint key TF2 gives a slot declared in the object graph."""
    return (f"{variable_path}/{OPTIMIZER_SLOT}/{optimizer_path}/{escape(slot_name)}"
            f"/{ATTRIBUTES}/{VARIABLE_VALUE}")


@dataclass(frozen=True)
class Traversal:
    """Breadth-first canonical paths over ``edges[i] = [(local_name, child_id), ...]``.

    ``parent[i]`` is the canonical parent (-1 for the root and unreached nodes),
    ``path[i]`` the escaped path (None when unreached), ``tree[i]`` the tree
    edges, ``extra[i]`` the other edges out of node ``i``.
    """

    parent: list[int]
    name: list[str]
    path: list[str | None]
    tree: list[list[int]]
    extra: list[list[tuple[str, int]]]


def traverse(edges: list[list[tuple[str, int]]], root: int = 0, blocked: set[int] | frozenset = frozenset()) -> Traversal:
    """Breadth-first walk from ``root`` in stored child order; linear in nodes + edges.

    Nodes in ``blocked`` are reached but not expanded.
    """
    n = len(edges)
    parent = [-1] * n
    name = [""] * n
    path: list[str | None] = [None] * n
    tree: list[list[int]] = [[] for _ in range(n)]
    extra: list[list[tuple[str, int]]] = [[] for _ in range(n)]
    if n == 0:
        return Traversal(parent, name, path, tree, extra)
    path[root] = ""
    depth = [0] * n
    queue = deque([root])
    while queue:
        here = queue.popleft()
        if here in blocked and here != root:
            continue
        base = path[here]
        for local, child in edges[here]:
            if not isinstance(local, str):  # protobuf hands a name that is not UTF-8 over as bytes
                raise ObjectGraphError(f"node {here} names a child with bytes that are not UTF-8 text")
            if path[child] is None:
                depth[child] = depth[here] + 1
                if depth[child] > MAX_DEPTH:
                    raise ObjectGraphError(f"objects nest more than {MAX_DEPTH} levels deep (node {child}); "
                                           "no real model does")
                part = local if "." not in local and "/" not in local else escape(local)   # join(), inline
                path[child] = f"{base}/{part}" if base else part
                parent[child] = here
                name[child] = local
                tree[here].append(child)
                queue.append(child)
            else:
                extra[here].append((local, child))
    return Traversal(parent, name, path, tree, extra)


@contextmanager
def no_gc_pauses():
    """Build many small objects without the cyclic collector running in between.

    With TensorFlow imported the collector's full passes walk a very large heap;
    letting them fire while a tree of thousands of nodes is built made parsing
    several times slower. Collection resumes (if it was on) afterwards.
    """
    with collector.paused():
        yield


# --- decoding --------------------------------------------------------------------------------

def decode(data: bytes):
    """The raw ``TrackableObjectGraph`` message (the project's class)."""
    try:
        proto = TrackableObjectGraph.FromString(bytes(data))
    except DecodeError as exc:
        raise ObjectGraphError(f"not a TrackableObjectGraph ({exc})") from exc
    return proto


def parse_object_graph(data: bytes) -> ObjectGraph:
    """Decode ``_CHECKPOINTABLE_OBJECT_GRAPH`` bytes into an :class:`ObjectGraph`."""
    with no_gc_pauses():
        try:
            return _parse_object_graph(data)
        except (UnicodeDecodeError, TypeError) as exc:  # a name that is not UTF-8 (protobuf gives bytes)
            raise ObjectGraphError(f"a name in it is not UTF-8 text ({type(exc).__name__})") from exc


def _count_objects(data: bytes, limit: int) -> int:
    """How many nodes the serialized graph holds, counted up to ``limit`` + 1 without decoding them.

    The decoder spends some 70 bytes on every node, so a crafted graph of two-byte empty nodes would
    turn 32 MB into a gigabyte; counting first (a cheap walk over the top-level fields) refuses it.
    """
    count = pos = 0
    end = len(data)
    while pos < end and count <= limit:
        if data[pos] != 0x0A:  # not a node (field 1, length-delimited): the decoder says what it is
            break
        size, shift, pos = 0, 0, pos + 1
        while pos < end:
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            if b < 0x80 or shift > 63:
                break
            shift += 7
        pos += size
        count += 1
    return count


_NODE_ID = operator.attrgetter("node_id")
_LOCAL_NAME = operator.attrgetter("local_name")


def child_edges(objects, error) -> list[list[tuple[str, int]]]:
    """Each object's ``(local name, child id)`` references (an object graph's, or a SavedModel's), every id
    checked against the count: the first that is out of range raises ``error(index, local name, id)``."""
    count = len(objects)
    edges: list[list[tuple[str, int]]] = []
    for i, obj in enumerate(objects):
        refs = obj.children
        if not refs:
            edges.append([])
            continue
        refs = list(refs)     # each reference's wrapper made once, for its id and its name
        ids = list(map(_NODE_ID, refs))
        row = list(zip(map(_LOCAL_NAME, refs), ids))
        if min(ids) < 0 or max(ids) >= count:
            local, child = next((local, child) for local, child in row if not 0 <= child < count)
            raise error(i, local, child)
        edges.append(row)
    return edges


def _parse_object_graph(data: bytes) -> ObjectGraph:
    if len(data) > OBJECT_GRAPH_LIMIT:
        raise ObjectGraphError(f"it is {len(data)} bytes, more than any real object graph")
    if _count_objects(data, MAX_OBJECTS) > MAX_OBJECTS:
        raise ObjectGraphError(f"it has more than {MAX_OBJECTS} objects, more than any real model")
    proto = decode(data)
    count = len(proto.nodes)
    if count == 0:
        raise ObjectGraphError("the object graph has no nodes")
    edges = child_edges(proto.nodes, lambda i, local, child: ObjectGraphError(
        f"node {i} names child {local!r} as node {child}, but the graph has {count} nodes"))

    walk = traverse(edges)
    nodes = [ObjectNode(node_id=i, name=walk.name[i], path=walk.path[i] if walk.path[i] is not None else "")
             for i in range(count)]
    slot_owners = []    # the objects that declare slots (optimizers)
    for i, obj in enumerate(proto.nodes):
        node = nodes[i]
        if obj.slot_variables:
            slot_owners.append((i, obj))
        attributes = obj.attributes
        if attributes:
            node.attributes = [Attribute(a.name, a.full_name, a.checkpoint_key) for a in attributes]
        if obj.HasField("registered_saver"):
            node.registered_saver = obj.registered_saver.name
        if obj.HasField("has_checkpoint_values"):
            node.has_checkpoint_values = obj.has_checkpoint_values.value
        node.children = [nodes[c] for c in walk.tree[i]]
        for c in walk.tree[i]:
            nodes[c].parent = node
        for local, child in walk.extra[i]:
            node.links.append(Link(local, child, nodes[child].path))
            if walk.path[i] is not None:
                nodes[child].aliases.append(join(node.path, local))

    # Slots declared in the graph (TF2 OptimizerV2 / legacy Keras optimizers, TF1 optimizers).
    declared_slots = set()
    optimizer_ids = set()
    for i, obj in slot_owners:
        optimizer_ids.add(i)
        for ref in obj.slot_variables:
            var_id, slot_id = ref.original_variable_node_id, ref.slot_variable_node_id
            if not (0 <= var_id < count and 0 <= slot_id < count):
                raise ObjectGraphError(
                    f"node {i} declares slot {ref.slot_name!r} with node ids {var_id}/{slot_id} outside the graph")
            var, slot = nodes[var_id], nodes[slot_id]
            if not slot.path:
                # Slot variables are not children of anything: name them like their key.
                slot.path = f"{var.path}/{OPTIMIZER_SLOT}/{nodes[i].path}/{escape(ref.slot_name)}"
                slot.name = ref.slot_name
            key = slot.value_key or slot_key(var.path, nodes[i].path, ref.slot_name)
            var.slots.append(SlotRef(ref.slot_name, nodes[i].path, key, slot_id))
            slot.slot_of = var.path
            declared_slots.add(slot_id)

    graph = ObjectGraph(root=nodes[0], nodes=nodes, by_key={})
    for node in nodes:
        for a in node.attributes:
            if a.checkpoint_key:
                graph.by_key.setdefault(a.checkpoint_key, node)
    _analyse(graph, edges, optimizer_ids, declared_slots, walk)
    return graph


def _looks_like_optimizer(names: set[str]) -> bool:
    """An iteration counter beside a learning rate or a variable list: a Keras or TF2 optimizer."""
    return bool(names & _ITERATION_NAMES and names & {"_variables", "learning_rate", "_learning_rate", "lr"})


def _analyse(graph: ObjectGraph, edges, optimizer_ids: set[int], declared_slots: set[int],
             walk: Traversal | None = None) -> None:
    """Find optimizers, Keras list-kept slots, model paths and value groups."""
    nodes = graph.nodes
    for i, row in enumerate(edges):
        if not row:           # a leaf (every variable): neither an optimizer nor its parent
            continue
        names = {local for local, _ in row}
        if _looks_like_optimizer(names):
            optimizer_ids.add(i)
        for local, child in row:
            if local in _OPTIMIZER_EDGES and edges[child]:
                optimizer_ids.add(child)
    graph.optimizers = [nodes[i] for i in sorted(optimizer_ids, key=lambda i: (nodes[i].path.count("/"), i))]

    # model_path: reach from the root without entering an optimizer.
    # Optimizers are reached but not expanded, so a path found here never passes one.
    # Without optimizers that is the walk already made (``walk``, when given).
    if optimizer_ids or walk is None:
        walk = traverse(edges, blocked=optimizer_ids)
    for i, node in enumerate(nodes):
        node.model_path = walk.path[i] if i not in optimizer_ids else None

    # Slots the Keras optimizers keep in lists (``_momentums``, ``_velocities``, ``momentums`` ...).
    list_slots: set[int] = set()
    trainable_lists: dict[int, list[int]] = {}
    for opt_id in optimizer_ids:
        opt = nodes[opt_id]
        children = dict((local, child) for local, child in edges[opt_id])
        tv = children.get("_trainable_variables")
        tv_ids = [c for _, c in edges[tv]] if tv is not None else []
        trainable_lists[opt_id] = tv_ids
        for local, child in edges[opt_id]:
            if nodes[child].is_variable or local in _NON_SLOT_LISTS or local in _OPTIMIZER_EDGES:
                continue
            members = [c for _, c in edges[child]]
            if not members or not all(nodes[c].is_variable for c in members):
                continue
            owners = _match_list_slots(nodes, members, tv_ids, local)
            for slot_id, (var_id, slot_name) in owners.items():
                slot = nodes[slot_id]
                var = nodes[var_id]
                var.slots.append(SlotRef(slot_name, opt.path, slot.value_key or "", slot_id))
                slot.slot_of = var.path
                list_slots.add(slot_id)
            # Unmatched members are still optimizer slots, just of an unknown variable.
            list_slots.update(members)

    keras_model_values = {c for ids in trainable_lists.values() for c in ids}
    slots = declared_slots | list_slots     # once: a union per node costs nodes × slots (40 ms for a ResNet152)
    for node in nodes:
        if not node.attributes:
            continue
        graph.groups[node.node_id] = _node_group(node, slots, keras_model_values)


def _node_group(node: ObjectNode, slots: set[int], keras_model_values: set[int]) -> str:
    if not node.is_variable:
        return OTHER
    if node.node_id in slots:
        return SLOT
    first = node.path.split("/", 1)[0]
    if node.path == first and first in COUNTER_NAMES:
        return COUNTER
    if node.model_path is not None or node.node_id in keras_model_values:
        return MODEL
    # The optimizer's own values (iterations, learning rate, ...) and anything else
    # reached only through it that is neither a slot nor a listed model value.
    return OPTIMIZER


def _match_list_slots(nodes: list[ObjectNode], members: list[int], tv_ids: list[int], list_name: str) -> dict[int, tuple[int, str]]:
    """Map each slot in a Keras optimizer list to (variable node id, slot name).

    Keras 3 keeps ``_trainable_variables`` in the same order as its slot lists;
    the Keras 2 optimizers of ``tf_keras`` do not save that list, so their slots
    are matched by name (``Adam/m/dense/kernel`` belongs to ``dense/kernel``).
    """
    fallback = _singular(list_name.lstrip("_"))
    out: dict[int, tuple[int, str]] = {}
    if tv_ids and len(tv_ids) == len(members):
        for slot_id, var_id in zip(members, tv_ids):
            out[slot_id] = (var_id, _slot_name(nodes[slot_id].full_name, nodes[var_id].full_name) or fallback)
        return out
    by_name: dict[str, int] = {}
    ambiguous = set()
    skip = set(members)
    for n in nodes:
        fn = n.full_name
        if not fn or n.node_id in skip:
            continue
        if fn in by_name:
            ambiguous.add(fn)
        by_name[fn] = n.node_id
    for slot_id in members:
        full = nodes[slot_id].full_name
        parts = full.split("/")
        # Try the longest variable name that is a suffix of the slot's name.
        for start in range(1, len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in by_name and candidate not in ambiguous:
                out[slot_id] = (by_name[candidate], parts[start - 1])
                break
    return out


def _singular(name: str) -> str:
    """``momentums`` → ``momentum``, ``velocities`` → ``velocity``: the slot name of a Keras list."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and len(name) > 1:
        return name[:-1]
    return name


def _slot_name(slot_full: str, var_full: str) -> str | None:
    if not slot_full or not var_full:
        return None
    # Keras 3: "<optimizer>/<variable path with _>_<slot>".
    flat = var_full.replace("/", "_")
    tail = slot_full.split("/", 1)[-1]
    if tail.startswith(flat + "_"):
        return tail[len(flat) + 1:]
    # Keras 2: "<optimizer>/<slot>/<variable name>".
    if slot_full.endswith("/" + var_full):
        head = slot_full[: -len(var_full) - 1]
        return head.rsplit("/", 1)[-1]
    return None


# --- without an object graph -----------------------------------------------------------------

def _split_key(key: str) -> tuple[str, str | None, tuple[str, str] | None]:
    """(object path, attribute name or None for TF1 names, (optimizer path, slot name) or None)."""
    marker = f"/{ATTRIBUTES}/"
    if marker not in key:
        return key, None, None
    obj, attr = key.rsplit(marker, 1)
    slot_marker = f"/{OPTIMIZER_SLOT}/"
    if slot_marker in obj:
        var, rest = obj.split(slot_marker, 1)
        opt, _, slot = rest.rpartition("/")
        return var, attr, (opt, unescape(slot))
    return obj, attr, None


def name_tree(keys: Iterable[str]) -> ObjectNode:
    """The "/"-separated tree of checkpoint keys, for checkpoints without an object graph."""
    return graph_from_keys(keys).root


def graph_from_keys(keys: Iterable[str]) -> ObjectGraph:
    """An :class:`ObjectGraph` rebuilt from key names alone (``from_names`` is True).

    TF2 keys are split into the object path, the attribute and, for
    ``.OPTIMIZER_SLOT`` keys, the slot of the variable; TF1 names become
    variables at their "/"-separated path, and their optimizer slots
    (``.../Momentum``, ``.../Adam_1``) are attached to the variable they extend.
    """
    with no_gc_pauses():
        return _graph_from_keys(keys)


def _graph_from_keys(keys: Iterable[str]) -> ObjectGraph:
    keys = sorted(set(keys), key=natural_key)  # layer-1, layer-4, layer-10: numbers in names by value
    root = ObjectNode(node_id=0, name="", path="")
    nodes = [root]
    by_path: dict[str, ObjectNode] = {"": root}
    graph = ObjectGraph(root=root, nodes=nodes, by_key={}, from_names=True)

    def ensure(path: str, tf2: bool) -> ObjectNode:
        node = by_path.get(path)
        if node is not None:
            return node
        parts = path.split("/")
        if len(parts) > MAX_DEPTH:  # a crafted key thousands of parts deep: the rest stays one name
            parts = parts[:MAX_DEPTH - 1] + ["/".join(parts[MAX_DEPTH - 1:])]
        parent, here = root, ""
        for i, part in enumerate(parts):
            here = part if i == 0 else f"{here}/{part}"
            node = by_path.get(here)
            if node is None:
                node = ObjectNode(node_id=len(nodes), name=unescape(part) if tf2 else part, path=here,
                                  parent=parent)
                nodes.append(node)
                parent.children.append(node)
                by_path[here] = node
            parent = node
        return node

    key_set = set(keys)
    slots_pending: list[tuple[str, str, str | None, str]] = []
    optimizer_paths: set[str] = set()
    for key in keys:
        if key == OBJECT_GRAPH_KEY:
            continue
        obj, attr, slot = _split_key(key)
        if slot is not None:
            slots_pending.append((obj, slot[0], slot[1], key))
            optimizer_paths.add(slot[0])
            continue
        if attr is None:
            m = _TF1_SLOT_SUFFIX.match(key)
            if m and m.group("var") in key_set:
                slots_pending.append((m.group("var"), "", m.group("slot"), key))
                continue
            node = ensure(key, tf2=False)
            node.attributes.append(Attribute(VARIABLE_VALUE, key, key))
        else:
            node = ensure(obj, tf2=True)
            node.attributes.append(Attribute(attr, "", key))
        graph.by_key[key] = node

    for var_path, opt_path, slot_name, key in slots_pending:
        var = by_path.get(var_path) or ensure(var_path, tf2=bool(opt_path))
        slot_node = ObjectNode(node_id=len(nodes), name=slot_name or "", path=key.rsplit(f"/{ATTRIBUTES}/", 1)[0],
                               slot_of=var.path)
        slot_node.attributes.append(Attribute(VARIABLE_VALUE, "", key))
        nodes.append(slot_node)
        var.slots.append(SlotRef(slot_name or "", opt_path, key, slot_node.node_id))
        graph.by_key[key] = slot_node

    for path in sorted(optimizer_paths):
        if path in by_path:
            graph.optimizers.append(by_path[path])
    for node in nodes:
        if node.attributes:
            graph.groups[node.node_id] = _group_from_name(node.attributes[0].checkpoint_key)
        # Unknowable without the graph: a value under the optimizer may also be the model's.
        node.model_path = None if (_optimizer_component(node.path) or node.slot_of is not None) else node.path
    return graph


# --- classification --------------------------------------------------------------------------

def _optimizer_component(path: str) -> bool:
    return any(part in _OPTIMIZER_EDGES for part in path.split("/"))


def keras3_model_value(path: str) -> bool:
    return "/_trainable_variables/" in f"/{path}/" and _optimizer_component(path)


def _group_from_name(key: str) -> str:
    if key == OBJECT_GRAPH_KEY:
        return OBJECT_GRAPH
    obj, attr, slot = _split_key(key)
    if slot is not None:
        return SLOT
    if attr is not None and attr != VARIABLE_VALUE:
        return OTHER
    first = obj.split("/", 1)[0]
    if obj == first and first in COUNTER_NAMES:
        return COUNTER
    if attr is None:
        if key.rsplit("/", 1)[-1] == "global_step":
            return COUNTER
        if _TF1_SLOT_SUFFIX.match(key):
            return SLOT
        if _TF1_OPTIMIZER_STATE.search(key):
            return OPTIMIZER
        return MODEL
    if _optimizer_component(obj):
        return MODEL if keras3_model_value(obj) else OPTIMIZER
    return MODEL


def classify_key(key: str, graph: ObjectGraph | None = None) -> str:
    """The group (one of :data:`GROUPS`) of one checkpoint key.

    With a decoded object graph the answer comes from the graph (Keras list-kept
    slots, model values keyed under the optimizer); without one, from the name.
    """
    if key == OBJECT_GRAPH_KEY:
        return OBJECT_GRAPH
    if graph is not None:
        node = graph.by_key.get(key)
        if node is not None:
            attr = next((a for a in node.attributes if a.checkpoint_key == key), None)
            if attr is not None and attr.name != VARIABLE_VALUE:
                return OTHER
            return graph.group(node)
    return _group_from_name(key)


def classify_keys(keys: Iterable[str], graph: ObjectGraph | None = None) -> dict[str, str]:
    """``{key: group}`` for every key."""
    return {k: classify_key(k, graph) for k in keys}


# --- from a bundle ---------------------------------------------------------------------------

def object_graph_bytes(bundle) -> bytes | None:
    """The serialized object graph of a tensor bundle; None when the bundle has none.

    Raises the bundle's own errors (a missing data shard, for instance).
    """
    if OBJECT_GRAPH_KEY not in bundle.entries:
        return None
    return bundle.read_raw(OBJECT_GRAPH_KEY)


def graph_from_bundle(bundle) -> ObjectGraph:
    """The object graph of a bundle, or the name tree of its keys when the graph is
    absent or unreadable (a missing data shard, or bytes that do not decode: ``unreadable`` says why).
    """
    from .bundle import BundleError  # the bundle reader is optional for the rest of this module

    entry = bundle.entries.get(OBJECT_GRAPH_KEY)
    if entry is not None and entry.size > OBJECT_GRAPH_LIMIT:  # not read at all
        graph = graph_from_keys(bundle.entries)
        graph.unreadable = f"it claims {entry.size} bytes, more than any real object graph"
        return graph
    try:
        data = object_graph_bytes(bundle)
    except BundleError:
        data = None
    if data is None:
        return graph_from_keys(bundle.entries)
    try:
        return parse_object_graph(data)
    except ObjectGraphError as exc:
        graph = graph_from_keys(bundle.entries)
        graph.unreadable = str(exc)
        return graph
