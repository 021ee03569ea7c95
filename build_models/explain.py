"""Explanations of single predictions: Grad-CAM, LIME, and similar training images.

Grad-CAM follows keras-io's ``grad_cam.py``: gradients of the class logit with respect to the
backbone's last convolutional feature map (the registry's ``gradcam`` layer), averaged per
channel, weight the map. LIME uses the ``lime`` package's image explainer on superpixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from flowercam.model.scores import softmax


def gradcam(model: keras.Model, layer: str, image: np.ndarray, class_index: int | None = None
            ) -> tuple[np.ndarray, int]:
    """Grad-CAM heatmap in [0, 1] at the feature map's resolution, and the class explained.

    Args:
        model: raw RGB in, logits out.
        layer: name of the convolutional layer whose output is explained.
        image: (H, W, 3) uint8 or float 0-255.
        class_index: class to explain; the predicted one when None.
    """
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    x = tf.convert_to_tensor(image[np.newaxis].astype(np.float32))  # (1, H, W, 3) float32
    with tf.GradientTape() as tape:
        feature_map, logits = grad_model(x, training=False)  # (1, h, w, C), (1, classes)
        if class_index is None:
            class_index = int(tf.argmax(logits[0]))
        score = logits[:, class_index]
    grads = tape.gradient(score, feature_map)  # (1, h, w, C)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))  # (C,)
    heatmap = tf.nn.relu(tf.reduce_sum(feature_map[0] * weights, axis=-1)).numpy()  # (h, w)
    peak = heatmap.max()
    return (heatmap / peak if peak > 0 else heatmap), class_index


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap (jet colours) resized onto the image. Returns (H, W, 3) uint8."""
    import matplotlib
    from PIL import Image

    h, w = image.shape[:2]
    resized = np.asarray(Image.fromarray(np.uint8(255 * heatmap)).resize((w, h), Image.Resampling.BILINEAR))
    colours = matplotlib.colormaps["jet"](resized / 255.0)[..., :3] * 255
    return np.uint8(np.clip((1 - alpha) * image + alpha * colours, 0, 255))


def predict_fn(model: keras.Model, batch_size: int = 32) -> Callable[[np.ndarray], np.ndarray]:
    """Images (N, H, W, 3) 0-255 -> softmax probabilities, in batches (for LIME)."""
    def predict(images: np.ndarray) -> np.ndarray:
        return softmax(model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0))

    return predict


def photo_superpixels(image: np.ndarray, segments: int = 40) -> np.ndarray:
    """About ``segments`` SLIC superpixels of a 0-255 photo: regions large enough to see in a figure (LIME's
    default quickshift cuts a 288 px photo into hundreds of slivers)."""
    from skimage.segmentation import slic

    return slic(np.asarray(image) / 255.0, n_segments=segments, compactness=20, start_label=0)


def lime_explanation(model: keras.Model, image: np.ndarray, labels: tuple[int, ...], num_samples: int = 300,
                     seed: int = 0, segmenter=None):
    """LIME on superpixels for ``labels``. Returns the ``lime`` explanation object."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # lime draws a tqdm bar per photo; build-models shows its own
    from lime import lime_image

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    segmenter = segmenter or photo_superpixels
    return explainer.explain_instance(image.astype(np.float64), predict_fn(model), labels=labels, top_labels=None,
                                      hide_color=0, num_samples=num_samples, random_seed=seed,
                                      segmentation_fn=segmenter)


LIME_TINT = np.array([40.0, 220.0, 70.0])  # the colour laid over the regions that support the class


def lime_panel(image: np.ndarray, explanation, label: int, num_features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The photo with the (up to ``num_features``) superpixels that most support ``label`` tinted green and the
    rest dimmed to grey. Returns (panel (H, W, 3) uint8, mask of the chosen regions (H, W) bool)."""
    positive = sorted((w, s) for s, w in explanation.local_exp[label] if w > 0)[-num_features:]
    mask = np.isin(explanation.segments, [s for _, s in positive])
    photo = image.astype(np.float32)
    grey = photo.mean(axis=-1, keepdims=True)
    dimmed = 0.35 * (0.5 * photo + 0.5 * grey) + 20
    tinted = 0.6 * photo + 0.4 * LIME_TINT
    panel = np.where(mask[..., None], tinted, dimmed)
    from skimage.segmentation import find_boundaries

    panel[find_boundaries(mask, mode="thick")] = LIME_TINT  # outlined as well: a tint alone fades on some colours
    return np.uint8(np.clip(panel, 0, 255)), mask


class Embeddings:
    """Pooled backbone features of a set of images, searched by Euclidean (the seed's) or cosine distance."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
        self.vectors, self.labels, self.names = vectors.astype(np.float32), np.asarray(labels), names

    @classmethod
    def load_or_compute(cls, path: Path, model: keras.Model, images: Callable[[], np.ndarray], labels: np.ndarray,
                        names: list[str]) -> Embeddings:
        """Read the cache at ``path`` or compute the embeddings with ``embedding_model(model)``."""
        if path.exists():
            data = np.load(path, allow_pickle=False)
            return cls(data["vectors"], data["labels"], list(data["names"]))
        from .fitting import predict_batches
        from .heads import embedding_model

        vectors = predict_batches(embedding_model(model), images(), description="embeddings")
        np.savez(path, vectors=vectors, labels=labels, names=np.array(names))
        return cls(vectors, labels, names)

    def nearest(self, query: np.ndarray, k: int = 5, metric: str = "euclidean",
                within_class: int | None = None) -> list[tuple[int, float]]:
        """Indices and distances of the ``k`` nearest vectors, closest first (optionally one class only)."""
        from sklearn.metrics import pairwise_distances

        candidates = np.arange(len(self.vectors)) if within_class is None else \
            np.flatnonzero(self.labels == within_class)
        distances = pairwise_distances(query[np.newaxis], self.vectors[candidates], metric=metric)[0]
        order = np.argsort(distances, kind="stable")[:k]
        return [(int(candidates[i]), float(distances[i])) for i in order]
