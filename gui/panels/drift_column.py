"""The "drift" column of the model tree: how far each variable, and each subtree, moved from checkpoint A (the
one the tree shows) to checkpoint B.

:func:`drift_cells` lays a :class:`~detscope.core.browse.diff.Drift` over the tree the window shows, once,
off the GUI thread: a variable row gets its own relative change ``‖B−A‖ / ‖A‖`` (or "only in A", or its shape
change), every row above it the figure summed over the float variables below it
(``sqrt(Σ‖B−A‖²) / sqrt(Σ‖A‖²)``, as ``detscope diff`` sums its subtrees) — so a backbone that did not
move reads 0.0% while the class head beside it reads 12.3%. The tree's rows follow the object graph, not the key
names, so the sums are taken over the tree's own subtrees. Optimizer slots are left blank, as the diff leaves
them out. Plain Python: the item model only reads the cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detscope.core.base.text import plural
from detscope.core.browse.inventory import NodeKind

UNCHANGED, CHANGED, ONLY_A, SHAPE, NOT_COMPARED = "unchanged", "changed", "only_a", "shape", "not_compared"
MOVED_COLOUR = (230, 120, 30)              # orange, its alpha graded by how far a row moved
STRUCTURE_COLOUR = (150, 90, 200, 150)     # violet: only in A, or another shape or dtype in B
LOW = 1e-4           # a relative change this small or smaller is drawn palest; 1 (100 %) and above darkest


@dataclass(frozen=True)
class DriftCell:
    """One row's drift: what it reads, the number it sorts by and the grade of its colour (0..1)."""

    text: str
    value: float                   # relative change; inf for a value only in A or of another shape
    status: str
    tooltip: str = ""

    @property
    def grade(self) -> float:
        if self.status in (ONLY_A, SHAPE) or math.isinf(self.value):
            return 1.0
        if self.value <= 0:
            return 0.0
        return min(max((math.log10(self.value) - math.log10(LOW)) / -math.log10(LOW), 0.0), 1.0)


@dataclass(frozen=True)
class DriftColumn:
    """What the tree shows in its drift column: ``cells`` by ``id(node)`` of the tree it was made for."""

    title: str                     # the column's header: "drift → ckpt-3"
    a: str
    b: str
    cells: dict[int, DriftCell]
    root: object                   # the tree these cells belong to
    summary: str                   # one line for the status bar
    only_in_b: tuple[str, ...] = ()

    def cell(self, node) -> DriftCell | None:
        return self.cells.get(id(node))


def fmt_relative(value: float) -> str:
    """``0.0%`` for exactly no change, ``<0.1%`` for a change too small to read, ``12.3%``, ``∞``."""
    if value == 0:
        return "0.0%"
    if math.isinf(value):
        return "∞"
    if value < 0.0005:
        return "<0.1%"
    return f"{value * 100:.1f}%"


def _dims(shape) -> str:
    return "×".join(str(d) for d in shape) if shape else "scalar"


def _num(x: float) -> str:
    return f"{x:.4g}"


def drift_cells(root, drift) -> DriftColumn:
    """The drift column for the tree under ``root`` (an inventory ``Node``), from a ``Drift`` of A → B."""
    variables = {v.key: v for v in drift.variables}
    only_a = {e.key: e for e in drift.only_a}
    shapes = {ea.key: (ea, eb) for ea, eb in drift.shape_changes}
    not_compared = dict(drift.not_compared)
    cells: dict[int, DriftCell] = {}
    a, b = drift.a, drift.b

    def own(node) -> tuple[DriftCell | None, tuple]:
        """The cell of a value row and what it adds to the sums above it: (diff², a², max, compared, changed,
        params, structural differences)."""
        key = node.key
        if node.kind == NodeKind.SLOT or not key:
            return None, (0.0, 0.0, 0.0, 0, 0, 0, 0)
        v = variables.get(key)
        if v is not None:
            rel = v.relative_change
            status = CHANGED if v.changed else UNCHANGED
            tip = (f"{a} → {b}: ‖B−A‖/‖A‖ = {_num(rel)}\nlargest absolute change {_num(v.max_abs_change)}\n"
                   f"{v.changed:,} of {v.count:,} values changed" if v.changed else f"{a} → {b}: identical")
            cell = DriftCell(fmt_relative(rel), rel, status, tip)
            if v.dtype.startswith(("float", "bfloat", "half")):
                return cell, (v.diff_norm ** 2, v.norm_a ** 2, v.max_abs_change, 1, 1 if v.changed else 0,
                              v.count, 0)
            return cell, (0.0, 0.0, 0.0, 0, 0, 0, 0)         # a counter (step, save_counter) is not summed
        if key in only_a:
            return DriftCell("only in A", math.inf, ONLY_A, f"{key} is in {a} but not in {b}"), \
                (0.0, 0.0, 0.0, 0, 0, 0, 1)
        if key in shapes:
            ea, eb = shapes[key]
            if tuple(ea.shape) != tuple(eb.shape):
                text = f"shape {_dims(ea.shape)} → {_dims(eb.shape)}"
            else:
                text = f"dtype {ea.dtype_name} → {eb.dtype_name}"
            return DriftCell(text, math.inf, SHAPE, f"{a}: {_dims(ea.shape)} {ea.dtype_name}\n"
                                                    f"{b}: {_dims(eb.shape)} {eb.dtype_name}"), \
                (0.0, 0.0, 0.0, 0, 0, 0, 1)
        if key in not_compared:
            return DriftCell("not compared", -1.0, NOT_COMPARED, not_compared[key]), (0.0, 0.0, 0.0, 0, 0, 0, 0)
        return None, (0.0, 0.0, 0.0, 0, 0, 0, 0)

    def visit(node) -> tuple:
        cell, sums = own(node)
        d_sq, a_sq, max_abs, compared, changed, params, odd = sums
        for child in node.children:
            c = visit(child)
            d_sq, a_sq, compared, changed, params, odd = (d_sq + c[0], a_sq + c[1], compared + c[3],
                                                          changed + c[4], params + c[5], odd + c[6])
            max_abs = max(max_abs, c[2])
        if cell is None and (compared or odd) and node is not root:
            rel = (math.sqrt(d_sq) / math.sqrt(a_sq)) if a_sq > 0 else (0.0 if d_sq == 0 else math.inf)
            text = fmt_relative(rel) if compared else ""
            if odd:
                text = f"{text} · {odd} differ" if text else f"{odd} differ"
            tip = (f"{a} → {b}, {plural(compared, 'variable')} below ({params:,} values): "
                   f"sqrt(Σ‖B−A‖²)/sqrt(Σ‖A‖²) = {_num(rel)}\nlargest absolute change {_num(max_abs)}\n"
                   f"{changed} of {compared} changed")
            if odd:
                tip += f"\n{plural(odd, 'value')} only in A or of another shape"
            status = SHAPE if odd and not changed else CHANGED if changed else UNCHANGED
            cell = DriftCell(text, math.inf if odd and not compared else rel, status, tip)
        if cell is not None:
            cells[id(node)] = cell
        return d_sq, a_sq, max_abs, compared, changed, params, odd

    visit(root)
    only_b = tuple(e.key for e in drift.only_b)
    parts = [f"{len(drift.variables)} variables compared", f"{len(drift.changed)} changed"]
    if drift.only_a:
        parts.append(f"{len(drift.only_a)} only in {a}")
    if only_b:
        parts.append(f"{len(only_b)} only in {b}")
    if drift.shape_changes:
        parts.append(plural(len(drift.shape_changes), "shape change"))
    summary = f"weights {a} → {b}: " + ", ".join(parts)
    return DriftColumn(f"Drift → {b}", a, b, cells, root, summary, only_b)
