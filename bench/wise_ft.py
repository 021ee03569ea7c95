"""WiSE-FT (Wortsman et al. 2022): weight-space interpolation between the model before fine-tuning (ImageNet
backbone + the phase-1 head, a linear probe with its hidden layer) and after it (the trained run), as run folders
that ``bench/field_experiments.py`` measures like any other run.

Usage: python bench/wise_ft.py runs/lite0-field-trainval --alpha 0.5 --alpha 0.75
  ->  runs/lite0-field-trainval-wise0.5/ ... (config.json + model.keras: weights = (1 - a) * before + a * after)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer


def main(run: Annotated[Path, typer.Argument(help="A trained run folder (with phase1_head.weights.h5).")],
         alpha: Annotated[list[float], typer.Option(help="Share of the fine-tuned weights (0: before, 1: after).")]
         ) -> None:
    from build_models.backbones import get_backbone
    from build_models.heads import build_head, classifier
    from build_models.run import MODEL_FILE, load_run

    config, after = load_run(run)
    spec = get_backbone(config.backbone)
    features = spec.build(config.size, config.weights)
    head = build_head(spec, after.output_shape[-1], features.output_shape[-1])
    head.load_weights(run / "phase1_head.weights.h5")
    before = classifier(features, head)
    pairs = list(zip(before.weights, after.weights, strict=True))
    for b, a in pairs:
        if b.shape != a.shape or b.path.split("/")[-1] != a.path.split("/")[-1]:
            raise SystemExit(f"the models differ at {b.path} vs {a.path}")
    start = [w.numpy() for w in before.weights]
    end = [w.numpy() for w in after.weights]
    for share in alpha:
        out = run.with_name(f"{run.name}-wise{share:g}")
        out.mkdir(exist_ok=True)
        shutil.copy(run / "config.json", out / "config.json")
        shutil.copy(run / "classes.json", out / "classes.json")
        for (target, _), w0, w1 in zip(pairs, start, end, strict=True):
            target.assign((1 - share) * w0 + share * w1)
        before.save(out / MODEL_FILE)
        changed = sum(float(abs(w1 - w0).sum() > 0) for w0, w1 in zip(start, end, strict=True))
        print(f"{out}: {share:g} of the fine-tuned weights ({changed:.0f} of {len(start)} tensors differ)")


if __name__ == "__main__":
    typer.run(main)
