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


def _callers(meta, tree, functions, calls, graph_nodes) -> dict[str, str]:
    """``{library function: what reaches it}``: a signature's name, else an object path of the object graph."""
    entries: list[tuple[str, set[str]]] = []
    for name in sorted(meta.signature_def):
        if name.startswith("__saved_model_"):
            continue
        sd = meta.signature_def[name]
        tensors = [t.name for t in sd.inputs.values()] + [t.name for t in sd.outputs.values()]
        used = _upstream(graph_nodes, tensors)
        entries.append((f"signature {name}", _called([graph_nodes[n] for n in used], functions)))
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
    calls = {name: _called(f.node_def, functions) for name, f in functions.items()}
    graph_nodes = {n.name: n for n in graph.node}

    save_nodes: set[str] = set()
    restore_nodes: set[str] = set()
    if meta.HasField("saver_def"):
        save_nodes = _upstream(graph_nodes, [meta.saver_def.save_tensor_name])
        restore_nodes = _upstream(graph_nodes, [meta.saver_def.restore_op_name])
    save_fns = _closure(_called([graph_nodes[n] for n in save_nodes], functions), calls)
    restore_fns = _closure(_called([graph_nodes[n] for n in restore_nodes], functions), calls)

    init = meta.signature_def.get(INIT_OP_SIGNATURE)
    load_nodes = set(restore_nodes)
    if init is not None:
        load_nodes |= _upstream(graph_nodes, [t.name for t in init.outputs.values()])
    load_roots = _called([graph_nodes[n] for n in load_nodes], functions)
    if tree is not None:
        for node in tree.nodes:
            if node.kind == "resource":
                for child in node.children:
                    if child.name in LOAD_TIME_FUNCTIONS:
                        load_roots.update(f for f in child.concrete_functions if f in functions)
    load_fns = _closure(load_roots, calls)

    found: list[tuple[str, str, str, str, bool]] = []     # (op, family, function, node, on load)
    for node in graph.node:
        family = _effect_family(node)
        if family is None or (family == "checkpoint" and _saver_op(node.op, node.name in save_nodes,
                                                                 node.name in restore_nodes)):
            continue
        found.append((node.op, family, "", node.name, node.name in load_nodes))
    for name, fn in functions.items():
        for node in fn.node_def:
            family = _effect_family(node)
            if family is None or (family == "checkpoint" and _saver_op(node.op, name in save_fns, name in restore_fns)):
                continue
            found.append((node.op, family, name, node.name, name in load_fns))
    if not found:
        return []
    callers = _callers(meta, tree, functions, calls, graph_nodes)
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
