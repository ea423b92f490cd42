"""The ``detscope`` command line: the same core the window uses.

Bad input exits with status 2 and one line on stderr starting ``error: `` that
names the file; never a traceback (set ``DETSCOPE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..base import errors, files
from ..base.text import fmt_bytes, fmt_shape
from .options import model_host

EXIT_USAGE = 2
EXIT_SOME_FAILED = 1  # detect: some images could not be read or run (each named on stderr), the others were
EXIT_INCOMPLETE = 1     # `restore`: the verdict is partial or failed




# Rows of facts (function names, op types, layers) the text tree prints under a group before it says how
# many more there are; ``inspect --all`` prints every one (a Model Garden export has thousands of functions).
FACT_ROWS = 20


def _print_json(obj) -> None:
    """``obj`` as one line of JSON on stdout, in one write: one system call even with PYTHONUNBUFFERED=1, and
    NumPy-free C encoding (an indent would force the pure-Python encoder: seconds for 50,000 entries)."""
    sys.stdout.write(json.dumps(obj) + "\n")


def _print_tree(node, out, depth: int = 0, max_depth: int | None = None, show_all: bool = False,
                skip=()) -> None:
    from ..browse.inventory import FACT, FINDING

    facts = 0
    hidden = 0
    for child in node.children:
        if child.kind == FINDING or child in skip:
            continue
        if child.kind == FACT and not show_all:
            facts += 1
            if facts > FACT_ROWS:
                hidden += 1
                continue
        cols = [child.name]
        if child.shape is not None:
            cols.append(fmt_shape(child.shape))
        if child.dtype:
            cols.append(child.dtype)
        if child.nbytes and child.kind not in ("fact",):
            cols.append(fmt_bytes(child.nbytes))
        if child.detail:
            cols.append(f"({child.detail})")
        out.write("  " * depth + "  ".join(cols) + "\n")
        if max_depth is None or depth + 1 < max_depth:
            _print_tree(child, out, depth + 1, max_depth, show_all)
    if hidden:
        out.write("  " * depth + f"… and {hidden} more (--all lists them)\n")


def cmd_inspect(args) -> int:
    _model_here(args.path)
    if args.json and args.tensor is None:
        # facts and findings: from the cache when none of a big folder's files changed (core.browse.inspect_cache)
        from ..browse.inspect_cache import inspect_json

        sys.stdout.write(inspect_json(args.path, args.checkpoint))
        return 0
    from ..browse.inventory import build_inventory

    # --json prints facts and findings only: the rows of the tree are not built for it
    inv = build_inventory(args.path, checkpoint=args.checkpoint, tree=not args.json or args.tensor is not None)
    if args.tensor is not None:
        return _inspect_tensor(inv, args)
    if args.json:
        _print_json(inv.as_json())
        return 0
    out = sys.stdout
    out.write(f"{inv.folder.path}  [{inv.kind}]\n")
    if inv.findings:
        out.write("\nProblems:\n")
        for f in inv.findings:
            out.write(f"  {f.line()}\n")
    if len(inv.checkpoints) > 1:
        out.write("\nCheckpoints (newest first):\n")
        for c in inv.checkpoints:
            mark = "*" if inv.checkpoint and c.prefix == str(inv.checkpoint.prefix) else " "
            step = f"step {c.step}" if c.step is not None else "step ?"
            out.write(f" {mark} {c.name}  {step}  {c.entries if c.entries is not None else '?'} entries\n")
    out.write("\n")
    # the Problems group is the list printed above: not twice
    problems = [n for n in inv.root.children if n.children and all(c.kind == "finding" for c in n.children)]
    _print_tree(inv.root, out, max_depth=args.depth, show_all=args.all, skip=problems)
    return 0


def _inspect_tensor(inv, args) -> int:
    key = _resolve_key(inv, args.tensor)
    if args.npy:
        import numpy as np

        out = Path(args.npy)
        values = inv.value_source(key).read(key)
        np.save(out, values, allow_pickle=values.dtype == object)
        sys.stderr.write(f"saved {key} to {out}\n")
    try:
        st = inv.tensor_stats(key)
    except TypeError as exc:  # a dtype without statistics (an HDF5 compound type, say)
        raise errors.UserError(f"{_where(inv)}: {key}: {exc}") from None
    if args.json:
        _print_json({"key": key, **st.as_json()})
    elif not args.npy:
        sys.stdout.write(_stats_text(key, st))
    return 0


def _where(inv) -> str:
    return inv.checkpoint.index.name if inv.checkpoint else str(inv.folder.path)


def _resolve_key(inv, given: str) -> str:
    """The value ``given`` names: its checkpoint key, or its path as the tree prints it (``model/class_head/
    kernel``, with or without the group's title in front); a one-line error when it names none or several."""
    from ..browse.inventory import VALUE_KINDS

    keys = list(inv.bundle.entries) if inv.bundle is not None else []
    keys += [w.key for w in inv.keras.weights] if inv.keras is not None else []
    keys += [t.key for t in inv.tflite.tensors() if t.is_constant] if inv.tflite is not None else []
    if given in keys:
        return given
    wanted = given.strip("/")
    found: dict[str, None] = {}
    for node in inv.root.walk():
        if node.key and node.kind in VALUE_KINDS:
            path = node.path
            if wanted in (path, path.split("/", 1)[-1]) or node.key == f"{wanted}/.ATTRIBUTES/VARIABLE_VALUE":
                found[node.key] = None
    if len(found) == 1:
        return next(iter(found))
    if found:
        raise errors.UserError(f"{_where(inv)}: {given!r} names {len(found)} values ({', '.join(list(found)[:3])}"
                               f"{', …' if len(found) > 3 else ''}); give the whole key")
    import difflib

    close = difflib.get_close_matches(given, keys, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else " (inspect --json lists every key)"
    raise errors.UserError(f"{_where(inv)} has no entry {given!r}{hint}")


def _stats_text(key: str, st) -> str:
    """Statistics of one value as a few lines of text (``--json`` has every field)."""
    def num(v) -> str:
        return "?" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))

    lines = [key, f"  {st.dtype} {fmt_shape(st.shape)}  {st.count:,} values"]
    if st.kind == "string":
        if st.count:
            lines.append(f"  lengths {num(st.min_length)}..{num(st.max_length)}, mean {num(st.mean_length)}; "
                         f"{fmt_bytes(st.total_bytes)} in all")
        return "\n".join(lines) + "\n"
    lines.append(f"  min {num(st.min)}  max {num(st.max)}  mean {num(st.mean)}  std {num(st.std)}"
                 + ("  (of |z|)" if st.kind == "complex" else ""))
    zero = f"{st.zero_count:,} zero ({st.zero_fraction:.1%})" if st.zero_fraction is not None else "no values"
    lines.append(f"  {zero}  {st.nan_count:,} NaN  {st.inf_count:,} Inf")
    if st.histogram:
        bars = " ▁▂▃▄▅▆▇█"
        top = max(st.histogram) or 1
        spark = "".join(bars[0 if c == 0 else max(1, round(c / top * 8))] for c in st.histogram)
        try:
            spark.encode(sys.stdout.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            spark = "".join(" .:-=+*#@"[0 if c == 0 else max(1, round(c / top * 8))] for c in st.histogram)
        lines.append(f"  histogram {num(st.bin_edges[0])} |{spark}| {num(st.bin_edges[-1])}")
    return "\n".join(lines) + "\n"


def _model_here(path) -> None:
    """A folder holding no model itself but models below it: exit 2 listing them (NoModelHere), never
    picking one; see core.browse.discover."""
    from ..browse.discover import check_opened

    check_opened(path)


def _coco_ids(images: list[Path]) -> dict[str, int]:
    """Image ids from a COCO annotations.json beside the images (or one folder up), by file name."""
    for folder in {p.parent for p in images} | {p.parent.parent for p in images}:
        ann = folder / "annotations.json"
        if ann.is_file():
            try:
                data = json.loads(files.read_text(ann, limit=files.ANNOTATIONS_LIMIT))
                return {Path(im["file_name"]).name: im["id"] for im in data.get("images", [])}
            except (errors.UserError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
    return {}


def _tags(args) -> list[str] | None:
    return [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None


def cmd_detect(args) -> int:
    from ..media.images import list_images

    if args.runner:                      # the images flow through an Apache Beam pipeline (core/cli/batch.py)
        from .batch import detect as detect_on_beam

        return detect_on_beam(args, args.beam_args, _coco_ids)
    images = list_images(args.images)
    if not images:
        raise errors.UserError(f"no images in {' '.join(args.images)}")
    _model_here(args.model)
    host = model_host()
    try:
        model = host.load_sync(args.model, checkpoint=args.checkpoint, labels=args.labels,
                               signature=args.signature, template=args.template, factory=args.factory,
                               scale=args.scale, safe_mode=not args.unsafe_keras, trust_model=args.trust_model,
                               tags=_tags(args))
        for f in model.findings:
            if f.severity != "info":
                sys.stderr.write(f"{f.line()}\n")
        partial = _partial_gate(model, args.allow_partial)
        if partial and not args.json:
            sys.stdout.write(f"# PARTIAL RESTORE, run with --allow-partial: {partial['reason']}\n")
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        if not model.can_detect:  # the model's fault, not the images': one line before any of them
            reason = next((f.message for f in model.findings if f.severity == "error"), "no detector signature")
            raise errors.UserError(f"{Path(args.model).name}: cannot detect: {reason}")
        coco_ids = _coco_ids(images) if args.coco_results else {}
        results, coco, failed = [], [], []

        def skip(path, exc) -> None:  # one bad image is said by name and skipped; the run goes on
            failed.append({"path": str(path), "error": str(exc)})
            sys.stderr.write(f"error: {exc}\n")
        for n, (path, image, dets) in enumerate(host.detect_many(images, allow_partial=args.allow_partial,
                                                                 on_error=skip), 1):
            dets = dets.above(args.threshold)
            results.append({"path": str(path), "width": dets.width, "height": dets.height,
                            "detections": dets.as_json()})
            if args.coco_results:
                coco.extend(dets.coco_results(coco_ids.get(path.name, n)))
            if args.out:
                _write_annotated(image, dets, Path(args.out) / (path.stem + ".png"),
                                 banner="PARTIAL RESTORE: not the checkpoint's weights alone" if partial else None)
            if not args.json:
                sys.stdout.write(f"{path}  {dets.width}x{dets.height}  {len(dets)} detections\n")
                for d in dets.as_json():
                    box = ", ".join(f"{v:.1f}" for v in d["box"])
                    sys.stdout.write(f"  {d['score']:.3f}  {d['label']} (class {d['class_id']})  [{box}]\n")
    finally:
        host.shutdown()
    if args.coco_results:
        Path(args.coco_results).write_text(json.dumps(coco))
    if args.json:
        marked = {"partial_restore": partial} if partial else {}
        _print_json({"model": str(args.model), **marked, "images": results, "failed": failed})
    if failed:
        if len(images) > 1:
            sys.stderr.write(f"error: {len(failed)} of {len(images)} images failed (named above); "
                             f"{len(results)} were detected\n")
        # some detected: 1; none (a single image that failed: its one line above): bad input, 2
        return EXIT_SOME_FAILED if results else EXIT_USAGE
    return 0


def _partial_gate(model, allow_partial: bool) -> dict | None:
    """Only a complete restore runs unasked: refuse (exit 2, one line saying what was not restored) unless
    ``--allow-partial``; then say so on stderr and return what marks every output."""
    reason = model.refusal
    if reason is None:
        return None
    if not allow_partial:
        raise errors.UserError(f"{reason}; pass --allow-partial to run it anyway")
    sys.stderr.write(f"warning: {reason}; running it anyway (--allow-partial): every output is marked\n")
    return model.partial_restore()


def _write_annotated(image, dets, out: Path, banner: str | None = None) -> None:
    from PIL import Image

    from ..detect.render import draw_banner, draw_detections

    drawn = draw_detections(image, dets)
    Image.fromarray(draw_banner(drawn, banner) if banner else drawn).save(out)


def cmd_restore(args) -> int:
    _model_here(args.checkpoint)
    host = model_host()
    try:
        model = host.load_sync(args.checkpoint, template=args.template, factory=args.factory,
                               checkpoint=args.ckpt, warmup=False, safe_mode=not args.unsafe_keras,
                               trust_model=args.trust_model, tags=_tags(args))
    finally:
        host.shutdown()
    report = model.report
    if report is None and model.restore_note:
        # A TF1 export whose weights are frozen into its graph: nothing to restore, nothing wrong.
        if args.json:
            selected = model.folder.selected
            _print_json({"verdict": "not_needed", "source": selected.name if selected else None,
                         "target": str(model.folder.saved_model), "notes": [model.restore_note]})
        else:
            sys.stdout.write(model.restore_note + "\n")
        return 0
    if report is None:
        raise errors.UserError(f"{args.checkpoint}: there was no checkpoint to restore")
    if args.json:
        _print_json(report.as_json())
    else:
        _print_report(report)
    # Only a complete restore is a success: scripts can tell a partial or failed one by the status.
    return 0 if report.verdict == "complete" else EXIT_INCOMPLETE


# How many rows of each part of a restore report the command line prints (``--json`` has them all).
REPORT_ROWS = {"missing": 50, "unused:model": 20}


def _print_report(report) -> None:
    from ..runtime.report import report_sections

    out = sys.stdout
    out.write(f"{report.source} -> {report.target}\n{report.summary()}\n")
    for section in report_sections(report):
        if section.id in ("matched", "tf_messages"):
            continue
        limit = REPORT_ROWS.get(section.id, 0 if section.id.startswith("unused:") else None)
        out.write(f"  {section.title}\n")
        rows = section.rows if limit is None else section.rows[:limit]
        for text, _ in rows:
            out.write(f"    {text}\n")
        if len(rows) < len(section.rows) and limit:
            out.write(f"    … and {len(section.rows) - len(rows)} more\n")
    if report.tf_messages:
        total = sum(report.tf_messages.values())
        out.write(f"  TensorFlow printed {total} warnings while loading (summarised, not shown)\n")


def cmd_map_outputs(args) -> int:
    """Say by hand which output is what, for models whose outputs follow no known convention."""
    from ..browse.folders import recognise
    from ..detect.conventions import OutputMapping
    from ..detect.mappings import forget_mapping, load_mapping, mapping_key, save_mapping

    mf = recognise(args.model)
    key = mapping_key(mf.keras_file or mf.path, keras=mf.keras_file is not None, signature=args.signature,
                      signatures=_signature_names(mf))
    model_path, signature = key.model, key.signature
    if args.clear:
        removed = forget_mapping(key)
        sys.stdout.write(("removed the saved mapping" if removed else "there was no saved mapping") + "\n")
        return 0
    if args.boxes is None:
        current = load_mapping(key)
        _print_json(current.as_json() if current else None)
        return 0
    mapping = OutputMapping.from_json({
        "boxes": args.boxes, "scores": args.scores, "classes": args.classes,
        "num_detections": args.num_detections, "box_layout": args.layout,
        "normalized": {"normalized": True, "pixels": False, "guess": None}[args.coordinates],
        "class_offset": args.class_offset, "multiclass_scores": args.multiclass_scores})
    path = save_mapping(key, mapping)
    sys.stdout.write(f"saved the output mapping for {model_path} ({signature}) to {path}\n")
    return 0


def _signature_names(mf) -> list[str]:
    """The serving signatures of the folder's SavedModel, read without TensorFlow (none when unreadable)."""
    from ..formats.savedmodel import read_saved_model

    if mf.saved_model_pb is None:
        return []
    try:
        return [s.name for s in read_saved_model(mf.saved_model_pb).meta_graph().signatures]
    except errors.USER_ERRORS:
        return []


def cmd_diff(args) -> int:
    """Weight drift between two checkpoints, read without TensorFlow."""
    from ..browse.diff import diff_checkpoints

    drift = diff_checkpoints(args.a, args.b, include_optimizer=args.all)
    if args.json:
        _print_json(drift.as_json())
        return 0
    _print_drift(drift, args.depth, args.top)
    return 0


def _fmt_change(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.3g}"


def _print_drift(drift, depth: int, top: int) -> None:
    out = sys.stdout
    out.write(f"{drift.a} -> {drift.b}: {len(drift.variables)} variables compared, {len(drift.changed)} changed, "
              f"{len(drift.only_a)} only in {drift.a}, {len(drift.only_b)} only in {drift.b}, "
              f"{len(drift.shape_changes)} shape changes\n")
    if drift.skipped:
        left = ", ".join(f"{n} {kind} entries" for kind, n in sorted(drift.skipped.items()))
        out.write(f"(left out: {left}; --all compares them too)\n")
    rows = drift.top_subtrees(depth)
    if rows:
        out.write("\nBy subtree (relative change ||B-A||/||A||, largest absolute change):\n")
        for s in rows:
            name = s.path.rsplit("/", 1)[-1]
            out.write(f"{'  ' * s.depth}{name:<{max(8, 40 - 2 * s.depth)}} {_fmt_change(s.relative_change):>9}  "
                      f"max {_fmt_change(s.max_abs_change):>9}  {s.changed_variables}/{s.variables} changed  "
                      f"{s.params:,} values\n")
    ranked = sorted(drift.variables, key=lambda v: (-v.relative_change, v.key))[:top]
    if ranked:
        out.write(f"\nMost changed variables (top {len(ranked)}):\n")
        for v in ranked:
            out.write(f"  {_fmt_change(v.relative_change):>9}  max {_fmt_change(v.max_abs_change):>9}  "
                      f"{v.path}  {fmt_shape(v.shape)} {v.dtype}\n")
    for title, entries in ((f"Only in {drift.a}", drift.only_a), (f"Only in {drift.b}", drift.only_b)):
        if entries:
            out.write(f"\n{title}:\n")
            for e in entries:
                out.write(f"  {e.key}  {fmt_shape(e.shape)} {e.dtype_name}\n")
    if drift.shape_changes:
        out.write("\nShape changes:\n")
        for ea, eb in drift.shape_changes:
            out.write(f"  {ea.key}  {fmt_shape(ea.shape)} {ea.dtype_name} -> {fmt_shape(eb.shape)} {eb.dtype_name}\n")
    if drift.not_compared:
        out.write("\nNot compared:\n")
        for key, why in drift.not_compared:
            out.write(f"  {key}: {why}\n")


def cmd_gui(args) -> int:
    """``detscope gui ...``: the window, as ``detscope-gui`` opens it.

    The GUI package is looked up by name at this moment only, so importing the core
    (and running every other command) never loads Qt.
    """
    import importlib

    return importlib.import_module("detscope.gui.app").main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    from .options import add_model_options, add_trust_options

    p = argparse.ArgumentParser(prog="detscope", description="Open, browse, restore and look at TensorFlow 2 "
                                                             "object-detection models.")
    sub = p.add_subparsers(dest="command", required=True)

    ins = sub.add_parser("inspect", help="what a model folder holds, without TensorFlow")
    ins.add_argument("path", help="a model folder, ckpt-N prefix, .index, saved_model.pb, .keras or .h5")
    ins.add_argument("--checkpoint", help="which checkpoint of a folder (ckpt-N); the latest by default")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.add_argument("--tensor", metavar="KEY", help="statistics of one tensor")
    ins.add_argument("--npy", metavar="OUT", help="with --tensor: save its values as .npy")
    ins.add_argument("--depth", type=int, default=None, help="print the tree this many levels deep")
    ins.add_argument("--all", action="store_true", help=f"list every row of long lists (functions, op types), "
                                                        f"not the first {FACT_ROWS}")
    ins.set_defaults(func=cmd_inspect)

    det = sub.add_parser("detect", help="run a model on images and print its detections")
    det.add_argument("model", help="a SavedModel, OD API export, checkpoint folder with a template, or Keras file")
    det.add_argument("images", nargs="+", help="image files or folders")
    det.add_argument("--threshold", type=float, default=0.5, help="minimum score (0 keeps everything)")
    add_model_options(det)
    det.add_argument("--allow-partial", action="store_true",
                     help="run even when the checkpoint was not restored completely (partial, failed, or matched "
                          "nothing); every output is then marked")
    det.add_argument("--json", action="store_true", help="print one JSON object")
    det.add_argument("--out", help="write annotated images into this folder (with --runner: the detections, as JSON "
                                   "lines, in a folder every worker can write)")
    det.add_argument("--coco-results", metavar="FILE", help="write detections in the COCO results format")
    det.add_argument("--runner", metavar="NAME", help="run the model on Apache Beam (DirectRunner, FlinkRunner, "
                     "DataflowRunner, ...); Beam's pipeline options follow as --name=value; needs detscope[beam]")
    det.set_defaults(func=cmd_detect)

    res = sub.add_parser("restore", help="restore a checkpoint into a model and report what matched")
    res.add_argument("checkpoint", help="a checkpoint folder, ckpt-N prefix or .index (with --template or "
                                        "--factory when no SavedModel is beside it), or a Keras file")
    res.add_argument("--template", help="a SavedModel of the same architecture")
    res.add_argument("--factory", help="FILE.py:FUNCTION or package.module:FUNCTION that builds the model")
    res.add_argument("--ckpt", help="which ckpt-N of a folder (the latest by default)")
    res.add_argument("--tags", help="the template SavedModel's tag set, comma-separated (serve by default)")
    add_trust_options(res)
    res.add_argument("--json", action="store_true", help="print one JSON object")
    res.set_defaults(func=cmd_restore)

    mo = sub.add_parser("map-outputs", help="say which output is boxes, scores and classes (saved in "
                                            "detscope's data folder, never in the model folder)")
    mo.add_argument("model")
    mo.add_argument("--signature", help="serving_default by default")
    mo.add_argument("--boxes", help="the boxes output (without it: print the saved mapping)")
    mo.add_argument("--scores")
    mo.add_argument("--classes")
    mo.add_argument("--num-detections")
    mo.add_argument("--multiclass-scores")
    mo.add_argument("--layout", default="yxyx", choices=["yxyx", "xyxy", "xywh", "cxcywh"])
    mo.add_argument("--coordinates", default="guess", choices=["normalized", "pixels", "guess"])
    mo.add_argument("--class-offset", type=int, default=0, help="added to the model's class values")
    mo.add_argument("--clear", action="store_true", help="forget the saved mapping")
    mo.set_defaults(func=cmd_map_outputs)

    from .evaluate import add_parser as add_eval_parser   # detscope eval MODEL IMAGES --gt ...
    add_eval_parser(sub)

    from .review import add_parser as add_review_parser   # detscope review export|summary|compare REVIEW.db
    add_review_parser(sub)

    dif = sub.add_parser("diff", help="which weights changed between two checkpoints, without TensorFlow")
    dif.add_argument("a", metavar="CKPT_A", help="a ckpt-N prefix or .index, a checkpoint folder (its latest) or "
                                                 "a SavedModel (its variables)")
    dif.add_argument("b", metavar="CKPT_B")
    dif.add_argument("--all", action="store_true", help="compare optimizer slots and optimizer state too")
    dif.add_argument("--depth", type=int, default=3, help="subtree levels to print (text output)")
    dif.add_argument("--top", type=int, default=20, help="most changed variables to print (text output)")
    dif.add_argument("--json", action="store_true", help="print one JSON object")
    dif.set_defaults(func=cmd_diff)

    from .compare import add_parser as add_compare_parser   # detscope compare A B IMAGES [--gt ...]
    add_compare_parser(sub)

    gui = sub.add_parser("gui", help="open the window (same as detscope-gui)", add_help=False)
    gui.add_argument("rest", nargs=argparse.REMAINDER, help="[MODEL] [IMAGE_OR_FOLDER...]")
    gui.set_defaults(func=cmd_gui)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["gui"]:  # everything after "gui" is the window's own (its --help included)
        args = argparse.Namespace(func=cmd_gui, rest=argv[1:])
    else:
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "runner", None):   # only --runner takes options it does not know: Beam's
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.beam_args = rest
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader of our output went away (`| head`): not an error
        return 0
    except errors.USER_ERRORS as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except (MemoryError, RecursionError) as exc:  # what the readers' limits did not foresee: still one line
        where = getattr(args, "path", None) or getattr(args, "model", None) or ""
        cause = "not enough memory" if isinstance(exc, MemoryError) else "nested too deeply"
        sys.stderr.write(f"error: {where}: {cause} to read it\n")
        return EXIT_USAGE
    except Exception as exc:  # the last line of defence: a user never sees a traceback
        if os.environ.get("DETSCOPE_DEBUG"):
            raise
        where = getattr(args, "path", None) or getattr(args, "model", None) or ""
        sys.stderr.write(f"error: {where}: unexpected {type(exc).__name__}: {exc} "
                         "(set DETSCOPE_DEBUG=1 for details)\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
