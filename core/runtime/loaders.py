"""Ways to get a live model on the engine thread: a SavedModel, the user's own factory, a Keras file.

Each captures TensorFlow's chatter and turns a failure into one :class:`RestoreError` line.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from ..base import files
from ..formats.kerasfile import KerasInfo, read_keras_file
from ..formats.savedmodel import TRUST_MODEL_FLAG, SavedModelError, SavedModelInfo, read_saved_model
from .report import COMPLETE, FAILED, RestoreError, RestoreReport
from .restore import captured_tf_messages


def read_before_loading(path: str | Path, read=None) -> SavedModelInfo:
    """The SavedModel read without TensorFlow (by ``read()`` when given), to see what its graph does before
    it is loaded; a SavedModel that cannot be read is a RestoreError."""
    try:
        return read() if read is not None else read_saved_model(path)
    except SavedModelError as exc:
        raise RestoreError(f"{exc} (detscope reads a SavedModel before loading it; pass {TRUST_MODEL_FLAG} "
                           "to load it without that)") from exc


def refuse_untrusted_saved_model(path: str | Path, info: SavedModelInfo | None = None) -> None:
    """:class:`~detscope.core.base.errors.LoadRefused` when the SavedModel's graph reads or writes files,
    runs Python, talks to the network or to other processes (loading or detecting would do it)."""
    refusal = (info if info is not None else read_before_loading(path)).refusal()
    if refusal is not None:
        raise refusal


def refuse_keras_code(path: str | Path, info: KerasInfo | None = None) -> KerasInfo:
    """The Keras file read without Keras (a file reaching into other files is refused there); raises
    :class:`~detscope.core.base.errors.LoadRefused` when loading it would run Python code stored in it."""
    info = info if info is not None else read_keras_file(path)
    refusal = info.refusal()
    if refusal is not None:
        raise refusal
    return info


def load_saved_model(path: str | Path, tags: list[str] | None = None, job=None, *, trust: bool = False,
                     info: SavedModelInfo | None = None):
    """``tf.saved_model.load`` with TensorFlow's messages captured; returns (object, message counts).

    Unless ``trust``, a SavedModel whose graph reaches outside the model is refused before TensorFlow
    sees it (``info``: the SavedModel already read, to spare reading it again).
    """
    if not trust:
        refuse_untrusted_saved_model(path, info)
    # TensorFlow reads variables/, assets/ and fingerprint.pb itself: a FIFO or a device there would hang it
    files.check_folder_regular(path, what="TensorFlow loading the SavedModel", error=RestoreError)
    import tensorflow as tf

    if job is not None:
        job.progress(f"loading SavedModel {Path(path).name}")
    with captured_tf_messages() as messages:
        try:
            obj = tf.saved_model.load(str(path), tags=tags)
        except (OSError, ValueError, RuntimeError, IndexError, KeyError, TypeError, AttributeError,
                tf.errors.OpError) as exc:  # TensorFlow on a damaged SavedModel (IndexError: a cut-short shard)
            raise RestoreError(f"{path}: TensorFlow could not load the SavedModel: {tf_error_line(exc)}") from exc
    return obj, dict(messages.counts)


_TF_NOISE = ("Graph execution error", "Detected at node", "Traceback", "[[", "File \"", "<stack traces")
_TF_OP = re.compile(r"\s*\[Op:[^\]]*\]\s*(name:.*)?$")
_TF_FUNCTION = re.compile(r"^\{\{function_node [^}]*\}\}\s*")


def tf_error_line(exc: BaseException) -> str:
    """The cause TensorFlow gives, in one line: its multi-line errors (``Graph execution error:``, the
    Python traceback of the node that failed, ``[[{{node ...}}]]``) carry it on one unindented line."""
    text = str(getattr(exc, "message", None) or exc)
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(_TF_NOISE) and line.strip() not in ("", ":"):
            line = _TF_OP.sub("", _TF_FUNCTION.sub("", line.strip()))
            if line:
                return line[:300]
    return type(exc).__name__


def load_factory(spec: str, job=None):
    """Build the user's model: ``path/to/file.py:build`` or ``package.module:build``."""
    module_part, _, attr = spec.rpartition(":")
    if not module_part or not attr:
        raise RestoreError(f"--factory {spec!r}: expected FILE.py:FUNCTION or package.module:FUNCTION")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        file = Path(module_part).expanduser()
        if not file.is_file():
            raise RestoreError(f"{file} does not exist (the --factory file)")
        name = f"detscope_factory_{abs(hash(str(file.resolve())))}"
        # as `python FILE.py` would: modules beside the file import (for the build and for later calls)
        beside = str(file.resolve().parent)
        if beside not in sys.path:
            sys.path.insert(0, beside)
        mod_spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as exc:  # the user's own code: report its failure in one line
            raise RestoreError(f"{file}: importing the factory failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise RestoreError(f"--factory {spec!r}: cannot import {module_part}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RestoreError(f"--factory {spec!r}: {module_part} has no function {attr}")
    if job is not None:
        job.progress(f"building the model with {attr}()")
    try:
        return fn()
    except Exception as exc:  # the user's own code
        raise RestoreError(f"--factory {spec!r}: {attr}() failed: {type(exc).__name__}: {exc}") from exc


def load_keras_model(path: str | Path, safe_mode: bool = True, job=None, *, info: KerasInfo | None = None):
    """Keras 3 first; ``tf_keras`` for old Keras 2 HDF5 files. Returns (model, which Keras, notes).

    The file is read without Keras first (``info``, when the caller has read it already): one that reaches
    into other files is refused, and so, with ``safe_mode``, is one whose loading runs Python code stored
    in it (Keras 3 refuses those itself, but ``tf_keras`` runs a Keras 2 ``.h5``'s Lambda unasked).
    """
    path = Path(path)
    info = info if info is not None else read_keras_file(path)
    if safe_mode:
        refuse_keras_code(path, info)
    notes = []
    if not safe_mode:
        notes.append("safe_mode is OFF: the file's Python lambdas were allowed to run")
    if job is not None:
        job.progress(f"loading {path.name} with Keras 3")
    errors = []
    with captured_tf_messages():
        try:
            import keras

            return keras.saving.load_model(str(path), compile=False, safe_mode=safe_mode), "keras 3", notes
        except Exception as exc:  # Keras raises many kinds; the next loader gets its turn
            errors.append(f"Keras 3: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
        if path.suffix.lower() in (".h5", ".hdf5"):
            if job is not None:
                job.progress(f"loading {path.name} with tf_keras (Keras 2)")
            try:
                import tf_keras

                with _tf_keras_safe_mode(safe_mode):
                    model = tf_keras.models.load_model(str(path), compile=False, safe_mode=safe_mode)
                notes.append("loaded with tf_keras (Keras 2) after Keras 3 could not: " + errors[0])
                return model, "tf_keras", notes
            except Exception as exc:  # reported below with Keras 3's reason
                errors.append(f"tf_keras: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
    raise RestoreError(f"{path.name} could not be loaded ({'; '.join(errors)})")


def _tf_keras_safe_mode(safe_mode: bool):
    """tf_keras's safe-mode scope, which its legacy HDF5 loader does not enter itself (a Lambda's code
    then runs unasked); a no-op where tf_keras has none."""
    import contextlib

    try:
        from tf_keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        return contextlib.nullcontext()
    return SafeModeScope(safe_mode)


def keras_report(model, path: Path, which: str, notes: list[str]) -> RestoreReport:
    """A Keras file restores as a whole or not at all; the report says what it holds."""
    report = RestoreReport(COMPLETE, str(path), f"{which} {type(model).__name__}")
    report.matched = [v.path if hasattr(v, "path") else v.name for v in model.weights]
    report.notes.extend(notes)
    if not report.matched:
        report.verdict = FAILED
        report.notes.append("the model has no weights")
    return report


