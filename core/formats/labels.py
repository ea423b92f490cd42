"""Label maps: class id -> name, from the three places a user keeps them.

- the OD API's ``label_map.pbtxt`` (a ``StringIntLabelMap`` in protobuf text
  format), parsed by protobuf with the message declared below;
- COCO JSON: an ``annotations.json`` or any JSON with a ``categories`` list of
  ``{id, name}`` (also a bare list of such categories, or an object mapping ids
  to names);
- a plain ``labels.txt`` with one label per line (see :func:`_from_lines`).

All three give one :class:`LabelMap` whose ``findings`` say what a tester should
know before trusting class names: duplicates, id 0, gaps, an empty map.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Iterable

from google.protobuf import text_format

from . import protos
from .textproto import TextFormatError, describe_parse_error, parse_text_proto
from ..base import files
from ..base.errors import UserError
from ..base.files import read_text
from ..base.findings import ERROR, INFO, WARNING, Finding
from .protos import field, message

# The OD API's string_int_label_map.proto. Fields 7 (``frequency``, an enum
# written as a name such as FREQUENT) and 8 (``instance_count``) are left
# undeclared: text_format skips them with ``allow_unknown_field``.
LABEL_MAP = protos.schema("string_int_label_map", [
    message("StringIntLabelMapItem",
            field("name", 1, "string"),
            field("id", 2, "int32"),
            field("display_name", 3, "string"),
            field("keypoints", 4, "KeypointMap", repeated=True),
            field("ancestor_ids", 5, "int32", repeated=True),
            field("descendant_ids", 6, "int32", repeated=True),
            nested=[message("KeypointMap", field("id", 1, "int32"), field("label", 2, "string"))]),
    message("StringIntLabelMap", field("item", 1, "StringIntLabelMapItem", repeated=True)),
])

_ITEM_FIELDS = {"name", "id", "display_name", "keypoints", "ancestor_ids", "descendant_ids",
                "frequency", "instance_count"}

# First lines that stand for the background (index 0) in plain label files.
_BACKGROUND = {"background", "_background_", "__background__", "???"}
# labelme writes this class (id -1) before the background.
_IGNORE = "__ignore__"

# The 80 ids of the COCO detection classes among 1..90.
_COCO_MISSING = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}

_PBTXT_SUFFIXES = {".pbtxt", ".pbtx", ".prototxt", ".textproto", ".textpb"}


class LabelMapError(UserError):
    """A label map detscope cannot read; the message is one line naming the file and the cause."""


@dataclass(frozen=True)
class LabelItem:
    id: int
    name: str
    display_name: str | None = None

    @property
    def label(self) -> str:
        """What to show: ``display_name`` if set, else ``name``, else ``class <id>``."""
        return self.display_name or self.name or f"class {self.id}"


@dataclass
class LabelMap:
    """Class ids and their names, sorted by id, one item per id.

    ``source`` is the file read; ``findings`` what is odd about it.
    """

    items: list[LabelItem] = dc_field(default_factory=list)
    source: Path | None = None
    findings: list[Finding] = dc_field(default_factory=list)

    def __post_init__(self) -> None:
        self.items = sorted(self.items, key=lambda i: i.id)
        self._by_id = {}
        for item in self.items:
            self._by_id.setdefault(item.id, item)

    def label(self, class_id: Any) -> str:
        """The name to show for ``class_id``; ``class <id>`` for an id the map does not have.

        Accepts what detection outputs hold: ints, NumPy ints, and floats such as 1.0.
        """
        try:
            key = int(class_id)
        except (TypeError, ValueError):
            return f"class {class_id}"
        item = self._by_id.get(key)
        return item.label if item is not None else f"class {key}"

    def get(self, class_id: int) -> LabelItem | None:
        return self._by_id.get(int(class_id))

    @property
    def ids(self) -> list[int]:
        return [i.id for i in self.items]

    @property
    def max_id(self) -> int | None:
        return self.items[-1].id if self.items else None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def as_json(self) -> list[dict]:
        return [{"id": i.id, "name": i.name, "display_name": i.display_name} for i in self.items]


# --- reading ---------------------------------------------------------------------------------

def read_label_map(path: str | Path) -> LabelMap:
    """Read a label map, choosing the format by content and suffix.

    JSON when the suffix is ``.json`` or the text starts with ``{`` or ``[``; a
    protobuf text ``StringIntLabelMap`` when the text starts with an ``item``
    block or the suffix is ``.pbtxt`` (and similar); one label per line otherwise.
    Raises :class:`LabelMapError` for a file that cannot be read or parsed.
    """
    path = Path(path)
    text = _read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped[:1] in ("{", "["):
        return _from_json(text, path)
    if path.suffix.lower() in _PBTXT_SUFFIXES or _starts_with_item(text):
        return _from_pbtxt(text, path)
    return _from_lines(text, path)


def label_map_from_names(names: Iterable[str], source: Path | None = None) -> LabelMap:
    """A map with ids 1, 2, ... for ``names`` in order (a model's own class list)."""
    entries = [_Entry(i, str(n), None, f"entry {i}") for i, n in enumerate(names, start=1)]
    return _finish(entries, source, [])


def _read_text(path: Path) -> str:
    # COCO annotations used as a label map can be hundreds of MB; a text label map is KB
    limit = files.ANNOTATIONS_LIMIT if path.suffix.lower() == ".json" else files.LABEL_MAP_LIMIT
    return read_text(path, LabelMapError, "label map", limit=limit)


def _starts_with_item(text: str) -> bool:
    tok = text_format.Tokenizer(text.split("\n"))
    if tok.token != "item":
        return False
    tok.NextToken()
    return tok.token in ("{", "<", ":", "[")


@dataclass
class _Entry:
    id: int
    name: str
    display_name: str | None
    where: str  # "line 3", "item 2", "category 5": for messages


# Hints for the mistakes people make when writing a label map by hand.
_PBTXT_HINTS = (
    ("Expected string", "names must be in quotes, e.g. name: 'car'"),
    ("Couldn't parse integer", "id must be a whole number without quotes, e.g. id: 1"),
    ("should not have multiple", "each item needs its own item { } block"),
    ('Expected ":"', "write field: value, e.g. id: 1"),
    ('Expected "}"', "an item { has no matching }"),
)


def _from_pbtxt(text: str, path: Path) -> LabelMap:
    msg = LABEL_MAP["StringIntLabelMap"]()
    lines = text.split("\n")
    try:
        text_format.Parse(text, msg, allow_unknown_field=True)
    except RecursionError:  # unknown fields nested thousands deep
        raise LabelMapError(f"{path}: nested too deeply to be a label map") from None
    except text_format.ParseError as err:
        cause = describe_parse_error(err, lines).replace(f"{protos.PACKAGE}.", "")
        hint = next((h for key, h in _PBTXT_HINTS if key in str(err)), None)
        raise LabelMapError(f"{path}: {cause}" + (f" ({hint})" if hint else "")) from None

    findings: list[Finding] = []
    entries: list[_Entry] = []
    for n, item in enumerate(msg.item, start=1):
        display = item.display_name if item.HasField("display_name") and item.display_name else None
        name = item.name if item.HasField("name") else ""
        if not item.HasField("id"):
            findings.append(Finding(ERROR, f"item {n} ({name or display or 'unnamed'}) has no id and is left out",
                                    str(path)))
            continue
        entries.append(_Entry(item.id, name, display, f"item {n}"))
    findings.extend(_unknown_fields(text, path))
    return _finish(entries, path, findings)


def _unknown_fields(text: str, path: Path) -> list[Finding]:
    """Fields text_format skipped: a typo such as ``displayname`` silently loses a name."""
    try:
        raw = parse_text_proto(text)
    except TextFormatError:
        # protobuf accepted the text; a stricter reading here only loses this extra check.
        return []
    unknown: Counter = Counter()
    for key in raw:
        if key != "item":
            unknown[key] += 1
    items = raw.get("item", [])
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict):
            unknown.update(k for k in item if k not in _ITEM_FIELDS)
    out = []
    for key, count in unknown.items():
        times = f" ({count} times)" if count > 1 else ""
        out.append(Finding(WARNING, f"unknown field '{key}' ignored{times}; a label map item has "
                                    f"name, id and display_name", str(path)))
    return out


def _from_json(text: str, path: Path) -> LabelMap:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelMapError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise LabelMapError(f"{path}: nested too deeply to be a label map") from None
    except ValueError as exc:  # a number of more than 4,300 digits, say
        raise LabelMapError(f"{path}: not a readable JSON label map ({exc})") from None
    findings: list[Finding] = []
    if isinstance(data, dict) and "categories" in data:
        cats = data["categories"]
    elif isinstance(data, list):
        cats = data
    elif isinstance(data, dict) and data and all(_as_int(k) is not None and isinstance(v, str)
                                                 for k, v in data.items()):
        cats = [{"id": _as_int(k), "name": v} for k, v in data.items()]
    else:
        raise LabelMapError(f"{path}: no 'categories' list (expected COCO annotations, a list of "
                            f"{{id, name}} or an object mapping ids to names)")
    if not isinstance(cats, list):
        raise LabelMapError(f"{path}: 'categories' is not a list")
    entries: list[_Entry] = []
    for n, cat in enumerate(cats, start=1):
        cid = _as_int(cat.get("id")) if isinstance(cat, dict) else None
        name = cat.get("name") if isinstance(cat, dict) else None
        if cid is None or not isinstance(name, str):
            findings.append(Finding(ERROR, f"category {n} is not an {{id, name}} pair and is left out: "
                                           f"{json.dumps(cat)[:60]}", str(path)))
            continue
        display = cat.get("display_name") if isinstance(cat.get("display_name"), str) else None
        entries.append(_Entry(cid, name, display or None, f"category {n}"))
    return _finish(entries, path, findings)


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        body = s[1:] if s[:1] == "-" else s
        try:
            return int(s) if body.isdigit() else None
        except ValueError:  # digits int() does not take ("²"), or more of them than it takes
            return None
    return None


def _split_id(line: str) -> tuple[int, str] | None:
    """``(id, name)`` for ``1 person``, ``1: person``, ``1, person`` or ``1=person``; else None."""
    digits = 1 if line[:1] == "-" else 0
    while digits < len(line) and line[digits].isdigit():
        digits += 1
    if digits == 0 or line[:digits] == "-":
        return None
    rest = line[digits:]
    if not rest or rest[0] not in " \t:,=":
        return None  # "3d printer" is a name
    name = rest.strip(" \t")
    if name[:1] in (":", ",", "="):
        name = name[1:]
    name = _unquote(name.strip())
    try:
        return (int(line[:digits]), name) if name else None
    except ValueError:  # digits int() does not take ("²"), or more of them than it takes
        return None


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _from_lines(text: str, path: Path) -> LabelMap:
    """One label per line.

    Ids are positions counted from 1: the first non-blank line is id 1, the next
    id 2, and so on (blank lines and ``#`` comment lines do not count). Two
    exceptions to that rule:

    - a first line ``background`` (or ``_background_``, ``__background__``,
      ``???`` as TFLite label files have) is index 0, the background, and is
      skipped, so the next line is id 1; labelme's ``__ignore__`` line before it
      (class -1) is skipped too. Later ``???`` lines are placeholders for unused
      ids (TFLite's COCO list) and leave a gap;
    - when every line starts with a number (``0 background``, ``1: person``,
      ``1 person``, ``1,person``) that number is the id.
    """
    rows = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    rows = [(n, s) for n, s in rows if s and not s.startswith("#")]
    findings: list[Finding] = []
    file = str(path)
    entries: list[_Entry] = []
    split = [(n, _split_id(s)) for n, s in rows]
    numbered = sum(1 for _, got in split if got is not None)
    if rows and numbered == len(rows):
        for n, got in split:
            entries.append(_Entry(got[0], got[1], None, f"line {n}"))
        return _finish(entries, path, findings)

    if numbered:
        findings.append(Finding(WARNING, f"{numbered} of {len(rows)} lines start with a number; all are read as "
                                         f"names with ids by position, since not every line has an id", file))
    if rows and rows[0][1].lower() == _IGNORE:
        findings.append(Finding(INFO, f"line {rows[0][0]}: '{rows[0][1]}' (labelme's ignore class) is skipped",
                                file))
        rows = rows[1:]
    if rows and rows[0][1].lower() in _BACKGROUND:
        findings.append(Finding(INFO, f"line {rows[0][0]}: '{rows[0][1]}' is index 0, the background, and is "
                                      f"skipped; labels start at id 1 on the next line", file))
        rows = rows[1:]
    for cid, (n, name) in enumerate(rows, start=1):
        if name == "???":
            continue  # a placeholder keeps its id unused
        entries.append(_Entry(cid, name, None, f"line {n}"))
    return _finish(entries, path, findings)


# --- checks shared by all formats --------------------------------------------------------------

def _quoted(names: Iterable[str], limit: int = 4) -> str:
    names = list(names)
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _numbers(ids: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", … ({len(ids)} in all)" if len(ids) > limit else "")


def _first_gaps(positive: list[int], limit: int) -> list[int]:
    """The first ``limit`` ids missing between the smallest and the largest of sorted ``positive``."""
    out: list[int] = []
    for a, b in zip(positive, positive[1:]):
        for i in range(a + 1, min(b, a + 1 + limit - len(out))):
            out.append(i)
        if len(out) >= limit:
            break
    return out


def _finish(entries: list[_Entry], source: Path | None, findings: list[Finding]) -> LabelMap:
    file = str(source) if source else None
    kept: list[_Entry] = []
    by_id: dict[int, list[_Entry]] = {}
    for e in entries:
        if e.id == 0 and (e.display_name or e.name).lower() in _BACKGROUND:
            findings.append(Finding(INFO, f"{e.where}: id 0 '{e.display_name or e.name}' is the background "
                                          f"and is skipped", file))
            continue
        if e.id < 0:
            findings.append(Finding(ERROR, f"{e.where}: id {e.id} ('{e.name}') is negative and is left out", file))
            continue
        by_id.setdefault(e.id, []).append(e)
    for cid in sorted(by_id):
        group = by_id[cid]
        first = group[0]
        if len(group) > 1:
            labels = [g.display_name or g.name for g in group]
            findings.append(Finding(ERROR, f"id {cid} is used {len(group)} times ({_quoted(labels)}); "
                                           f"'{labels[0]}' ({first.where}) is used", file))
        kept.append(first)

    items = [LabelItem(e.id, e.name, e.display_name) for e in kept]
    if not items:
        findings.append(Finding(ERROR, "the label map is empty: no classes to name", file))
        return LabelMap(items, source, findings)

    if 0 in by_id:
        findings.append(Finding(WARNING, f"id 0 ('{by_id[0][0].name}') is used: 0 is reserved for the "
                                         f"background in the OD API, so detections never carry it", file))

    shown = Counter(i.label for i in items)
    dup_labels = sorted(k for k, c in shown.items() if c > 1)
    for lab in dup_labels:
        ids = [i.id for i in items if i.label == lab]
        findings.append(Finding(WARNING, f"name '{lab}' is used by {len(ids)} ids ({_numbers(ids)}): detections "
                                         f"of these classes look the same", file))
    # Duplicate ``name``s that display names tell apart (COCO's many "NA" codes) matter only
    # to tools mapping names to ids.
    names = Counter(i.name for i in items if i.name and i.display_name)
    for nm, c in sorted(names.items()):
        if c > 1 and nm not in dup_labels:
            findings.append(Finding(INFO, f"{c} items share the name '{nm}'; their display_name tells them apart",
                                    file))

    positive = sorted(i.id for i in items if i.id > 0)
    if positive:
        lo, hi = positive[0], positive[-1]
        # counted, not listed: ids 1 and 10**12 leave a trillion gaps
        gaps = hi - lo + 1 - len(positive)
        missing = _first_gaps(positive, 10)
        notes = []
        if missing:
            gap = "gap" if gaps == 1 else "gaps"
            coco = " (COCO style)" if lo == 1 and hi == 90 and set(_first_gaps(positive, 90)) == _COCO_MISSING \
                else ""
            shown = _numbers(missing) + (f", … ({gaps} in all)" if gaps > len(missing) else "")
            notes.append(f"{gaps} {gap}{coco}: missing {shown}")
        if lo > 1:
            notes.append(f"they start at {lo}, not 1")
        if notes:
            findings.append(Finding(INFO, f"ids {lo}–{hi} with " + "; ".join(notes) if missing
                                    else f"ids {lo}–{hi}: " + "; ".join(notes), file))
    return LabelMap(items, source, findings)
