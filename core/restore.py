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
import importlib
import importlib.util
import logging
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import dtypes
from .bundle import Bundle, BundleError
from .errors import UserError
from .objectgraph import COUNTER, MODEL, OBJECT_GRAPH, OPTIMIZER, OTHER, SLOT, ObjectGraph, ObjectNode, \
    classify_key, graph_from_bundle

COMPLETE, PARTIAL, FAILED = "complete", "partial", "failed"
GROUP_TITLES = {SLOT: "optimizer slots", OPTIMIZER: "optimizer state", COUNTER: "step and counters",
                MODEL: "model values", OTHER: "other values"}
# Names the same model goes by on either side (training checkpoints vs exported modules).
MODEL_ALIASES = ("model", "_model", "detection_model", "_detection_model", "net", "network", "detector")


class RestoreError(UserError):
    """A restore that cannot start (no such factory, a broken file); one line."""


@dataclass(frozen=True)
class Unused:
    key: str
    group: str
    shape: tuple


@dataclass(frozen=True)
class Missing:
    key: str          # the model variable's path in the live object tree
    shape: tuple
    dtype: str


@dataclass(frozen=True)
class Mismatch:
    key: str
    checkpoint_shape: tuple
    model_shape: tuple
    checkpoint_dtype: str = ""
    model_dtype: str = ""


@dataclass
class RestoreReport:
    verdict: str
    source: str                                   # the checkpoint (or file) restored from
    target: str                                   # what it was restored into
    matched: list[str] = field(default_factory=list)
    unused: list[Unused] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    shape_mismatches: list[Mismatch] = field(default_factory=list)
    dtype_mismatches: list[Mismatch] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)    # checkpoint path -> live path of the roots
    notes: list[str] = field(default_factory=list)
    tf_messages: dict[str, int] = field(default_factory=dict)  # summarised TensorFlow warnings

    def unused_by_group(self) -> dict[str, list[Unused]]:
        groups: dict[str, list[Unused]] = {}
        for u in self.unused:
            groups.setdefault(u.group, []).append(u)
        return groups

    def summary(self) -> str:
        parts = [f"{self.verdict}: {len(self.matched)} values matched"]
        if self.missing:
            parts.append(f"{len(self.missing)} model variables not restored")
        if self.shape_mismatches:
            parts.append(f"{len(self.shape_mismatches)} shape mismatches")
        if self.dtype_mismatches:
            parts.append(f"{len(self.dtype_mismatches)} dtype mismatches")
        for group, items in self.unused_by_group().items():
            parts.append(f"{len(items)} unused {GROUP_TITLES.get(group, group)}")
        return ", ".join(parts)

    def as_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "source": self.source,
            "target": self.target,
            "matched": len(self.matched),
            "matched_keys": list(self.matched),
            "unused": [{"key": u.key, "group": GROUP_TITLES.get(u.group, u.group), "shape": list(u.shape)}
                       for u in self.unused],
            "missing": [{"key": m.key, "shape": list(m.shape), "dtype": m.dtype} for m in self.missing],
            "shape_mismatches": [{"key": m.key, "checkpoint_shape": list(m.checkpoint_shape),
                                  "model_shape": list(m.model_shape)} for m in self.shape_mismatches],
            "dtype_mismatches": [{"key": m.key, "checkpoint_dtype": m.checkpoint_dtype,
                                  "model_dtype": m.model_dtype} for m in self.dtype_mismatches],
            "mapping": dict(self.mapping),
            "notes": list(self.notes),
            "tensorflow_warnings": dict(self.tf_messages),
        }


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
    if graph.from_names:
        pairing_root, lpath, lobj, assign = None, "", live_root, _pair_by_name(bundle, live_root)
        report.notes.append("name-based checkpoint (no object graph): matched by variable name")
        all_live = live_variables(live_root)
    else:
        pairing_root, lpath, lobj, pairing = choose_pairing(graph, live_root)
        assign = pairing.matched
        all_live = live_variables(lobj)
        report.mapping = {pairing_root.path or "(root)": lpath or "(root)"}
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


def restore_checkpoint(bundle: Bundle, live_root, *, source: str = "", target: str = "", job=None) -> RestoreReport:
    """Plan, then assign: the model's variables take the checkpoint's values where they match."""
    report, to_assign = plan_restore(bundle, live_root, source=source, target=target)
    if job is not None:
        job.progress(f"assigning {len(to_assign)} values from {bundle.prefix.name}")
    try:
        assign_values(bundle, to_assign, job)
    except BundleError as exc:
        report.verdict = FAILED
        report.notes.append(f"values could not be read: {exc}")
    return report


# --- ways to get a live model ------------------------------------------------------------------------

def load_saved_model(path: str | Path, tags: list[str] | None = None, job=None):
    """``tf.saved_model.load`` with TensorFlow's messages captured; returns (object, message counts)."""
    import tensorflow as tf

    if job is not None:
        job.progress(f"loading SavedModel {Path(path).name}")
    with captured_tf_messages() as messages:
        try:
            obj = tf.saved_model.load(str(path), tags=tags)
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RestoreError(f"{path}: TensorFlow could not load the SavedModel: {first}") from exc
    return obj, dict(messages.counts)


def load_factory(spec: str, job=None):
    """Build the user's model: ``path/to/file.py:build`` or ``package.module:build``."""
    module_part, _, attr = spec.rpartition(":")
    if not module_part or not attr:
        raise RestoreError(f"--factory {spec!r}: expected FILE.py:FUNCTION or package.module:FUNCTION")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        file = Path(module_part).expanduser()
        if not file.is_file():
            raise RestoreError(f"{file} does not exist (the --factory file)")
        name = f"detscope_factory_{abs(hash(str(file.resolve())))}"
        mod_spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as exc:  # the user's own code: report its failure in one line
            raise RestoreError(f"{file}: importing the factory failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise RestoreError(f"--factory {spec!r}: cannot import {module_part}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RestoreError(f"--factory {spec!r}: {module_part} has no function {attr}")
    if job is not None:
        job.progress(f"building the model with {attr}()")
    try:
        return fn()
    except Exception as exc:  # the user's own code
        raise RestoreError(f"--factory {spec!r}: {attr}() failed: {type(exc).__name__}: {exc}") from exc


def load_keras_model(path: str | Path, safe_mode: bool = True, job=None):
    """Keras 3 first; ``tf_keras`` for old Keras 2 HDF5 files. Returns (model, which Keras, notes)."""
    path = Path(path)
    notes = []
    if not safe_mode:
        notes.append("safe_mode is OFF: the file's Python lambdas were allowed to run")
    if job is not None:
        job.progress(f"loading {path.name} with Keras 3")
    errors = []
    with captured_tf_messages():
        try:
            import keras

            return keras.saving.load_model(str(path), compile=False, safe_mode=safe_mode), "keras 3", notes
        except Exception as exc:  # Keras raises many kinds; the next loader gets its turn
            errors.append(f"Keras 3: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
        if path.suffix.lower() in (".h5", ".hdf5"):
            if job is not None:
                job.progress(f"loading {path.name} with tf_keras (Keras 2)")
            try:
                import tf_keras

                model = tf_keras.models.load_model(str(path), compile=False, safe_mode=safe_mode) \
                    if "safe_mode" in tf_keras.models.load_model.__code__.co_varnames else \
                    tf_keras.models.load_model(str(path), compile=False)
                notes.append("loaded with tf_keras (Keras 2) after Keras 3 could not: " + errors[0])
                return model, "tf_keras", notes
            except Exception as exc:  # reported below with Keras 3's reason
                errors.append(f"tf_keras: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
    raise RestoreError(f"{path.name} could not be loaded ({'; '.join(errors)})")


def keras_report(model, path: Path, which: str, notes: list[str]) -> RestoreReport:
    """A Keras file restores as a whole or not at all; the report says what it holds."""
    report = RestoreReport(COMPLETE, str(path), f"{which} {type(model).__name__}")
    report.matched = [v.path if hasattr(v, "path") else v.name for v in model.weights]
    report.notes.extend(notes)
    if not report.matched:
        report.verdict = FAILED
        report.notes.append("the model has no weights")
    return report


def dtype_name_of(var) -> str:
    import tensorflow as tf

    return dtypes.name(tf.as_dtype(var.dtype).as_datatype_enum)
