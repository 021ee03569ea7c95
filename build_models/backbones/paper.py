"""The seed study's backbones through ``keras.applications``, cut where the paper cut them.

ImageNet weights come from Keras's download when online, or a local ``.h5``/``.weights.h5``
file; ``weights=None`` builds random weights (tests, latency benchmarks).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers, ops

# family -> (application, cut layer, preprocess mode of its preprocess_input)
_PAPER = {
    "vgg16": ("VGG16", "block5_conv2", "caffe"),
    "resnet50": ("ResNet50", "conv4_block6_out", "caffe"),
    "inceptionv3": ("InceptionV3", "mixed8", "tf"),
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="flowercam")
class ReverseChannels(layers.Layer):
    """RGB -> BGR, as the caffe-style ``preprocess_input`` does."""

    def call(self, inputs):
        return ops.flip(inputs, axis=-1)


def _preprocess(x, mode: str):
    """The backbone's own ``preprocess_input``, as layers (so the exported model takes raw RGB)."""
    if mode == "tf":  # scale to -1..1
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(x)
    x = ReverseChannels(name="rgb_to_bgr")(x)  # caffe: BGR minus the ImageNet mean, no scaling
    return layers.Normalization(mean=_CAFFE_MEAN_BGR, variance=(1.0, 1.0, 1.0), name="normalize")(x)


def build_paper_features(family: str, size: int, weights: str | None = "imagenet") -> keras.Model:
    """The paper's backbone from raw RGB (0-255) to the feature map at its cut layer."""
    app_name, cut, mode = _PAPER[family]
    inputs = keras.Input((size, size, 3), name="image")
    local = weights not in (None, "imagenet")
    base = getattr(keras.applications, app_name)(
        include_top=False, weights=None if local else weights, input_tensor=_preprocess(inputs, mode))
    if local:
        base.load_weights(str(Path(weights)))
    return keras.Model(inputs, base.get_layer(cut).output, name=f"{family}_cut")
