"""The Oxford 102 data module and ``build-models data`` on generated data in the official format."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy.io import savemat

from build_models.data import DatasetError, check_md5, load_flowers102
from build_models.synthetic import write_dataset
from tests.helpers import run_cli


def test_splits_labels_and_names(dataset_dir):
    ds = load_flowers102(dataset_dir)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 6, 18)
    assert ds.class_names == ("synthetic 1", "synthetic 2", "synthetic 3")
    assert {s.label for s in ds.test} == {0, 1, 2}  # 0-based
    ids = [s.image_id for s in ds.train + ds.val + ds.test]
    assert sorted(ids) == list(range(1, 31))
    assert all(s.path.name == f"image_{s.image_id:05d}.jpg" and s.path.is_file() for s in ds.test)


def test_tgz_layout_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWERCAM_CACHE", str(tmp_path / "cache"))
    root = write_dataset(tmp_path / "tgz", per_class=10, as_tgz=True)
    assert not (root / "jpg").exists() and (root / "102flowers.tgz").is_file()
    ds = load_flowers102(root)
    assert len(ds.test) == 18 and ds.test[0].path.is_file()


def test_data_directory_from_environment(dataset_dir, monkeypatch):
    monkeypatch.setenv("FLOWERCAM_DATA", str(dataset_dir))
    assert len(load_flowers102().train) == 6


def _copy(dataset_dir, tmp_path):
    import shutil

    return shutil.copytree(dataset_dir, tmp_path / "copy")


def test_missing_mat(dataset_dir, tmp_path):
    root = _copy(dataset_dir, tmp_path)
    (root / "setid.mat").unlink()
    with pytest.raises(DatasetError, match="missing setid.mat"):
        load_flowers102(root)


def test_wrong_shape(dataset_dir, tmp_path):
    root = _copy(dataset_dir, tmp_path)
    savemat(root / "imagelabels.mat", {"labels": np.ones((30, 2), np.uint8)})
    with pytest.raises(DatasetError, match=r"labels has shape \(30, 2\)"):
        load_flowers102(root)


def test_overlapping_and_uncovered_ids(dataset_dir, tmp_path):
    root = _copy(dataset_dir, tmp_path)
    ids = {"trnid": [1, 2, 3], "valid": [3, 4], "tstid": list(range(5, 30))}
    savemat(root / "setid.mat", {k: np.array(v, np.uint16)[None] for k, v in ids.items()})
    with pytest.raises(DatasetError) as err:
        load_flowers102(root)
    assert "image id 3 is in both trnid and valid" in str(err.value)
    assert "1 of ids 1..30 are in no split" in str(err.value)


def test_id_without_file(dataset_dir, tmp_path):
    root = _copy(dataset_dir, tmp_path)
    (root / "jpg" / "image_00007.jpg").unlink()
    with pytest.raises(DatasetError, match="image_00007.jpg"):
        load_flowers102(root)


def test_md5_check(dataset_dir, tmp_path):
    ds = load_flowers102(dataset_dir)
    samples = list(ds.train)
    lines = [f"{hashlib.md5(s.path.read_bytes()).hexdigest()}  {s.path.name}" for s in samples]
    lines[0] = "0" * 32 + lines[0][32:]
    (tmp_path / "originals.md5").write_text("\n".join(lines))
    problems = check_md5(samples, tmp_path / "originals.md5")
    assert problems == [f"image id {samples[0].image_id} ({samples[0].path.name}): md5 differs from originals.md5"]


def test_cli_reports_a_whole_dataset(dataset_dir):
    done = run_cli("data", "--data", str(dataset_dir), module="build_models")
    assert done.returncode == 0, done.stderr
    assert "train:     6 images, per class min 2 max 2" in done.stdout and "dataset is whole" in done.stdout


def test_cli_on_tgz(tmp_path):
    root = write_dataset(tmp_path / "t", per_class=10, as_tgz=True)
    done = run_cli("data", "--data", str(root), module="build_models", env={"FLOWERCAM_CACHE": str(tmp_path / "c")})
    assert done.returncode == 0 and "test :    18 images" in done.stdout


def test_cli_names_the_corrupt_image(dataset_dir, tmp_path):
    root = _copy(dataset_dir, tmp_path)
    jpeg = (root / "jpg" / "image_00012.jpg").read_bytes()
    (root / "jpg" / "image_00012.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    done = run_cli("data", "--data", str(root), module="build_models")
    assert done.returncode == 1
    assert "image id 12 (image_00012.jpg): corrupt or truncated JPEG" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_without_data_is_a_clear_error(tmp_path):
    done = run_cli("data", module="build_models", env={"FLOWERCAM_DATA": ""})
    assert done.returncode == 1 and "pass --data DIR or set FLOWERCAM_DATA" in done.stderr
