"""Latency on this machine, one run, interleaved: lite0/1/2 and the seed's InceptionV3-cut model,
float32 / float16 / int8, 1 and 2 threads. Weights do not change latency: lite models use their
ImageNet weights, InceptionV3 random ones. Also MACs and parameters, for comparing with published
Raspberry Pi / Coral figures.

Usage: python bench/latency.py [--runs 50]  ->  bench/results/latency.{json,md}
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

# name -> (backbone, input size as shipped/trained)
MODELS = {"lite0": ("lite0", 288), "lite1": ("lite1", 272), "lite2": ("lite2", 288),
          "seed-inceptionv3": ("inceptionv3", 299)}


def build(backbone: str, size: int):
    import keras

    from build_models.backbones import get_backbone
    from build_models.heads import build_head, classifier

    spec = get_backbone(backbone)
    features = spec.build(size, "imagenet" if spec.family == "efficientnet-lite" else None)
    return classifier(features, build_head(spec, 102, features.output_shape[-1])), keras


def macs(model) -> int:
    """Multiply-accumulates of one inference (convolutions and dense layers)."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            h, w, c = layer.output.shape[1:]
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, keras.layers.Conv2D):
            h, w, c = layer.output.shape[1:]
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.units * layer.input.shape[-1]
    return int(total)


def main(runs: int = 50, warmup: int = 5, out: Path = Path("bench/results")) -> None:
    from flowercam.model.benchmark import benchmark

    from build_models.tflite import convert

    rng = np.random.default_rng(0)
    info, rows = machine_info(), []
    with tempfile.TemporaryDirectory() as tmp:
        paths, sizes = [], {}
        for name, (backbone, size) in MODELS.items():
            model, _ = build(backbone, size)
            sizes[name] = {"params": int(model.count_params()), "macs": macs(model), "input": size}
            def representative(size=size):
                for _ in range(20):
                    yield [rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)]
            for precision in ("float32", "float16", "int8"):
                path = Path(tmp) / f"{name}_{precision}.tflite"
                path.write_bytes(convert(model, size, precision, representative))
                paths.append(path)
                print(f"converted {path.name}", flush=True)
        for threads in (1, 2):
            for report in benchmark(paths, runs, warmup, threads):
                name, precision = Path(report["model"]).stem.rsplit("_", 1)
                rows.append({"model": name, "precision": precision, "threads": threads, **sizes[name],
                             "size_mb": report["model_size_mb"], "mean_ms": report["latency_ms"]["mean"],
                             "p50_ms": report["latency_ms"]["p50"], "p95_ms": report["latency_ms"]["p95"],
                             "init_ms": report["init_ms"], "rss_init_mb": report["rss_delta_mb"]["init"]})
    data = {"machine": info, "runs": runs, "warmup": warmup, "rows": rows}
    write_results(out, "latency", data, render)


def render(data: dict) -> str:
    """latency.md from latency.json."""
    rows = data["rows"]
    seed = {(r["threads"]): r["mean_ms"] for r in rows if r["model"] == "seed-inceptionv3" and r["precision"] == "int8"}
    lines = ["# Latency on this machine (one process, order-interleaved runs)\n", header_markdown(data["machine"]),
             f"\n{data['runs']} timed runs after {data.get('warmup', 5)} warm-up runs per model; random inputs of the "
             "model's dtype.\n",
             "| model | input | params | MMACs | precision | size MB | threads | mean ms | p50 | p95 | "
             "× faster than seed int8 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {r['params'] / 1e6:.2f} M | {r['macs'] / 1e6:.0f} | "
                     f"{r['precision']} | {r['size_mb']:.2f} | {r['threads']} | {r['mean_ms']:.2f} | "
                     f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {seed[r['threads']] / r['mean_ms']:.2f} |")
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    typer.run(main)
