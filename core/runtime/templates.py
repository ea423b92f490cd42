"""Which export a training folder restores into, when several lie around it (no TensorFlow).

A training folder (``models/my_ssd/``) beside exports (``exported-models/*/saved_model``,
``export/``, ``exported/``, a sibling run's ``saved_model/``) is restored into the export of the same
architecture: each candidate's ``variables/variables.index`` is compared with the checkpoint's index
by variable key and shape, the best one is chosen, and the choice is said in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..browse.folders import ModelFolder
from ..base.errors import UserError
from ..formats.bundle import OBJECT_GRAPH_KEY, Bundle, BundleError
from ..formats.objectgraph import parse_object_graph

EXPORT_DIRS = ("exported-models", "exported_models", "exported", "export", "exports")
MAX_CANDIDATES = 16
_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
_NOT_MODEL = {"optimizer", "save_counter", "step", "global_step", "_CHECKPOINTABLE_OBJECT_GRAPH"}


@dataclass(frozen=True)
class TemplateChoice:
    path: Path | None
    note: str | None = None        # "restored into ... (63 of 63 model values match by key and shape; ...)"


def _is_saved_model(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file()


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith("."))
    except OSError:
        return []


def wide_candidates(base: Path) -> list[Path]:
    """Exports around a training folder: ``export*/…`` here, one and two levels up, and siblings' SavedModels."""
    found: list[Path] = []

    def add(folder: Path) -> None:
        for c in (folder / "saved_model", folder):
            if _is_saved_model(c):
                c = c.resolve()
                if c not in found:
                    found.append(c)
                return
    for anc in (base, base.parent, base.parent.parent):
        for name in EXPORT_DIRS:
            d = anc / name
            if d.is_dir():
                add(d)
                for child in _children(d):
                    add(child)
    for sibling in _children(base.parent):
        if sibling.resolve() != base.resolve():
            add(sibling)
    return found[:MAX_CANDIDATES]


def _model_values(bundle: Bundle) -> set[tuple[str, tuple]]:
    """The model's values in a checkpoint or a SavedModel's variables: ``(key without its root, shape)``."""
    out = set()
    for key, entry in bundle.entries.items():
        if not key.endswith(_VALUE) or "/.OPTIMIZER_SLOT/" in key:
            continue
        first, _, rest = key[: -len(_VALUE)].partition("/")
        if first in _NOT_MODEL or not rest:
            continue
        out.add((rest, tuple(entry.shape)))
    return out


def _template_values(folder: Path) -> set[tuple[str, tuple]]:
    try:
        bundle = Bundle(folder / "variables" / "variables")
    except (BundleError, OSError):
        return set()
    values = _model_values(bundle)
    # a SavedModel of the bare Keras model has no root name in front: compare with its keys as they are
    values |= {(key[: -len(_VALUE)], tuple(e.shape)) for key, e in bundle.entries.items() if key.endswith(_VALUE)}
    # a SavedModel keys a variable by its first path (``_model/variables/0``); the object graph has the
    # others (``_model/backbone/layer_with_weights-0/kernel``), the ones a training checkpoint keys it by
    try:
        graph = parse_object_graph(bundle.read_raw(OBJECT_GRAPH_KEY))
    except (UserError, KeyError, ValueError, OSError):
        return values
    for node in graph.variables():
        entry = bundle.entries.get(node.value_key or "")
        if entry is None:
            continue
        for path in (node.path, *node.aliases):
            first, _, rest = path.partition("/")
            values.add((path, tuple(entry.shape)))
            if rest:
                values.add((rest, tuple(entry.shape)))
    return values


def _shown(path: Path, base: Path) -> str:
    try:
        common = Path(os.path.commonpath([str(path), str(base.resolve())]))
        return str(path.relative_to(common)) or str(path)
    except ValueError:
        return str(path)


def choose_template(mf: ModelFolder, near: list[Path]) -> TemplateChoice:
    """``near`` are the SavedModels found at the usual places (first wins as before); when exports lie
    further around, every candidate is scored and the best one chosen, saying so."""
    base = mf.root
    wide = [c for c in wide_candidates(base) if c not in {n.resolve() for n in near}]
    if not wide:
        return TemplateChoice(near[0] if near else None)
    ref = mf.selected or mf.latest
    if ref is None:
        return TemplateChoice(near[0] if near else None)
    try:
        wanted = _model_values(Bundle(ref.prefix))
    except (BundleError, OSError):
        return TemplateChoice(near[0] if near else None)
    if not wanted:
        return TemplateChoice(near[0] if near else None)
    scored = []
    for i, c in enumerate([*near, *wide]):
        have = _template_values(c)
        scored.append((len(wanted & have), i < len(near), -i, c))
    scored.sort(reverse=True)
    matched, is_near, _, best = scored[0]
    total = len(wanted)
    if not is_near and matched < total:      # a far export must be the same architecture, all of it
        return TemplateChoice(near[0] if near else None)
    others = scored[1:]
    tail = ""
    if others:
        counts = ", ".join(str(o[0]) for o in others[:5]) + (" …" if len(others) > 5 else "")
        tail = f"; {len(others)} other candidate{'s' if len(others) > 1 else ''} matched {counts}"
    note = (f"restored into {_shown(best, base)} ({matched} of {total} model values match by key and shape{tail})")
    return TemplateChoice(best, note)
