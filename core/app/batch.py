"""``detect`` and ``eval`` over Apache Beam: large test sets on a cluster, the same detections and metrics.

The images (files, folders, globs over any storage Beam's filesystems read, or the Object Detection API's
TFRecords with the images inside) flow through one pipeline::

    inputs ─ expand (FileSystems.match) ─┐
    TFRecords ─ ReadFromTFRecord ─ parse ┴─ Reshuffle ─ Detect (the model, loaded once per worker) ─┬─ detections-*.jsonl
                                                                                                    └─ failed-*.jsonl
    Create ─ Describe (the model as the workers loaded it) ─ model.json

Each worker loads the model once, in ``DoFn.setup()``, through a :class:`~detscope.core.app.host.ModelHost`
shared by every DoFn instance of its process (``apache_beam.utils.shared.Shared``), with the same options and
the same trust rules as the command line: only a complete restore runs unasked, a model that would run code
needs the user's flag. A model, label map or template on remote storage (``gs://…``) is copied to the
worker's local disk first. An image that cannot be read or detected is counted, written to ``failed`` with
its one-line error, and skipped. Beam counters (namespace ``detscope``): ``images``, ``detections``,
``errors``.

The detections are written losslessly (float32 values as JSON numbers round-trip exactly), so the launcher's
final gather (:func:`gather`) rebuilds each image's :class:`~detscope.core.detect.detections.Detections` bit
for bit, and ``eval`` hands them to the same matching and metrics code as the local path: the numbers are
equal, not close. Apache Beam is the optional ``beam`` extra; this module imports it at the top, so only the
``--runner`` path imports this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

logging.disable(logging.WARNING)     # Beam's optional-client notices at import time ("apitools not found")
try:
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.utils.shared import Shared
    try:        # imported by the runners later; it says so on the root logger when Google's clients are absent
        import apache_beam.io.gcp.internal.clients.bigquery  # noqa: F401
    except ImportError:
        pass
finally:
    logging.disable(logging.NOTSET)

import numpy as np

from ..base.errors import UserError
from ..base.text import plural
from ..detect.detections import Detections
from ..formats.labels import LabelItem, LabelMap
from ..media.images import IMAGE_SUFFIXES, ImageError, decode_image

NAMESPACE = "detscope"
DETECTIONS = "detections"
FAILED = "failed"
MODEL_FILE = "model.json"
SUFFIX = ".jsonl"
BATCH = 32             # images a worker takes at once (decoding the next while the model runs on one)
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".record", ".records")
# A worker's one-line error, marked so that the launcher finds it in whatever the runner wraps it in.
_MARK = re.compile(r"\[detscope-error\](.*?)\[/detscope-error\]", re.S)
_GLOB = re.compile(r"[*?\[]")


def has_glob(path: str) -> bool:
    return bool(_GLOB.search(path))


class BatchError(UserError):
    """The pipeline failed: one line (a worker's own error when it gave one)."""


# --- inputs ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """One IMAGES argument: a pattern of image files, or TFRecords holding the images."""

    index: int          # which argument (the gather orders images by it, then by path, as the local path does)
    pattern: str
    kind: str           # "files" or "tfrecord"
    only_images: bool   # keep only names with an image suffix (folders, globs); a file named by itself is kept


def _remote(path: str) -> bool:
    return "://" in path


def is_tfrecord(arg: str) -> bool:
    from ..formats.tfrecord import looks_like_tfrecord

    name = PurePosixPath(arg).name.lower()
    if any(name.endswith(s) or f"{s}-" in name for s in TFRECORD_SUFFIXES):
        return True
    return not _remote(arg) and not _GLOB.search(arg) and Path(arg).is_file() and \
        Path(arg).suffix.lower() not in IMAGE_SUFFIXES and looks_like_tfrecord(arg)


def check_storage(path: str) -> None:
    """A remote path whose filesystem Beam has not got (``gs://`` without ``apache-beam[gcp]``): one line, before
    the pipeline starts."""
    if not _remote(path):
        return
    try:
        FileSystems.get_filesystem(path)
    except ValueError:
        scheme = path.split("://", 1)[0]
        extra = {"gs": "apache-beam[gcp]", "s3": "apache-beam[aws]", "hdfs": "apache-beam (and the hdfs package)",
                 "az": "apache-beam[azure]"}.get(scheme, "the Beam extra for it")
        raise UserError(f"{path}: Beam cannot read {scheme}:// here: pip install '{extra}'") from None


def plan_sources(args: list[str]) -> list[Source]:
    """What each IMAGES argument is; a local path that does not exist is a one-line error here, before the
    pipeline starts (as the local path says it)."""
    out = []
    for i, arg in enumerate(args):
        check_storage(arg)
        if is_tfrecord(arg):
            out.append(Source(i, arg, "tfrecord", False))
        elif not _remote(arg) and Path(arg).is_dir():
            out.append(Source(i, os.path.join(arg, "*"), "files", True))
        elif _remote(arg) and arg.endswith("/"):                 # a remote folder: the images in it
            out.append(Source(i, arg + "*", "files", True))
        elif _remote(arg) or _GLOB.search(arg):
            out.append(Source(i, arg, "files", bool(_GLOB.search(arg))))
        elif Path(arg).exists():
            out.append(Source(i, arg, "files", False))
        else:
            raise ImageError(f"{arg} does not exist (Beam pipeline options are written --name=value)")
    return out


class _Expand(beam.DoFn):
    """A pattern into its files: ``(argument index, path, size, None)``."""

    def process(self, source: Source):
        for result in FileSystems.match([source.pattern]):
            for m in sorted(result.metadata_list, key=lambda m: m.path):
                if not source.only_images or PurePosixPath(m.path).suffix.lower() in IMAGE_SUFFIXES:
                    yield source.index, m.path, m.size_in_bytes, None


def _example_image(index: int, data: bytes):
    """An OD API ``tf.train.Example``: ``(argument index, its image/filename, size, its encoded image)``."""
    from ..formats.tfrecord import example_features

    try:
        feats = example_features(data)
    except ValueError as exc:
        return index, "(a record)", len(data), exc
    name = (feats.get("image/filename") or feats.get("image/source_id") or [b"(a record without a name)"])[0]
    name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    encoded = (feats.get("image/encoded") or [None])[0]
    if encoded is None:
        return index, name, 0, ValueError("the record holds no image/encoded")
    return index, name, len(encoded), encoded


# --- the model on a worker -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    """How to load the model, as the command line asks for it (the options of ``ModelHost.load_sync``)."""

    model: str
    options: dict = field(default_factory=dict)   # checkpoint, labels, signature, template, factory, scale, ...
    allow_partial: bool = False


def _copy(src: str, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with FileSystems.open(src) as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def stage(path: str, into: Path) -> Path:
    """A file or folder on remote storage copied under ``into`` (the worker's local disk); a local path as
    it is. TensorFlow and detscope's readers then see an ordinary folder."""
    if not _remote(path):
        return Path(path)
    base = path.rstrip("/")
    name = PurePosixPath(base.split("://", 1)[1]).name or "model"
    found = [m.path for r in FileSystems.match([base + "/**"]) for m in r.metadata_list]
    if found:                                              # a folder: everything below it
        for src in found:
            _copy(src, into / name / src[len(base) + 1:])
        return into / name
    if not FileSystems.exists(base):
        raise UserError(f"{path}: no such file or folder")
    _copy(base, into / name)                               # one file: a .keras, .tflite, label map
    return into / name


class _Loaded:
    """The model of one worker process (what ``Shared`` hands every DoFn instance of the process)."""

    def __init__(self, host, summary, staged: str | None):
        self.host, self.summary, self.staged = host, summary, staged
        if staged:                      # the copy goes with the model (its engine thread is a daemon)
            weakref.finalize(self, shutil.rmtree, staged, True)


def _load(spec: ModelSpec) -> _Loaded:
    from .host import ModelHost

    staged = None
    options = dict(spec.options)
    model = spec.model
    remote = [k for k in ("labels", "template") if options.get(k) and _remote(str(options[k]))]
    if _remote(model) or remote:
        staged = tempfile.mkdtemp(prefix="detscope-model-")
        model = str(stage(model, Path(staged) / "model"))
        for k in remote:
            options[k] = str(stage(str(options[k]), Path(staged) / k))
    host = ModelHost()
    try:
        summary = host.load_sync(model, **options)
        if not summary.can_detect:
            reason = next((f.message for f in summary.findings if f.severity == "error"), "no detector signature")
            raise UserError(f"{Path(spec.model).name}: cannot detect: {reason}")
        if summary.refusal is not None and not spec.allow_partial:
            raise UserError(f"{summary.refusal}; pass --allow-partial to run it anyway")
    except BaseException:
        host.shutdown(timeout=5)
        if staged:
            shutil.rmtree(staged, ignore_errors=True)
        raise
    return _Loaded(host, summary, staged)


def _worker_error(exc: BaseException) -> RuntimeError:
    return RuntimeError(f"[detscope-error]{exc}[/detscope-error]")


class _ModelDoFn(beam.DoFn):
    def __init__(self, spec: ModelSpec, shared: Shared):
        self.spec = spec
        self._shared = shared
        self._model: _Loaded | None = None

    def setup(self):
        try:
            self._model = self._shared.acquire(lambda: _load(self.spec), tag=json.dumps(
                [self.spec.model, self.spec.options, self.spec.allow_partial], sort_keys=True, default=str))
        except UserError as exc:       # a refusal, a bad model: the launcher prints this line
            raise _worker_error(exc) from None


class _Detect(_ModelDoFn):
    """A batch of ``(index, path, size, the image's bytes | None | why it has none)`` → a detections record (JSON)
    per image, or a failed one (``{"path", "error", "input"}``, tagged :data:`FAILED`). The next image is read
    and decoded while the engine runs the model on the current one, as the local path does."""

    def __init__(self, spec: ModelSpec, shared: Shared, threshold: float):
        super().__init__(spec, shared)
        self.threshold = threshold
        self.images = Metrics.counter(NAMESPACE, "images")
        self.detections = Metrics.counter(NAMESPACE, "detections")
        self.errors = Metrics.counter(NAMESPACE, "errors")

    def process(self, batch):
        pending = None
        for index, path, size, payload in batch:
            try:
                future = self._submit(path, size, payload)
            except Exception as exc:  # noqa: BLE001 - one image's failure, whatever it is, is that image's
                yield self._failed(index, path, exc)
                continue
            if pending is not None:
                yield self._finish(*pending)
            pending = (index, path, future)
        if pending is not None:
            yield self._finish(*pending)

    def _submit(self, path: str, size: int | None, payload):
        name = PurePosixPath(path).name
        if isinstance(payload, Exception):
            raise ImageError(f"{path}: {payload}")
        image = decode_image(payload if payload is not None else _read(path, size), name)
        return self._model.host.detect(image, allow_partial=self.spec.allow_partial, name=f"detect {name}")

    def _finish(self, index: int, path: str, future):
        try:
            dets = future.result().above(self.threshold)
        except UserError as exc:   # the model failed on this image: say which, as the local path does
            return self._failed(index, path, UserError(f"{path}: {exc}"))
        except Exception as exc:  # noqa: BLE001
            return self._failed(index, path, exc)
        self.images.inc()
        self.detections.inc(len(dets))
        return json.dumps(detections_record(index, path, dets))

    def _failed(self, index: int, path: str, exc: Exception):
        self.errors.inc()
        error = str(exc) if isinstance(exc, UserError) else f"{path}: unexpected {type(exc).__name__}: {exc}"
        return beam.pvalue.TaggedOutput(FAILED, json.dumps({"path": path, "error": error, "input": index}))


class _Describe(_ModelDoFn):
    """The model as the workers loaded it (checkpoint, label map, what is wrong with it), for the launcher."""

    def process(self, _):
        s = self._model.summary
        lm = s.label_map
        yield json.dumps({"model": str(s.path), "checkpoint": s.checkpoint_name, "how": s.how,
                          "label_map": None if lm is None else {
                              "source": str(lm.source) if lm.source else None,
                              "items": [[int(i.id), i.name, i.display_name] for i in lm.items]},
                          "partial_restore": s.partial_restore(),
                          "findings": [f.line() for f in s.findings if f.severity != "info"]})


def _read(path: str, size: int | None) -> bytes:
    from ..base.files import IMAGE_FILE_LIMIT

    name = PurePosixPath(path).name
    if size is not None and size > IMAGE_FILE_LIMIT:
        raise ImageError(f"{name} is {size:,} bytes, more than the {IMAGE_FILE_LIMIT:,} detscope reads for an image")
    if not _remote(path) and not Path(path).is_file():
        from ..media.images import load_image

        load_image(path)                  # its one-line error for a FIFO, a device, a folder
    try:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            return f.read(IMAGE_FILE_LIMIT + 1)
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def detections_record(index: int, path: str, dets: Detections) -> dict:
    """One line of ``detections-*.jsonl``: ``detect --json``'s image entry with every number as the model gave it
    (float32 values round-trip exactly through JSON), and ``input``: which IMAGES argument it came from."""
    return {"path": path, "width": dets.width, "height": dets.height,
            "detections": [{"box": [float(v) for v in box], "score": float(s), "class_id": int(c), "label": label}
                           for box, s, c, label in zip(dets.boxes, dets.scores, dets.class_ids, dets.labels)],
            "input": index}


def record_detections(record: dict) -> Detections:
    """The :class:`Detections` a record was written from, bit for bit."""
    rows = record["detections"]
    return Detections.build(np.array([r["box"] for r in rows], np.float32).reshape(-1, 4),
                            np.array([r["score"] for r in rows], np.float32),
                            np.array([r["class_id"] for r in rows], np.int64), [r["label"] for r in rows],
                            record["width"], record["height"])


# --- the pipeline ----------------------------------------------------------------------------------------

LOCAL_RUNNERS = ("DirectRunner", "PrismRunner", "InteractiveRunner")


@dataclass
class BatchRun:
    """What a pipeline run gave: the images detected (in the local path's order), those that failed, the
    model as the workers loaded it, Beam's counters."""

    runner: str
    out: str
    images: list[tuple[str, Detections]]
    failed: list[dict]
    model: dict
    counters: dict[str, int]
    seconds: float
    replaced: int = 0                      # files of an earlier run in ``out`` that this one replaced

    def summary_line(self) -> str:
        c = self.counters
        where = f"; detections in {FileSystems.join(self.out, DETECTIONS)}-*{SUFFIX}" if self.out else ""
        return (f"{self.runner}: {plural(c.get('images', 0), 'image')}, {plural(c.get('detections', 0), 'detection')}, "
                f"{plural(c.get('errors', 0), 'error')} in {self.seconds:.1f} s{where}")


def _outputs(out: str) -> list[str]:
    patterns = [FileSystems.join(out, f"{DETECTIONS}-*{SUFFIX}"), FileSystems.join(out, f"{FAILED}-*{SUFFIX}"),
                FileSystems.join(out, MODEL_FILE)]
    return [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]


def _lines(path: str):
    with FileSystems.open(path, compression_type="uncompressed") as f:
        for line in f.read().decode("utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def _counters(result) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics: the gather counts instead
        return out
    for c in found:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def build(p, sources: list[Source], spec: ModelSpec, out: str, threshold: float) -> None:
    """The pipeline's transforms on ``p`` (see the module's docstring)."""
    shared = Shared()
    parts = []
    files = [s for s in sources if s.kind == "files"]
    if files:
        parts.append(p | "image patterns" >> beam.Create(files) | "expand" >> beam.ParDo(_Expand()))
    for s in sources:
        if s.kind == "tfrecord":
            parts.append(p | f"read TFRecords {s.index}" >> beam.io.ReadFromTFRecord(s.pattern)
                         | f"parse Examples {s.index}" >> beam.Map(lambda data, i=s.index: _example_image(i, data)))
    images = (parts | "all images" >> beam.Flatten()) if len(parts) > 1 else parts[0]
    results = (images
               | "spread over workers" >> beam.Reshuffle()
               | "in batches" >> beam.BatchElements(min_batch_size=1, max_batch_size=BATCH)
               | "detect" >> beam.ParDo(_Detect(spec, shared, threshold)).with_outputs(FAILED, main=DETECTIONS))
    results[DETECTIONS] | "write detections" >> beam.io.WriteToText(FileSystems.join(out, DETECTIONS),
                                                                     file_name_suffix=SUFFIX)
    results[FAILED] | "write failed" >> beam.io.WriteToText(FileSystems.join(out, FAILED), file_name_suffix=SUFFIX)
    (p | "one model" >> beam.Create([None]) | "describe" >> beam.ParDo(_Describe(spec, shared))
     | "write model" >> beam.io.WriteToText(FileSystems.join(out, MODEL_FILE), num_shards=1, shard_name_template=""))


def run(spec: ModelSpec, inputs: list[str], *, runner: str, beam_args: list[str], out: str | None,
        threshold: float) -> BatchRun:
    """Run the pipeline and wait for it; then gather what it wrote. ``out`` may be omitted for a local runner
    (a temporary folder is used and removed)."""
    _check_runner(runner)
    sources = plan_sources(inputs)
    for path in (spec.model, out or "", spec.options.get("labels") or "", spec.options.get("template") or ""):
        check_storage(str(path))
    own = out is None
    if own:
        if runner not in LOCAL_RUNNERS:
            raise UserError(f"--runner {runner} needs --out: a folder every worker can write (gs://bucket/run, a "
                            "shared filesystem)")
        out = tempfile.mkdtemp(prefix="detscope-beam-")
    elif not _remote(out):
        Path(out).mkdir(parents=True, exist_ok=True)
    old = _outputs(out)
    if old:                              # shards of an earlier run would mix with this run's
        FileSystems.delete(old)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")    # local workers inherit it: TensorFlow's start-up chatter
    flags = list(beam_args)
    if not os.environ.get("DETSCOPE_VERBOSE"):           # Beam's INFO lines (and its workers') are not the user's
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        if not any(f.startswith("--default_sdk_harness_log_level") for f in flags):
            flags.append("--default_sdk_harness_log_level=ERROR")
    options = PipelineOptions(flags=flags, runner=runner)
    p = beam.Pipeline(options=options)
    build(p, sources, spec, out, threshold)
    start = time.perf_counter()
    try:
        with _beam_log() as log:
            result = p.run()
            result.wait_until_finish()
    except Exception as exc:  # noqa: BLE001 - whatever the runner wraps a worker's error in: one line
        if own:
            shutil.rmtree(out, ignore_errors=True)
        raise _pipeline_error(exc, runner, log) from None
    seconds = time.perf_counter() - start
    try:
        return _gather(out, runner, result, seconds, len(old), own)
    finally:
        if own:
            shutil.rmtree(out, ignore_errors=True)


class _Log:
    path: str | None = None


@contextlib.contextmanager
def _beam_log():
    """What Beam and its local worker processes print on the standard error (start-up notices, their logging)
    goes to a file for the run, unless ``DETSCOPE_VERBOSE``; the file is kept only when the run fails."""
    log = _Log()
    if os.environ.get("DETSCOPE_VERBOSE"):
        yield log
        return
    fd, log.path = tempfile.mkstemp(prefix="detscope-beam-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    failed = True
    try:
        yield log
        failed = False
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
        if not failed:
            os.unlink(log.path)
            log.path = None


def _check_runner(runner: str) -> None:
    """A runner name Beam does not know is the user's typo: one line with the names it knows."""
    from apache_beam.runners.runner import create_runner

    try:
        create_runner(runner)
    except ValueError as exc:
        known = str(exc).split("Valid values are", 1)[-1].strip().rstrip(".")
        raise UserError(f"--runner {runner}: not a runner Apache Beam knows (it knows {known})") from None
    except Exception:  # noqa: BLE001 - a known runner that needs more to start (Dataflow's client): said when it runs
        pass


def _pipeline_error(exc: BaseException, runner: str, log: _Log | None = None) -> BatchError:
    text = str(exc)
    m = _MARK.search(text)
    if m:
        if log is not None and log.path:
            os.unlink(log.path)
        return BatchError(m.group(1).strip())
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    where = f" (Beam's log: {log.path})" if log is not None and log.path else ""
    return BatchError(f"the {runner} pipeline failed: {first[:300]}{where}")


def _gather(out: str, runner: str, result, seconds: float, replaced: int, own: bool) -> BatchRun:
    """The final gather: every record back, ordered as the local path orders images (by argument, then path)."""
    paths = _outputs(out)
    records, failed, model = [], [], {}
    for path in paths:
        name = PurePosixPath(path).name
        if name == MODEL_FILE:
            model = next(_lines(path), {})
        elif name.startswith(FAILED + "-"):
            failed.extend(_lines(path))
        else:
            records.extend(_lines(path))
    records.sort(key=lambda r: (r["input"], r["path"]))
    failed.sort(key=lambda r: (r["input"], r["path"]))
    counters = _counters(result)
    if not counters:
        counters = {"images": len(records), "detections": sum(len(r["detections"]) for r in records),
                    "errors": len(failed)}
    return BatchRun(runner, "" if own else out, [(r["path"], record_detections(r)) for r in records], failed, model,
                    counters, seconds, replaced)


# --- eval: the same metrics ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _ModelAbout:
    """What an :class:`~detscope.core.app.evaluation.Evaluation` says of its model (``about()``)."""

    path: Path
    checkpoint_name: str | None
    label_map: LabelMap | None

    def class_names(self) -> dict[int, str]:
        return {} if self.label_map is None else {int(i.id): i.label for i in self.label_map.items}


def label_map_of(model: dict) -> LabelMap | None:
    lm = model.get("label_map")
    if not lm:
        return None
    return LabelMap([LabelItem(i, n, d) for i, n, d in lm["items"]], source=Path(lm["source"]) if lm["source"] else None)


def evaluation(run: BatchRun, truth, model_path):
    """The run's detections matched against ``truth`` by the local path's own code: an
    :class:`~detscope.core.app.evaluation.Evaluation` with ``detscope eval``'s numbers. ``model_path``: the model
    as the local path names it. Images that failed are left out of it (the caller names them)."""
    from .evaluation import _finish
    from ..eval.readers import map_classes

    label_map = label_map_of(run.model)
    map_classes(truth, label_map)
    about = _ModelAbout(Path(model_path), run.model.get("checkpoint"), label_map)
    images = [Path(p) for p, _ in run.images]
    return _finish(about, truth, images, [d for _, d in run.images], about.class_names(), run.seconds, 0)


def findings_of(model: dict) -> list[str]:
    return list(model.get("findings") or [])

