"""Calibration: the representative sample and temperature scaling."""

from __future__ import annotations

import numpy as np
from flowercam.model.preprocess import Preprocess
from flowercam.model.scores import softmax

from calibration.representative import balanced_sample, representative_dataset, representative_paths
from calibration.temperature import expected_calibration_error, fit_temperature
from tests.helpers import flower_like


def test_balanced_sample_is_balanced_and_seeded():
    labels = [0] * 50 + [1] * 10 + [2] * 40
    chosen = balanced_sample(labels, 30, seed=1)
    counts = np.bincount([labels[i] for i in chosen], minlength=3)
    assert counts.tolist() == [10, 10, 10]
    assert chosen == balanced_sample(labels, 30, seed=1) and chosen != balanced_sample(labels, 30, seed=2)
    assert len(balanced_sample(labels, 1000)) == 100


def test_representative_dataset_adds_user_folder_and_uses_device_preprocessing(tmp_path, dataset_dir):
    from PIL import Image

    from build_models.data import load_flowers102

    (tmp_path / "camera").mkdir()
    flower_like(size=(90, 60)).save(tmp_path / "camera" / "frame1.png")
    (tmp_path / "camera" / "broken.jpg").write_bytes(b"nope")
    ds = load_flowers102(dataset_dir)
    files = representative_paths([s.path for s in ds.train], [s.label for s in ds.train], 3,
                                 extra_folder=tmp_path / "camera")
    assert len(files) == 5
    pre = Preprocess(32, crop_fraction=0.5)
    representative = representative_dataset(files, pre)
    batches = list(representative())
    assert len(batches) == 4 and (representative.used, representative.skipped) == (4, 1)  # the broken file
    # the device's rule, written out by hand: the centred square of half the short side, bilinear to 32 px
    frame = Image.open(tmp_path / "camera" / "frame1.png").convert("RGB")
    by_hand = np.asarray(frame.resize((32, 32), Image.Resampling.BILINEAR, box=(30, 15, 60, 45)), np.float32)
    np.testing.assert_array_equal(batches[3][0][0], by_hand)


def test_temperature_scaling_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, k = 4000, 10
    true_logits = rng.normal(0, 2, (n, k))
    labels = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 3.0  # what an overfit net looks like
    t = fit_temperature(overconfident, labels)
    assert 2.5 < t < 3.5
    before = expected_calibration_error(softmax(overconfident), labels)
    after = expected_calibration_error(softmax(overconfident, t), labels)
    assert after < 0.03 < before


def test_ece_of_a_perfectly_calibrated_constant():
    probs = np.tile([0.7, 0.3], (1000, 1))
    labels = np.array([0] * 700 + [1] * 300)
    assert expected_calibration_error(probs, labels) < 1e-9
