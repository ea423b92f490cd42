"""Restore a model with TensorFlow, and report what matched.

Everything here runs on the engine thread (TensorFlow is imported inside the
functions). A checkpoint is restored by walking its object graph (read without
TensorFlow) beside the live object tree, following the same local names, so the
:class:`RestoreReport` says exactly which values matched, which checkpoint values
were left unused (grouped), which model variables were not restored, and which
had the wrong shape or dtype, instead of TensorFlow's flood of "Unresolved
object in checkpoint" warnings. Values are read with detscope's own bundle reader
and assigned to the live variables, so switching ``ckpt-N`` re-assigns weights
without reloading the graph.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections import Counter
from dataclasses import dataclass

from ..formats import dtypes
from ..formats.bundle import Bundle, BundleError
from ..formats.objectgraph import ATTRIBUTES, MODEL, OBJECT_GRAPH, ObjectGraph, ObjectNode, classify_key, \
    graph_from_bundle
from .report import COMPLETE, FAILED, PARTIAL, Mismatch, Missing, RestoreReport, Unused

# Names the same model goes by on either side (training checkpoints vs exported modules).
MODEL_ALIASES = ("model", "_model", "detection_model", "_detection_model", "net", "network", "detector")


# --- TensorFlow's warnings, captured and summarised -------------------------------------------------

_NUMBERS = re.compile(r"\d+|'[^']*'|\"[^\"]*\"|\(.*?\)")


class CapturedMessages(logging.Handler):
    """Collects TensorFlow/absl log records and Python warnings during a block; counts them by kind."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.add(record.getMessage())

    def add(self, message: str) -> None:
        first = message.strip().splitlines()[0] if message.strip() else ""
        self.counts[_NUMBERS.sub("…", first)[:120]] += 1


@contextlib.contextmanager
def captured_tf_messages():
    handler = CapturedMessages()
    loggers = [logging.getLogger(n) for n in ("tensorflow", "absl", "keras", "tf_keras")]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield handler
        for w in caught:
            handler.add(str(w.message))
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


# --- the live object tree ------------------------------------------------------------------------

def _children(obj) -> dict:
    import tensorflow as tf

    try:
        return dict(tf.train.TrackableView(obj).children(obj))
    except (TypeError, AttributeError, ValueError):
        return {}


def _is_variable(obj) -> bool:
    """A tf.Variable, or a Keras 3 variable (which wraps one and assigns like one)."""
    import tensorflow as tf

    if isinstance(obj, tf.Variable):
        return True
    return hasattr(obj, "assign") and hasattr(obj, "shape") and hasattr(obj, "dtype") and hasattr(obj, "value")


# Children that only list variables reachable elsewhere under a better name.
COLLECTION_EDGES = frozenset({"variables", "trainable_variables", "non_trainable_variables", "weights",
                              "trainable_weights", "non_trainable_weights", "_variables", "keras_api",
                              "regularization_losses", "_self_saveable_object_factories"})


def live_variables(root) -> dict[int, tuple[str, object]]:
    """Every variable under ``root``: ``{id: (path, variable)}``.

    A variable's path is its shortest path by attribute names (``class_head/kernel``);
    paths through collections (``variables/7``) only name what nothing else reaches.
    """
    found: dict[int, tuple[str, object]] = {}
    for use_collections in (False, True):
        seen = {id(root)}
        frontier = [("", root)]
        while frontier:
            nxt = []
            for path, obj in frontier:
                for name, child in _children(obj).items():
                    if id(child) in seen or (name in COLLECTION_EDGES and not use_collections):
                        continue
                    seen.add(id(child))
                    child_path = f"{path}/{name}" if path else name
                    if _is_variable(child):
                        found.setdefault(id(child), (child_path, child))
                    nxt.append((child_path, child))
            frontier = nxt
    return found


@dataclass
class _Pairing:
    matched: dict[str, object]                   # checkpoint key -> live variable
    live_paths: dict[int, str]


def _edges(graph: ObjectGraph, node: ObjectNode):
    """Every edge out of a checkpoint object: tree children and links to objects placed elsewhere.

    Keras 3 checkpoints place model variables under the optimizer (their shortest
    path); the model's own edges to them are links, and restoring must follow them.
    """
    for child in node.children:
        yield child.name, child
    for link in node.links:
        yield link.name, graph.nodes[link.node_id]


def _pair(graph: ObjectGraph, ckpt: ObjectNode, live, live_path: str = "") -> _Pairing:
    """Walk the checkpoint subtree and the live subtree together, by local names."""
    matched: dict[str, object] = {}
    live_paths: dict[int, str] = {}
    seen: set[int] = set()
    stack = [(ckpt, live, live_path)]
    while stack:
        node, obj, path = stack.pop()
        if node.node_id in seen:
            continue
        seen.add(node.node_id)
        kids = _children(obj)
        for name, child in _edges(graph, node):
            target = kids.get(name)
            if target is None:
                continue
            child_path = f"{path}/{name}" if path else name
            if child.is_variable:
                if _is_variable(target):
                    live_paths[id(target)] = child_path
                    matched[child.value_key] = target
                continue
            stack.append((child, target, child_path))
    return _Pairing(matched, live_paths)


def _model_candidates(graph: ObjectGraph) -> list[ObjectNode]:
    out = [graph.root]
    for c in graph.root.children:
        if c.name not in ("optimizer", "_optimizer", "save_counter", "step", "global_step") and not c.is_variable:
            out.append(c)
    return out


def _live_candidates(root) -> list[tuple[str, object]]:
    out = [("", root)]
    for name, child in _children(root).items():
        if not _is_variable(child) and name not in ("signatures", "optimizer", "_optimizer"):
            out.append((name, child))
    return out


def choose_pairing(graph: ObjectGraph, live_root) -> tuple[ObjectNode, str, object, _Pairing]:
    """The (checkpoint subtree, live subtree) pair that explains the most values.

    Covers ``model`` ↔ ``_model`` (a training checkpoint into an OD API export), a
    checkpoint of the model itself ↔ a model built by a factory, and root ↔ root.
    """
    best = None
    for ck in _model_candidates(graph):
        for lpath, lobj in _live_candidates(live_root):
            # Prefer the same name or a known alias when two pairings explain equally much.
            alias = (ck.name == lpath) or (ck.name in MODEL_ALIASES and lpath in MODEL_ALIASES)
            pairing = _pair(graph, ck, lobj, lpath)
            score = (len(pairing.matched), alias, ck is not graph.root)
            if best is None or score > best[0]:
                best = (score, ck, lpath, lobj, pairing)
    _, ck, lpath, lobj, pairing = best
    return ck, lpath, lobj, pairing


def plan_restore(bundle: Bundle, live_root, graph: ObjectGraph | None = None, *, source: str = "",
                 target: str = "") -> tuple[RestoreReport, dict[str, object]]:
    """The report of restoring ``bundle`` into ``live_root`` and the ``{key: variable}`` to assign."""
    graph = graph or graph_from_bundle(bundle)
    report = RestoreReport(FAILED, source or str(bundle.prefix), target)
    keys = [k for k in bundle.entries if classify_key(k, graph) != OBJECT_GRAPH]
    # Without its object graph (it lives in the data shard), a TF2 checkpoint's keys still spell each value's
    # path of attribute names, and the tree rebuilt from them pairs like the real graph (links aside).
    by_paths = graph.from_names and any(f"/{ATTRIBUTES}/" in k for k in keys)
    if graph.from_names and not by_paths:
        pairing_root, lpath, lobj, assign = None, "", live_root, _pair_by_name(bundle, live_root)
        report.notes.append("name-based checkpoint (no object graph): matched by variable name")
        all_live = live_variables(live_root)
    else:
        pairing_root, lpath, lobj, pairing = choose_pairing(graph, live_root)
        assign = pairing.matched
        all_live = live_variables(lobj)
        report.mapping = {pairing_root.path or "(root)": lpath or "(root)"}
        if by_paths:
            report.notes.append("the object graph could not be read: matched by the paths the keys spell")
    to_assign: dict[str, object] = {}
    for key, var in assign.items():
        entry = bundle.entries.get(key)
        if entry is None:
            continue
        ck_shape = tuple(entry.shape)
        model_shape = tuple(int(d) for d in var.shape)
        ck_dtype = entry.dtype_name
        model_dtype = dtype_name_of(var)
        if ck_shape != model_shape:
            report.shape_mismatches.append(Mismatch(key, ck_shape, model_shape, ck_dtype, model_dtype))
        elif ck_dtype != model_dtype:
            report.dtype_mismatches.append(Mismatch(key, ck_shape, model_shape, ck_dtype, model_dtype))
        else:
            to_assign[key] = var
    report.matched = sorted(to_assign)
    wrong = {k for k in (m.key for m in report.shape_mismatches + report.dtype_mismatches)}
    for key in keys:
        if key in to_assign or key in wrong:
            continue
        report.unused.append(Unused(key, classify_key(key, graph), tuple(bundle.entries[key].shape)))
    assigned_ids = {id(v) for v in assign.values()}
    for vid, (path, var) in all_live.items():
        if vid not in assigned_ids:
            prefix = f"{lpath}/" if lpath else ""
            report.missing.append(Missing(prefix + path, tuple(int(d) for d in var.shape), dtype_name_of(var)))
    report.verdict = _verdict(report)
    if report.verdict == FAILED and not report.matched:
        model_keys = [u.key for u in report.unused if u.group == MODEL]
        report.notes.append(f"nothing matched: the checkpoint's {len(model_keys)} model values have no "
                            "counterpart in the model (different architecture, or names changed)")
    return report, to_assign


def _pair_by_name(bundle: Bundle, live_root) -> dict[str, object]:
    by_name = {}
    for _, var in live_variables(live_root).values():
        by_name.setdefault(var.name.split(":")[0], var)
    return {k: by_name[k] for k in bundle.entries if k in by_name}


def _verdict(report: RestoreReport) -> str:
    if not report.matched:
        return FAILED
    unused_model = any(u.group == MODEL for u in report.unused)
    if report.missing or report.shape_mismatches or report.dtype_mismatches or unused_model:
        return PARTIAL
    return COMPLETE


def assign_values(bundle: Bundle, to_assign: dict[str, object], job=None) -> None:
    """Read each matched value with detscope's reader and assign it to its live variable."""
    for i, (key, var) in enumerate(to_assign.items()):
        if job is not None and i % 64 == 0:
            job.check()
        value = bundle.read(key)
        var.assign(value)


def restore_checkpoint(bundle: Bundle, live_root, *, source: str = "", target: str = "", job=None,
                       graph: ObjectGraph | None = None) -> RestoreReport:
    """Plan, then assign: the model's variables take the checkpoint's values where they match."""
    report, to_assign = plan_restore(bundle, live_root, graph, source=source, target=target)
    if job is not None:
        job.progress(f"assigning {len(to_assign)} values from {bundle.prefix.name}")
    try:
        assign_values(bundle, to_assign, job)
    except BundleError as exc:
        report.verdict = FAILED
        report.notes.append(f"values could not be read: {exc}")
    return report


def dtype_name_of(var) -> str:
    import tensorflow as tf

    return dtypes.name(tf.as_dtype(var.dtype).as_datatype_enum)
