"""Two models compared, as one self-contained HTML file (no scripts, no external files).

The agreement figures, the score-drift histogram (inline SVG), with ground truth both models' metrics
side by side, and the images the models disagree on most, each drawn once with both models' boxes:
A's solid, B's dashed; green where they agree, orange where they flip the class, red where only one
of them saw something.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

import numpy as np

from .crossmatch import ImageComparison
from .report import CSS, _dashed_rect, _encode_jpeg, _fmt, IMAGE_SIDE
from .svg import bar_chart
from ..detect.detections import Detections

WORST_IMAGES = 12
AGREE, FLIP, ALONE = (40, 170, 70), (230, 140, 30), (220, 40, 50)


def _label(img: np.ndarray, text: str, x: int, y: int, colour, above: bool) -> None:
    import cv2

    scale = max(0.4, min(img.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = int(min(max(0, x), max(0, img.shape[1] - tw - 2)))
    y = int(y - 2 if above else y + th + 4)
    y = min(max(th + 2, y), img.shape[0] - base - 1)
    cv2.rectangle(img, (x, y - th - 2), (x + tw + 2, y + base), colour, -1)
    cv2.putText(img, text, (x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def overlay(path: Path, c: ImageComparison, da: Detections, db: Detections, side: int = IMAGE_SIDE) -> np.ndarray:
    """The image with A's boxes solid (label above) and B's dashed (label below), coloured by agreement."""
    import cv2

    from ..media.images import load_image

    image = load_image(path)
    h, w = image.shape[:2]
    s = min(2.0, side / max(h, w)) if max(h, w) else 1.0
    if abs(s - 1.0) > 1e-3:
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    out = np.array(image)          # a copy: a decoded image may be read-only
    scale_a = np.array([out.shape[1] / max(1, da.width), out.shape[0] / max(1, da.height)] * 2)
    scale_b = np.array([out.shape[1] / max(1, db.width), out.shape[0] / max(1, db.height)] * 2)
    thick = max(1, round(min(out.shape[:2]) / 300))
    a_rows = ([(i, AGREE) for i, *_ in c.pairs] + [(i, FLIP) for i, *_ in c.class_flips]
              + [(i, ALONE) for i in c.only_a])
    b_rows = ([(j, AGREE) for _, j, *_ in c.pairs] + [(j, FLIP) for _, j, *_ in c.class_flips]
              + [(j, ALONE) for j in c.only_b])
    for j, colour in b_rows:
        box = db.boxes[j] * scale_b
        _dashed_rect(out, box, colour, thick)
        if colour != AGREE:
            _label(out, f"B {db.labels[j]} {db.scores[j]:.2f}", int(box[0]), int(box[3]), colour, above=False)
    for i, colour in a_rows:
        x0, y0, x1, y1 = (int(round(v)) for v in da.boxes[i] * scale_a)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick + 1, cv2.LINE_AA)
        if colour != AGREE:
            _label(out, f"A {da.labels[i]} {da.scores[i]:.2f}", x0, y0, colour, above=True)
    return out


def _cards(s) -> str:
    cards = [("agreement", f"{s.agreement:.1%}"), ("boxes matched", s.pairs), ("class flips", s.class_flips),
             ("only in A", s.only_a), ("only in B", s.only_b), ("mean |score drift|", _fmt(s.drift_mean_abs)),
             ("largest |score drift|", _fmt(s.drift_max_abs))]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b><span>{escape(k)}</span></div>'
                                           for k, v in cards) + "</div>"


def _drift(s) -> str:
    counts = list(s.drift_counts)
    nonzero = [k for k, n in enumerate(counts) if n]
    if not nonzero:
        return "<p>No boxes matched: no score drift to show.</p>"
    lo, hi = max(0, nonzero[0] - 1), min(len(counts), nonzero[-1] + 2)
    rows = [(f"{s.drift_edges[k]:+.2f} … {s.drift_edges[k + 1]:+.2f}", counts[k], "#4a78b5") for k in range(lo, hi)]
    return (bar_chart(rows, title="Score of B minus score of A, matched boxes", width=520)
            + f"<p class=note>Mean drift {_fmt(s.drift_mean)} (positive: B scores higher).</p>")


def _metrics(j: dict) -> str:
    ja, jb = j["a"], j["b"]
    ca, cb = ja.get("coco") or {}, jb.get("coco") or {}
    rows = [("mAP@[.5:.95]", ca.get("mAP"), cb.get("mAP")), ("mAP@0.5", ca.get("AP50"), cb.get("AP50")),
            ("mAP@0.75", ca.get("AP75"), cb.get("AP75")), ("AR@100", ca.get("AR100"), cb.get("AR100")),
            ("VOC mAP@0.5", ja["voc"]["mAP50"], jb["voc"]["mAP50"])]
    rows += [(name, ja["at_threshold"][k], jb["at_threshold"][k])
             for name, k in (("precision", "precision"), ("recall", "recall"), ("F1", "f1"))]
    body = "".join(f"<tr><td class=l>{escape(k)}</td><td>{_fmt(x)}</td><td>{_fmt(y)}</td></tr>" for k, x, y in rows)
    body += "".join(f"<tr><td class=l>{k.upper()}</td><td>{ja['at_threshold'][k]}</td>"
                    f"<td>{jb['at_threshold'][k]}</td></tr>" for k in ("tp", "fp", "fn"))
    lists = []
    for title, rows_, key in (("A right, B wrong: objects A found and B missed", j["a_right_b_wrong"],
                               "found_by_a_only"),
                              ("B right, A wrong: objects B found and A missed", j["b_right_a_wrong"],
                               "found_by_b_only")):
        items = "".join(f"<li>{escape(Path(r['path']).name)}: {r[key]} of {r['objects']}</li>" for r in rows_)
        lists.append(f"<h3>{escape(title)}</h3>" + (f"<ul>{items}</ul>" if items else "<p class=note>None.</p>"))
    return (f"<p class=note>{escape(str(j['format']))} ground truth from {escape(str(j['path']))}, "
            f"{ja['objects']} objects.</p><table><tr><th class=l></th><th>A</th><th>B</th></tr>{body}</table>"
            + "".join(lists))


def _worst(result, n: int) -> str:
    figs = []
    for key in result.summary.worst[:n]:
        c = result.per_image[key]
        if not c.disagreements:
            break
        i = result.index_of(key)
        da, db = result.detections_a[i], result.detections_b[i]
        try:
            img = f'<img src="{_encode_jpeg(overlay(Path(key), c, da, db))}" alt="{escape(Path(key).name)}" ' \
                  f'style="max-width:100%">'
        except Exception as exc:  # noqa: BLE001 - an unreadable image keeps its caption
            img = f"<p class=warn>{escape(str(exc))}</p>"
        items = [f"<li><b>class flip</b>: A {escape(da.labels[x])} {da.scores[x]:.2f}, B {escape(db.labels[y])} "
                 f"{db.scores[y]:.2f} (IoU {v:.2f})</li>" for x, y, v, *_ in c.class_flips]
        items += [f"<li><b>only in A</b>: {escape(da.labels[x])} {da.scores[x]:.2f}</li>" for x in c.only_a]
        items += [f"<li><b>only in B</b>: {escape(db.labels[y])} {db.scores[y]:.2f}</li>" for y in c.only_b]
        figs.append(f"<figure>{img}<figcaption><b>{escape(Path(key).name)}</b> — agreement {c.agreement:.0%}, "
                    f"{len(c.pairs)} matched<ul>{''.join(items)}</ul></figcaption></figure>")
    if not figs:
        return "<p>The two models agree on every image.</p>"
    return ("<p class=note>Solid boxes: A (label above); dashed boxes: B (label below). Green: both found it, same "
            "class; orange: a class flip; red: only one model found it.</p><div class=\"images\">"
            + "".join(figs) + "</div>")


def _name(m: dict) -> str:
    return escape(m["model"]) + (f" ({escape(m['checkpoint'])})" if m.get("checkpoint") else "")


def render_compare_report(result, worst: int = WORST_IMAGES) -> str:
    """The report of a :class:`~detscope.core.app.compare.Comparison`."""
    j = result.as_json()
    s = result.summary
    title = f"detscope compare: {Path(j['a']['model']).name} and {Path(j['b']['model']).name}"
    meta = [f"A <b>{_name(j['a'])}</b>", f"B <b>{_name(j['b'])}</b>",
            f"{s.images} images; score threshold {result.threshold_a:.2f}, IoU {result.iou:.2f}; "
            f"written {time.strftime('%Y-%m-%d %H:%M')}"]
    notes = "".join(f"<p class=warn>{escape(n)}</p>" for n in result.notes)
    body = [f"<h1>{escape(title)}</h1>", "<div class=meta>" + "<br>".join(meta) + "</div>", notes, _cards(s),
            "<h2>Score drift</h2>", _drift(s)]
    if j["ground_truth"] is not None:
        body += ["<h2>Against the ground truth</h2>", _metrics(j["ground_truth"])]
    body += ["<h2>Most disagreeing images</h2>", _worst(result, worst)]
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def write_compare_report(result, path: Path, worst: int = WORST_IMAGES) -> Path:
    path = Path(path)
    html = render_compare_report(result, worst)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
