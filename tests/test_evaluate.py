"""``flowercam evaluate`` on class folders made here, and multi-crop classification, with a real model."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
from flowercam.cli.evaluate import FolderTally, overall
from flowercam.model.labels import folder_class
from flowercam.model.preprocess import Preprocess
from PIL import Image

from tests.helpers import run_cli


def _folders(root, dataset_dir):
    """Test photos of the synthetic classes sorted into class folders, plus an 'unknown' folder and a broken file."""
    from build_models.data import load_flowers102

    ds = load_flowers102(dataset_dir)
    for sample in ds.test:
        folder = root / ds.class_names[sample.label].replace(" ", "_").upper()  # case does not matter
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample.path, folder)
    unknown = root / "not_a_flower"
    unknown.mkdir()
    for i in range(4):
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(unknown / f"grey{i}.png")
    (unknown / "broken.jpg").write_bytes(b"not a jpeg")
    return ds


def test_evaluate_reports_each_folder(tiny_model, dataset_dir, tmp_path):
    ds = _folders(tmp_path / "photos", dataset_dir)
    done = run_cli("evaluate", "--model", str(tiny_model), "--json", str(tmp_path / "photos"))
    assert done.returncode == 1, done.stderr  # one unreadable photo: reported, with its row, and exit 1
    assert "broken.jpg: not an image" in done.stderr
    report = json.loads(done.stdout)
    assert [os.path.basename(e["path"]) for e in report["errors"]] == ["broken.jpg"]
    folders = {f["folder"]: f for f in report["folders"]}
    assert folders["not_a_flower"]["class"] is None and folders["not_a_flower"]["failed"] == 1
    assert folders["not_a_flower"]["photos"] == 4 and folders["not_a_flower"]["top1"] is None
    known = [f for f in report["folders"] if f["class"] is not None]
    assert len(known) == ds.num_classes and all(f["photos"] == 6 for f in known)
    assert report["overall"]["known"]["top1"] >= 0.8  # the colour classes are easy for the tiny model
    assert report["overall"]["all"]["photos"] == 6 * ds.num_classes + 4
    human = run_cli("evaluate", "--model", str(tiny_model), str(tmp_path / "photos"))
    assert "not_a_flower (unknown)" in human.stdout and "known classes: 18 photos" in human.stdout


def test_evaluate_needs_class_folders(tiny_model, tmp_path):
    done = run_cli("evaluate", "--model", str(tiny_model), str(tmp_path))
    assert done.returncode == 2 and "no class folders" in done.stderr and "Traceback" not in done.stderr


def test_tallies_count_confident_wrong_and_unknowns():
    from flowercam.model.classifier import Result
    from flowercam.model.scores import Class

    def result(index, uncertain):
        return Result("x", (Class(index, f"c{index}", 0.9), Class(2, "c2", 0.05), Class(3, "c3", 0.05)),
                      uncertain, {}, 0.0)

    rose = FolderTally("rose", 0)
    for r in (result(0, False), result(1, False), result(1, True), result(2, False)):
        rose.add(r)
    assert (rose.top1, rose.top3, rose.uncertain, rose.confident_wrong) == (1, 1, 1, 2)
    tulip = FolderTally("tulip", None)
    for r in (result(0, True), result(1, False)):
        tulip.add(r)
    violet = FolderTally("violet", 5)  # a class an adapter added to a model of 5
    for r in (result(5, False), result(5, False)):
        violet.add(r)
    figures = overall([rose, tulip, violet], base_classes=5)
    assert figures["unknown"]["uncertain"] == 0.5 and figures["all"]["confident_wrong"] == 3 / 8
    assert (figures["known"]["photos"], figures["model_classes"]["photos"], figures["added_classes"]["photos"]) == \
        (6, 4, 2)  # the model's own classes apart: comparable with a run without the adapter
    assert figures["model_classes"]["top1"] == 0.25 and figures["added_classes"]["top1"] == 1.0
    assert folder_class("Common_Dandelion", ("rose", "common dandelion")) == 1
    assert folder_class("tulip", ("rose", "common dandelion")) is None


def test_multi_crops_cover_the_frame():
    image = Image.new("RGB", (300, 200), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 40, 40))  # a red flower in the top-left corner, outside the centred square
    crops = Preprocess(32).crops(image, "multi")
    assert len(crops) == 6 and all(c.shape == (32, 32, 3) and c.dtype == np.uint8 for c in crops)
    assert crops[0][..., 0].max() == 0  # the centred square misses it
    assert crops[2][..., 0].mean() > 5 * crops[1][..., 0].mean()  # the top-left corner square shows it large
    assert crops[1][..., 0].max() > 200  # and the whole frame shows it
    assert len(Preprocess(32).crops(image)) == 1


def test_uncertain_answers_lead_with_uncertain(tiny_model, dataset_dir):
    path = str(dataset_dir / "jpg" / "image_00001.jpg")
    done = run_cli("classify", "--model", str(tiny_model), "--uncertain-below", "1.0", path)
    assert done.returncode == 0 and f"{path}: uncertain: low confidence (" in done.stdout  # and why
    assert "(best guess: " in done.stdout
    sure = run_cli("classify", "--model", str(tiny_model), "--uncertain-below", "0.0", path)
    assert "uncertain" not in sure.stdout.splitlines()[0]


def test_classify_with_multi_crops(tiny_model, dataset_dir):
    path = str(dataset_dir / "jpg" / "image_00001.jpg")
    done = run_cli("classify", "--model", str(tiny_model), "--json", "--crops", "multi", path)
    center = run_cli("classify", "--model", str(tiny_model), "--json", "--crops", "center", path)
    assert done.returncode == 0 and center.returncode == 0, done.stderr
    multi, one = json.loads(done.stdout), json.loads(center.stdout)
    assert multi["label"] and multi["top_k"] != one["top_k"]  # six crops averaged, not the centre alone
    bad = run_cli("classify", "--model", str(tiny_model), "--crops", "grid", path)
    assert bad.returncode == 2 and "crops" in bad.stderr and "Traceback" not in bad.stderr
