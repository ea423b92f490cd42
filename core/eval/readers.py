"""Ground-truth readers: COCO JSON, Pascal VOC XML, OD API TFRecords, the tutorials' CSV, YOLO txt, labelme JSON.

Every reader gives one :class:`~.annotations.GroundTruth` in image pixels ``(x0, y0, x1, y1)``. A file
detscope cannot read raises :class:`~.annotations.GroundTruthError`: one line naming the file and the
line (text formats) or the record (``annotation 5``, ``object 2``, ``record 3``).

What a missing annotation means is the format's call:

- per-image files (VOC, labelme): an image without its file is *unannotated*; a file without
  objects is *empty*;
- YOLO: a missing ``.txt`` means *empty* (Ultralytics' own rule: background images need no file);
- COCO: an image listed in ``images`` without annotations is *empty*; an image not listed is
  *unannotated*;
- CSV and TFRecord: an image with no row / record is *unannotated* (a CSV cannot state an empty
  image; a TFRecord example without objects is *empty*).

:func:`find_ground_truth` recognises what sits beside the images (or what ``--gt`` names);
:func:`read_ground_truth` reads it and maps class names onto the model's label map.
"""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .annotations import UNMAPPED, Annotations, ClassMapper, GroundTruth, GroundTruthError
from ..base.files import read_text
from ..base.findings import INFO, WARNING, Finding
from ..formats import tfrecord
from ..formats.labels import LabelMap

FORMATS = ("coco", "voc", "tfrecord", "csv", "yolo", "labelme")
TFRECORD_SUFFIXES = (".record", ".records", ".tfrecord", ".tfrecords", ".tfrec")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _text(path: Path, what: str) -> str:
    return read_text(path, GroundTruthError, what)


def _number(value, where: str, what: str) -> float:
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        raise GroundTruthError(f"{where}: {what} is {str(value).strip()!r}, not a number") from None
    if not math.isfinite(v):
        raise GroundTruthError(f"{where}: {what} is {v}, not a finite number")
    return v


def _check_box(x0, y0, x1, y1, where: str) -> None:
    if x1 < x0 or y1 < y0:
        raise GroundTruthError(f"{where}: the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has its right or bottom edge "
                               f"before its left or top")


def _flag(value) -> bool:
    s = str(value).strip().lower() if value is not None else ""
    return s in ("1", "true", "yes")


# --- COCO ------------------------------------------------------------------------------------------

def _json(path: Path, what: str):
    text = _text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GroundTruthError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def read_coco(path: str | Path) -> GroundTruth:
    path = Path(path)
    data = _json(path, "COCO annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise GroundTruthError(f"{path}: not COCO annotations (no 'images' and 'annotations' lists)")
    cats: dict[int, str] = {}
    for n, cat in enumerate(data.get("categories") or [], 1):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise GroundTruthError(f"{path}: category {n}: not an {{id, name}} pair: {json.dumps(cat)[:60]}")
        cats[cat["id"]] = cat["name"]
    images: dict = {}
    for n, im in enumerate(data["images"], 1):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise GroundTruthError(f"{path}: image {n}: needs an 'id' and a 'file_name': {json.dumps(im)[:60]}")
        if im["id"] in images:
            raise GroundTruthError(f"{path}: image {n}: id {im['id']} is used twice")
        images[im["id"]] = (im, [])
    for n, ann in enumerate(data["annotations"], 1):
        where = f"{path}: annotation {n}" + (f" (id {ann['id']})" if isinstance(ann, dict) and "id" in ann else "")
        if not isinstance(ann, dict):
            raise GroundTruthError(f"{where}: not an object")
        if ann.get("image_id") not in images:
            raise GroundTruthError(f"{where}: image_id {ann.get('image_id')!r} is not among the images")
        if cats and ann.get("category_id") not in cats:
            raise GroundTruthError(f"{where}: category_id {ann.get('category_id')!r} is not among the categories")
        if not isinstance(ann.get("category_id"), int):
            raise GroundTruthError(f"{where}: category_id {ann.get('category_id')!r} is not a whole number")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise GroundTruthError(f"{where}: bbox is {json.dumps(bbox)}, not [x, y, width, height]")
        x, y, w, h = (_number(v, where, "a bbox value") for v in bbox)
        if w < 0 or h < 0:
            raise GroundTruthError(f"{where}: bbox {bbox} has a negative width or height")
        images[ann["image_id"]][1].append((ann, (x, y, x + w, y + h)))
    gt = GroundTruth("coco", path, root=path.parent)
    for im_id, (im, anns) in images.items():
        names = [cats.get(a["category_id"], f"category {a['category_id']}") for a, _ in anns]
        area = [float(a["area"]) if isinstance(a.get("area"), (int, float)) else np.nan for a, _ in anns]
        key = im["file_name"]
        if key in gt.images:
            raise GroundTruthError(f"{path}: file_name {key!r} is listed twice among the images")
        gt.images[key] = Annotations.build(
            [b for _, b in anns], names, class_ids=[a["category_id"] for a, _ in anns],
            crowd=[_flag(a.get("iscrowd", 0)) for a, _ in anns], difficult=[_flag(a.get("ignore", 0)) for a, _ in anns],
            width=im.get("width") or None, height=im.get("height") or None, source=f"{path.name}: image id {im_id}",
            areas=area)
    return gt


# --- Pascal VOC ------------------------------------------------------------------------------------

def _parse_xml(path: Path):
    """The root element and each element's line (expat directly: ElementTree's C parser keeps no lines)."""
    from xml.parsers import expat

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GroundTruthError(f"{path}: no such file") from None
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    lines: dict = {}

    def start(tag, attrs):
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise GroundTruthError(f"{path}: line {exc.lineno}, column {exc.offset + 1}: "
                               f"{expat.ErrorString(exc.code)}") from None
    return builder.close(), lines


def read_voc_file(path: Path) -> Annotations:
    path = Path(path)
    root, lines = _parse_xml(path)
    if root.tag != "annotation":
        raise GroundTruthError(f"{path}: line {lines.get(root, 1)}: not a Pascal VOC annotation "
                               f"(the root element is <{root.tag}>, not <annotation>)")
    size = root.find("size")
    width = height = None
    if size is not None:
        w, h = size.findtext("width"), size.findtext("height")
        if w and w.strip() and h and h.strip():
            where = f"{path}: line {lines.get(size)}"
            width, height = int(_number(w, where, "width")), int(_number(h, where, "height"))
            width, height = (width or None), (height or None)   # labelImg writes 0 when it did not know
    boxes, names, difficult = [], [], []
    for n, obj in enumerate(root.iter("object"), 1):
        where = f"{path}: line {lines.get(obj)} (object {n})"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise GroundTruthError(f"{where}: the object has no <name>")
        bb = obj.find("bndbox")
        if bb is None:
            raise GroundTruthError(f"{where}: object '{name}' has no <bndbox>")
        coords = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            el = bb.find(tag)
            if el is None or el.text is None:
                raise GroundTruthError(f"{path}: line {lines.get(bb)} (object {n}): <bndbox> of '{name}' has no <{tag}>")
            coords.append(_number(el.text, f"{path}: line {lines.get(el)} (object {n})", tag))
        _check_box(*coords, where)
        boxes.append(coords)
        names.append(name)
        difficult.append(_flag(obj.findtext("difficult")))
    return Annotations.build(boxes, names, difficult=difficult, width=width, height=height, source=path.name)


def read_voc(paths: list[Path], source: Path) -> GroundTruth:
    gt = GroundTruth("voc", source, by_stem=True)
    for p in paths:
        gt.images[p.stem] = read_voc_file(p)
    return gt


# --- labelme ---------------------------------------------------------------------------------------

def read_labelme_file(path: Path, skipped: dict[str, int]) -> Annotations:
    data = _json(path, "labelme JSON file")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise GroundTruthError(f"{path}: not a labelme file (no 'shapes' list)")
    boxes, names, difficult = [], [], []
    for n, shape in enumerate(data["shapes"], 1):
        where = f"{path}: shape {n}"
        if not isinstance(shape, dict):
            raise GroundTruthError(f"{where}: not an object")
        kind = shape.get("shape_type") or "polygon"
        if kind != "rectangle":
            skipped[f"labelme {kind} shapes (only rectangles are boxes)"] = \
                skipped.get(f"labelme {kind} shapes (only rectangles are boxes)", 0) + 1
            continue
        label = shape.get("label")
        pts = shape.get("points")
        if not isinstance(label, str) or not label.strip():
            raise GroundTruthError(f"{where}: the rectangle has no label")
        if not isinstance(pts, list) or len(pts) != 2 or not all(isinstance(p, list) and len(p) == 2 for p in pts):
            raise GroundTruthError(f"{where}: rectangle '{label}' needs two corner points, has {json.dumps(pts)[:60]}")
        (xa, ya), (xb, yb) = [[_number(v, where, "a point coordinate") for v in p] for p in pts]
        boxes.append((min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))
        names.append(label.strip())
        difficult.append(bool(shape.get("difficult", False)))
    return Annotations.build(boxes, names, difficult=difficult, width=data.get("imageWidth") or None,
                             height=data.get("imageHeight") or None, source=path.name)


def read_labelme(paths: list[Path], source: Path) -> GroundTruth:
    gt = GroundTruth("labelme", source, by_stem=True)
    for p in paths:
        gt.images[p.stem] = read_labelme_file(p, gt.skipped)
    return gt


# --- the tutorials' CSV ----------------------------------------------------------------------------

CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def read_csv(path: str | Path) -> GroundTruth:
    path = Path(path)
    text = _text(path, "CSV file")
    rows = list(csv.reader(io.StringIO(text)))
    gt = GroundTruth("csv", path, root=path.parent)
    if not rows:
        return gt
    header = [c.strip().lower() for c in rows[0]]
    if "filename" in header:
        missing = [c for c in ("filename", "class", "xmin", "ymin", "xmax", "ymax") if c not in header]
        if missing:
            raise GroundTruthError(f"{path}: line 1: the header has no {', '.join(missing)} column "
                                   f"(expected {','.join(CSV_COLUMNS)})")
        col = {c: header.index(c) for c in CSV_COLUMNS if c in header}
        body = list(enumerate(rows[1:], 2))
    else:
        col = {c: i for i, c in enumerate(CSV_COLUMNS)}
        body = list(enumerate(rows, 1))
    per_image: dict[str, list] = {}
    sizes: dict[str, tuple] = {}
    for line, row in body:
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path}: line {line}"
        if len(row) <= max(col.values()):
            raise GroundTruthError(f"{where}: {len(row)} columns, expected {max(col.values()) + 1} "
                                   f"({','.join(CSV_COLUMNS)})")
        name = row[col["filename"]].strip()
        cls = row[col["class"]].strip()
        if not name or not cls:
            raise GroundTruthError(f"{where}: the {'filename' if not name else 'class'} is empty")
        box = [_number(row[col[c]], where, c) for c in ("xmin", "ymin", "xmax", "ymax")]
        _check_box(*box, where)
        size = tuple(int(_number(row[col[c]], where, c)) if c in col and row[col[c]].strip() else None
                     for c in ("width", "height"))
        per_image.setdefault(name, []).append((box, cls))
        sizes.setdefault(name, size)
    for name, objs in per_image.items():
        w, h = sizes[name]
        gt.images[name] = Annotations.build([b for b, _ in objs], [c for _, c in objs], width=w or None,
                                            height=h or None, source=f"{path.name}: {name}")
    return gt


# --- YOLO ------------------------------------------------------------------------------------------

def _yolo_names(paths: list[Path]) -> tuple[list[str], Path] | None:
    import yaml

    for p in paths:
        if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(_text(p, "YAML file"))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = f"line {mark.line + 1}: " if mark is not None else ""
                raise GroundTruthError(f"{p}: {line}not valid YAML ({getattr(exc, 'problem', exc)})") from None
            names = data.get("names") if isinstance(data, dict) else None
            if isinstance(names, dict):
                try:
                    return [str(names[k]) for k in sorted(names, key=int)], p
                except (TypeError, ValueError):
                    raise GroundTruthError(f"{p}: 'names' keys must be class indexes 0, 1, ...") from None
            if isinstance(names, list):
                return [str(n) for n in names], p
            raise GroundTruthError(f"{p}: no 'names' list (the class names of the YOLO labels)")
        if p.is_file():
            lines = [s.strip() for s in _text(p, "class list").splitlines()]
            return [s for s in lines if s], p
    return None


def _oriented_size(path: Path) -> tuple[int, int]:
    """An image's width and height as detscope decodes it (EXIF orientation applied), from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise GroundTruthError(f"{path}: cannot read the image's size ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _yolo_label_for(image: Path, labels: Path | None) -> Path:
    if labels is not None:
        return labels / (image.stem + ".txt")
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):       # Ultralytics' rule: .../images/... -> .../labels/...
        if parts[i] == "images":
            return Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_yolo(source: Path, images: list[Path], names_file: Path | None = None) -> GroundTruth:
    """YOLO labels: one ``NAME.txt`` per image with ``class cx cy w h`` rows (normalised; more values: a
    polygon, whose bounding box is used). ``source`` is the labels folder, or a data.yaml / classes.txt."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    candidates = [names_file] if names_file else []
    if source.is_file():
        candidates.append(source)
    for base in (folder, folder.parent, folder.parent.parent):
        candidates += [base / "classes.txt", base / "data.yaml", base / "data.yml", base / "obj.names"]
    found = _yolo_names([c for c in candidates if c is not None])
    if found is None:
        raise GroundTruthError(f"{folder}: YOLO labels need their class names: no classes.txt or data.yaml "
                               f"here or above")
    names, names_path = found
    if source.is_dir():
        labels_dir = source
    else:                                        # a data.yaml or classes.txt: labels beside it, else .../labels/...
        labels_dir = folder if any(p.name != "classes.txt" for p in folder.glob("*.txt")) else None
    gt = GroundTruth("yolo", source, by_stem=True)
    gt.findings.append(Finding(INFO, f"class names from {names_path.name} ({len(names)})", str(names_path)))
    for image in images:
        label = _yolo_label_for(image, labels_dir)
        w, h = _oriented_size(image)
        if not label.is_file():
            gt.images[image.stem] = Annotations.empty(w, h, source=f"{label.name} (none: empty)")
            continue
        boxes, cls_names, ids = [], [], []
        for n, raw in enumerate(_text(label, "YOLO label file").splitlines(), 1):
            vals = raw.split()
            if not vals:
                continue
            where = f"{label}: line {n}"
            if len(vals) < 5 or (len(vals) > 5 and len(vals) % 2 == 0):
                raise GroundTruthError(f"{where}: {len(vals)} values; expected 'class cx cy w h' (5) or a polygon "
                                       f"'class x1 y1 x2 y2 ...'")
            try:
                k = int(vals[0])
            except ValueError:
                raise GroundTruthError(f"{where}: class {vals[0]!r} is not a class index") from None
            if not 0 <= k < len(names):
                raise GroundTruthError(f"{where}: class {k}, but {names_path.name} has {len(names)} names "
                                       f"(0 to {len(names) - 1})")
            v = [_number(x, where, "a coordinate") for x in vals[1:]]
            if len(v) == 4:
                cx, cy, bw, bh = v
                box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            else:
                xs, ys = v[0::2], v[1::2]
                box = (min(xs) * w, min(ys) * h, max(xs) * w, max(ys) * h)
            _check_box(*box, where)
            boxes.append(box)
            cls_names.append(names[k])
            ids.append(k + 1)      # without a label map: 1-based, as the OD API numbers classes
        gt.images[image.stem] = Annotations.build(boxes, cls_names, class_ids=ids, width=w, height=h,
                                                  source=label.name)
    return gt


# --- OD API TFRecords ------------------------------------------------------------------------------

def _one(feats: dict, key: str):
    v = feats.get(key)
    return v[0] if v else None


def _image_size(feats: dict) -> tuple[int | None, int | None]:
    w, h = _one(feats, "image/width"), _one(feats, "image/height")
    if w and h:
        return int(w), int(h)
    encoded = _one(feats, "image/encoded")
    if encoded:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(encoded)) as img:
                return img.size
        except Exception:  # noqa: BLE001 - an undecodable image only means the size stays unknown
            return None, None
    return None, None


def read_tfrecord(paths: list[Path], source: Path) -> GroundTruth:
    try:
        return _read_tfrecord(paths, source)
    except tfrecord.TFRecordError as exc:
        raise GroundTruthError(str(exc)) from None


def _read_tfrecord(paths: list[Path], source: Path) -> GroundTruth:
    gt = GroundTruth("tfrecord", source)
    pixel_warned = False
    for path in paths:
        for n, data in enumerate(tfrecord.read_records(path), 1):
            where = f"{path}: record {n}"
            try:
                feats = tfrecord.example_features(data)
            except ValueError as exc:
                raise GroundTruthError(f"{where}: {exc}") from None
            name = _one(feats, "image/filename") or _one(feats, "image/source_id")
            if not name:
                raise GroundTruthError(f"{where}: no image/filename or image/source_id to say which image it is")
            name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            name = name.replace("\\", "/").rsplit("/", 1)[-1]
            w, h = _image_size(feats)
            coords = {k: feats.get(f"image/object/bbox/{k}", []) for k in ("xmin", "ymin", "xmax", "ymax")}
            texts = [t.decode("utf-8", "replace") for t in feats.get("image/object/class/text", [])]
            labels = list(feats.get("image/object/class/label", []))
            count = len(coords["xmin"])
            lengths = {f"bbox/{k}": len(v) for k, v in coords.items()}
            if texts:
                lengths["class/text"] = len(texts)
            if labels:
                lengths["class/label"] = len(labels)
            for key in ("difficult", "is_crowd"):
                if feats.get(f"image/object/{key}"):
                    lengths[key] = len(feats[f"image/object/{key}"])
            if len(set(lengths.values())) > 1:
                said = ", ".join(f"image/object/{k} {v}" for k, v in lengths.items())
                raise GroundTruthError(f"{where} ({name}): the object lists differ in length ({said})")
            if count and not texts and not labels:
                raise GroundTruthError(f"{where} ({name}): {count} boxes but no image/object/class/text or /label")
            box = np.stack([np.asarray(coords[k], np.float64) for k in ("xmin", "ymin", "xmax", "ymax")], axis=1) \
                if count else np.zeros((0, 4))
            if count and float(np.max(box)) > 1.0 + 1e-3:
                if not pixel_warned:
                    gt.findings.append(Finding(WARNING, f"{where}: box coordinates above 1 are read as pixels "
                                                        f"(the OD API writes them normalised to 0..1)", str(path)))
                    pixel_warned = True
            elif count:
                if not w or not h:
                    raise GroundTruthError(f"{where} ({name}): normalised boxes but no image/width and image/height "
                                           f"(nor a decodable image/encoded)")
                box = box * np.array([w, h, w, h], np.float64)
            for i, b in enumerate(box):
                _check_box(*b, f"{where} ({name}), object {i + 1}")
            obj_names = texts if texts else [""] * count
            gt.images[name] = Annotations.build(
                box, obj_names, class_ids=[int(x) for x in labels] if labels else None,
                crowd=feats.get("image/object/is_crowd") or None, difficult=feats.get("image/object/difficult") or None,
                width=w, height=h, source=f"{path.name}: record {n}")
    return gt


# --- finding and reading ---------------------------------------------------------------------------

def _is_tfrecord_name(p: Path) -> bool:
    name = p.name.lower()
    return any(name.endswith(s) or f"{s}-" in name for s in TFRECORD_SUFFIXES)


def _json_kind(path: Path) -> str | None:
    try:
        head = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return None
    try:
        data = json.loads(head)
    except json.JSONDecodeError:
        return "coco" if '"annotations"' in head else ("labelme" if '"shapes"' in head else None)
    if isinstance(data, dict):
        if "shapes" in data:
            return "labelme"
        if "images" in data and "annotations" in data:
            return "coco"
    return None


def _kinds_in(folder: Path) -> dict[str, list[Path]]:
    """What annotation files a folder holds: ``{format: [files]}``."""
    found: dict[str, list[Path]] = {}
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return found
    for p in files:
        suffix = p.suffix.lower()
        kind = None
        if suffix == ".xml":
            kind = "voc"
        elif suffix == ".json":
            kind = _json_kind(p)
        elif suffix == ".csv":
            kind = "csv"
        elif suffix == ".txt" and p.name not in ("classes.txt", "labels.txt", "class_names.txt", "obj.names"):
            kind = "yolo"
        elif _is_tfrecord_name(p):
            kind = "tfrecord"
        if kind:
            found.setdefault(kind, []).append(p)
    if "yolo" in found and not _yolo_names([folder / "classes.txt", folder / "data.yaml", folder.parent / "classes.txt",
                                             folder.parent / "data.yaml", folder.parent.parent / "data.yaml"]):
        del found["yolo"]                        # text files without class names are not YOLO labels
    return found


PRIORITY = ("coco", "voc", "labelme", "yolo", "tfrecord", "csv")


def _format_of_file(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_kind(path)
    if suffix == ".xml":
        return "voc"
    if suffix == ".csv":
        return "csv"
    if suffix in (".yaml", ".yml") or path.name in ("classes.txt", "obj.names"):
        return "yolo"
    if _is_tfrecord_name(path) or tfrecord.looks_like_tfrecord(path):
        return "tfrecord"
    if suffix == ".txt":
        return "yolo"
    return None


def find_ground_truth(gt: str | Path | None, images: list[Path], fmt: str | None = None
                      ) -> tuple[str, Path, list[Finding]]:
    """Which format and which file or folder holds the ground truth: ``(format, path, notes)``.

    ``gt`` may name a file or a folder; without it, the images' own folder is searched, then its
    ``Annotations/`` or ``labels/`` sibling, then the folder above (an ``annotations.json``, a CSV, TFRecords).
    """
    if fmt is not None and fmt not in FORMATS:
        raise GroundTruthError(f"--gt-format {fmt}: not one of {', '.join(FORMATS)}")
    notes: list[Finding] = []
    everything = FORMATS
    if gt is not None:
        gt = Path(gt)
        if not gt.exists():
            raise GroundTruthError(f"{gt}: no such file or folder")
        if gt.is_file():
            kind = fmt or _format_of_file(gt)
            if kind is None:
                raise GroundTruthError(f"{gt}: not an annotation file detscope knows (COCO or labelme JSON, VOC XML, "
                                       f"CSV, TFRecord, YOLO data.yaml); name the format with --gt-format")
            return kind, gt, notes
        if fmt is not None:
            return fmt, gt, notes
        places = [(gt, everything)]
    else:
        places = []
        for f in sorted({p.parent for p in images}):
            places += [(f, everything), (f.parent / "Annotations", ("voc",)), (f.parent / "labels", ("yolo",)),
                       (f.parent, ("coco", "csv", "tfrecord"))]
    seen = set()
    for place, allowed in places:
        if place in seen or not place.is_dir():
            continue
        seen.add(place)
        kinds = {k: v for k, v in _kinds_in(place).items() if k in allowed and (fmt is None or k == fmt)}
        ordered = [k for k in PRIORITY if k in kinds]
        if ordered:
            if len(ordered) > 1:
                notes.append(Finding(INFO, f"{place} also holds {', '.join(ordered[1:])} annotations; read "
                                           f"{ordered[0]} (--gt-format chooses)", str(place)))
            return ordered[0], place, notes
    where = str(gt) if gt is not None else "beside the images"
    raise GroundTruthError(f"{where}: no annotations found (COCO or labelme JSON, VOC XML, CSV, TFRecord, YOLO txt); "
                           f"name them with --gt")


def read_ground_truth(gt: str | Path | None, images: list[Path], *, fmt: str | None = None,
                      label_map: LabelMap | None = None) -> GroundTruth:
    """Find, read and map onto ``label_map`` the ground truth of ``images``."""
    kind, path, notes = find_ground_truth(gt, images, fmt)
    if kind == "coco":
        files = [path] if path.is_file() else [p for p in sorted(path.glob("*.json")) if _json_kind(p) == "coco"]
        if len(files) != 1:
            raise GroundTruthError(f"{path}: {len(files)} COCO annotation files; name one with --gt")
        truth = read_coco(files[0])
    elif kind == "voc":
        truth = read_voc([path] if path.is_file() else sorted(path.glob("*.xml")), path)
    elif kind == "labelme":
        files = [path] if path.is_file() else [p for p in sorted(path.glob("*.json")) if _json_kind(p) == "labelme"]
        truth = read_labelme(files, path)
    elif kind == "csv":
        files = [path] if path.is_file() else sorted(path.glob("*.csv"))
        if len(files) != 1:
            raise GroundTruthError(f"{path}: {len(files)} CSV files; name one with --gt")
        truth = read_csv(files[0])
    elif kind == "tfrecord":
        files = [path] if path.is_file() else [p for p in sorted(path.iterdir()) if p.is_file() and _is_tfrecord_name(p)]
        truth = read_tfrecord(files, path)
    else:
        truth = read_yolo(path, images)
    if not truth.images and kind != "yolo" and not path.is_file():
        raise GroundTruthError(f"{path}: no {kind} annotation files here")
    truth.findings[:0] = notes
    for what, count in truth.skipped.items():
        truth.findings.append(Finding(INFO, f"{count} {what} left out", str(path)))
    map_classes(truth, label_map)
    return truth


def map_classes(truth: GroundTruth, label_map: LabelMap | None) -> None:
    """Label-map ids for every box: by name; a box the file gives only an id keeps it when the map has it."""
    mapper = ClassMapper(label_map)
    unmapped: dict[str, int] = {}
    for key, ann in truth.images.items():
        ids = []
        for name, raw in zip(ann.names, ann.class_ids):
            raw = int(raw)
            if not name:                                   # TFRecords with class/label only
                cid = raw if label_map is None or label_map.get(raw) is not None else UNMAPPED
                label = f"class {raw}"
            else:
                cid = mapper.id_for(name, raw if raw != UNMAPPED else None)
                label = name
            if cid == UNMAPPED:
                unmapped[label] = unmapped.get(label, 0) + 1
            ids.append(cid)
        truth.images[key] = ann.with_ids(np.asarray(ids, np.int64).reshape(len(ann)))
    truth.unmapped = dict(sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0])))
