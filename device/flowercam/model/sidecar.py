"""The JSON sidecar that travels with every exported model, and its checks."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import FlowercamError
from .preprocess import CROP_SETS, Preprocess

FORMAT = "flowercam-model/1"
BUNDLED_MODEL = Path(__file__).parents[1] / "models" / "flowercam.tflite"


class ModelError(FlowercamError):
    """A model file or its sidecar is missing, broken or inconsistent; one-line message."""


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and affine quantization (real = scale * (q - zero_point)) of a tensor."""

    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0


@dataclass(frozen=True)
class Sidecar:
    """What a .tflite model needs beside it: preprocessing, labels, calibration, provenance."""

    sha256: str
    input: TensorSpec
    output: TensorSpec
    preprocess: Preprocess
    labels: tuple[str, ...]
    precision: str = "int8"
    output_kind: str = "logits"  # or "probabilities"
    temperature: float = 1.0
    uncertain_below: float = 0.5
    crops: str = "center"  # the crop set classify, watch and the daemon use by default (preprocess.CROP_SETS)
    # Optional second output: the photo's cosine similarity (1, 1) to the nearest class mean of the training
    # embeddings; under ``similarity_below`` the answer is uncertain too (an unknown species, not a flower).
    similarity: TensorSpec | None = None
    similarity_below: float | None = None
    # Optional third output: the photo's embedding (1, D), its L2-normalised pooled features, for on-device learning
    embedding: TensorSpec | None = None
    calibration_images: int | None = None
    uncertain_rule: dict = field(default_factory=dict)  # how the thresholds were chosen, for people
    # thresholds per crop set ({"center": {"uncertain_below": .., "similarity_below": ..}, ...}); the two fields
    # above are those of the default crop set
    thresholds: dict = field(default_factory=dict)

    def thresholds_for(self, crops: str) -> tuple[float, float | None]:
        """(uncertain_below, similarity_below) for a crop set."""
        chosen = self.thresholds.get(crops, {})
        return (float(chosen.get("uncertain_below", self.uncertain_below)),
                chosen.get("similarity_below", self.similarity_below))
    backbone: str = ""
    run: str = ""
    metrics: dict = field(default_factory=dict)
    # fingerprints (photo_fingerprint) of the photos it was trained and validated on: evaluate leaves them out
    trained_on: tuple[str, ...] = ()
    compiled_from: str = ""  # an Edge TPU compiled model: the sha256 of the model it was compiled from

    def to_json(self) -> str:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return json.dumps({"format": FORMAT, **data}, indent=2) + "\n"

    def __post_init__(self) -> None:
        _check_fields(self)

    @classmethod
    def from_json(cls, text: str) -> Sidecar:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ModelError("sidecar is not a JSON object")
        if data.pop("format", None) != FORMAT:
            raise ModelError(f"sidecar format is not {FORMAT}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ModelError(f"sidecar has unknown keys {sorted(unknown)}")
        pre = data.pop("preprocess")
        data["preprocess"] = Preprocess(size=int(pre["size"]), crop_fraction=float(pre["crop_fraction"]))
        for key in ("input", "output", "similarity", "embedding"):
            spec = data.get(key)
            if spec is not None:
                data[key] = TensorSpec(tuple(spec["shape"]), spec["dtype"], float(spec["scale"]),
                                       int(spec["zero_point"]))
        data["labels"] = tuple(data["labels"])
        data["trained_on"] = tuple(data.get("trained_on", ()))
        return cls(**data)


def _number(value, name: str, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"sidecar {name}={value!r}: expected a number")
    if value < low or value > high or (low_open and value == low):
        raise ModelError(f"sidecar {name}={value!r}: expected {'>' if low_open else '>='} {low:g} and <= {high:g}")


def _check_fields(sidecar: Sidecar) -> None:
    """Every field's type and range, so that a hand-edited sidecar fails on load with one line, not later
    with NaN scores or a traceback."""
    _number(sidecar.temperature, "temperature", 0.0, 1e3, low_open=True)
    _number(sidecar.uncertain_below, "uncertain_below", 0.0, 1.0)
    if sidecar.similarity_below is not None:
        _number(sidecar.similarity_below, "similarity_below", -1.0, 1.0)
    if not sidecar.labels or not all(isinstance(label, str) and label.strip() for label in sidecar.labels):
        raise ModelError("sidecar labels: expected a non-empty list of names")
    if len(set(sidecar.labels)) != len(sidecar.labels):
        raise ModelError("sidecar labels: a name appears twice")
    if sidecar.output_kind not in ("logits", "probabilities"):
        raise ModelError(f"sidecar output_kind={sidecar.output_kind!r}: expected logits or probabilities")
    if sidecar.crops not in CROP_SETS:
        raise ModelError(f"sidecar crops={sidecar.crops!r}: expected one of {', '.join(CROP_SETS)}")
    if not isinstance(sidecar.thresholds, dict):
        raise ModelError("sidecar thresholds: expected an object")
    for crops, chosen in sidecar.thresholds.items():
        if crops not in CROP_SETS or not isinstance(chosen, dict):
            raise ModelError(f"sidecar thresholds.{crops}: expected a crop set with its thresholds")
        _number(chosen.get("uncertain_below", 0.5), f"thresholds.{crops}.uncertain_below", 0.0, 1.0)
        if chosen.get("similarity_below") is not None:
            _number(chosen["similarity_below"], f"thresholds.{crops}.similarity_below", -1.0, 1.0)
    for name in ("input", "output", "similarity", "embedding"):
        spec = getattr(sidecar, name)
        if spec is not None:
            _number(spec.scale, f"{name}.scale", 0.0, 1e6)


def sidecar_path(model: Path) -> Path:
    """``model.tflite`` -> ``model.json``."""
    return model.with_suffix(".json")


def photo_fingerprint(path: Path) -> str:
    """A photo's identity whatever its name or folder: the first 16 hex digits of its content's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_sidecar(model: Path) -> Sidecar:
    """Read and check the sidecar of ``model`` (it must exist and match the file's sha256)."""
    try:
        return _read_sidecar(model)
    except OSError as err:  # a path too long, permission denied, a folder named .json, ...
        what = str(err.filename or model)
        shown = what if len(what) <= 120 else what[:117] + "..."
        kind = "sidecar" if what.endswith(".json") else "model"
        raise ModelError(f"cannot read {kind} {shown}: {err.strerror or err}") from None


def _read_sidecar(model: Path) -> Sidecar:
    if not model.is_file():
        raise ModelError(f"model not found: {model}")
    path = sidecar_path(model)
    if not path.is_file():
        raise ModelError(f"sidecar not found: {path} (every model travels with its .json)")
    try:
        sidecar = Sidecar.from_json(path.read_text(encoding="utf-8"))
    except ModelError as err:
        raise ModelError(f"{path.name}: {err}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelError(f"broken sidecar {path.name}: {type(err).__name__}: {err}") from None
    actual = sha256_file(model)
    if actual != sidecar.sha256:
        raise ModelError(f"{model.name} does not match its sidecar: sha256 {actual[:12]}…, "
                         f"expected {sidecar.sha256[:12]}…")
    return sidecar


def write_sidecar(model: Path, sidecar: Sidecar) -> Path:
    """Write ``sidecar`` next to ``model``; returns its path."""
    path = sidecar_path(model)
    path.write_text(sidecar.to_json(), encoding="utf-8")
    return path
