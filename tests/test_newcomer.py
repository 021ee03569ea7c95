"""What a newcomer hit (issue "What a newcomer hits"): the default threads, watch's last line and first rate,
bench's memory per model, check-config for a missing camera library and for peers beyond loopback."""

from __future__ import annotations

import json

from flowercam.runtime import MAX_DEFAULT_THREADS, cores, threads_for

from tests.helpers import daemon_config, run_cli


def test_threads_default_to_the_cores_capped_and_requests_are_capped_at_the_cores(tiny_model):
    assert threads_for(None) == min(cores(), MAX_DEFAULT_THREADS)
    assert threads_for(64) == cores() and threads_for(1) == 1
    done = run_cli("bench", "-m", str(tiny_model), "--runs", "3", "--warmup", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["threads"] == min(cores(), MAX_DEFAULT_THREADS)
    assert "at most 4" in run_cli("classify", "--help").stdout


def test_watch_says_why_it_stopped_and_shows_no_rate_before_two_frames(tiny_model, video):
    done = run_cli("watch", "-s", str(video), "-m", str(tiny_model), "--max-frames", "3", "--fps", "50", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 3 and rows[0]["fps"] is None and rows[2]["fps"] > 0
    assert "--max-frames reached" in done.stderr and "source ended" not in done.stderr
    done = run_cli("watch", "-s", str(video), "-m", str(tiny_model), "--fps", "100")
    assert done.returncode == 0 and "source ended" in done.stderr
    assert "– fps" in done.stdout.splitlines()[0]


def test_bench_tells_each_models_memory_from_the_processs(tiny_model, tmp_path):
    done = run_cli("bench", "-m", str(tiny_model), "-m", str(tiny_model), "--runs", "3", "--warmup", "0")
    assert done.returncode == 0, done.stderr
    assert "RSS+ MB" in done.stdout and "this model: RSS +" in done.stdout and "the process: peak RSS" in done.stdout


def test_check_config_refuses_a_missing_camera_library_and_names_peers_beyond_loopback(tmp_path, tiny_model,
                                                                                       video):
    import importlib.util

    config = daemon_config(tmp_path, tiny_model, "picamera2")
    done = run_cli("daemon", "--config", str(config), "--check-config")
    if importlib.util.find_spec("picamera2") is None:  # here (no Pi): refused at check time, one line, exit 2
        assert done.returncode == 2 and "picamera2 library is not installed" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert done.returncode == 0
    config = daemon_config(tmp_path, tiny_model, video, mqtt={"host": "192.168.1.5"},
                           http={"bind": "0.0.0.0:8089", "allow_remote": True})
    done = run_cli("daemon", "--config", str(config), "--check-config")
    assert done.returncode == 0, done.stderr
    assert "the MQTT broker 192.168.1.5" in done.stdout and "0.0.0.0:8089" in done.stdout
    assert "network.conf.example" in done.stdout
    config = daemon_config(tmp_path, tiny_model, video, mqtt={"host": "127.0.0.1"})
    assert "note:" not in run_cli("daemon", "--config", str(config), "--check-config").stdout


def test_evaluate_leaves_out_the_photos_the_model_trained_on(tmp_path, tiny_model, dataset_dir):
    import dataclasses
    import shutil

    from flowercam.sidecar import photo_fingerprint, read_sidecar, sidecar_path, write_sidecar

    model = tmp_path / "m.tflite"
    shutil.copy(tiny_model, model)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(model))
    photos = sorted((dataset_dir / "jpg").glob("*.jpg"))[:6]
    folder = tmp_path / "garden" / "synthetic_1"
    folder.mkdir(parents=True)
    for i, photo in enumerate(photos):
        shutil.copy(photo, folder / f"renamed_{i}.jpg")  # other names: matched by content
    seen = tuple(sorted(photo_fingerprint(p) for p in photos[:4]))
    write_sidecar(model, dataclasses.replace(read_sidecar(model), trained_on=seen))
    done = run_cli("evaluate", "--json", "--model", str(model), str(tmp_path / "garden"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["left_out_training_photos"] == 4 and report["overall"]["all"]["photos"] == 2
    done = run_cli("evaluate", "--model", str(model), str(tmp_path / "garden"))
    assert "left out: 4 photos the model was trained or validated on" in done.stdout
    done = run_cli("evaluate", "--json", "--include-training", "--model", str(model), str(tmp_path / "garden"))
    assert json.loads(done.stdout)["overall"]["all"]["photos"] == 6
