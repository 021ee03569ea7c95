"""What ``flowercam info`` reports about a loaded model."""

from __future__ import annotations

import numpy as np

from ..model.edgetpu import check_readiness


def _tensor(detail: dict) -> dict:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}


def describe(classifier) -> dict:
    """A JSON-ready description of the classifier's model, runtime and sidecar."""
    sidecar, path = classifier.sidecar, classifier.model
    interpreter = classifier.interpreter
    return {
        "model": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 3),
        "sha256": sidecar.sha256,  # verified against the file when the model was loaded
        "runtime": classifier.runtime,
        "precision": sidecar.precision,
        "backbone": sidecar.backbone,
        "run": sidecar.run,
        "input": _tensor(interpreter.get_input_details()[0]),
        "outputs": [_tensor(detail) for detail in interpreter.get_output_details()],
        "preprocess": sidecar.preprocess.to_dict(),
        "labels": list(sidecar.labels),
        "scores": sidecar.output_kind,
        "temperature": sidecar.temperature,
        "uncertain_below": classifier.threshold,
        "similarity_below": classifier.similarity_below,
        "thresholds": sidecar.thresholds,
        "uncertain_rule": sidecar.uncertain_rule,
        "crops": classifier.crops,
        "calibration_images": sidecar.calibration_images,
        "edgetpu": check_readiness(path).summary(),
        "metadata": classifier.metadata.summary() if classifier.metadata else None,
        "metrics": sidecar.metrics,
        "adapter": _adapter(classifier.adapter),
    }


def _adapter(adapter) -> dict | None:
    """What an adapter adds: its kind, classes added, photos per class, when it was learned, its uncertain rule."""
    if adapter is None:
        return None
    return {"kind": adapter.kind, "classes_added": list(adapter.added), "photos": adapter.photos,
            "learned_at": adapter.info.get("learned_at"), "from": adapter.info.get("folder"),
            "rule": {"uncertain_below": adapter.uncertain_below,
                     "similarity_floor": {adapter.labels[c]: round(float(adapter.floor[c]), 4)
                                          for c in np.flatnonzero(adapter.taught)},
                     "margin": {adapter.labels[c]: round(float(adapter.margin[c]), 4)
                                for c in np.flatnonzero(adapter.taught)}}}
