"""What a reload changes: every setting of every section is either applied or named as needing a restart (and
then kept at its running value), and the reload event says which; then the real daemon, under SIGHUP."""

from __future__ import annotations

import signal
import time
import urllib.request
from dataclasses import fields, replace

import pytest
from flowercam.daemon.config import Config
from flowercam.daemon.reloading import RESTART_NEEDED, plan_reload

from tests.helpers import daemon_config, events_of, free_port, start_daemon, wait_for


def _other(value):
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return value + "-changed" if value else "changed"


SETTINGS = [(section.name, setting.name) for section in fields(Config)
            for setting in fields(getattr(Config(), section.name))]


@pytest.mark.parametrize("section, key", SETTINGS, ids=[f"{s}.{k}" for s, k in SETTINGS])
def test_each_setting_is_applied_or_named_as_waiting_for_a_restart(section, key):
    running = Config()
    part = getattr(running, section)
    new = replace(running, **{section: replace(part, **{key: _other(getattr(part, key))})})
    plan = plan_reload(running, new)
    name = f"{section}.{key}"
    if name in RESTART_NEEDED:
        assert plan.restart_needed_for == (name,) and plan.applied == ()
        assert plan.config == running  # the running value stays in force until the restart
    else:
        assert plan.applied == (name,) and plan.restart_needed_for == ()
        assert plan.config == new and plan.changed(section)


def test_an_unchanged_config_changes_nothing():
    plan = plan_reload(Config(), Config())
    assert plan.applied == () and plan.restart_needed_for == () and plan.config == Config()


def test_the_daemon_applies_what_it_says_and_keeps_what_waits_for_a_restart(tmp_path, tiny_model, video):
    """SIGHUP with new heartbeat, smoothing, pace, events file and port: the heartbeats come at the new pace
    into the old file, the old port still answers and the new one is not opened, and the event says so."""
    port, other_port = free_port(), free_port()
    config = daemon_config(tmp_path, tiny_model, video, http={"bind": f"127.0.0.1:{port}"},
                           events={"heartbeat_s": 30.0}, source={"fps": 20})
    proc = start_daemon(config)
    events = tmp_path / "events.jsonl"
    try:
        assert wait_for(lambda: any(e["event"] == "label" for e in events_of(events)))
        text = config.read_text().replace("heartbeat_s = 30.0", "heartbeat_s = 0.3")
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{other_port}").replace('"fps": 20', '"fps": 10')
        text = text.replace("fps = 20", "fps = 10").replace(str(events), str(tmp_path / "elsewhere.jsonl"))
        config.write_text(text + "[smoothing]\nwindow = 3\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(e["event"] == "reload" for e in events_of(events)))
        reloaded_at = time.monotonic()
        assert wait_for(lambda: sum(e["event"] == "heartbeat" for e in events_of(events)) >= 3, timeout=20)
        heartbeat_wait = time.monotonic() - reloaded_at
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200  # the old port still serves
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{other_port}/metrics", timeout=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    reload = next(e for e in events_of(events) if e["event"] == "reload")
    assert reload["ok"] and set(reload["applied"]) == {"events.heartbeat_s", "source.fps", "smoothing.window"}
    assert set(reload["restart_needed_for"]) == {"events.file", "http.bind"}
    assert heartbeat_wait < 10  # at the new 0.3 s, not the old 30 s
    assert not (tmp_path / "elsewhere.jsonl").exists()  # the events file waits for the restart


def test_a_reload_that_changes_how_a_video_is_paced_reopens_it(tmp_path, tiny_model):
    """source.every_frame is applied by a reload as it says: the file is opened again with the new pacing (it was
    reported applied but kept the old pacing until the source happened to reopen)."""
    import cv2
    import numpy as np

    video = tmp_path / "half_a_minute.avi"  # 30 s at 2 fps, played once: it would not reopen by itself
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 2, (64, 48))
    for i in range(60):
        writer.write(np.full((48, 64, 3), 4 * i, np.uint8))
    writer.release()
    config = daemon_config(tmp_path, tiny_model, video, source={"every_frame": False, "loop": False},
                           smoothing={"window": 1, "enter": 0.0, "stay": 0.0})
    proc = start_daemon(config)
    events = tmp_path / "events.jsonl"
    try:
        assert wait_for(lambda: any(e["event"] == "label" for e in events_of(events)))
        config.write_text(config.read_text().replace("every_frame = false", "every_frame = true"))
        before = sum(e["event"] == "source" and e["state"] == "connected" for e in events_of(events))
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(e["event"] == "reload" for e in events_of(events)))
        assert wait_for(lambda: sum(e["event"] == "source" and e["state"] == "connected"
                                    for e in events_of(events)) > before, timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    reload = next(e for e in events_of(events) if e["event"] == "reload")
    assert reload["ok"] and reload["applied"] == ["source.every_frame"]
