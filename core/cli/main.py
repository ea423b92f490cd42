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

from ..base import errors
from ..base.text import fmt_bytes, fmt_shape

EXIT_USAGE = 2




def _print_tree(node, out, depth: int = 0, max_depth: int | None = None) -> None:
    from ..browse.inventory import FINDING

    for child in node.children:
        if child.kind == FINDING:
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
            _print_tree(child, out, depth + 1, max_depth)


def cmd_inspect(args) -> int:
    from ..browse.inventory import build_inventory

    inv = build_inventory(args.path, checkpoint=args.checkpoint)
    if args.tensor is not None:
        return _inspect_tensor(inv, args)
    if args.json:
        json.dump(inv.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
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
    _print_tree(inv.root, out, max_depth=args.depth)
    return 0


def _inspect_tensor(inv, args) -> int:
    key = args.tensor
    if args.npy:
        import numpy as np

        out = Path(args.npy)
        values = inv.value_source(key).read(key)
        np.save(out, values, allow_pickle=values.dtype == object)
        sys.stderr.write(f"saved {key} to {out}\n")
    st = inv.tensor_stats(key)
    if args.json:
        json.dump({"key": key, **st.as_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not args.npy:
        sys.stdout.write(st.describe(key) + "\n")
    return 0


def _host():
    """A model host whose engine says what it is doing on stderr with DETSCOPE_VERBOSE=1."""
    from ..app.host import ModelHost
    from ..runtime.engine import Engine

    return ModelHost(Engine(on_progress=(lambda name, msg: sys.stderr.write(f"… {msg}\n"))
                            if os.environ.get("DETSCOPE_VERBOSE") else None))


def _coco_ids(images: list[Path]) -> dict[str, int]:
    """Image ids from a COCO annotations.json beside the images (or one folder up), by file name."""
    for folder in {p.parent for p in images} | {p.parent.parent for p in images}:
        ann = folder / "annotations.json"
        if ann.is_file():
            try:
                data = json.loads(ann.read_text())
                return {Path(im["file_name"]).name: im["id"] for im in data.get("images", [])}
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return {}


def _tags(args) -> list[str] | None:
    return [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None


def cmd_detect(args) -> int:
    from ..media.images import list_images

    images = list_images(args.images)
    if not images:
        raise errors.UserError(f"no images in {' '.join(args.images)}")
    host = _host()
    try:
        model = host.load_sync(args.model, checkpoint=args.checkpoint, labels=args.labels,
                               signature=args.signature, template=args.template, factory=args.factory,
                               scale=args.scale, safe_mode=not args.unsafe_keras, tags=_tags(args))
        for f in model.findings:
            if f.severity != "info":
                sys.stderr.write(f"{f.line()}\n")
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        coco_ids = _coco_ids(images) if args.coco_results else {}
        results, coco = [], []
        for n, (path, image, dets) in enumerate(host.detect_many(images), 1):
            dets = dets.above(args.threshold)
            results.append({"path": str(path), "width": dets.width, "height": dets.height,
                            "detections": dets.as_json()})
            if args.coco_results:
                coco.extend(dets.coco_results(coco_ids.get(path.name, n)))
            if args.out:
                _write_annotated(image, dets, Path(args.out) / (path.stem + ".png"))
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
        json.dump({"model": str(args.model), "images": results}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def _write_annotated(image, dets, out: Path) -> None:
    from PIL import Image

    from ..detect.render import draw_detections

    Image.fromarray(draw_detections(image, dets)).save(out)


def cmd_restore(args) -> int:
    host = _host()
    try:
        model = host.load_sync(args.checkpoint, template=args.template, factory=args.factory,
                               checkpoint=args.ckpt, warmup=False, safe_mode=not args.unsafe_keras,
                               tags=_tags(args))
    finally:
        host.shutdown()
    report = model.report
    if report is None:
        raise errors.UserError(f"{args.checkpoint}: there was no checkpoint to restore")
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_report(report)
    return 0


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
        sys.stdout.write(json.dumps(current.as_json() if current else None, indent=2) + "\n")
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


def cmd_gui(args) -> int:
    """``detscope gui ...``: the window, as ``detscope-gui`` opens it.

    The GUI package is looked up by name at this moment only, so importing the core
    (and running every other command) never loads Qt.
    """
    import importlib

    return importlib.import_module("detscope.gui.app").main(args.rest)


def build_parser() -> argparse.ArgumentParser:
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
    ins.set_defaults(func=cmd_inspect)

    det = sub.add_parser("detect", help="run a model on images and print its detections")
    det.add_argument("model", help="a SavedModel, OD API export, checkpoint folder with a template, or Keras file")
    det.add_argument("images", nargs="+", help="image files or folders")
    det.add_argument("--threshold", type=float, default=0.5, help="minimum score (0 keeps everything)")
    det.add_argument("--labels", help="a label map (label_map.pbtxt, COCO json, labels.txt)")
    det.add_argument("--checkpoint", help="restore this ckpt-N into the model first")
    det.add_argument("--template", help="a SavedModel of the same architecture, for a checkpoint folder")
    det.add_argument("--factory", help="FILE.py:FUNCTION or package.module:FUNCTION that builds the model")
    det.add_argument("--signature", help="which signature (serving_default by default)")
    det.add_argument("--tags", help="the SavedModel's tag set, comma-separated (serve by default)")
    det.add_argument("--scale", choices=["0..255", "0..1", "-1..1"], help="pixel range of a float image input")
    det.add_argument("--unsafe-keras", action="store_true",
                     help="load a Keras file with safe_mode off (lets its Python lambdas run)")
    det.add_argument("--json", action="store_true", help="print one JSON object")
    det.add_argument("--out", help="write annotated images into this folder")
    det.add_argument("--coco-results", metavar="FILE", help="write detections in the COCO results format")
    det.set_defaults(func=cmd_detect)

    res = sub.add_parser("restore", help="restore a checkpoint into a model and report what matched")
    res.add_argument("checkpoint", help="a checkpoint folder, ckpt-N prefix or .index (with --template or "
                                        "--factory when no SavedModel is beside it), or a Keras file")
    res.add_argument("--template", help="a SavedModel of the same architecture")
    res.add_argument("--factory", help="FILE.py:FUNCTION or package.module:FUNCTION that builds the model")
    res.add_argument("--ckpt", help="which ckpt-N of a folder (the latest by default)")
    res.add_argument("--tags", help="the template SavedModel's tag set, comma-separated (serve by default)")
    res.add_argument("--unsafe-keras", action="store_true",
                     help="load a Keras file with safe_mode off (lets its Python lambdas run)")
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
        args = parser.parse_args(argv)
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
    except Exception as exc:  # the last line of defence: a user never sees a traceback
        if os.environ.get("DETSCOPE_DEBUG"):
            raise
        where = getattr(args, "path", None) or getattr(args, "model", None) or ""
        sys.stderr.write(f"error: {where}: unexpected {type(exc).__name__}: {exc} "
                         "(set DETSCOPE_DEBUG=1 for details)\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
