"""``detscope detect|eval … --runner NAME [Beam options]``: the command line's face of core.app.batch.

Apache Beam is imported only here, only when ``--runner`` is given; without the ``beam`` extra it is one line.
What is printed is what the local path prints (``--json``: the same object), plus one summary line on stderr
from Beam's counters.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from ..base import errors

MISSING_BEAM = "--runner needs Apache Beam: pip install 'detscope[beam]'"
RUNNER_HELP = ("run on Apache Beam (DirectRunner, FlinkRunner, DataflowRunner, …); Beam's pipeline options follow "
               "as --name=value; needs detscope[beam]")


def need_beam() -> None:
    try:
        from ..app import batch  # noqa: F401 - imports Apache Beam (quietly)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "apache_beam":
            raise errors.UserError(MISSING_BEAM) from None
        raise


def _model_arg(model: str) -> str:
    """The model as every worker must find it: an absolute local path, or remote storage as given."""
    if "://" in model:
        return model
    from ..browse.discover import check_opened

    check_opened(model)                   # a folder holding models below it: the same list as locally
    return str(Path(model).expanduser().resolve())


def _options_paths(options: dict) -> dict:
    out = dict(options)
    for k in ("labels", "template"):
        if out.get(k) and "://" not in str(out[k]):
            out[k] = str(Path(out[k]).expanduser().resolve())
    if out.get("factory") and ":" in out["factory"]:
        spec, fn = out["factory"].rsplit(":", 1)
        if spec.endswith(".py"):
            out["factory"] = f"{Path(spec).expanduser().resolve()}:{fn}"
    return out


def _run(batch, spec, args, beam_args: list[str], threshold: float):
    try:
        return batch.run(spec, args.images, runner=args.runner, beam_args=beam_args, out=args.out,
                         threshold=threshold)
    except batch.BatchError as exc:     # the workers name the model as they found it: name it as it was given
        raise errors.UserError(str(exc).replace(spec.model, args.model)) from None


def _report(run) -> None:
    for line in run.model.get("findings") or []:
        sys.stderr.write(f"{line}\n")
    for f in run.failed:                                # bad images: by name, never fatal
        sys.stderr.write(f"error: {f['error']}\n")
    if run.replaced:
        sys.stderr.write(f"replaced {run.replaced} output files of an earlier run in {run.out}\n")


def detect(args, beam_args: list[str], coco_ids) -> int:
    """``detect --runner``; ``coco_ids``: the local path's image ids for ``--coco-results``."""
    need_beam()
    from ..app import batch

    options = dict(checkpoint=args.checkpoint, labels=args.labels, signature=args.signature, template=args.template,
                   factory=args.factory, scale=args.scale, safe_mode=not args.unsafe_keras,
                   trust_model=args.trust_model,
                   tags=[t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None)
    spec = batch.ModelSpec(_model_arg(args.model), _options_paths(options), args.allow_partial)
    run = _run(batch, spec, args, beam_args, args.threshold)
    partial = run.model.get("partial_restore")
    if partial:
        sys.stderr.write(f"warning: {partial['reason']}; running it anyway (--allow-partial): every output is "
                         "marked\n")
    _report(run)
    results = [{"path": p, "width": d.width, "height": d.height, "detections": d.as_json()} for p, d in run.images]
    failed = [{"path": f["path"], "error": f["error"]} for f in run.failed]
    if args.coco_results:
        ids = coco_ids([Path(p) for p, _ in run.images])
        coco = [row for n, (p, d) in enumerate(run.images, 1) for row in d.coco_results(ids.get(Path(p).name, n))]
        Path(args.coco_results).write_text(json.dumps(coco))
    if args.json:
        marked = {"partial_restore": partial} if partial else {}
        sys.stdout.write(json.dumps({"model": str(args.model), **marked, "images": results, "failed": failed}) + "\n")
    else:
        if partial:
            sys.stdout.write(f"# PARTIAL RESTORE, run with --allow-partial: {partial['reason']}\n")
        for r in results:
            sys.stdout.write(f"{r['path']}  {r['width']}x{r['height']}  {len(r['detections'])} detections\n")
    sys.stderr.write(run.summary_line() + "\n")
    if not results and not failed:
        raise errors.UserError(f"no images in {' '.join(args.images)}")
    if failed:
        total = len(results) + len(failed)
        sys.stderr.write(f"error: {len(failed)} of {total} images failed (named above); {len(results)} were "
                         "detected\n")
        return 1 if results else 2
    return 0


def evaluate(args, beam_args: list[str]):
    """``eval --runner``: the detections from the pipeline, the metrics from the local path's code (an
    :class:`~detscope.core.app.evaluation.Evaluation`, printed as ``eval`` prints it)."""
    need_beam()
    from ..app import batch
    from ..app.evaluation import read_truth
    from ..media.images import list_images

    images = []                       # the local images, where the ground truth is looked for beside them
    for arg in args.images:
        if "://" in arg or batch.is_tfrecord(arg):
            continue
        images += [Path(p) for p in sorted(glob.glob(arg))] if batch.has_glob(arg) else list_images([arg])
    records = [a for a in args.images if batch.is_tfrecord(a)]
    gt = args.gt or (records[0] if records and "://" not in records[0] and not batch.has_glob(records[0]) else None)
    if gt is None and not images:
        raise errors.UserError("eval --runner on remote images or TFRecord shards needs --gt: the ground truth, "
                               "as a local file")
    truth = read_truth(gt, images, fmt=args.gt_format or ("tfrecord" if gt and batch.is_tfrecord(gt) else None))
    options = dict(checkpoint=args.checkpoint, labels=args.labels, signature=args.signature, template=args.template,
                   factory=args.factory, scale=args.scale, safe_mode=not args.unsafe_keras,
                   tags=[t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None)
    if args.trust_model:
        options["trust_model"] = True
    spec = batch.ModelSpec(_model_arg(args.model), _options_paths(options), False)
    run = _run(batch, spec, args, beam_args, 0.0)
    _report(run)
    if not run.images:
        raise errors.UserError(f"no images detected in {' '.join(args.images)}")
    from ..browse.folders import recognise

    shown = args.model if "://" in args.model else recognise(args.model).path
    result = batch.evaluation(run, truth, shown)
    sys.stderr.write(run.summary_line() + "\n")
    return result
