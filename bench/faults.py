"""Faults against the real daemon (the bundled model, a video file through OpenCV, the notify protocol over a real
socket), and how it behaves: watchdog max gap, events corrupted or lost, exit, time to recover.

Faults: a stalled stream (a TCP server that accepts and never answers), the source lost and back, a full disk and
its recovery (RLIMIT_FSIZE lowered on the running daemon, then raised), SIGTERM at random moments (×20, from
start-up on), SIGHUP (a reload) 20 times under load, slow and aborted HTTP clients, 200 idle connections; and
the faults of learning on the device (learning_faults.py) and of the season's record (sightings_faults.py).

Usage: python bench/faults.py  ->  bench/results/faults.{json,md}
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402

WATCHDOG_S = 2.0  # WATCHDOG_USEC given to the daemon: it pings every 1 s


class Run:
    """One daemon process with its own notify socket, events file and HTTP port."""

    def __init__(self, folder: Path, uri: str, **sections) -> None:
        self.folder, self.events = folder, folder / "events.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = {"source": {"uri": uri, "fps": 10, "loop": True, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0},
                  "events": {"file": str(self.events), "heartbeat_s": 1.0},
                  "http": {"bind": f"127.0.0.1:{self.port}"}, "model": {"threads": 1}}
        for name, values in sections.items():
            config[name] = {**config.get(name, {}), **values}
        text = "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                       for name, values in config.items())
        (folder / "flowercam.toml").write_text(text)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(folder / "notify.sock"))
        self.notify.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowercam", "daemon", "--config", str(folder / "flowercam.toml")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            env={**os.environ, "NOTIFY_SOCKET": str(folder / "notify.sock"),
                 "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))})
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read_notify, daemon=True)
        self._reader.start()

    def _read_notify(self) -> None:
        while self.proc.poll() is None:
            try:
                self.messages.append((time.monotonic(), self.notify.recv(4096).decode()))
            except (TimeoutError, OSError):
                continue

    def wait_for(self, predicate, timeout: float = 60.0) -> float | None:
        """Seconds until ``predicate()`` held, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if predicate():
                return time.monotonic() - t0
            time.sleep(0.05)
        return None

    def text(self) -> str:
        return self.events.read_text() if self.events.exists() else ""

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, float]:
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:
                response.read()
                return response.status, time.monotonic() - t0
        except OSError:
            return 0, time.monotonic() - t0

    def stop(self) -> dict:
        """SIGTERM; the exit, stop time, and the state of the events in the file and on stdout (the journal)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        stop_s = time.monotonic() - t0
        self._reader.join(timeout=2)
        self.notify.close()
        ready = next((t for t, m in self.messages if "READY=1" in m), None)
        marks = [] if ready is None else [ready, *(t for t, m in self.messages if "WATCHDOG=1" in m and t >= ready), t0]
        gaps = [b - a for a, b in zip(marks, marks[1:])]  # from READY to the SIGTERM
        file_lines, journal_lines = self.text().splitlines(), out.splitlines()
        return {"exit": self.proc.returncode, "stop_s": round(stop_s, 2),
                "watchdog_max_gap_s": round(max(gaps), 2) if gaps else None,
                "corrupted": _unparseable(file_lines) + _unparseable(journal_lines),
                "stop_event": bool(journal_lines) and '"stop"' in journal_lines[-1],
                "stopping_sent": any("STOPPING=1" in m for _, m in self.messages),
                "journal_events": len(journal_lines), "traceback": "Traceback" in err}


def _unparseable(lines: list[str]) -> int:
    bad = 0
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            bad += 1
    return bad


def make_video(path: Path) -> Path:
    """A 4-second MJPG clip of the bundled sample photo and its mirror image."""
    import cv2
    import numpy as np
    from PIL import Image

    photo = np.asarray(Image.open("device/flowercam/samples/image_01315.jpg").convert("RGB").resize((320, 240)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(100):
        writer.write(np.ascontiguousarray((photo if i < 50 else photo[:, ::-1])[..., ::-1]))
    writer.release()
    return path


def stalled_stream(tmp: Path, video: Path) -> dict:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    run = Run(tmp / "stalled", f"rtsp://127.0.0.1:{silent.getsockname()[1]}/stream")
    time.sleep(20)
    retries = run.text().count('"retry"')
    result = run.stop()
    silent.close()
    return {**result, "note": f"open gave up and retried {retries} times in 20 s; still running", "recover_s": None}


def source_loss(tmp: Path, video: Path) -> dict:
    clip = tmp / "loss.avi"
    shutil.copy(video, clip)
    run = Run(tmp / "loss", str(clip))
    run.wait_for(lambda: '"label"' in run.text())
    clip.unlink()
    run.wait_for(lambda: '"outage_s"' in run.text())
    time.sleep(3)
    shutil.copy(video, clip)
    connected = run.text().count('"connected"')
    recover = run.wait_for(lambda: run.text().count('"connected"') > connected)
    result = run.stop()
    return {**result, "recover_s": round(recover, 2) if recover is not None else None,
            "note": "file removed for ~4 s: heartbeats report the outage, then it reconnects"}


def disk_full(tmp: Path, video: Path) -> dict:
    run = Run(tmp / "full", str(video), smoothing={"window": 1, "enter": 0.0, "stay": 0.0})
    run.wait_for(lambda: run.events.exists() and run.events.stat().st_size > 2000)
    limits = resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE, (run.events.stat().st_size + 200, limits[1]))
    time.sleep(3)
    size_full = run.events.stat().st_size
    resource.prlimit(run.proc.pid, resource.RLIMIT_FSIZE, limits)  # space returns
    recover = run.wait_for(lambda: '"recovered"' in run.text())
    alive = run.proc.poll() is None
    result = run.stop()
    return {**result, "recover_s": round(recover, 2) if recover is not None else None,
            "note": f"file stuck at {size_full} bytes for 3 s (the journal kept every event); still running: {alive}"}


def sigterm_at_random(tmp: Path, video: Path, times: int = 20) -> dict:
    rng = random.Random(0)
    results = []
    for i in range(times):
        run = Run(tmp / f"term{i}", str(video))
        time.sleep(rng.uniform(0.0, 3.0))  # from start-up (still importing) to classifying
        results.append(run.stop())
    return {"exit": sorted({r["exit"] for r in results}), "stop_s": max(r["stop_s"] for r in results),
            "watchdog_max_gap_s": max((r["watchdog_max_gap_s"] or 0) for r in results),
            "corrupted": sum(r["corrupted"] for r in results),
            "stop_event": sum(r["stop_event"] for r in results), "traceback": any(r["traceback"] for r in results),
            "recover_s": None, "note": f"{times} runs stopped 0-3 s after start: exit codes and the slowest stop; "
            f"{sum(r['stop_event'] for r in results)} of them had got as far as the events"}


def http_clients(tmp: Path, video: Path) -> dict:
    run = Run(tmp / "http", str(video))
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    for _ in range(20):  # aborted mid-request
        s = socket.create_connection(("127.0.0.1", run.port))
        s.sendall(b"GET /metr")
        s.close()
    slow = socket.create_connection(("127.0.0.1", run.port))
    slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
    times: list[float] = []
    failed: list[int] = []

    def client() -> None:
        for _ in range(10):
            status, seconds = run.get("/metrics")
            times.append(seconds)
            failed.extend([1] if status != 200 else [])

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slow.close()
    times.sort()
    result = run.stop()
    return {**result, "recover_s": None,
            "note": f"20 aborted requests, 1 stalled client, 20 concurrent clients × 10 requests: p50 "
            f"{times[len(times) // 2] * 1e3:.0f} ms, p99 {times[int(len(times) * 0.99) - 1] * 1e3:.0f} ms, "
            f"{len(failed)} failed"}


def idle_connections(tmp: Path, video: Path) -> dict:
    run = Run(tmp / "idle", str(video))
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    idle = [socket.create_connection(("127.0.0.1", run.port)) for _ in range(200)]
    served = run.wait_for(lambda: run.get("/metrics", timeout=2)[0] == 200, timeout=30)
    threads = int(Path(f"/proc/{run.proc.pid}/status").read_text().split("Threads:")[1].split()[0])
    for s in idle:
        s.close()
    result = run.stop()
    return {**result, "recover_s": round(served, 2) if served is not None else None,
            "note": f"200 idle connections: /metrics served again after the time shown; {threads} threads"}


def reload_under_load(tmp: Path, video: Path, times: int = 20) -> dict:
    """SIGHUP 20 times while the daemon classifies at its fps cap: frames missed against the cap, errors."""
    run = Run(tmp / "reload", str(video), source={"fps": 10})
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    time.sleep(1.0)
    start_inferences = _inferences(run)
    t0 = time.monotonic()
    for _ in range(times):
        run.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    done = _inferences(run) - start_inferences
    reloads = [json.loads(line) for line in run.text().splitlines() if '"reload"' in line]
    result = run.stop()
    expected = round(elapsed * 10)
    return {**result, "recover_s": None,
            "note": f"{len(reloads)} reloads ({sum(r['ok'] for r in reloads)} ok) in {elapsed:.0f} s at fps 10: "
            f"{done} frames classified, {max(0, expected - done)} missed against the cap of {expected}"}


def slow_loris(tmp: Path, video: Path, clients: int = 32) -> dict:
    """32 clients sending one byte a second: /metrics latency meanwhile, and whether any got a page."""
    run = Run(tmp / "loris", str(video))
    run.wait_for(lambda: run.get("/healthz")[0] == 200)
    served, t0 = [], time.monotonic()

    def loris() -> None:
        with socket.create_connection(("127.0.0.1", run.port)) as conn:
            try:
                for byte in b"GET /latest HTTP/1.0\r\n\r\n":
                    conn.sendall(bytes([byte]))
                    time.sleep(1.0)
                served.append(b"200" in conn.recv(100))
            except OSError:
                served.append(False)

    threads = [threading.Thread(target=loris) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    times = sorted(run.get(path)[1] for _ in range(10) for path in ("/metrics", "/healthz"))
    for t in threads:
        t.join(timeout=60)
    held = time.monotonic() - t0
    result = run.stop()
    return {**result, "recover_s": None,
            "note": f"{clients} one-byte-a-second clients: /metrics and /healthz p50 "
                    f"{times[len(times) // 2] * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms; {sum(served)} of them "
                    f"served; all cut within {held:.0f} s"}


def bad_frame(tmp: Path, video: Path) -> dict:
    """A video with one random-bytes frame, looped: frames skipped and counted, no reconnect."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.test_hardening import _video_with_a_bad_frame

    clip = _video_with_a_bad_frame(tmp / "bad.avi", frames=89, bad=10)
    run = Run(tmp / "badframe", str(clip), source={"fps": 30})
    time.sleep(12)
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    bad = next(line.split()[1] for line in metrics.splitlines() if line.startswith("flowercam_frames_bad_total "))
    retries = run.text().count('"retry"')
    result = run.stop()
    return {**result, "recover_s": None,
            "note": f"one undecodable frame in 89, looped for 12 s: {bad} frames skipped and counted, {retries} "
                    "reconnects"}


def huge_frames(tmp: Path, video: Path) -> dict:
    """8000×8000 frames: shrunk as captured; peak RSS and the watchdog gap."""
    import cv2
    import numpy as np

    clip = tmp / "huge.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 2, (8000, 8000))
    for i in range(4):
        writer.write(np.full((8000, 8000, 3), 40 * i, np.uint8))
    writer.release()
    run = Run(tmp / "huge", str(clip), source={"fps": 2})
    time.sleep(15)
    beats = [json.loads(line) for line in run.text().splitlines() if '"heartbeat"' in line]
    result = run.stop()
    peak = max((b["peak_rss_mb"] for b in beats), default=None)
    return {**result, "recover_s": None,
            "note": f"8000×8000 MJPG frames for 15 s: peak RSS {peak} MB (frames shrunk to 2048 px as captured)"}


def one_shot(folder: Path, config: str, check: bool = False, env: dict | None = None,
             timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    folder.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "flowercam", "daemon", "--config", config, *(["--check-config"] if check else [])]
    t0 = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return done, time.monotonic() - t0


def _refused(done: subprocess.CompletedProcess, seconds: float, note: str) -> dict:
    lines = done.stderr.strip().splitlines()
    return {"exit": done.returncode, "stop_s": round(seconds, 2), "watchdog_max_gap_s": None, "corrupted": 0,
            "stop_event": '"stop"' in done.stdout, "traceback": "Traceback" in done.stderr, "recover_s": None,
            "note": f"{note}: {lines[-1][:160] if lines else ''} ({len(lines)} line)"}


def corrupt_model(tmp: Path, video: Path) -> dict:
    """A model with one byte changed and its sidecar rewritten to match: the daemon refuses it in one line,
    exit 2 (systemd does not restart it: RestartPreventExitStatus=2)."""
    import dataclasses

    from flowercam.model.sidecar import BUNDLED_MODEL, read_sidecar, sha256_file, write_sidecar

    folder = tmp / "corrupt"
    folder.mkdir()
    model = folder / "m.tflite"
    data = bytearray(BUNDLED_MODEL.read_bytes())
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(bytes(data), 0)
    offset = root.Subgraphs(0).Operators(0)._tab.Pos  # an operator table: its fields are indices
    data[offset + 4] ^= 0x55
    model.write_bytes(bytes(data))
    write_sidecar(model, dataclasses.replace(read_sidecar(BUNDLED_MODEL), sha256=sha256_file(model)))
    config = folder / "flowercam.toml"
    config.write_text(f'[model]\npath = "{model}"\n[source]\nuri = "{video}"\n')
    done, seconds = one_shot(folder, str(config))
    return _refused(done, seconds, "start refused")


def secret_in_uri(tmp: Path, video: Path) -> dict:
    """A stream URL whose password holds # (unencoded): it never shows in events, the journal or stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = Run(tmp / "secret", f"http://camuser:Sup3r#S3cretPW@127.0.0.1:{port}/stream.mjpg")
    time.sleep(6)
    run.proc.send_signal(signal.SIGTERM)
    out, err = run.proc.communicate(timeout=60)
    leaked = sum(text.count("S3cretPW") + text.count("Sup3r") for text in (out, err, run.text()))
    run.notify.close()
    return {"exit": run.proc.returncode, "stop_s": None, "watchdog_max_gap_s": None, "corrupted": 0,
            "stop_event": '"stop"' in out, "traceback": "Traceback" in err, "recover_s": None,
            "note": f"password with # in the URL, source retrying for 6 s: {leaked} appearances of it in events, "
                    "journal and stderr"}


def port_taken(tmp: Path, video: Path) -> dict:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        folder = tmp / "port"
        folder.mkdir()
        config = folder / "flowercam.toml"
        config.write_text(f'[source]\nuri = "{video}"\n[http]\nbind = "127.0.0.1:{taken.getsockname()[1]}"\n')
        done, seconds = one_shot(folder, str(config))
    return _refused(done, seconds, "start refused, no stop event without a start")


def config_device(tmp: Path, video: Path) -> dict:
    done, seconds = one_shot(tmp / "zero", "/dev/zero", check=True, timeout=30)
    return _refused(done, seconds, "--check-config /dev/zero")


def _inferences(run: Run) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("flowercam_inferences_total ")))


FAULTS = {"stalled stream": stalled_stream, "source lost and back": source_loss, "disk full and back": disk_full,
          "SIGTERM at random times ×20": sigterm_at_random,
          "reload (SIGHUP) ×20 under load": reload_under_load,
          "slow and aborted HTTP clients": http_clients, "200 idle connections": idle_connections,
          "32 one-byte-a-second clients": slow_loris, "an undecodable frame in the video": bad_frame,
          "8000×8000 frames": huge_frames, "corrupted model, sidecar matching": corrupt_model,
          "a password with # in the stream URL": secret_in_uri, "status port already taken": port_taken,
          "config file is /dev/zero": config_device}


def main(out: Path = Path("bench/results")) -> None:
    from learning_faults import LEARNING_FAULTS
    from sightings_faults import SIGHTINGS_FAULTS

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "garden.avi")
        for name, fault in {**FAULTS, **LEARNING_FAULTS, **SIGHTINGS_FAULTS}.items():
            print(f"== {name}", flush=True)
            results[name] = fault(Path(tmp), video)
            print(json.dumps(results[name]), flush=True)
    data = {"machine": machine_info(), "watchdog_s": WATCHDOG_S, "faults": results}
    write_results(out, "faults", data, render)


def render(data: dict) -> str:
    """faults.md from faults.json."""
    lines = ["# Faults against the daemon\n", header_markdown(data["machine"]),
             f"Each fault is run against a real `flowercam daemon` (bundled model, an MJPG video through OpenCV, "
             f"`WATCHDOG_USEC` = {data['watchdog_s']:g} s over a real notify socket, HTTP on loopback). *Watchdog "
             "max gap*: the longest time without `WATCHDOG=1` after READY (systemd kills past `WatchdogSec`, 30 s in "
             "the unit). *Corrupted*: lines of the events file or of stdout (the journal) that are not whole JSON "
             "(must be 0). *Stop*: seconds from SIGTERM to exit.\n",
             "| fault | exit | stop s | watchdog max gap s | corrupted | stop event | traceback | recover s | "
             "what happened |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in data["faults"].items():
        recover = "–" if r.get("recover_s") is None else f"{r['recover_s']}"
        lines.append(f"| {name} | {r['exit']} | {r['stop_s']} | {r['watchdog_max_gap_s']} | {r['corrupted']} | "
                     f"{r['stop_event']} | {'yes' if r['traceback'] else 'no'} | {recover} | {r['note']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
