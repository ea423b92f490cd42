"""The evaluation as one self-contained HTML file a user can mail: no scripts, no external files.

Charts are inline SVG (:mod:`.svg`); the worst images are JPEG data URIs with the predictions drawn by
:func:`~detscope.core.detect.render.draw_detections` (class colours, label and score; a red outer frame
marks a false positive) and the ground truth as dashed boxes (white: found, red: missed).
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import replace
from html import escape
from pathlib import Path

import numpy as np

from .evaluator import Evaluator
from .matching import ERROR_NAMES, MISSED
from .results import evaluation_json
from .svg import Series, bar_chart, line_chart, rgb
from ..detect.colours import class_colour
from ..detect.render import draw_detections

WORST_IMAGES = 12
IMAGE_SIDE = 480               # the longer side of the pictures in the report (small images are enlarged)
ERROR_COLOURS = {"classification": "#d9822b", "localisation": "#c9b12c", "both": "#b0703c",
                 "duplicate": "#8c6bb1", "background": "#d6404e", MISSED: "#555"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:92px;background:#fafafa}
.card b{display:block;font-size:20px}.card span{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.images{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px;max-width:500px}
figcaption{font-size:12px;color:#333;margin-top:6px}figcaption ul{margin:4px 0;padding-left:18px}
.note{font-size:12px;color:#555}.warn{color:#a33}
"""


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _class_css(cid: int) -> str:
    return rgb(class_colour(int(cid)))


def _encode_jpeg(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _dashed_rect(img: np.ndarray, box, colour, thick: int, dash: int = 7) -> None:
    """Alternating ``colour`` and black dashes: visible on any background, unlike any prediction's box."""
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    w = thick + 1
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), w, cv2.LINE_AA)
    for (ax, ay, bx, by) in ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)):
        length = max(abs(bx - ax), abs(by - ay))
        steps = max(1, length // dash)
        for k in range(0, steps, 2):
            t0, t1 = k / steps, min(1.0, (k + 1) / steps)
            p = (int(ax + (bx - ax) * t0), int(ay + (by - ay) * t0))
            q = (int(ax + (bx - ax) * t1), int(ay + (by - ay) * t1))
            cv2.line(img, p, q, colour, w, cv2.LINE_AA)


def overlay(ev: Evaluator, index: int, threshold: float, iou: float, side: int = IMAGE_SIDE) -> np.ndarray:
    """The image with its predictions above ``threshold`` and its ground truth drawn on it."""
    import cv2

    from ..media.images import load_image

    item = ev.items[index]
    image = load_image(item.path)
    h, w = image.shape[:2]
    s = min(2.0, side / max(h, w)) if max(h, w) else 1.0
    if abs(s - 1.0) > 1e-3:
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    sx, sy = image.shape[1] / max(1, item.detections.width), image.shape[0] / max(1, item.detections.height)
    dets = item.detections.above(threshold)
    scaled = replace(dets, boxes=(dets.boxes * np.array([sx, sy, sx, sy], np.float32)).astype(np.float32),
                     width=image.shape[1], height=image.shape[0])
    errors = ev.image_errors(index, threshold, iou)
    out = draw_detections(image, scaled)
    thick = max(1, round(min(out.shape[:2]) / 300))
    fp_rows = {e.detection for e in errors.fp} if errors else set()
    order = np.argsort(-np.asarray(item.detections.scores), kind="stable")
    above_rows = [int(r) for r in order if item.detections.scores[r] >= threshold]
    for box, row in zip(scaled.boxes, above_rows):
        if row in fp_rows:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            cv2.rectangle(out, (x0 - thick - 2, y0 - thick - 2), (x1 + thick + 2, y1 + thick + 2), (220, 30, 40),
                          thick, cv2.LINE_AA)
    if item.truth is not None and errors is not None:
        for box, status in zip(item.truth.boxes, errors.truth_status):
            colour = (235, 40, 40) if status == "fn" else ((255, 255, 255) if status == "tp" else (160, 160, 160))
            _dashed_rect(out, box * np.array([sx, sy, sx, sy]), colour, thick)
    return out


def _summary_cards(j: dict) -> str:
    coco, a = j.get("coco") or {}, j["at_threshold"]
    cards = [("mAP@[.5:.95]", coco.get("mAP")), ("mAP@0.5", coco.get("AP50")), ("mAP@0.75", coco.get("AP75")),
             ("AR@100", coco.get("AR100")), ("VOC mAP@0.5", j["voc"]["mAP50"]),
             ("precision", a["precision"]), ("recall", a["recall"]), ("F1", a["f1"])]
    cells = "".join(f'<div class="card"><b>{_fmt(v)}</b><span>{escape(k)}</span></div>' for k, v in cards)
    counts = "".join(f'<div class="card"><b>{a[k]}</b><span>{k.upper()}</span></div>' for k in ("tp", "fp", "fn"))
    return f'<div class="cards">{cells}{counts}</div>'


def _class_table(j: dict, ev: Evaluator) -> str:
    head = ("<tr><th class=l>class</th><th>objects</th><th>TP</th><th>FP</th><th>FN</th><th>precision</th>"
            "<th>recall</th><th>F1</th><th>AP</th><th>AP50</th><th>AP75</th><th>VOC AP50</th>"
            "<th>best F1</th><th>at threshold</th></tr>")
    rows = []
    for c in j["classes"]:
        rows.append(
            f'<tr><td class=l><span class="swatch" style="background:{_class_css(c["class_id"])}"></span>'
            f'{escape(c["label"])} <span class=note>({c["class_id"]})</span></td><td>{c["objects"]}</td>'
            f'<td>{c["tp"]}</td><td>{c["fp"]}</td><td>{c["fn"]}</td><td>{_fmt(c["precision"])}</td>'
            f'<td>{_fmt(c["recall"])}</td><td>{_fmt(c["f1"])}</td><td>{_fmt(c["AP"])}</td><td>{_fmt(c["AP50"])}</td>'
            f'<td>{_fmt(c["AP75"])}</td><td>{_fmt(c["voc_AP50"])}</td><td>{_fmt(c["best_f1"])}</td>'
            f'<td>{_fmt(c["best_f1_threshold"], 2)}</td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


REVIEW_KINDS = (("correct", "correct"), ("wrong_class", "wrong class"), ("bad_box", "bad box"),
                ("duplicate", "duplicate"), ("false_positive", "false positive"), ("missed", "missed"))


def _review_section(r: dict) -> str:
    """What people judged (a review summary): progress, per-class precision as judged, corrections by kind."""
    m, p = r.get("model", {}), r.get("progress", {})
    who = ", ".join(f"{escape(str(a))} ({n})" for a, n in sorted((r.get("annotators") or {}).items()))
    meta = (f"<p class=meta>review <b>{escape(Path(str(r.get('review', ''))).name)}</b> of "
            f"{escape(str(m.get('name') or str(m.get('fingerprint', ''))[:12]))} {escape(str(m.get('checkpoint', '')))}"
            f" at threshold {_fmt(r.get('threshold'), 2)}; {escape(str(p.get('line', '')))}"
            + (f"; verdicts by {who}" if who else "") + "</p>")
    head = ("<tr><th class=l>class</th><th>judged</th>" + "".join(f"<th>{t}</th>" for _, t in REVIEW_KINDS)
            + "<th>relabelled to</th><th>precision as judged</th><th>with bad boxes</th><th>recall as judged</th></tr>")
    rows = [f'<tr><td class=l><span class="swatch" style="background:{_class_css(c["class_id"])}"></span>'
            f'{escape(str(c["class"]))} <span class=note>({c["class_id"]})</span></td><td>{c["judged"]}</td>'
            + "".join(f"<td>{c.get(k, 0)}</td>" for k, _ in REVIEW_KINDS)
            + f'<td>{c.get("relabelled_to", 0)}</td><td>{_fmt(c.get("precision"))}</td>'
              f'<td>{_fmt(c.get("precision_loose"))}</td><td>{_fmt(c.get("recall"))}</td></tr>'
            for c in r.get("classes", [])]
    corr = r.get("corrections") or {}
    cards = "".join(f'<div class="card"><b>{corr.get(k, 0)}</b><span>{t}</span></div>'
                    for k, t in REVIEW_KINDS if k != "correct")
    comments = "".join(f"<li><b>{escape(str(c['image']))}</b> ({escape(str(c['state']))}): {escape(str(c['comment']))}</li>"
                       for c in r.get("comments", []))
    return ("<h2>Review by people</h2>" + meta + f'<div class="cards">{cards}</div>'
            + f"<table>{head}{''.join(rows)}</table>"
            + (f"<p class=note>Comments:</p><ul class=note>{comments}</ul>" if comments else ""))


def _confusion_table(j: dict) -> str:
    labels, mat = j["confusion"]["labels"], np.asarray(j["confusion"]["matrix"])
    head = "<tr><th class=l>true \\ predicted</th>" + "".join(f"<th>{escape(s)}</th>" for s in labels) + "</tr>"
    rows = []
    for i, name in enumerate(labels):
        total = max(1, int(mat[i].sum()))
        cells = []
        for k, v in enumerate(mat[i]):
            share = v / total
            hue = "40,140,60" if i == k else "214,64,78"
            style = f' style="background:rgba({hue},{0.08 + 0.75 * share:.2f})"' if v else ""
            cells.append(f"<td{style}>{v}</td>")
        rows.append(f"<tr><th class=l>{escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _curves(ev: Evaluator, threshold: float, iou: float) -> str:
    curves = ev.curves(iou)
    pr, f1 = [], []
    for cid, cv in curves.items():
        if cid is None:
            name, colour, dashed = "all classes", "#333333", True
        else:
            name, colour, dashed = ev.label(cid), _class_css(cid), False
        if not len(cv.scores):
            continue
        d = cv.sampled(300)
        at = np.nonzero(cv.scores >= threshold)[0]
        marks_pr = []
        if len(at):
            i = int(at[-1])
            marks_pr.append((float(cv.recall[i]), float(cv.precision[i]),
                             f"{name} at threshold {threshold:.2f}: precision {cv.precision[i]:.3f}, "
                             f"recall {cv.recall[i]:.3f}"))
        pr.append(Series(name, d["recall"], d["precision"], colour, dashed, marks_pr))
        marks_f1 = []
        if cv.best:
            marks_f1.append((cv.best["threshold"], cv.best["f1"],
                             f"{name}: best F1 {cv.best['f1']:.3f} at threshold {cv.best['threshold']:.2f}"))
        f1.append(Series(name, d["score"], d["f1"], colour, dashed, marks_f1))
    return ('<div class="charts">'
            + line_chart(pr, x_label="recall", y_label="precision", title=f"Precision–recall (IoU {iou:.2f})")
            + line_chart(f1, x_label="score threshold", y_label="F1", title="F1 against the score threshold",
                         vline=(threshold, f"threshold {threshold:.2f}"))
            + "</div><p class=note>Dots on the precision–recall curves: the current threshold; dots on the F1 "
              "curves: each class's best-F1 threshold.</p>")


def _errors(j: dict) -> str:
    e = j["errors"]
    rows = [(k, e[k], ERROR_COLOURS[k]) for k in ERROR_NAMES + (MISSED,)]
    return bar_chart(rows, title="Errors at the threshold (TIDE types)")


def _worst(ev: Evaluator, threshold: float, iou: float, n: int) -> str:
    figs = []
    for index in ev.worst_images(threshold, iou)[:n]:
        e = ev.image_errors(index, threshold, iou)
        if not e.fp and not e.fn:
            break
        try:
            uri = _encode_jpeg(overlay(ev, index, threshold, iou))
        except Exception as exc:  # noqa: BLE001 - an unreadable image keeps its caption
            uri = None
            failure = str(exc)
        items = [f"<li><b>{escape(x.kind)}</b>: {escape(x.label)} {x.score:.2f}"
                 + (f" (on a {escape(x.other)}, IoU {x.iou:.2f})" if x.other and x.iou is not None else "") + "</li>"
                 for x in e.fp]
        items += [f"<li><b>{escape(x.kind)}</b>: {escape(x.label)} — {escape(x.reason or '')}</li>" for x in e.fn]
        img = (f'<img src="{uri}" alt="{escape(ev.items[index].path.name)}" style="max-width:100%">' if uri
               else f'<p class=warn>{escape(failure)}</p>')
        figs.append(f"<figure>{img}<figcaption><b>{escape(ev.items[index].path.name)}</b> — TP {e.tp}, "
                    f"FP {len(e.fp)}, FN {len(e.fn)}<ul>{''.join(items)}</ul></figcaption></figure>")
    if not figs:
        return "<p>No errors at this threshold.</p>"
    return ('<p class=note>Solid boxes: predictions above the threshold (class colour, label, score); a red outer '
            'frame marks a false positive. Dashed boxes: the ground truth, white when found, red when missed, '
            'grey when ignored (crowd or difficult).</p><div class="images">' + "".join(figs) + "</div>")


def render_report(ev: Evaluator, *, threshold: float, iou: float = 0.5, about: dict | None = None,
                  worst: int = WORST_IMAGES, review: dict | None = None) -> str:
    j = evaluation_json(ev, threshold, iou, about, images="none")
    gt = j.get("ground_truth") or {}
    im = j["images"]
    title = f"detscope evaluation: {Path(str(j.get('model', 'model'))).name}"
    meta = [f"model <b>{escape(str(j.get('model', '')))}</b>"
            + (f" ({escape(j['checkpoint'])})" if j.get("checkpoint") else ""),
            f"ground truth: {escape(str(gt.get('format', '')))} from {escape(str(gt.get('path', '')))}",
            f"{im['total']} images, {im['annotated']} annotated ({im['empty']} empty), {im['unannotated']} unannotated; "
            f"{j['objects']} objects ({j['ignored_objects']} ignored); {j['detections']['total']} detections, "
            f"{j['detections']['above_threshold']} above the threshold",
            f"score threshold {threshold:.2f}, IoU {iou:.2f}; written {time.strftime('%Y-%m-%d %H:%M')}"]
    warnings = "".join(f'<p class={"note" if f.get("severity") == "info" else "warn"}>{escape(f["message"])}</p>'
                       for f in j.get("findings", []))
    best = j.get("best_f1") or {}
    best_line = (f"<p>Best F1 over all classes: <b>{_fmt(best.get('f1'))}</b> at threshold "
                 f"<b>{_fmt(best.get('threshold'), 2)}</b> (precision {_fmt(best.get('precision'))}, recall "
                 f"{_fmt(best.get('recall'))}).</p>" if best else "")
    body = [f"<h1>{escape(title)}</h1>", "<div class=meta>" + "<br>".join(meta) + "</div>", warnings,
            _summary_cards(j), best_line,
            "<h2>Per class</h2>", _class_table(j, ev),
            "<h2>Curves</h2>", _curves(ev, threshold, iou),
            "<h2>Confusion matrix</h2><p class=note>Rows: the true class (background: predictions on no object); "
            "columns: the predicted class (background: objects nothing found).</p>", _confusion_table(j),
            "<h2>Errors</h2>", _errors(j),
            "<h2>Worst images</h2>", _worst(ev, threshold, iou, worst)]
    if review is not None:
        body.insert(body.index("<h2>Curves</h2>"), _review_section(review))
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def write_report(ev: Evaluator, path: Path, *, threshold: float, iou: float = 0.5, about: dict | None = None,
                 worst: int = WORST_IMAGES, review: dict | None = None) -> Path:
    """``review``: an annotators' review summary (``detscope review summary --json``'s object), given as
    plain data by the caller (a review is a layer above the evaluation), shown as its own section."""
    path = Path(path)
    html = render_report(ev, threshold=threshold, iou=iou, about=about, worst=worst, review=review)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path

