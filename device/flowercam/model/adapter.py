"""An adapter: what ``flowercam learn`` fits on the owner's photos, applied on top of the model's own answer.

The base model is never touched (pycoral's on-device learning keeps it apart the same way): the adapter reads
the model's embedding output and its calibrated probabilities and gives probabilities over the model's classes
(same indices 0..n-1) followed by the classes the owner added. Kinds (``KINDS``):

- ``gate`` (the default, measured best: bench/results/learning.md): a softmax regression over the embedding
  with one output per taught class and one more, "the model's own answer". The answer is the mixture
  ``p = q_taught + q_model * p_base``: a taught class takes a photo only where the gate is sure of it, and
  everything else keeps the base model's probabilities, so classes nobody taught stay where they were. Fitted on
  the owner's photos and the anchors (the model's own training photos, shipped with it: their label is their
  class where it was taught, else "the model's answer").
- ``residual``: a softmax regression whose logits are the base model's log-probabilities plus a learned
  correction ``W e + b`` on the rows of the taught classes.
- ``prototypes``: weight imprinting, cosine to the mean embedding of each taught class (scaled), over the base
  model's log-probabilities for the classes nobody taught.

One ``.npz`` file holds it all (no pickles), written atomically; it names the base model's sha256 and is refused
for any other model.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FlowercamError
from .scores import softmax

FORMAT = "flowercam-adapter/1"
KINDS = ("gate", "residual", "prototypes")
DEFAULT_KIND = "gate"
EPS = 1e-6  # floor of the base probabilities before the log
MAX_BYTES = 256 << 20  # an adapter file larger than this is not one of ours


class AdapterError(FlowercamError):
    """An adapter file that is missing, broken, or made for another model."""


@dataclass(frozen=True)
class Adapter:
    """Learned classes on top of a base model. Arrays: ``weights`` (C, D) float32, ``bias`` (C,) float32, over
    all C = base + added classes (gate: (T + 1, D) and (T + 1,), the T taught classes in order, then the model's
    own answer); ``taught`` (C,) bool."""

    kind: str
    labels: tuple[str, ...]
    base_classes: int
    base_sha256: str
    weights: np.ndarray
    bias: np.ndarray
    taught: np.ndarray
    means: np.ndarray  # (C, D) float32: unit mean embedding of each taught class (zero rows elsewhere)
    scale: float = 1.0  # prototypes: logits = scale * cosine
    thresholds: dict = field(default_factory=dict)  # {"center": {"uncertain_below": .., "similarity_below": ..}}
    photos: dict = field(default_factory=dict)  # class name -> photos learned from
    info: dict = field(default_factory=dict)  # when, from where, how the thresholds were chosen

    @property
    def added(self) -> tuple[str, ...]:
        """The classes the owner added (after the base model's)."""
        return self.labels[self.base_classes:]

    def thresholds_for(self, crops: str) -> tuple[float, float | None]:
        chosen = self.thresholds.get(crops) or self.thresholds.get("center", {})
        return float(chosen.get("uncertain_below", 0.5)), chosen.get("similarity_below")

    def logits(self, probs: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """(N, C) adapted logits from base probabilities (N, base) and unit embeddings (N, D)."""
        if self.kind == "gate":
            return self._gate(probs, embedding)
        base = offsets(probs, len(self.labels))
        rows = self._rows  # only the taught classes have weights: a few rows, not all classes
        learned = embedding @ self.weights[rows].T * self.scale + self.bias[rows]
        if self.kind == "prototypes":
            base[:, rows] = learned
        else:
            base[:, rows] += learned
        return base

    def _gate(self, probs: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        q = softmax(embedding @ self.weights.T + self.bias)
        mixed = np.zeros((len(probs), len(self.labels)))
        mixed[:, :probs.shape[1]] = q[:, -1:] * probs
        mixed[:, self._rows] += q[:, :-1]
        return np.log(np.maximum(mixed, EPS * EPS))

    @property
    def _rows(self) -> np.ndarray:
        return np.flatnonzero(self.taught)

    def similarity(self, embedding: np.ndarray, base_similarity: np.ndarray | None) -> np.ndarray:
        """Cosine to the nearest known class: the model's class means or the owner's taught classes."""
        own = (embedding @ self.means[self.taught].T).max(axis=1)
        return own if base_similarity is None else np.maximum(own, base_similarity)

    def apply(self, scores):
        """A :class:`~flowercam.model.classifier.Scores` of the base model -> the adapted one (same type)."""
        if scores.embedding is None:
            raise AdapterError("the model has no embedding output: an adapter needs one (re-export it)")
        emb = scores.embedding[np.newaxis]
        probs = softmax(self.logits(scores.probabilities[np.newaxis], emb))[0]
        base_sim = None if scores.similarity is None else np.array([scores.similarity])
        similarity = float(self.similarity(emb, base_sim)[0])
        return type(scores)(probs, similarity, scores.embedding)

    def save(self, path: Path) -> Path:
        """Write atomically (a temporary file in the same folder, then a rename): a failed write leaves the
        previous adapter in place."""
        meta = {"format": FORMAT, "kind": self.kind, "labels": list(self.labels), "base_classes": self.base_classes,
                "base_sha256": self.base_sha256, "scale": self.scale, "thresholds": self.thresholds,
                "photos": self.photos, "info": self.info}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                         weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                         taught=self.taught.astype(bool), means=self.means.astype(np.float32))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def offsets(probs: np.ndarray, classes: int) -> np.ndarray:
    """(N, classes) base log-probabilities; a class the base model does not have starts as one of its average
    classes (log 1/base classes), its learned bias does the rest."""
    base = np.full((len(probs), classes), -np.log(probs.shape[1]))
    base[:, :probs.shape[1]] = np.log(np.maximum(probs, EPS))
    return base


def read_adapter(path: Path) -> Adapter:
    """Read an adapter file (any model); one-line :class:`AdapterError` for anything broken."""
    try:
        if not path.is_file():
            raise AdapterError(f"adapter not found: {path}")
        if path.stat().st_size > MAX_BYTES:
            raise AdapterError(f"{path.name}: too large for an adapter")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {key: np.asarray(data[key]) for key in ("weights", "bias", "taught", "means")}
    except AdapterError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise AdapterError(f"{path.name}: not a readable adapter file ({type(err).__name__})") from None
    return _checked(path, meta, arrays)


def _checked(path: Path, meta, arrays: dict) -> Adapter:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AdapterError(f"{path.name}: not a {FORMAT} file")
    try:
        labels = tuple(str(label) for label in meta["labels"])
        adapter = Adapter(str(meta["kind"]), labels, int(meta["base_classes"]), str(meta["base_sha256"]),
                          arrays["weights"].astype(np.float32), arrays["bias"].astype(np.float32),
                          arrays["taught"].astype(bool), arrays["means"].astype(np.float32), float(meta["scale"]),
                          dict(meta["thresholds"]),
                          dict(meta["photos"]), dict(meta["info"]))
    except (KeyError, TypeError, ValueError) as err:
        raise AdapterError(f"{path.name}: broken adapter ({type(err).__name__}: {err})") from None
    c = len(labels)
    rows = int(adapter.taught.sum()) + 1 if adapter.kind == "gate" else c
    if adapter.kind not in KINDS or adapter.weights.ndim != 2 or adapter.weights.shape[0] != rows \
            or adapter.bias.shape != (rows,) or adapter.taught.shape != (c,) \
            or adapter.means.shape != (c, adapter.weights.shape[1]) \
            or not adapter.taught.any() or not 0 < adapter.base_classes <= c \
            or not np.isfinite(adapter.weights).all() or not np.isfinite(adapter.bias).all():
        raise AdapterError(f"{path.name}: broken adapter (its arrays do not fit its {c} classes)")
    return adapter


def load_adapter(path: Path, sidecar) -> Adapter:
    """Read an adapter and check it was learned for this model (sha256, classes, embedding size)."""
    adapter = read_adapter(path)
    if adapter.base_sha256 != sidecar.sha256:
        raise AdapterError(f"{path.name} was learned for another model (sha256 {adapter.base_sha256[:12]}…, this "
                           f"model is {sidecar.sha256[:12]}…): run flowercam learn again")
    if sidecar.embedding is None:
        raise AdapterError("the model has no embedding output: an adapter needs one")
    if adapter.labels[:adapter.base_classes] != sidecar.labels \
            or adapter.weights.shape[1] != int(np.prod(sidecar.embedding.shape)):
        raise AdapterError(f"{path.name}: its classes or embedding size are not the model's")
    return adapter
