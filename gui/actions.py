"""The window's actions, in one table: menu, text, shortcuts, handler, tip.

The main window builds its menu bar from :data:`MENUS` with :func:`build_menus`,
and no panel binds a window-wide key of its own: a key bound twice in one window
makes Qt report "Ambiguous shortcut overload" and run neither (``[`` and ``]``
once did exactly that). Handlers are named, not referenced: a dotted attribute
path on the window (``"image_panel.step_threshold"``, ``"sources.choose_camera"``),
resolved when the menus are built, so a misspelt one fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from PySide6.QtGui import QAction, QKeySequence

Key = QKeySequence.StandardKey
THRESHOLD_STEP = 0.05


@dataclass(frozen=True)
class Act:
    """One action: ``handler(*args)`` when triggered (``handler(*args, checked)`` when checkable)."""

    name: str                     # its key in what build_menus returns
    text: str
    handler: str                  # a dotted attribute path on the window
    keys: tuple = ()              # key sequences: strings ("Ctrl+I", "]") or standard keys
    args: tuple = ()
    tip: str = ""
    checkable: bool = False
    checked: bool = False


SEPARATOR = "separator"
RECENT = "recent"                 # the recent-models submenu goes here
DOCKS = "docks"                   # the docks' show/hide actions go here

MENUS: tuple[tuple[str, tuple], ...] = (
    ("&File", (
        Act("open_model_folder", "Open &model folder…", "model.choose_folder", (Key.Open,)),
        Act("open_model_file", "Open model &file (checkpoint .index, .keras, .h5)…", "model.choose_file"),
        RECENT,
        SEPARATOR,
        Act("open_images", "Open &images…", "sources.choose_images", ("Ctrl+I",)),
        Act("open_image_folder", "Open image f&older…", "sources.choose_image_folder", ("Ctrl+Shift+O",)),
        SEPARATOR,
        Act("save", "&Save annotated image…", "exports.save_annotated", (Key.Save,)),
        Act("copy", "&Copy annotated image", "exports.copy", ("Ctrl+Shift+C",)),
        SEPARATOR,
        Act("quit", "&Quit", "close", (Key.Quit,)),
    )),
    ("&Image", (
        Act("next_image", "&Next image", "browser.step", ("PgDown", "N"), args=(1,)),
        Act("previous_image", "&Previous image", "browser.step", ("PgUp", "P"), args=(-1,)),
        Act("first_image", "&First image", "browser.first", ("Home",)),
        Act("last_image", "&Last image", "browser.last", ("End",)),
        SEPARATOR,
        Act("labels", "Show &labels", "image_panel.set_labels_visible", ("L",), checkable=True, checked=True),
        Act("show_truth", "Show &ground truth", "evaluation.set_truth_visible", ("G",), checkable=True, checked=True,
            tip="Ground-truth boxes dashed; after an evaluation, detections right (green) or wrong (red), missed "
                "objects yellow"),
        Act("show_below", "Show boxes &below the threshold", "evaluation.set_ghosts_visible", ("B",),
            checkable=True, tip="The detections scoring under the threshold, dotted grey"),
        Act("raise_threshold", "Raise score threshold", "image_panel.step_threshold", ("]",),
            args=(THRESHOLD_STEP,)),
        Act("lower_threshold", "Lower score threshold", "image_panel.step_threshold", ("[",),
            args=(-THRESHOLD_STEP,)),
    )),
    ("&Source", (
        Act("camera", "&Camera…", "sources.choose_camera", ("Ctrl+K",), tip="Capture from a camera by its index"),
        Act("video", "&Video file…", "sources.choose_video", ("Ctrl+Shift+V",)),
        Act("stream", "Stream &URL…", "sources.choose_stream", ("Ctrl+U",)),
        SEPARATOR,
        Act("pause", "&Pause / play", "sources.toggle_pause", ("Space",)),
        Act("step_forward", "Step &forward", "sources.step", (".",), args=(1,)),
        Act("step_back", "Step &back (files)", "sources.step", (",",), args=(-1,)),
        Act("snapshot", "&Snapshot", "exports.snapshot", ("Ctrl+Shift+S",),
            tip="Save the frame and its detections (image + JSON) to the snapshot folder"),
        Act("snapshot_folder", "Snapshot f&older…", "exports.choose_snapshot_folder"),
        Act("hold_frames", "&Hold frames for their boxes", "live.set_hold_frames", checkable=True, checked=True,
            tip="Show each frame with its own detections (off: smooth video, boxes from the latest result)"),
        SEPARATOR,
        Act("stop_source", "S&top source", "sources.stop", ("Ctrl+Shift+X",)),
    )),
    ("&View", (
        Act("kiosk", "&Kiosk mode", "open_kiosk", ("Ctrl+Shift+K",),
            tip="Full screen for an unattended demo: the live source (or these images, looping) through the model"),
        Act("fit", "&Fit image", "image_panel.fit", ("F", "0")),
        Act("zoom_in", "Zoom &in", "image_panel.zoom", ("+", "="), args=(1.25,)),
        Act("zoom_out", "Zoom &out", "image_panel.zoom", ("-",), args=(0.8,)),
        Act("actual_pixels", "&Actual pixels", "image_panel.actual_size", ("1",)),
        Act("full_screen", "F&ull screen", "toggle_full_screen", ("F11",)),
        SEPARATOR,
        DOCKS,
    )),
    ("&Model", (
        Act("cancel", "&Cancel loading", "cancel_work", ("Escape",)),
        Act("reload", "&Reload", "model.reload", ("Ctrl+R",)),
        Act("template", "Restore into a &SavedModel…", "model.choose_template", ("Ctrl+T",)),
        Act("map_outputs", "&Map outputs by hand…", "model.choose_output_mapping", ("Ctrl+M",),
            tip="Say which output is boxes, scores and classes when the model follows no known convention"),
        SEPARATOR,
        Act("evaluate", "&Evaluate on the opened images", "evaluation.start", ("Ctrl+E",),
            tip="Run the model on every opened image and compare with the ground truth beside them"),
        Act("open_truth", "Open &ground truth…", "evaluation.choose_truth",
            tip="Read the opened images' annotations from a file or folder of your choice (COCO, VOC, CSV, YOLO, "
                "TFRecord, labelme) instead of what lies beside them"),
        Act("best_threshold", "Use the best-F1 &threshold", "evaluation.use_best_threshold",
            tip="Set the score threshold where the evaluation's F1 (all classes) is highest"),
        SEPARATOR,
        Act("compare_weights", "Compare &weights with…", "drift.choose", ("Ctrl+Shift+D",),
            tip="Diff the shown checkpoint's weights against another checkpoint: a drift column in the tree"),
        Act("clear_weights", "Clear weight c&omparison", "drift.clear", tip="Remove the drift column"),
        SEPARATOR,
        Act("open_b", "Open second model (&B)…", "compare.choose", ("Ctrl+Shift+B",),
            tip="Run a second model on the same images: its boxes dashed over the first's, and where they disagree"),
        Act("close_b", "Close second model (B)", "compare.close_b"),
    )),
    # Annotator review: the letters act only while a review is open (else they say how to start one).
    ("&Review", (
        Act("start_review", "&Start review…", "review.start", ("Ctrl+Shift+R",),
            tip="Judge the model's detections on the opened images, in a review file (new, or one to resume)"),
        Act("close_review", "&Close review", "review.close"),
        SEPARATOR,
        Act("review_correct", "&Correct", "review.judge", ("C",), args=("correct",)),
        Act("review_wrong_class", "&Wrong class (type the right one)…", "review.wrong_class", ("W",)),
        Act("review_bad_box", "Bad bo&x (drag its corners)", "review.bad_box", ("E",)),
        Act("review_duplicate", "&Duplicate", "review.judge", ("D",), args=("duplicate",)),
        Act("review_false_positive", "&False positive", "review.judge", ("X",), args=("false_positive",)),
        Act("review_missed", "&Missed object (draw its box)", "review.missed", ("M",)),
        Act("review_clear", "C&lear the verdict", "review.clear", ("Backspace",)),
        Act("review_next_detection", "Next detection", "review.step_detection", ("J",), args=(1,)),
        Act("review_previous_detection", "Previous detection", "review.step_detection", ("K",), args=(-1,)),
        SEPARATOR,
        Act("review_done", "Image &done", "review.set_state", ("A",), args=("done",)),
        Act("review_relabel", "Image needs &relabelling", "review.set_state", ("R",), args=("relabel",)),
        Act("review_skip", "S&kip image", "review.set_state", ("S",), args=("skip",)),
        Act("review_comment", "Commen&t on the image", "review.focus_comment", ("T",)),
        Act("review_next_unreviewed", "Next &unreviewed image", "review.next_unreviewed", ("U",)),
        Act("review_filter", "&Filter the images…", "review.focus_filter", ("Ctrl+Shift+F",)),
        Act("review_help", "&Keys of the review", "review.toggle_help", ("?", "F1")),
    )),
)


def table() -> list[Act]:
    """Every action of the table, in menu order."""
    return [a for _, entries in MENUS for a in entries if isinstance(a, Act)]


def key_sequences(act: Act) -> list[QKeySequence]:
    """The sequences an action answers to (a standard key may stand for several; needs a QGuiApplication)."""
    out: list[QKeySequence] = []
    for key in act.keys:
        out.extend(QKeySequence.keyBindings(key) if isinstance(key, Key) else [QKeySequence(key)])
    return [s for s in out if not s.isEmpty()]


def resolve(owner, dotted: str):
    """``owner.a.b`` for ``"a.b"``."""
    return reduce(getattr, dotted.split("."), owner)


def build_menus(window, places: dict[str, object] | None = None) -> dict[str, QAction]:
    """Fill ``window``'s menu bar from :data:`MENUS`; the actions by name.

    ``places`` maps the placeholders (:data:`RECENT`, :data:`DOCKS`) to a callable that is given the menu
    to fill at that point. Every action is added to the window too, so its shortcut works while the menu
    bar is hidden (full screen).
    """
    places = places or {}
    actions: dict[str, QAction] = {}
    bar = window.menuBar()
    for title, entries in MENUS:
        menu = bar.addMenu(title)
        for entry in entries:
            if entry == SEPARATOR:
                menu.addSeparator()
            elif isinstance(entry, str):
                places[entry](menu)
            else:
                actions[entry.name] = action = _make(window, entry)
                menu.addAction(action)
                window.addAction(action)
    return actions


def _make(window, act: Act) -> QAction:
    action = QAction(act.text, window)
    action.setObjectName(act.name)
    action.setShortcuts(key_sequences(act))
    action.setCheckable(act.checkable)
    if act.checkable:
        action.setChecked(act.checked)
    if act.tip:
        action.setStatusTip(act.tip)
        action.setToolTip(act.tip)
    handler, args = resolve(window, act.handler), act.args
    if act.checkable:
        action.triggered.connect(lambda checked=False: handler(*args, checked))
    else:
        action.triggered.connect(lambda _checked=False: handler(*args))
    return action
