"""``detscope eval``: test a model against ground truth on the command line (the flow is core.app.evaluation's)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..base import errors
from .options import add_model_options, model_host

WORST_SHOWN = 10


def add_parser(sub) -> None:
    ev = sub.add_parser("eval", help="test a model against ground truth: COCO and VOC metrics, TP/FP/FN, errors")
    ev.add_argument("model", help="a SavedModel, OD API export, checkpoint folder with a template, or Keras file")
    ev.add_argument("images", nargs="+", help="image files or folders")
    ev.add_argument("--gt", metavar="ANNOTATIONS", help="the ground truth: a COCO or labelme JSON, VOC XML folder, CSV, "
                                                        "TFRecord, YOLO labels folder or data.yaml (default: what "
                                                        "is beside the images)")
    ev.add_argument("--gt-format", choices=["coco", "voc", "tfrecord", "csv", "yolo", "labelme"],
                    help="the ground truth's format, when it cannot be told from the files")
    ev.add_argument("--iou", type=float, default=0.5, help="IoU a detection needs to match a box (default 0.5)")
    ev.add_argument("--threshold", type=float, default=0.5, help="score threshold for TP/FP/FN (default 0.5)")
    ev.add_argument("--json", action="store_true", help="print one JSON object (schema in the README)")
    ev.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    ev.add_argument("--review", metavar="REVIEW.db", help="an annotators' review file: its summary (precision as "
                                                          "people judged it, corrections by kind) goes into the "
                                                          "report and the JSON")
    add_model_options(ev)
    ev.add_argument("--no-cache", action="store_true", help="run the model on every image (the cache is still "
                                                            "written)")
    ev.add_argument("--runner", metavar="NAME", help="run the model on Apache Beam (DirectRunner, FlinkRunner, "
                    "DataflowRunner, ...); Beam's pipeline options follow as --name=value; needs detscope[beam]")
    ev.add_argument("--out", metavar="DIR", help="with --runner: where the pipeline writes its detections (JSON "
                                                 "lines; a folder every worker can write, e.g. gs://bucket/run)")
    ev.set_defaults(func=cmd_eval)


class _ProgressLine:
    """``detecting 12/36 images  33%  ETA 0:04`` rewritten in place on a terminal; nothing when piped."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.on = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._width = 0

    def __call__(self, p) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if p.done < p.total and now - self._last < 0.1:
            return
        self._last = now
        eta = "" if p.eta is None else f"  ETA {int(p.eta) // 60}:{int(p.eta) % 60:02d}"
        cached = f" ({p.cached} cached)" if p.cached else ""
        bar_n = 24
        filled = int(round(p.fraction * bar_n))
        text = (f"detecting [{'#' * filled}{'.' * (bar_n - filled)}] {p.done}/{p.total} images{cached}  "
                f"{p.fraction:4.0%}{eta}")
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def status(self, text: str) -> None:
        if self.on:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()

    def close(self) -> None:
        if self.on and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def _review_summary(path: str) -> dict:
    from ..review.export import summary
    from ..review.store import ReviewStore

    with ReviewStore.open(path) as store:
        return summary(store)


def cmd_eval(args) -> int:
    from ..app.evaluation import evaluate, evaluate_from_cache, read_truth, request_of
    from ..media.images import list_images

    if not 0 < args.iou <= 1:
        raise errors.UserError(f"--iou {args.iou}: must be above 0 and at most 1")
    beam = getattr(args, "runner", None)    # the images flow through an Apache Beam pipeline (core/cli/batch.py)
    images = [] if beam else list_images(args.images)
    if not images and not beam:
        raise errors.UserError(f"no images in {' '.join(args.images)}")
    truth = None if beam else read_truth(args.gt, images, fmt=args.gt_format)  # a bad annotation file fails first
    review = _review_summary(args.review) if args.review else None  # so does a bad review file
    options = dict(checkpoint=args.checkpoint, labels=args.labels, signature=args.signature, template=args.template,
                   factory=args.factory, scale=args.scale, safe_mode=not args.unsafe_keras,
                   tags=[t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None)
    if args.trust_model:
        options["trust_model"] = True
    if beam:
        from .batch import evaluate as evaluate_on_beam

        result = evaluate_on_beam(args, args.beam_args)        # its ground truth is read before the pipeline runs
    else:
        result = None if args.no_cache else evaluate_from_cache(args.model, options, images, truth)
        if result is not None:
            sys.stderr.write(f"detections of all {len(images)} images from the cache; the model was not loaded "
                             f"(--no-cache runs it)\n")
        else:
            result = _run(args, options, images, truth, evaluate, request_of(args.model, options))
    for f in result.findings:
        if f.severity != "info" or f.message.endswith("left out of the metrics"):
            sys.stderr.write(f"{f.line()}\n")
    if args.report:
        from ..eval.report import write_report

        out = write_report(result.evaluator, Path(args.report), threshold=args.threshold, iou=args.iou,
                           about=result.about(), review=review)
        sys.stderr.write(f"report written to {out}\n")
    if args.json:
        out_json = result.as_json(args.threshold, args.iou)
        if review is not None:
            out_json["review"] = review
        json.dump(out_json, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(result, args.threshold, args.iou)
    return 0


def _run(args, options: dict, images, truth, evaluate, request):
    host = model_host()
    progress = _ProgressLine()
    try:
        progress.status(f"loading {args.model} …")
        model = host.load_sync(args.model, **options)
        for f in model.findings:
            if f.severity != "info":
                sys.stderr.write(f"{f.line()}\n")
        if not model.can_detect:
            raise errors.UserError(f"{args.model}: the model cannot detect (see the problems above)")
        return evaluate(host, images, truth, use_cache=not args.no_cache, on_progress=progress, request=request)
    finally:
        progress.close()
        host.shutdown()


def _f(v, digits: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def _print(result, threshold: float, iou: float) -> None:
    out = sys.stdout
    ev = result.evaluator
    j = result.as_json(threshold, iou, images="none")
    im = j["images"]
    ckpt = f" ({j['checkpoint']})" if j.get("checkpoint") else ""
    out.write(f"{j['model']}{ckpt}: {im['total']} images ({im['annotated']} annotated"
              f"{', %d unannotated' % im['unannotated'] if im['unannotated'] else ''}), {j['objects']} objects; "
              f"ground truth: {j['ground_truth']['format']} from {j['ground_truth']['path']}\n")
    coco = j["coco"]
    if coco:
        out.write(f"COCO  mAP@[.5:.95] {_f(coco['mAP'])}  AP50 {_f(coco['AP50'])}  AP75 {_f(coco['AP75'])}  "
                  f"AR@100 {_f(coco['AR100'])}\n")
    out.write(f"VOC   mAP@0.5 {_f(j['voc']['mAP50'])}\n")
    a, b = j["at_threshold"], j["best_f1"]
    best = f" (best F1 {_f(b['f1'])} at threshold {_f(b['threshold'], 2)})" if b else ""
    out.write(f"At threshold {threshold:.2f}, IoU {iou:.2f}: TP {a['tp']}  FP {a['fp']}  FN {a['fn']}  "
              f"precision {_f(a['precision'])}  recall {_f(a['recall'])}  F1 {_f(a['f1'])}{best}\n\n")
    width = max([5] + [len(c["label"]) for c in j["classes"]])
    out.write(f"{'class':<{width}}  objects    TP    FP    FN  precision  recall     F1     AP   AP50  "
              f"best F1 @ threshold\n")
    for c in j["classes"]:
        bf = f"{_f(c['best_f1'])} @ {_f(c['best_f1_threshold'], 2)}" if c["best_f1"] is not None else "-"
        out.write(f"{c['label']:<{width}}  {c['objects']:7d} {c['tp']:5d} {c['fp']:5d} {c['fn']:5d}  "
                  f"{_f(c['precision']):>9}  {_f(c['recall']):>6}  {_f(c['f1']):>5}  {_f(c['AP']):>5}  "
                  f"{_f(c['AP50']):>5}  {bf}\n")
    e = j["errors"]
    out.write("\nErrors: " + ", ".join(f"{k} {v}" for k, v in e.items()) + "\n")
    labels = j["confusion"]["labels"]
    cw = max(6, *(len(s) for s in labels)) + 1
    out.write("\nConfusion matrix (rows: true class, columns: predicted):\n")
    out.write(" " * cw + "".join(f"{s:>{cw}}" for s in labels) + "\n")
    for name, row in zip(labels, j["confusion"]["matrix"]):
        out.write(f"{name:<{cw}}" + "".join(f"{v:>{cw}d}" for v in row) + "\n")
    worst = [i for i in ev.worst_images(threshold, iou)][:WORST_SHOWN]
    rows = [(i, ev.image_errors(i, threshold, iou)) for i in worst]
    rows = [(i, e) for i, e in rows if e.fp or e.fn]
    if rows:
        out.write("\nWorst images:\n")
        for i, e in rows:
            bits = [f"{x.kind} {x.label} {x.score:.2f}" for x in e.fp]
            bits += [f"{x.kind} {x.label} ({x.reason})" for x in e.fn]
            out.write(f"  {ev.items[i].path.name}  FP {len(e.fp)}  FN {len(e.fn)}: {'; '.join(bits)}\n")
