"""Loading dataset images into arrays with the shared (device) preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from flowercam.model.preprocess import ImageError, Preprocess, decode
from PIL import Image

from .console import progress
from .data import DatasetError, Sample


def load_arrays(samples: Sequence[Sample], spec: Preprocess, description: str | None = "loading") -> np.ndarray:
    """Decode and preprocess samples exactly as the device does (progress shown unless ``description`` is None).
    Returns (N, size, size, 3) uint8."""
    out = np.empty((len(samples), spec.size, spec.size, 3), dtype=np.uint8)
    def load(sample: Sample) -> np.ndarray:
        try:
            return spec(sample.path)
        except ImageError as err:
            raise DatasetError(f"{err} (build-models data lists every unreadable photo)") from None

    with progress(description or "", len(samples), show=description is not None) as advance, \
            ThreadPoolExecutor(2) as pool:
        for i, array in enumerate(pool.map(load, samples)):
            out[i] = array
            advance(1)
    return out


def load_photos(samples: Sequence[Sample], size: int, description: str | None = "decoding photos",
                ) -> list[Image.Image]:
    """Decoded RGB photos (EXIF-rotated), their short side capped at 1.25 × ``size``, for field views."""
    spec = Preprocess(round(size * 1.25))

    def photo(sample: Sample) -> Image.Image:
        image = decode(sample.path, spec)
        image.thumbnail((spec.draft_size(*image.size)), Image.Resampling.BILINEAR)
        return image

    with progress(description or "", len(samples), show=description is not None) as advance, \
            ThreadPoolExecutor(2) as pool:
        photos = []
        for image in pool.map(photo, samples):
            photos.append(image)
            advance(1)
    return photos


def labels_of(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([s.label for s in samples], dtype=np.int64)
