"""``inspect --json`` of a model folder none of whose files changed since it was last read: printed from a cache.

Reading a big model takes seconds (a 50,000-variable SavedModel: two), printing what was printed before takes
none. The first ``inspect --json`` of a folder reads it (:func:`~.inventory.build_inventory`) and keeps the
line it printed under detscope's data folder (``inspect-cache/``), beside a key naming everything that line
depends on:

* the path as given, the working folder and the checkpoint asked for;
* what recognising the folder found (it runs every time, so a part that appeared or went is seen);
* the identity (size, modification and change times, inode) of every file and folder of the model folder, a
  few levels down, and of every file recognition points at outside it (a label map two folders up);
* detscope's own code (the same identity of each of its modules), and the cache's format.

When all of it is the same the line is printed from the cache and no file of the model is read. Only folders
with a big graph or index (:data:`BIG_GRAPH`, :data:`BIG_INDEX`) are looked up, and only those that took a
while to read (:data:`MIN_SECONDS`) are kept. A change time
cannot be set back by hand, so a file rewritten in place is always seen. Nothing is written inside the model
folder; a cache that cannot be read or written is passed over, and the folder is read as if there were none.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from . import folders
from ..base.paths import data_dir

FORMAT = 1
CACHE_FOLDER = "inspect-cache"
KEEP = 32             # folders whose line is kept; the least recently written go first
MAX_ENTRIES = 5_000   # a folder with more files than this is not cached: its key would cost what it saves
DEPTH = 3             # levels of the model folder looked at (an export: saved_model/variables/)
MIN_SECONDS = 0.5     # a folder read faster than this is not kept: printing it again costs no more
BIG_GRAPH = 8 << 20   # a saved_model.pb this big (a 50,000-variable model's is 88 MB) ...
BIG_INDEX = 2 << 20   # ... or a checkpoint index this big (some 30,000 entries) may be worth keeping
CODE = Path(__file__).resolve().parents[1]   # detscope.core


def inspect_json(path, checkpoint: str | None = None) -> str:
    """The line ``inspect PATH --json`` prints (with its newline), from the cache when nothing changed."""
    mf = folders.recognise(path)
    key = _key(path, checkpoint, mf) if _big(mf) else None
    if key is not None:
        text = _read(key)
        if text is not None:
            return text
    from .inventory import build_inventory

    began = time.perf_counter()
    inv = build_inventory(mf, checkpoint=checkpoint, tree=False)
    text = json.dumps(inv.as_json()) + "\n"
    if key is not None and time.perf_counter() - began >= MIN_SECONDS:
        _write(key, text)
    return text


def _big(mf: folders.ModelFolder) -> bool:
    """Whether reading the folder may take a while (a graph or an index of some megabytes): only such folders
    are looked up and kept, so that the others pay nothing for the cache."""
    for part, size in ((mf.saved_model_pb, BIG_GRAPH), (mf.selected.index if mf.selected else None, BIG_INDEX)):
        try:
            if part is not None and os.stat(part).st_size >= size:
                return True
        except OSError:
            pass
    return False


def _identity(st: os.stat_result) -> list:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode]


def _tree(top: Path, budget: list[int], levels: int = DEPTH) -> list | None:
    """``[relative path, identity]`` of what is in ``top``, ``levels`` levels down; None past the entry budget."""
    out = []
    pending = [(top, 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                budget[0] -= 1
                if budget[0] < 0:
                    return None
                st = entry.stat()
                out.append([os.path.relpath(entry.path, top), _identity(st)])
                if entry.is_dir() and depth + 1 < levels:
                    pending.append((Path(entry.path), depth + 1))
    return out


def _code() -> list:
    """detscope's own code as files: its modules, or a packaged app's executable (whose modules are not files)."""
    code = [[str(p.relative_to(CODE)), _identity(p.stat())] for p in sorted(CODE.rglob("*.py"))]
    if getattr(sys, "frozen", False):
        code.append([sys.executable, _identity(os.stat(sys.executable))])
    return code


def _key(path, checkpoint: str | None, mf: folders.ModelFolder) -> str | None:
    """Everything the printed line depends on, as one line of JSON; None when the folder is not cached."""
    try:
        given = Path(path)
        top = given if given.is_dir() else given.parent
        budget = [MAX_ENTRIES]
        files = _tree(top, budget)
        if files is None:
            return None
        named = sorted({str(p) for p in _paths(mf)})
        outside = [[p, _identity(os.stat(p)) if os.path.exists(p) else None] for p in named]
        # the folders of the parts found outside the model folder, one level (a checkpoint's data shards)
        inside = str(top.resolve()) + os.sep
        beside = []
        for folder in sorted({os.path.dirname(os.path.realpath(p)) for p in named}):
            if not (folder + os.sep).startswith(inside) and os.path.isdir(folder):
                listed = _tree(Path(folder), budget, 1)
                if listed is None:
                    return None
                beside.append([folder, listed])
        return json.dumps({"format": FORMAT, "path": str(path), "cwd": os.getcwd(), "checkpoint": checkpoint,
                           "folder": repr(mf), "files": files, "named": outside, "beside": beside,
                           "code": _code()})
    except (OSError, ValueError):
        return None


def _paths(mf: folders.ModelFolder):
    """Every file recognition points at."""
    for p in (mf.saved_model_pb, mf.state_file, mf.pipeline_config, mf.params_yaml, mf.label_map, mf.keras_file,
              mf.tflite_file, mf.variables_prefix and mf.variables_prefix.with_name("variables.index")):
        if p is not None:
            yield p
    for ref in mf.checkpoints:
        yield ref.index


def _file(key: str) -> Path:
    import hashlib     # here: OpenSSL is loaded only for the big folders that are looked up

    return data_dir() / CACHE_FOLDER / (hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest() + ".json")


def _read(key: str) -> str | None:
    try:
        with open(_file(key), encoding="utf-8", errors="surrogateescape") as f:
            if f.readline().rstrip("\n") != key:
                return None
            text = f.read()
    except OSError:
        return None
    return text if text.endswith("\n") else None


def _write(key: str, text: str) -> None:
    target = _file(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(key + "\n")
            f.write(text)
        os.replace(temporary, target)
        kept = sorted(target.parent.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
