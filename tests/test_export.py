"""Export to TFLite and the Edge TPU readiness check, on a tiny run trained in the test."""

from __future__ import annotations

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
from flowercam.model.edgetpu import check_readiness

from build_models.data import load_flowers102
from build_models.export import export_run
from build_models.presets import get_preset
from build_models.tflite import convert


@pytest.fixture(scope="module")
def tiny_run(dataset_dir, tmp_path_factory):
    from build_models.run import start_run

    run = tmp_path_factory.mktemp("run") / "lite0"
    config = replace(get_preset("lite0", size=64, views=1, phase1_epochs=8, phase2_epochs=1, batch_size=8))
    start_run(config, load_flowers102(dataset_dir), run)
    return run


@pytest.fixture(scope="module")
def exported(tiny_run, dataset_dir):
    """The tiny run exported with the defaults (probabilities inside the graph, TFLite Metadata)."""
    return export_run(tiny_run, load_flowers102(dataset_dir), calibration_images=6), tiny_run / "export"


def test_export_writes_three_measured_models(exported, dataset_dir):
    from flowercam.model.classifier import Classifier

    report, out = exported
    test = load_flowers102(dataset_dir).test
    for precision in ("float32", "float16", "int8"):
        model = out / f"lite0_{precision}.tflite"
        sidecar = json.loads(model.with_suffix(".json").read_text())
        assert sidecar["precision"] == precision and sidecar["backbone"] == "lite0"
        classifier = Classifier(model, crops="center")  # the device accepts it (sha256, shapes, labels checked)
        on_device = np.mean([classifier.classify(s.path).top_k[0].index == s.label for s in test])
        assert sidecar["metrics"]["test_top1"] == pytest.approx(on_device)  # the figure is what the device gets
    int8 = json.loads((out / "lite0_int8.json").read_text())
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert report["models"]["int8"]["edgetpu_readiness"].startswith("ready")
    assert report["models"]["float32"]["edgetpu_readiness"].startswith("not ready")
    assert report["models"]["int8"]["test_agreement_with_keras"] >= 0.8
    assert 0.05 <= report["calibration"]["temperature"] <= 20
    assert (out / "lite0_reliability.png").exists()
    assert (out / "lite0_int8.tflite").stat().st_size < (out / "lite0_float32.tflite").stat().st_size / 3


def test_training_and_device_inputs_are_byte_identical(exported, tiny_run, dataset_dir):
    """The photos as training saw them (the run's own config, as training builds its Preprocess) and as the
    device feeds the exported model (from the sidecar the export wrote): the same bytes."""
    from flowercam.model.classifier import Classifier
    from flowercam.model.preprocess import Preprocess

    from build_models.images import load_arrays
    from build_models.presets import TrainConfig

    config = TrainConfig.from_file(tiny_run / "config.json")
    samples = load_flowers102(dataset_dir).train[:4]
    training = load_arrays(samples, Preprocess(config.size, config.crop_fraction))
    device = Classifier(exported[1] / "lite0_int8.tflite", crops="center")
    for sample, array in zip(samples, training):
        assert device.load(sample.path)[0][0].tobytes() == array.tobytes()


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


@pytest.mark.slow  # a second whole export (~28 s on 2 cores): CI runs it with -m slow
def test_export_with_similarity_output(tiny_run, dataset_dir, tmp_path):
    """The similarity output: integer-only, read by the device, high for a training photo, and it makes a photo
    unlike every class 'uncertain' when its threshold says so."""
    from flowercam.model.classifier import Classifier
    from flowercam.model.sidecar import ModelError
    from PIL import Image

    from build_models.export import UncertainRule

    ds = load_flowers102(dataset_dir)
    rule = UncertainRule(uncertain_below=0.0, similarity=True, similarity_below=0.9, crops="multi",
                         chosen_on="test", by_crops={"center": {"uncertain_below": 0.0, "similarity_below": 0.85}})
    camera = tmp_path / "camera"  # the owner's frames calibrate too; an unreadable one is not counted
    camera.mkdir()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(camera / "frame.png")
    (camera / "torn.jpg").write_bytes(b"\xff\xd8\xff torn")
    report = export_run(tiny_run, ds, tmp_path, calibration_images=6, rule=rule, calibration_folder=camera)
    assert report["models"]["int8"]["edgetpu_readiness"].startswith("ready")
    sidecar = json.loads((tmp_path / "lite0_int8.json").read_text())
    assert sidecar["similarity"]["shape"] == [1, 1] and sidecar["similarity_below"] == 0.9
    assert sidecar["crops"] == "multi" and sidecar["calibration_images"] == 7 and "similar" in \
        sidecar["uncertain_rule"]["text"]
    assert report["calibration_images"] == 7 and "1 of 8 calibration photos could not be read" in report["warnings"]
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
    # the exported model's outputs: classes first (what MediaPipe's classifications[0] reads), then the similarity
    # and the embedding (unit length)
    assert [d["name"] for d in classifier.interpreter.get_output_details()] == ["probabilities", "similarity",
                                                                                "embedding"]
    assert sidecar["embedding"]["shape"][0] == 1 and abs(np.linalg.norm(known.embedding) - 1) < 0.05
    # a sidecar that does not describe the second output is refused with one line
    broken = json.loads((tmp_path / "lite0_int8.json").read_text())
    broken["similarity"] = None
    (tmp_path / "lite0_int8.json").write_text(json.dumps(broken))
    with pytest.raises(ModelError, match="disagree on the similarity output"):
        Classifier(tmp_path / "lite0_int8.tflite")


def test_exported_models_carry_metadata_that_round_trips(exported, dataset_dir):
    """tflite-support's own displayer reads back the labels, the input spec and the outputs' meaning; the device
    reads the same without it; probabilities come out of the graph."""
    from flowercam.model.classifier import Classifier
    from flowercam.model.metadata import read_metadata

    from build_models.metadata import metadata_json

    report, out = exported
    labels = load_flowers102(dataset_dir).class_names
    assert (out / "labels.txt").read_text().splitlines() == list(labels)
    for precision in ("float32", "float16", "int8"):
        model = out / f"lite0_{precision}.tflite"
        shown = json.loads(metadata_json(model))
        graph = shown["subgraph_metadata"][0]
        image = graph["input_tensor_metadata"][0]
        assert image["content"]["content_properties"]["color_space"] == "RGB"
        assert image["process_units"][0]["options"] == {"mean": [0.0], "std": [1.0]}
        scores = graph["output_tensor_metadata"][0]
        assert scores["name"] == "probabilities" and scores["associated_files"][0]["name"] == "labels.txt"
        assert scores["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
        embedded = read_metadata(model)
        assert embedded.labels == labels and embedded.name == f"flowercam lite0 ({precision})"
        assert report["size_mb_without_metadata"][precision] <= report["models"][precision]["size_mb"]
    classifier = Classifier(out / "lite0_int8.tflite")
    assert classifier.sidecar.output_kind == "probabilities" and classifier.metadata.labels == labels
    from flowercam.cli.describe import describe

    shown_by_info = describe(classifier)["metadata"]
    assert shown_by_info["name"] == "flowercam lite0 (int8)" and shown_by_info["labels"] == len(labels)
    assert shown_by_info["associated_files"] == ["labels.txt"] and "Apache-2.0" in shown_by_info["license"]
    result = classifier.classify(load_flowers102(dataset_dir).test[0].path)
    assert result.scores.sum() == pytest.approx(1.0) and result.scores.min() >= 0


def test_a_model_whose_embedded_labels_differ_from_its_sidecar_is_refused(exported, tmp_path):
    import shutil

    from flowercam.model.classifier import Classifier
    from flowercam.model.sidecar import ModelError

    _, out = exported
    model = tmp_path / "swapped.tflite"
    shutil.copy(out / "lite0_int8.tflite", model)
    sidecar = json.loads((out / "lite0_int8.json").read_text())
    sidecar["labels"][0], sidecar["labels"][1] = sidecar["labels"][1], sidecar["labels"][0]
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="embedded labels do not match its sidecar .line 1 of labels.txt"):
        Classifier(model)


def test_mediapipe_image_classifier_names_the_flower_with_probabilities(exported, dataset_dir):
    """A standard client, MediaPipe Tasks' ImageClassifier, reads the class names from the metadata and gets
    probabilities; its answer is flowercam's."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as err:
        pytest.skip(f"mediapipe does not install here ({err}); .ci/run installs it")
    from flowercam.model.classifier import Classifier

    _, out = exported
    model = out / "lite0_int8.tflite"
    photo = load_flowers102(dataset_dir).test[0].path
    classifier = Classifier(model)
    # MediaPipe resizes the whole photo to the input; flowercam takes the centred square. Give MediaPipe that square,
    # so that both see the same pixels and their scores can be compared.
    square = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(classifier.preprocess(photo)))
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)), max_results=-1)
    with vision.ImageClassifier.create_from_options(options) as client:
        heads = client.classify(square).classifications
    head = next(h for h in heads if h.head_name == "probabilities")
    scores = [c.score for c in head.categories]
    assert all(0.0 <= s <= 1.0 for s in scores) and sum(scores) == pytest.approx(1.0, abs=0.02)
    ours = classifier.classify(photo)
    assert head.categories[0].category_name == ours.top_k[0].label
    assert head.categories[0].score == pytest.approx(ours.top_k[0].score, abs=0.02)


def test_a_trainval_run_never_fits_its_temperature_on_the_photos_it_trained_on(tiny_run, dataset_dir, tmp_path):
    import shutil
    import subprocess
    import sys

    from build_models.export import ExportError
    from build_models.presets import TrainConfig

    run = tmp_path / "trainval"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    config = TrainConfig.from_file(run / "config.json")
    (run / "config.json").write_text(replace(config, protocol="trainval").to_json())
    with pytest.raises(ExportError, match="trained on val"):
        export_run(run, load_flowers102(dataset_dir), calibration_images=6)
    done = subprocess.run([sys.executable, "-m", "build_models", "export", str(run), "--data", str(dataset_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--temperature-from" in done.stderr and "Traceback" not in done.stderr
    assert not (run / "export").exists()  # refused before writing anything
