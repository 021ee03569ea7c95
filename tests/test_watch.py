"""``flowercam watch`` and the OpenCV source on a real video file written by the test."""

from __future__ import annotations

import json

import cv2  # noqa: E402  (the camera extra is part of the test install: no skip)
import numpy as np
import pytest

from tests.helpers import run_cli


@pytest.fixture(scope="module")
def flower_video(tmp_path_factory, dataset_dir):
    """An MJPG .avi of the synthetic flower photos, 3 frames each."""
    from PIL import Image

    path = tmp_path_factory.mktemp("video") / "flowers.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    frames = 0
    for jpg in sorted((dataset_dir / "jpg").glob("*.jpg"))[:8]:
        image = np.asarray(Image.open(jpg).convert("RGB").resize((64, 48)))
        for _ in range(3):
            writer.write(image[..., ::-1].copy())
            frames += 1
    writer.release()
    assert path.stat().st_size > 1000
    return path, frames


def test_opencv_source_reads_every_frame_as_rgb(flower_video):
    from flowercam.sources import open_source

    path, frames = flower_video
    with open_source(str(path)) as source:
        assert source.live is False
        read = []
        while (frame := source.read()) is not None:
            read.append(frame)
    assert len(read) == frames and read[0].shape == (48, 64, 3) and read[0].dtype == np.uint8


def test_watch_classifies_a_video_file(flower_video, tiny_model):
    path, frames = flower_video
    done = run_cli("watch", "--source", str(path), "--model", str(tiny_model), "--fps", "100", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == frames
    assert all(r["label"].startswith("synthetic") and (r["fps"] is None) == (i == 0)  # no rate before two frames
               and r["latency_ms"]["inference"] > 0 for i, r in enumerate(rows))
    assert all(len(r["top_k"]) == 3 for r in rows)  # as classify --json gives


def test_watch_stops_after_max_frames_and_reports_missing_sources(flower_video, tiny_model, tmp_path):
    path, _ = flower_video
    done = run_cli("watch", "-s", str(path), "-m", str(tiny_model), "--fps", "100", "--max-frames", "4")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 4
    missing = run_cli("watch", "-s", str(tmp_path / "nope.avi"), "-m", str(tiny_model))
    assert missing.returncode == 1 and "cannot open" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_cli("watch", "-s", "opencv:x", "-m", str(tiny_model))
    assert bad.returncode == 2 and "expected opencv:N" in bad.stderr  # a usage error


def test_picamera_absent_is_a_clear_error(tiny_model):
    # No Pi camera exists here; this checks the message, not the camera.
    done = run_cli("watch", "-s", "picamera2", "-m", str(tiny_model))
    assert done.returncode == 1 and "picamera2" in done.stderr and "Traceback" not in done.stderr


def _clip(path, fps: int, frames: int):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (20 + 10 * i) % 256, np.uint8))
    writer.release()
    return path


def test_a_video_file_plays_at_its_own_speed(tmp_path, tiny_model):
    """A 2 fps video under --fps 5 gives 2 frames a second (it gave 5: faster than real time); a 25 fps one gives
    at most 5, dropping those between, as a camera; --every-frame classifies every frame at --fps."""
    import time

    slow = _clip(tmp_path / "two_fps.avi", 2, 6)  # 3 s of video
    start = time.monotonic()
    done = run_cli("watch", "-s", str(slow), "-m", str(tiny_model), "--fps", "5", "--json")
    took = time.monotonic() - start
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and len(rows) == 6, done.stderr
    assert rows[-1]["fps"] <= 2.1 and took >= 2.5  # frames at 0, 0.5, ... 2.5 s
    fast = _clip(tmp_path / "twentyfive_fps.avi", 25, 50)  # 2 s of video
    rows = [json.loads(line) for line in run_cli("watch", "-s", str(fast), "-m", str(tiny_model), "--fps", "5",
                                                  "--json").stdout.splitlines()]
    assert 8 <= len(rows) <= 11 and rows[-1]["fps"] <= 5.3
    even = _clip(tmp_path / "ten_fps.avi", 10, 10)  # its rate is the cap: every frame kept (video time decides)
    assert len(run_cli("watch", "-s", str(even), "-m", str(tiny_model), "--fps", "10", "--json").stdout.splitlines()) \
        == 10
    every = run_cli("watch", "-s", str(slow), "-m", str(tiny_model), "--fps", "20", "--every-frame", "--json")
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    assert len(rows) == 6 and rows[-1]["fps"] > 10
