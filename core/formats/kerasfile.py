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

from . import h5probe
from ..base import files
from ..base.errors import LoadRefused, UserError
from ..base.findings import ERROR, INFO, WARNING, Finding

UNSAFE_KERAS_FLAG = "--unsafe-keras"


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
    # What loading the file would run: one entry per layer holding marshalled Python code (a Lambda's
    # lambda), e.g. "Lambda 'scale' (its function is marshalled Python bytecode)". Keras only loads
    # such a file with safe_mode off (the command line's --unsafe-keras, a confirmation in the window).
    code: list[str] = field(default_factory=list)
    _h5_bytes: bytes | None = None  # the weights file of a .keras zip, kept to read values on demand

    def read(self, key: str):
        try:
            return self._read(key)
        except (OSError, RuntimeError, ValueError, TypeError, MemoryError, SystemError) as exc:  # h5py, damaged file
            raise KerasFileError(f"{self.path.name}: {key} cannot be read ({type(exc).__name__}: "
                                 f"{_one_line(exc)})") from exc

    def _read(self, key: str):
        import h5py
        import numpy as np

        if self._h5_bytes is None:  # h5py opens the path itself
            files.check_regular(self.path, what="Keras file", name=self.path.name, error=KerasFileError)
        source = io.BytesIO(self._h5_bytes) if self._h5_bytes is not None else self.path
        with h5py.File(source, "r") as h5:
            if key not in h5 or not isinstance(h5.get(key, getlink=True), h5py.HardLink):
                raise KerasFileError(f"{self.path.name}: no weight named {key}")
            dataset = h5[key]
            if isinstance(dataset, h5py.Dataset):
                outside = _outside(key, dataset)
                if outside:
                    raise KerasFileError(f"{self.path.name}: {outside}; {REFUSED_OUTSIDE}")
                # a dataset may claim any shape and leave its storage unwritten: ask before holding it
                files.check_memory(dataset.size * dataset.dtype.itemsize, f"{key} in {self.path.name}",
                                   KerasFileError)
            return np.asarray(dataset[()])

    def refusal(self) -> LoadRefused | None:
        """The error that refuses to load this file with safe mode on, when loading would run its code."""
        if not self.code:
            return None
        return LoadRefused(
            f"{self.path.name}: refusing to load it: loading runs the Python code stored in it: "
            f"{'; '.join(self.code[:3])}{f'; and {len(self.code) - 3} more' if len(self.code) > 3 else ''}; "
            f"pass {UNSAFE_KERAS_FLAG} to load it anyway, only if you trust where it came from",
            file=str(self.path), would_run=self.code, options={"safe_mode": False}, flag=UNSAFE_KERAS_FLAG)


REFUSED_OUTSIDE = "detscope does not read HDF5 files that point outside themselves"


def _outside(name: str, dataset) -> str | None:
    """Why ``dataset`` reads from another file (HDF5 external storage, a virtual dataset), or None."""
    plist = dataset.id.get_create_plist()
    count = plist.get_external_count()
    if count:
        target = plist.get_external(0)[0]
        target = target.decode("utf-8", "replace") if isinstance(target, bytes) else str(target)
        return f"dataset {name} keeps its values in another file ({target}{f' and {count - 1} more' if count > 1 else ''}, " \
               "HDF5 external storage)"
    if dataset.is_virtual:
        sources = sorted({m.file_name for m in dataset.virtual_sources()})
        return f"dataset {name} is a virtual dataset mapped from other files ({', '.join(sources[:2]) or '?'})"
    return None


def refuse_outside_links(h5, where: str) -> None:
    """KerasFileError when an HDF5 file reaches into other files: an external link, a dataset kept in an
    external file or a virtual dataset. Reading it would hand over any local file's bytes as a weight."""
    import h5py

    problem: list[str] = []

    def visit(name, link):
        if isinstance(link, h5py.ExternalLink):
            problem.append(f"{name} is an external link to {link.filename}:{link.path}")
        elif isinstance(link, h5py.HardLink):
            obj = h5.get(name)
            if isinstance(obj, h5py.Dataset):
                outside = _outside(name, obj)
                if outside:
                    problem.append(outside)
        return problem[0] if problem else None    # a value stops the visit

    h5.visititems_links(visit)
    if problem:
        raise KerasFileError(f"{where}: {problem[0]}; {REFUSED_OUTSIDE}")


def code_in_config(config) -> list[str]:
    """The layers of a saved Keras config that hold marshalled Python code (Keras 2's ``function_type:
    "lambda"``, Keras 3's ``__lambda__``), one entry each; walked without recursion."""
    found: dict[tuple[str, str], str] = {}
    stack = [(config, "the model")]
    while stack:
        value, owner = stack.pop()
        if isinstance(value, list):
            stack.extend((v, owner) for v in value)
            continue
        if not isinstance(value, dict):
            continue
        cls = value.get("class_name")
        inner = value.get("config") if isinstance(value.get("config"), dict) else None
        if cls == "__lambda__":
            found.setdefault((owner, "lambda"), f"{owner} (a Python lambda stored as marshalled bytecode)")
            continue
        if isinstance(cls, str) and inner is not None:
            name = inner.get("name", value.get("name"))
            owner = f"{cls} {name!r}" if isinstance(name, str) else cls
            for key, kind in inner.items():
                if isinstance(key, str) and key.endswith("_type") and kind == "lambda":
                    part = key[: -len("_type")]
                    found.setdefault((owner, part), f"{owner} (its {part} is marshalled Python bytecode)")
        stack.extend((v, owner) for v in value.values())
    return list(found.values())


def _code_finding(info: "KerasInfo") -> None:
    if info.code:
        info.findings.append(Finding(
            WARNING, f"loading {info.path.name} runs the Python code stored in it: {'; '.join(info.code[:3])}"
                     f"{f'; and {len(info.code) - 3} more' if len(info.code) > 3 else ''}; detect and restore "
                     f"refuse it without {UNSAFE_KERAS_FLAG} (the window asks first)", str(info.path)))


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
    # h5py and zipfile open the path themselves: a FIFO or a device there would never let them finish
    files.check_regular(path, what="Keras file", name=path.name, error=KerasFileError)
    try:
        if zipfile.is_zipfile(path):
            return _read_keras_zip(path)
        h5probe.check(path, KerasFileError)  # HDF5 loops for ever on some damaged files, holding the GIL
        with h5py.File(path, "r") as h5:
            refuse_outside_links(h5, path.name)
            version = h5.attrs.get("keras_version")
            config_text = h5.attrs.get("model_config")
            if isinstance(version, bytes):
                version = version.decode()
            if isinstance(config_text, bytes):
                config_text = config_text.decode()
            config = json.loads(config_text) if config_text else {}
            model_class, name, layers, inputs = _layers(config)
            weights = _walk(h5["model_weights"], "model_weights/") if "model_weights" in h5 else _walk(h5)
            info = KerasInfo(path, "hdf5", version, model_class, name, layers, weights, inputs,
                             code=code_in_config(config))
            _code_finding(info)
            if not config_text:
                info.findings.append(Finding(INFO, f"{path.name} holds weights only (no model config): "
                                                   "restoring needs the architecture's code", str(path)))
            return info
    except OSError as exc:
        raise KerasFileError(f"{path.name} is not a Keras file (neither a .keras zip nor HDF5): "
                             f"{_one_line(exc)}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError, OverflowError, MemoryError, EOFError,
            NotImplementedError, SystemError, zipfile.BadZipFile) as exc:  # h5py, zipfile, json on a damaged file
        cause = exc.__cause__ if isinstance(exc, SystemError) and exc.__cause__ is not None else exc  # h5py's wrap
        raise KerasFileError(f"{path.name} is damaged ({type(cause).__name__}: {_one_line(cause)})") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _read_keras_zip(path: Path) -> KerasInfo:
    import h5py

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for member, limit in (("config.json", files.CONFIG_LIMIT), ("metadata.json", files.CONFIG_LIMIT)):
            size = zf.getinfo(member).file_size if member in names else 0
            if size > limit:  # a zip bomb: a few KB that inflate to gigabytes
                raise KerasFileError(f"{path.name}: its {member} is {size} bytes, more than any real one")
        if "model.weights.h5" in names:
            files.check_memory(zf.getinfo("model.weights.h5").file_size, f"{path.name}'s model.weights.h5",
                               KerasFileError)
        config = json.loads(zf.read("config.json")) if "config.json" in names else {}
        meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
        h5_bytes = zf.read("model.weights.h5") if "model.weights.h5" in names else None
    model_class, name, layers, inputs = _layers(config)
    weights: list[Weight] = []
    info = KerasInfo(path, "keras_v3", meta.get("keras_version"), model_class, name, layers, weights, inputs,
                     code=code_in_config(config), _h5_bytes=h5_bytes)
    _code_finding(info)
    if h5_bytes is None:
        info.findings.append(Finding(ERROR, f"{path.name} has no model.weights.h5 inside; only the "
                                            "architecture is browsable", str(path)))
    else:
        h5probe.check(path, KerasFileError, member="model.weights.h5")
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            refuse_outside_links(h5, f"{path.name} (model.weights.h5)")
            weights.extend(_walk(h5))
    return info
