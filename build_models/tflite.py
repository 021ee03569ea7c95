"""Keras to TFLite and back: conversion at a precision (full-integer int8 with a representative dataset), the
outputs export adds to the graph (similarity to the class means, probabilities), and running a .tflite on arrays.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import tensorflow as tf
from flowercam.model.runtime import make_interpreter
from flowercam.model.scores import dequantize

from .console import progress
from .outputs import arrange_outputs

PRECISIONS = ("float32", "float16", "int8")


def convert(model, size: int, precision: str, representative=None) -> bytes:
    """Convert a Keras model (raw RGB in, logits out) with a fixed (1, size, size, 3) input."""
    import keras

    image = keras.Input((size, size, 3), batch_size=1, name="image")
    fixed = keras.Model(image, model(image, training=False))
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the traced signature, ~100 lines a model
        converted = converter.convert()
    return arrange_outputs(converted, int(model.outputs[0].shape[-1]))  # classes first, as clients read them


def tflite_scores(path: Path, images: np.ndarray, threads: int = 2, description: str = "") -> np.ndarray:
    """Dequantized class outputs of a .tflite model for (N, S, S, 3) uint8 images, one at a time: logits, or
    calibrated probabilities for a model exported with ``scores="probabilities"`` (the default)."""
    return tflite_outputs(path, images, threads, description)[0]


def tflite_outputs(path: Path, images: np.ndarray, threads: int = 2,
                   description: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """(class outputs (N, C), similarity outputs (N,) or None) of a .tflite model, dequantized, one image at a time."""
    interpreter, _ = make_interpreter(path, threads)
    inp = interpreter.get_input_details()[0]
    details = interpreter.get_output_details()  # classes first (arrange_outputs), then similarity, embedding
    out = details[0]
    sim = next((o for o in details[1:] if int(np.prod(o["shape"])) == 1), None)
    logits = np.empty((len(images), int(np.prod(out["shape"]))), np.float64)
    similarity = np.empty(len(images), np.float64) if sim is not None else None
    with progress(description or f"running {path.name}", len(images)) as advance:
        for i, image in enumerate(images):
            interpreter.set_tensor(inp["index"], image[np.newaxis].astype(inp["dtype"]))
            interpreter.invoke()
            logits[i] = dequantize(interpreter.get_tensor(out["index"])[0], *out["quantization"])
            if sim is not None:
                similarity[i] = dequantize(interpreter.get_tensor(sim["index"]), *sim["quantization"]).ravel()[0]
            advance(1)
    return logits, similarity


def class_means(embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, D) unit vectors: the mean of each class's unit-normalized embeddings, normalized."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    means = np.stack([unit[labels == c].mean(0) for c in range(num_classes)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def _l2_normalize_layer():
    import keras

    class L2Normalize(keras.layers.Layer):
        """x / ||x|| over the last axis as one TFLite L2_NORMALIZATION op (int8, Edge TPU); Keras's own
        UnitNormalization lowers to SQUARE, which stays float."""

        def call(self, x):
            return tf.math.l2_normalize(x, axis=-1)

    return L2Normalize


def with_similarity(model, means: np.ndarray):
    """The classifier with two more outputs: the cosine similarity (N, 1) of the photo's pooled features to the
    nearest class mean, and the embedding (N, D), those features L2-normalised (for on-device learning).
    Integer-only ops (L2 normalization, a fixed Dense, a max)."""
    import keras

    unit = _l2_normalize_layer()(name="embedding_unit")(model.get_layer("pool").output)
    cosine = keras.layers.Dense(len(means), use_bias=False, trainable=False, name="class_cosine")
    similarity = keras.ops.max(cosine(unit), axis=-1, keepdims=True)
    cosine.set_weights([means.T.astype(np.float32)])
    return keras.Model(model.input, [model.output, similarity, unit], name="flowercam_with_similarity")


def with_probabilities(model, temperature: float):
    """The classifier with calibrated probabilities as its class output: softmax(logits / T) inside the graph
    (one MUL and one SOFTMAX, both integer ops the Edge TPU runs), so that any TFLite client reads them."""
    import keras

    outputs = model.outputs
    scaled = keras.layers.Rescaling(1.0 / temperature, name="temperature")(outputs[0])
    probabilities = keras.layers.Softmax(name="probabilities")(scaled)
    return keras.Model(model.input, [probabilities, *outputs[1:]], name=f"{model.name}_probabilities")
