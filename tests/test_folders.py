"""Your own flowers: class folders (flat or with train/val/test), the data report, the seeded stratified split,
and the whole chain from folders to `flowercam classify` with the new labels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from build_models.data import DatasetError
from build_models.datasets import load_dataset
from build_models.folders import SPLIT_FILE, Split, data_report
from build_models.synthetic import write_class_folders

CLASSES = ("common_dandelion", "Bellis perennis", "Rosa canina ‘Kew’")  # underscores, spaces, unicode


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = write_class_folders(tmp_path_factory.mktemp("flat") / "garden", CLASSES, per_class=12)
    (root / "Bellis perennis" / "broken.jpg").write_bytes(b"not a photo at all")
    shutil.copy(root / "common_dandelion" / "com_001.jpg", root / "Rosa canina ‘Kew’" / "copy_of_dandelion.jpg")
    return root


def test_flat_class_folders_split_stratified_and_reproducibly(flat):
    ds = load_dataset(flat)
    assert ds.class_names == ("Bellis perennis", "common dandelion", "Rosa canina ‘Kew’")
    for name in ("train", "val", "test"):
        per_class = [sum(s.label == c for s in ds.split(name)) for c in range(3)]
        assert min(per_class) >= 1, (name, per_class)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 3 * 12 + 1  # the broken file left out
    assert ds.split_record == load_dataset(flat).split_record  # same seed, same split
    other = load_dataset(flat, seed=1)
    assert {s.path for s in other.test} != {s.path for s in ds.test}
    assert {s.path.suffix for s in ds.train} == {".jpg", ".png"}
    smaller = load_dataset(flat, ratios=(0.5, 0.25, 0.25))
    assert len(smaller.train) < len(ds.train)
    with pytest.raises(DatasetError, match="summing to 1"):
        load_dataset(flat, ratios=(0.5, 0.5, 0.5))


def test_data_report_names_every_problem(flat):
    ds = load_dataset(flat)
    lines, problems = data_report(ds, Split.from_json(ds.split_record))
    assert lines[0].startswith("layout: class folders; split: stratified per class, seed 0: train 70%")
    assert any(line.startswith("Rosa canina ‘Kew’") for line in lines)
    assert "Bellis perennis/broken.jpg: not a photo Pillow can open (left out)" in problems
    split_of = {s.path.name: name for name in ("train", "val", "test") for s in ds.split(name)}
    apart = split_of["copy_of_dandelion.jpg"] != split_of["com_001.jpg"]  # the seeded split decides
    duplicates = [p for p in problems if p.startswith("duplicate photo across splits")]
    assert len(duplicates) == int(apart)


def test_split_folders_and_a_missing_val(tmp_path):
    root = write_class_folders(tmp_path / "sorted", CLASSES[:2], split_folders=(8, 0, 3))
    shutil.rmtree(root / "val", ignore_errors=True)
    shutil.copy(root / "train" / "common_dandelion" / "com_000.png", root / "test" / "common_dandelion" / "dup.png")
    ds = load_dataset(root)
    assert len(ds.test) == 2 * 3 + 1 and len(ds.val) == 2 and len(ds.train) == 2 * 8 - 2
    _, problems = data_report(ds, Split.from_json(ds.split_record))
    assert problems == ["duplicate photo across splits: test/common_dandelion/dup.png (test) = "
                        "train/common_dandelion/com_000.png (train)"]
    from flowercam.cli.evaluate import class_folders

    assert [p.name for p in class_folders(root)] == ["Bellis perennis", "common_dandelion"]  # flowercam evaluate: test/
    (tmp_path / "one").mkdir()
    write_class_folders(tmp_path / "one", ("only",), per_class=4)
    with pytest.raises(DatasetError, match="a classifier needs 2 or more"):
        load_dataset(tmp_path / "one")


def test_data_command_reports_and_fails_on_problems(flat):
    done = subprocess.run([sys.executable, "-m", "build_models", "data", "--data", str(flat)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "layout: class folders" in done.stdout and "classes: 3" in done.stdout
    assert "problem: Bellis perennis/broken.jpg: not a photo Pillow can open (left out)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # the slowest (~40-60 s on 2 cores): CI runs them with -m slow
def test_train_export_classify_from_class_folders(tmp_path):
    """The whole chain on class folders: the run records its split, later commands use it, the sidecar carries
    the folder names as labels, and the device classifies with them."""
    data = write_class_folders(tmp_path / "garden", CLASSES, per_class=12)
    write_class_folders(data, ("rare",), per_class=4, seed=2)  # 2 training photos: trains, reported as weak
    run = tmp_path / "run"
    build = [sys.executable, "-m", "build_models"]
    done = subprocess.run([*build, "train", "tiny", "--data", str(data), "--out", str(run), "--phase1-epochs", "6"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    recorded = json.loads((run / SPLIT_FILE).read_text())
    assert recorded["how"].startswith("stratified") and len(recorded["test"]) >= 3
    write_class_folders(data, ("newcomer",), per_class=5, seed=3)  # photos added later do not move the split
    env = {k: v for k, v in os.environ.items() if k != "FLOWERCAM_DATA"}
    done = subprocess.run([*build, "export", str(run), "--calibration-images", "6"],  # the run knows its data
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    model = run / "export" / "tiny_int8.tflite"
    assert "warning: val has" in done.stderr and "needs 5 per class" in done.stderr  # 2-3 val photos a class
    assert "temperature 1.000 (not fitted (val too small))" in done.stdout
    readiness = next(line for line in done.stdout.splitlines() if line.startswith("Edge TPU (int8): "))
    assert readiness.endswith("one subgraph") or "CPU fallback)" in readiness  # whole, not cut mid-word
    assert f"next: flowercam classify --model {model}" in done.stdout and "labels.txt" in done.stdout
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert sidecar["similarity"] is not None and sidecar["embedding"] is not None  # learnable by default
    assert sidecar["labels"] == ["Bellis perennis", "common dandelion", "rare", "Rosa canina ‘Kew’"]
    assert (run / "export" / "labels.txt").read_text().splitlines() == sidecar["labels"]
    assert len(sidecar["trained_on"]) == len(recorded["train"]) + len(recorded["val"])
    done = subprocess.run([sys.executable, "-m", "flowercam", "evaluate", "--json", "--model", str(model), str(data)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the flat folder: only what the model never saw is scored
    assert report["left_out_training_photos"] == len(sidecar["trained_on"])
    assert report["overall"]["all"]["photos"] == len(recorded["test"]) + 5  # the test split and the newcomers
    photo = data / "common_dandelion" / "com_004.jpg"
    done = subprocess.run([sys.executable, "-m", "flowercam", "classify", "--json", "--model", str(model),
                           str(photo)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["top_k"][0]["label"] == "common dandelion"
    done = subprocess.run([*build, "report", str(run), "--data", str(data), "--gallery", "2"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "**Weak classes**, trained on fewer than 5 photos" in (run / "report" / "report.md").read_text()
    assert "rare (2)" in (run / "report" / "report.md").read_text()
