"""The backbone registry: one factory, one module per family, per-backbone defaults in one record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and where to cut it.

    ``build(size, weights)`` returns a Keras model from raw RGB (0-255 floats) to the
    feature map at the cut; normalization is a layer inside it. ``split`` is the layer
    whose output is cached: everything after it is the part unfrozen in phase 2.
    ``gradcam`` is the last convolutional feature map (Grad-CAM's layer).
    """

    name: str
    family: str
    build: Callable
    split: str
    gradcam: str
    hidden: tuple[int, ...] = ()  # hidden Dense units of the head (each Dense → BN → ReLU → Dropout)
    head_l2: float = 0.0
    head_dropout: float = 0.3


def _lite(variant: str) -> Callable:
    def build(size: int, weights: str | None):
        from .efficientnet_lite import build_lite_features

        return build_lite_features(variant, size, weights)

    return build


def _paper(family: str) -> Callable:
    def build(size: int, weights: str | None):
        from .paper import build_paper_features

        return build_paper_features(family, size, weights)

    return build


BACKBONES: dict[str, BackboneSpec] = {
    "lite0": BackboneSpec("lite0", "efficientnet-lite", _lite("lite0"), "block10_add", "top_relu6"),
    "lite1": BackboneSpec("lite1", "efficientnet-lite", _lite("lite1"), "block14_add", "top_relu6"),
    "lite2": BackboneSpec("lite2", "efficientnet-lite", _lite("lite2"), "block14_add", "top_relu6"),
    "vgg16": BackboneSpec("vgg16", "paper", _paper("vgg16"), "block4_pool", "block5_conv2",
                          hidden=(1024,), head_dropout=0.5),
    "resnet50": BackboneSpec("resnet50", "paper", _paper("resnet50"), "conv4_block5_out",
                             "conv4_block6_out", hidden=(512, 256), head_l2=0.005, head_dropout=0.5),
    "inceptionv3": BackboneSpec("inceptionv3", "paper", _paper("inceptionv3"), "mixed7", "mixed8",
                                hidden=(512,), head_dropout=0.5),
}


def get_backbone(name: str) -> BackboneSpec:
    """The registry record for ``name``; unknown names list the valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}") from None
