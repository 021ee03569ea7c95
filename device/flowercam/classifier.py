"""Classifying photos with a TFLite model and its sidecar: the heart of the device app."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .metadata import EmbeddedMetadata, label_mismatch, read_metadata
from .preprocess import CORNER_SIDE, CROP_SETS, ImageError, Preprocess, decode
from .resources import peak_rss_mb
from .runtime import make_interpreter
from .sidecar import BUNDLED_MODEL, ModelError, Sidecar, TensorSpec, read_sidecar


@dataclass(frozen=True)
class Class:
    """One class of a prediction: 0-based index in the model's labels, name, calibrated score."""

    index: int
    label: str
    score: float


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

    def to_dict(self) -> dict:
        best = self.top_k[0]
        out = {"path": self.path, "label": best.label, "index": best.index, "score": best.score,
               "uncertain": self.uncertain, "top_k": [asdict(c) for c in self.top_k],
               "latency_ms": self.latency_ms, "peak_rss_mb": self.peak_rss_mb}
        if self.similarity is not None:
            out["similarity"] = self.similarity
        return out


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Integer tensor -> real values (float64); float tensors pass through."""
    if spec.scale == 0.0:
        return values.astype(np.float64)
    return spec.scale * (values.astype(np.int64) - spec.zero_point)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` along the last axis."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def top_k(scores: np.ndarray, labels: tuple[str, ...], k: int) -> tuple[Class, ...]:
    """The ``k`` best classes, highest score first (ties: lower index first)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple(Class(int(i), labels[i], round(float(scores[i]), 6)) for i in order)


def _outputs(interpreter, sidecar: Sidecar, model: Path) -> tuple[int, int | None]:
    """Tensor indices of the class output and of the similarity output (None when the model has none)."""
    outputs = interpreter.get_output_details()
    expected = 2 if sidecar.similarity is not None else 1
    if len(outputs) != expected:
        raise ModelError(f"{model.name}: {len(outputs)} outputs, the sidecar describes {expected}")
    if expected == 1:
        return outputs[0]["index"], None
    single = [o["index"] for o in outputs if int(np.prod(o["shape"])) == 1]
    if len(single) != 1:
        raise ModelError(f"{model.name}: cannot tell the class output from the similarity output")
    return next(o["index"] for o in outputs if o["index"] != single[0]), single[0]


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

    def __init__(self, model: str | Path | None = None, threads: int | None = None, edgetpu: bool = False,
                 uncertain_below: float | None = None, crops: str | None = None) -> None:
        self.model = Path(model) if model else BUNDLED_MODEL
        if model is None and not self.model.is_file():
            raise ModelError("no bundled model in this install (build one with build-models export, "
                             "then pass --model)")
        self.sidecar = read_sidecar(self.model)
        try:
            self.interpreter, self.runtime = make_interpreter(self.model, threads, edgetpu)
        except ModelError:
            raise
        except (ValueError, RuntimeError) as err:
            if "delegate" in str(err).lower():
                raise
            raise ModelError(f"{self.model.name}: not a valid TFLite model ({str(err).splitlines()[0]})") from None
        self._output, self._similarity = _outputs(self.interpreter, self.sidecar, self.model)
        _check(self.interpreter, self.sidecar, self.model, self._output)
        self.metadata = _embedded_metadata(self.model, self.sidecar)
        self._input = self.interpreter.get_input_details()[0]["index"]
        self.crops = crops or self.sidecar.crops
        if self.crops not in CROP_SETS:
            raise ModelError(f"crops={self.crops!r}, expected one of {', '.join(CROP_SETS)}")
        default_below, self.similarity_below = self.sidecar.thresholds_for(self.crops)
        self.threshold = default_below if uncertain_below is None else uncertain_below
        self.preprocess = self.sidecar.preprocess

    @property
    def labels(self) -> tuple[str, ...]:
        return self.sidecar.labels

    def scores(self, image: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities (float64, (n_labels,)) for one (size, size, 3) uint8 image."""
        return self.infer(image)[0]

    def infer(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """(calibrated class probabilities, similarity to the nearest class or None) for one input image."""
        dtype = np.dtype(self.sidecar.input.dtype)
        self.interpreter.set_tensor(self._input, image[np.newaxis].astype(dtype, copy=False))
        self.interpreter.invoke()
        raw = dequantize(self.interpreter.get_tensor(self._output)[0], self.sidecar.output)
        similarity = None
        if self._similarity is not None:
            similarity = float(dequantize(self.interpreter.get_tensor(self._similarity), self.sidecar.similarity)
                               .ravel()[0])
        if self.sidecar.output_kind == "probabilities":
            return raw / raw.sum(), similarity
        return softmax(raw, self.sidecar.temperature), similarity

    def is_uncertain(self, best_score: float, similarity: float | None) -> bool:
        """The uncertain rule: a low calibrated score, or (models with a similarity output) a photo unlike
        every class seen in training."""
        below = self.similarity_below
        return best_score < self.threshold or (similarity is not None and below is not None and similarity < below)

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
        """Classify the crops of one photo; their probabilities are averaged."""
        t0 = time.perf_counter()
        outputs = [self.infer(array) for array in arrays]
        inference_ms = (time.perf_counter() - t0) * 1e3
        scores = np.mean([probs for probs, _ in outputs], axis=0)
        similarity = None if outputs[0][1] is None else float(np.mean([sim for _, sim in outputs]))
        best = top_k(scores, self.labels, max(1, k))
        latency = {"decode": decode_ms, "preprocess": preprocess_ms, "inference": inference_ms,
                   "total": decode_ms + preprocess_ms + inference_ms}
        return Result(path, best, self.is_uncertain(best[0].score, similarity),
                      {key: round(v, 3) for key, v in latency.items()}, round(peak_rss_mb(), 1), scores,
                      None if similarity is None else round(similarity, 4))

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
