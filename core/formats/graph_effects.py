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


def _function_calls(fn, functions) -> set[str]:
    """The library functions ``fn`` calls. A call names its callee (as a node's op or a func attribute), so
    a function whose nodes' bytes hold no library function's name calls none: that is looked up in the
    serialized nodes (C) first, where it costs less than walking every node in Python (seconds for the saver
    function of 50,000 variables)."""
    nodes = fn.node_def
    if len(functions) <= _NAME_SEARCHES and len(nodes) >= _NODES_WORTH_IT:
        names = [name.encode("utf-8") for name in functions]   # its own too: a node naming it calls it again
        for start in range(0, len(nodes), _CHUNK):
            # a few thousand nodes at a time: each serialization a short call, so other threads (the window's)
            # are not held up for the whole function
            part = type(fn)()
            part.node_def.extend(nodes[start:start + _CHUNK])
            blob = part.SerializeToString()
            if any(name in blob for name in names):
                return _called(nodes, functions)
        return set()
    return _called(nodes, functions)


# One search of a function's bytes per library function (gigabytes a second) in place of a walk of its nodes
# (microseconds a node): worth it for big functions in a small library (a TF2 export has four or five).
_NAME_SEARCHES = 16
_NODES_WORTH_IT = 1000
_CHUNK = 4096


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


def _called_by(names, graph_calls: dict[str, set[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        called = graph_calls.get(name)
        if called:
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
    stack = [n.lstrip("^").split(":")[0] for n in names if n]
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    return seen


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


def scan_meta_graph(meta, tree=None) -> list[Effect]:
    """Every op of the meta graph (a ``MetaGraphDef`` message) that reaches outside the model.

    ``tree`` is the meta graph's object tree (:class:`~.savedmodel.SavedObjectTree`), used to find the
    functions loading runs (resource initializers) and to name what calls each function.
    """
    graph = meta.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    calls = {name: _function_calls(f, functions) for name, f in functions.items()}
    graph_nodes = {n.name: n for n in graph.node}
    graph_calls = _graph_calls(graph_nodes, functions)

    save_nodes: set[str] = set()
    restore_nodes: set[str] = set()
    if meta.HasField("saver_def"):
        save_nodes = _upstream(graph_nodes, [meta.saver_def.save_tensor_name])
        restore_nodes = _upstream(graph_nodes, [meta.saver_def.restore_op_name])
    save_fns = _closure(_called_by(save_nodes, graph_calls), calls)
    restore_fns = _closure(_called_by(restore_nodes, graph_calls), calls)

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

    found: list[tuple[str, str, str, str, bool]] = []     # (op, family, function, node, on load)
    for node in graph.node:
        if node.op not in OPS and node.op not in WHEN:   # most nodes: no call to _effect_family
            continue
        family = _effect_family(node)
        if family is None or (family == "checkpoint" and _saver_op(node.op, node.name in save_nodes,
                                                                 node.name in restore_nodes)):
            continue
        found.append((node.op, family, "", node.name, node.name in load_nodes))
    for name, fn in functions.items():
        for node in fn.node_def:
            if node.op not in OPS and node.op not in WHEN:
                continue
            family = _effect_family(node)
            if family is None or (family == "checkpoint" and _saver_op(node.op, name in save_fns, name in restore_fns)):
                continue
            found.append((node.op, family, name, node.name, name in load_fns))
    if not found:
        return []
    callers = _callers(meta, tree, functions, calls, graph_nodes, graph_calls)
    return [Effect(op, family, fn, node, on_load, callers.get(fn, "")) for op, family, fn, node, on_load in found]


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
