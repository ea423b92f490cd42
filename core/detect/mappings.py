"""Hand-made output mappings, kept in detscope's own data folder (never in the model folder).

A mapping is keyed by what was opened and which signature it maps: :func:`mapping_key` is the
only place that key is derived, so ``detscope map-outputs``, the window's Model ▸ Map outputs
and the loader always agree on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..base.paths import data_dir
from .conventions import DetectorError, OutputMapping

KERAS_CALL = "__call__"          # the "signature" of a Keras model: calling it
SERVING_DEFAULT = "serving_default"


def default_signature(names: Iterable[str]) -> str | None:
    """The signature a model is run with when none is asked for: ``serving_default``, else the first by name."""
    names = sorted(names)
    if not names:
        return None
    return SERVING_DEFAULT if SERVING_DEFAULT in names else names[0]


@dataclass(frozen=True)
class MappingKey:
    """What a hand-made mapping is for: the model file or folder (or factory file) and a signature."""

    model: Path
    signature: str

    def file(self) -> Path:
        ident = hashlib.sha1(f"{self.model}::{self.signature}".encode()).hexdigest()[:16]
        return data_dir() / "output-mappings" / f"{ident}.json"


def mapping_key(model: str | Path, *, keras: bool = False, signature: str | None = None,
                signatures: Iterable[str] = ()) -> MappingKey:
    """The key of the mapping for ``model``: a Keras model maps its call, anything else the asked
    signature or the one :func:`default_signature` picks among ``signatures``."""
    if keras:
        name = KERAS_CALL
    else:
        name = signature or default_signature(signatures) or SERVING_DEFAULT
    return MappingKey(Path(model).resolve(), name)


def save_mapping(key: MappingKey, mapping: OutputMapping) -> Path:
    path = key.file()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": str(key.model), "signature": key.signature, "mapping": mapping.as_json()}
    path.write_text(json.dumps(payload, indent=2))
    return path


def forget_mapping(key: MappingKey) -> bool:
    path = key.file()
    if path.is_file():
        path.unlink()
        return True
    return False


def load_mapping(key: MappingKey) -> OutputMapping | None:
    path = key.file()
    if not path.is_file():
        return None
    try:
        return OutputMapping.from_json(json.loads(path.read_text())["mapping"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DetectorError(f"{path}: saved output mapping is damaged ({exc})") from exc
