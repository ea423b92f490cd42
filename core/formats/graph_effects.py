"""What a SavedModel's graph does outside the model, read without TensorFlow.

A graph may read or write files, call back into Python, talk to other machines or wait on other
processes; loading a SavedModel runs its initializers (and, for a TF1 export, its restore and init
ops), detecting runs its signatures. :func:`scan_meta_graph` looks at every node of the graph and of
every library function for the ops of :mod:`.effect_ops` (a table made from TensorFlow's op registry)
and says where each is and whether loading alone runs it.

The saver that saves and restores the model's own variables (``SaveV2``, ``RestoreV2``,
``MergeV2Checkpoints`` behind ``saver_def``) is normal and not reported; the same ops anywhere else are.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass

from .effect_ops import FAMILIES, OPS, WHEN

SAVE_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"})
RESTORE_OPS = frozenset({"Restore", "RestoreV2", "RestoreSlice", "DTensorRestoreV2"})
# The functions of a restored resource that ``tf.saved_model.load`` calls itself.
LOAD_TIME_FUNCTIONS = ("_create_resource", "_initialize")
INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class Effect:
    """One op of the graph that reaches outside the model.

    ``function`` is the library function holding it ("" for a node of the graph itself), ``caller``
    what reaches that function (``signature serving_default``, an object path such as
    ``table/_initialize``; "" when unknown), ``on_load`` whether loading the model runs it.
    """

    op: str
    family: str
    function: str
    node: str
    on_load: bool = False
    caller: str = ""

    @property
    def what(self) -> str:
        return FAMILIES.get(self.family, self.family)

    def describe(self) -> str:
        where = f"in {self.function}" if self.function else f"in graph node {self.node}"
        if self.caller:
            where += f" ({self.caller})"
        return f"{self.op} ({self.what}) {where}" + (", run by loading the model" if self.on_load else "")


def _effect_family(node) -> str | None:
    listed = OPS.get(node.op)
    if listed is not None:
        return listed[0]
    rule = WHEN.get(node.op)
    if rule is None:
        return None
    family, attr, harmless = rule
    if attr not in node.attr:          # an attribute left at its default: the harmless one
        return None
    value = node.attr[attr]
    texts = [s.decode("utf-8", "replace") for s in (value.list.s if value.HasField("list") else [value.s])]
    texts = [t for t in texts if t]
    if not texts:
        return None if "" in harmless else family
    for text in texts:
        if not any(text == h or (h.endswith("*") and text.startswith(h[:-1])) for h in harmless if h):
            return family
    return None


def _called(nodes, functions) -> set[str]:
    """The library functions these nodes call (as their op, or through a function attribute)."""
    out: set[str] = set()
    for node in nodes:
        if node.op in functions:
            out.add(node.op)
        for value in node.attr.values():
            if value.HasField("func") and value.func.name in functions:
                out.add(value.func.name)
            if value.HasField("list"):
                out.update(f.name for f in value.list.func if f.name in functions)
    return out


def _graph_calls(graph_nodes: dict, functions) -> dict[str, set[str]]:
    """``{graph node name: the library functions it calls}`` for the nodes that call any, in one pass."""
    out: dict[str, set[str]] = {}
    for name, node in graph_nodes.items():
        called = {node.op} if node.op in functions else None
        for value in node.attr.values():      # as _called, inline: it runs once per node of the graph
            if value.HasField("func") and value.func.name in functions:
                called = (called or set()) | {value.func.name}
            if value.HasField("list"):
                listed = {f.name for f in value.list.func if f.name in functions}
                if listed:
                    called = (called or set()) | listed
        if called:
            out[name] = called
    return out


def _called_by(names: set[str], graph_calls: dict[str, set[str]]) -> set[str]:
    """The functions the graph nodes ``names`` call (few nodes call any: those are looked up in ``names``)."""
    out: set[str] = set()
    for name, called in graph_calls.items():
        if name in names:
            out |= called
    return out


def _closure(start: set[str], calls: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    stack = list(start)
    while stack:
        for callee in calls.get(stack.pop(), ()):
            if callee not in seen:
                seen.add(callee)
                stack.append(callee)
    return seen


def _upstream(nodes: dict, names) -> set[str]:
    """The graph nodes these tensor or op names depend on, themselves included (data and control inputs)."""
    seen: set[str] = set()
    stack = _node_names([n for n in names if n])
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        inputs = nodes[name].input
        if inputs:
            stack.extend(_node_names(inputs))
    return seen


_INPUT_NODE = re.compile(r"^\^*([^:\n]*)", re.M)


def _node_names(inputs) -> list[str]:
    """The node of each input (``^name`` a control input, ``name:1`` an output): one regex over a few thousand
    at a time (a saver node has an input per variable), item by item where a name holds a line break."""
    out: list[str] = []
    for start in range(0, len(inputs), 4096):
        some = inputs[start:start + 4096]
        found = _INPUT_NODE.findall("\n".join(some))
        out.extend(found if len(found) == len(some) else [i.lstrip("^").split(":")[0] for i in some])
    return out


def _callers(meta, tree, functions, calls, graph_nodes, graph_calls) -> dict[str, str]:
    """``{library function: what reaches it}``: a signature's name, else an object path of the object graph."""
    entries: list[tuple[str, set[str]]] = []
    for name in sorted(meta.signature_def):
        if name.startswith("__saved_model_"):
            continue
        sd = meta.signature_def[name]
        tensors = [t.name for t in sd.inputs.values()] + [t.name for t in sd.outputs.values()]
        used = _upstream(graph_nodes, tensors)
        entries.append((f"signature {name}", _called_by(used, graph_calls)))
    if tree is not None:
        for node in tree.nodes:
            if node.concrete_functions and node.path:
                entries.append((node.path, {f for f in node.concrete_functions if f in functions}))
    out: dict[str, str] = {}
    for label, roots in entries:
        for fn in _closure(roots, calls):
            out.setdefault(fn, label)
    return out


class GraphScan:
    """One pass over the nodes of a meta graph, a part at a time: op counts, calls between functions and the
    nodes whose op reaches outside the model.

    Feed it the graph's nodes (:meth:`graph_part`) and each library function's nodes (:meth:`function_part`)
    in pieces, each with the bytes it was decoded from when there are any; then :meth:`effects`. Every node
    of every function is looked at: its op is taken in one C call per piece and compared with the table, so
    that only a node whose op is listed costs Python work. A call names its callee (as a node's op or in a
    function attribute), so a piece whose bytes hold no library function's name calls none, and its nodes are
    not walked for calls.
    """

    def __init__(self, function_names):
        self.functions = set(function_names)
        self._needles = [name.encode("utf-8") for name in self.functions if isinstance(name, str)]
        self.op_counts: Counter = Counter()          # the graph's and every function's
        self.graph_op_counts: Counter = Counter()    # the graph's own
        self.graph_node_count = 0
        self.function_node_count = 0
        self.graph_nodes: dict = {}
        self._calling_nodes: set = set()
        self._graph_hits: list = []                 # (node, family)
        self._function_hits: list = []              # (op, family, function, node name)
        self._calls: list[tuple[str, set[str]]] = []   # (function, what it calls), one per function met

    def _may_call(self, data) -> bool:
        if data is None:
            return True
        return any(needle in data for needle in self._needles) or len(self._needles) != len(self.functions)

    def _hits(self, nodes, ops):
        """The nodes whose op is listed (``ops``: the ops of ``nodes``) and reaches outside the model."""
        listed = _LISTED.intersection(ops)
        if not listed:
            return
        for node in nodes:
            if node.op in listed:
                family = _effect_family(node)
                if family is not None:
                    yield node, family

    def graph_part(self, nodes, data=None) -> None:
        """Nodes of the graph itself; ``data`` the bytes they were decoded from (None: unknown)."""
        nodes = list(nodes)          # each node's wrapper made once, for its op, its name and the index
        ops = Counter(map(_OP, nodes))
        self.op_counts.update(ops)
        self.graph_op_counts.update(ops)
        self.graph_node_count += len(nodes)
        self.graph_nodes.update(zip(map(_NAME, nodes), nodes))
        self._graph_hits.extend(self._hits(nodes, ops))
        if self.functions and self._may_call(data):
            self._calling_nodes.update(_NAME(n) for n in nodes)

    def function_start(self, name: str) -> None:
        """What follows (:meth:`function_part`) are the nodes of library function ``name``."""
        self._calls.append((name, set()))

    def function_part(self, nodes, data=None) -> None:
        name, called = self._calls[-1]
        ops = Counter(map(_OP, nodes))       # the ops of a piece: a handful, counted in C
        self.op_counts.update(ops)
        self.function_node_count += len(nodes)
        self._function_hits.extend((node.op, family, name, node.name) for node, family in self._hits(nodes, ops))
        if self.functions and self._may_call(data):
            called |= _called(nodes, self.functions)

    def effects(self, meta, tree=None) -> list[Effect]:
        """Every op met that reaches outside the model; ``meta`` the ``MetaGraphDef`` (its signatures and
        saver; its graph is not read), ``tree`` its object tree, used to find the functions loading runs
        (resource initializers) and to name what calls each function."""
        if not self._graph_hits and not self._function_hits:
            return []
        functions = self.functions
        calls = dict(self._calls)    # a name given twice: its last function, as TensorFlow keeps it
        graph_nodes = self.graph_nodes
        graph_calls = _graph_calls({name: graph_nodes[name] for name in self._calling_nodes
                                    if name in graph_nodes}, functions)

        save_nodes: set[str] = set()
        restore_nodes: set[str] = set()
        if meta.HasField("saver_def"):
            save_nodes = _upstream(graph_nodes, [meta.saver_def.save_tensor_name])
            restore_nodes = _upstream(graph_nodes, [meta.saver_def.restore_op_name])
        save_fns = _closure(_called_by(save_nodes, graph_calls), calls)
        restore_fns = _closure(_called_by(restore_nodes, graph_calls), calls)

        in_graph: list[tuple[str, str, str]] = []           # (op, family, node)
        for node, family in self._graph_hits:
            if family == "checkpoint" and _saver_op(node.op, node.name in save_nodes, node.name in restore_nodes):
                continue
            in_graph.append((node.op, family, node.name))
        in_functions = [(op, family, fn, name) for op, family, fn, name in self._function_hits
                        if not (family == "checkpoint" and _saver_op(op, fn in save_fns, fn in restore_fns))]
        if not in_graph and not in_functions:
            return []

        init = meta.signature_def.get(INIT_OP_SIGNATURE)
        load_nodes = set(restore_nodes)
        if init is not None:
            load_nodes |= _upstream(graph_nodes, [t.name for t in init.outputs.values()])
        load_roots = _called_by(load_nodes, graph_calls)
        if tree is not None:
            for node in tree.nodes:
                if node.kind == "resource":
                    for child in node.children:
                        if child.name in LOAD_TIME_FUNCTIONS:
                            load_roots.update(f for f in child.concrete_functions if f in functions)
        load_fns = _closure(load_roots, calls)
        found = [(op, family, "", name, name in load_nodes) for op, family, name in in_graph]
        found += [(op, family, fn, name, fn in load_fns) for op, family, fn, name in in_functions]
        callers = _callers(meta, tree, functions, calls, graph_nodes, graph_calls)
        return [Effect(op, family, fn, node, on_load, callers.get(fn, "")) for op, family, fn, node, on_load in found]

    def release(self) -> None:
        """Drop the decoded graph nodes a few thousand at a time: freeing 100,000 of them in one go is one
        call that holds every other thread up."""
        nodes, self.graph_nodes = self.graph_nodes, {}
        while nodes:
            for _ in range(min(len(nodes), 4096)):
                nodes.popitem()


_LISTED = frozenset(OPS) | frozenset(WHEN)
_OP = operator.attrgetter("op")
_NAME = operator.attrgetter("name")


def scan_meta_graph(meta, tree=None) -> list[Effect]:
    """Every op of the meta graph (a whole ``MetaGraphDef`` message) that reaches outside the model.

    ``tree`` is the meta graph's object tree (:class:`~.savedmodel.SavedObjectTree`), used to find the
    functions loading runs (resource initializers) and to name what calls each function.
    """
    return scan_whole(meta).effects(meta, tree)


def scan_whole(meta) -> GraphScan:
    """A :class:`GraphScan` of a whole ``MetaGraphDef`` message, every node walked."""
    graph = meta.graph_def
    scan = GraphScan([f.signature.name for f in graph.library.function])
    scan.graph_part(graph.node)
    for fn in graph.library.function:
        scan.function_start(fn.signature.name)
        scan.function_part(fn.node_def)
    return scan


def _saver_op(op: str, in_save: bool, in_restore: bool) -> bool:
    return (op in SAVE_OPS and in_save) or (op in RESTORE_OPS and in_restore)


def summary(effects: list[Effect], limit: int = 4) -> str:
    """One line: each op once per function, the ones loading runs first."""
    seen: dict[tuple[str, str], Effect] = {}
    for e in sorted(effects, key=lambda e: not e.on_load):
        seen.setdefault((e.op, e.function or e.node), e)
    lines = [e.describe() for e in seen.values()]
    text = "; ".join(lines[:limit])
    return text + (f"; and {len(lines) - limit} more" if len(lines) > limit else "")


def would_run(effects: list[Effect]) -> list[str]:
    """What loading and running the model would do, one entry per op and function (for a confirmation)."""
    seen: dict[tuple[str, str], str] = {}
    for e in sorted(effects, key=lambda e: not e.on_load):
        seen.setdefault((e.op, e.function or e.node), e.describe())
    return list(seen.values())
