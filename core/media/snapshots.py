"""Snapshots and saved images: written where the user says, never inside a model folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .sources import SourceError


def check_outside(folder: Path, model_folder: Path | None) -> None:
    """Refuse to write into a model folder (snapshots and saved images belong to the user)."""
    if model_folder is None:
        return
    folder, model_folder = Path(folder).resolve(), Path(model_folder).resolve()
    if model_folder.is_file():
        model_folder = model_folder.parent
    if folder == model_folder or model_folder in folder.parents:
        raise SourceError(f"{folder} is inside the model folder; choose a folder of your own")


def save_snapshot(folder, image: np.ndarray, detections=None, *, stem: str | None = None,
                  model_folder: Path | None = None, annotated: np.ndarray | None = None,
                  info: dict | None = None) -> list[Path]:
    """Write ``STEM.png`` (the frame), ``STEM.json`` (its detections) and, when given, ``STEM_annotated.png``."""
    from PIL import Image

    folder = Path(folder).expanduser()
    check_outside(folder, model_folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or time.strftime("snapshot-%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    written = []
    image_path = folder / f"{stem}.png"
    Image.fromarray(np.ascontiguousarray(image)).save(image_path)
    written.append(image_path)
    if annotated is not None:
        path = folder / f"{stem}_annotated.png"
        Image.fromarray(np.ascontiguousarray(annotated)).save(path)
        written.append(path)
    record = {"image": image_path.name, "width": int(image.shape[1]), "height": int(image.shape[0]),
              **(info or {}),
              "detections": detections.as_json() if detections is not None else []}
    json_path = folder / f"{stem}.json"
    json_path.write_text(json.dumps(record, indent=1))
    written.append(json_path)
    return written
