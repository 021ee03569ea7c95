"""Int8 accuracy vs the number of calibration images (balanced, seeded), measured with the interpreter.

Usage: python bench/calibration_size.py RUN [--data DIR]  ->  bench/results/calibration_size.{json,md}
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def main(run: Path, data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         sizes: str = "50,100,300,1000", out: Path = Path("bench/results")) -> None:
    from flowercam.model.preprocess import Preprocess

    from build_models.data import load_flowers102
    from build_models.images import labels_of, load_arrays
    from build_models.run import load_run
    from build_models.samples import training_samples
    from build_models.tflite import convert, tflite_scores
    from calibration.representative import representative_dataset, representative_paths

    dataset = load_flowers102(data)
    config, model = load_run(run)
    pre = Preprocess(config.size, config.crop_fraction)
    train, _ = training_samples(config, dataset)
    val = list(dataset.val)
    x_val, y_val = load_arrays(val, pre, "loading val"), labels_of(val)
    rows = []
    for n in (int(s) for s in sizes.split(",")):
        files = representative_paths([s.path for s in train], labels_of(train), n, seed=0)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "int8.tflite"
            path.write_bytes(convert(model, config.size, "int8", representative_dataset(files, pre)))
            convert_s = time.perf_counter() - t0
            accuracy = float((tflite_scores(path, x_val).argmax(1) == y_val).mean())
        rows.append({"calibration_images": len(files), "val_top1_int8": accuracy, "convert_s": round(convert_s, 1)})
        print(rows[-1], flush=True)
    data = {"run": str(run), "preset": config.preset, "protocol": config.protocol, "machine": machine_info(),
            "float_val_top1": json.loads((run / "metrics.json").read_text())["val"]["accuracy"], "rows": rows}
    write_results(out, "calibration_size", data, render, show=False)


def render(data: dict) -> str:
    """calibration_size.md from calibration_size.json."""
    run = Path(data["run"]).name
    lines = [f"# Int8 accuracy vs calibration images ({data.get('preset', run)}, "
             f"{data.get('protocol', 'paper')} protocol, val split)\n", header_markdown(data["machine"])]
    if "float_val_top1" in data:
        lines.append(f"\nFloat (Keras) val top-1 of the same run: {data['float_val_top1']:.2%}.\n")
    lines += ["| calibration images | int8 val top-1 | conversion time (s) |", "|---|---|---|"]
    lines += [f"| {r['calibration_images']} | {r['val_top1_int8']:.2%} | {r['convert_s']} |" for r in data["rows"]]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    typer.run(main)
