"""The nearest photos of each class: an adapter's references (the owner's photos and the anchors, the model's own
training photos), searched with one matrix product (for one photo, over its non-zero dimensions only) and a maximum
over each class's run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 64  # dimensions a block: 64 rows of the references (1,420 of them: 360 KB) stay in the cache


@dataclass(frozen=True)
class Nearest:
    """For N photos: ``own`` (N, C) the cosine to the nearest owner photo of each class (-1: none), ``model`` (N, C)
    to the nearest anchor of each class; the class of the nearest reference (``first``), its cosine (``best``) and
    the nearest of any other class (``second``)."""

    own: np.ndarray
    model: np.ndarray
    first: np.ndarray
    best: np.ndarray
    second: np.ndarray

    def other(self, classes: np.ndarray) -> np.ndarray:
        """The cosine to the nearest reference (owner photo or anchor) of a class other than ``classes``: (N,) for
        one class per photo, or (N, K) for (1, K) or (N, K) classes."""
        if classes.ndim == 1:
            return np.where(self.first == classes, self.second, self.best)
        return np.where(self.first[:, None] == classes, self.second[:, None], self.best[:, None])


@dataclass(frozen=True)
class References:
    """Unit embeddings ordered owner photos first (the first ``owners``), then anchors, each part by class, stored
    transposed ((D, R): a photo's dimension picks a row); each part's classes and where each class's run starts;
    ``classes`` in all."""

    by_dimension: np.ndarray
    owners: int
    owner_labels: np.ndarray
    owner_starts: np.ndarray
    anchor_labels: np.ndarray
    anchor_starts: np.ndarray
    classes: int

    @classmethod
    def of(cls, embeddings: np.ndarray, labels: np.ndarray, owner: np.ndarray, classes: int) -> References:
        """Ordered from an adapter's arrays: (R, D) float32 embeddings, (R,) labels, (R,) owner flags."""
        parts = []
        for mine in (True, False):
            index = np.flatnonzero(owner == mine)
            index = index[np.argsort(labels[index], kind="stable")]
            ordered = labels[index]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(index) else np.zeros(0, int)
            parts.append((index, ordered[starts], starts))
        (owners, owner_labels, owner_starts), (anchors, anchor_labels, anchor_starts) = parts
        return cls(np.ascontiguousarray(embeddings[np.concatenate([owners, anchors])].T), len(owners), owner_labels,
                   owner_starts, anchor_labels, anchor_starts, classes)

    def nearest(self, embedding: np.ndarray) -> Nearest:
        """For unit embeddings (N, D): each class's nearest owner photo, nearest anchor and nearest reference."""
        sims = self.cosines(np.asarray(embedding, np.float32))
        own = np.full((len(sims), self.classes), -1.0, np.float32)
        model = own.copy()
        if self.owners:
            own[:, self.owner_labels] = np.maximum(np.maximum.reduceat(sims[:, :self.owners], self.owner_starts,
                                                                       axis=1), -1)
        if len(self.anchor_labels):
            model[:, self.anchor_labels] = np.maximum(np.maximum.reduceat(sims[:, self.owners:], self.anchor_starts,
                                                                          axis=1), -1)
        every = np.maximum(own, model)
        first = every.argmax(axis=1)
        rows = np.arange(len(sims))
        best = every[rows, first]
        every[rows, first] = -1.0
        return Nearest(own, model, first, best, every.max(axis=1, initial=-1.0))

    def cosines(self, embedding: np.ndarray) -> np.ndarray:
        """(N, R) float32 cosines to every reference. One photo (the camera's case) reads only the rows of the
        dimensions where it is not zero (a pooled ReLU embedding: about two thirds zeros), a block at a time so
        that each block stays in the cache; many photos, one product."""
        if len(embedding) != 1:
            return embedding @ self.by_dimension
        used = np.flatnonzero(embedding[0])
        sims = np.zeros((1, self.by_dimension.shape[1]), np.float32)
        for start in range(0, len(used), BLOCK):
            rows = used[start:start + BLOCK]
            sims += embedding[:, rows] @ self.by_dimension[rows]
        return sims
