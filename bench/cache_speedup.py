"""Cached vs uncached training on the same small run: the same model quality, and the speed-up.

Both paths see the same number of augmented samples in phase 2: the cached path `views` views
for `epochs` epochs, the uncached path fresh augmentations for views × epochs epochs.
Usage: python bench/cache_speedup.py [--per-class 3]  ->  bench/results/cache_speedup.{json,md}
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def main(per_class: int = 3, views: int = 3, epochs: int = 3, data: Annotated[Path | None, typer.Option(
        envvar="FLOWERCAM_DATA")] = None, out: Path = Path("bench/results")) -> None:
    from build_models.data import load_flowers102
    from build_models.presets import get_preset
    from build_models.run import start_run

    dataset = load_flowers102(data)
    rows = []
    for cache in (True, False):
        config = get_preset("lite0", max_per_class=per_class, views=views if cache else 1, cache=cache,
                            phase2_epochs=epochs if cache else views * epochs)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            metrics = start_run(config, dataset, Path(tmp) / "run")
            rows.append({"cache": cache, "train_s": metrics["train_wall_s"], "timings": metrics.get("timings"),
                         "total_s": round(time.perf_counter() - t0, 1), "val_top1": metrics["val"]["accuracy"],
                         "test_top1": metrics["test"]["accuracy"]})
        print(rows[-1], flush=True)
    data = {"machine": machine_info(), "per_class": per_class, "rows": rows,
            "speedup": rows[1]["train_s"] / rows[0]["train_s"]}
    write_results(out, "cache_speedup", data, render, show=False)


def render(data: dict) -> str:
    """cache_speedup.md from cache_speedup.json."""
    lines = [f"# Feature cache: speed-up and quality (lite0, {data.get('per_class', 3)} train images per class)\n",
             header_markdown(data["machine"]),
             f"\nTraining time speed-up of the cached path: **{data['speedup']:.1f}×**.\n",
             "| path | training s | val top-1 | test top-1 |", "|---|---|---|---|"]
    lines += [f"| {'cached' if r['cache'] else 'uncached'} | {r['train_s']} | {r['val_top1']:.2%} | "
              f"{r['test_top1']:.2%} |" for r in data["rows"]]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    typer.run(main)
