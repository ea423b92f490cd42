"""What a command line or a drop asks to open: a model, images, a video or stream."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..browse.folders import looks_like_model_part
from ..media.images import IMAGE_SUFFIXES
from ..media.sources import STREAM_SCHEMES, VIDEO_SUFFIXES, SourceError


@dataclass
class OpenRequest:
    """What a command line or a drop asks to open: at most one model, images, at most one video."""

    model: Path | None = None
    images: list[Path] | None = None
    video: str | None = None


def is_video(path) -> bool:
    text = str(path)
    return text.lower().startswith(STREAM_SCHEMES) or Path(text).suffix.lower() in VIDEO_SUFFIXES


def is_image(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _holds_images_only(folder: Path) -> bool:
    """A folder of images (and their annotation files), not a model folder."""
    try:
        names = [p for p in folder.iterdir()]
    except OSError:
        return False
    if any(looks_like_model_part(p) for p in names):
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in names)


def classify_paths(paths) -> OpenRequest:
    """Sort paths into a model, images and a video. The first path that is neither is the model."""
    req = OpenRequest(images=[])
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if is_video(raw):
            req.video = str(raw) if str(raw).lower().startswith(STREAM_SCHEMES) else str(p)
        elif p.is_file() and is_image(p):
            req.images.append(p)
        elif p.is_dir() and _holds_images_only(p):
            req.images.append(p)
        elif req.model is None:
            req.model = p
        else:
            raise SourceError(f"{p}: only one model can be opened at a time (already have {req.model.name})")
    return req


