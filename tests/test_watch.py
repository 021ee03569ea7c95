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
