"""Training configurations: the seed's three presets and our edge presets, one frozen record each."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from flowercam.errors import FlowercamError


class PresetError(FlowercamError, ValueError):
    """A preset name, setting or preset file that does not hold."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; written to the run folder as ``config.json``."""

    preset: str
    backbone: str
    size: int
    crop_fraction: float = 1.0
    weights: str | None = "imagenet"
    protocol: str = "paper"  # "paper": train on train, select on val; "trainval": train on both
    views: int = 6  # augmented views per training image in the feature cache (view 0 is clean)
    cache: bool = True
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd (momentum 0.9) or adam
    # phase 1: frozen backbone, new head, cyclical LR
    phase1_epochs: int = 30
    clr_base: float = 0.005
    clr_max: float = 0.06
    clr_policy: str = "triangular"
    clr_step_factor: int = 4  # half-cycle = factor × iterations per epoch
    # phase 2: unfreeze the top of the backbone (never BatchNorm) at a constant low LR
    phase2_epochs: int = 12
    phase2_lr: float = 1e-3
    label_smoothing: float = 0.1
    patience: int = 5
    rotation_deg: float = 20.0
    zoom: float = 0.2
    brightness: tuple[float, float] = (0.7, 1.3)
    saturation: float = 0.0
    augment: str = "classic"  # "classic": the seed's set; "field": also crops, zoom-outs and faults (field_views)
    min_area: float = 0.15  # field views: the smallest random crop, as a fraction of the photo
    p_mosaic: float = 0.0  # field views: share of same-class mosaics (a field or a bouquet of one species)
    seed: int = 0
    max_per_class: int | None = None  # subsample (tests and quick runs)

    def __post_init__(self) -> None:
        if self.protocol not in ("paper", "trainval"):
            raise PresetError(f"protocol={self.protocol!r}, expected 'paper' or 'trainval'")
        if self.optimizer not in ("sgd", "adam"):
            raise PresetError(f"optimizer={self.optimizer!r}, expected 'sgd' or 'adam'")
        if self.augment not in ("classic", "field"):
            raise PresetError(f"augment={self.augment!r}, expected 'classic' or 'field'")
        if self.views < 1:
            raise PresetError(f"views={self.views}, expected >= 1")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise PresetError(f"{path.name}: unknown keys {sorted(unknown)}")
        if data.get("brightness") is not None:
            data["brightness"] = tuple(data["brightness"])
        return cls(**data)


PRESETS: dict[str, TrainConfig] = {
    # The seed study's settings (its step sizes 16/4/2 and policies triangular2/triangular/triangular).
    "paper-vgg16": TrainConfig("paper-vgg16", "vgg16", 224, 1.0, clr_base=1e-4, clr_max=1e-3,
                               clr_policy="triangular2", clr_step_factor=16, phase1_epochs=40,
                               phase2_epochs=20, phase2_lr=1e-5, label_smoothing=0.0, views=4),
    "paper-resnet50": TrainConfig("paper-resnet50", "resnet50", 224, 1.0, clr_base=0.08, clr_max=0.4,
                                  clr_policy="triangular", clr_step_factor=4, phase1_epochs=40,
                                  phase2_epochs=20, phase2_lr=1e-5, label_smoothing=0.0, views=4),
    "paper-inceptionv3": TrainConfig("paper-inceptionv3", "inceptionv3", 299, 1.0, clr_base=0.005,
                                     clr_max=0.06, clr_policy="triangular", clr_step_factor=2,
                                     phase1_epochs=40, phase2_epochs=20, phase2_lr=1e-5,
                                     label_smoothing=0.0, views=4),
    # Ours (one recipe, chosen on val for lite0): full short side, more resolution, label smoothing,
    # colour jitter, Adam fine-tuning.
    **{name: TrainConfig(name, name, size, 1.0, views=8, optimizer="adam", clr_base=1e-4, clr_max=3e-3,
                         clr_policy="triangular2", phase1_epochs=15, phase2_epochs=8, phase2_lr=2e-4,
                         saturation=0.4)
       for name, size in (("lite0", 288), ("lite1", 272), ("lite2", 288))},
}
# For the field: the same recipe on views that look like everyday photos (random-resized crops down to 15 %
# of the photo, zoom-outs, whole-photo framing, blur, noise, JPEG, colour casts); the framing replaces zoom.
PRESETS["lite0-field"] = replace(PRESETS["lite0"], preset="lite0-field", augment="field", zoom=0.0)
# ... plus mosaics of 2×2 or 3×3 photos of one class (fields, beds, bouquets) and crops down to 8 % of the photo.
PRESETS["lite0-field2"] = replace(PRESETS["lite0-field"], preset="lite0-field2", min_area=0.08, p_mosaic=0.2,
                                  views=6)
# A minute-long run of the whole chain (a check of the set-up, and the tests'): 4 images per class, 64 px.
PRESETS["tiny"] = replace(PRESETS["lite0"], preset="tiny", size=64, views=2, batch_size=16, phase1_epochs=3,
                          phase2_epochs=1, max_per_class=4)


def get_preset(name: str, **overrides) -> TrainConfig:
    """A preset by name with fields overridden; unknown names list the valid ones."""
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def describe(config: TrainConfig) -> str:
    """One line for ``build-models presets`` and the help: what the preset trains."""
    return (f"{config.backbone} at {config.size} px, weights {config.weights or 'none'}, {config.views} views, "
            f"phase 1 up to {config.phase1_epochs} epochs ({config.clr_policy} CLR {config.clr_base:g}-"
            f"{config.clr_max:g}), phase 2 up to {config.phase2_epochs} at {config.phase2_lr:g}, "
            f"{config.augment} augmentation")
