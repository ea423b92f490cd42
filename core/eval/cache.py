"""The detections cache: each image's detections at threshold 0, computed once per model and image.

Kept in detscope's data folder (``<data>/detections-cache/<model key>/<image key>.npz``), never inside a
model folder. The model key hashes what decides the detections:

- the graph: a SavedModel's ``fingerprint.pb`` (TensorFlow's own hashes of the graph, signatures and
  objects), else its ``saved_model.pb``; a Keras file whole;
- the weights: ``variables/variables.index`` and the restored checkpoint's ``ckpt-N.index`` (an index
  records the CRC-32C of every tensor's bytes, so it changes with any weight);
- how outputs are read: the signature, the output mapping, the input scale;
- this cache's format version.

The image key hashes the image file's bytes, so a renamed or moved image is still found and an edited
one is not. A model detscope cannot fingerprint (one built by a factory function) is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..base.paths import data_dir
from ..detect.detections import Detections

CACHE_VERSION = 1
_CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest_file(path: Path, h=None) -> str:
    h = h or hashlib.blake2b(digest_size=16)
    with Path(path).open("rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _saved_model_files(folder: Path | None) -> list[Path]:
    if folder is None:
        return []
    folder = Path(folder)
    graph = folder / "fingerprint.pb"
    if not graph.is_file():
        graph = folder / "saved_model.pb"
    index = folder / "variables" / "variables.index"
    return [p for p in (graph, index) if p.is_file()]


def model_key(*, how: str, saved_model: Path | None = None, keras_file: Path | None = None,
              checkpoint_index: Path | None = None, signature: str | None = None, mapping: dict | None = None,
              scale: str | None = None) -> str | None:
    """The cache key of a loaded model, or None when it cannot be fingerprinted."""
    if how == "factory":
        return None
    files = _saved_model_files(saved_model)
    if keras_file is not None:
        files.append(Path(keras_file))
    if checkpoint_index is not None:
        files.append(Path(checkpoint_index))
    if not files:
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"version": CACHE_VERSION, "how": how, "signature": signature, "mapping": mapping,
                         "scale": scale}, sort_keys=True, default=str).encode())
    for f in files:
        h.update(f.name.encode())
        digest_file(f, h)
    return h.hexdigest()


class DetectionsCache:
    """Detections by image content, for one model key."""

    def __init__(self, key: str, root: Path | None = None):
        self.key = key
        self.folder = (root or data_dir() / "detections-cache") / key

    def _file(self, image_key: str) -> Path:
        return self.folder / f"{image_key}.npz"

    def get(self, image_key: str, class_names: dict[int, str] | None = None) -> Detections | None:
        path = self._file(image_key)
        try:
            with np.load(path, allow_pickle=False) as z:
                ids = z["class_ids"].astype(np.int64)
                labels = [str(s) for s in z["labels"]]
                if class_names:
                    labels = [class_names.get(int(c), lab) for c, lab in zip(ids, labels)]
                multi = z["multiclass_scores"] if "multiclass_scores" in z.files else None
                return Detections(z["boxes"].astype(np.float32), z["scores"].astype(np.float32), ids, tuple(labels),
                                  int(z["size"][0]), int(z["size"][1]), multi,
                                  tuple(int(c) for c in z["class_columns"]))
        except (OSError, KeyError, ValueError, EOFError):   # absent, or a damaged entry: computed again
            return None

    def put(self, image_key: str, dets: Detections, about: dict | None = None) -> None:
        """Store atomically (a reader never sees half a file); failures to write are not errors."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "model.json"
            if about and not meta.exists():
                meta.write_text(json.dumps(about, indent=2, default=str))
            arrays = {"boxes": dets.boxes, "scores": dets.scores, "class_ids": dets.class_ids,
                      "labels": np.array(dets.labels, dtype=str) if len(dets) else np.zeros(0, "<U1"),
                      "size": np.array([dets.width, dets.height], np.int64),
                      "class_columns": np.array(dets.class_columns, np.int64)}
            if dets.multiclass_scores is not None:
                arrays["multiclass_scores"] = dets.multiclass_scores
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, self._file(image_key))
        except OSError:
            pass
