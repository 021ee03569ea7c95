"""Export to TFLite and the Edge TPU readiness check, on a tiny run trained in the test."""

from __future__ import annotations

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
from flowercam.edgetpu import check_readiness

from build_models.data import load_flowers102
from build_models.export import convert, export_run
from build_models.presets import get_preset


@pytest.fixture(scope="module")
def tiny_run(dataset_dir, tmp_path_factory):
    from build_models.run import start_run

    run = tmp_path_factory.mktemp("run") / "lite0"
    config = replace(get_preset("lite0", size=64, views=1, phase1_epochs=8, phase2_epochs=1, batch_size=8))
    start_run(config, load_flowers102(dataset_dir), run)
    return run


def test_export_writes_three_measured_models(tiny_run, dataset_dir):
    from flowercam.classifier import Classifier

    report = export_run(tiny_run, load_flowers102(dataset_dir), calibration_images=6)
    out = tiny_run / "export"
    for precision in ("float32", "float16", "int8"):
        model = out / f"lite0_{precision}.tflite"
        sidecar = json.loads(model.with_suffix(".json").read_text())
        assert sidecar["precision"] == precision and sidecar["backbone"] == "lite0"
        assert sidecar["metrics"]["test_top1"] == report["models"][precision]["test_top1"]
        Classifier(model)  # the device accepts it (sha256, shapes, labels checked)
    int8 = json.loads((out / "lite0_int8.json").read_text())
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert report["models"]["int8"]["edgetpu_readiness"].startswith("ready")
    assert report["models"]["float32"]["edgetpu_readiness"].startswith("not ready")
    assert report["models"]["int8"]["test_agreement_with_keras"] >= 0.8
    assert 0.05 <= report["calibration"]["temperature"] <= 20
    assert (out / "lite0_reliability.png").exists()
    assert (out / "lite0_int8.tflite").stat().st_size < (out / "lite0_float32.tflite").stat().st_size / 3


def _tiny_keras(batch_size=None):
    inputs = keras.Input((16, 16, 3), batch_size=batch_size)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _representative():
    rng = np.random.default_rng(0)
    for _ in range(8):
        yield [rng.uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)]


def test_readiness_passes_a_full_integer_model(tmp_path):
    path = tmp_path / "int8.tflite"
    path.write_bytes(convert(_tiny_keras(), 16, "int8", _representative))
    result = check_readiness(path)
    assert result.ready, result.problems


def test_readiness_catches_a_float_op(tmp_path):
    path = tmp_path / "float.tflite"
    path.write_bytes(convert(_tiny_keras(), 16, "float32"))
    result = check_readiness(path)
    assert not result.ready and result.first_cpu_op == 0
    assert any("float32 tensor" in p for p in result.problems)


def test_readiness_catches_a_dynamic_shape(tmp_path):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(_tiny_keras())  # batch dimension left dynamic
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(converter.convert())
    result = check_readiness(path)
    assert not result.ready and any("dynamic shape" in p for p in result.problems)


def test_export_with_similarity_output(tiny_run, dataset_dir, tmp_path):
    """The similarity output: integer-only, read by the device, high for a training photo, and it makes a photo
    unlike every class 'uncertain' when its threshold says so."""
    from flowercam.classifier import Classifier
    from flowercam.sidecar import ModelError
    from PIL import Image

    from build_models.export import UncertainRule

    ds = load_flowers102(dataset_dir)
    rule = UncertainRule(uncertain_below=0.0, similarity=True, similarity_below=0.9, crops="multi",
                         chosen_on="test", by_crops={"center": {"uncertain_below": 0.0, "similarity_below": 0.85}})
    report = export_run(tiny_run, ds, tmp_path, calibration_images=6, rule=rule)
    assert report["models"]["int8"]["edgetpu_readiness"].startswith("ready")
    sidecar = json.loads((tmp_path / "lite0_int8.json").read_text())
    assert sidecar["similarity"]["shape"] == [1, 1] and sidecar["similarity_below"] == 0.9
    assert sidecar["crops"] == "multi" and sidecar["calibration_images"] == 6 and "similar" in \
        sidecar["uncertain_rule"]["text"]
    default = Classifier(tmp_path / "lite0_int8.tflite")
    assert default.crops == "multi" and default.similarity_below == 0.9
    classifier = Classifier(tmp_path / "lite0_int8.tflite", crops="center")
    assert classifier.similarity_below == 0.85  # each crop set has its own thresholds
    known = classifier.classify(ds.train[0].path)
    assert known.similarity > 0.9 and not known.uncertain
    odd = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(odd)
    unknown = classifier.classify(odd)
    assert unknown.similarity < known.similarity
    assert unknown.uncertain == (unknown.similarity < 0.85)
    # a sidecar that does not describe the second output is refused with one line
    broken = json.loads((tmp_path / "lite0_int8.json").read_text())
    broken["similarity"] = None
    (tmp_path / "lite0_int8.json").write_text(json.dumps(broken))
    with pytest.raises(ModelError, match="2 outputs, the sidecar describes 1"):
        Classifier(tmp_path / "lite0_int8.tflite")
