"""Is each part of a model really there? Checks of the files behind a checkpoint and a SavedModel, without TensorFlow.

TensorFlow notices a broken part late (on load, on restore) and says so in its own words, or not at all:
a restore whose object graph sits in an unreadable data shard quietly matches nothing. These checks say it
early and name the file:

* :func:`shard_findings`: a data shard that is a folder, empty, or shorter than its index says;
* :func:`saved_model_variables_findings`: a SavedModel's own ``variables/`` that is missing, unreadable,
  or does not hold the variables its graph declares (a changed or foreign index);
* :func:`frozen_export`: a TF1 export whose weights are frozen into the graph, so that the ``model.ckpt``
  beside it is not needed to run it (restoring it would match nothing and look like a failure).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

from ..base import files
from ..base.findings import ERROR, WARNING, Finding
from ..base.text import fmt_shape, plural
from ..formats import objectgraph as og
from ..formats.bundle import Bundle, BundleError
from ..formats.savedmodel import SavedModelInfo
from .folders import is_lfs_pointer

FROZEN = "weights are frozen into the graph; the checkpoint is not needed to run it"


def _examples(items: list[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- data shards -----------------------------------------------------------------------------------

def shard_findings(bundle: Bundle, *, missing: bool = True) -> list[Finding]:
    """One error per data shard the index needs that is not a readable file long enough for it.

    ``missing`` says whether a shard that is simply absent is reported too (as a warning: names and
    shapes still browse); folder recognition already reports those by file name.
    """
    needed: dict[int, int] = {}
    for e in itertools.chain(bundle.entries.values(), bundle.slice_entries.values()):
        if e.size > 0:
            needed[e.shard_id] = max(needed.get(e.shard_id, 0), e.offset + e.size)
    out: list[Finding] = []
    for shard in range(bundle.num_shards):
        path = bundle.shard_path(shard)
        need = needed.get(shard, 0)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if missing and need:
                out.append(Finding(WARNING, f"{path.name} is missing; names and shapes are still browsable, "
                                            "values in that shard are not", str(path)))
            continue
        except OSError as exc:
            out.append(Finding(ERROR, f"{path.name} cannot be read: {exc.strerror or exc}", str(path)))
            continue
        kind = files.kind_of(st.st_mode)
        if kind is not None:
            out.append(Finding(ERROR, f"{path.name} is {kind}, not a file: the values {bundle.index_path.name} "
                                      "places in it cannot be read", str(path)))
        elif st.st_size < need:
            what = "empty (0 bytes)" if st.st_size == 0 else f"truncated ({st.st_size} bytes)"
            out.append(Finding(ERROR, f"{path.name} is {what} but {bundle.index_path.name} places values up to "
                                      f"byte {need} in it: those values cannot be read", str(path)))
    return out


# --- a SavedModel's own variables --------------------------------------------------------------------

def _declared_variables(info: SavedModelInfo) -> tuple[int, dict[str, tuple]]:
    """How many variables the serving graph declares, and ``{derived key: (dtype, shape)}`` of those the
    object graph names (TF2); the key is the one TensorFlow writes for the variable's canonical path."""
    mg = info.meta_graph()
    tree = mg.object_graph
    declared: dict[str, tuple] = {}
    suffix = f"/{og.ATTRIBUTES}/{og.VARIABLE_VALUE}"
    for node in tree.variables() if tree is not None else []:
        variable = node.variable
        if variable is not None and node.path:
            declared[node.path + suffix] = (variable.dtype, variable.shape)
    count = len(declared) or (1 if mg.has_variables else 0)
    return count, declared


def _variables_bundle(folder: Path) -> Bundle:
    return Bundle(folder / "variables" / "variables")


def saved_model_variables_findings(info: SavedModelInfo, folder: Path, bundle: Bundle | None = None,
                                   *, name: str | None = None) -> list[Finding]:
    """Is the SavedModel's ``variables/`` there, readable and the one its graph was saved with?

    ``folder`` is the SavedModel's folder, ``bundle`` its variables bundle when already open, ``name``
    how messages call the folder (its name by default). A graph with no variables (a frozen TF1 export)
    needs none; a variable whose key cannot be told from the graph is not compared.
    """
    try:
        count, declared = _declared_variables(info)
    except Exception:  # no meta graph to ask (reported by the reader): nothing to compare with
        return []
    if not count:
        return []
    name = name or folder.name
    vdir = folder / "variables"
    index = vdir / "variables.index"
    needs = f"its graph has {plural(len(declared), 'variable')}" if declared else "its graph has variables"
    if not os.path.lexists(vdir):
        return [Finding(ERROR, f"{name}/variables/ is missing; {needs} and TensorFlow cannot load the SavedModel "
                               "without their values", str(vdir))]
    if not vdir.is_dir():
        return [Finding(ERROR, f"{name}/variables is a file, not a folder; {needs} and TensorFlow cannot load "
                               "the SavedModel without their values", str(vdir))]
    if not os.path.lexists(index):
        return [Finding(ERROR, f"{name}/variables/variables.index is missing; {needs} and TensorFlow cannot load "
                               "the SavedModel without their values", str(index))]
    if bundle is None:
        try:
            bundle = _variables_bundle(folder)
        except BundleError as exc:
            if is_lfs_pointer(index):       # said where the folder was recognised
                return []
            return [Finding(ERROR, f"{exc}; TensorFlow cannot load {name}/ without it", str(index))]
    out = shard_findings(bundle, missing=False)
    if not declared:
        return out
    entries = bundle.entries
    absent = [k for k in declared if k not in entries]
    if absent and len(absent) == len(declared):
        # Every key differs: either the index is another model's, or the keys are spelled in a way the
        # canonical path does not tell. The shapes decide: the same values under other names say nothing.
        theirs = Counter(tuple(e.shape) for k, e in entries.items() if k.endswith(og.VARIABLE_VALUE))
        ours = Counter(tuple(s) for _, s in declared.values() if s is not None)
        if theirs == ours:
            return out
    if absent:
        out.append(Finding(ERROR, f"{index.name} does not hold {len(absent)} of the {len(declared)} variables the "
                                  f"graph of {name} declares ({_examples([k.split('/' + og.ATTRIBUTES)[0] for k in absent])})"
                                  ": it was changed or belongs to another model, and TensorFlow cannot load the "
                                  "SavedModel", str(index), key=absent[0]))
    extra = sorted(k for k in entries if k.endswith(og.VARIABLE_VALUE) and k not in declared) \
        if len(absent) < len(declared) else []
    if extra:
        out.append(Finding(WARNING, f"{index.name} holds {plural(len(extra), 'value')} the graph of {name} does not "
                                    f"declare ({_examples([k.split('/' + og.ATTRIBUTES)[0] for k in extra])}): "
                                    "it may have been changed or come from another model", str(index), key=extra[0]))
    wrong = []
    for key, (dtype, shape) in declared.items():   # once per variable: 50,000 in a big model
        e = entries.get(key)
        if e is None or shape is None or None in shape:
            continue
        if (e.shape != shape and tuple(e.shape) != tuple(shape)) or (dtype and e.dtype_name != dtype):
            wrong.append((key, e, dtype, shape))
    if wrong:
        key, e, dtype, shape = wrong[0]
        out.append(Finding(ERROR, f"{index.name} holds {plural(len(wrong), 'value')} whose shape or dtype differs from "
                                  f"the graph of {name} (first: {key.split('/' + og.ATTRIBUTES)[0]} is "
                                  f"{fmt_shape(e.shape)} {e.dtype_name} in the index, {fmt_shape(shape)} {dtype} in "
                                  "the graph): it was changed, and TensorFlow cannot load the SavedModel",
                           str(index), key=key))
    return out


# --- TF1 exports ------------------------------------------------------------------------------------

def frozen_export(info: SavedModelInfo, checkpoint: Bundle, variables: Bundle | None = None,
                  *, name: str = "saved_model") -> str | None:
    """Why the TF1 checkpoint beside a SavedModel is not needed to run it, in one line; None when it may be.

    A TF1 export (``exporter.py``'s ``saved_model/`` beside ``model.ckpt``) has its weights folded into
    constants: its graph has no variables, so restoring the checkpoint into it matches nothing, and it
    runs as it is. The same holds for a SavedModel whose own variables share no key with a name-based
    checkpoint. A TF2 (object-based) checkpoint is never judged here: its restore report says what matched.
    """
    if og.OBJECT_GRAPH_KEY in checkpoint.entries:
        return None
    try:
        mg = info.meta_graph()
    except Exception:  # unreadable: TensorFlow says why when loading
        return None
    ckpt = checkpoint.prefix.name
    if not mg.has_variables and (variables is None or not variables.entries):
        return f"{name}/ is a TF1 export: its {FROZEN} ({ckpt} was not restored)"
    if variables is not None and variables.entries and not set(variables.entries) & set(checkpoint.entries):
        return (f"{name}/ carries its own variables and {ckpt} (a TF1 checkpoint) names none of them: "
                f"the checkpoint is not needed to run it ({ckpt} was not restored)")
    return None


def own_variables(folder: Path) -> Bundle | None:
    """The SavedModel's own variables bundle when it is readable (None otherwise: other checks say why)."""
    if not (folder / "variables" / "variables.index").is_file():
        return None
    try:
        return _variables_bundle(folder)
    except BundleError:
        return None
