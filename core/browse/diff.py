"""Weight drift between two checkpoints, without TensorFlow: which variables (and which layers) moved.

:func:`diff_checkpoints` compares two tensor bundles entry by entry. For each variable in both with
the same shape it streams the two tensors side by side, chunk by chunk
(:meth:`~detscope.core.formats.bundle.Bundle.iter_chunks`: one chunk of each in memory at a time, the
CRC checked on the way), accumulating in float64:

- ``‖B − A‖`` and ``‖A‖`` (Frobenius norms), so the relative change ``‖B − A‖ / ‖A‖``;
- the largest absolute change and how many elements changed at all.

Variables only in one checkpoint, shape (or dtype) changes, and values that cannot be compared (strings,
a missing shard) are listed apart. The sums add up per subtree of the key paths (``model``,
``model/backbone``, ``model/backbone/conv1``...): a subtree's relative change is ``sqrt(Σ‖B−A‖²) /
sqrt(Σ‖A‖²)`` over its variables, so "the backbone did not move; only the class head changed" reads off
the top rows. Optimizer slots and optimizer state are left out unless asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import UserError
from ..formats.bundle import Bundle, BundleError, Entry
from ..formats import dtypes
from . import folders

ATTRIBUTE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
DEFAULT_CHUNK = 1 << 20          # elements per chunk of each side (8 MiB of float64 work at most)

VARIABLE = "variable"
SLOT = "slot"
OPTIMIZER = "optimizer"


def key_kind(key: str) -> str:
    """What a checkpoint key holds: a model ``variable``, an optimizer ``slot`` or other ``optimizer`` state."""
    if ".OPTIMIZER_SLOT" in key:
        return SLOT
    head = key.split("/", 1)[0]
    if head in ("optimizer", "_optimizer"):
        return OPTIMIZER
    return VARIABLE


def key_path(key: str) -> str:
    """The key as a path of names: ``model/backbone/conv/kernel`` (TF2's attribute suffix dropped)."""
    return key[: -len(ATTRIBUTE_SUFFIX)] if key.endswith(ATTRIBUTE_SUFFIX) else key


@dataclass(frozen=True)
class VariableDrift:
    key: str
    shape: tuple[int, ...]
    dtype: str
    kind: str
    count: int
    norm_a: float
    norm_b: float
    diff_norm: float
    max_abs_change: float
    changed: int                     # elements whose value differs

    @property
    def path(self) -> str:
        return key_path(self.key)

    @property
    def relative_change(self) -> float:
        return _relative(self.diff_norm, self.norm_a)

    def as_json(self) -> dict:
        return {"key": self.key, "path": self.path, "kind": self.kind, "shape": list(self.shape),
                "dtype": self.dtype, "count": self.count, "relative_change": _num(self.relative_change),
                "max_abs_change": _num(self.max_abs_change), "diff_norm": _num(self.diff_norm),
                "norm_a": _num(self.norm_a), "norm_b": _num(self.norm_b), "changed_elements": self.changed}


@dataclass
class SubtreeDrift:
    """The drift of every compared variable under one path (``model/backbone``)."""

    path: str
    depth: int
    variables: int = 0
    params: int = 0
    changed_variables: int = 0
    diff_sq: float = 0.0
    a_sq: float = 0.0
    max_abs_change: float = 0.0

    @property
    def relative_change(self) -> float:
        return _relative(math.sqrt(self.diff_sq), math.sqrt(self.a_sq))

    def as_json(self) -> dict:
        return {"path": self.path, "depth": self.depth, "variables": self.variables, "params": self.params,
                "changed_variables": self.changed_variables, "relative_change": _num(self.relative_change),
                "max_abs_change": _num(self.max_abs_change), "diff_norm": _num(math.sqrt(self.diff_sq)),
                "norm_a": _num(math.sqrt(self.a_sq))}


@dataclass
class Drift:
    a: str
    b: str
    variables: list[VariableDrift] = field(default_factory=list)
    only_a: list[Entry] = field(default_factory=list)
    only_b: list[Entry] = field(default_factory=list)
    shape_changes: list[tuple[Entry, Entry]] = field(default_factory=list)
    not_compared: list[tuple[str, str]] = field(default_factory=list)     # (key, why)
    skipped: dict[str, int] = field(default_factory=dict)                 # kind -> entries left out
    subtrees: dict[str, SubtreeDrift] = field(default_factory=dict)

    @property
    def changed(self) -> list[VariableDrift]:
        return [v for v in self.variables if v.changed]

    def subtree(self, path: str) -> SubtreeDrift | None:
        return self.subtrees.get(path)

    def top_subtrees(self, depth: int) -> list[SubtreeDrift]:
        """Subtrees down to ``depth`` levels, in path order (a tree printed depth first)."""
        return [s for p, s in sorted(self.subtrees.items()) if s.depth <= depth]

    def as_json(self) -> dict:
        def entry(e: Entry) -> dict:
            return {"key": e.key, "path": key_path(e.key), "shape": list(e.shape), "dtype": e.dtype_name}
        return {
            "a": self.a, "b": self.b,
            "compared": len(self.variables), "changed": len(self.changed),
            "variables": [v.as_json() for v in self.variables],
            "only_in_a": [entry(e) for e in self.only_a],
            "only_in_b": [entry(e) for e in self.only_b],
            "shape_changes": [{"key": ea.key, "path": key_path(ea.key), "shape_a": list(ea.shape),
                               "shape_b": list(eb.shape), "dtype_a": ea.dtype_name, "dtype_b": eb.dtype_name}
                              for ea, eb in self.shape_changes],
            "not_compared": [{"key": k, "reason": why} for k, why in self.not_compared],
            "skipped": dict(self.skipped),
            "subtrees": [s.as_json() for _, s in sorted(self.subtrees.items())],
        }


def _relative(diff: float, base: float) -> float:
    if diff == 0:
        return 0.0
    if base == 0:
        return math.inf
    return diff / base


def _num(x: float):
    """JSON has no Infinity or NaN: those are written as strings."""
    if math.isinf(x) or math.isnan(x):
        return str(x)
    return x


def resolve_checkpoint(path: str | Path) -> tuple[Bundle, str]:
    """The bundle a path names (a ``ckpt-N`` prefix, its ``.index``, a folder's latest checkpoint, a
    SavedModel's variables) and how to call it."""
    mf = folders.recognise(path)
    ref = mf.selected
    if ref is None:
        raise UserError(f"{path}: no checkpoint here (no ckpt-N.index, no variables/variables.index)")
    try:
        bundle = Bundle(ref.prefix)
    except BundleError as exc:
        raise UserError(str(exc)) from exc
    name = ref.name if ref.prefix.parent.name != "variables" else f"{ref.prefix.parent.parent.name}/variables"
    return bundle, name


def _compare(a: Bundle, b: Bundle, key: str, chunk: int) -> tuple[float, float, float, float, int]:
    """(‖A‖², ‖B‖², ‖B−A‖², max |B−A|, changed elements) of one tensor, streamed chunk by chunk."""
    import numpy as np

    a_sq = b_sq = d_sq = 0.0
    max_abs = 0.0
    changed = 0
    for ca, cb in zip(a.iter_chunks(key, chunk), b.iter_chunks(key, chunk)):
        fa = ca.astype(np.float64, copy=False)
        fb = cb.astype(np.float64, copy=False)
        d = fb - fa
        # einsum, not dot: no BLAS call (whose thread start-up costs more than these sums on small tensors)
        a_sq += float(np.einsum("i,i->", fa, fa))
        b_sq += float(np.einsum("i,i->", fb, fb))
        d_sq += float(np.einsum("i,i->", d, d))
        if d.size:
            np.abs(d, out=d)
            max_abs = max(max_abs, float(d.max()))
            changed += int(np.count_nonzero(ca != cb))
    return a_sq, b_sq, d_sq, max_abs, changed


def _comparable(entry: Entry) -> str | None:
    """Why a value cannot be compared numerically (None when it can)."""
    dt = dtypes.numpy_dtype(entry.dtype)
    if dt is None:
        return f"{entry.dtype_name} values are not numbers"
    if dt.kind in "OSU":
        return "strings are not compared"
    if dt.kind == "c":
        return "complex values are not compared"
    return None


def diff_checkpoints(a: str | Path | Bundle, b: str | Path | Bundle, *, include_optimizer: bool = False,
                     chunk_elements: int = DEFAULT_CHUNK, progress=None) -> Drift:
    """The drift from checkpoint ``a`` to checkpoint ``b`` (paths as :func:`resolve_checkpoint` takes, or
    bundles). ``progress(done, total)`` is called after each compared variable."""
    if isinstance(a, Bundle):
        bundle_a, name_a = a, a.prefix.name
    else:
        bundle_a, name_a = resolve_checkpoint(a)
    if isinstance(b, Bundle):
        bundle_b, name_b = b, b.prefix.name
    else:
        bundle_b, name_b = resolve_checkpoint(b)
    drift = Drift(name_a, name_b)
    keys_a, keys_b = bundle_a.entries, bundle_b.entries
    wanted = []
    for key, ea in keys_a.items():
        if key == OBJECT_GRAPH_KEY:
            continue
        kind = key_kind(key)
        if kind != VARIABLE and not include_optimizer:
            drift.skipped[kind] = drift.skipped.get(kind, 0) + 1
            continue
        eb = keys_b.get(key)
        if eb is None:
            drift.only_a.append(ea)
        elif tuple(ea.shape) != tuple(eb.shape) or ea.dtype != eb.dtype:
            drift.shape_changes.append((ea, eb))
        else:
            why = _comparable(ea)
            if why is not None:
                drift.not_compared.append((key, why))
            else:
                wanted.append((key, ea, kind))
    for key, eb in keys_b.items():
        if key == OBJECT_GRAPH_KEY or key in keys_a:
            continue
        if key_kind(key) != VARIABLE and not include_optimizer:
            continue
        drift.only_b.append(eb)

    for n, (key, entry, kind) in enumerate(wanted, 1):
        try:
            a_sq, b_sq, d_sq, max_abs, changed = _compare(bundle_a, bundle_b, key, chunk_elements)
        except BundleError as exc:
            drift.not_compared.append((key, str(exc)))
            continue
        v = VariableDrift(key, tuple(entry.shape), entry.dtype_name, kind, entry.num_elements,
                          math.sqrt(a_sq), math.sqrt(b_sq), math.sqrt(d_sq), max_abs, changed)
        drift.variables.append(v)
        _add_to_subtrees(drift.subtrees, v, d_sq, a_sq)
        if progress is not None:
            progress(n, len(wanted))
    return drift


def _add_to_subtrees(subtrees: dict[str, SubtreeDrift], v: VariableDrift, d_sq: float, a_sq: float) -> None:
    parts = v.path.split("/")
    for depth in range(1, len(parts)):
        path = "/".join(parts[:depth])
        s = subtrees.get(path)
        if s is None:
            s = subtrees[path] = SubtreeDrift(path, depth)
        s.variables += 1
        s.params += v.count
        s.changed_variables += 1 if v.changed else 0
        s.diff_sq += d_sq
        s.a_sq += a_sq
        s.max_abs_change = max(s.max_abs_change, v.max_abs_change)
