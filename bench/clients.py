"""The shipped model in standard TFLite clients, and why its class output is calibrated probabilities.

1. MediaPipe Tasks' ``ImageClassifier`` (which reads the embedded TFLite Metadata) next to ``flowercam classify`` on
   the bundled sample photo: top-3 names and scores.
2. The int8 model's size without and with the metadata (from the export report).
3. The choice of output: logits (the device applies softmax with the temperature; the model shipped before, from
   git) against probabilities (softmax(logits / T) inside the graph, uint8 steps of 1/256), both int8 with the same
   weights, thresholds and similarity output, run as the device app runs them: Oxford test top-1, ECE and share
   uncertain (centre crop); field_dev known top-1, confident-wrong and tulips uncertain; Edge TPU readiness; size.

Needs ``mediapipe`` (pip install --no-deps mediapipe, see .ci/run), the dataset and field_dev.
Usage: python bench/clients.py [--logits-rev 12aeb4b] [--export-report RUN/export/export_report.json]
  ->  bench/results/clients.{json,md}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from field import bundled_model_at, evaluate, figures, test_split  # noqa: E402
from machine import header_markdown, machine_info, write_results  # noqa: E402

SAMPLE = Path("device/flowercam/samples/image_01315.jpg")


def mediapipe_top3(model: Path, photo: Path) -> list[dict]:
    """MediaPipe Tasks' ImageClassifier on one photo: the class head's top 3 (name, score)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)), max_results=3)
    with vision.ImageClassifier.create_from_options(options) as client:
        heads = client.classify(mp.Image.create_from_file(str(photo))).classifications
    head = max(heads, key=lambda h: len(h.categories))
    return [{"name": c.category_name, "score": round(float(c.score), 4), "index": c.index} for c in head.categories]


def flowercam_top3(model: Path, photo: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "flowercam", "classify", "--json", "-k", "3", "--model", str(model),
                           str(photo)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def measured(model: Path, data: Path | None, field: Path) -> dict:
    from flowercam.model.edgetpu import check_readiness

    test = test_split(model, data, "center")
    in_field = evaluate(model, field, "center")
    return {**figures(in_field, test), "field_known_top3": in_field["overall"]["known"]["top3"],
            "test_ece": test["ece"],
            "inference_ms": test["mean_latency_ms"]["inference"], "size_mb": round(model.stat().st_size / 1e6, 3),
            "edgetpu": check_readiness(model).summary()}


def main(logits_rev: str = "12aeb4b",
         export_report: Path = Path("runs/lite0-field-trainval/export/export_report.json"),
         field: Annotated[Path, typer.Option()] = Path("../shared/field_dev"),
         data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         out: Path = Path("bench/results")) -> None:
    from flowercam.model.sidecar import BUNDLED_MODEL

    report = json.loads(export_report.read_text())
    data_out = {"machine": machine_info(), "sample": SAMPLE.name, "logits_rev": logits_rev,
                "mediapipe": mediapipe_top3(BUNDLED_MODEL, SAMPLE), "flowercam": flowercam_top3(BUNDLED_MODEL, SAMPLE),
                "size_mb": {"without_metadata": report["size_mb_without_metadata"]["int8"],
                            "with_metadata": report["models"]["int8"]["size_mb"],
                            "shipped_file": round(BUNDLED_MODEL.stat().st_size / 1e6, 3)}}
    with tempfile.TemporaryDirectory() as tmp:
        logits = bundled_model_at(logits_rev, Path(tmp), "logits")
        data_out["choice"] = {"logits": measured(logits, data, field),
                              "probabilities": measured(BUNDLED_MODEL, data, field)}
    write_results(out, "clients", data_out, render)


def render(data: dict) -> str:
    """clients.md from clients.json."""
    ours = data["flowercam"]
    lines = ["# The shipped model in standard TFLite clients\n", header_markdown(data["machine"]),
             "The shipped int8 model carries TFLite Metadata (name, version, license, the RGB uint8 input with no "
             "normalization, `labels.txt` attached to the class output, what each output means), written by "
             "`build-models export` with tflite-support's metadata writers, so a standard client needs no extra "
             "files.\n",
             f"## MediaPipe Tasks `ImageClassifier` and `flowercam classify` on `{data['sample']}`\n",
             "| rank | MediaPipe: name | MediaPipe: score | flowercam: label | flowercam: score |",
             "|---|---|---|---|---|"]
    for rank, (mp_cat, fc_cat) in enumerate(zip(data["mediapipe"], ours["top_k"]), start=1):
        lines.append(f"| {rank} | {mp_cat['name']} | {mp_cat['score']:.4f} | {fc_cat['label']} | "
                     f"{fc_cat['score']:.4f} |")
    size = data["size_mb"]
    answer = f"{ours['label']}{' (uncertain)' if ours['uncertain'] else ''}"
    lines += [f"\nflowercam answers **{answer}**. MediaPipe's scores are the model's own uint8 output (steps of "
              "1/256) for the whole photo resized to the input (MediaPipe does not crop); flowercam's are that output "
              "renormalised to sum to 1, for the centred square: the same model, slightly different pixels.\n",
              f"Model size (int8): {size['without_metadata']} MB without metadata, {size['with_metadata']} MB with "
              "it (metadata and `labels.txt`).\n",
              "## Logits or probabilities out of the model\n",
              f"*logits*: the model shipped before (`{data['logits_rev']}`), the device applies softmax(logits / T). "
              "*probabilities*: the same weights with softmax(logits / T) inside the graph, so that any client reads "
              "calibrated probabilities. Both int8, same thresholds, centre crop, run by `flowercam` as a user does; "
              "ECE over the 6,149 Oxford test photos (top-1 confidence).\n",
              "| output | test top-1 | test ECE | test uncertain | field known top-1 | field known top-3 | "
              "field confident-wrong | tulips uncertain | inference ms | MB | Edge TPU |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in data["choice"].items():
        lines.append(f"| {name} | {m['test_top1']:.2%} | {m['test_ece']:.4f} | {m['test_uncertain']:.1%} | "
                     f"{m['field_known_top1']:.1%} | {m['field_known_top3']:.1%} | {m['field_confident_wrong']:.1%} | "
                     f"{m['tulip_uncertain']:.0%} | "
                     f"{m['inference_ms']:.2f} | {m['size_mb']} | {m['edgetpu']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
