"""tf.distribute: MirroredStrategy over two logical CPU devices, and two real MultiWorkerMirroredStrategy workers
on 127.0.0.1 (TF_CONFIG each), killed mid-epoch and restarted. CPU and loopback only."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from build_models.fitting import EpochCheckpoint
from tests.helpers import free_port, wait_for


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """3 classes × 20 photos: 8 train, 4 val, 8 test each (the tiny preset uses at most 8 per class)."""
    from build_models.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("flowers"), num_classes=3, per_class=20, split=(8, 4))


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "build_models", "train", "tiny", "--data", str(data), "--out", str(out),
            "--protocol", "trainval", "--max-per-class", "8", *extra]


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _epochs(history: Path) -> list[int]:
    return [int(row["epoch"]) for row in csv.DictReader(history.open())] if history.exists() else []


@pytest.mark.slow  # trains twice (~30 s on 2 cores): CI runs it with -m slow
def test_mirrored_over_two_logical_cpus_learns_like_the_default_with_the_global_batch_kept(data, tmp_path):
    default = _run(_train(data, tmp_path / "default"))
    assert default.returncode == 0, default.stderr[-2000:]
    mirrored = _run(_train(data, tmp_path / "mirrored", "--strategy", "mirrored"))
    assert mirrored.returncode == 0, mirrored.stderr[-2000:]
    assert "strategy mirrored: 2 replica(s) in sync (device:CPU:0, device:CPU:1 here)" in mirrored.stdout

    layout = _json(tmp_path / "mirrored" / "distribution.json")
    config = _json(tmp_path / "mirrored" / "config.json")
    assert layout["replicas"] == 2 and layout["global_batch"] == config["batch_size"] == 16
    assert layout["per_replica_batch"] * layout["replicas"] == layout["global_batch"]  # what TensorFlow asked for
    assert layout["steps_per_epoch"] == int(np.ceil(2 * 24 / 16))  # 2 views × 24 photos, global batches
    for run in ("default", "mirrored"):
        assert len(_epochs(tmp_path / run / "history_phase1.csv")) == 3
    ours, theirs = (_json(tmp_path / run / "metrics.json") for run in ("mirrored", "default"))
    for split in ("val", "test"):
        assert ours[split]["accuracy"] >= 0.8  # 3 colour classes: chance is 1/3
        assert abs(ours[split]["accuracy"] - theirs[split]["accuracy"]) <= 0.15, split
    # the same cache file as the default: one worker caches every photo
    assert np.load(tmp_path / "mirrored" / "cache_train.npy", mmap_mode="r").shape[0] == 48


def _cluster_env(ports: list[int], index: int) -> dict:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}


def _start_workers(args: list[str], ports: list[int], logs: Path, attempt: str) -> list[subprocess.Popen]:
    return [subprocess.Popen(args, env=_cluster_env(ports, i), stdout=(logs / f"w{i}.{attempt}.log").open("w"),
                             stderr=subprocess.STDOUT) for i in range(len(ports))]


def _finish(workers: list[subprocess.Popen]) -> list[int]:
    return [w.wait(timeout=300) for w in workers]


@pytest.mark.slow  # the slowest (~40-60 s on 2 cores): CI runs them with -m slow
def test_two_workers_on_loopback_train_shard_by_shard_and_resume_after_one_is_killed(data, tmp_path):
    run, scratch = tmp_path / "run", tmp_path / "run.worker1"
    args = _train(data, run, "--strategy", "multiworker", "--phase2-epochs", "12")
    ports = [free_port(), free_port()]

    workers = _start_workers(args, ports, tmp_path, "first")
    assert wait_for(lambda: len(_epochs(run / "history_phase2.csv")) >= 2, timeout=240), \
        (tmp_path / "w0.first.log").read_text()[-3000:]
    workers[1].send_signal(signal.SIGKILL)  # mid-epoch: epochs are a second long, the history just grew
    assert _finish(workers)[0] == 3  # the chief stops too, with one line saying what to do
    chief_log = (tmp_path / "w0.first.log").read_text()
    assert "the cluster lost a worker" in chief_log and "Traceback" not in chief_log
    assert 2 <= len(_epochs(run / "history_phase2.csv")) < 12

    # Every worker resumes at the last epoch all of them saved: a worker killed before saving the epoch the chief
    # saved (here made sure of by deleting its newest) takes the whole cluster back one epoch, never two weights.
    chief, worker = (EpochCheckpoint(folder / "checkpoint_phase2") for folder in (run, scratch))
    if worker.saved()[-1] == chief.saved()[-1]:
        newest = worker.saved()[-1]
        for name in (f"epoch{newest}.json", f"epoch{newest}.weights.h5"):
            (scratch / "checkpoint_phase2" / name).unlink()
    resume_at = max(set(chief.saved()) & set(worker.saved()))
    assert resume_at >= 1

    ports = [free_port(), free_port()]
    assert _finish(_start_workers(args, ports, tmp_path, "again")) == [0, 0], \
        (tmp_path / "w0.again.log").read_text()[-3000:]
    chief_log = (tmp_path / "w0.again.log").read_text()
    assert "== phase 1:" not in chief_log  # phase 1 was done everywhere
    for log in (chief_log, (tmp_path / "w1.again.log").read_text()):
        assert f"resuming phase2 at epoch {resume_at + 1}" in log
    assert _epochs(run / "history_phase2.csv") == list(range(12))  # continued, no epoch twice
    assert "worker 1: done; worker 0 (the chief) writes the run folder" in (tmp_path / "w1.again.log").read_text()

    # Only the chief wrote the run folder; each worker cached its own half of the photos.
    assert (run / "model.keras").exists() and (run / "metrics.json").exists()
    assert not (scratch / "model.keras").exists() and not (scratch / "metrics.json").exists()
    assert {p.name for p in run.glob("cache_train*")} == {"cache_train.worker0of2.npy"}
    assert {p.name for p in scratch.glob("cache_train*")} == {"cache_train.worker1of2.npy"}
    rows = [np.load(folder / f"cache_train.worker{i}of2.npy", mmap_mode="r").shape[0]
            for i, folder in enumerate((run, scratch))]
    assert rows == [24, 24]  # 2 views × 12 photos each
    layout = _json(run / "distribution.json")
    assert (layout["workers"], layout["replicas"], layout["per_replica_batch"]) == (2, 2, 8)
    assert _json(run / "metrics.json")["test"]["accuracy"] >= 0.8
    from build_models.run import load_run

    config, model = load_run(run)  # the chief's model is a plain Keras model: export and evaluate read it as any
    assert config.preset == "tiny" and model.output_shape == (None, 3)


@pytest.mark.parametrize("tf_config, message", [
    (None, "--strategy multiworker needs TF_CONFIG"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}', "TF_CONFIG '{"),
    ("not json", "TF_CONFIG 'not json': expected"),
])
def test_a_bad_cluster_is_one_line(data, tmp_path, tf_config, message):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    done = _run(_train(data, tmp_path / "run", "--strategy", "multiworker"), env=env)
    assert done.returncode == 2 and message in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert not (tmp_path / "run").exists()


def test_an_unknown_strategy_is_one_line(data, tmp_path):
    done = _run(_train(data, tmp_path / "run", "--strategy", "horovod"))
    assert done.returncode == 2 and "unknown strategy 'horovod'; valid: default, mirrored, multiworker" in \
        done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
