"""Export a trained run to TFLite float32, float16 and full-integer int8, measured with the interpreter.

The int8 model takes raw uint8 RGB (normalization is inside the model) and gives uint8
logits; nothing stays in float, so it is Edge TPU ready. Each model gets a JSON sidecar.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from flowercam.errors import FlowercamError
from flowercam.model.edgetpu import check_readiness
from flowercam.model.preprocess import Preprocess
from flowercam.model.runtime import make_interpreter
from flowercam.model.scores import output_roles, softmax
from flowercam.model.sidecar import Sidecar, photo_fingerprint, sha256_file, write_sidecar

from calibration.representative import representative_dataset, representative_paths
from calibration.temperature import expected_calibration_error, fit_temperature, reliability_diagram

from .data import Flowers102
from .fitting import predict_batches
from .heads import embedding_model
from .images import labels_of, load_arrays
from .outputs import tensor_spec
from .presets import TrainConfig
from .run import load_run, run_logits
from .samples import evaluation_samples, training_samples
from .tflite import PRECISIONS, class_means, convert, tflite_scores, with_probabilities, with_similarity


@dataclass(frozen=True)
class UncertainRule:
    """When the exported model answers "uncertain", and which crops the device uses by default."""

    uncertain_below: float = 0.5  # calibrated top-1 probability
    similarity: bool = False  # add the similarity-to-the-nearest-class output
    similarity_below: float | None = None  # cosine similarity under which a photo is unlike every class
    crops: str = "center"
    chosen_on: str = ""  # where the thresholds were chosen, for the model card
    by_crops: dict = field(default_factory=dict)  # other crop sets' {"uncertain_below", "similarity_below"}

    def text(self, with_similarity: bool) -> str:
        """The rule in words."""
        words = f"the calibrated top-1 probability is below {self.uncertain_below:g}"
        if with_similarity and self.similarity_below is not None:
            words += (f", or the photo's features are less similar than {self.similarity_below:g} (cosine) to "
                      "every class's mean training features")
        return words


MIN_VAL_PER_CLASS = 5  # val photos per class below which no temperature or threshold is fitted on val
SIMILARITY_QUANTILE = 0.05  # the default similarity threshold: this share of the val photos falls below it


class ExportError(FlowercamError):
    """An export asked for something its run cannot give (e.g. a temperature fitted on photos it trained on)."""


def val_similarity_below(embedder, val_x: np.ndarray, means: np.ndarray) -> float:
    """The similarity threshold from the val photos: the :data:`SIMILARITY_QUANTILE` of their cosine to the nearest
    class mean (so that about 95 % of photos like the owner's are not turned away as unknown)."""
    emb = predict_batches(embedder, val_x, description="embedding val")
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return round(float(np.quantile((unit @ means.T).max(1), SIMILARITY_QUANTILE)), 4)


def export_run(run_dir: Path, dataset: Flowers102, out_dir: Path | None = None, calibration_images: int = 300,
               calibration_folder: Path | None = None, temperature: float | None = None,
               name: str | None = None, edgetpu: bool = False, seed: int = 0,
               rule: UncertainRule | None = None, temperature_source: str = "given",
               scores: str = "probabilities") -> dict:
    """Write the three models (with TFLite Metadata) and sidecars, measure them on val and test; returns the
    report. ``scores``: "probabilities" puts softmax(logits / T) inside the graph, so T is fixed (given, or fitted
    on the float model's val logits) before conversion; "logits" leaves it to the device, and fits T on the int8
    model's val logits."""
    rule = rule or UncertainRule()
    config, model = load_run(run_dir)
    if config.protocol == "trainval" and temperature is None:  # its val is training data: nothing to fit on
        raise ExportError(f"{run_dir.name} was trained on val, so its val cannot fit the temperature: give "
                          "--temperature-from a paper-protocol run (its folder or its exported sidecar)")
    out_dir = out_dir or run_dir / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or config.preset
    pre = Preprocess(config.size, config.crop_fraction)
    train_s, _ = training_samples(config, dataset)
    calib = representative_paths([s.path for s in train_s], labels_of(train_s), calibration_images, seed,
                                 calibration_folder)
    data = {split: _split_arrays(dataset, split, config, pre) for split in ("val", "test")}
    keras_logits = {split: run_logits(run_dir, model, dataset, split, config)[0] for split in data}
    warnings = _small_val_warning(len(data["val"][1]), dataset.num_classes)
    small_val = bool(warnings)
    if rule.similarity:
        trained_on_val = config.protocol == "trainval"
        if rule.similarity_below is None and trained_on_val and not small_val:
            warnings.append("the run was trained on val: no similarity threshold unless given (--similarity-below)")
        model, rule = _with_similarity(model, rule, train_s, pre, data["val"][0], dataset.num_classes,
                                       fit_threshold=not (small_val or trained_on_val))
    t, fitted_on = temperature, temperature_source
    if t is None and small_val:
        t, fitted_on = 1.0, "not fitted (val too small)"
    if scores == "probabilities":
        if t is None:
            t, fitted_on = fit_temperature(keras_logits["val"], data["val"][1]), "val (float model)"
        model = with_probabilities(model, t)
    report: dict = {"run": str(run_dir), "preset": config.preset, "protocol": config.protocol, "scores": scores,
                    "uncertain_rule": asdict(rule), "models": {},
                    "warnings": warnings, "out": str(out_dir)}
    for split in data:
        report.setdefault("keras", {})[split] = _accuracy(keras_logits[split], data[split][1])
    representative = representative_dataset(calib, pre)
    all_logits = _write_models(model, out_dir / name, config, dataset.class_names, run_dir.name, scores,
                               representative, data, keras_logits, report)
    report["calibration_images"] = representative.used  # the photos that calibrated it, not the paths asked for
    if representative.skipped:
        warnings.append(f"{representative.skipped} of {len(calib)} calibration photos could not be read")
    int8 = all_logits["int8"]
    if scores == "logits" and t is None:
        t, fitted_on = fit_temperature(int8["val"], data["val"][1]), "val (int8 model)"
    report["calibration"] = _calibration(out_dir / f"{name}_reliability.png", int8["test"], keras_logits["test"],
                                         scores, data["test"][1], t, fitted_on)
    _write_sidecars(out_dir / name, pre, dataset, t, config, run_dir.name, report, rule, representative.used,
                    scores)
    if edgetpu:
        report["edgetpu_compiler"] = compile_edgetpu(out_dir / f"{name}_int8.tflite")
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _with_similarity(model, rule: UncertainRule, train_s: list, pre: Preprocess, val_x: np.ndarray,
                     num_classes: int, fit_threshold: bool):
    """The model with its similarity output (cosine to the training photos' class means), and the rule with a
    similarity threshold chosen on val where none is given and ``fit_threshold`` (val held out, large enough)."""
    embedder = embedding_model(model)
    means = class_means(predict_batches(embedder, load_arrays(train_s, pre, "loading train"),
                                        description="embedding train"), labels_of(train_s), num_classes)
    if rule.similarity_below is None and fit_threshold:
        rule = replace(rule, similarity_below=val_similarity_below(embedder, val_x, means),
                       chosen_on=rule.chosen_on or f"val: {SIMILARITY_QUANTILE:.0%} of its photos fall below")
    return with_similarity(model, means), rule


def _write_models(model, stem: Path, config: TrainConfig, class_names: tuple[str, ...], run_name: str, scores: str,
                  representative, data: dict, keras_logits: dict, report: dict) -> dict:
    """The three .tflite files (``stem``_float32 ...) with their metadata, measured into ``report``; returns the
    outputs of each on val and test."""
    from .metadata import embed_metadata

    all_logits = {}
    for precision in PRECISIONS:
        path = stem.with_name(f"{stem.name}_{precision}.tflite")
        path.write_bytes(convert(model, config.size, precision, representative))
        report.setdefault("size_mb_without_metadata", {})[precision] = round(path.stat().st_size / 1e6, 3)
        embed_metadata(path, class_names, f"flowercam {stem.name} ({precision})",
                       f"Flower classifier, {len(class_names)} classes (Oxford 102 Category Flower "
                       f"Dataset names), {config.backbone} at {config.size} px, {precision}; run {run_name}.",
                       "1", scores)
        all_logits[precision] = {s: tflite_scores(path, data[s][0], description=f"{precision} {s}") for s in data}
        report["models"][precision] = _measure(path, all_logits[precision], keras_logits, data)
    return all_logits


def _write_sidecars(stem: Path, pre: Preprocess, dataset: Flowers102, t: float, config: TrainConfig,
                    run_name: str, report: dict, rule: UncertainRule, calibration_images: int, scores: str) -> None:
    trained_on = tuple(sorted({photo_fingerprint(s.path) for s in (*dataset.train, *dataset.val)}))
    for precision in PRECISIONS:
        metrics = {**report["models"][precision], "calibration": report["calibration"], "protocol": config.protocol}
        metrics.pop("file")
        write_model_sidecar(stem.with_name(f"{stem.name}_{precision}.tflite"), pre, dataset.class_names, precision,
                            t, config.backbone, run_name, metrics, rule=rule, calibration_images=calibration_images,
                            output_kind=scores, trained_on=trained_on)


def run_temperature(run_dir: Path, dataset: Flowers102) -> float:
    """The temperature fitted on a run's own (held-out) val logits, from its float model."""
    config, model = load_run(run_dir)
    if config.protocol == "trainval":
        raise ExportError(f"{run_dir} was trained on val: take the temperature from a paper-protocol run")
    logits, labels = run_logits(run_dir, model, dataset, "val", config)
    return fit_temperature(logits, labels)


def _split_arrays(dataset: Flowers102, split: str, config: TrainConfig, pre: Preprocess):
    samples = evaluation_samples(config, dataset, split)
    return load_arrays(samples, pre, f"loading {split}"), labels_of(samples)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def _measure(path: Path, logits: dict, keras_logits: dict, data: dict) -> dict:
    measured = {"file": path.name, "size_mb": round(path.stat().st_size / 1e6, 3),
                "edgetpu_readiness": check_readiness(path).summary()}
    for split, split_logits in logits.items():
        measured[f"{split}_top1"] = _accuracy(split_logits, data[split][1])
        measured[f"{split}_agreement_with_keras"] = float(
            (split_logits.argmax(1) == keras_logits[split].argmax(1)).mean())
    return measured


def _calibration(png: Path, int8_test: np.ndarray, keras_test: np.ndarray, scores: str, labels: np.ndarray,
                 t: float, fitted_on: str) -> dict:
    """ECE on test of the probabilities before and after temperature ``t``, and the reliability diagram. With
    ``scores="probabilities"`` the int8 outputs are already the calibrated probabilities and "before" is the
    float model at T = 1; with logits, both come from the int8 model."""
    if scores == "logits":
        before, after = softmax(int8_test), softmax(int8_test, t)
    else:
        before, after = softmax(keras_test), int8_test / int8_test.sum(1, keepdims=True)
    reliability_diagram(before, after, labels, png, title=f"int8 on test, T={t:.3f} ({fitted_on})")
    return {"temperature": t, "fitted_on": fitted_on,
            "test_ece_before": expected_calibration_error(before, labels),
            "test_ece_after": expected_calibration_error(after, labels)}


def _small_val_warning(photos: int, num_classes: int) -> list[str]:
    """A warning when val is too small to fit a temperature or thresholds on (none otherwise)."""
    if photos >= MIN_VAL_PER_CLASS * num_classes:
        return []
    return [f"val has {photos} photos ({photos / num_classes:.1f} per class): too few to fit a temperature or "
            f"thresholds (needs {MIN_VAL_PER_CLASS} per class); temperature 1.0 and no similarity threshold unless "
            "given (--temperature-from, --similarity-below), or add photos"]


def write_model_sidecar(path: Path, pre: Preprocess, labels: tuple[str, ...], precision: str, temperature: float,
                        backbone: str, run: str, metrics: dict, rule: UncertainRule | None = None,
                        calibration_images: int | None = None, output_kind: str = "logits",
                        trained_on: tuple[str, ...] = ()) -> Sidecar:
    """The sidecar of an existing .tflite, from its tensors and what the caller knows."""
    rule = rule or UncertainRule()
    interpreter, _ = make_interpreter(path)
    details = interpreter.get_output_details()
    roles = output_roles([int(np.prod(d["shape"])) for d in details], len(labels))
    similarity, embedding = (None if i is None else tensor_spec(details[i]) for i in (roles.similarity,
                                                                                      roles.embedding))
    sidecar = Sidecar(sha256=sha256_file(path), input=tensor_spec(interpreter.get_input_details()[0]),
                      output=tensor_spec(details[roles.classes]), preprocess=pre, embedding=embedding,
                      labels=tuple(labels), precision=precision, output_kind=output_kind,
                      temperature=round(float(temperature), 6),
                      uncertain_below=rule.uncertain_below, crops=rule.crops, similarity=similarity,
                      similarity_below=rule.similarity_below if similarity is not None else None,
                      calibration_images=calibration_images,
                      uncertain_rule={"text": rule.text(similarity is not None), "chosen_on": rule.chosen_on},
                      thresholds={rule.crops: {"uncertain_below": rule.uncertain_below,
                                               "similarity_below": rule.similarity_below}, **rule.by_crops},
                      backbone=backbone, run=run, metrics=metrics, trained_on=trained_on)
    write_sidecar(path, sidecar)
    return sidecar


def compile_edgetpu(path: Path) -> dict:
    """Compile an exported int8 model for the Coral Edge TPU with ``edgetpu_compiler`` (when it is on PATH) and
    write the compiled model's own sidecar (its sha256, and the one it was compiled from), so that
    ``flowercam --edgetpu`` runs it. Returns what happened: the compiled file and the ops the compiler mapped
    to the TPU and left on the CPU, or, without the compiler, the exact command to run where it is."""
    command = f"edgetpu_compiler -s -o {path.parent} {path}"
    compiled = path.with_name(path.stem + "_edgetpu.tflite")
    compiler = shutil.which("edgetpu_compiler")
    if not compiler:
        return {"compiled": None, "command": command,
                "summary": f"edgetpu_compiler is not on PATH (it runs on x86-64 Debian/Ubuntu: Coral's apt "
                           f"repository, package edgetpu-compiler); {path.name} is ready for it: {command}, then "
                           f"build-models compile {path} writes the compiled model's sidecar"}
    done = subprocess.run([compiler, "-s", "-o", str(path.parent), str(path)], capture_output=True, text=True)
    log = (done.stdout + done.stderr).strip()
    ops = {key: int(m.group(1)) for key, pattern in (("tpu", r"will run on Edge TPU:\s*(\d+)"),
                                                    ("cpu", r"will run on CPU:\s*(\d+)"))
           if (m := re.search(pattern, log))}
    if done.returncode != 0 or not compiled.is_file():
        return {"compiled": None, "command": command, "summary": f"edgetpu_compiler failed: {log[-300:]}"}
    write_compiled_sidecar(path, compiled)
    mapped = f"{ops.get('tpu', '?')} ops on the Edge TPU, {ops.get('cpu', '?')} on the CPU"
    return {"compiled": str(compiled), "command": command, "ops": ops, "log": log[-2000:],
            "summary": f"compiled: {compiled.name} ({mapped})"}


def write_compiled_sidecar(uncompiled: Path, compiled: Path) -> Path:
    """The compiled model's sidecar: the uncompiled one's, with the compiled file's sha256 and the uncompiled
    file's beside it."""
    from flowercam.model.sidecar import read_sidecar

    source = read_sidecar(uncompiled)
    return write_sidecar(compiled, replace(source, sha256=sha256_file(compiled), compiled_from=source.sha256))
