"""Images as the detector sees them: RGB ``uint8`` arrays, whatever the file holds.

EXIF orientation is applied; grayscale, palette, RGBA (alpha dropped, as a camera never sees it)
and 16-bit images become 8-bit RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageError(UserError):
    """An image that cannot be read; one line naming the file."""


def to_rgb8(img) -> np.ndarray:
    """A Pillow image as an ``(H, W, 3)`` uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = a.max() if a.size and a.max() > 255 else 255.0
        a = np.clip(a / (65535.0 if top > 4095 else top) * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
        a = ((a - lo) / ((hi - lo) or 1.0) * 255.0).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=-1)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
            return to_rgb8(img)
    except FileNotFoundError as exc:
        raise ImageError(f"{path} does not exist") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"{path.name} is not a readable image ({exc})") from exc


def list_images(paths) -> list[Path]:
    """Files as given, folders expanded to their images (sorted by name)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise ImageError(f"{p} does not exist")
    return out
