"""Annotator review in the window: keys to verdicts, each committed to the review file when it is made.

Review ▸ Start review… picks a review file (a new one in detscope's data folder by default; an existing one
resumes it), collects every opened image's detections on the pool (the detections cache first, as an
evaluation does), registers them at the current threshold, and shows the first image nobody has reviewed.
From then on the image panel shows the review's detections (``browser.known``), the review panel lists them
with their verdicts, and each key of the Review menu is one :class:`~detscope.core.review.store.ReviewStore`
call on the GUI thread (a few milliseconds: the store lives here, where it is used).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QFileDialog, QGraphicsRectItem, QWidget

from ..panels.image_panel import ImagePanel
from ..panels.image_view import LABEL_Z, LabelItem
from ..panels.review_panel import STATE_TEXT, VERDICT_TEXT, HelpOverlay, ReviewPanel, key_text
from ..qt.bridge import Bridge
from .browser import ImageBrowser
from .session import ModelSession

STATE_MARK = {"done": "✓ ", "relabel": "✎ ", "skip": "↷ "}
MISSED_COLOUR = QColor(255, 215, 0)


def _progress_line(path: Path) -> str:
    """On the pool, with a connection of its own (WAL lets it read beside the writer): the progress line.
    Counting a 100,000-verdict file takes a few milliseconds that a key press need not wait for."""
    from detscope.core.review.store import ReviewStore

    with ReviewStore.open(path) as store:
        return store.progress().line()


class ReviewController(QObject):
    message = Signal(str)
    failed = Signal(str)
    changed = Signal()                    # a verdict was committed, or the review opened or closed

    def __init__(self, session: ModelSession, browser: ImageBrowser, image_panel: ImagePanel, bridge: Bridge,
                 pool: ThreadPoolExecutor, window: QWidget):
        super().__init__(window)
        self.session = session
        self.browser = browser
        self.image_panel = image_panel
        self.view = image_panel.view
        self.bridge = bridge
        self.pool = pool
        self.window = window
        self.panel = ReviewPanel()
        self.help = HelpOverlay(image_panel)
        self.dock = None
        self.store = None                     # the open ReviewStore
        self.key_of: dict[Path, str] = {}     # opened image -> its key
        self.path_of: dict[str, Path] = {}
        self.current: str | None = None       # the key of the image on screen
        self.job = None
        self._missed_items: list = []
        self._pending_box = None              # a drawn box waiting for its class
        self._picking = None                  # what the class picker is for: ("wrong_class", target) / ("missed", target)
        self._last_class: int | None = None
        self._progress_future = None
        self._progress_again = False
        self._known_before = browser.known
        browser.known = self._known
        browser.image_shown.connect(self._image_shown)
        browser.detections_shown.connect(self._detections_shown)
        browser.files_listed.connect(lambda _paths: self.close("other images were opened"))
        session.opened.connect(lambda _path: self.close("another model was opened"))
        session.model_ready.connect(self._model_ready)
        image_panel.filter_changed.connect(self._decorate)
        self.view.box_clicked.connect(self._box_clicked)
        self.view.box_edited.connect(self._box_edited)
        self.view.box_drawn.connect(self._box_drawn)
        p = self.panel
        p.target_selected.connect(self._target_selected)
        p.filter_chosen.connect(lambda _f: self.relist(keep_current=False))
        p.comment_done.connect(self._give_back_keys)
        p.picker.picked.connect(self._class_picked)
        p.picker.cancelled.connect(self._pick_cancelled)

    @property
    def active(self) -> bool:
        return self.store is not None

    def attach(self, dock) -> None:
        self.dock = dock

    def set_help_keys(self, rows: list[tuple[str, str]]) -> None:
        self.help.set_keys(rows)

    # --- opening ----------------------------------------------------------------------------------
    def start(self, path: str | Path | None = None) -> None:
        """Review ▸ Start review…: a review file (asked for when not given) of the model on the opened images."""
        from detscope.core.app.review import model_id, start_collecting
        from detscope.core.base.errors import UserError
        from detscope.core.review.store import default_review_path

        model = self.session.model
        if model is None or self.session.busy:
            self.failed.emit("open a model and let it load first (File ▸ Open model folder)")
            return
        paths = list(self.browser.all_paths)
        if not paths:
            self.failed.emit("open the images to review first (File ▸ Open images or Open image folder)")
            return
        if self.job is not None and not self.job.future.done():
            self.message.emit("the review is being prepared already")
            return
        try:
            ident = model_id(model)
        except UserError as exc:
            self.failed.emit(str(exc))
            return
        if path is None:
            default = default_review_path(ident)
            default.parent.mkdir(parents=True, exist_ok=True)
            chosen, _ = QFileDialog.getSaveFileName(
                self.window, "Start or resume a review", str(default), "Reviews (*.review.db *.db);;All files (*)",
                options=QFileDialog.Option.DontConfirmOverwrite)
            if not chosen:
                return
            path = chosen
        self.close(None)
        path = Path(path)
        threshold = self.image_panel.threshold
        self.job = job = start_collecting(self.session.host, paths, model, pool=self.pool)
        generation = self.session.generation
        self.bridge.track(f"Preparing the review of {len(paths)} images", job.future, cancel=job.cancel)
        self.message.emit(f"preparing the review: detections of {len(paths)} images…")
        self.bridge.watch(job.future, lambda got: self._collected(got, path, ident, threshold, generation),
                          lambda exc: self.failed.emit(self.bridge.report(exc, "review")),
                          lambda: self.message.emit("review cancelled"))

    def _collected(self, collected, path: Path, ident, threshold: float, generation: int) -> None:
        from detscope.core.app.review import add_collected
        from detscope.core.base.errors import UserError
        from detscope.core.review.store import ReviewStore

        self.job = None
        if generation != self.session.generation or list(collected.paths) != list(self.browser.all_paths):
            self.message.emit("the model or the images changed while the review was prepared; start it again")
            return
        store = None
        try:
            if path.exists():
                store = ReviewStore.open(path, model=ident)
                resumed = True
            else:
                store = ReviewStore.create(path, ident, threshold=threshold, labels=self.session.class_names(),
                                           model_dir=self.session.path)
                resumed = False
            add_collected(store, collected)
        except UserError as exc:
            if store is not None:
                store.close()
            self.failed.emit(str(exc))
            return
        self.open_store(store, dict(zip(collected.paths, collected.keys)), resumed)

    def open_store(self, store, key_of: dict, resumed: bool = False) -> None:
        """Review with ``store`` (opened here, on the GUI thread) the opened images ``key_of`` names
        (path -> image key); the first image nobody has reviewed is shown."""
        from detscope.core.review.store import ALL_KINDS, CLEARED

        self.store = store
        path = store.path
        self.key_of = {Path(p): k for p, k in key_of.items()}
        self.path_of = {k: p for p, k in self.key_of.items()}
        self.panel.picker.set_classes(store.labels or self.session.class_names())
        self.panel.set_filters(store.labels, [k for k in ALL_KINDS if k != CLEARED])
        self.panel.set_review(f"Review: <b>{path.name}</b> — {store.model.name} {store.model.checkpoint}, "
                              f"threshold {store.threshold:g}, annotator {store.annotator}")
        self.panel.title.setToolTip(str(path))
        if abs(self.image_panel.threshold - store.threshold) > 1e-9:
            self.image_panel.set_threshold(store.threshold)
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()
        self.relist(keep_current=True)
        self._update_progress()
        first = store.next_unreviewed()
        if first is not None and first in self.path_of:
            self.go_to(first)
        elif self.browser.shown is not None:
            self._image_shown(self.browser.shown)
        self.message.emit(f"{'resumed' if resumed else 'started'} the review {path.name}: "
                          f"{store.progress().line()} — ? or F1 lists the keys")
        self.view.setFocus()
        self.changed.emit()

    def close(self, why: str | None = None) -> None:
        """Review ▸ Close review (or the model or images changed): the file keeps every verdict."""
        if self.job is not None and not self.job.future.done():
            self.job.cancel()
        self.job = None
        if self.store is None:
            return
        name = self.store.path.name
        self.store.close()
        self.store = None
        self.current = None
        self._clear_missed()
        self.view.set_drawing(False)
        self.view.edit_box(-1)
        self.panel.picker.hide()
        self.panel.set_review("No review open — Review ▸ Start review… (Ctrl+Shift+R)")
        self.panel.set_progress("")
        self.panel.set_rows([])
        if self.browser.all_paths and not why:
            self.browser.show_only(None)
        if self.browser.shown is not None and self.image_panel.image is not None and not why:
            self.browser.reshow()
        self.message.emit(f"closed the review {name}" + (f": {why}" if why else ""))
        self.changed.emit()

    def _model_ready(self, model) -> None:
        if self.store is None or model is None:
            return
        from detscope.core.app.review import model_id
        from detscope.core.base.errors import UserError

        try:
            same = (model_id(model).fingerprint, model.checkpoint_name or "") == \
                (self.store.model.fingerprint, self.store.model.checkpoint)
        except UserError:
            same = False
        if not same:
            self.close("the model's weights changed (the review is of the checkpoint it started with)")

    # --- the images -----------------------------------------------------------------------------------
    def _known(self, path: Path):
        """The review's detections of an image (for the browser), else whatever was known before."""
        key = self.key_of.get(Path(path)) if self.store is not None else None
        if key is not None:
            return self._detections(key)
        return self._known_before(path) if self._known_before is not None else None

    def _detections(self, key: str):
        """The image's detections at the review's threshold, as the annotator corrected their boxes, with
        each row's index in ``extras["review_index"]`` (the panel's filters keep it alongside)."""
        import numpy as np

        from detscope.core.detect.detections import Detections

        entry = self.store.image(key)
        cur = self.store.verdicts(key)
        boxes, scores, cids, labels = [], [], [], []
        for d in entry.detections:
            v = cur.get(f"d{d.index}")
            boxes.append(v.box if v is not None and v.kind == "bad_box" else d.box)
            scores.append(d.score)
            cids.append(d.class_id)
            labels.append(self.store.class_name(d.class_id))
        n = len(boxes)
        dets = Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                          np.asarray(cids, np.int64), tuple(labels), entry.width, entry.height,
                          extras={"review_index": np.arange(n, dtype=np.int64)})
        return dets

    def _image_shown(self, path: Path) -> None:
        if self.store is None:
            return
        self.current = self.key_of.get(Path(path))
        self.view.set_drawing(False)
        if self.current is not None:     # (the browser may have shown the model's own detections, kept before)
            self.image_panel.set_detections(self._detections(self.current))
        self._refresh(select_first=True)

    def _detections_shown(self, dets) -> None:
        """The model ran on the image again (a reload): the review's detections stay the ones shown."""
        if self.store is not None and self.current is not None and "review_index" not in dets.extras:
            self.image_panel.set_detections(self._detections(self.current))
            self._refresh()

    def go_to(self, key: str) -> None:
        path = self.path_of.get(key)
        if path is None:
            return
        if path not in self.browser.paths:
            self.panel.filter.setCurrentIndex(0)        # all images: the one asked for is filtered out
        if path in self.browser.paths:
            self.browser.go(self.browser.paths.index(path))

    def relist(self, keep_current: bool = True) -> None:
        """The image list as the review's filter has it, each image marked with its state."""
        if self.store is None:
            return
        keys = [k for k in self.store.filter(**self.panel.current_filter()) if k in self.path_of]
        states = {k: self.store.state(k) for k in keys}
        captions = [STATE_MARK.get(states[k], "") + self.path_of[k].name for k in keys]
        self.browser.show_only([self.path_of[k] for k in keys], captions, keep_current=keep_current)
        if not keys:
            self.message.emit("no image passes this filter")

    def next_unreviewed(self) -> None:
        if not self._require():
            return
        key = self.store.next_unreviewed(after=self.current)
        if key is None:
            self.message.emit(f"every image is reviewed — {self.store.progress().line()}")
            return
        self.go_to(key)

    # --- showing the verdicts -----------------------------------------------------------------------
    def _refresh(self, select_first: bool = False, select: str | None = None) -> None:
        """The review panel's rows, the tags on the boxes, the drawn boxes and the progress, from the store."""
        key = self.current
        if self.store is None or key is None:
            self.panel.set_rows([])
            self._clear_missed()
            return
        entry = self.store.image(key)
        cur = self.store.verdicts(key)
        rows = []
        for d in entry.detections:
            v = cur.get(f"d{d.index}")
            name = self.store.class_name(d.class_id)
            text = f"#{d.index + 1} {name} {d.score:.2f}"
            if v is not None and v.kind in ("wrong_class", "bad_box") and v.class_id is not None:
                text += f" → {self.store.class_name(v.class_id)}"
            rows.append((f"d{d.index}", d.class_id, text, v.kind if v else None))
        for t, v in cur.items():
            if t.startswith("m"):
                rows.append((t, v.class_id, f"drawn: {self.store.class_name(v.class_id)}", v.kind))
        keep = select if select is not None else ("" if select_first else self.panel.target)
        self.panel.set_rows(rows, select=keep)
        state = cur.get("image")
        self.panel.set_image_line(self.path_of[key].name, state.kind if state else None,
                                  state.comment if state else None)
        self._decorate(cur)
        self._select_shown(self.panel.target)

    def _decorate(self, cur: dict | None = None) -> None:
        """Each shown box's tag says its verdict; drawn boxes are drawn (after any rebuild of the boxes)."""
        if self.store is None or self.current is None:
            return
        shown = self.image_panel.shown
        cur = self.store.verdicts(self.current) if cur is None else cur
        if shown is not None and "review_index" in shown.extras:
            for row, (tag, index) in enumerate(zip(self.view.labels, shown.extras["review_index"])):
                v = cur.get(f"d{int(index)}")
                if v is None:
                    continue
                label = shown.labels[row]
                if v.class_id is not None and v.kind in ("wrong_class", "bad_box"):
                    label = f"{label} → {self.store.class_name(v.class_id)}"
                tag.restyle(f"{VERDICT_TEXT[v.kind][0]} {label} {float(shown.scores[row]):.2f}", tag.colour)
        self._draw_missed(cur)

    def _draw_missed(self, cur: dict) -> None:
        self._clear_missed()
        scene = self.view.scene()
        for t, v in cur.items():
            if not t.startswith("m"):
                continue
            x0, y0, x1, y1 = v.box
            item = QGraphicsRectItem(QRectF(x0, y0, x1 - x0, y1 - y0))
            pen = QPen(MISSED_COLOUR, 3 if t == self.panel.target else 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(LABEL_Z - 1)
            scene.addItem(item)
            tag = LabelItem(f"+ {self.store.class_name(v.class_id)}", MISSED_COLOUR, self.view.label_font)
            tag.setPos(x0, y0)
            scene.addItem(tag)
            self._missed_items += [item, tag]

    def _clear_missed(self) -> None:
        for item in self._missed_items:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._missed_items = []

    def _update_progress(self) -> None:
        """Count again on the pool (one count at a time; verdicts made meanwhile ask for one more)."""
        if self.store is None:
            return
        if self._progress_future is not None and not self._progress_future.done():
            self._progress_again = True
            return
        self._progress_again = False
        store = self.store
        self._progress_future = future = self.pool.submit(_progress_line, store.path)
        self.bridge.watch(future, lambda got: self._progress_counted(store, got),
                          lambda exc: self._progress_counted(store, None, exc))

    def _progress_counted(self, store, line: str | None, exc: BaseException | None = None) -> None:
        if store is not self.store:
            return
        if exc is not None:
            self.failed.emit(self.bridge.report(exc, "review progress"))
        else:
            self.panel.set_progress(line)
        if self._progress_again:
            self._update_progress()

    # --- selecting ----------------------------------------------------------------------------------
    def _row_of(self, target: str) -> int:
        """The shown row of detection target ``d<N>`` (-1: not shown, or not a detection)."""
        shown = self.image_panel.shown
        if not target.startswith("d") or shown is None or "review_index" not in shown.extras:
            return -1
        hits = [r for r, i in enumerate(shown.extras["review_index"]) if int(i) == int(target[1:])]
        return hits[0] if hits else -1

    def _target_selected(self, target: str) -> None:
        self._select_shown(target)
        if self.store is not None and self.current is not None and self._missed_items:
            self._draw_missed(self.store.verdicts(self.current))      # the selected drawn box drawn thicker

    def _select_shown(self, target: str) -> None:
        row = self._row_of(target)
        if row >= 0:
            self.image_panel.table.selectRow(row)
        else:
            self.view.highlight(-1)
        if self.view.editing >= 0:
            self.view.edit_box(row)

    def _box_clicked(self, row: int) -> None:
        shown = self.image_panel.shown
        if self.store is None or row < 0 or shown is None or "review_index" not in shown.extras:
            return
        self.panel.select(f"d{int(shown.extras['review_index'][row])}")

    def step_detection(self, delta: int) -> None:
        if self._require():
            self.panel.step(delta)

    # --- verdicts (each one commit) ---------------------------------------------------------------------
    def _require(self, detection: bool = False) -> bool:
        if self.store is None:
            self.message.emit("no review open — Review ▸ Start review… (Ctrl+Shift+R)")
            return False
        if self.current is None:
            self.message.emit("this image is not in the review")
            return False
        if detection and not self.panel.target.startswith("d"):
            self.message.emit("select a detection first (J and K step through them)")
            return False
        return True

    def _commit(self, call, *args, advance: bool = False, **kwargs):
        from detscope.core.base.errors import UserError

        try:
            verdict = call(*args, **kwargs)
        except UserError as exc:
            self.failed.emit(str(exc))
            return None
        target = verdict.target if verdict.kind != "cleared" or not verdict.target.startswith("m") else ""
        self._refresh(select=target)
        if advance:
            self.panel.step(1)
        self._update_progress()
        self.changed.emit()
        return verdict

    def judge(self, kind: str) -> None:
        """C, D, X: correct, duplicate, false positive for the selected detection (then the next one)."""
        if self._require(detection=True):
            index = int(self.panel.target[1:])
            self._commit(self.store.judge, self.current, index, kind, advance=True)

    def wrong_class(self) -> None:
        """W: type the right class of the selected detection (or a new class for a drawn box)."""
        if not self._require():
            return
        target = self.panel.target
        if not target:
            self.message.emit("select a detection first (J and K step through them)")
            return
        self._picking = ("wrong_class", target)
        what = f"#{int(target[1:]) + 1}" if target.startswith("d") else "the drawn box"
        self.panel.picker.ask(f"The right class of {what}:")

    def bad_box(self) -> None:
        """E: handles on the selected detection's corners; dragging one records the corrected box."""
        if not self._require(detection=True):
            return
        if self.view.editing >= 0:
            self.view.edit_box(-1)
            return
        row = self._row_of(self.panel.target)
        if row < 0:
            self.message.emit("the selected detection is hidden by the score or class filter")
            return
        self.view.edit_box(row)
        self.message.emit("drag a corner to correct the box (E again: done)")

    def _box_edited(self, row: int, box) -> None:
        shown = self.image_panel.shown
        if self.store is None or self.current is None or shown is None or "review_index" not in shown.extras:
            return
        index = int(shown.extras["review_index"][row])
        before = self.store.verdicts(self.current).get(f"d{index}")
        cid = before.class_id if before is not None and before.kind in ("wrong_class", "bad_box") else None
        if self._commit(self.store.judge, self.current, index, "bad_box", box=box, class_id=cid) is not None:
            self.image_panel.set_detections(self._detections(self.current))    # the corrected box stays drawn
            self._refresh(select=f"d{index}")
            self.view.edit_box(self._row_of(f"d{index}"))

    def missed(self) -> None:
        """M: the next drag on the image draws a box round an object the model missed."""
        if not self._require():
            return
        on = not self.view.drawing
        self.view.set_drawing(on)
        self.message.emit("drag a box round the missed object (M again: cancel)" if on else "drawing cancelled")

    def _box_drawn(self, box) -> None:
        self.view.set_drawing(False)
        if self.store is None or self.current is None:
            return
        self._pending_box = box
        self._picking = ("missed", None)
        preset = self.store.class_name(self._last_class) if self._last_class is not None else ""
        self.panel.picker.ask("The class of the missed object:", preset)

    def _give_back_keys(self) -> None:
        """The image has the keyboard again (also after a completer's popup hands focus to the next field)."""
        self.view.setFocus()
        QTimer.singleShot(0, self.view.setFocus)

    def _class_picked(self, cid: int) -> None:
        what, target = self._picking or (None, None)
        self._picking = None
        self._give_back_keys()
        if self.store is None or self.current is None or what is None:
            return
        self._last_class = cid
        if what == "missed":
            box, self._pending_box = self._pending_box, None
            self._commit(self.store.add_missed, self.current, box, cid)
        elif target.startswith("m"):
            v = self.store.verdicts(self.current).get(target)
            if v is not None:
                self._commit(self.store.add_missed, self.current, v.box, cid, target=target)
        else:
            index = int(target[1:])
            before = self.store.verdicts(self.current).get(target)
            if before is not None and before.kind == "bad_box":      # keep the corrected box, fix the class too
                self._commit(self.store.judge, self.current, index, "bad_box", box=before.box, class_id=cid)
            else:
                self._commit(self.store.judge, self.current, index, "wrong_class", class_id=cid, advance=True)

    def _pick_cancelled(self) -> None:
        self._picking = self._pending_box = None
        self._give_back_keys()

    def clear(self) -> None:
        """Backspace: the selected detection has no verdict any more; a drawn box is removed."""
        if not self._require():
            return
        target = self.panel.target
        if target and target in self.store.verdicts(self.current):
            self._commit(self.store.clear, self.current, target)
            if target.startswith("d"):
                self.image_panel.set_detections(self._detections(self.current))
                self._refresh(select=target)

    def set_state(self, state: str) -> None:
        """A, R, S: the image is done, needs relabelling, or is skipped (with the comment); then the next
        image nobody has reviewed."""
        if not self._require():
            return
        key = self.current
        comment = self.panel.comment.text().strip() or None
        if self._commit(self.store.set_state, key, state, comment) is None:
            return
        self.message.emit(f"{self.path_of[key].name}: {STATE_TEXT[state]}")
        self.relist(keep_current=True)
        after = self.store.next_unreviewed(after=key)
        if after is not None and after != key:
            self.go_to(after)
        elif after is None:
            self.message.emit(f"every image is reviewed — {self.store.progress().line()}")

    def focus_comment(self) -> None:
        """T: type a comment on the image (Enter: back to the image; A, R or S keeps it with the state)."""
        if self._require():
            self.panel.comment.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.panel.comment.selectAll()

    def focus_filter(self) -> None:
        """Ctrl+Shift+F: choose which images the list shows."""
        if self._require():
            self.panel.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.panel.filter.showPopup()

    def toggle_help(self) -> None:
        self.help.toggle()


def help_rows(actions_by_name: dict, table) -> list[tuple[str, str]]:
    """The help overlay's rows, from the Review menu of the action table (so it never disagrees with it)."""
    rows: list[tuple[str, str]] = [("", "Review keys")]
    for act in table:
        if act.handler.startswith("review.") and act.keys:
            rows.append((key_text(actions_by_name[act.name].shortcuts()), act.text.replace("&", "")))
    for name in ("next_image", "previous_image"):
        if name in actions_by_name:
            rows.append((key_text(actions_by_name[name].shortcuts()), actions_by_name[name].text().replace("&", "")))
    rows += [("", "With the mouse"), ("drag a corner", "bad box (after E)"), ("drag", "a missed object (after M)"),
             ("Enter / Esc", "pick the typed class / give up")]
    return rows
