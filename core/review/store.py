"""The review store: one SQLite file (WAL journal) per review, every verdict committed when it is made.

A review is of one model (its fingerprint, as :func:`detscope.core.eval.cache.model_key` computes it, and
its checkpoint) on a list of images, each keyed by the hash of its bytes
(:func:`detscope.core.eval.cache.digest_file`), so a moved or renamed image keeps its verdicts. The
model's detections at the review's threshold are stored with each image (verdicts point at them by
index); nothing needs the model again to export or summarise.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. With WAL, a commit is a write to the
``-wal`` file; a process killed after :meth:`ReviewStore.judge` returned cannot lose it, since the bytes
are in the operating system's cache already (``NORMAL`` would do for ``kill -9``). ``FULL`` also fsyncs
the WAL on every commit, so a verdict survives a power cut or a kernel crash too; it costs one fsync per
key press (a few ms), against a person's pace of about one verdict a second.

Verdicts are an append-only log (``verdicts``: who, when, what); ``current`` points at each target's
latest one. A target is ``d<N>`` (the image's N-th detection at the threshold), ``m<hex>`` (a box the
annotator drew for a missed object) or ``image`` (the image's state: done, relabel, skip).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import UserError
from ..base.paths import data_dir

SCHEMA_VERSION = 1
DETECTION_VERDICTS = ("correct", "wrong_class", "bad_box", "duplicate", "false_positive")
IMAGE_STATES = ("done", "relabel", "skip")
MISSED = "missed"
CLEARED = "cleared"
CORRECTIONS = ("wrong_class", "bad_box", "duplicate", "false_positive", MISSED)
ALL_KINDS = DETECTION_VERDICTS + (MISSED,) + IMAGE_STATES + (CLEARED,)
IMAGE = "image"

_MODEL_MARKERS = ("saved_model.pb", "saved_model.pbtxt", "checkpoint", "pipeline.config", "fingerprint.pb")


class ReviewError(UserError):
    """A review file detscope cannot use (absent, not a review, another model's, a bad verdict)."""


def image_key(path: str | Path) -> str:
    """An image's key: the hash of its bytes, as the detections cache keys it."""
    from ..eval.cache import digest_file  # here: the cache loads NumPy, which `detscope inspect` never needs

    return digest_file(Path(path))


@dataclass(frozen=True)
class ModelId:
    """What a review is of: the model's fingerprint and checkpoint (``name`` is only shown)."""

    fingerprint: str
    checkpoint: str = ""
    name: str = ""

    @classmethod
    def from_parts(cls, *, checkpoint: str = "", name: str = "", **key_parts) -> "ModelId":
        """From what :func:`~detscope.core.eval.cache.model_key` hashes (``app.evaluation.key_parts``)."""
        from ..eval.cache import model_key  # here: the cache loads NumPy

        key = model_key(**key_parts)
        if key is None:
            raise ReviewError("this model cannot be fingerprinted (built by a factory function): "
                              "a review needs a model it can recognise again")
        return cls(key, checkpoint, name)


@dataclass(frozen=True)
class Detection:
    index: int
    box: tuple[float, float, float, float]     # (x0, y0, x1, y1) in image pixels
    score: float
    class_id: int


@dataclass(frozen=True)
class ImageEntry:
    key: str
    name: str                                  # as the exports write it (a path relative to the images)
    width: int
    height: int
    position: int
    detections: tuple[Detection, ...] = ()


@dataclass(frozen=True)
class Verdict:
    seq: int                                   # the log's row id: later verdicts have larger ones
    image_key: str
    target: str                                # "d<N>", "m<hex>" or "image"
    kind: str
    class_id: int | None = None
    box: tuple[float, float, float, float] | None = None
    comment: str | None = None
    annotator: str = ""
    at: str = ""                               # UTC, ISO 8601 with milliseconds
    model: str = ""
    checkpoint: str = ""

    @property
    def detection(self) -> int | None:
        return int(self.target[1:]) if self.target.startswith("d") else None


@dataclass(frozen=True)
class Progress:
    images: int
    reviewed: int                              # images with a state (done, relabel or skip)
    done: int
    relabel: int
    skipped: int
    corrections: int                           # current verdicts of a kind in CORRECTIONS
    verdicts: int                              # current detection and missed-box verdicts
    by_kind: dict = field(default_factory=dict)

    def line(self) -> str:
        extra = []
        if self.relabel:
            extra.append(f"{self.relabel} to relabel")
        if self.skipped:
            extra.append(f"{self.skipped} skipped")
        tail = f" ({', '.join(extra)})" if extra else ""
        return (f"{self.reviewed} / {self.images} images reviewed, {self.corrections} "
                f"correction{'s' if self.corrections != 1 else ''}{tail}")


def default_review_path(model: ModelId, when: _dt.datetime | None = None) -> Path:
    """``<data>/reviews/<model>-<checkpoint>-<time>.review.db``: in detscope's data folder."""
    when = when or _dt.datetime.now()
    stem = "-".join(s for s in (model.name or model.fingerprint[:12], model.checkpoint) if s)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return data_dir() / "reviews" / f"{stem}-{when:%Y%m%d-%H%M%S}.review.db"


def _inside_model_folder(path: Path, model_dir: Path | None) -> Path | None:
    folder = path.resolve().parent
    if model_dir is not None:
        m = Path(model_dir).resolve()
        if folder == m or m in folder.parents:
            return m
    for d in (folder, *folder.parents):
        try:
            if any((d / n).exists() for n in _MODEL_MARKERS) or (d / "variables" / "variables.index").exists():
                return d
        except OSError:
            continue
    return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    position INTEGER NOT NULL, added TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS images_position ON images(position);
CREATE TABLE IF NOT EXISTS detections (
    image_key TEXT NOT NULL REFERENCES images(key), idx INTEGER NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL, score REAL NOT NULL,
    class_id INTEGER NOT NULL, PRIMARY KEY (image_key, idx));
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, image_key TEXT NOT NULL, model TEXT NOT NULL, checkpoint TEXT NOT NULL,
    target TEXT NOT NULL, kind TEXT NOT NULL, class_id INTEGER, x0 REAL, y0 REAL, x1 REAL, y1 REAL,
    comment TEXT, annotator TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS verdicts_image ON verdicts(image_key);
CREATE TABLE IF NOT EXISTS current (
    image_key TEXT NOT NULL, target TEXT NOT NULL, verdict INTEGER NOT NULL REFERENCES verdicts(id),
    kind TEXT NOT NULL, PRIMARY KEY (image_key, target));
CREATE INDEX IF NOT EXISTS current_kind ON current(kind);
"""

_VERDICT_COLS = "id, image_key, target, kind, class_id, x0, y0, x1, y1, comment, annotator, at, model, checkpoint"


def _verdict(row) -> Verdict:
    box = None if row[5] is None else (row[5], row[6], row[7], row[8])
    return Verdict(row[0], row[1], row[2], row[3], row[4], box, row[9], row[10], row[11], row[12], row[13])


def _box(box) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ReviewError(f"a box is four numbers (x0, y0, x1, y1), not {box!r}") from None
    if not all(v == v and abs(v) != float("inf") for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise ReviewError(f"the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not a box (x0 <= x1, y0 <= y1)")
    return x0, y0, x1, y1


class ReviewStore:
    """One review file. Every method that records a verdict returns after its commit.

    Use from one thread (the window's): calls take a few milliseconds. ``annotator`` is written on
    every verdict this object records.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, annotator: str):
        self._db = conn
        self.path = path
        self.annotator = annotator
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        self.model = ModelId(meta["model"], meta.get("checkpoint", ""), meta.get("model_name", ""))
        self.threshold = float(meta.get("threshold", "0"))
        self.labels: dict[int, str] = {int(k): v for k, v in json.loads(meta.get("labels", "{}")).items()}
        self.created = meta.get("created", "")

    # --- opening ---------------------------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path, create: bool) -> sqlite3.Connection:
        mode = "rwc" if create else "rw"
        try:
            conn = sqlite3.connect(f"file:{path.resolve().as_posix()}?mode={mode}", uri=True,
                                   isolation_level=None, timeout=10.0)
            mode_now = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise ReviewError(f"{path}: not a review file ({exc})") from None
        if str(mode_now).lower() != "wal":
            conn.close()
            raise ReviewError(f"{path}: the file system does not allow SQLite's WAL journal here "
                              f"(journal mode {mode_now}); pick a local folder")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @classmethod
    def create(cls, path: str | Path, model: ModelId, *, threshold: float, labels: dict[int, str] | None = None,
               annotator: str | None = None, model_dir: str | Path | None = None) -> "ReviewStore":
        """A new review file at ``path`` (refused inside a model folder, or where a file is already)."""
        path = Path(path)
        if path.exists():
            raise ReviewError(f"{path}: a file is there already; open it to resume, or pick another name")
        inside = _inside_model_folder(path, Path(model_dir) if model_dir else None)
        if inside is not None:
            raise ReviewError(f"{path}: inside the model folder {inside}; detscope never writes there "
                              f"(pick another place, e.g. {default_review_path(model).parent})")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(path, create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            meta = {"schema": str(SCHEMA_VERSION), "model": model.fingerprint, "checkpoint": model.checkpoint,
                    "model_name": model.name, "threshold": repr(float(threshold)), "created": _now(),
                    "labels": json.dumps({str(k): v for k, v in (labels or {}).items()})}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, annotator or _user())

    @classmethod
    def open(cls, path: str | Path, *, annotator: str | None = None, model: ModelId | None = None) -> "ReviewStore":
        """An existing review file; with ``model``, refused when it is another model's or checkpoint's review."""
        path = Path(path)
        if not path.is_file():
            raise ReviewError(f"{path}: no such review file")
        conn = cls._connect(path, create=False)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is None:
            conn.close()
            raise ReviewError(f"{path}: an SQLite file, but not a detscope review")
        if int(row[0]) > SCHEMA_VERSION:
            conn.close()
            raise ReviewError(f"{path}: written by a newer detscope (review schema {row[0]})")
        store = cls(conn, path, annotator or _user())
        if model is not None and (model.fingerprint, model.checkpoint) != (store.model.fingerprint,
                                                                           store.model.checkpoint):
            store.close()
            raise ReviewError(f"{path}: a review of {store.model.name or store.model.fingerprint[:12]} "
                              f"{store.model.checkpoint}, not of the model opened "
                              f"({model.name or model.fingerprint[:12]} {model.checkpoint})")
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def integrity(self) -> str:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def class_name(self, class_id: int | None) -> str:
        return "" if class_id is None else self.labels.get(int(class_id), f"class {class_id}")

    # --- the images --------------------------------------------------------------------------------------

    def add_images(self, entries) -> list[ImageEntry]:
        """Register images (``(key, name, width, height, detections)``; detections as ``(box, score,
        class_id)``), in one commit. An image already there keeps its detections (its verdicts point at
        them); only those scoring at least the review's threshold are kept, best first."""
        out = []
        self._begin()
        try:
            pos = self._db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM images").fetchone()[0]
            for key, name, width, height, dets in entries:
                if self._db.execute("SELECT 1 FROM images WHERE key = ?", (key,)).fetchone():
                    continue
                self._db.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?)",
                                 (key, str(name), int(width), int(height), pos, _now()))
                pos += 1
                kept = sorted(((_box(b), float(s), int(c)) for b, s, c in dets if float(s) >= self.threshold),
                              key=lambda d: -d[1])
                self._db.executemany("INSERT INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     [(key, i, *b, s, c) for i, (b, s, c) in enumerate(kept)])
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        for key, *_ in entries:
            out.append(self.image(key))
        return out

    def add_image(self, key: str, name: str, width: int, height: int, detections=()) -> ImageEntry:
        return self.add_images([(key, name, width, height, list(detections))])[0]

    def image(self, key: str) -> ImageEntry:
        row = self._db.execute("SELECT key, name, width, height, position FROM images WHERE key = ?",
                               (key,)).fetchone()
        if row is None:
            raise ReviewError(f"{self.path}: image {key[:12]}… is not in this review")
        dets = tuple(Detection(i, (x0, y0, x1, y1), s, c) for i, x0, y0, x1, y1, s, c in self._db.execute(
            "SELECT idx, x0, y0, x1, y1, score, class_id FROM detections WHERE image_key = ? ORDER BY idx", (key,)))
        return ImageEntry(*row, detections=dets)

    def image_keys(self) -> list[str]:
        return [k for (k,) in self._db.execute("SELECT key FROM images ORDER BY position")]

    def images(self) -> list[ImageEntry]:
        return [self.image(k) for k in self.image_keys()]

    # --- recording (each call is one commit) ----------------------------------------------------------

    def _begin(self):
        self._db.execute("BEGIN IMMEDIATE")

    def _rollback(self):
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass

    def _record(self, image_key: str, target: str, kind: str, class_id=None, box=None, comment=None) -> Verdict:
        at = _now()
        self._begin()
        try:
            if not self._db.execute("SELECT 1 FROM images WHERE key = ?", (image_key,)).fetchone():
                raise ReviewError(f"{self.path}: image {image_key[:12]}… is not in this review")
            cur = self._db.execute(
                "INSERT INTO verdicts (image_key, model, checkpoint, target, kind, class_id, x0, y0, x1, y1, "
                "comment, annotator, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (image_key, self.model.fingerprint, self.model.checkpoint, target, kind,
                 None if class_id is None else int(class_id), *(box or (None,) * 4), comment, self.annotator, at))
            seq = cur.lastrowid
            if kind == CLEARED:
                self._db.execute("DELETE FROM current WHERE image_key = ? AND target = ?", (image_key, target))
            else:
                self._db.execute("INSERT OR REPLACE INTO current VALUES (?, ?, ?, ?)", (image_key, target, seq, kind))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return Verdict(seq, image_key, target, kind, None if class_id is None else int(class_id),
                       tuple(box) if box else None, comment, self.annotator, at, self.model.fingerprint,
                       self.model.checkpoint)

    def judge(self, image_key: str, detection: int, kind: str, *, class_id: int | None = None,
              box=None) -> Verdict:
        """A verdict on the image's ``detection``-th detection: correct, wrong_class (``class_id``: the right
        class), bad_box (``box``: the corrected box; ``class_id`` too when the class was wrong as well),
        duplicate, false_positive. Replaces the detection's earlier verdict."""
        if kind not in DETECTION_VERDICTS:
            raise ReviewError(f"'{kind}' is not a verdict on a detection ({', '.join(DETECTION_VERDICTS)})")
        n = self._db.execute("SELECT class_id FROM detections WHERE image_key = ? AND idx = ?",
                             (image_key, int(detection))).fetchone()
        if n is None:
            raise ReviewError(f"image {image_key[:12]}… has no detection {detection} at threshold {self.threshold:g}")
        if kind == "wrong_class":
            if class_id is None:
                raise ReviewError("a wrong-class verdict needs the right class")
            if int(class_id) == n[0]:
                raise ReviewError(f"the detection is of class {class_id} already: it is correct, not a wrong class")
        elif kind != "bad_box" and class_id is not None:
            raise ReviewError(f"a '{kind}' verdict takes no class")
        if kind == "bad_box":
            if box is None:
                raise ReviewError("a bad-box verdict needs the corrected box")
            box = _box(box)
        elif box is not None:
            raise ReviewError(f"a '{kind}' verdict takes no box")
        return self._record(image_key, f"d{int(detection)}", kind, class_id, box)

    def add_missed(self, image_key: str, box, class_id: int, *, target: str | None = None) -> Verdict:
        """A box drawn round an object the model missed (``target``: an earlier one's, to move or reclass it)."""
        if target is not None and not target.startswith("m"):
            raise ReviewError(f"{target!r} is not a drawn box")
        return self._record(image_key, target or f"m{uuid.uuid4().hex[:12]}", MISSED, int(class_id), _box(box))

    def clear(self, image_key: str, target: str) -> Verdict:
        """Undo: the target has no verdict any more (a drawn box is removed); the log keeps what it was."""
        return self._record(image_key, target, CLEARED)

    def set_state(self, image_key: str, state: str | None, comment: str | None = None) -> Verdict:
        """The image's state: done, relabel (needs relabelling), skip; None clears it."""
        if state is None:
            return self.clear(image_key, IMAGE)
        if state not in IMAGE_STATES:
            raise ReviewError(f"'{state}' is not an image state ({', '.join(IMAGE_STATES)})")
        return self._record(image_key, IMAGE, state, comment=comment or None)

    # --- reading ---------------------------------------------------------------------------------------

    def verdicts(self, image_key: str) -> dict[str, Verdict]:
        """The image's current verdicts by target (``d<N>``, ``m<hex>``, ``image``)."""
        rows = self._db.execute(f"SELECT {', '.join('v.' + c.strip() for c in _VERDICT_COLS.split(','))} "
                                "FROM current c JOIN verdicts v ON v.id = c.verdict WHERE c.image_key = ? "
                                "ORDER BY v.id", (image_key,))
        return {v.target: v for v in map(_verdict, rows)}

    def all_current(self) -> dict[str, dict[str, Verdict]]:
        out: dict[str, dict[str, Verdict]] = {}
        rows = self._db.execute(f"SELECT {', '.join('v.' + c.strip() for c in _VERDICT_COLS.split(','))} "
                                "FROM current c JOIN verdicts v ON v.id = c.verdict ORDER BY v.id")
        for v in map(_verdict, rows):
            out.setdefault(v.image_key, {})[v.target] = v
        return out

    def history(self, image_key: str | None = None) -> list[Verdict]:
        """Every verdict recorded, in order (clears included)."""
        if image_key is None:
            rows = self._db.execute(f"SELECT {_VERDICT_COLS} FROM verdicts ORDER BY id")
        else:
            rows = self._db.execute(f"SELECT {_VERDICT_COLS} FROM verdicts WHERE image_key = ? ORDER BY id",
                                    (image_key,))
        return [_verdict(r) for r in rows]

    def verdict(self, seq: int) -> Verdict | None:
        row = self._db.execute(f"SELECT {_VERDICT_COLS} FROM verdicts WHERE id = ?", (int(seq),)).fetchone()
        return None if row is None else _verdict(row)

    def progress(self) -> Progress:
        images = self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        kinds = dict(self._db.execute("SELECT kind, COUNT(*) FROM current GROUP BY kind"))
        return Progress(images, sum(kinds.get(s, 0) for s in IMAGE_STATES), kinds.get("done", 0),
                        kinds.get("relabel", 0), kinds.get("skip", 0), sum(kinds.get(k, 0) for k in CORRECTIONS),
                        sum(kinds.get(k, 0) for k in DETECTION_VERDICTS + (MISSED,)), kinds)

    def state(self, image_key: str) -> str | None:
        row = self._db.execute("SELECT kind FROM current WHERE image_key = ? AND target = 'image'",
                               (image_key,)).fetchone()
        return row[0] if row else None

    def next_unreviewed(self, after: str | None = None) -> str | None:
        """The first image without a state after ``after`` (in the review's order, wrapping round), else None."""
        start = -1
        if after is not None:
            row = self._db.execute("SELECT position FROM images WHERE key = ?", (after,)).fetchone()
            start = row[0] if row else -1
        q = ("SELECT key FROM images i WHERE NOT EXISTS (SELECT 1 FROM current c WHERE c.image_key = i.key "
             "AND c.target = 'image') AND position {} ? ORDER BY position LIMIT 1")
        row = self._db.execute(q.format(">"), (start,)).fetchone() or \
            self._db.execute(q.format("<="), (start,)).fetchone()
        return row[0] if row else None

    def effective_classes(self, image_key: str) -> set[int]:
        """The classes on the image as the annotator sees them: detections (reclassed) and drawn boxes."""
        cur = self.verdicts(image_key)
        out = set()
        for d in self.image(image_key).detections:
            v = cur.get(f"d{d.index}")
            out.add(v.class_id if v is not None and v.class_id is not None else d.class_id)
        out.update(v.class_id for t, v in cur.items() if t.startswith("m"))
        return out

    def filter(self, *, unreviewed: bool = False, disputed: bool = False, class_id: int | None = None,
               verdict: str | None = None) -> list[str]:
        """Image keys, in order, that pass every filter given: no state yet; disputed (a correction, or marked
        for relabelling); showing ``class_id`` (a detection, reclassed or not, or a drawn box); holding a
        current ``verdict`` of that kind (a detection verdict, ``missed`` or an image state)."""
        if verdict is not None and verdict not in ALL_KINDS[:-1]:
            raise ReviewError(f"'{verdict}' is not a verdict ({', '.join(ALL_KINDS[:-1])})")
        keys = self.image_keys()
        if unreviewed:
            stated = {k for (k,) in self._db.execute("SELECT image_key FROM current WHERE target = 'image'")}
            keys = [k for k in keys if k not in stated]
        if disputed:
            marks = ", ".join("?" * (len(CORRECTIONS) + 1))
            hit = {k for (k,) in self._db.execute(f"SELECT DISTINCT image_key FROM current WHERE kind IN ({marks})",
                                                  (*CORRECTIONS, "relabel"))}
            keys = [k for k in keys if k in hit]
        if verdict is not None:
            hit = {k for (k,) in self._db.execute("SELECT DISTINCT image_key FROM current WHERE kind = ?", (verdict,))}
            keys = [k for k in keys if k in hit]
        if class_id is not None:
            keys = [k for k in keys if int(class_id) in self.effective_classes(k)]
        return keys

    # --- the corrected ground truth ------------------------------------------------------------------------

    def corrected(self, image_key: str) -> list[tuple[tuple[float, float, float, float], int]]:
        """The image's boxes as the annotator corrected them, ``(box, class_id)``: every detection kept
        (correct or not judged: the pre-label is accepted), reclassed (wrong_class) or moved (bad_box),
        duplicates and false positives dropped, drawn boxes added."""
        cur = self.verdicts(image_key)
        out = []
        for d in self.image(image_key).detections:
            v = cur.get(f"d{d.index}")
            if v is None or v.kind == "correct":
                out.append((d.box, d.class_id))
            elif v.kind == "wrong_class":
                out.append((d.box, v.class_id))
            elif v.kind == "bad_box":
                out.append((v.box, v.class_id if v.class_id is not None else d.class_id))
        out += [(v.box, v.class_id) for t, v in cur.items() if t.startswith("m")]
        return out


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in the environment
        return os.environ.get("USER", "") or "unknown"
