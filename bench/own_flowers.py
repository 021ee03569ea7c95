"""Your own flowers, end to end: 20 Oxford classes re-sorted into class folders, trained through the class-folder
path, against the 102-class model restricted to the same classes and photos.

1. Writes ``DATA/{train,val,test}/<class_name>/image_NNNNN.jpg`` for the first 20 classes of ``classes.txt``
   (all their photos, the official split as split folders so that the 102-class model never saw the test
   photos; no ``.mat`` files).
2. ``build-models data`` (the data report), ``build-models train lite0 --protocol trainval`` under
   ``/usr/bin/time -v`` (wall time, peak RSS) and ``build-models export`` (int8 val/test top-1).
3. The 102-class model with the same weights as the shipped one (its logits output, ``--reference-rev``): top-1 on
   the same test photos, over all 102 classes and restricted to the 20.

Usage: python bench/own_flowers.py [--data ../shared/flowers102] [--work runs/own-flowers20]
  ->  bench/results/own_flowers.{json,md}
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from field import bundled_model_at  # noqa: E402
from machine import header_markdown, machine_info, write_results  # noqa: E402

CLASSES = 20


def write_folders(data: Path | None, target: Path) -> dict[str, list[int]]:
    """The first CLASSES classes as split class folders; returns the image ids per split."""
    from build_models.data import load_flowers102

    ds = load_flowers102(data)
    ids: dict[str, list[int]] = {}
    for split in ("train", "val", "test"):
        for sample in ds.split(split):
            if sample.label < CLASSES:
                folder = target / split / ds.class_names[sample.label].replace(" ", "_")
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(sample.path, folder / sample.path.name)
                ids.setdefault(split, []).append(sample.image_id)
    return ids


def timed(command: list[str], log: Path) -> dict:
    """Run under ``/usr/bin/time -v``; wall seconds and peak RSS (GB)."""
    with log.open("w") as out:
        subprocess.run(["/usr/bin/time", "-v", *command], stdout=out, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", text)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return {"wall_s": round(hours * 3600 + minutes * 60 + seconds, 1), "peak_rss_gb": round(rss / 1e6, 2)}


def reference(test: Path, rev: str) -> dict:
    """The 102-class model of ``rev`` (logits output) on the class folders' test photos."""
    from flowercam.model.labels import folder_class

    with tempfile.TemporaryDirectory() as tmp:
        model = bundled_model_at(rev, Path(tmp), "reference")
        labels = tuple(json.loads(model.with_suffix(".json").read_text())["labels"])
        photos = sorted(test.glob("*/*.jpg"))
        done = subprocess.run([sys.executable, "-m", "flowercam", "classify", "--json", "-k", "102", "--model",
                               str(model), *map(str, photos)], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    truth = [folder_class(Path(r["path"]).parent.name, labels) for r in rows]
    allowed = set(truth)
    restricted = [next(c["index"] for c in r["top_k"] if c["index"] in allowed) for r in rows]
    n = len(rows)
    return {"photos": n, "top1_102": sum(r["index"] == t for r, t in zip(rows, truth)) / n,
            "top1_restricted": sum(p == t for p, t in zip(restricted, truth)) / n, "rev": rev}


def main(data: Annotated[Path | None, typer.Option(envvar="FLOWERCAM_DATA")] = None,
         work: Path = Path("runs/own-flowers20"), reference_rev: str = "12aeb4b",
         temperature_from: Path = Path("runs/lite0-paper/export/lite0_int8.json"),
         out: Path = Path("bench/results")) -> None:
    folders, run = work / "data", work / "run"
    if not folders.is_dir():
        write_folders(data, folders)
    report = subprocess.run([sys.executable, "-m", "build_models", "data", "--data", str(folders)],
                            capture_output=True, text=True)
    cost = timed(["build-models", "train", "lite0", "--protocol", "trainval", "--data", str(folders), "--out",
                  str(run)], work / "train.log")
    with (work / "export.log").open("w") as log:
        subprocess.run(["build-models", "export", str(run), "--data", str(folders), "--temperature-from",
                        str(temperature_from)], check=True, stdout=log, stderr=subprocess.STDOUT)
    export = json.loads((run / "export" / "export_report.json").read_text())
    result = {"machine": machine_info(), "classes": CLASSES,
              "data_report": report.stdout.strip().splitlines(), "data_exit": report.returncode,
              "data_problems": report.stderr.strip().splitlines(), "train": cost,
              "int8": {k: export["models"]["int8"][k] for k in ("val_top1", "test_top1", "size_mb")},
              "keras": export["keras"], "reference": reference(folders / "test", reference_rev)}
    write_results(out, "own_flowers", result, render)


def render(data: dict) -> str:
    """own_flowers.md from own_flowers.json."""
    ref, int8 = data["reference"], data["int8"]
    lines = ["# Your own flowers: 20 classes from class folders\n", header_markdown(data["machine"]),
             f"The first {data['classes']} classes of the Oxford dataset, all their photos copied into class folders "
             "(`train/`, `val/`, `test/` as the official split, so the 102-class model never saw the test photos; "
             "no `.mat` files), trained through the class-folder path: `build-models train lite0 --protocol "
             "trainval --data FOLDERS`, then `build-models export` (int8). Command: `python bench/own_flowers.py`.\n",
             "## `build-models data` (the data report)\n", "```", *data["data_report"],
             *[f"(stderr) {line}" for line in data["data_problems"]], f"(exit {data['data_exit']})", "```\n",
             "## Result\n", "| model | test photos | test top-1 |", "|---|---|---|",
             f"| 20-class lite0 from class folders, int8 ({int8['size_mb']} MB) | {ref['photos']} | "
             f"**{int8['test_top1']:.2%}** |",
             f"| 102-class model (same weights as shipped, `{ref['rev']}`), restricted to the 20 classes | "
             f"{ref['photos']} | {ref['top1_restricted']:.2%} |",
             f"| 102-class model, all 102 classes | {ref['photos']} | {ref['top1_102']:.2%} |",
             f"\nval top-1 of the int8 model: {int8['val_top1']:.2%} (val is training data under the trainval "
             f"protocol). Training (`build-models train`, whole process): {data['train']['wall_s'] / 60:.1f} min, "
             f"peak RSS {data['train']['peak_rss_gb']} GB.\n"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
