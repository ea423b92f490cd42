"""The browsable inventory of a model folder: one tree type, built without TensorFlow.

``build_inventory(folder)`` takes a recognised folder (or a path to recognise), reads its checkpoint index, object
graph, SavedModel, configs and label map, and returns an :class:`Inventory` whose
``root`` is a tree of :class:`Node` (the GUI's tree model and the CLI's text tree
both read it) plus the flat facts ``inspect --json`` prints.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import folders, integrity
from ..formats.bundle import Bundle, BundleError, Entry
from ..formats.configs import ConfigError, ModelGardenParams, PipelineConfig, read_params_yaml, read_pipeline_config
from .checks import check_nearby_label_map, check_num_classes, check_object_graph
from .folders import CheckpointRef, ModelFolder
from ..formats.kerasfile import KerasFileError, KerasInfo, read_keras_file
from ..formats.tflite import TFLiteError, TFLiteInfo, packed_label_map, read_tflite
from ..formats.labels import LabelMap, LabelMapError, read_label_map
from ..formats.objectgraph import ObjectGraph, ObjectNode, graph_from_bundle, name_tree, walk_tree
from ..base import collector
from ..base.errors import UserError
from ..base.text import natural_key
from ..base.findings import ERROR, INFO, Finding, StrEnum, sort_findings
from ..formats.savedmodel import SavedModelError, SavedModelInfo, read_saved_model

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
STEP_KEYS = ("step/.ATTRIBUTES/VARIABLE_VALUE", "global_step/.ATTRIBUTES/VARIABLE_VALUE", "global_step",
             "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE")

class NodeKind(StrEnum):
    """What a tree row is. Members are their strings (``NodeKind.VARIABLE == "variable"``)."""

    GROUP = "group"            # a titled section: Checkpoint, Signatures, Label map, Problems ...
    OBJECT = "object"          # an object of the checkpoint's object graph that holds values below it
    VARIABLE = "variable"      # a model weight
    SLOT = "slot"              # an optimizer's per-variable state, shown under its variable
    VALUE = "value"            # any other stored value (step, counters, optimizer state, unnamed entries)
    SIGNATURE = "signature"
    INPUT = "input"
    OUTPUT = "output"
    FACT = "fact"              # one fact of a config, an op type, a function name
    LABEL = "label"
    FINDING = "finding"


GROUP, OBJECT, VARIABLE, SLOT, VALUE = NodeKind.GROUP, NodeKind.OBJECT, NodeKind.VARIABLE, NodeKind.SLOT, NodeKind.VALUE
SIGNATURE, INPUT, OUTPUT, FACT, LABEL, FINDING = (NodeKind.SIGNATURE, NodeKind.INPUT, NodeKind.OUTPUT, NodeKind.FACT,
                                                   NodeKind.LABEL, NodeKind.FINDING)
VALUE_KINDS = frozenset({VARIABLE, SLOT, VALUE})    # rows with a stored value behind them (``key`` names it)


@dataclass(eq=False)
class Node:
    """One row of the tree. ``path`` is unique in its tree; ``key`` names the bundle entry behind a value."""

    name: str
    kind: NodeKind
    shape: tuple | None = None
    dtype: str | None = None
    params: int | None = None       # number of elements (variables) or of parameters below (groups)
    nbytes: int | None = None
    key: str | None = None
    detail: str = ""
    children: list["Node"] = field(default_factory=list)
    parent: "Node | None" = field(default=None, repr=False)
    row: int = 0
    path: str = ""

    def add(self, child: "Node") -> "Node":
        child.parent = self
        child.row = len(self.children)
        child.path = f"{self.path}/{child.name}" if self.path else child.name
        self.children.append(child)
        return child

    def insert(self, index: int, child: "Node") -> "Node":
        self.add(child)
        self.children.insert(index, self.children.pop())
        for row, c in enumerate(self.children):
            c.row = row
        return child

    def walk(self):
        """This node and its descendants, depth first in row order."""
        return walk_tree(self)

    def total(self) -> tuple[int, int]:
        """Parameters and bytes of the variables below (slots not counted as parameters)."""
        params = nbytes = 0
        for n in self.walk():
            if n.kind == VARIABLE and n.params is not None:
                params += n.params
            if n.kind in (VARIABLE, SLOT, VALUE) and n.nbytes is not None:
                nbytes += n.nbytes
        return params, nbytes


@dataclass
class CheckpointSummary:
    prefix: str
    name: str
    number: int | None
    step: int | None
    entries: int | None

    def as_json(self) -> dict:
        return {"prefix": self.prefix, "step": self.step, "entries": self.entries}


@dataclass
class Inventory:
    folder: ModelFolder
    root: Node
    checkpoint: CheckpointRef | None = None
    bundle: Bundle | None = None
    checkpoints: list[CheckpointSummary] = field(default_factory=list)
    saved_model: SavedModelInfo | None = None
    label_map: LabelMap | None = None
    pipeline: PipelineConfig | None = None
    params: ModelGardenParams | None = None
    keras: KerasInfo | None = None
    tflite: TFLiteInfo | None = None
    object_graph: ObjectGraph | None = None
    findings: list[Finding] = field(default_factory=list)
    # The row of each finding under the tree's Problems group, and the value rows by key (made on first use).
    finding_rows: dict[Finding, Node] = field(default_factory=dict, repr=False, compare=False)
    _by_key: dict[str, Node] | None = field(default=None, init=False, repr=False, compare=False)
    _totals: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.folder.kind

    def totals(self) -> tuple[int, int]:
        """The tree's parameters and bytes (:meth:`Node.total`), counted once: by the reader, off the GUI
        thread (a walk of 50,000 rows is 70 ms)."""
        if self._totals is None:
            self._totals = self.root.total()
        return self._totals

    def node_for(self, finding: Finding) -> Node | None:
        """The tree node ``finding`` concerns: the value row with its checkpoint key, else the row at its
        inventory path, else its own row under Problems; None when it concerns none of this tree
        (a finding of a loaded model, say)."""
        if finding.key:
            if self._by_key is None:
                self._by_key = {}
                for n in self.root.walk():
                    if n.key and n.kind in VALUE_KINDS:
                        self._by_key.setdefault(n.key, n)
            node = self._by_key.get(finding.key)
            if node is not None:
                return node
        if finding.node:
            node = next((n for n in self.root.walk() if n.path == finding.node), None)
            if node is not None:
                return node
        return self.finding_rows.get(finding)

    def entries(self) -> list[Entry]:
        return list(self.bundle.entries.values()) if self.bundle else []

    @property
    def would_run(self) -> list[str]:
        """What loading (and running) this model would do beyond computing: the Python code a Keras file
        stores, the ops of a SavedModel's graph that reach outside it; one line each, for a confirmation.
        Empty for an ordinary model. Loading refuses such a model unasked (``LoadRefused``)."""
        from ..formats.graph_effects import would_run

        lines = list(self.keras.code) if self.keras is not None else []
        if self.saved_model is not None:
            lines.extend(would_run(self.saved_model.effects))
        return lines

    def value_source(self, key: str):
        """The reader holding ``key`` (a Bundle or a Keras file); UserError when no entry has that name."""
        if self.bundle is not None and key in self.bundle.entries:
            return self.bundle
        if self.keras is not None and any(w.key == key for w in self.keras.weights):
            return self.keras
        if self.tflite is not None:
            return self.tflite  # its read() gives values dequantised where the tensor is quantised
        where = self.checkpoint.index.name if self.checkpoint else self.folder.path
        raise UserError(f"{where} has no entry {key!r}")

    def tensor_stats(self, key: str, bins: int = 64):
        """Statistics of one value, streamed from disk for checkpoint entries."""
        from .stats import array_stats, tensor_stats  # NumPy is loaded only when values are looked at

        source = self.value_source(key)
        if isinstance(source, Bundle):
            return tensor_stats(source, key, bins=bins)
        return array_stats(source.read(key), bins=bins, key=key)

    def as_json(self) -> dict:
        entries = []
        if self.bundle is not None:
            entries = [{"key": e.key, "dtype": e.dtype_name, "shape": list(e.shape), "bytes": e.size}
                       for e in self.bundle.entries.values()]
        elif self.tflite is not None:
            entries = [_tflite_entry_json(t) for t in self.tflite.tensors()]
        elif self.keras is not None:
            entries = [{"key": w.key, "dtype": w.dtype, "shape": list(w.shape), "bytes": w.nbytes}
                       for w in self.keras.weights]
        signatures = []
        if self.saved_model is not None and self.saved_model.meta_graphs:
            for sig in self.saved_model.meta_graph().signatures:
                signatures.append({
                    "name": sig.name, "method": sig.method,
                    "inputs": [_spec_json(s) for s in sig.inputs],
                    "outputs": [_spec_json(s) for s in sig.outputs],
                })
        if self.tflite is not None:
            signatures = _tflite_signatures_json(self.tflite)
        extra = {"tflite": self.tflite.as_json()} if self.tflite is not None else {}
        return {
            "path": str(self.folder.path),
            "kind": self.folder.kind,
            "checkpoints": [c.as_json() for c in self.checkpoints],
            "entries": entries,
            "signatures": signatures,
            "label_map": self.label_map.as_json() if self.label_map is not None else None,
            "problems": [f.as_json() for f in self.findings],
            **extra,
        }


def _spec_json(spec) -> dict:
    return {"name": spec.key, "dtype": spec.dtype, "shape": list(spec.shape) if spec.shape is not None else None}


def _tflite_entry_json(t) -> dict:
    """A TFLite tensor as an ``entries`` row: the usual fields, plus where it lives and how it is quantised."""
    row = {"key": t.key, "dtype": t.dtype, "shape": list(t.shape), "bytes": t.nbytes,
           "name": t.name, "subgraph": t.subgraph, "index": t.index,
           "shape_signature": list(t.shape_signature) if t.shape_signature is not None else None}
    if t.quantization is not None:
        row["quantization"] = t.quantization.as_json()
    return row


def _tflite_signatures_json(info) -> list[dict]:
    out = []
    for sig in info.signatures:
        tensors = info.subgraphs[sig.subgraph].tensors if sig.subgraph < len(info.subgraphs) else []

        def spec(name, index):
            t = tensors[index] if 0 <= index < len(tensors) else None
            return {"name": name, "dtype": t.dtype if t else None,
                    "shape": list(t.free_shape) if t else None, "tensor": t.name if t else None}
        out.append({"name": sig.key, "method": "tflite", "subgraph": sig.subgraph,
                    "inputs": [spec(n, i) for n, i in sig.inputs], "outputs": [spec(n, i) for n, i in sig.outputs]})
    return out


_INT_DTYPES = {3: 4, 9: 8}  # int32, int64: byte widths


def read_step(bundle: Bundle) -> int | None:
    """The training step stored in a checkpoint, when its value is readable (a little-endian scalar)."""
    for key in STEP_KEYS:
        entry = bundle.entries.get(key)
        if entry is not None:
            width = _INT_DTYPES.get(entry.dtype)
            if width is None or entry.shape not in ((), (1,)) or entry.size != width:
                return None
            try:
                raw = bundle.read_raw(key)
            except BundleError:
                return None
            return int.from_bytes(raw, "big" if bundle.endianness == 1 else "little", signed=True)
    return None


# --- building the tree ------------------------------------------------------------------------

def _entry_node(name: str, kind: str, entry: Entry | None, key: str | None = None) -> Node:
    if entry is None:
        return Node(name, kind, key=key, detail="not in this checkpoint")
    return Node(name, kind, shape=entry.shape, dtype=entry.dtype_name, params=entry.num_elements,
                nbytes=entry.size, key=entry.key)


# Edges that only list objects owned elsewhere: the tree shows an object under its named owner
# (``class_head/kernel``), not under such a list (``variables/7``); and model values under the model,
# not under the optimizer that also reaches them (Keras 3 keys them ``optimizer/_trainable_variables/N``).
LIST_EDGES = frozenset({"variables", "trainable_variables", "non_trainable_variables", "_variables",
                        "_trainable_variables", "_all_variables", "keras_api", "weights"})
OPTIMIZER_EDGES = frozenset({"optimizer", "_optimizer"})


def display_children(graph: ObjectGraph) -> dict[int, list[tuple[str, ObjectNode]]]:
    """Where each object shows in the tree: ``{parent node id: [(edge name, node)]}``.

    A breadth-first walk that first avoids list edges and the root's optimizer, then
    places whatever only those reach. Slot variables are shown under their variable.
    """
    children: dict[int, list[tuple[str, ObjectNode]]] = {}
    placed = {graph.root.node_id}
    for relaxed in (False, True):
        visited = {graph.root.node_id}
        frontier = [graph.root]
        while frontier:
            nxt = []
            for node in frontier:
                edges = [(c.name, c) for c in node.children] + \
                        [(link.name, graph.nodes[link.node_id]) for link in node.links]
                for name, child in edges:
                    if child.node_id in visited:
                        continue
                    if not relaxed and (name in LIST_EDGES or (node is graph.root and name in OPTIMIZER_EDGES)):
                        continue
                    visited.add(child.node_id)
                    nxt.append(child)
                    if child.node_id not in placed and child.slot_of is None:
                        placed.add(child.node_id)
                        children.setdefault(node.node_id, []).append((name, child))
            frontier = nxt
    return children


def _object_subtree(parent: Node, obj: ObjectNode, bundle: Bundle, seen: set[str],
                    shown: dict[int, list[tuple[str, ObjectNode]]]) -> None:
    """Objects become rows; a variable's optimizer slots become rows under it."""
    for name, child in shown.get(obj.node_id, []):
        key = child.value_key
        if child.is_variable:
            node = parent.add(_entry_node(name, VARIABLE if child.model_path is not None else VALUE,
                                          bundle.entries.get(key), key))
        else:
            node = parent.add(Node(name, OBJECT))
        for a in child.attributes:
            if a.checkpoint_key == key:
                continue
            node.add(_entry_node(a.name, VALUE, bundle.entries.get(a.checkpoint_key), a.checkpoint_key))
        seen.update(a.checkpoint_key for a in child.attributes)
        for slot in child.slots:
            slot_node = node.add(_entry_node(f"{slot.slot_name} ({slot.optimizer_path})" if slot.optimizer_path
                                             else slot.slot_name, SLOT, bundle.entries.get(slot.checkpoint_key),
                                             slot.checkpoint_key))
            slot_node.detail = "optimizer slot"
            seen.add(slot.checkpoint_key)
        if key is not None and node.path.split("/", 1)[-1] != child.path:
            node.detail = f"key {child.path}"
        _object_subtree(node, child, bundle, seen, shown)


def _prune_empty(node: Node) -> None:
    """Drop objects that hold no value anywhere below them (functions, empty lists, traces)."""
    for child in node.children:
        _prune_empty(child)
    node.children = [c for c in node.children if c.kind != OBJECT or c.children]
    for row, c in enumerate(node.children):
        c.row = row


def _fill_group_totals(node: Node) -> tuple[int, int]:
    """Give every group and object the parameters and bytes below it, in one pass; return them."""
    if node.kind == VARIABLE:
        own = (node.params or 0, node.nbytes or 0)
    elif node.kind in (SLOT, VALUE):
        own = (0, node.nbytes or 0)
    else:
        own = (0, 0)
    params, nbytes = own
    for child in node.children:
        p, b = _fill_group_totals(child)
        params += p
        nbytes += b
    if node.kind in (GROUP, OBJECT) and node.children:
        node.params = params or None
        node.nbytes = nbytes or None
    return params, nbytes


def _checkpoint_tree(inv: Inventory, title: str, tree: bool = True) -> None:
    """The checkpoint's rows under ``title`` and the object graph's findings (only those without ``tree``)."""
    bundle = inv.bundle
    detail = f"{inv.checkpoint.name} ({inv.checkpoint.prefix})" if inv.checkpoint else ""
    graph = object_graph_of(inv.folder, bundle)
    inv.object_graph = graph
    if graph.unreadable:
        inv.findings.append(Finding(ERROR, f"the object graph cannot be decoded ({graph.unreadable}); the tree "
                                           "below is rebuilt from key names", str(bundle.index_path)))
    elif graph.from_names and OBJECT_GRAPH_KEY in bundle.entries:
        inv.findings.append(Finding(INFO, "the object graph is in a data shard that cannot be read; the tree "
                                          "below is rebuilt from key names", str(bundle.index_path)))
    if not tree:
        inv.findings.extend(check_object_graph(graph, bundle.entries, file=str(bundle.index_path)))
        return
    group = inv.root.add(Node(title, GROUP, detail=detail))
    seen: set[str] = {OBJECT_GRAPH_KEY}
    _object_subtree(group, graph.root, bundle, seen, display_children(graph))
    _prune_empty(group)
    inv.findings.extend(check_object_graph(graph, bundle.entries, file=str(bundle.index_path)))
    rest = sorted((k for k in bundle.entries if k not in seen), key=natural_key)
    if rest:
        other = group.add(Node("(not in the object graph)", GROUP))
        for k in rest:
            other.add(_entry_node(k, VALUE, bundle.entries[k]))
    _fill_group_totals(group)


def _signatures_tree(inv: Inventory) -> None:
    info = inv.saved_model
    for mg in info.meta_graphs:
        title = "SavedModel [" + ", ".join(mg.tags) + "]" if len(info.meta_graphs) > 1 else "SavedModel"
        group = inv.root.add(Node(title, GROUP, detail=f"TensorFlow {mg.tensorflow_version}".strip()))
        sigs = group.add(Node("Signatures", GROUP, detail=str(len(mg.signatures))))
        for sig in mg.signatures:
            s = sigs.add(Node(sig.name, SIGNATURE, detail=sig.method))
            for spec in sig.inputs:
                s.add(Node(spec.key, INPUT, shape=spec.shape, dtype=spec.dtype, detail=f"input {spec.name}"))
            for spec in sig.outputs:
                s.add(Node(spec.key, OUTPUT, shape=spec.shape, dtype=spec.dtype, detail=f"output {spec.name}"))
        if mg.op_counts:
            ops = group.add(Node("Op types", GROUP, detail=f"{sum(mg.op_counts.values())} nodes"))
            for op, count in sorted(mg.op_counts.items(), key=lambda kv: (-kv[1], kv[0])):
                ops.add(Node(op, FACT, params=count, detail=f"{count}"))
        if mg.function_names:
            fns = group.add(Node("Functions", GROUP, detail=str(len(mg.function_names))))
            for name in mg.function_names:
                fns.add(Node(name, FACT))


def _config_tree(inv: Inventory) -> None:
    for cfg, title in ((inv.pipeline, "pipeline.config"), (inv.params, "params.yaml")):
        if cfg is None:
            continue
        group = inv.root.add(Node(title, GROUP, detail=str(cfg.path)))
        for k, v in cfg.as_json().items():
            if v is None or k in ("path", "findings"):
                continue
            group.add(Node(k, FACT, detail=str(v)))


def _label_tree(inv: Inventory) -> None:
    lm = inv.label_map
    group = inv.root.add(Node("Label map", GROUP, detail=f"{len(lm)} classes, {lm.source.name if lm.source else ''}"))
    for item in lm.items:
        shown = item.display_name if item.display_name and item.display_name != item.name else ""
        group.add(Node(f"{item.id}: {item.name}", LABEL, detail=shown))


def _keras_tree(inv: Inventory) -> None:
    info = inv.keras
    group = inv.root.add(Node(info.path.name, GROUP, detail=f"{info.model_class or 'model'} "
                                                           f"(Keras {info.keras_version or '?'})"))
    tree = name_tree([w.key for w in info.weights])
    weights = {w.key: w for w in info.weights}

    def add(parent: Node, t: ObjectNode):
        for child in t.children:
            if child.children:
                add(parent.add(Node(child.name, OBJECT)), child)
            else:
                w = weights.get(child.path)
                parent.add(Node(child.name, VARIABLE, shape=w.shape, dtype=w.dtype,
                                params=int(_prod(w.shape)), nbytes=w.nbytes, key=w.key))
    add(group, tree)
    _fill_group_totals(group)
    if info.layers:
        layers = inv.root.add(Node("Layers", GROUP, detail=str(len(info.layers))))
        for layer in info.layers:
            layers.add(Node(layer["name"] or "?", FACT, detail=layer["class_name"] or ""))


def _tflite_tree(inv: Inventory) -> None:
    """Subgraphs (inputs, outputs, operators by type with counts, tensors), signatures, metadata."""
    info = inv.tflite
    group = inv.root.add(Node(info.path.name, GROUP, detail=f"TFLite schema v{info.version}, "
                                                           f"{len(info.subgraphs)} subgraph(s)"))
    for sg in info.subgraphs:
        title = f"Subgraph {sg.index}" + (f" ({sg.name})" if sg.name else "")
        sub = group.add(Node(title, GROUP, detail=f"{len(sg.tensors)} tensors, {len(sg.operators)} operators"))
        producers = info.producers(sg.index)

        def tensor_node(t, kind=None, name=None):
            detail = t.quantization.describe() if t.quantization is not None else ""
            if t.shape_signature is not None and tuple(t.shape_signature) != tuple(t.shape):
                detail = (detail + "; " if detail else "") + f"resizable {list(t.shape_signature)}"
            made = producers.get(t.index)
            if not t.has_rank or (not t.shape and made is not None and made[0].custom):
                note = "shape set when the model runs" + (f" ({made[0].op} output {made[1]})" if made else "")
                detail = f"{detail}; {note}" if detail else note
            if kind is None:
                kind = VARIABLE if t.is_constant else FACT
            return Node(name or t.name or f"tensor {t.index}", kind, shape=t.shape, dtype=t.dtype,
                        params=t.num_elements if t.is_constant else None, nbytes=t.nbytes or None,
                        key=t.key if t.is_constant else None, detail=detail)

        for title_, kind, indexes in (("Inputs", INPUT, sg.inputs), ("Outputs", OUTPUT, sg.outputs)):
            io = sub.add(Node(title_, GROUP, detail=str(len(indexes))))
            for i in indexes:
                if 0 <= i < len(sg.tensors):
                    io.add(tensor_node(sg.tensors[i], kind))
        counts = sg.op_counts()
        customs = {op.op for op in sg.operators if op.custom}
        ops = sub.add(Node("Operators", GROUP, detail=f"{len(sg.operators)} in {len(counts)} types"))
        for op, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            ops.add(Node(op, FACT, params=count, detail=f"{count}" + (" (custom op)" if op in customs else "")))
        tens = sub.add(Node("Tensors", GROUP, detail=str(len(sg.tensors))))
        for t in sg.tensors:
            tens.add(tensor_node(t))
        _fill_group_totals(tens)
    if info.signatures:
        sigs = group.add(Node("Signatures", GROUP, detail=str(len(info.signatures))))
        for sig in info.signatures:
            s = sigs.add(Node(sig.key, SIGNATURE, detail=f"subgraph {sig.subgraph}"))
            tensors = info.subgraphs[sig.subgraph].tensors if sig.subgraph < len(info.subgraphs) else []
            for names, kind in ((sig.inputs, INPUT), (sig.outputs, OUTPUT)):
                for name, i in names:
                    t = tensors[i] if 0 <= i < len(tensors) else None
                    s.add(Node(name, kind, shape=t.free_shape if t else None, dtype=t.dtype if t else None,
                               detail=f"{kind.value} {t.name if t else i}"))
    if info.metadata or info.packed_files:
        meta = group.add(Node("Metadata", GROUP, detail=str(len(info.metadata))))
        for m in info.metadata:
            meta.add(Node(m.name, FACT, nbytes=m.nbytes or None, detail=m.text or f"{m.nbytes} bytes"))
        for f in info.packed_files:
            meta.add(Node(f.name, FACT, nbytes=f.nbytes or None, detail="packed file"))


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# How to read the class count off a class-prediction head, per model type (pipeline.config's model block).
# "anchors": the bias holds anchors_per_location * class slots (OD API SSD: classes + 1 for the background,
# or just the classes with ``add_background_class: false``, as EfficientDet and sigmoid-head SSDs have);
# "plain": one value per class (OD API CenterNet's object-center heatmap).
HEAD_RULES = {
    "ssd": (("class_predictions_with_background", "class_predictions_head", "ClassPredictor"), "anchors"),
    "center_net": (("object_center", "class_head"), "plain"),
}


def class_head(inv: Inventory) -> tuple[int, str] | None:
    """The number of classes the class-prediction head was built for, read off its bias shape, and the
    checkpoint key of that bias.

    Only where the model type says how to read it; a guess would raise false alarms.
    """
    if inv.bundle is None or inv.pipeline is None or inv.pipeline.model_type not in HEAD_RULES:
        return None
    hints, rule = HEAD_RULES[inv.pipeline.model_type]
    biases = [(e.shape[0], key) for key, e in inv.bundle.entries.items()
              if key.startswith("model/") and key.endswith("bias/.ATTRIBUTES/VARIABLE_VALUE") and len(e.shape) == 1
              and any(h in key for h in hints)]
    if not biases:
        return None
    if rule == "plain":
        # The head's output layer: narrower than the hidden layers before it.
        return min(biases)
    anchors = getattr(inv.pipeline, "anchors_per_location", None)
    size, key = biases[-1]
    if anchors and size % anchors == 0:
        return size // anchors - background_slots(inv.pipeline), key
    return None


def background_slots(pipeline: PipelineConfig) -> int:
    """Class slots the head keeps for the background: 1, or 0 with ``add_background_class: false`` (ssd.proto's
    default is true)."""
    return 0 if pipeline.model.get("add_background_class") in (False, "false") else 1


def head_classes(inv: Inventory) -> int | None:
    """The number of classes the class-prediction head was built for (see :func:`class_head`)."""
    head = class_head(inv)
    return head[0] if head is not None else None


def _entries_and_step(ref: CheckpointRef) -> tuple[int, int | None]:
    """A checkpoint's entry count and step for the picker, its other entries left undecoded (Bundle.glance)."""
    b = Bundle.glance(ref.prefix, STEP_KEYS, first=True)
    return b.count, read_step(b)


def object_graph_of(mf: ModelFolder, bundle: Bundle) -> ObjectGraph:
    """The object graph of one of the folder's bundles, decoded once per open (the inventory and the
    restore both need it)."""
    return mf.parsed(("object graph", str(bundle.prefix)), lambda: graph_from_bundle(bundle))


def _integrity_findings(inv: Inventory) -> list[Finding]:
    """The files behind the selected checkpoint and the SavedModel: shards, the export's own variables, a TF1
    export's frozen weights (see :mod:`.integrity`)."""
    mf = inv.folder
    out: list[Finding] = []
    if inv.bundle is not None:
        out.extend(integrity.shard_findings(inv.bundle, missing=False))
    if inv.saved_model is None or mf.saved_model is None:
        return out
    if inv.checkpoint is not None and inv.checkpoint.prefix == mf.variables_prefix:
        # The SavedModel's own variables are what is browsed: an unreadable index was said already.
        if inv.bundle is not None:
            out.extend(integrity.saved_model_variables_findings(inv.saved_model, mf.saved_model, inv.bundle))
        return out
    out.extend(integrity.saved_model_variables_findings(inv.saved_model, mf.saved_model))
    if inv.bundle is not None:
        reason = integrity.frozen_export(inv.saved_model, inv.bundle, integrity.own_variables(mf.saved_model),
                                         name=mf.saved_model.name)
        if reason:
            out.append(Finding(INFO, reason, str(mf.saved_model)))
    return out


def build_inventory(path: str | Path | ModelFolder, checkpoint: str | None = None, *, tree: bool = True) -> Inventory:
    """Everything browsable about ``path``. Raises FolderError when nothing can be opened.

    Without ``tree``, ``root`` stays empty: the facts and the findings (what ``inspect --json`` prints) are all
    there, the rows are not built.

    Given a :class:`ModelFolder` already recognised, the inventory works on a copy of it (sharing what
    was already parsed of its files), so the caller's folder is never changed.

    The cyclic collector is paused meanwhile: the inventory of a big model is hundreds of thousands of new
    objects, and each full pass over them would hold up every other thread (the window's) for 100 ms or more.
    """
    with collector.paused():
        inv = _build_inventory(path, checkpoint, tree)
        if tree:
            inv.totals()
        if gc.get_count()[0] > FREEZE_ABOVE:
            # the first collection after the pause would walk every object made meanwhile, in one call that
            # holds every other thread up (0.13 s for a 50,000-variable SavedModel): they live as long as
            # the folder is open, so they go out of the collector's sight now (collector.thaw gives them back)
            collector.freeze_survivors()
        return inv


# Objects made during one inventory above which they are frozen (a detection model's inventory makes tens of
# thousands; a 50,000-variable SavedModel's nearly a million).
FREEZE_ABOVE = 200_000


def _build_inventory(path: str | Path | ModelFolder, checkpoint: str | None, tree: bool) -> Inventory:
    mf = replace(path, findings=list(path.findings)) if isinstance(path, ModelFolder) else folders.recognise(path)
    root = Node("", GROUP)
    inv = Inventory(mf, root)
    findings = list(mf.findings)

    # Checkpoint (or a SavedModel's variables bundle).
    if checkpoint is not None:
        ref = mf.require_checkpoint(checkpoint)
        mf.selected = ref
    inv.checkpoint = mf.selected
    for ref in mf.checkpoints:
        summary = CheckpointSummary(str(ref.prefix), ref.name, ref.number, None, None)
        try:
            if ref is mf.selected:
                inv.bundle = b = Bundle(ref.prefix)
                summary.entries, summary.step = mf.parsed(("entries and step", ref.prefix),
                                                          lambda: (len(b.entries), read_step(b)))
            else:
                summary.entries, summary.step = mf.parsed(("entries and step", ref.prefix),
                                                          lambda: _entries_and_step(ref))
        except BundleError as exc:
            if ref is mf.selected:
                findings.append(Finding(ERROR, str(exc), str(ref.index)))
        inv.checkpoints.append(summary)
    # Newest first, as a picker shows them.
    inv.checkpoints.reverse()

    def read(path, reader, error):
        """One part of the folder; its own findings kept, a failure kept as one error finding."""
        if path is None or folders.is_lfs_pointer(path):  # LFS pointers were already reported
            return None
        try:
            part = mf.parsed(path, lambda: reader(path))
        except error as exc:
            findings.append(Finding(ERROR, str(exc), str(path)))
            return None
        findings.extend(getattr(part, "findings", []))
        return part

    inv.saved_model = read(mf.saved_model_pb, read_saved_model, SavedModelError)
    inv.keras = read(mf.keras_file, read_keras_file, KerasFileError)
    inv.pipeline = read(mf.pipeline_config, read_pipeline_config, ConfigError)
    inv.params = read(mf.params_yaml, read_params_yaml, ConfigError)
    inv.label_map = read(mf.label_map, read_label_map, LabelMapError)
    inv.tflite = read(mf.tflite_file, read_tflite, TFLiteError)
    if inv.tflite is not None and inv.label_map is None and inv.tflite.packed_labels():
        try:  # a label file packed into the model by a metadata writer
            inv.label_map = packed_label_map(inv.tflite)
            findings.extend(getattr(inv.label_map, "findings", []))
        except (TFLiteError, LabelMapError) as exc:
            findings.append(Finding(ERROR, str(exc), str(mf.tflite_file)))

    inv.findings = findings
    if inv.bundle is not None and OBJECT_GRAPH_KEY not in inv.bundle.entries and \
            mf.kind in (folders.CHECKPOINT, folders.CHECKPOINT_FOLDER):
        mf.kind = folders.TF1_CHECKPOINT  # name-based: no object graph
    browsable = inv.bundle is not None or inv.saved_model is not None or inv.keras is not None \
        or inv.tflite is not None
    if not browsable and not mf.checkpoints and inv.pipeline is None:
        errors = [f for f in findings if f.severity == ERROR]
        if errors:
            raise UserError(errors[0].message if errors[0].file is None or Path(errors[0].file).name in
                            errors[0].message else f"{Path(errors[0].file).name}: {errors[0].message}")
    if not browsable and mf.checkpoints and len(mf.checkpoints) == 1 and mf.kind == folders.CHECKPOINT:
        errors = [f for f in findings if f.severity == ERROR]
        if errors:
            raise UserError(errors[0].message)
    if inv.saved_model is not None and tree:
        _signatures_tree(inv)
    if inv.bundle is not None:
        # A stable title (the checkpoint's name is in the detail), so paths survive a ckpt-N switch.
        title = "Variables" if inv.checkpoint and inv.checkpoint.prefix == mf.variables_prefix else "Checkpoint"
        _checkpoint_tree(inv, title, tree)
    if tree:
        if inv.keras is not None:
            _keras_tree(inv)
        if inv.tflite is not None:
            _tflite_tree(inv)
        _config_tree(inv)
        if inv.label_map is not None:
            _label_tree(inv)

    # Model Garden counts the background in num_classes; foreground_classes is comparable with a label map.
    num_classes = inv.pipeline.num_classes if inv.pipeline else (
        inv.params.foreground_classes if inv.params else None)
    files = [str(p) if p else None for p in (mf.pipeline_config or mf.params_yaml, mf.label_map,
                                             inv.checkpoint.index if inv.checkpoint else None)]
    head = class_head(inv)
    # A label map found near the model but not in its own folder (nor named by its config) may be another
    # model's: it is not counted against the model, only mentioned when it disagrees.
    own_labels = inv.label_map if inv.label_map is None or folders.label_map_is_own(mf) else None
    inv.findings.extend(check_num_classes(num_classes, own_labels, head[0] if head else None, files,
                                          head_key=head[1] if head else None))
    if inv.label_map is not None and own_labels is None:
        inv.findings.extend(check_nearby_label_map(num_classes if num_classes is not None else (
            head[0] if head else None), inv.label_map, mf.root, files[0] if num_classes is not None else files[2]))
    inv.findings.extend(_integrity_findings(inv))
    inv.findings = sort_findings(inv.findings)
    if inv.findings and tree:
        # Problems come first: they are what a user needs before trusting anything below.
        problems = root.insert(0, Node("Problems", GROUP, detail=str(len(inv.findings))))
        for f in inv.findings:
            inv.finding_rows[f] = problems.add(Node(f.message, FINDING, detail=f.severity.value))
    return inv
