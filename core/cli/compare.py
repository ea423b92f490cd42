"""``detscope compare A B IMAGES``: two models on the same images (the flow is core.app.compare's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..base import errors
from .options import add_model_options, model_host

WORST_SHOWN = 10


def add_parser(sub) -> None:
    cp = sub.add_parser("compare", help="run two models on the same images: boxes matched across them, score drift, "
                                        "disagreements, and with ground truth both models' metrics")
    cp.add_argument("a", metavar="A", help="a model detscope can run: a SavedModel, OD API export, checkpoint folder "
                                           "or ckpt-N prefix (with a SavedModel beside it or --template), Keras "
                                           "or .tflite file")
    cp.add_argument("b", metavar="B", help="the model to compare it with (any kind, as A)")
    cp.add_argument("images", nargs="+", help="image files or folders")
    cp.add_argument("--gt", metavar="ANNOTATIONS", help="ground truth (any format eval reads): both models' metrics "
                                                        "side by side, and the objects one found and the other missed")
    cp.add_argument("--gt-format", choices=["coco", "voc", "tfrecord", "csv", "yolo", "labelme"],
                    help="the ground truth's format, when it cannot be told from the files")
    cp.add_argument("--iou", type=float, default=0.5, help="IoU two boxes need to be the same object (default 0.5)")
    cp.add_argument("--threshold", type=float, default=0.5, help="score threshold of both models (default 0.5)")
    cp.add_argument("--json", action="store_true", help="print one JSON object (schema in the README)")
    cp.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    cp.add_argument("--checkpoint-a", metavar="ckpt-N", help="restore this checkpoint of A's folder")
    cp.add_argument("--checkpoint-b", metavar="ckpt-N", help="restore this checkpoint of B's folder")
    add_model_options(cp, checkpoint=False, factory=False,
                      labels="a label map for both (label_map.pbtxt, COCO json, labels.txt)")
    cp.add_argument("--no-cache", action="store_true", help="run both models on every image (the cache is still "
                                                            "written)")
    cp.set_defaults(func=cmd_compare)


def _options(args, checkpoint: str | None) -> dict:
    options = dict(checkpoint=checkpoint, labels=args.labels, signature=args.signature, template=args.template,
                   scale=args.scale, safe_mode=not args.unsafe_keras,
                   tags=[t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None)
    if args.trust_model:
        options["trust_model"] = True
    return options


def cmd_compare(args) -> int:
    from ..app.compare import ModelRequest, compare
    from ..media.images import list_images
    from .evaluate import _ProgressLine

    if not 0 < args.iou <= 1:
        raise errors.UserError(f"--iou {args.iou}: must be above 0 and at most 1")
    images = list_images(args.images)
    if not images:
        raise errors.UserError(f"no images in {' '.join(args.images)}")
    progress = _ProgressLine()
    host = model_host()
    try:
        result = compare(ModelRequest(args.a, _options(args, args.checkpoint_a)),
                         ModelRequest(args.b, _options(args, args.checkpoint_b)), images,
                         gt=args.gt, gt_format=args.gt_format, iou=args.iou, threshold_a=args.threshold,
                         threshold_b=args.threshold, use_cache=not args.no_cache,
                         on_progress=lambda side, p: progress(p), on_status=progress.status, host=host)
    finally:
        progress.close()
        host.shutdown()
    for side, summary in (("A", result.a), ("B", result.b)):
        for f in summary.findings:
            if f.severity not in ("info",):
                sys.stderr.write(f"{side}: {f.line()}\n")
    if result.evaluation_a is not None:
        for f in result.evaluation_a.findings:
            if f.severity != "info" or f.message.endswith("left out of the metrics"):
                sys.stderr.write(f"{f.line()}\n")
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    if args.report:
        from ..eval.compare_report import write_compare_report

        out = write_compare_report(result, Path(args.report))
        sys.stderr.write(f"report written to {out}\n")
    if args.json:
        sys.stdout.write(json.dumps(result.as_json()) + "\n")      # one write; no indent: C encoder
    else:
        _print(result)
    return 0


def _name(summary) -> str:
    ckpt = f" ({summary.checkpoint_name})" if summary.checkpoint_name else ""
    return f"{summary.path}{ckpt}"


def _f(v, digits: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.3f}"


def _print(result) -> None:
    out = sys.stdout
    s = result.summary
    out.write(f"A: {_name(result.a)}\nB: {_name(result.b)}\n")
    out.write(f"{s.images} images, threshold {result.threshold_a:.2f}, IoU {result.iou:.2f}\n")
    out.write(f"agreement {s.agreement:.1%}: {s.pairs} boxes matched, {s.class_flips} class flips, "
              f"{s.only_a} only in A, {s.only_b} only in B\n")
    if s.pairs:
        out.write(f"score drift (B - A) of matched boxes: mean {_signed(s.drift_mean)}, mean |drift| "
                  f"{_f(s.drift_mean_abs)}, largest |drift| {_f(s.drift_max_abs)}\n")
        nonzero = [(lo, hi, n) for lo, hi, n in zip(s.drift_edges, s.drift_edges[1:], s.drift_counts) if n]
        out.write("  " + "   ".join(f"[{lo:+.2f}, {hi:+.2f}) {n}" for lo, hi, n in nonzero) + "\n")
    rows = []
    for key in s.worst[:WORST_SHOWN]:
        c = result.per_image[key]
        if not c.disagreements:
            break
        i = result.index_of(key)
        da, db = result.detections_a[i], result.detections_b[i]
        bits = [f"flip {da.labels[x]} {da.scores[x]:.2f} -> {db.labels[y]} {db.scores[y]:.2f}"
                for x, y, *_ in c.class_flips]
        bits += [f"only A: {da.labels[x]} {da.scores[x]:.2f}" for x in c.only_a]
        bits += [f"only B: {db.labels[y]} {db.scores[y]:.2f}" for y in c.only_b]
        rows.append(f"  {Path(key).name}  agreement {c.agreement:.0%}: {'; '.join(bits)}\n")
    if rows:
        out.write("\nMost disagreeing images:\n" + "".join(rows))
    if result.evaluation_a is None:
        return
    j = result.as_json()["ground_truth"]
    ja, jb = j["a"], j["b"]
    ca, cb = ja["coco"] or {}, jb["coco"] or {}
    out.write(f"\nAgainst the ground truth ({j['format']} from {j['path']}; {ja['objects']} objects):\n")
    out.write(f"{'':<14}{'A':>9}{'B':>9}\n")
    for label, x, y in (("mAP@[.5:.95]", ca.get("mAP"), cb.get("mAP")), ("mAP@0.5", ca.get("AP50"), cb.get("AP50")),
                        ("VOC mAP@0.5", ja["voc"]["mAP50"], jb["voc"]["mAP50"])):
        out.write(f"{label:<14}{_f(x):>9}{_f(y):>9}\n")
    for k in ("precision", "recall", "f1"):
        out.write(f"{k:<14}{_f(ja['at_threshold'][k]):>9}{_f(jb['at_threshold'][k]):>9}\n")
    for k in ("tp", "fp", "fn"):
        out.write(f"{k.upper():<14}{ja['at_threshold'][k]:>9}{jb['at_threshold'][k]:>9}\n")
    for title, rows, key in (("A right, B wrong (objects A found and B missed)", j["a_right_b_wrong"],
                              "found_by_a_only"),
                             ("B right, A wrong (objects B found and A missed)", j["b_right_a_wrong"],
                              "found_by_b_only")):
        total = sum(r[key] for r in rows)
        shown = ", ".join(f"{Path(r['path']).name} ({r[key]})" for r in rows[:WORST_SHOWN])
        more = f" and {len(rows) - WORST_SHOWN} more" if len(rows) > WORST_SHOWN else ""
        out.write(f"{title}: {total} in {len(rows)} images{': ' + shown + more if rows else ''}\n")
