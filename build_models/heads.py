"""The model's parts: the new head, the backbone cut into its frozen bottom and fine-tuned top, and the whole
classifier (raw RGB in, logits out)."""

from __future__ import annotations

import keras

from .backbones import BackboneSpec


def build_head(spec: BackboneSpec, num_classes: int, feature_dim: int) -> keras.Sequential:
    """Pooled features -> logits: hidden Dense → BN → ReLU → Dropout blocks, then Dense(num_classes)."""
    reg = keras.regularizers.L2(spec.head_l2) if spec.head_l2 else None
    stack: list = [keras.Input((feature_dim,))]
    for i, units in enumerate(spec.hidden):
        stack += [keras.layers.Dense(units, kernel_regularizer=reg, name=f"head_dense{i}"),
                  keras.layers.BatchNormalization(name=f"head_bn{i}"),
                  keras.layers.ReLU(name=f"head_relu{i}"),
                  keras.layers.Dropout(spec.head_dropout, name=f"head_dropout{i}")]
    if not spec.hidden:
        stack.append(keras.layers.Dropout(spec.head_dropout, name="head_dropout"))
    stack.append(keras.layers.Dense(num_classes, name="logits"))
    return keras.Sequential(stack, name="head")


def split_backbone(features: keras.Model, split: str) -> tuple[keras.Model, keras.Model]:
    """(bottom, top) at layer ``split``: bottom is frozen and cached, top is fine-tuned in phase 2."""
    cut = features.get_layer(split).output
    bottom = keras.Model(features.input, cut, name="bottom")
    top = keras.Model(cut, features.output, name="top")
    for layer in top.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return bottom, top


def classifier(features: keras.Model, head: keras.Sequential) -> keras.Model:
    """The full model: raw RGB (0-255) -> logits."""
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features.output)
    return keras.Model(features.input, head(pooled), name="flowercam")


def embedding_model(model: keras.Model) -> keras.Model:
    """Raw RGB -> the pooled backbone features (the ``pool`` layer) of a trained classifier."""
    return keras.Model(model.inputs, model.get_layer("pool").output)
