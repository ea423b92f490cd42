"""``detscope review export|summary|compare``: what annotators decided, read from their review files."""

from __future__ import annotations

import json
import sys

from ..review import compare as _compare
from ..review import export as _export
from ..review.store import IMAGE_STATES, ReviewStore


def add_parser(sub) -> None:
    rv = sub.add_parser("review", help="annotators' review files: export the corrected boxes, summarise, compare")
    rsub = rv.add_subparsers(dest="review_command", required=True)

    ex = rsub.add_parser("export", help="the corrected boxes as new ground truth")
    ex.add_argument("path", metavar="REVIEW.db")
    ex.add_argument("--format", required=True, choices=list(_export.FORMATS))
    ex.add_argument("--out", required=True, metavar="PATH", help="a .json / .csv file, or a folder for voc")
    ex.add_argument("--include", default="done", metavar="STATES",
                    help=f"image states to export, comma-separated, of {', '.join(IMAGE_STATES)} (default: done)")
    ex.set_defaults(func=cmd_export)

    sm = rsub.add_parser("summary", aliases=["stats"], help="progress, per-class precision as judged, corrections")
    sm.add_argument("path", metavar="REVIEW.db")
    sm.add_argument("--json", action="store_true", help="print one JSON object")
    sm.set_defaults(func=cmd_summary)

    cp = rsub.add_parser("compare", help="two annotators' reviews: agreement per class, images they disagree on")
    cp.add_argument("path", metavar="A.db")
    cp.add_argument("other", metavar="B.db")
    cp.add_argument("--iou", type=float, default=0.5, help="IoU for two corrected or drawn boxes to agree")
    cp.add_argument("--json", action="store_true", help="print one JSON object")
    cp.set_defaults(func=cmd_compare)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def cmd_export(args) -> int:
    states = tuple(s.strip() for s in args.include.split(",") if s.strip())
    with ReviewStore.open(args.path) as store:
        done = _export.export(store, args.format, args.out, states)
    sys.stdout.write(f"{done['images']} images, {done['objects']} boxes written to {args.out} ({args.format})\n")
    if done.get("images_without_rows"):
        sys.stdout.write(f"note: {done['images_without_rows']} images have no box; a CSV has no row for them\n")
    return 0


def cmd_summary(args) -> int:
    with ReviewStore.open(args.path) as store:
        s = _export.summary(store)
    if args.json:
        sys.stdout.write(json.dumps(s, indent=2) + "\n")
        return 0
    out = sys.stdout
    m = s["model"]
    out.write(f"{s['review']}: {m['name'] or m['fingerprint'][:12]} {m['checkpoint']}, threshold {s['threshold']:g}\n")
    out.write(s["progress"]["line"] + "\n")
    out.write("corrections: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s["corrections"].items()) + "\n")
    if s["annotators"]:
        out.write("annotators: " + ", ".join(f"{a} ({n})" for a, n in s["annotators"].items()) + "\n")
    if s["classes"]:
        out.write(f"\n{'class':<20} {'judged':>6} {'correct':>7} {'wrong':>5} {'box':>4} {'dup':>4} {'fp':>4} "
                  f"{'missed':>6} {'precision':>9}\n")
        for r in s["classes"]:
            out.write(f"{r['class'][:20]:<20} {r['judged']:>6} {r['correct']:>7} {r['wrong_class']:>5} "
                      f"{r['bad_box']:>4} {r['duplicate']:>4} {r['false_positive']:>4} {r['missed']:>6} "
                      f"{_pct(r['precision']):>9}\n")
    for c in s["comments"]:
        out.write(f"{c['image']} [{c['state']}]: {c['comment']}\n")
    return 0


def cmd_compare(args) -> int:
    with ReviewStore.open(args.path) as a, ReviewStore.open(args.other) as b:
        c = _compare.compare(a, b, iou_threshold=args.iou)
    if args.json:
        sys.stdout.write(json.dumps(c, indent=2) + "\n")
        return 0
    out = sys.stdout
    if not c["same_model"]:
        out.write("warning: the two reviews are of different models or checkpoints\n")
    o = c["overall"]
    kappa = "-" if c["kappa"] is None else f"{c['kappa']:.3f}"
    out.write(f"{c['images_compared']} images in both; {o['agreed']} / {o['compared']} verdicts agree "
              f"({_pct(o['agreement'])}), Cohen's kappa {kappa}\n")
    for r in c["classes"]:
        out.write(f"  {r['class'][:24]:<24} {r['agreed']:>5} / {r['compared']:<5} {_pct(r['agreement']):>7}\n")
    if c["disagreements"]:
        out.write(f"\n{len(c['disagreements'])} images disagree:\n")
        for d in c["disagreements"]:
            what = "; ".join(f"{i['target']}: {_say(i['a'])} vs {_say(i['b'])}" for i in d["items"])
            out.write(f"  {d['image']}: {what}\n")
    return 0


def _say(v) -> str:
    if v is None:
        return "nothing"
    return v["kind"] + (f" ({v['class']})" if "class" in v else "")
