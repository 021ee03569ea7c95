"""MQTT against a real broker (Debian's mosquitto, on 127.0.0.1): Home Assistant discovery, availability with a
last will, state and snapshot messages, and a broker restart in the middle."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import daemon_config, events_of, free_port, start_daemon, wait_for


def _mosquitto() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if path is None:
        pytest.skip("no mosquitto broker here: apt install mosquitto (.ci/run does)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (the mqtt extra)")
    return path


class Broker:
    """mosquitto on a loopback port, restartable."""

    def __init__(self, folder: Path) -> None:
        self.binary, self.port = _mosquitto(), free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Listener:
    """A subscriber to everything, reconnecting like any client would."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener")
        self.client.on_connect = lambda client, *_: client.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((time.monotonic(), message.topic, message.payload, bool(message.retain)))

    def topics(self, suffix: str) -> list[tuple[float, str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[1].endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_home_assistant_discovery_state_and_a_broker_restart(tmp_path, tiny_model, video):
    broker = Broker(tmp_path)
    broker.start()
    listener = Listener(broker.port)
    events = tmp_path / "events.jsonl"
    proc = start_daemon(daemon_config(tmp_path, tiny_model, video, smoothing={"window": 1, "enter": 0.0, "stay": 0.0},
                                      mqtt={"host": "127.0.0.1", "port": broker.port, "topic_prefix": "test/cam"}))
    try:
        assert wait_for(lambda: len(listener.topics("/config")) >= 5, 30)
        assert wait_for(lambda: any(m[2] == b"online" for m in listener.topics("availability")))
        assert wait_for(lambda: len(listener.topics("test/cam/state")) >= 2)
        assert wait_for(lambda: listener.topics("test/cam/snapshot"))
        broker.stop()  # the broker goes away for a while ...
        time.sleep(2.0)
        assert proc.poll() is None  # ... and the daemon does not care
        restarted = time.monotonic()
        broker.start()
        assert wait_for(lambda: any(m[0] > restarted and m[2] == b"online" for m in listener.topics("availability")),
                        45), "no 'online' after the broker restart"
        assert wait_for(lambda: any(m[0] > restarted for m in listener.topics("test/cam/state")), 30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        late = Listener(broker.port)  # a client that comes later gets the retained messages
        assert wait_for(lambda: len(late.topics("/config")) >= 5 and late.topics("availability"), 10)
        assert all(m[3] for m in late.topics("/config")) and late.topics("availability")[-1][2:] == (b"offline", True)
        assert late.topics("test/cam/state") and late.topics("test/cam/state")[-1][3]
        late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
        broker.stop()
    assert proc.returncode == 0 and "Traceback" not in err
    configs = {m[1]: json.loads(m[2]) for m in listener.topics("/config")}
    label = next(c for t, c in configs.items() if t.startswith("homeassistant/sensor/") and t.endswith("/label/config"))
    assert label["state_topic"] == "test/cam/state" and label["availability_topic"] == "test/cam/availability"
    assert label["value_template"] == "{{ value_json.label }}" and label["device"]["manufacturer"] == "flowercam"
    assert any(t.startswith("homeassistant/camera/") for t in configs)
    state = json.loads(listener.topics("test/cam/state")[-1][2])
    assert {"label", "confidence", "uncertain", "since", "fps", "source"} <= set(state)
    states = [json.loads(m[2]) for m in listener.topics("test/cam/state")]
    assert all(isinstance(s["fps"], float) for s in states[1:]), [s["fps"] for s in states]  # never null (unknown)
    assert listener.topics("test/cam/snapshot")[0][2][:3] == b"\xff\xd8\xff"
    assert listener.topics("availability")[-1][2] == b"offline"  # a clean stop says so
    stop = events_of(events)[-1]
    assert stop["event"] == "stop" and stop["mqtt"]["connects"] >= 2 and stop["mqtt"]["disconnects"] >= 1


def test_a_reload_that_changes_mqtt_reconnects_with_the_new_settings(tmp_path, tiny_model, video):
    """[mqtt] changes are applied on SIGHUP: the old topics go offline, the new ones come online and get state."""
    broker = Broker(tmp_path)
    broker.start()
    listener = Listener(broker.port)
    config = daemon_config(tmp_path, tiny_model, video, smoothing={"window": 1, "enter": 0.0, "stay": 0.0},
                           mqtt={"host": "127.0.0.1", "port": broker.port, "topic_prefix": "old/cam"})
    proc = start_daemon(config)
    try:
        assert wait_for(lambda: listener.topics("old/cam/state"), 30)
        config.write_text(config.read_text().replace('"old/cam"', '"new/cam"'))
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: listener.topics("new/cam/state"), 30)
        assert wait_for(lambda: any(m[2] == b"offline" for m in listener.topics("old/cam/availability")), 10)
        assert any(m[2] == b"online" for m in listener.topics("new/cam/availability"))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
        broker.stop()
    reload = next(e for e in events_of(tmp_path / "events.jsonl") if e["event"] == "reload")
    assert reload["applied"] == ["mqtt.topic_prefix"] and reload["restart_needed_for"] == []


def test_the_season_reaches_home_assistant(tmp_path, learning_model):
    """With [sightings] on, the season's record is published retained on …/season at each heartbeat, with a
    discovery sensor "flowers seen today" reading it."""
    from tests.test_sightings import _three_species

    broker = Broker(tmp_path)
    broker.start()
    listener = Listener(broker.port)
    proc = start_daemon(daemon_config(tmp_path, learning_model, _three_species(tmp_path), source={"fps": 20},
                                      smoothing={"window": 1, "enter": 0.3, "stay": 0.3},
                                      model={"uncertain_below": 0.0}, sightings={"db": str(tmp_path / "s.db")},
                                      mqtt={"host": "127.0.0.1", "port": broker.port, "topic_prefix": "test/cam"}))
    try:
        def seen_today() -> list[str]:
            messages = listener.topics("test/cam/season")
            return json.loads(messages[-1][2])["seen_today"] if messages else []

        assert wait_for(lambda: len(seen_today()) == 3, 60), seen_today()
        late = Listener(broker.port)  # a client that comes later gets it at once: retained
        assert wait_for(lambda: late.topics("test/cam/season"), 10)
        assert late.topics("test/cam/season")[0][3]
        late.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        listener.close()
        broker.stop()
    record = json.loads(listener.topics("test/cam/season")[-1][2])
    assert set(record["classes"]) == set(record["seen_today"]) and all(
        c["seen_today"] and c["first_seen"] == c["last_seen"] for c in record["classes"].values())
    configs = {m[1]: json.loads(m[2]) for m in listener.topics("/config")}
    sensor = next(c for t, c in configs.items() if t.endswith("/seen_today/config"))
    assert sensor["state_topic"] == "test/cam/season" and "seen_today | length" in sensor["value_template"]
