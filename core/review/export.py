"""The corrected boxes as new ground truth (COCO JSON, Pascal VOC XML, the OD API tutorials' CSV) and the
review's summary.

Only images marked *done* are exported by default (``states``): an image marked for relabelling is not
ground truth yet, a skipped one was not looked at. On a done image, a detection nobody judged is taken as
correct (the annotator accepted the pre-label). VOC and CSV coordinates are whole pixels (the tutorials'
``xml_to_csv.py`` and ``generate_tfrecord.py`` read them with ``int()``); COCO keeps two decimals.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

from .store import CORRECTIONS, DETECTION_VERDICTS, IMAGE_STATES, MISSED, ReviewError, ReviewStore

FORMATS = ("coco", "voc", "csv")
CSV_HEADER = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def _clip(box, width, height, digits):
    x0, y0, x1, y1 = box
    x0, x1 = (min(max(v, 0.0), float(width)) for v in (x0, x1))
    y0, y1 = (min(max(v, 0.0), float(height)) for v in (y0, y1))
    if digits == 0:
        return tuple(int(round(v)) for v in (x0, y0, x1, y1))
    return tuple(round(v, digits) for v in (x0, y0, x1, y1))


def corrected_truth(store: ReviewStore, states=("done",), digits: int = 2) -> list[dict]:
    """``[{"key", "name", "width", "height", "objects": [{"box", "class_id", "class"}]}]`` in review order,
    boxes clipped to the image and rounded to ``digits`` (0: whole pixels)."""
    bad = [s for s in states if s not in IMAGE_STATES]
    if bad:
        raise ReviewError(f"'{bad[0]}' is not an image state ({', '.join(IMAGE_STATES)})")
    out = []
    for im in store.images():
        if store.state(im.key) not in states:
            continue
        objs = []
        for box, cid in store.corrected(im.key):
            objs.append({"box": _clip(box, im.width, im.height, digits), "class_id": int(cid),
                         "class": store.class_name(cid)})
        out.append({"key": im.key, "name": im.name, "width": im.width, "height": im.height, "objects": objs})
    return out


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _categories(store: ReviewStore, truth: list[dict]) -> list[dict]:
    ids = set(store.labels) | {o["class_id"] for im in truth for o in im["objects"]}
    return [{"id": i, "name": store.class_name(i), "supercategory": "none"} for i in sorted(ids)]


def write_coco(store: ReviewStore, out: str | Path, states=("done",)) -> dict:
    truth = corrected_truth(store, states, digits=2)
    images, anns = [], []
    for n, im in enumerate(truth, 1):
        images.append({"id": n, "file_name": im["name"], "width": im["width"], "height": im["height"]})
        for o in im["objects"]:
            x0, y0, x1, y1 = o["box"]
            w, h = round(x1 - x0, 2), round(y1 - y0, 2)
            anns.append({"id": len(anns) + 1, "image_id": n, "category_id": o["class_id"], "bbox": [x0, y0, w, h],
                         "area": round(w * h, 2), "iscrowd": 0})
    data = {"info": {"description": f"detscope review {Path(store.path).name}", "model": store.model.name,
                     "checkpoint": store.model.checkpoint},
            "images": images, "annotations": anns, "categories": _categories(store, truth)}
    _atomic_write(Path(out), json.dumps(data, indent=1))
    return {"images": len(images), "objects": len(anns), "files": [str(out)]}


def voc_xml(im: dict) -> str:
    root = ET.Element("annotation")
    name = PurePosixPath(im["name"]).name
    ET.SubElement(root, "folder").text = str(PurePosixPath(im["name"]).parent)
    ET.SubElement(root, "filename").text = name
    size = ET.SubElement(root, "size")
    for tag, v in (("width", im["width"]), ("height", im["height"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(v)
    ET.SubElement(root, "segmented").text = "0"
    for o in im["objects"]:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = o["class"]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), o["box"]):
            ET.SubElement(bb, tag).text = str(v)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_voc(store: ReviewStore, out: str | Path, states=("done",)) -> dict:
    """One ``<image stem>.xml`` per image in the folder ``out``."""
    truth = corrected_truth(store, states, digits=0)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReviewError(f"{out}: VOC annotations are one file per image: --out must be a folder")
    stems: dict[str, str] = {}
    for im in truth:
        stem = PurePosixPath(im["name"]).stem
        if stem in stems:
            raise ReviewError(f"{im['name']} and {stems[stem]} would both be {stem}.xml: rename one image")
        stems[stem] = im["name"]
    files = []
    for im in truth:
        path = out / f"{PurePosixPath(im['name']).stem}.xml"
        _atomic_write(path, voc_xml(im))
        files.append(str(path))
    return {"images": len(truth), "objects": sum(len(im["objects"]) for im in truth), "files": files}


def write_csv(store: ReviewStore, out: str | Path, states=("done",)) -> dict:
    """The tutorials' CSV: one row per box. An image with no box has no row (a CSV cannot state one)."""
    import io

    truth = corrected_truth(store, states, digits=0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    rows = 0
    for im in truth:
        for o in im["objects"]:
            w.writerow((im["name"], im["width"], im["height"], o["class"], *o["box"]))
            rows += 1
    _atomic_write(Path(out), buf.getvalue())
    empty = sum(1 for im in truth if not im["objects"])
    return {"images": len(truth), "objects": rows, "files": [str(out)], "images_without_rows": empty}


WRITERS = {"coco": write_coco, "voc": write_voc, "csv": write_csv}


def export(store: ReviewStore, fmt: str, out: str | Path, states=("done",)) -> dict:
    if fmt not in WRITERS:
        raise ReviewError(f"'{fmt}' is not an export format ({', '.join(FORMATS)})")
    return WRITERS[fmt](store, out, states)


def summary(store: ReviewStore) -> dict:
    """Per class: the detections people judged, how many were right (precision as judged by people) and the
    corrections by kind; a wrong class counts against the class the model said, a missed object for its
    own class. ``precision`` is correct / judged; ``precision_loose`` also counts bad boxes as found."""
    per: dict[int, dict] = {}

    def row(cid):
        return per.setdefault(int(cid), {"class_id": int(cid), "class": store.class_name(cid), "judged": 0,
                                         **{k: 0 for k in DETECTION_VERDICTS}, MISSED: 0, "relabelled_to": 0})

    current = store.all_current()
    annotators: dict[str, int] = {}
    for v in store.history():
        annotators[v.annotator] = annotators.get(v.annotator, 0) + 1
    for im in store.images():
        cur = current.get(im.key, {})
        for d in im.detections:
            v = cur.get(f"d{d.index}")
            if v is None:
                continue
            r = row(d.class_id)
            r["judged"] += 1
            r[v.kind] += 1
            if v.kind == "wrong_class":
                row(v.class_id)["relabelled_to"] += 1
        for t, v in cur.items():
            if t.startswith("m"):
                row(v.class_id)[MISSED] += 1
    classes = []
    for cid in sorted(per):
        r = per[cid]
        j = r["judged"]
        r["precision"] = round(r["correct"] / j, 4) if j else None
        r["precision_loose"] = round((r["correct"] + r["bad_box"]) / j, 4) if j else None
        found = r["correct"] + r["bad_box"] + r["relabelled_to"]
        r["recall"] = round(found / (found + r[MISSED]), 4) if found + r[MISSED] else None
        classes.append(r)
    p = store.progress()
    return {"review": str(store.path), "model": {"fingerprint": store.model.fingerprint, "name": store.model.name,
                                                 "checkpoint": store.model.checkpoint},
            "threshold": store.threshold, "created": store.created,
            "progress": {"images": p.images, "reviewed": p.reviewed, "done": p.done, "relabel": p.relabel,
                         "skipped": p.skipped, "corrections": p.corrections, "verdicts": p.verdicts,
                         "line": p.line()},
            "corrections": {k: p.by_kind.get(k, 0) for k in CORRECTIONS},
            "annotators": annotators, "classes": classes,
            "comments": [{"image": store.image(k).name, "state": v["image"].kind, "comment": v["image"].comment}
                         for k, v in current.items() if "image" in v and v["image"].comment]}
