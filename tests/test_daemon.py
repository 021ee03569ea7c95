"""The daemon as a real process: systemd notify over a real AF_UNIX datagram socket, a real video file
through OpenCV, faults in the source, SIGTERM under heavy output, and the HTTP endpoints over loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from flowercam.config import ConfigError, load_config
from flowercam.smoothing import Smoother


@pytest.fixture(scope="module")
def video(tmp_path_factory, dataset_dir) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("video") / "garden.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for jpg in sorted((dataset_dir / "jpg").glob("*.jpg"))[:10]:
        image = np.asarray(Image.open(jpg).convert("RGB").resize((64, 48)))[..., ::-1].copy()
        for _ in range(5):
            writer.write(image)
    writer.release()
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path: Path, model: Path, uri: Path | str, **sections) -> Path:
    base = {"model": {"path": str(model), "threads": 1},
            "source": {"uri": str(uri), "fps": 50, "loop": True, "reconnect_initial_s": 0.1,
                       "reconnect_max_s": 0.4},
            "events": {"file": str(tmp_path / "events.jsonl"), "heartbeat_s": 0.5}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                   for name, values in base.items())
    path = tmp_path / "flowercam.toml"
    path.write_text(text)
    return path


def _start(config: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flowercam", "daemon", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            env={**os.environ, **(env or {})})


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_notify_protocol_over_a_real_socket(tmp_path, tiny_model, video):
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(30)
    proc = _start(_config(tmp_path, tiny_model, video), {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"})
    messages: list[str] = []
    try:
        while sum(m == "WATCHDOG=1" for m in messages) < 2:
            messages.append(server.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        while True:
            try:
                server.settimeout(0.5)
                messages.append(server.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        proc.kill()
        server.close()
    assert proc.returncode == 0, err
    assert messages[0].startswith("READY=1")
    assert any(m.startswith("STATUS=") and "label" in m for m in messages)
    assert sum(m == "WATCHDOG=1" for m in messages) >= 2
    assert messages[-1] == "STOPPING=1"
    assert json.loads(out.splitlines()[0])["event"] == "start"  # events also on stdout (journald)


def test_abstract_notify_socket(tmp_path, tiny_model, video):
    name = f"flowercam-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(30)
    proc = _start(_config(tmp_path, tiny_model, video), {"NOTIFY_SOCKET": "@" + name})
    try:
        assert server.recv(4096).decode().startswith("READY=1")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        server.close()
    assert proc.returncode == 0


def test_sigterm_under_heavy_output_leaves_only_whole_lines(tmp_path, tiny_model, video):
    config = _config(tmp_path, tiny_model, video, source={"fps": 120},
                     smoothing={"window": 1, "enter": 0.0, "stay": 0.0}, events={"heartbeat_s": 0.1})
    proc = _start(config)
    events = tmp_path / "events.jsonl"
    assert _wait_for(lambda: events.exists() and events.stat().st_size > 20_000)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    records = _events(events)  # raises if any line is partial
    kinds = {r["event"] for r in records}
    assert {"start", "label", "heartbeat", "stop"} <= kinds and records[-1]["event"] == "stop"
    beat = next(r for r in records if r["event"] == "heartbeat")
    assert {"fps", "mean_inference_ms", "peak_rss_mb", "frames_dropped"} <= set(beat)


@pytest.mark.parametrize("fault", ["removed", "truncated"])
def test_source_faults_reconnect_without_crashing(tmp_path, tiny_model, video, fault):
    import shutil

    clip = tmp_path / "clip.avi"
    shutil.copy(video, clip)
    proc = _start(_config(tmp_path, tiny_model, clip))
    events = tmp_path / "events.jsonl"
    assert _wait_for(lambda: events.exists() and '"label"' in events.read_text())
    if fault == "removed":
        clip.unlink()
    else:
        with open(clip, "r+b") as f:
            f.truncate(1000)
    assert _wait_for(lambda: events.read_text().count('"retry"') >= 3)
    assert proc.poll() is None  # still up
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    retries = [r for r in _events(events) if r["event"] == "source" and r["state"] == "retry"]
    waits = [r["retry_in_s"] for r in retries]
    assert waits[:3] == [0.1, 0.2, 0.4] and max(waits) == 0.4  # exponential, capped
    assert "retrying" in err


def test_http_endpoints_over_loopback(tmp_path, tiny_model, video):
    port = _free_port()
    proc = _start(_config(tmp_path, tiny_model, video, http={"bind": f"127.0.0.1:{port}"}))

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, ""
        except OSError:
            return 0, ""

    try:
        assert _wait_for(lambda: get("/healthz")[0] == 200)
        status, metrics = get("/metrics")
        assert status == 200 and "flowercam_inferences_total" in metrics
        assert 'flowercam_inference_latency_ms_bucket{le="+Inf"}' in metrics and "flowercam_current_label{" in metrics
        latest = json.loads(get("/latest")[1])
        assert latest["label"].startswith("synthetic") and "smoothed_label" in latest
        assert get("/nothing")[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_broken_config_or_model_exit_non_zero_with_one_line(tmp_path, tiny_model, video):
    bad = tmp_path / "bad.toml"
    for text, words in [("[model]\nthreds = 2\n", "unknown key model.threds"),
                        ("[source]\nfps = 0\n", "source.fps = 0.0 is out of range"),
                        ("[http]\nbind = \"0.0.0.0:80\"\n", "only loopback"),
                        ("[camera]\n", "unknown section [camera]"),
                        ("[model\n", "not valid TOML")]:
        bad.write_text(text)
        done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "-c", str(bad)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"x")
    done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "-c",
                           str(_config(tmp_path, broken, video))], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_config_defaults_and_types(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\npath = ""\nthreads = 2\nedgetpu = false\n[source]\nuri = "opencv:0"\nfps = 5\n'
                    '[events]\nfile = ""\n[http]\nbind = ""\n')
    config = load_config(path)
    assert config.source.fps == 5.0 and config.model.threads == 2 and config.smoothing.window == 5
    path.write_text('[model]\nthreads = "two"\n')
    with pytest.raises(ConfigError, match="model.threads must be int"):
        load_config(path)


def test_smoother_does_not_flicker():
    smoother = Smoother(window=3, enter=0.6, stay=0.4)
    a, b = np.array([0.9, 0.1]), np.array([0.3, 0.7])
    assert smoother.update(a) and smoother.current == 0
    assert not smoother.update(b)  # one odd frame: average of a class 0 still 0.6
    assert not smoother.update(a) and smoother.current == 0
    for _ in range(3):
        smoother.update(b)
    assert smoother.current == 1
    smoother.update(np.array([0.5, 0.5]))
    assert smoother.current == 1  # kept above "stay"
