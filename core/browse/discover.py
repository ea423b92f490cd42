"""Models below a folder that holds none itself, found without TensorFlow.

Users open a repository root, a ``Tensorflow/workspace`` or a Model Garden folder: no model is in
it, but models lie a few levels below. :func:`discover` walks a few levels down (breadth first,
never following links), skipping image folders, VCS folders, ``node_modules``, ``__pycache__`` and
virtualenvs, within a time budget and a cap on folders visited, and returns every model it found
with its kind (each candidate is recognised by :func:`.folders.recognise`). Nothing is picked:
:func:`check_opened` raises :class:`NoModelHere` listing them, for the user to choose one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import folders
from .folders import FolderError, ModelFolder

MAX_DEPTH = 4
TIME_BUDGET = 1.0          # seconds
MAX_DIRS = 2000            # folders visited at most
SKIP_NAMES = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env", ".env", ".tox",
              "site-packages", ".mypy_cache", ".pytest_cache", ".ipynb_checkpoints", ".idea", ".vscode",
              "variables", "assets"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_MARKERS = {"saved_model.pb", "saved_model.pbtxt", "checkpoint", "pipeline.config", "params.yaml"}


@dataclass(frozen=True)
class Found:
    path: Path
    kind: str


@dataclass
class Discovery:
    root: Path
    models: list[Found] = field(default_factory=list)
    stopped: str | None = None      # why the search stopped early ("after 1 s", "after 2000 folders")
    visited: int = 0


class NoModelHere(FolderError):
    """The opened folder holds no model itself, but models lie below it: ``models`` lists them.

    ``str()`` is one ``error:`` line, then "pass one of these:" and one path and kind per line.
    """

    def __init__(self, given: Path, found: Discovery):
        self.given, self.discovery, self.models = given, found, found.models
        super().__init__(self.message())

    def headline(self) -> str:
        n = len(self.models)
        what = "a model lies" if n == 1 else f"{n} models lie"
        more = f" (the search stopped {self.discovery.stopped}; there may be more)" if self.discovery.stopped else ""
        return f"{self.given} holds no model itself, but {what} below it{more}; detscope does not pick one"

    def choices(self) -> list[str]:
        """One ``path  [kind]`` per model, paths as the user wrote the opened folder."""
        return [f"{display(self.given, f.path)}  [{f.kind}]" for f in self.models]

    def message(self) -> str:
        return "\n".join([self.headline(), "pass one of these:", *("  " + c for c in self.choices())])


def display(given: Path, found: Path) -> str:
    """``found`` spelled under ``given`` as the user wrote it (``repo/a/b/export``)."""
    try:
        return str(Path(given) / found.relative_to(Path(given).expanduser().resolve()))
    except ValueError:
        return str(found)


def browsable(mf: ModelFolder) -> bool:
    """Whether the folder holds something to browse (a graph, a checkpoint, variables, a model file)."""
    return bool(mf.saved_model_pb or mf.checkpoints or mf.variables_prefix or mf.keras_file or mf.tflite_file)


def _skipped(entry: os.DirEntry) -> bool:
    name = entry.name
    if name in SKIP_NAMES or (name.startswith(".") and name not in (".",)):
        return True
    try:
        return os.path.isfile(os.path.join(entry.path, "pyvenv.cfg"))      # a virtualenv by any name
    except OSError:
        return True


def _is_image_folder(files: list[str]) -> bool:
    images = sum(1 for f in files if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES)
    return images > 0 and not any(folders.looks_like_model_part(Path(f)) for f in files)


def _model_files(names: list[str]) -> list[str]:
    return [n for n in names if os.path.splitext(n)[1].lower() in folders.KERAS_SUFFIXES + (folders.TFLITE_SUFFIX,)]


def _candidate(files: list[str], dirs: list[str]) -> bool:
    return bool(_MARKERS.intersection(files) or "saved_model" in dirs
                or any(f.endswith(".index") for f in files)
                or any(d in folders.CHECKPOINT_DIRS for d in dirs))


def discover(root: str | Path, *, max_depth: int = MAX_DEPTH, budget: float = TIME_BUDGET,
             max_dirs: int = MAX_DIRS) -> Discovery:
    """Models below ``root`` (not ``root`` itself), nearest first; a model's own subfolders are not searched."""
    start = Path(root).expanduser().resolve()
    result = Discovery(start)
    deadline = time.monotonic() + budget
    level = [start]
    for depth in range(1, max_depth + 1):
        below: list[Path] = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    children = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for entry in children:
                if time.monotonic() > deadline:
                    result.stopped = f"after {budget:g} s"
                    return result
                if result.visited >= max_dirs:
                    result.stopped = f"after {max_dirs} folders"
                    return result
                try:
                    if not entry.is_dir(follow_symlinks=False) or _skipped(entry):
                        continue
                except OSError:
                    continue
                result.visited += 1
                path = Path(entry.path)
                try:
                    with os.scandir(path) as inner:
                        listing = list(inner)
                except OSError:
                    continue
                files = [e.name for e in listing if _regular(e)]
                dirs = [e.name for e in listing if _directory(e)]
                if _is_image_folder(files):
                    continue
                if _candidate(files, dirs):
                    mf = _recognise(path)
                    if mf is not None:
                        result.models.append(Found(path, mf.kind))
                        continue      # its subfolders are its parts
                for name in _model_files(files):
                    mf = _recognise(path / name)
                    if mf is not None:
                        result.models.append(Found(path / name, mf.kind))
                below.append(path)
        level = below
        if not level:
            break
    return result


def _regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _directory(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _recognise(path: Path) -> ModelFolder | None:
    try:
        mf = folders.recognise(path)
    except (FolderError, OSError, ValueError):
        return None
    except Exception:  # noqa: BLE001 - a candidate that cannot be read is simply not offered
        return None
    return mf if browsable(mf) else None


def check_opened(path: str | Path) -> ModelFolder | None:
    """What ``path`` is, or :class:`NoModelHere` when it is a folder holding no model itself but models below.

    When the folder holds no model and none is found below, the original error is raised (and every other
    one, such as several SavedModels one level deeper, which names them already); when it holds one, its
    :class:`~.folders.ModelFolder` is returned.
    """
    given = Path(path)
    try:
        mf = folders.recognise(given)
    except folders.NothingToOpen:
        if not given.expanduser().is_dir():
            raise
        found = discover(given)
        if found.models:
            raise NoModelHere(given, found) from None
        raise
    if given.expanduser().is_dir() and not browsable(mf):
        found = discover(given)
        if found.models:
            raise NoModelHere(given, found)
    return mf
