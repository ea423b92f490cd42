"""Keras model files without TensorFlow: ``.keras`` archives (Keras 3) and HDF5 ``.h5`` (Keras 2).

A ``.keras`` file is a zip holding ``config.json``, ``metadata.json`` and
``model.weights.h5``; an ``.h5`` file holds the model config as an HDF5 attribute
and the weights under ``model_weights/`` (or at the top for weights-only files).
Both are read with h5py, which reads only the datasets a caller asks for.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import UserError
from ..base.findings import ERROR, INFO, Finding


class KerasFileError(UserError):
    """One line naming the file and the cause."""


@dataclass(frozen=True)
class Weight:
    key: str            # the HDF5 dataset path, e.g. "model_weights/conv1/conv1/kernel:0"
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass
class KerasInfo:
    path: Path
    format: str                     # "keras_v3" (.keras zip) or "hdf5"
    keras_version: str | None
    model_class: str | None         # "Functional", "Sequential", a subclass name
    model_name: str | None
    layers: list[dict]              # [{"name", "class_name"}] from the saved config
    weights: list[Weight]
    inputs: list[dict] = field(default_factory=list)  # [{"name", "shape", "dtype"}] when the config says
    findings: list[Finding] = field(default_factory=list)
    _h5_bytes: bytes | None = None  # the weights file of a .keras zip, kept to read values on demand

    def read(self, key: str):
        import h5py
        import numpy as np

        source = io.BytesIO(self._h5_bytes) if self._h5_bytes is not None else self.path
        with h5py.File(source, "r") as h5:
            if key not in h5:
                raise KerasFileError(f"{self.path.name}: no weight named {key}")
            return np.asarray(h5[key][()])


def _walk(h5, prefix: str = "") -> list[Weight]:
    import h5py

    found: list[Weight] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(Weight(prefix + name, obj.dtype.name, tuple(int(d) for d in obj.shape),
                                int(obj.size * obj.dtype.itemsize)))

    h5.visititems(visit)
    return found


def _layers(config: dict) -> tuple[str | None, str | None, list[dict], list[dict]]:
    model_class = config.get("class_name")
    inner = config.get("config", {}) if isinstance(config.get("config"), dict) else {}
    name = inner.get("name")
    layers = []
    inputs = []
    for layer in inner.get("layers", []) or []:
        if not isinstance(layer, dict):
            continue
        lconf = layer.get("config", {}) if isinstance(layer.get("config"), dict) else {}
        layers.append({"name": lconf.get("name", layer.get("name")), "class_name": layer.get("class_name")})
        if layer.get("class_name") == "InputLayer":
            shape = lconf.get("batch_shape") or lconf.get("batch_input_shape")
            inputs.append({"name": lconf.get("name"), "shape": list(shape) if shape else None,
                           "dtype": lconf.get("dtype")})
    return model_class, name, layers, inputs


def read_keras_file(path: str | Path) -> KerasInfo:
    path = Path(path)
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a declared dependency
        raise KerasFileError(f"{path.name}: reading Keras files needs h5py ({exc})") from exc
    try:
        if zipfile.is_zipfile(path):
            return _read_keras_zip(path)
        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version")
            config_text = h5.attrs.get("model_config")
            if isinstance(version, bytes):
                version = version.decode()
            if isinstance(config_text, bytes):
                config_text = config_text.decode()
            config = json.loads(config_text) if config_text else {}
            model_class, name, layers, inputs = _layers(config)
            weights = _walk(h5["model_weights"], "model_weights/") if "model_weights" in h5 else _walk(h5)
            info = KerasInfo(path, "hdf5", version, model_class, name, layers, weights, inputs)
            if not config_text:
                info.findings.append(Finding(INFO, f"{path.name} holds weights only (no model config): "
                                                   "restoring needs the architecture's code", str(path)))
            return info
    except OSError as exc:
        raise KerasFileError(f"{path.name} is not a Keras file (neither a .keras zip nor HDF5): {exc}") from exc
    except (json.JSONDecodeError, zipfile.BadZipFile, KeyError) as exc:
        raise KerasFileError(f"{path.name} is damaged: {exc}") from exc


def _read_keras_zip(path: Path) -> KerasInfo:
    import h5py

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        config = json.loads(zf.read("config.json")) if "config.json" in names else {}
        meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
        h5_bytes = zf.read("model.weights.h5") if "model.weights.h5" in names else None
    model_class, name, layers, inputs = _layers(config)
    weights: list[Weight] = []
    info = KerasInfo(path, "keras_v3", meta.get("keras_version"), model_class, name, layers, weights, inputs,
                     _h5_bytes=h5_bytes)
    if h5_bytes is None:
        info.findings.append(Finding(ERROR, f"{path.name} has no model.weights.h5 inside; only the "
                                            "architecture is browsable", str(path)))
    else:
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            weights.extend(_walk(h5))
    return info
