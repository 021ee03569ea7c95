"""Classifying photos with a TFLite model and its sidecar: the heart of the device app."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .adapter import load_adapter
from .flatbuffer import check_model
from .labels import NOT_A_FLOWER
from .metadata import EmbeddedMetadata, label_mismatch, read_metadata
from .preprocess import CORNER_SIDE, CROP_SETS, ImageError, Preprocess, decode
from .resources import peak_rss_mb
from .runtime import make_interpreter
from .scores import Class, Outputs, dequantize, is_uncertain, output_roles, probabilities, top_k
from .sidecar import BUNDLED_MODEL, ModelError, Sidecar, TensorSpec, read_sidecar


@dataclass(frozen=True)
class Result:
    """The answer for one image, with its latency and the process's peak memory."""

    path: str
    top_k: tuple[Class, ...]
    uncertain: bool
    latency_ms: dict[str, float]
    peak_rss_mb: float
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)  # all classes, calibrated
    similarity: float | None = None  # to the nearest class seen in training (models with that output)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)  # (D,) unit vector, if any
    reason: str = ""  # why the answer is uncertain, in words

    def to_dict(self) -> dict:
        best = self.top_k[0]
        out = {"path": self.path, "label": best.label, "index": best.index, "score": best.score,
               "uncertain": self.uncertain, "top_k": [asdict(c) for c in self.top_k],
               "latency_ms": self.latency_ms, "peak_rss_mb": self.peak_rss_mb}
        if self.similarity is not None:
            out["similarity"] = self.similarity
        if self.uncertain and self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Scores:
    """What one inference gives: calibrated class probabilities, and the optional similarity and embedding."""

    probabilities: np.ndarray  # (n_labels,) float64
    similarity: float | None
    embedding: np.ndarray | None  # (D,) float64


def _outputs(interpreter, sidecar: Sidecar, model: Path) -> Outputs:
    """Tensor indices of the class, similarity and embedding outputs, checked against the sidecar."""
    details = interpreter.get_output_details()
    try:
        roles = output_roles([int(np.prod(o["shape"])) for o in details], len(sidecar.labels))
    except ValueError as err:
        raise ModelError(f"{model.name}: {err}") from None
    for role, spec in (("similarity", sidecar.similarity), ("embedding", sidecar.embedding)):
        if (getattr(roles, role) is None) != (spec is None):
            raise ModelError(f"{model.name}: the model and its sidecar disagree on the {role} output")
    return Outputs(*(None if i is None else details[i]["index"] for i in (roles.classes, roles.similarity,
                                                                          roles.embedding)))


def _check(interpreter, sidecar: Sidecar, model: Path, class_output: int) -> None:
    details = interpreter.get_input_details()
    outputs = [o for o in interpreter.get_output_details() if o["index"] == class_output]
    if len(details) != 1:
        raise ModelError(f"{model.name}: {len(details)} inputs, expected 1")
    shape, dtype = tuple(int(d) for d in details[0]["shape"]), np.dtype(details[0]["dtype"]).name
    if shape != sidecar.input.shape or dtype != sidecar.input.dtype:
        raise ModelError(f"{model.name}: input {shape} {dtype}, sidecar says {sidecar.input.shape} "
                         f"{sidecar.input.dtype}")
    size = sidecar.preprocess.size
    if shape[1:] != (size, size, 3):
        raise ModelError(f"{model.name}: input {shape}, expected (1, {size}, {size}, 3) from preprocessing")
    n_out = int(np.prod(outputs[0]["shape"]))
    if n_out != len(sidecar.labels):
        raise ModelError(f"{model.name}: {n_out} outputs but {len(sidecar.labels)} labels in the sidecar")


def _embedded_metadata(model: Path, sidecar: Sidecar) -> EmbeddedMetadata | None:
    """The model's TFLite Metadata; a model whose embedded labels are not its sidecar's is refused."""
    try:
        metadata = read_metadata(model)
    except ValueError as err:
        raise ModelError(f"{model.name}: broken TFLite Metadata: {err}") from None
    if metadata is not None and metadata.labels is not None:
        mismatch = label_mismatch(metadata.labels, sidecar.labels)
        if mismatch:
            raise ModelError(f"{model.name}: its embedded labels do not match its sidecar ({mismatch})")
    return metadata


class Classifier:
    """A model, its sidecar and one interpreter, built once per process."""

    def __init__(self, model: str | Path | None = None, threads: int | None = None, edgetpu: bool = False, *,
                 uncertain_below: float | None = None, similarity_below: float | None = None,
                 crops: str | None = None, adapter: str | Path | None = None) -> None:
        self.model = Path(model) if model else BUNDLED_MODEL
        if model is None and not self.model.is_file():
            raise ModelError("no bundled model in this install (build one with build-models export, "
                             "then pass --model)")
        self.sidecar = read_sidecar(self.model)
        check_model(self.model, edgetpu, self.sidecar.sha256)
        try:
            self.interpreter, self.runtime = make_interpreter(self.model, threads, edgetpu)
        except (ValueError, RuntimeError) as err:  # the Edge TPU delegate's failures are RuntimeMissing
            raise ModelError(f"{self.model.name}: not a valid TFLite model ({str(err).splitlines()[0]})") from None
        self.outputs = _outputs(self.interpreter, self.sidecar, self.model)
        _check(self.interpreter, self.sidecar, self.model, self.outputs.classes)
        self.metadata = _embedded_metadata(self.model, self.sidecar)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self.crops = crops or self.sidecar.crops
        if self.crops not in CROP_SETS:
            raise ModelError(f"crops={self.crops!r}, expected one of {', '.join(CROP_SETS)}")
        self.adapter = None if adapter is None else load_adapter(Path(adapter), self.sidecar)
        chosen = self.sidecar.thresholds_for(self.crops)
        self.overrides = (uncertain_below, similarity_below)  # given by the user: they hold for every answer
        self.threshold = chosen[0] if uncertain_below is None else uncertain_below
        self.similarity_below = chosen[1] if similarity_below is None else similarity_below
        self.preprocess = self.sidecar.preprocess

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's classes, then those the adapter added."""
        return self.adapter.labels if self.adapter else self.sidecar.labels

    def infer(self, image: np.ndarray) -> Scores:
        """Run the model on one (size, size, 3) uint8 input."""
        dtype = np.dtype(self.sidecar.input.dtype)
        self.interpreter.set_tensor(self._input, image[np.newaxis].astype(dtype, copy=False))
        self.interpreter.invoke()
        probs = probabilities(self._read(self.outputs.classes, self.sidecar.output)[0], self.sidecar.output_kind,
                              self.sidecar.temperature)
        similarity = embedding = None
        if self.outputs.similarity is not None:
            similarity = float(self._read(self.outputs.similarity, self.sidecar.similarity).ravel()[0])
        if self.outputs.embedding is not None:
            embedding = self._read(self.outputs.embedding, self.sidecar.embedding).ravel()
        return Scores(probs, similarity, embedding)

    def _read(self, index: int, spec: TensorSpec) -> np.ndarray:
        return dequantize(self.interpreter.get_tensor(index), spec.scale, spec.zero_point)

    def rule(self, best: Class, adapted: tuple[float, float | None] | None) -> tuple[float, float | None]:
        """The uncertain rule's (uncertain_below, similarity_below) for an answer: the user's overrides, else the
        adapter's (``adapted``: its owner's photos for a taught class, the model's own otherwise), else the model's."""
        rule = adapted or (self.threshold, self.similarity_below)
        return tuple(o if o is not None else r for o, r in zip(self.overrides, rule))

    def uncertain_reason(self, best: Class, similarity: float | None, rule: tuple[float, float | None]) -> str:
        """Why the answer is uncertain ("" when it is not): a low calibrated score, or a photo unlike the photos
        of its class (the model's training photos of every class; for a taught class, its owner's photos)."""
        if best.label == NOT_A_FLOWER:
            return "not a flower (a class its owner taught it)"
        uncertain_below, similarity_below = rule
        if not is_uncertain(best.score, similarity, uncertain_below, similarity_below):
            return ""
        if best.score < uncertain_below:
            return f"low confidence ({best.score:.1%} < {uncertain_below:.1%})"
        whose = f"your photos of {best.label}" if self._taught(best) else "the photos it learned from"
        return f"unlike {whose} (similarity {similarity:.3f} < {similarity_below:.3f})"

    def _taught(self, best: Class) -> bool:
        return self.adapter is not None and bool(self.adapter.taught[best.index])

    def load(self, path: str | Path) -> tuple[list[np.ndarray], float, float]:
        """Decode and preprocess a file. Returns (input arrays, one per crop; decode ms; preprocess ms)."""
        t0 = time.perf_counter()
        # JPEG draft decoding at the smallest scale that still gives every crop its full resolution
        draft = self.preprocess if self.crops == "center" else Preprocess(self.preprocess.size, CORNER_SIDE)
        image = decode(path, draft)
        t1 = time.perf_counter()
        arrays = self.preprocess.crops(image, self.crops)
        t2 = time.perf_counter()
        return arrays, (t1 - t0) * 1e3, (t2 - t1) * 1e3

    def classify_arrays(self, path: str, arrays: list[np.ndarray], k: int, decode_ms: float = 0.0,
                        preprocess_ms: float = 0.0) -> Result:
        """Classify the crops of one photo; their probabilities (and similarities, embeddings) are averaged."""
        t0 = time.perf_counter()
        scores, adapted = self.combine([self.infer(array) for array in arrays]), None
        if self.adapter is not None:
            scores, adapted = self.adapter.apply(scores, (self.threshold, self.similarity_below))
        inference_ms = (time.perf_counter() - t0) * 1e3
        best = top_k(scores.probabilities, self.labels, max(1, k))
        reason = self.uncertain_reason(best[0], scores.similarity, self.rule(best[0], adapted))
        latency = {"decode": decode_ms, "preprocess": preprocess_ms, "inference": inference_ms,
                   "total": decode_ms + preprocess_ms + inference_ms}
        return Result(path, best, bool(reason), {key: round(v, 3) for key, v in latency.items()},
                      round(peak_rss_mb(), 1), scores.probabilities,
                      None if scores.similarity is None else round(scores.similarity, 4), scores.embedding, reason)

    @staticmethod
    def combine(outputs: list[Scores]) -> Scores:
        """The mean over the crops of one photo (the embedding renormalised to unit length)."""
        if len(outputs) == 1:
            return outputs[0]
        probs = np.mean([o.probabilities for o in outputs], axis=0)
        similarity = None if outputs[0].similarity is None else float(np.mean([o.similarity for o in outputs]))
        embedding = None
        if outputs[0].embedding is not None:
            embedding = np.mean([o.embedding for o in outputs], axis=0)
            embedding = embedding / max(float(np.linalg.norm(embedding)), 1e-12)
        return Scores(probs, similarity, embedding)

    def classify_frame(self, frame: np.ndarray, name: str = "frame", k: int = 5, capture_ms: float = 0.0) -> Result:
        """Classify an (H, W, 3) uint8 RGB camera frame (capture time reported as decode)."""
        from PIL import Image

        t0 = time.perf_counter()
        arrays = self.preprocess.crops(Image.fromarray(frame, "RGB"), self.crops)
        return self.classify_arrays(name, arrays, k, capture_ms, (time.perf_counter() - t0) * 1e3)

    def classify(self, path: str | Path, k: int = 5) -> Result:
        """Classify one file (raises ImageError for a file that cannot be read)."""
        arrays, decode_ms, preprocess_ms = self.load(path)
        return self.classify_arrays(str(path), arrays, k, decode_ms, preprocess_ms)

    def classify_many(self, paths: Iterable[Path], k: int = 5,
                      prefetch: int = 4) -> Iterator[tuple[Path, Result | ImageError]]:
        """Classify files in order, decoding the next ones in a thread while the model runs."""
        def load(path: Path):
            try:
                return self.load(path)
            except ImageError as err:
                return err

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: list = []
            iterator = iter(paths)
            for path in iterator:
                pending.append((path, pool.submit(load, path)))
                if len(pending) > prefetch:
                    yield self._finish(*pending.pop(0), k)
            for path, future in pending:
                yield self._finish(path, future, k)

    def _finish(self, path: Path, future, k: int) -> tuple[Path, Result | ImageError]:
        loaded = future.result()
        if isinstance(loaded, ImageError):
            return path, loaded
        arrays, decode_ms, preprocess_ms = loaded
        return path, self.classify_arrays(str(path), arrays, k, decode_ms, preprocess_ms)
