"""Augmented views that look like the photos people take, for the feature cache (numpy + Pillow).

Oxford-102 photos are close-ups of one flower; a garden camera or a phone sees wide shots,
small blooms, context, blur, noise, JPEG artefacts and colour casts. Each view draws one
framing and a few photometric faults from a seeded generator:

- framing: a random-resized crop down to ``min_area`` of the photo (aspect 3/4-4/3), a
  zoom-out that shows the photo small on its own blurred, enlarged surroundings, the
  whole photo letterboxed, or a mosaic of 2×2 or 3×3 photos of the same class (a field,
  a bed or a bouquet of one species); otherwise the device's centred square;
- faults, each with its own probability: Gaussian blur, sensor noise, JPEG re-encoding,
  a colour cast and contrast change.

Rotation, flips, brightness and saturation stay in the Keras augmenter applied after.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flowercam.model.preprocess import Preprocess
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class FieldViews:
    """How a decoded RGB photo becomes one augmented (size, size, 3) uint8 view."""

    size: int
    min_area: float = 0.15  # random-resized crop: smallest area fraction of the photo
    p_crop: float = 0.45
    p_zoom_out: float = 0.2
    zoom_out_side: tuple[float, float] = (0.4, 0.85)  # the photo's side as a fraction of the view
    p_whole: float = 0.15  # whole photo, letterboxed on its blurred surroundings
    p_mosaic: float = 0.0  # a grid of photos of the same class (needs ``peers``)
    p_blur: float = 0.2
    p_noise: float = 0.2
    p_jpeg: float = 0.3
    p_cast: float = 0.3

    def __call__(self, image: Image.Image, rng: np.random.Generator,
                 peers: Sequence[Image.Image] = ()) -> np.ndarray:
        """One augmented view of an RGB ``image`` (``peers``: other photos of its class). Returns (size, size, 3)
        uint8."""
        draw = rng.random()
        if peers and draw > 1.0 - self.p_mosaic:
            view = self._mosaic(image, peers, rng)
        elif draw < self.p_crop:
            view = self._crop(image, rng)
        elif draw < self.p_crop + self.p_zoom_out:
            side = rng.uniform(*self.zoom_out_side)
            view = self._place(_square(image), side, rng)
        elif draw < self.p_crop + self.p_zoom_out + self.p_whole:
            view = self._place(image, 1.0, rng)
        else:
            view = Preprocess(self.size).to_array(image)
        return self._faults(view, rng)

    def _crop(self, image: Image.Image, rng: np.random.Generator) -> np.ndarray:
        """A random box of area fraction in [min_area, 1] and aspect in [3/4, 4/3], resized to the view."""
        width, height = image.size
        for _ in range(10):
            area = width * height * rng.uniform(self.min_area, 1.0)
            aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
            if w <= width and h <= height:
                left, top = rng.uniform(0, width - w), rng.uniform(0, height - h)
                box = (left, top, left + w, top + h)
                return np.asarray(image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box))
        return Preprocess(self.size).to_array(image)

    def _mosaic(self, image: Image.Image, peers: Sequence[Image.Image], rng: np.random.Generator) -> np.ndarray:
        """A 2×2 or 3×3 grid: ``image`` and photos of the same class, each a random crop, in random places."""
        n = int(rng.integers(2, 4))
        tile = FieldViews(self.size // n, min_area=0.3)
        tiles = [image, *(peers[int(i)] for i in rng.integers(0, len(peers), n * n - 1))]
        grid = np.zeros((n * tile.size, n * tile.size, 3), np.uint8)
        for slot, photo in zip(rng.permutation(n * n), tiles):
            row, col = divmod(int(slot), n)
            grid[row * tile.size:(row + 1) * tile.size, col * tile.size:(col + 1) * tile.size] = tile._crop(photo, rng)
        return np.asarray(Image.fromarray(grid).resize((self.size, self.size), Image.Resampling.BILINEAR))

    def _place(self, image: Image.Image, side: float, rng: np.random.Generator) -> np.ndarray:
        """``image`` fitted into ``side`` of the view at a random place, on its own blurred surroundings."""
        return Preprocess(self.size).whole(image, side, (rng.uniform(), rng.uniform()))

    def _faults(self, view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur, noise, colour cast and JPEG artefacts, each with its probability."""
        image = Image.fromarray(view)
        if rng.random() < self.p_blur:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.0) * self.size / 288))
        pixels = np.asarray(image, np.float32)
        if rng.random() < self.p_cast:
            gains = rng.uniform(0.85, 1.15, 3).astype(np.float32)
            contrast = np.float32(rng.uniform(0.75, 1.2))
            pixels = (pixels * gains - 128.0) * contrast + 128.0
        if rng.random() < self.p_noise:
            pixels = pixels + rng.normal(0.0, rng.uniform(3.0, 12.0), pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        if rng.random() < self.p_jpeg:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=int(rng.integers(20, 75)))
            image = Image.open(buffer).convert("RGB")
        return np.asarray(image, np.uint8)


def _square(image: Image.Image) -> Image.Image:
    """The centred square of the short side (the flower as the device would frame it)."""
    return image.crop(tuple(round(v) for v in Preprocess().crop_box(*image.size)))
