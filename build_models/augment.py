"""Augmentation as Keras preprocessing layers: applied to each batch of views as the feature cache is built
(``train.build_cache``), and inside a ``tf.data`` pipeline on the uncached path.

The seed's set (rotation ±20°, brightness 0.7-1.3, zoom 0.8-1.2, horizontal flip), plus
optional colour jitter for robustness to other cameras and light.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="flowercam")
class RandomBrightnessScale(layers.Layer):
    """Multiply pixel values by a random factor in [low, high] per image (0-255 range kept)."""

    def __init__(self, low: float = 0.7, high: float = 1.3, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.low, self.high = low, high
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        shape = (ops.shape(images)[0], 1, 1, 1)
        factor = keras.random.uniform(shape, self.low, self.high, seed=self.seed_generator)
        return ops.clip(images * factor, 0.0, 255.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "low": self.low, "high": self.high}


def augmenter(rotation_deg: float = 20.0, zoom: float = 0.2, brightness: tuple[float, float] = (0.7, 1.3),
              saturation: float = 0.0, seed: int = 0) -> keras.Sequential:
    """The augmentation stack for (batch, H, W, 3) float32 images in 0-255."""
    stack = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(rotation_deg / 360.0, fill_mode="reflect", seed=seed + 1),
        layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed + 2),
        RandomBrightnessScale(*brightness, seed=seed + 3),
    ]
    if saturation:
        stack.append(layers.RandomSaturation((0.5 - saturation / 2, 0.5 + saturation / 2), value_range=(0, 255),
                                             seed=seed + 4))
    return keras.Sequential(stack, name="augment")
