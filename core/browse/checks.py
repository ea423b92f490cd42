"""Checks a user will believe: what is wrong with a model folder, found without TensorFlow.

Each check takes what the readers in :mod:`detscope.core.formats` produced and returns
findings; none of them reads files itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..base.findings import ERROR, INFO, WARNING, Finding
from ..formats.labels import LabelMap
from ..formats.objectgraph import MODEL, OBJECT_GRAPH_KEY, ObjectGraph, ObjectNode, keras3_model_value


# --- the object graph ----------------------------------------------------------------------------------

def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _examples(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_object_graph(graph: ObjectGraph, keys: Iterable[str] | None = None, *, file: str | None = None) -> list[Finding]:
    """Findings about how the checkpoint's values hang off its objects.

    * model values reachable only through the optimizer (a Keras 3 optimizer
      saved without its model): restoring into ``tf.train.Checkpoint(model=...)``
      loads nothing for them;
    * model values whose keys are ``optimizer/...`` although the model reaches
      them (what Keras 3 writes): object-based restore finds them, name-based
      tools do not;
    * with ``keys`` (the index's keys): values the graph names that the index
      lacks, and index entries no object names.
    """
    findings: list[Finding] = []
    if not graph.from_names:
        findings.extend(_optimizer_only_findings(graph, file))
    else:
        renamed = [n for n in graph.nodes if n.is_variable and keras3_model_value(n.path)]
        if renamed:
            findings.append(Finding(
                INFO,
                f"{len(renamed)} model value(s) are keyed under the optimizer "
                f"({_examples([n.path for n in renamed])}), as Keras 3 writes them; without the object graph "
                f"detscope cannot tell which model layer each belongs to",
                file, key=renamed[0].value_key))
    if keys is not None:
        index_keys = set(keys)
        named = set(graph.by_key)
        missing = sorted(k for k in named if k not in index_keys)
        unnamed = sorted(k for k in index_keys if k not in named and k != OBJECT_GRAPH_KEY)
        if missing:
            findings.append(Finding(
                ERROR,
                f"the object graph names {len(missing)} value(s) the index does not have "
                f"({_examples(missing)}): restoring those objects fails",
                file, key=missing[0]))
        if unnamed and not graph.from_names:
            findings.append(Finding(
                WARNING,
                f"{_count(len(unnamed), 'index entry', 'index entries')} belong to no object of the object graph "
                f"({_examples(unnamed)}): object-based restore never reads them",
                file, key=unnamed[0]))
    return findings


def _optimizer_only_findings(graph: ObjectGraph, file: str | None) -> list[Finding]:
    out: list[Finding] = []
    only_optimizer: list[ObjectNode] = []
    keyed_under_optimizer: list[ObjectNode] = []
    for node in graph.nodes:
        if not node.is_variable or graph.group(node) != MODEL:
            continue
        if node.model_path is None:
            only_optimizer.append(node)
        elif node.path != node.model_path:
            keyed_under_optimizer.append(node)
    root_children = ", ".join(c.name for c in graph.root.children) or "none"
    if only_optimizer:
        names = [f"{n.path} ({n.full_name})" if n.full_name else n.path for n in only_optimizer]
        out.append(Finding(
            WARNING,
            f"{len(only_optimizer)} model value(s) are reachable only through the optimizer "
            f"({_examples(names, 2)}); the checkpoint's top-level objects are: {root_children}. "
            f"Restoring with tf.train.Checkpoint(model=...) will silently leave these weights untouched: "
            f"restore with tf.train.Checkpoint(model=model, optimizer=optimizer) after building the optimizer "
            f"on the model's trainable variables, or re-save the checkpoint with the model attached",
            file, key=only_optimizer[0].value_key))
    if keyed_under_optimizer:
        n0 = keyed_under_optimizer[0]
        out.append(Finding(
            INFO,
            f"{len(keyed_under_optimizer)} model value(s) are keyed under the optimizer, as Keras 3 writes them "
            f"(e.g. {n0.path} is {n0.model_path}): object-based restore through the model finds them, but tools "
            f"that match keys by name (a model/ prefix, tf.compat.v1.train.init_from_checkpoint, assignment maps) "
            f"will not",
            file, key=n0.value_key))
    return out



# --- the class count ------------------------------------------------------------------------

def _file_names(files: Any) -> tuple[str | None, str | None, str | None]:
    if isinstance(files, Mapping):
        got = (files.get("config"), files.get("label_map"), files.get("head"))
    elif isinstance(files, (list, tuple)):
        got = tuple(list(files) + [None] * 3)[:3]
    else:
        got = (None, None, None)
    return tuple(str(f) if f else None for f in got)  # type: ignore[return-value]


def check_num_classes(num_classes: int | None, label_map: LabelMap | None, head_classes: int | None,
                      files: Any = None, *, head_key: str | None = None) -> list[Finding]:
    """Does the config's class count agree with the label map and the class-prediction head?

    All three numbers count foreground classes, as the OD API's ``num_classes``
    does: the label map contributes its largest id (ids run from 1), the caller
    gives the head's class count read off a variable's shape (without the
    background slot). ``files`` names the three sources, as a mapping with keys
    ``config``, ``label_map`` and ``head`` or a sequence in that order;
    ``head_key`` is the checkpoint key of the variable the head's count was read
    off, carried by the findings about the head.

    One error per disagreement, each naming all three numbers. With a config,
    the label map and the head are each compared with it; without one, with
    each other. Unknown numbers are not compared.
    """
    cfg_file, lm_file, head_file = _file_names(files)
    if lm_file is None and label_map is not None and getattr(label_map, "source", None):
        lm_file = str(label_map.source)
    cfg_name = Path(cfg_file).name if cfg_file else "the config"
    lm_name = Path(lm_file).name if lm_file else "the label map"
    head_where = f" in {Path(head_file).name}" if head_file else ""

    c = num_classes
    lm_max = label_map.max_id if label_map is not None and len(label_map) else None
    lm_count = len(label_map) if label_map is not None else None
    h = head_classes

    c_txt = f"{cfg_name} says num_classes {c}" if c is not None else "no config gives num_classes"
    if lm_max is not None:
        l_txt = f"{lm_name} has ids up to {lm_max}"
        if lm_count != lm_max:
            l_txt += f" ({lm_count} labels)"
    else:
        l_txt = "no label map gives the classes"
    h_txt = (f"the class head{head_where} predicts {h} class{'' if h == 1 else 'es'}" if h is not None
             else "the class head's size is unknown")

    out: list[Finding] = []
    if c is not None:
        if lm_max is not None and lm_max != c:
            out.append(Finding(ERROR, f"{c_txt} but {l_txt}; {h_txt}", cfg_file))
        if h is not None and h != c:
            out.append(Finding(ERROR, f"{c_txt} but {h_txt}; {l_txt}", cfg_file, key=head_key))
    elif lm_max is not None and h is not None and lm_max != h:
        out.append(Finding(ERROR, f"{l_txt} but {h_txt}; {c_txt}", lm_file, key=head_key))
    return out


def check_nearby_label_map(num_classes: int | None, label_map: LabelMap | None, model_folder: Path | str,
                           file: str | None = None) -> list[Finding]:
    """A label map found near the model but not in its own folder, nor named by its config (a Model Zoo
    download under a fine-tuning workspace finds the fine-tune's label map two folders up).

    It may be another model's, so it is never counted against the model: when its ids disagree with
    ``num_classes`` (the config's, else the class head's) this says so as information, with the reason;
    when they agree it says nothing.
    """
    if num_classes is None or label_map is None or not len(label_map) or label_map.max_id == num_classes:
        return []
    source = Path(label_map.source) if getattr(label_map, "source", None) else None
    where = source.name if source is not None else "the label map"
    try:
        rel = os.path.relpath(source.parent, model_folder) if source is not None else None
    except ValueError:      # another drive
        rel = None
    found = f" (found in {rel}/)" if rel else ""
    return [Finding(INFO, f"{where}{found} has ids up to {label_map.max_id} but the model has {num_classes} "
                          f"classes; it lies outside the model's folder and its config does not name it, so it "
                          f"may belong to another model: not compared", str(source) if source else file)]
