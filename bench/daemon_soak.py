"""The daemon for N minutes on a looping video file with the bundled model: fps, CPU %, RSS per minute.

The video is made from test-split photos of the dataset (30 photos, 2 s each). Usage:
python bench/daemon_soak.py [--minutes 10] [--data DIR]  ->  bench/results/daemon_soak.{json,md}
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).parent))
from machine import header_markdown, machine_info, write_results  # noqa: E402


def make_video(path: Path, photos: list[Path], fps: int = 10, seconds_each: int = 2) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for photo in photos:
        frame = np.asarray(Image.open(photo).convert("RGB").resize((640, 480)))[..., ::-1].copy()
        for _ in range(fps * seconds_each):
            writer.write(frame)
    writer.release()


def sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used, current RSS MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    return cpu, rss


def main(minutes: float = 10.0, fps: float = 5.0, data: Annotated[Path | None, typer.Option(
        envvar="FLOWERCAM_DATA")] = None, out: Path = Path("bench/results")) -> None:
    from build_models.data import load_flowers102

    test = load_flowers102(data).test
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_video(tmp / "garden.avi", [s.path for s in test[:: len(test) // 30][:30]])
        config = tmp / "flowercam.toml"
        config.write_text(f'[model]\nthreads = 2\n[source]\nuri = "{tmp / "garden.avi"}"\nfps = {fps}\nloop = true\n'
                          f'[events]\nfile = "{tmp / "events.jsonl"}"\nheartbeat_s = 60.0\n')
        proc = subprocess.Popen([sys.executable, "-m", "flowercam", "daemon", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples, start = [], time.monotonic()
        last_cpu, last_t = 0.0, start
        try:
            for minute in range(1, int(minutes) + 1):
                time.sleep(max(0.0, start + 60 * minute - time.monotonic()))
                cpu, rss = sample(proc.pid)
                now = time.monotonic()
                samples.append({"minute": minute, "rss_mb": round(rss, 1),
                                "cpu_percent": round(100 * (cpu - last_cpu) / (now - last_t), 1)})
                last_cpu, last_t = cpu, now
                print(samples[-1], flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        events = [json.loads(line) for line in (tmp / "events.jsonl").read_text().splitlines()]
    beats = [e for e in events if e["event"] == "heartbeat"]
    labels = [e for e in events if e["event"] == "label"]
    result = {"minutes": minutes, "fps_cap": fps, "exit_code": proc.returncode, "samples": samples,
              "heartbeats": beats, "label_events": len(labels),
              "rss_growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 1), "machine": machine_info(),
              "stderr_tail": err.splitlines()[-5:]}
    write_results(out, "daemon_soak", result, render, show=False)


def render(result: dict) -> str:
    """daemon_soak.md from daemon_soak.json."""
    beats, samples, minutes, fps = result["heartbeats"], result["samples"], result["minutes"], result["fps_cap"]
    mean_fps = sum(b["fps"] for b in beats) / max(len(beats), 1)
    mean_ms = sum(b["mean_inference_ms"] for b in beats) / max(len(beats), 1)
    lines = [f"# The daemon for {minutes:g} minutes on a looping video (bundled model, fps cap {fps:g})\n",
             header_markdown(result["machine"]),
             f"\nSustained {mean_fps:.2f} fps (heartbeat mean), inference {mean_ms:.1f} ms mean, "
             f"peak RSS {max(b['peak_rss_mb'] for b in beats) if beats else 'n/a'} MB, "
             f"RSS minute 1 → {samples[-1]['minute']}: {samples[0]['rss_mb']} → {samples[-1]['rss_mb']} MB "
             f"({result['rss_growth_mb']:+} MB), {result['label_events']} label changes, exit code "
             f"{result['exit_code']} after SIGTERM.\n", "| minute | RSS MB | CPU % (of one core) |", "|---|---|---|"]
    lines += [f"| {s['minute']} | {s['rss_mb']} | {s['cpu_percent']} |" for s in samples]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    typer.run(main)
