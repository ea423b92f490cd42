"""Ways to get a live model on the engine thread: a SavedModel, the user's own factory, a Keras file.

Each captures TensorFlow's chatter and turns a failure into one :class:`RestoreError` line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .report import COMPLETE, FAILED, RestoreError, RestoreReport
from .restore import captured_tf_messages


def load_saved_model(path: str | Path, tags: list[str] | None = None, job=None):
    """``tf.saved_model.load`` with TensorFlow's messages captured; returns (object, message counts)."""
    import tensorflow as tf

    if job is not None:
        job.progress(f"loading SavedModel {Path(path).name}")
    with captured_tf_messages() as messages:
        try:
            obj = tf.saved_model.load(str(path), tags=tags)
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RestoreError(f"{path}: TensorFlow could not load the SavedModel: {first}") from exc
    return obj, dict(messages.counts)


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


def load_keras_model(path: str | Path, safe_mode: bool = True, job=None):
    """Keras 3 first; ``tf_keras`` for old Keras 2 HDF5 files. Returns (model, which Keras, notes)."""
    path = Path(path)
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

                model = tf_keras.models.load_model(str(path), compile=False, safe_mode=safe_mode) \
                    if "safe_mode" in tf_keras.models.load_model.__code__.co_varnames else \
                    tf_keras.models.load_model(str(path), compile=False)
                notes.append("loaded with tf_keras (Keras 2) after Keras 3 could not: " + errors[0])
                return model, "tf_keras", notes
            except Exception as exc:  # reported below with Keras 3's reason
                errors.append(f"tf_keras: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
    raise RestoreError(f"{path.name} could not be loaded ({'; '.join(errors)})")


def keras_report(model, path: Path, which: str, notes: list[str]) -> RestoreReport:
    """A Keras file restores as a whole or not at all; the report says what it holds."""
    report = RestoreReport(COMPLETE, str(path), f"{which} {type(model).__name__}")
    report.matched = [v.path if hasattr(v, "path") else v.name for v in model.weights]
    report.notes.extend(notes)
    if not report.matched:
        report.verdict = FAILED
        report.notes.append("the model has no weights")
    return report


