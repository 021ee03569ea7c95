"""Fitting an adapter on embeddings: numpy only, seconds on a Raspberry Pi.

Inputs are the owner's photos (unit embeddings, base probabilities, class indices over base + added classes)
and the anchors that travel with the model (embeddings and base probabilities of its own training photos).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..model.adapter import KINDS, Adapter, Answers, offsets
from ..model.scores import softmax


@dataclass(frozen=True)
class Photos:
    """Embedded photos: (N, D) unit embeddings, (N, base) base probabilities, (N,) class indices."""

    embeddings: np.ndarray
    probs: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Photos:
        return Photos(self.embeddings[rows], self.probs[rows], self.labels[rows])


DEFAULT_KIND = "gate"  # the one home of the default: flowercam learn, the daemon's Learn and the bench use it


@dataclass(frozen=True)
class Recipe:
    """How an adapter is fitted (one record, the defaults are the measured best: bench/learning.py)."""

    kind: str = DEFAULT_KIND
    l2: float = 3e-5  # weight decay on W (gate: gate_l2)
    steps: int = 300
    lr: float = 10.0
    gate_l2: float = 1.5e-4
    # the anchors' total weight relative to the owner's photos: the lower, the more the taught classes take (better
    # on held-out garden_pool photos at every weight tried) and the more uncertain the model's own classes get; the
    # lowest that keeps the Oxford test at most 8 % uncertain and at least 95 % top-1 (bench/results/learning.md)
    anchor_weight: float = 0.2
    anchors_match: int = 75  # beyond this many owner photos, the anchors' weight grows with theirs
    scale: float = 16.0  # prototypes: logits = scale * cosine
    anchor_softening: float = 0.5  # anchors' base log-probabilities are multiplied by this while fitting
    base_bias: bool = False  # residual: a learned bias for taught base classes too (shifts every photo's answer)
    # The neighbour rule of a taught class (chosen on field_dev with tulips untaught, as the model's own thresholds
    # were: bench/learning.py). A taught answer is confident when its probability is at least ``uncertain_below``
    # and its nearest owner photo of the class is at least as close as (a) the ``floor_quantile`` of the nearest
    # distances from the anchors of other species to those owner photos and (b) the nearest photo of any other
    # class plus the margin ``margin_at_one + margin_per_log * ln(photos of the class)`` (the nearest of more
    # photos is closer by chance: the margin grows with their number).
    uncertain_below: float = 0.45
    gate_slack: float = 0.15  # gate: see Adapter.gate_slack
    keep_margin: float = 0.05  # gate: see Adapter.keep_margin
    floor_quantile: float = 0.9
    margin_at_one: float = -0.10
    margin_per_log: float = 0.025


DEFAULT_RECIPE = Recipe()


def class_means(photos: Photos, classes: int) -> np.ndarray:
    """(classes, D) unit mean embedding per class (zero rows for classes without photos)."""
    means = np.zeros((classes, photos.embeddings.shape[1]), np.float64)
    np.add.at(means, photos.labels, photos.embeddings)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return np.divide(means, norms, out=np.zeros_like(means), where=norms > 0)


def _softmax_regression(x: np.ndarray, offsets: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                        mask: np.ndarray, bias_mask: np.ndarray, recipe: Recipe, start: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the weighted cross-entropy of softmax(offsets + x W^T + b) (rows of W and b where ``mask`` is
    False stay 0) plus l2 * |W|^2, by full-batch gradient descent with Nesterov momentum. Returns (W, b)."""
    n_classes = offsets.shape[1]
    w = start.copy()
    b = np.zeros(n_classes)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    weights = weights / weights.sum()
    for _ in range(recipe.steps):
        lw, lb = w + 0.9 * vw, b + 0.9 * vb
        p = softmax(offsets + x @ lw.T + lb)
        p[np.arange(len(targets)), targets] -= 1.0
        g = p * weights[:, None]
        gw = (g.T @ x + 2 * recipe.l2 * lw) * mask[:, None]
        gb = g.sum(0) * bias_mask
        vw, vb = 0.9 * vw - recipe.lr * gw, 0.9 * vb - recipe.lr * gb
        w, b = w + vw, b + vb
    return w, b


def fit(own: Photos, anchors: Photos, labels: tuple[str, ...], base_classes: int, base_sha256: str,
        recipe: Recipe = DEFAULT_RECIPE) -> Adapter:
    """An adapter for the classes in ``own``, with its neighbour rule; ``labels`` covers base + added classes."""
    if recipe.kind not in KINDS:
        raise ValueError(f"kind={recipe.kind!r}, expected one of {', '.join(KINDS)}")
    classes = len(labels)
    taught = np.zeros(classes, bool)
    taught[np.unique(own.labels)] = True
    w, b = _weights(own, anchors, taught, base_classes, recipe)
    return Adapter(recipe.kind, labels, base_classes, base_sha256, w.astype(np.float32), b.astype(np.float32), taught,
                   *neighbour_rule(own, anchors, classes, recipe), recipe.uncertain_below, recipe.gate_slack,
                   recipe.keep_margin, recipe.scale if recipe.kind == "prototypes" else 1.0)


def neighbour_rule(own: Photos, anchors: Photos, classes: int, recipe: Recipe
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The references (owner photos, then anchors: (R, D), labels (R,), owner (R,)) and each taught class's floor
    and margin (C,) (NaN for the others). Stand-in unknowns for the floor: the anchors of every other class."""
    # stored as float16 in the file: rounded here, so that what is measured is what the device reads
    references = np.concatenate([own.embeddings, anchors.embeddings]).astype(np.float16).astype(np.float32)
    reference_labels = np.concatenate([own.labels, anchors.labels])
    owner = np.arange(len(references)) < len(own)
    floor, margin = np.full(classes, np.nan), np.full(classes, np.nan)
    for c in np.unique(own.labels):
        mine = own.embeddings[own.labels == c]
        strangers = anchors.embeddings[anchors.labels != c]
        floor[c] = np.quantile((strangers @ mine.T).max(axis=1), recipe.floor_quantile) if len(strangers) else 0.0
        margin[c] = recipe.margin_at_one + recipe.margin_per_log * np.log(len(mine))
    return references, reference_labels, owner, floor, margin


def _weights(own: Photos, anchors: Photos, taught: np.ndarray, base_classes: int, recipe: Recipe
             ) -> tuple[np.ndarray, np.ndarray]:
    """The adapter's (W, b) for its kind."""
    classes = len(taught)
    if recipe.kind == "prototypes":
        means = class_means(own, classes)
        return means, np.where(taught, -recipe.scale * _typical_cosine(own, means), 0.0)
    x = np.concatenate([own.embeddings, anchors.embeddings])
    targets = np.concatenate([own.labels, anchors.labels])
    anchor_weight = recipe.anchor_weight * max(1.0, len(own) / recipe.anchors_match)
    weight = np.concatenate([np.full(len(own), 1.0 / len(own)),
                             np.full(len(anchors), anchor_weight / max(len(anchors), 1))])
    if recipe.kind == "gate":  # outputs: the taught classes in order, then "the model's own answer"
        column = np.full(classes, taught.sum())
        column[taught] = np.arange(taught.sum())
        rows = int(taught.sum()) + 1
        return _softmax_regression(x, np.zeros((len(x), rows)), column[targets], weight, np.ones(rows, bool),
                                   np.ones(rows, bool), replace(recipe, l2=recipe.gate_l2),
                                   np.zeros((rows, x.shape[1])))
    shift = offsets(np.concatenate([own.probs, anchors.probs]), classes)
    shift[len(own):] *= recipe.anchor_softening  # the model is sure of its own training photos: soften
    bias_mask = taught & ((np.arange(classes) >= base_classes) | recipe.base_bias)
    return _softmax_regression(x, shift, targets, weight, taught, bias_mask, recipe, np.zeros((classes, x.shape[1])))


def _typical_cosine(own: Photos, means: np.ndarray) -> np.ndarray:
    """Per class, the mean cosine of its photos to their class mean (a prototype's logit is 0 there)."""
    cos = np.einsum("nd,nd->n", own.embeddings, means[own.labels])
    out = np.zeros(len(means))
    np.add.at(out, own.labels, cos)
    counts = np.bincount(own.labels, minlength=len(means))
    return np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)


def predict(adapter: Adapter, photos: Photos, base_similarity: np.ndarray | None,
            base_rule: tuple[float, float | None]) -> Answers:
    """The adapted model's answers for embedded photos: what the classifier does photo by photo, for many."""
    return adapter.answers(photos.probs, photos.embeddings, base_similarity, base_rule)
