"""The daemon as a real process: systemd notify over a real AF_UNIX datagram socket, a real video file
through OpenCV, faults in the source, SIGTERM under heavy output, and the HTTP endpoints over loopback.
"""

from __future__ import annotations

import http.client
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

import numpy as np
import pytest
from flowercam.daemon.config import ConfigError, load_config
from flowercam.daemon.smoothing import Smoother

from tests.helpers import daemon_config as _config
from tests.helpers import events_of as _events
from tests.helpers import free_port as _free_port
from tests.helpers import start_daemon as _start
from tests.helpers import wait_for as _wait_for


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
    proc = _start(_config(tmp_path, tiny_model, video, http={"bind": f"127.0.0.1:{port}",
                                                          "hosts": "flowercam.local, pi"}))

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, ""
        except OSError:
            return 0, ""

    try:
        assert _wait_for(lambda: get("/healthz")[0] == 200)
        assert get("/healthz?probe=1")[0] == 200 and get("/snapshot.jpg?t=1")[0] == 200  # a query is no route
        status, metrics = get("/metrics")
        assert status == 200 and "flowercam_inferences_total" in metrics
        assert 'flowercam_inference_latency_ms_bucket{le="+Inf"}' in metrics and "flowercam_current_label{" in metrics
        latest = json.loads(get("/latest")[1])
        assert latest["label"].startswith("synthetic") and "smoothed_label" in latest
        assert get("/nothing")[0] == 404
        for host, code in (("attacker.example", 421), (f"attacker.example:{port}", 421), ("flowercam.local", 200),
                           (f"127.0.0.1:{port}", 200), ("localhost", 200), (f"[::1]:{port}", 200)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.putrequest("GET", "/latest", skip_host=True)
            connection.putheader("Host", host)
            connection.endheaders()
            assert connection.getresponse().status == code, host  # a DNS-rebinding page never gets an answer
            connection.close()
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


def test_reload_on_sighup_swaps_config_and_model_or_keeps_the_old_ones(tmp_path, tiny_model, video):
    """SIGHUP (systemctl reload): RELOADING=1 then READY=1 over the real notify socket; a good config is swapped in
    between frames, a broken one is refused with one line and the daemon goes on with the old one."""
    notify = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(notify))
    receiver.settimeout(0.2)
    config = _config(tmp_path, tiny_model, video)
    proc = _start(config, env={"NOTIFY_SOCKET": str(notify)})
    events = tmp_path / "events.jsonl"
    messages: list[str] = []

    def drain() -> None:
        while True:
            try:
                messages.append(receiver.recv(4096).decode())
            except TimeoutError:
                return

    try:
        assert _wait_for(lambda: events.exists() and '"label"' in events.read_text())
        config.write_text(config.read_text().replace("[model]\n", "[model]\nuncertain_below = 0.99\n"))
        proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: '"reload"' in events.read_text())
        config.write_text("[model\n")  # broken
        proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: events.read_text().count('"reload"') == 2)
        count = events.read_text().count("\n")
        assert _wait_for(lambda: events.read_text().count("\n") > count)  # still classifying
        drain()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        receiver.close()
    assert proc.returncode == 0 and _events(events)[-1]["event"] == "stop"
    reloads = [r for r in _events(events) if r["event"] == "reload"]
    assert reloads[0]["ok"] and not reloads[1]["ok"] and "not valid TOML" in reloads[1]["error"]
    assert "reload failed" in err and err.count("Traceback") == 0
    sent = [m.split("\n")[0] for m in messages if m.startswith(("RELOADING=1", "READY=1"))]
    assert sent[:5] == ["READY=1", "RELOADING=1", "READY=1", "RELOADING=1", "READY=1"]


def test_check_config_validates_config_and_model(tmp_path, tiny_model, video):
    good = _config(tmp_path, tiny_model, video)
    done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "--check-config", "-c", str(good)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ok" in done.stdout
    bad = _config(tmp_path, tmp_path / "missing.tflite", video)
    done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "--check-config", "-c", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "model not found" in done.stderr


def test_an_early_sigterm_still_stops_cleanly(tmp_path, tiny_model, video):
    early = _start(_config(tmp_path, tiny_model, video))

    def catches_sigterm() -> bool:  # the daemon's handler is installed: bit 15 of SigCgt
        status = Path(f"/proc/{early.pid}/status").read_text()
        return bool(int(status.split("SigCgt:")[1].split()[0], 16) & (1 << (signal.SIGTERM - 1)))

    assert _wait_for(catches_sigterm, 30)
    early.send_signal(signal.SIGTERM)  # while the config and model are still loading
    _, err = early.communicate(timeout=60)
    assert early.returncode == 0 and "Traceback" not in err


def test_fps_cap_on_a_video_file_and_a_file_that_ends(tmp_path, tiny_model, video):
    """At most fps classifications a second (it was twice that), and with loop = false the file ends once."""
    events = tmp_path / "events.jsonl"
    proc = _start(_config(tmp_path, tiny_model, video, source={"fps": 4, "loop": False},
                          smoothing={"window": 1, "enter": 0.0, "stay": 0.0}, events={"heartbeat_s": 1.0}))
    time.sleep(6.0)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    beats = [r for r in _events(events) if r["event"] == "heartbeat"]
    assert beats and max(b["fps"] for b in beats[1:] or beats) <= 4.4
    watch = subprocess.run([sys.executable, "-m", "flowercam", "watch", "-s", str(video), "--model", str(tiny_model),
                            "--fps", "5", "--every-frame", "--json", "--max-frames", "10"],  # each frame in turn
                           capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in watch.stdout.splitlines()]
    assert len(rows) == 10 and rows[-1]["fps"] <= 5 * 10 / 9 + 0.05  # 10 frames over 9 periods (was ~2x)
    assert max(r["latency_ms"]["decode"] for r in rows) < 150 and max(r["wait_ms"] for r in rows) > 100


def test_file_without_loop_is_reported_ended_once(tmp_path, tiny_model, video):
    events = tmp_path / "events.jsonl"
    proc = _start(_config(tmp_path, tiny_model, video, source={"fps": 120, "loop": False}))
    assert _wait_for(lambda: events.exists() and '"ended"' in events.read_text())
    time.sleep(1.0)
    assert proc.poll() is None  # ended, not dead: systemd would restart a dead one and replay the file
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    sources = [r["state"] for r in _events(events) if r["event"] == "source"]
    assert sources == ["connected", "ended"]


def test_a_snapshot_that_cannot_be_written_is_not_a_camera_fault(tmp_path, tiny_model, video):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the snapshot folder should be")
    events = tmp_path / "events.jsonl"
    proc = _start(_config(tmp_path, tiny_model, video, smoothing={"window": 1, "enter": 0.0, "stay": 0.0},
                          events={"snapshot_dir": str(blocked / "snaps")}))
    assert _wait_for(lambda: events.exists() and events.read_text().count('"label"') >= 2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    records = _events(events)
    labels = [r for r in records if r["event"] == "label"]
    assert all("snapshot_error" in r and r["snapshot"] is None for r in labels)
    assert not [r for r in records if r["event"] == "source" and r["state"] == "retry"]  # the camera was fine


def test_credentials_in_a_source_uri_never_show(tmp_path, tiny_model):
    port = _free_port()
    uri = f"rtsp://admin:s3cret@127.0.0.1:{_free_port()}/stream"
    events = tmp_path / "events.jsonl"
    proc = _start(_config(tmp_path, tiny_model, uri, http={"bind": f"127.0.0.1:{port}"}))
    assert _wait_for(lambda: events.exists() and '"retry"' in events.read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=5) as response:
        latest = response.read().decode()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    for text in (events.read_text(), out, err, latest):
        assert "s3cret" not in text and "admin" not in text
    assert "rtsp://***@127.0.0.1" in events.read_text()


def test_bad_source_uris_are_usage_errors(tmp_path, tiny_model):
    done = subprocess.run([sys.executable, "-m", "flowercam", "watch", "-s", "opencv:x", "--model", str(tiny_model)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "opencv:N" in done.stderr
    config = _config(tmp_path, tiny_model, "gopher://camera/1")
    done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "source.uri" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "flowercam", "daemon", "-c", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "is a folder" in done.stderr


def test_http_survives_idle_slow_and_aborted_clients(tmp_path, tiny_model, video):
    """Idle connections are dropped after the timeout and capped; a client that hangs up mid-request leaves no
    traceback; IPv6 loopback binds."""
    from flowercam.daemon.web.http import MAX_CONNECTIONS, REQUEST_TIMEOUT_S

    port = _free_port()
    proc = _start(_config(tmp_path, tiny_model, video, http={"bind": f"[::1]:{port}"}))

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        assert _wait_for(healthy)
        idle = [socket.create_connection(("::1", port)) for _ in range(MAX_CONNECTIONS * 3)]
        assert healthy() or _wait_for(healthy, REQUEST_TIMEOUT_S + 5)  # served again once the idle ones time out
        for _ in range(5):
            aborted = socket.create_connection(("::1", port))
            aborted.sendall(b"GET /metr")
            aborted.close()
        time.sleep(REQUEST_TIMEOUT_S + 1)
        threads = int(Path(f"/proc/{proc.pid}/status").read_text().split("Threads:")[1].split()[0])
        assert threads < 20  # idle connections do not pile up threads
        for s in idle:
            s.close()
        assert healthy()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err


_DISK_FULL = r"""
import json, os, resource, signal, sys
from flowercam.daemon.events import EventWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
path = sys.argv[1]
writer = EventWriter(path, stdout_fd=os.open(os.devnull, os.O_WRONLY))
for i in range(3):
    writer.emit("label", i=i)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 120, hard))  # room for one more line
for i in range(3, 10):
    writer.emit("label", i=i, padding="x" * 30)  # the first fits, the next do not
failing = writer.failing
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space returns
writer.emit("label", i=10)
print(json.dumps({"failing": failing, "now": writer.failing}))
"""


def test_a_full_disk_never_leaves_a_partial_line_and_writing_recovers(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event":"start"}\n{"event":"label","i":-1,"trunc')  # a partial line from a crash
    done = subprocess.run([sys.executable, "-c", _DISK_FULL, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["failing"] and state["now"] is None  # failed while full, recovered after
    records = _events(path)  # every line whole: json.loads of each succeeds
    numbers = [r.get("i") for r in records if r["event"] == "label"]
    assert numbers == [0, 1, 2, 3, 10]  # the partial line cut off, 4-9 lost to the full disk (journal has them)
    assert [r["state"] for r in records if r["event"] == "events_file"] == ["recovered"]


def test_an_outage_is_reported_as_such_and_ends_when_the_source_returns(tmp_path, tiny_model, video):
    import shutil

    clip = tmp_path / "clip.avi"
    shutil.copy(video, clip)
    port = _free_port()
    events = tmp_path / "events.jsonl"
    proc = _start(_config(tmp_path, tiny_model, clip, http={"bind": f"127.0.0.1:{port}"},
                          events={"heartbeat_s": 0.3}, source={"reconnect_initial_s": 0.2, "reconnect_max_s": 0.4}))

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    try:
        assert _wait_for(lambda: events.exists() and '"label"' in events.read_text())
        clip.unlink()
        assert _wait_for(lambda: '"outage_s"' in events.read_text())
        assert "flowercam_source_up 0" in metrics() and "flowercam_current_label{" not in metrics()
        shutil.copy(video, clip)
        assert _wait_for(lambda: events.read_text().count('"connected"') >= 2)
        assert _wait_for(lambda: "flowercam_source_up 1" in metrics())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    beats = [r for r in _events(events) if r["event"] == "heartbeat"]
    down = [b for b in beats if "outage_s" in b]
    assert down and all(b["label"] is None for b in down)
    assert [b["outage_s"] for b in down] == sorted(b["outage_s"] for b in down)  # it grows


def test_a_stalled_stream_is_bounded_and_the_watchdog_keeps_being_fed(tmp_path, tiny_model):
    """A server that accepts TCP and never answers: open() gives up after STREAM_TIMEOUT_S (FFmpeg's own wait is
    ~30 s, past WatchdogSec), the daemon retries with backoff, WATCHDOG=1 keeps coming meanwhile, and a SIGTERM
    during the open stops it at once."""
    from flowercam.sources.opencv import STREAM_TIMEOUT_S

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    notify = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(notify))
    receiver.settimeout(0.5)
    events = tmp_path / "events.jsonl"
    config = _config(tmp_path, tiny_model, f"rtsp://127.0.0.1:{port}/stream",
                     source={"reconnect_initial_s": 0.5, "reconnect_max_s": 1.0})
    proc = _start(config, env={"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "2000000"})
    pings, start = [], time.monotonic()
    try:
        while time.monotonic() - start < 2 * STREAM_TIMEOUT_S + 8:
            try:
                message = receiver.recv(4096).decode()
            except TimeoutError:
                continue
            if "WATCHDOG=1" in message:
                pings.append(time.monotonic())
            if events.exists() and events.read_text().count('"retry"') >= 2:
                break
        assert events.read_text().count('"retry"') >= 2  # open() gave up, twice, within the bound
        gaps = np.diff(pings)
        assert len(pings) > 3 and gaps.max() < 2.0, gaps  # every second, also while a stream is being opened
        time.sleep(1.0)  # the next open is in progress
    finally:
        stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        receiver.close()
        silent.close()
    assert time.monotonic() - stop < 2.5  # a SIGTERM during the open does not wait for it


def test_metrics_stay_valid_prometheus_text_whatever_a_class_is_called():
    """A class named by a folder (the owner's, or a stranger's on a shared garden) cannot break /metrics."""
    from flowercam.daemon.metrics import Metrics
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics(stall_s=5)
    for label in ('"><svg onload=alert(1)>', 'back\\slash "quoted"', "line\nfeed", "common dandelion"):
        metrics.show(label, None, {}, True)
        families = {f.name: f for f in text_string_to_metric_families(metrics.prometheus(0.0))}
        assert [s.labels["label"] for s in families["flowercam_current_label"].samples] == [label]
