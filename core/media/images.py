"""Images as the detector sees them: RGB ``uint8`` arrays, whatever the file holds.

EXIF orientation is applied; grayscale, palette, RGBA (alpha dropped, as a camera never sees it)
and 16-bit images become 8-bit RGB. Only regular files are opened, of at most 1 GB and
:data:`IMAGE_PIXEL_LIMIT` pixels (100 megapixels, 300 MB as RGB): anything else is refused by name.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..base import files
from ..base.errors import UserError

IMAGE_PIXEL_LIMIT = files.IMAGE_PIXEL_LIMIT

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


_PILLOW_PIXELS = re.compile(r"\((\d+) pixels\)")
_quiet_pillow = False


def load_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    return _decode(lambda: files.open_regular(path, what="image", limit=files.IMAGE_FILE_LIMIT, error=ImageError),
                   path.name)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """An image file's bytes (read from remote storage, a TFRecord) decoded as :func:`load_image` decodes a
    file, with the same limits; ``name`` names it in the one-line error."""
    import io

    if len(data) > files.IMAGE_FILE_LIMIT:
        raise ImageError(f"{name} is {len(data):,} bytes, more than the {files.IMAGE_FILE_LIMIT:,} detscope reads "
                         "for an image")
    return _decode(lambda: io.BytesIO(data), name)


def _decode(opener, name: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    global _quiet_pillow
    if not _quiet_pillow:  # Pillow warns (on stderr) from 89 megapixels; the limit here is detscope's own
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _quiet_pillow = True
    try:
        with opener() as f, Image.open(f) as img:
            w, h = img.size
            if w * h > IMAGE_PIXEL_LIMIT:
                raise ImageError(f"{name} is {w}x{h} pixels, more than the {IMAGE_PIXEL_LIMIT:,} "
                                 "detscope reads")
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
            return to_rgb8(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        m = _PILLOW_PIXELS.search(str(exc))
        raise ImageError(f"{name} has {m.group(1) if m else 'too many'} pixels, more than the "
                         f"{IMAGE_PIXEL_LIMIT:,} detscope reads") from exc
    except Exception as exc:  # a decoder's complaint, whatever its type, is about this image
        cause = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, UnidentifiedImageError):   # its text names a file object, not the file
            cause = "no image format Pillow knows"
        raise ImageError(f"{name} is not a readable image ({cause})") from exc


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
