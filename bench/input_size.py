"""FixRes (Touvron et al. 2019): the same trained weights run at another input size. Training crops (random-resized,
down to a small share of the photo) show flowers larger than a whole centre crop does at test time, so a larger
test size may suit everyday photos. Writes run folders that ``bench/field_experiments.py`` measures like any other.

Usage: python bench/input_size.py runs/lite0-field-trainval --size 320 --size 352
  ->  runs/lite0-field-trainval-size320/ ... (config.json with the new size + model.keras with the same weights)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer


def main(run: Annotated[Path, typer.Argument(help="A trained run folder.")],
         size: Annotated[list[int], typer.Option(help="Input size in pixels.")]) -> None:
    from build_models.backbones import get_backbone
    from build_models.heads import build_head, classifier
    from build_models.run import MODEL_FILE, load_run

    config, trained = load_run(run)
    spec = get_backbone(config.backbone)
    for pixels in size:
        features = spec.build(pixels, None)
        model = classifier(features, build_head(spec, trained.output_shape[-1], features.output_shape[-1]))
        model.set_weights(trained.get_weights())
        out = run.with_name(f"{run.name}-size{pixels}")
        out.mkdir(exist_ok=True)
        shutil.copy(run / "classes.json", out / "classes.json")
        (out / "config.json").write_text(json.dumps({**json.loads((run / "config.json").read_text()),
                                                     "size": pixels}, indent=2) + "\n")
        model.save(out / MODEL_FILE)
        print(f"{out}: the weights of {run.name} at {pixels} px")


if __name__ == "__main__":
    typer.run(main)
