"""Images reach the model as RGB uint8, upright, whatever the file holds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detscope.core.media.images import ImageError, list_images, load_image


def test_exif_orientation_is_applied(tmp_path):
    # A 40 x 20 (w x h) picture stored sideways with "rotate 90 CW to view" (orientation 6).
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:, :10] = (255, 0, 0)  # red on the left when viewed upright
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "sideways.jpg", exif=exif.tobytes(), quality=95)
    img = load_image(tmp_path / "sideways.jpg")
    assert img.shape == (20, 40, 3)
    assert img[10, 2, 0] > 200 and img[10, 37, 0] < 60


@pytest.mark.parametrize("mode, value, expected", [
    ("L", 128, (128, 128, 128)),
    ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
    ("P", None, None),
    ("I;16", 65535, (255, 255, 255)),
    ("I;16", 32768, (127, 127, 127)),
])
def test_modes_become_rgb8(tmp_path, mode, value, expected):
    if mode == "P":
        img = Image.new("RGB", (8, 6), (200, 100, 50)).convert("P", palette=Image.Palette.ADAPTIVE)
        expected = (200, 100, 50)
    else:
        img = Image.new(mode, (8, 6), value)
    img.save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    assert tuple(int(v) for v in out[3, 4]) == expected


def test_unreadable_and_missing_images_name_the_file(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ImageError, match="notes.jpg is not a readable image"):
        load_image(tmp_path / "notes.jpg")
    with pytest.raises(ImageError, match="gone.png does not exist"):
        list_images([tmp_path / "gone.png"])
