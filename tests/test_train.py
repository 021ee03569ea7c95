"""Training: schedules, both phases on the feature cache, the run folder, resume, the paper presets."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from build_models.data import load_flowers102
from build_models.presets import get_preset
from build_models.schedules import CyclicLR


def test_cyclic_lr_policies():
    tri = CyclicLR(0.1, 1.0, step_size=10)
    assert [round(float(tri(s)), 4) for s in (0, 5, 10, 15, 20, 30)] == [0.1, 0.55, 1.0, 0.55, 0.1, 1.0]
    tri2 = CyclicLR(0.1, 1.0, step_size=10, policy="triangular2")
    assert round(float(tri2(30)), 4) == 0.55  # second cycle peaks at half the amplitude
    exp = CyclicLR(0.1, 1.0, step_size=10, policy="exp_range", gamma=0.9)
    assert round(float(exp(10)), 4) == round(0.1 + 0.9 * 0.9 ** 10, 4)
    with pytest.raises(ValueError, match="valid: triangular, triangular2, exp_range"):
        CyclicLR(0.1, 1.0, 10, policy="cosine")


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_lite0_two_phase_run_folder(dataset_dir, tmp_path):
    from build_models.run import evaluate_run, start_run

    config = get_preset("lite0", size=64, views=2, phase1_epochs=8, phase2_epochs=3, batch_size=8)
    ds = load_flowers102(dataset_dir)
    metrics = start_run(config, ds, tmp_path / "run")
    assert metrics["test"]["accuracy"] >= 0.8  # 3 colour classes; chance is 1/3
    assert len(metrics["test"]["per_class"]) == 3 and metrics["test"]["n"] == 18
    for name in ("config.json", "history_phase1.csv", "history_phase2.csv", "training_curves.png",
                 "metrics.json", "confusion_test.png", "confusion_val.png", "model.keras", "cache_train.npy"):
        assert (tmp_path / "run" / name).exists(), name
    assert np.load(tmp_path / "run" / "cache_train.npy", mmap_mode="r").shape[0] == 2 * len(ds.train)
    for stale in (tmp_path / "run").glob("logits_*.npz"):
        stale.unlink()
    again = evaluate_run(tmp_path / "run", ds)  # reloads model.keras from disk
    assert again["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


@pytest.mark.slow  # two training runs (~18 s on 2 cores): CI runs it with -m slow
def test_cached_and_uncached_paths_both_learn(dataset_dir, tmp_path):
    from build_models.run import start_run

    ds = load_flowers102(dataset_dir)
    for cache in (True, False):
        config = get_preset("lite0", size=64, views=2, phase1_epochs=8, phase2_epochs=2, batch_size=8, cache=cache)
        metrics = start_run(config, ds, tmp_path / f"cache-{cache}")
        assert metrics["test"]["accuracy"] >= 0.8, cache


@pytest.mark.slow  # the slowest (~40-60 s on 2 cores): CI runs them with -m slow
def test_killed_run_resumes_where_it_stopped(dataset_dir, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "build_models", "train", "lite0", "--data", str(dataset_dir), "--out", str(run),
            "--protocol", "trainval", "--size", "48", "--views", "1", "--phase1-epochs", "3",
            "--phase2-epochs", "60"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run / "history_phase2.csv"
    deadline = time.time() + 240
    while time.time() < deadline and not (history.exists() and len(_rows(history)) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(_rows(history))
    assert 3 <= done_before < 60, "the run was not interrupted mid-phase"
    phase1_rows = len(_rows(run / "history_phase1.csv"))
    finished = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    epochs = [int(r["epoch"]) for r in _rows(history)]
    assert epochs[-1] == 59 and len(epochs) <= 60 + 1  # continued, not restarted from epoch 0
    assert len(_rows(run / "history_phase1.csv")) == phase1_rows  # phase 1 not redone
    assert json.loads((run / "metrics.json").read_text())["protocol"] == "trainval"


@pytest.mark.parametrize("preset, size", [("paper-vgg16", 32), ("paper-resnet50", 32),
                                          pytest.param("paper-inceptionv3", 75, marks=pytest.mark.slow)])  # ~12 s
def test_paper_presets_train_end_to_end(dataset_dir, tmp_path, preset, size):
    from build_models.run import start_run

    config = get_preset(preset, size=size, views=1, phase1_epochs=1, phase2_epochs=1, batch_size=8)
    from dataclasses import replace

    ds = load_flowers102(dataset_dir)
    metrics = start_run(replace(config, weights=None), ds, tmp_path / preset)
    from flowercam.model.preprocess import Preprocess

    from build_models.images import labels_of, load_arrays
    from build_models.run import load_run

    saved_config, model = load_run(tmp_path / preset)  # the saved model, read back, gives the recorded figure
    x = load_arrays(ds.test, Preprocess(saved_config.size, saved_config.crop_fraction)).astype("float32")
    accuracy = float((model.predict(x, verbose=0).argmax(1) == labels_of(ds.test)).mean())
    assert metrics["test"]["n"] == 18 and abs(metrics["test"]["accuracy"] - accuracy) < 1e-9
    assert model.output_shape[-1] == ds.num_classes and saved_config.size == size


def test_lr_range_test_writes_plot_and_band(dataset_dir, tmp_path):
    from build_models.lr_find import run_lr_find

    config = get_preset("lite0", size=48)
    base, top = run_lr_find(config, load_flowers102(dataset_dir), tmp_path, steps=60)
    assert 0 < base < top
    assert (tmp_path / "lr_range_test.png").stat().st_size > 1000
    assert len(json.loads((tmp_path / "lr_range_test.json").read_text())["lr"]) > 5


@pytest.mark.slow  # a whole training run piped (~25 s): CI runs it with -m slow
def test_piped_log_shows_progress_and_phases_without_gpu_noise(dataset_dir, tmp_path):
    """stdout is a pipe, as under nohup or tee: plain progress and phase lines, no CUDA/absl start-up lines;
    the default run folder is runs/PRESET-PROTOCOL, and --out names the run folder itself."""
    args = [sys.executable, "-m", "build_models", "train", "tiny", "--data", str(dataset_dir)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    for line in ("TensorFlow", "caching 2 views: ", "== cache:", "== phase 1:", "== phase 2:", "== evaluation:",
                 "next: build-models export runs/tiny-paper"):
        assert line in log, line
    assert sum(" done in " in line for line in log.splitlines()) >= 8  # every task and phase ends with its time
    for noise in ("cuda", "cuInit", "absl", "I0000", "E0000", "oneDNN"):
        assert noise not in log, noise
    assert (tmp_path / "runs" / "tiny-paper" / "model.keras").exists()

    elsewhere = tmp_path / "data" / "try1"
    done = subprocess.run([*args, "--out", str(elsewhere), "--phase1-epochs", "1", "--phase2-epochs", "0"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (elsewhere / "model.keras").exists() and (elsewhere / "cache_train.npy").exists()
    clash = subprocess.run([*args, "--out", str(elsewhere), "--size", "48"], capture_output=True, text=True,
                           timeout=600)
    assert clash.returncode == 2 and clash.stderr.strip().count("\n") == 0, clash.stderr
    assert "holds a run with another config" in clash.stderr


def test_log_progress_lines(monkeypatch):
    from build_models import console

    now = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: now[0])
    lines: list[str] = []
    log = console.LogProgress("caching", 1000, write=lines.append)
    for _ in range(100):  # 10 images a second, 100 s
        now[0] += 1.0
        log.advance(10)
    log.close()
    assert lines[0] == "caching: 50/1000 (5%), 10.0 img/s, elapsed 0:05, ETA 1:35"
    assert len(lines) == 20 and lines[-1] == "caching: 1000/1000 done in 1:40, 10.0 img/s"
    slow: list[str] = []
    log = console.LogProgress("slow", 1000, write=slow.append)
    now[0] += 31.0
    log.advance(1)  # under 5 %, but 30 s passed
    assert slow == ["slow: 1/1000 (0%), 0.0 img/s, elapsed 0:31, ETA 8:36:09"]


def test_cached_maps_stream_every_row_once_per_epoch_with_its_label(tmp_path):
    from build_models.cache import CachedMaps

    maps = np.random.default_rng(0).normal(size=(50, 3, 3, 4)).astype(np.float16)
    np.save(tmp_path / "cache.npy", maps)
    labels = np.arange(50) % 7
    batches = CachedMaps(tmp_path / "cache.npy", labels, batch_size=16, seed=1)
    assert len(batches) == 4
    for _ in range(2):  # two epochs, reshuffled
        seen = []
        for index in range(len(batches)):
            x, y = batches[index]
            assert x.dtype == np.float32 and x.shape[1:] == (3, 3, 4)
            for row, label in zip(x, y):
                match = np.flatnonzero((maps.astype(np.float32) == row).all(axis=(1, 2, 3)))
                assert len(match) == 1 and labels[match[0]] == label  # the right label travels with each map
                seen.append(int(match[0]))
        assert sorted(seen) == list(range(50)) and seen != sorted(seen)  # all rows, shuffled
        batches.on_epoch_end()
    plain = CachedMaps(tmp_path / "cache.npy", None, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(plain[1], maps[16:32].astype(np.float32))  # in order, maps only
