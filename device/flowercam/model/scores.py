"""Scores from a model's output tensors: which output is which, dequantization, softmax, top-k.

The one home of these rules: the classifier, ``build-models export``, the metadata writer and the bench
scripts all read a model's outputs through here. Pure numpy, testable without a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Class:
    """One class of a prediction: 0-based index in the model's labels, name, calibrated score."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Outputs:
    """Where each output of a model is, as indices into ``interpreter.get_output_details()``.

    ``classes``: (1, n_labels) scores; ``similarity``: (1, 1) cosine to the nearest class mean;
    ``embedding``: (1, D) L2-normalised pooled features (D != n_labels). None where a model has no such output.
    """

    classes: int
    similarity: int | None = None
    embedding: int | None = None


def output_roles(sizes: list[int], n_labels: int) -> Outputs:
    """Tell a model's outputs apart by their sizes (elements per output, in the interpreter's order).

    Raises:
        ValueError: no output has ``n_labels`` elements, or two outputs claim the same role.
    """
    classes = [i for i, n in enumerate(sizes) if n == n_labels]
    single = [i for i, n in enumerate(sizes) if n == 1 and n != n_labels]
    other = [i for i, n in enumerate(sizes) if n not in (1, n_labels)]
    if len(classes) != 1 or len(single) > 1 or len(other) > 1:
        raise ValueError(f"outputs of sizes {sizes}: expected one of {n_labels} (classes), at most one of 1 "
                         "(similarity) and at most one other (embedding)")
    return Outputs(classes[0], single[0] if single else None, other[0] if other else None)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor -> real values (float64), via int64 as pycoral does; float tensors (scale 0) pass through."""
    if scale == 0.0:
        return values.astype(np.float64)
    return scale * (values.astype(np.int64) - zero_point)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` along the last axis."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(raw: np.ndarray, kind: str, temperature: float = 1.0) -> np.ndarray:
    """Calibrated probabilities from a dequantized class output: ``kind`` "probabilities" (softmax inside the
    graph: renormalised, as int8 rounding leaves the sum near 1) or "logits" (softmax with the temperature)."""
    if kind == "probabilities":
        return raw / np.maximum(raw.sum(axis=-1, keepdims=True), 1e-12)
    return softmax(raw, temperature)


def top_k(scores: np.ndarray, labels: tuple[str, ...], k: int) -> tuple[Class, ...]:
    """The ``k`` best classes, highest score first (ties: lower index first)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple(Class(int(i), labels[i], round(float(scores[i]), 6)) for i in order)


def is_uncertain(score, similarity, uncertain_below, similarity_below):
    """The uncertain rule (the one home of it): a calibrated top-1 score under ``uncertain_below``, or a photo less
    similar than ``similarity_below`` to the photos of its class (models with a similarity output; a learned
    class: its owner's photos). Scalars give a bool; arrays (N,) give (N,) bools, NaN meaning "no check"."""
    if similarity is None or similarity_below is None:
        return np.less(score, uncertain_below)
    return np.less(score, uncertain_below) | np.less(similarity, similarity_below)
