"""What is this path? Recognise a model folder and its parts, without TensorFlow.

``recognise(path)`` takes whatever a user opened (a folder, a ``ckpt-N`` prefix, an
``.index`` or ``.data-*`` file, a ``saved_model.pb``, a ``.keras``/``.h5`` file) and
returns a :class:`ModelFolder`: its kind, the files that make it up, and findings for
the broken cases users meet (Git LFS pointers, missing data shards, a SavedModel
without ``saved_model.pb``, an empty or unrelated folder).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from ..formats import protos
from ..base import files
from ..base.errors import UserError
from ..base.findings import ERROR, INFO, WARNING, Finding

# Kinds, as reported in ``inspect --json``.
SAVED_MODEL = "saved_model"
CHECKPOINT_FOLDER = "checkpoint_folder"
CHECKPOINT = "checkpoint"
TF1_CHECKPOINT = "tf1_checkpoint"
OD_API_EXPORT = "od_api_export"
MODEL_GARDEN_EXPORT = "model_garden_export"
KERAS = "keras"
VARIABLES = "variables"
TFLITE = "tflite"

LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
_DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<count>\d{5})$")
_NUMBER_RE = re.compile(r"-(\d+)$")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TFLITE_SUFFIX = ".tflite"
# Label files found beside a .tflite model (the names TFLite examples and exporters use), before the usual ones.
TFLITE_LABEL_NAMES = ("labelmap.txt", "labels.txt", "label_map.txt", "labelmap.pbtxt", "label_map.pbtxt")
# Where exports and training runs keep their checkpoints, beside saved_model/ and pipeline.config.
CHECKPOINT_DIRS = ("checkpoint", "training", "train", "checkpoints", "ckpt")

STATE = protos.schema("checkpoint_state", [
    protos.message("CheckpointState",
                   protos.field("model_checkpoint_path", 1, "string"),
                   protos.field("all_model_checkpoint_paths", 2, "string", repeated=True),
                   protos.field("all_model_checkpoint_timestamps", 3, "double", repeated=True),
                   protos.field("last_preserved_timestamp", 4, "double")),
])["CheckpointState"]


class FolderError(UserError):
    """The path cannot be opened at all; ``str()`` is one line naming the file and the cause."""


class NothingToOpen(FolderError):
    """A folder holding no model part at all (models may lie further below it: see discover.py)."""


@dataclass
class CheckpointRef:
    """One checkpoint: an ``.index`` and the ``.data-*`` shards it names."""

    prefix: Path
    number: int | None = None  # N of ckpt-N; None for names without a number

    @property
    def name(self) -> str:
        return self.prefix.name

    @property
    def index(self) -> Path:
        return self.prefix.with_name(self.prefix.name + ".index")

    def data_files(self) -> list[Path]:
        return sorted(self.prefix.parent.glob(glob_escape(self.prefix.name) + ".data-*-of-*"))


@dataclass
class ModelFolder:
    path: Path                      # what the user opened
    kind: str
    root: Path                      # the folder the parts were found in
    saved_model: Path | None = None          # folder holding saved_model.pb and/or variables/
    saved_model_pb: Path | None = None
    variables_prefix: Path | None = None     # <saved_model>/variables/variables
    checkpoints: list[CheckpointRef] = field(default_factory=list)  # oldest first
    latest: CheckpointRef | None = None
    selected: CheckpointRef | None = None    # the checkpoint the user opened, else latest
    state_file: Path | None = None
    pipeline_config: Path | None = None
    params_yaml: Path | None = None
    label_map: Path | None = None
    keras_file: Path | None = None
    tflite_file: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    # What has been read from the folder's files, shared by everyone holding this folder (the inventory,
    # the loader, a checkpoint switch), so each file is parsed once per open: see parsed().
    _parsed: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getstate__(self):
        """Pickled (to the model's process) without what was read from its files: the other side reads its own."""
        state = dict(self.__dict__)
        state["_parsed"], state["_lock"] = {}, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def parsed(self, key, read):
        """``read()``'s result for ``key`` (a path, or a tuple naming what was read), read once.

        A failure is remembered too and raised again, so every caller sees the same one-line error.
        """
        with self._lock:
            if key not in self._parsed:
                try:
                    self._parsed[key] = (True, read())
                except Exception as exc:  # remembered and re-raised as it was, to every caller
                    self._parsed[key] = (False, exc)
            ok, value = self._parsed[key]
        if not ok:
            raise value
        return value

    def checkpoint(self, name: str | None) -> CheckpointRef | None:
        """The checkpoint called ``name`` (``ckpt-3``, a prefix path, or ``3``); the selected one for None."""
        if name is None:
            return self.selected
        wanted = Path(name).name
        if wanted.endswith(".index"):
            wanted = wanted[: -len(".index")]
        for ref in self.checkpoints:
            if ref.name == wanted or (wanted.isdigit() and ref.number == int(wanted)):
                return ref
        return None

    def require_checkpoint(self, name: str) -> CheckpointRef:
        """The checkpoint called ``name``, or a one-line error listing the ones there are."""
        ref = self.checkpoint(name)
        if ref is None:
            names = ", ".join(c.name for c in self.checkpoints) or "none"
            raise FolderError(f"{name} is not a checkpoint of {self.path} (have: {names})")
        return ref


MODEL_PART_SUFFIXES = (".index", ".pb", ".pbtxt", ".config", ".yaml", TFLITE_SUFFIX) + KERAS_SUFFIXES


def looks_like_model_part(path: Path) -> bool:
    """A file that belongs to a model folder (a checkpoint index, a graph, a config, a Keras file)."""
    return path.name == "checkpoint" or path.suffix.lower() in MODEL_PART_SUFFIXES


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def is_lfs_pointer(path: Path) -> bool:
    # only a regular file is opened: a FIFO or a device as a model part never blocks the sniff
    return files.head(path, len(LFS_MAGIC)) == LFS_MAGIC


def lfs_finding(path: Path) -> Finding:
    return Finding(ERROR, f"{path.name} is a Git LFS pointer, not the file; run `git lfs pull`", str(path))


def _number(prefix_name: str) -> int | None:
    m = _NUMBER_RE.search(prefix_name)
    return int(m.group(1)) if m else None


def _sort_key(ref: CheckpointRef):
    return (ref.number if ref.number is not None else -1, ref.name)


def _read_state(state_file: Path, folder: Path, findings: list[Finding]) -> tuple[str | None, list[str]]:
    """The latest checkpoint's name and all listed names from a ``checkpoint`` state file."""
    if is_lfs_pointer(state_file):
        findings.append(lfs_finding(state_file))
        return None, []
    state = STATE()
    try:
        data = files.read_bytes(state_file, what="checkpoint state file", limit=files.CONFIG_LIMIT)
        text_format.Parse(data.decode("utf-8", errors="replace"), state, allow_unknown_field=True)
    except (text_format.ParseError, UserError) as exc:
        findings.append(Finding(WARNING, f"checkpoint state file is not readable ({exc}); "
                                         "listing every *.index instead", str(state_file)))
        return None, []
    except RecursionError:  # unknown fields nested thousands deep
        findings.append(Finding(WARNING, "checkpoint state file is not readable (nested too deeply); "
                                         "listing every *.index instead", str(state_file)))
        return None, []

    def local(p: str) -> str:
        # State files often hold the training machine's absolute paths (C:\\..., /content/...).
        return p.replace("\\", "/").rstrip("/").split("/")[-1]

    latest = local(state.model_checkpoint_path) if state.model_checkpoint_path else None
    names = [local(p) for p in state.all_model_checkpoint_paths]
    given = state.model_checkpoint_path.replace("\\", "/")
    if "/" in given and Path(given).parent != folder:
        findings.append(Finding(INFO, f"checkpoint state file names {state.model_checkpoint_path!r} "
                                      f"(another machine's path); using {latest} beside it", str(state_file)))
    return latest, names


def _checkpoints_in(folder: Path, findings: list[Finding]) -> tuple[list[CheckpointRef], CheckpointRef | None, Path | None]:
    """Every checkpoint in ``folder`` and the latest one (the state file's, else the highest number)."""
    refs = {}
    for index in folder.glob("*.index"):
        prefix = index.with_suffix("")
        refs[prefix.name] = CheckpointRef(prefix, _number(prefix.name))
    # Checkpoints whose .index is missing but whose data is here are still worth naming.
    for data in folder.glob("*.data-*-of-*"):
        m = _DATA_RE.match(data.name)
        if m and m.group("prefix") not in refs:
            findings.append(Finding(ERROR, f"{m.group('prefix')}.index is missing; the values in {data.name} "
                                           "cannot be read without it", str(data)))
    state_file = folder / "checkpoint"
    latest_name = None
    if state_file.is_file():
        latest_name, listed = _read_state(state_file, folder, findings)
        for name in listed:
            if name not in refs:
                findings.append(Finding(WARNING, f"checkpoint state file lists {name} but {name}.index is not here",
                                        str(state_file)))
        if latest_name and latest_name not in refs:
            findings.append(Finding(ERROR, f"checkpoint state file names {latest_name} as the latest but "
                                           f"{latest_name}.index is not here", str(state_file)))
            latest_name = None
    else:
        state_file = None
    ordered = sorted(refs.values(), key=_sort_key)
    if latest_name:
        latest = refs[latest_name]
    else:
        latest = ordered[-1] if ordered else None
    return ordered, latest, state_file


def check_checkpoint_files(ref: CheckpointRef) -> list[Finding]:
    """LFS pointers and missing data shards of one checkpoint (the shard count comes from the file names)."""
    findings = []
    if is_lfs_pointer(ref.index):
        return [lfs_finding(ref.index)]
    data = ref.data_files()
    for d in data:
        if is_lfs_pointer(d):
            findings.append(lfs_finding(d))
    counts = {int(m.group("count")) for d in data if (m := _DATA_RE.match(d.name))}
    if not data:
        findings.append(Finding(WARNING, f"{ref.name}.data-00000-of-00001 is missing; names and shapes are "
                                         "still browsable, values are not", str(ref.index)))
    else:
        total = max(counts)
        present = {int(m.group("shard")) for d in data if (m := _DATA_RE.match(d.name))}
        for shard in range(total):
            if shard not in present:
                name = f"{ref.name}.data-{shard:05d}-of-{total:05d}"
                findings.append(Finding(WARNING, f"{name} is missing; names and shapes are still browsable, "
                                                 "values in that shard are not", str(ref.prefix.parent / name)))
    return findings


def _prefix_of(path: Path) -> Path | None:
    """The checkpoint prefix a file or prefix path names, if it looks like one."""
    if path.suffix == ".index":
        return path.with_suffix("")
    m = _DATA_RE.match(path.name)
    if m:
        return path.with_name(m.group("prefix"))
    if not path.exists() and path.with_name(path.name + ".index").exists():
        return path
    if not path.exists() and list(path.parent.glob(glob_escape(path.name) + ".data-*-of-*")):
        return path
    return None


def _find_label_map(folder: Path, pipeline_label_path: str | None = None) -> Path | None:
    """A label map beside the model: in the folder, its parent, or an ``annotations/`` folder nearby."""
    names = ["label_map.pbtxt", "labelmap.pbtxt", "label_map.txt", "labels.txt", "label_map.json"]
    if pipeline_label_path:
        names.insert(0, pipeline_label_path.replace("\\", "/").split("/")[-1])
    if pipeline_label_path and Path(pipeline_label_path).is_absolute() and Path(pipeline_label_path).is_file():
        return Path(pipeline_label_path)
    places = [folder, folder.parent, folder / "annotations", folder.parent / "annotations",
              folder.parent.parent / "annotations"]
    for place in places:
        for name in names:
            candidate = place / name
            if candidate.is_file():
                return candidate
        if place.is_dir():
            for candidate in sorted(place.glob("*label*map*.pbtxt")):
                return candidate
    return None


def label_map_is_own(mf: ModelFolder) -> bool:
    """Whether the folder's label map belongs to this model, not merely lies near it.

    It does when its config names it, or when it lies in the model's own folder: the folder opened
    (or its ``annotations/``), the folder of its config or Keras file, the export holding the opened
    ``saved_model/``, or the run holding the opened ``training/`` (``checkpoint/`` ...) folder. A label
    map two folders up (a Model Zoo download under a fine-tuning workspace) may be another model's.
    """
    if mf.label_map is None:
        return False
    where = Path(mf.label_map).resolve().parent
    named = _pipeline_label_path(mf)
    if named and Path(named).is_file() and Path(named).resolve() == Path(mf.label_map).resolve():
        return True
    own = {mf.root}
    for part in (mf.pipeline_config, mf.params_yaml, mf.keras_file):
        if part is not None:
            own.add(Path(part).parent)
    if mf.saved_model is not None:
        own.add(mf.saved_model)
    if mf.root.name in CHECKPOINT_DIRS or mf.root.name in ("saved_model", "variables"):
        own.add(mf.root.parent)
    own = {p.resolve() for p in own}
    return where in own or (where.name == "annotations" and where.parent in own)


def _pipeline_label_path(mf: ModelFolder) -> str | None:
    """The label map the folder's pipeline.config names, as found on this machine (else as written)."""
    config = mf.pipeline_config
    if config is None:
        return None
    from ..formats.configs import ConfigError, read_pipeline_config  # local: configs is only needed here
    try:
        cfg = mf.parsed(config, lambda: read_pipeline_config(config))
    except ConfigError:
        return None
    return str(cfg.label_map_found) if cfg.label_map_found else cfg.label_map_path


def _saved_model_parts(folder: Path, mf: ModelFolder) -> None:
    pb = folder / "saved_model.pb"
    pbtxt = folder / "saved_model.pbtxt"
    var_index = folder / "variables" / "variables.index"
    mf.saved_model = folder
    if pb.is_file():
        mf.saved_model_pb = pb
    elif pbtxt.is_file():
        mf.saved_model_pb = pbtxt
    if mf.saved_model_pb and is_lfs_pointer(mf.saved_model_pb):
        mf.findings.append(lfs_finding(mf.saved_model_pb))
    if var_index.is_file():
        mf.variables_prefix = var_index.with_suffix("")
        mf.findings.extend(check_checkpoint_files(CheckpointRef(mf.variables_prefix)))
    if mf.saved_model_pb is None:
        what = "only variables/ is here: names and shapes are browsable, but without the graph it cannot run" \
            if var_index.is_file() else "it cannot be loaded"
        kind = _not_a_file(pb)
        if kind is not None:
            mf.findings.append(Finding(ERROR, f"{folder.name}/saved_model.pb is {kind}, not a file; {what}", str(pb)))
        else:
            mf.findings.append(Finding(ERROR, f"{folder.name}/saved_model.pb is missing; {what}", str(folder)))
    elif not var_index.is_file() and _not_a_file(var_index) is not None:
        mf.findings.append(Finding(ERROR, f"{folder.name}/variables/variables.index is {_not_a_file(var_index)}, "
                                          "not a file; the SavedModel's values cannot be read", str(var_index)))


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it exists but is not a regular file (``a folder``); None otherwise."""
    try:
        return files.kind_of(path.stat().st_mode)
    except OSError:
        return None


def nested_saved_models(folder: Path) -> list[Path]:
    """SavedModels one level below ``folder`` (``saved_model/1/`` as TensorFlow Serving versions them),
    in natural order."""
    found = []
    try:
        children = [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")
                    and c.name not in ("variables", "assets")]
    except OSError:
        return []
    for child in children:
        if (child / "saved_model.pb").is_file() or (child / "saved_model.pbtxt").is_file():
            found.append(child)
    return sorted(found, key=lambda c: (int(c.name) if c.name.isdigit() else float("inf"), c.name))


def _has_saved_model_parts(folder: Path) -> bool:
    return any(os.path.lexists(folder / name) for name in ("saved_model.pb", "saved_model.pbtxt", "variables"))


def _is_saved_model_dir(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file() or (folder / "saved_model.pbtxt").is_file() or (
        (folder / "variables" / "variables.index").is_file() and folder.name != "variables")


def recognise(path: str | Path) -> ModelFolder:
    """Say what ``path`` is. Raises :class:`FolderError` only when nothing at all can be opened."""
    given = Path(path).expanduser()
    p = given.resolve() if given.exists() else given.absolute()

    if not p.exists():
        prefix = _prefix_of(p)
        if prefix is None:
            raise FolderError(f"{given} does not exist")
        return _checkpoint_prefix(given, prefix)

    if p.is_file():
        if p.suffix.lower() in KERAS_SUFFIXES:
            mf = ModelFolder(given, KERAS, p.parent, keras_file=p)
            if is_lfs_pointer(p):
                mf.findings.append(lfs_finding(p))
            mf.label_map = _find_label_map(p.parent)
            return mf
        if p.suffix.lower() == TFLITE_SUFFIX:
            return _tflite(given, p)
        if p.name in ("saved_model.pb", "saved_model.pbtxt"):
            return _from_folder(given, p.parent)
        if p.name == "pipeline.config" or p.name == "params.yaml":
            return _from_folder(given, p.parent)
        if p.name == "checkpoint":
            return _from_folder(given, p.parent)
        prefix = _prefix_of(p)
        if prefix is not None:
            return _checkpoint_prefix(given, prefix)
        raise FolderError(f"{given.name} is not a model file (expected a folder, ckpt-N.index, "
                          "saved_model.pb, .keras, .h5 or .tflite)")
    if not p.is_dir():  # a FIFO, a device or a socket: nothing to recognise, nothing to open
        raise FolderError(f"{given} is {files.kind_of(p.stat().st_mode)}, not a model file or folder")
    return _from_folder(given, p)


def _tflite(given: Path, file: Path) -> ModelFolder:
    """A ``.tflite`` model; its label file is the one beside it (``labelmap.txt``, ``labels.txt``, ...)."""
    mf = ModelFolder(given, TFLITE, file.parent, tflite_file=file)
    if is_lfs_pointer(file):
        mf.findings.append(lfs_finding(file))
    mf.label_map = next((file.parent / n for n in TFLITE_LABEL_NAMES if (file.parent / n).is_file()), None) \
        or _find_label_map(file.parent)
    return mf


def _checkpoint_prefix(given: Path, prefix: Path) -> ModelFolder:
    """A single checkpoint opened by prefix, .index or .data file; its folder's siblings come along."""
    folder = prefix.parent
    mf = ModelFolder(given, CHECKPOINT, folder)
    mf.checkpoints, mf.latest, mf.state_file = _checkpoints_in(folder, mf.findings)
    mf.selected = next((r for r in mf.checkpoints if r.name == prefix.name), None)
    if mf.selected is None:
        # A .data file without its .index: _checkpoints_in already said so.
        mf.selected = CheckpointRef(prefix, _number(prefix.name))
        if not any(f.severity == ERROR for f in mf.findings):
            mf.findings.append(Finding(ERROR, f"{prefix.name}.index is missing", str(prefix) + ".index"))
    else:
        mf.findings.extend(check_checkpoint_files(mf.selected))
    _siblings(mf, folder)
    return mf


def _siblings(mf: ModelFolder, folder: Path) -> None:
    for place in (folder, folder.parent):
        if mf.pipeline_config is None and (place / "pipeline.config").is_file():
            mf.pipeline_config = place / "pipeline.config"
        if mf.params_yaml is None and (place / "params.yaml").is_file():
            mf.params_yaml = place / "params.yaml"
    mf.label_map = _find_label_map(folder, _pipeline_label_path(mf))


def _from_folder(given: Path, folder: Path) -> ModelFolder:
    findings: list[Finding] = []
    sm_dir = folder if _is_saved_model_dir(folder) else (
        folder / "saved_model" if (folder / "saved_model").is_dir() else None)
    if sm_dir is not None and sm_dir != folder and not _has_saved_model_parts(sm_dir):
        # saved_model/ holds no graph and no variables of its own: the SavedModel may be one level deeper.
        nested = nested_saved_models(sm_dir)
        if len(nested) == 1:
            findings.append(Finding(INFO, f"the SavedModel is one level deeper, in {sm_dir.name}/{nested[0].name}/",
                                    str(nested[0])))
            sm_dir = nested[0]
        elif nested:
            findings.append(Finding(WARNING, f"{sm_dir.name}/ holds {len(nested)} SavedModels one level deeper "
                                             f"({', '.join(n.name + '/' for n in nested)}); open the one you mean: "
                                             "detscope does not pick one", str(sm_dir)))
            sm_dir = None
    ckpt_dir = None
    for candidate in [folder / name for name in CHECKPOINT_DIRS] + [folder]:
        if candidate.is_dir() and (any(candidate.glob("*.index")) or (candidate / "checkpoint").is_file()):
            if candidate == folder and sm_dir == folder:
                continue
            ckpt_dir = candidate
            break
    has_config = (folder / "pipeline.config").is_file()
    has_params = (folder / "params.yaml").is_file() or (sm_dir is not None and (sm_dir / "params.yaml").is_file())

    if folder.name == "variables" and (folder / "variables.index").is_file() and sm_dir is None:
        mf = ModelFolder(given, VARIABLES, folder, variables_prefix=folder / "variables")
        mf.findings.append(Finding(INFO, "a SavedModel's variables/ folder alone: names, shapes and values are "
                                         "browsable; open its parent folder to run the model", str(folder)))
        mf.findings.extend(check_checkpoint_files(CheckpointRef(mf.variables_prefix)))
        mf.checkpoints = [CheckpointRef(mf.variables_prefix)]
        mf.latest = mf.selected = mf.checkpoints[0]
        mf.label_map = _find_label_map(folder.parent)
        return mf

    if sm_dir is not None and has_params and not has_config:
        kind = MODEL_GARDEN_EXPORT
    elif sm_dir is not None and (has_config or (ckpt_dir is not None and ckpt_dir != folder)):
        kind = OD_API_EXPORT
    elif sm_dir is not None:
        kind = SAVED_MODEL
    elif ckpt_dir is not None:
        kind = CHECKPOINT_FOLDER
    else:
        keras = sorted(p for p in folder.iterdir() if p.suffix.lower() in KERAS_SUFFIXES) if folder.is_dir() else []
        if len(keras) == 1:
            mf = ModelFolder(given, KERAS, folder, keras_file=keras[0])
            if is_lfs_pointer(keras[0]):
                mf.findings.append(lfs_finding(keras[0]))
            mf.label_map = _find_label_map(folder)
            return mf
        lite = sorted(p for p in folder.iterdir() if p.suffix.lower() == TFLITE_SUFFIX) if folder.is_dir() else []
        if len(lite) == 1:
            return _tflite(given, lite[0])
        if len(lite) > 1:
            raise FolderError(f"{given} holds {len(lite)} .tflite models ({', '.join(p.name for p in lite[:4])}); "
                              "open one of them")
        if len(keras) > 1:
            raise FolderError(f"{given} holds {len(keras)} Keras files ({', '.join(k.name for k in keras)}): "
                              "open the one you mean; detscope does not pick one")
        if not any(folder.iterdir()):
            raise FolderError(f"{given} is an empty folder")
        nested = nested_saved_models(folder)
        if len(nested) == 1 and not (folder / "pipeline.config").is_file():
            mf = _from_folder(given, nested[0])
            mf.findings.insert(0, Finding(INFO, f"the SavedModel is one level deeper, in {nested[0].name}/",
                                          str(nested[0])))
            return mf
        if nested:
            raise FolderError(f"{given} holds no model itself but {len(nested)} SavedModels one level deeper "
                              f"({', '.join(n.name + '/' for n in nested)}): open the one you mean")
        if (folder / "pipeline.config").is_file():
            mf = ModelFolder(given, OD_API_EXPORT, folder, pipeline_config=folder / "pipeline.config")
            mf.findings.append(Finding(ERROR, "pipeline.config is here but no checkpoint (*.index) and no "
                                              "saved_model/ beside it", str(folder / "pipeline.config")))
            mf.label_map = _find_label_map(folder, _pipeline_label_path(mf))
            return mf
        if findings:   # what was found instead (several SavedModels one level deeper)
            raise FolderError(f"{given}: {findings[-1].message}")
        raise NothingToOpen(f"{given} holds no model: no saved_model.pb, no checkpoint (*.index), "
                          "no pipeline.config, no .keras/.h5 file")

    mf = ModelFolder(given, kind, folder, findings=findings)
    if sm_dir is not None:
        _saved_model_parts(sm_dir, mf)
    if ckpt_dir is not None:
        mf.checkpoints, mf.latest, mf.state_file = _checkpoints_in(ckpt_dir, mf.findings)
        mf.selected = mf.latest
        if mf.selected is not None:
            mf.findings.extend(check_checkpoint_files(mf.selected))
        elif kind == CHECKPOINT_FOLDER:
            mf.findings.append(Finding(ERROR, "checkpoint state file is here but no ckpt-N.index beside it",
                                       str(ckpt_dir / "checkpoint")))
    if kind in (SAVED_MODEL, MODEL_GARDEN_EXPORT) and ckpt_dir is None and mf.variables_prefix is not None:
        # Browsing a bare SavedModel shows its own variables bundle.
        mf.checkpoints = [CheckpointRef(mf.variables_prefix)]
        mf.latest = mf.selected = mf.checkpoints[0]
    for place in (folder, sm_dir) if sm_dir is not None else (folder,):
        if mf.params_yaml is None and (place / "params.yaml").is_file():
            mf.params_yaml = place / "params.yaml"
    _siblings(mf, folder)
    return mf
