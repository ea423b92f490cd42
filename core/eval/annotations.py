"""Ground truth: the boxes a person drew, in image pixels like :class:`~detscope.core.detect.detections.Detections`.

One :class:`Annotations` per image, whatever file it came from; a :class:`GroundTruth` is a whole
test set's, keyed by image. Class names are mapped to the model's label map by a
:class:`ClassMapper`: names that do not map keep class id ``-1`` (:data:`UNMAPPED`), are counted in
``GroundTruth.unmapped`` and stay out of the metrics, so they are listed, never silently dropped.

An image with no entry in a :class:`GroundTruth` is *unannotated* (nobody said what is in it);
an entry with no boxes is *empty* (someone said nothing is in it). Which of the two a missing
annotation file means is the format's call (see :mod:`.readers`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..base.errors import UserError
from ..base.findings import Finding
from ..formats.labels import LabelMap

UNMAPPED = -1


class GroundTruthError(UserError):
    """An annotation file detscope cannot read: one line naming the file and the line or record."""


@dataclass(frozen=True)
class Annotations:
    """One image's ground truth. Boxes are ``(x0, y0, x1, y1)`` in original image pixels (float64).

    ``crowd`` marks COCO crowd regions; ``difficult`` marks VOC ``difficult`` objects and COCO
    ``ignore`` flags. Both are *ignored* in matching: a detection on them is neither right nor wrong.
    ``areas`` is the area the file states (COCO's segmentation area), NaN where it states none.
    """

    boxes: np.ndarray
    class_ids: np.ndarray          # (N,) int64 label-map ids; UNMAPPED (-1) for names the map does not have
    names: tuple[str, ...]         # (N,) class names as the file wrote them
    crowd: np.ndarray              # (N,) bool
    difficult: np.ndarray          # (N,) bool
    width: int | None = None       # the image size the file states (None: it states none)
    height: int | None = None
    source: str = ""               # the file (and record) it came from
    areas: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.names)
        if self.boxes.shape != (n, 4) or len(self.class_ids) != n or len(self.crowd) != n or len(self.difficult) != n:
            raise ValueError("annotations: boxes, class ids, names and flags differ in length")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def ignored(self) -> np.ndarray:
        return self.crowd | self.difficult

    @classmethod
    def build(cls, boxes, names, class_ids=None, crowd=None, difficult=None, width=None, height=None,
              source: str = "", areas=None) -> "Annotations":
        n = len(names)
        boxes = np.asarray(boxes, np.float64).reshape(n, 4) if n else np.zeros((0, 4), np.float64)
        ids = (np.full(n, UNMAPPED, np.int64) if class_ids is None else np.asarray(class_ids, np.int64).reshape(n))
        flag = lambda v: np.zeros(n, bool) if v is None else np.asarray(v, bool).reshape(n)  # noqa: E731
        area = None if areas is None else np.asarray(areas, np.float64).reshape(n)
        return cls(boxes, ids, tuple(str(s) for s in names), flag(crowd), flag(difficult),
                   None if width is None else int(width), None if height is None else int(height), source, area)

    @classmethod
    def empty(cls, width=None, height=None, source: str = "") -> "Annotations":
        return cls.build(np.zeros((0, 4)), (), width=width, height=height, source=source)

    def with_ids(self, class_ids) -> "Annotations":
        return Annotations(self.boxes, np.asarray(class_ids, np.int64), self.names, self.crowd, self.difficult,
                           self.width, self.height, self.source, self.areas)

    def scaled_to(self, width: int, height: int) -> "Annotations":
        """The same boxes for an image of ``width`` x ``height`` (when the file's stated size differs)."""
        if not self.width or not self.height or (self.width, self.height) == (width, height):
            return self
        s = np.array([width / self.width, height / self.height] * 2)
        return Annotations(self.boxes * s, self.class_ids, self.names, self.crowd, self.difficult, width, height,
                           self.source, None if self.areas is None else self.areas * s[0] * s[1])

    def as_json(self) -> list[dict]:
        return [{"box": [round(float(v), 4) for v in box], "class_id": int(c), "name": name,
                 "crowd": bool(cr), "difficult": bool(d)}
                for box, c, name, cr, d in zip(self.boxes, self.class_ids, self.names, self.crowd, self.difficult)]


# --- class names onto the label map ------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[\s_\-/]+", "", name.strip().lower())


class ClassMapper:
    """Class names (and, without a label map, numeric ids) onto the model's label-map ids.

    A name maps when it equals an item's ``name`` or ``display_name``, exactly, else ignoring case,
    spaces, ``_``, ``-`` and ``/``. Without a label map nothing maps by name; formats that store ids
    (COCO ``category_id``, TFRecord ``class/label``) then keep their own ids.
    """

    def __init__(self, label_map: LabelMap | None):
        self.label_map = label_map
        self._exact: dict[str, int] = {}
        self._loose: dict[str, int] = {}
        if label_map is not None:
            for item in label_map.items:
                for s in (item.name, item.display_name):
                    if s:
                        self._exact.setdefault(s, item.id)
                        self._loose.setdefault(_norm(s), item.id)

    def id_for(self, name: str, fallback_id: int | None = None) -> int:
        if self.label_map is None:
            return int(fallback_id) if fallback_id is not None else UNMAPPED
        if name in self._exact:
            return self._exact[name]
        return self._loose.get(_norm(name), UNMAPPED)

    def ids_for(self, names, fallback_ids=None) -> np.ndarray:
        fallback_ids = fallback_ids if fallback_ids is not None else [None] * len(names)
        return np.array([self.id_for(n, f) for n, f in zip(names, fallback_ids)], np.int64).reshape(len(names))


# --- a test set's ground truth ---------------------------------------------------------------------

@dataclass
class GroundTruth:
    """Every image's annotations, as read from ``source`` in ``format``.

    ``by_stem``: the format pairs annotation files with images by file stem (``NAME.xml`` ↔
    ``NAME.jpg``); otherwise by the file name the annotations state, with its folders when that
    tells two images apart.
    """

    format: str
    source: Path
    images: dict[str, Annotations] = field(default_factory=dict)
    by_stem: bool = False
    unmapped: dict[str, int] = field(default_factory=dict)   # class name -> objects, names the map lacks
    findings: list[Finding] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)    # what was left out and why -> count
    root: Path | None = None       # the folder the file names it states are relative to

    def __post_init__(self):
        self._index: dict[str, str] | None = None

    def _build_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        names: dict[str, list[str]] = {}
        for key in self.images:
            norm = _key(key)
            index[norm] = key
            short = PurePosixPath(norm).stem if self.by_stem else PurePosixPath(norm).name
            names.setdefault(short, []).append(key)
        for short, keys in names.items():
            if len(keys) == 1:
                index.setdefault(short, keys[0])
        return index

    def lookup(self, image: str | Path) -> Annotations | None:
        """The annotations of ``image`` (by its path relative to ``root``, else its name), or None: unannotated."""
        if self._index is None:
            self._index = self._build_index()
        image = Path(image)
        candidates = []
        if self.root is not None:
            try:
                candidates.append(_key(image.resolve().relative_to(Path(self.root).resolve()).as_posix()))
            except ValueError:
                pass
        candidates.append(image.stem if self.by_stem else image.name)
        for c in candidates:
            key = self._index.get(c)
            if key is not None:
                return self.images[key]
        return None

    @property
    def objects(self) -> int:
        return sum(len(a) for a in self.images.values())

    def unmapped_line(self) -> str | None:
        """One line listing the class names the model's label map does not have, or None."""
        if not self.unmapped:
            return None
        total = sum(self.unmapped.values())
        shown = ", ".join(f"'{n}' ({c})" for n, c in list(self.unmapped.items())[:8])
        more = f" and {len(self.unmapped) - 8} more" if len(self.unmapped) > 8 else ""
        return (f"{len(self.unmapped)} ground-truth class{'es' if len(self.unmapped) != 1 else ''} not in the model's "
                f"label map, {total} object{'s' if total != 1 else ''} left out of the metrics: {shown}{more}")


def _key(name: str) -> str:
    """An image name as a lookup key: forward slashes, no leading ``./``."""
    s = str(name).replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    return s
