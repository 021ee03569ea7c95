"""An adapter: what ``flowercam learn`` fits on the owner's photos, applied on top of the model's own answer.

The base model is never touched (pycoral's on-device learning keeps it apart the same way): the adapter reads
the model's embedding output and its calibrated probabilities and gives probabilities over the model's classes
(same indices 0..n-1) followed by the classes the owner added. Kinds (``KINDS``):

- ``gate`` (the default, measured best: bench/results/learning.md): a softmax regression over the embedding
  with one output per taught class and one more, "the model's own answer". The answer is the mixture
  ``p = q_taught + q_model * p_base``: a taught class takes a photo only where the gate is sure of it, and
  everything else keeps the base model's probabilities, so classes nobody taught stay where they were. A taught
  class takes no share of a photo much nearer to another class's photos (the anchors: the model's own training
  photos; the owner's other classes) than to its owner's photos of it, nor of a photo the model alone is clearly
  sure is a class nobody taught and that is nearer to the model's own photos of that class than to the owner's
  photos of the taught one (so learning leaves the classes it was not taught where they were). Fitted on
  the owner's photos and the anchors (the model's own training photos, shipped with it: their label is their
  class where it was taught, else "the model's answer").
- ``residual``: a softmax regression whose logits are the base model's log-probabilities plus a learned
  correction ``W e + b`` on the rows of the taught classes.
- ``prototypes``: weight imprinting, cosine to the mean embedding of each taught class (scaled), over the base
  model's log-probabilities for the classes nobody taught.

**Honest answers.** A taught class is answered confidently only where the photo resembles the owner's own photos
of that class: its nearest owner photo of the answered class must be closer than a floor (the typical nearest
distance of the model's own training photos of *other* species to those owner photos) and not much farther than
the nearest photo of any other class (the anchors and the owner's other classes). A class nobody taught keeps the
model's own rule. So a species nobody taught, answered as a taught class, stays "uncertain". And learning never
makes the camera less sure than the model alone where the model was right to be: an answer the model alone gave
confidently, for a photo nearer to the model's own training photos of that class than to any other class's
photos, stays confident (the owner's photos, taken in another style, need not resemble it).

One ``.npz`` file holds it all (no pickles), written atomically; it names the base model's sha256 and is refused
for any other model.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import FlowercamError
from .files import write_atomically
from .neighbours import Nearest, References
from .scores import is_uncertain, softmax

FORMAT = "flowercam-adapter/3"
PREVIOUS = "flowercam-adapter/2"  # still read, as it was made: without the keep rule (keep_margin infinite)
KINDS = ("gate", "residual", "prototypes")
EPS = 1e-6  # floor of the base probabilities before the log
MAX_BYTES = 256 << 20  # an adapter file larger than this is not one of ours
ARRAYS = ("weights", "bias", "taught", "references", "reference_labels", "reference_owner", "floor", "margin")


class AdapterError(FlowercamError):
    """An adapter file that is missing, broken, or made for another model."""


@dataclass(frozen=True)
class Answers:
    """The adapted model's answers for N photos: probabilities (N, C), and the uncertain rule's inputs for each
    photo's top answer (:func:`flowercam.model.scores.is_uncertain`): similarity, uncertain_below and
    similarity_below (N,) float64 (NaN: no similarity check)."""

    probabilities: np.ndarray
    similarity: np.ndarray
    uncertain_below: np.ndarray
    similarity_below: np.ndarray


@dataclass(frozen=True)
class Adapter:
    """Learned classes on top of a base model. Arrays: ``weights`` (C, D) float32, ``bias`` (C,) float32 over all
    C = base + added classes (gate: (T + 1, D) and (T + 1,), the T taught classes in order, then the model's own
    answer); ``taught`` (C,) bool; ``references`` (R, D) unit embeddings of the owner's photos and the anchors, with
    ``reference_labels`` (R,) int64 and ``reference_owner`` (R,) bool; ``floor`` and ``margin`` (C,) float32, the
    neighbour rule of each taught class (NaN elsewhere)."""

    kind: str
    labels: tuple[str, ...]
    base_classes: int
    base_sha256: str
    weights: np.ndarray
    bias: np.ndarray
    taught: np.ndarray
    references: np.ndarray
    reference_labels: np.ndarray
    reference_owner: np.ndarray
    floor: np.ndarray
    margin: np.ndarray
    uncertain_below: float  # a taught class answered with a lower probability is uncertain
    gate_slack: float  # gate: a taught class takes no share of a photo nearer, by more than this, to another class
    keep_margin: float  # gate: the model alone is clearly sure where its similarity clears its own floor by this
    scale: float = 1.0  # prototypes: logits = scale * cosine
    photos: dict = field(default_factory=dict)  # class name -> photos learned from
    info: dict = field(default_factory=dict)  # when, from where, the recipe

    @property
    def added(self) -> tuple[str, ...]:
        """The classes the owner added (after the base model's)."""
        return self.labels[self.base_classes:]

    def logits(self, probs: np.ndarray, embedding: np.ndarray, supported: np.ndarray | None = None) -> np.ndarray:
        """(N, C) adapted logits from base probabilities (N, base) and unit embeddings (N, D); ``supported`` (N, T)
        says where each taught class resembles its owner's photos (gate: elsewhere it takes no share)."""
        if self.kind == "gate":
            return self._gate(probs, embedding, supported)
        base = offsets(probs, len(self.labels))
        rows = self._rows  # only the taught classes have weights: a few rows, not all classes
        learned = embedding @ self.weights[rows].T * self.scale + self.bias[rows]
        if self.kind == "prototypes":
            base[:, rows] = learned
        else:
            base[:, rows] += learned
        return base

    def _gate(self, probs: np.ndarray, embedding: np.ndarray, supported: np.ndarray | None) -> np.ndarray:
        q = softmax(embedding @ self.weights.T + self.bias)
        taught = q[:, :-1] if supported is None else q[:, :-1] * supported
        mixed = np.zeros((len(probs), len(self.labels)))
        mixed[:, :probs.shape[1]] = (1.0 - taught.sum(axis=1, keepdims=True)) * probs
        mixed[:, self._rows] += taught
        return np.log(np.maximum(mixed, EPS * EPS))

    @cached_property
    def _rows(self) -> np.ndarray:
        return np.flatnonzero(self.taught)

    @cached_property
    def _references(self) -> References:
        return References.of(self.references, self.reference_labels, self.reference_owner, len(self.labels))

    def nearest(self, embedding: np.ndarray) -> Nearest:
        """For unit embeddings (N, D): each class's nearest owner photo, nearest anchor and nearest reference."""
        return self._references.nearest(embedding)

    def _supported(self, near: Nearest, model_best: np.ndarray, model_clear: np.ndarray) -> np.ndarray:
        """(N, T): whether each photo is not nearer to another class's photos (anchors or owner's), by more than
        ``gate_slack``, than to the owner's photos of each taught class; nor, where the model alone is clearly sure
        (``model_clear``, (N,)) of a class nobody taught (``model_best``, (N,)), nearer to the model's own photos of
        that class than to the owner's photos of the taught one."""
        rows = self._rows
        supported = near.own[:, rows] >= near.other(rows[np.newaxis, :]) - self.gate_slack
        kept = model_clear & ~self.taught[model_best]
        nearer_own = near.model[np.arange(len(model_best)), model_best][:, np.newaxis] >= near.own[:, rows]
        return supported & ~(kept[:, np.newaxis] & nearer_own)

    def answers(self, probs: np.ndarray, embedding: np.ndarray, base_similarity: np.ndarray | None,
                base_rule: tuple[float, float | None]) -> Answers:
        """The adapted answers for base probabilities (N, base), unit embeddings (N, D) and the model's own
        similarity (N,) or None; ``base_rule`` is the model's (uncertain_below, similarity_below), kept for answers
        of classes nobody taught."""
        embedding = np.asarray(embedding, np.float32)
        near = self.nearest(embedding)
        base_sim = np.full(len(probs), np.nan) if base_similarity is None else np.asarray(base_similarity, float)
        base_below = np.nan if base_rule[1] is None else float(base_rule[1])
        model_best = probs.argmax(axis=1)
        model_sure = ~is_uncertain(probs.max(axis=1), base_sim, float(base_rule[0]), base_below)
        model_clear = model_sure & (base_sim >= base_below + self.keep_margin)  # False without a similarity
        p = softmax(self.logits(probs, embedding, self._supported(near, model_best, model_clear)))
        best = p.argmax(axis=1)
        taught = self.taught[best]
        rows = np.arange(len(p))
        own, other = near.own[rows, best], near.other(best)
        # the model alone was sure of this very answer, for a photo like its own of that class: it stays sure (the
        # model's own rule, on the model's own score: the adapted score is left out)
        sure = taught & (model_best == best) & model_sure & (near.model[rows, best] >= other)
        owner_rule = taught & ~sure
        return Answers(p, np.where(owner_rule, own, base_sim),
                       np.where(owner_rule, self.uncertain_below, np.where(sure, 0.0, float(base_rule[0]))),
                       np.where(owner_rule, np.maximum(self.floor[best], other + self.margin[best]), base_below))

    def apply(self, scores, base_rule: tuple[float, float | None]):
        """A :class:`~flowercam.model.classifier.Scores` of the base model -> (the adapted one, of the same type;
        the rule's (uncertain_below, similarity_below) for its top answer)."""
        if scores.embedding is None:
            raise AdapterError("the model has no embedding output: an adapter needs one (re-export it)")
        base_sim = None if scores.similarity is None else np.array([scores.similarity])
        a = self.answers(scores.probabilities[np.newaxis], scores.embedding[np.newaxis], base_sim, base_rule)
        similarity = None if np.isnan(a.similarity[0]) else float(a.similarity[0])
        below = None if np.isnan(a.similarity_below[0]) else float(a.similarity_below[0])
        return type(scores)(a.probabilities[0], similarity, scores.embedding), (float(a.uncertain_below[0]), below)

    def save(self, path: Path) -> Path:
        """Write atomically (a temporary file in the same folder, then a rename): a failed write leaves the
        previous adapter in place."""
        meta = {"format": FORMAT, "kind": self.kind, "labels": list(self.labels), "base_classes": self.base_classes,
                "base_sha256": self.base_sha256, "scale": self.scale, "uncertain_below": self.uncertain_below,
                "gate_slack": self.gate_slack, "keep_margin": self.keep_margin, "photos": self.photos,
                "info": self.info}
        arrays = {"weights": self.weights.astype(np.float32), "bias": self.bias.astype(np.float32),
                  "taught": self.taught.astype(bool), "references": self.references.astype(np.float16),
                  "reference_labels": self.reference_labels.astype(np.int32),
                  "reference_owner": self.reference_owner.astype(bool), "floor": self.floor.astype(np.float32),
                  "margin": self.margin.astype(np.float32)}

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file, not a name: numpy would add ".npz" to a name without it
                np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)

        return write_atomically(path, save)


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
            raise AdapterError(f"adapter not found: {path}" if not path.is_dir() else f"{path} is a folder, not an "
                               "adapter file")
        if path.stat().st_size > MAX_BYTES:
            raise AdapterError(f"{path.name}: too large for an adapter")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, PREVIOUS):
                old = isinstance(meta, dict) and str(meta.get("format", "")).startswith("flowercam-adapter/")
                raise AdapterError(f"{path.name}: made by another flowercam version: run flowercam learn again"
                                   if old else f"{path.name}: not a {FORMAT} file")
            arrays = {key: np.asarray(data[key]) for key in ARRAYS}
    except AdapterError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise AdapterError(f"{path.name}: not a readable adapter file ({type(err).__name__})") from None
    return _checked(path, meta, arrays)


def _checked(path: Path, meta: dict, arrays: dict) -> Adapter:
    """Every field of the file checked: types, shapes, finite numbers; a broken one is one AdapterError."""
    try:
        labels = tuple(str(label) for label in meta["labels"])
        photos, info = meta["photos"], meta["info"]
        if not isinstance(photos, dict) or not isinstance(info, dict) or not isinstance(meta["kind"], str):
            raise TypeError("photos, info and kind must be a mapping, a mapping and a string")
        adapter = Adapter(meta["kind"], labels, int(meta["base_classes"]), str(meta["base_sha256"]),
                          arrays["weights"].astype(np.float32), arrays["bias"].astype(np.float32),
                          arrays["taught"].astype(bool), arrays["references"].astype(np.float32),
                          arrays["reference_labels"].astype(np.int64), arrays["reference_owner"].astype(bool),
                          arrays["floor"].astype(np.float32), arrays["margin"].astype(np.float32),
                          float(meta["uncertain_below"]), float(meta["gate_slack"]),
                          float(meta["keep_margin"]) if meta["format"] == FORMAT else np.inf, float(meta["scale"]),
                          dict(photos), dict(info))
    except (KeyError, TypeError, ValueError) as err:
        raise AdapterError(f"{path.name}: broken adapter ({type(err).__name__}: {err})") from None
    if not _consistent(adapter):
        raise AdapterError(f"{path.name}: broken adapter (its arrays do not fit its {len(labels)} classes)")
    return adapter


def _consistent(a: Adapter) -> bool:
    c, rows = len(a.labels), int(a.taught.sum()) + 1 if a.kind == "gate" else len(a.labels)
    shapes = (a.weights.ndim == 2 and a.weights.shape[0] == rows and a.bias.shape == (rows,)
              and a.taught.shape == (c,) and a.references.ndim == 2 and a.references.shape[1] == a.weights.shape[1]
              and a.reference_labels.shape == a.reference_owner.shape == (len(a.references),)
              and a.floor.shape == a.margin.shape == (c,))
    if a.kind not in KINDS or not shapes or not a.taught.any() or not 0 < a.base_classes <= c:
        return False
    finite = all(np.isfinite(x).all() for x in (a.weights, a.bias, a.references, a.floor[a.taught],
                                                 a.margin[a.taught]))
    return bool(finite and 0.0 <= a.uncertain_below <= 1.0 and np.isfinite(a.scale) and np.isfinite(a.gate_slack)
                and not np.isnan(a.keep_margin)
                and ((a.reference_labels >= 0) & (a.reference_labels < c)).all())


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
