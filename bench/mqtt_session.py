"""One MQTT session of the daemon against a real mosquitto broker, logged: the Home Assistant discovery payloads,
the message sequence (with a broker restart in the middle), and the daemon's own counts of messages published and
dropped and of (re)connections.

Usage: python bench/mqtt_session.py  ->  bench/results/mqtt.{json,md}
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from faults import make_video  # noqa: E402
from machine import header_markdown, machine_info, write_results  # noqa: E402

from tests.helpers import daemon_config, events_of, start_daemon, wait_for  # noqa: E402
from tests.test_mqtt import Broker, Listener  # noqa: E402


def main(out: Path = Path("bench/results")) -> None:
    from flowercam.model.sidecar import BUNDLED_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = make_video(folder / "garden.avi")
        broker = Broker(folder)
        broker.start()
        listener = Listener(broker.port)
        t0 = time.monotonic()
        proc = start_daemon(daemon_config(folder, BUNDLED_MODEL, video, source={"fps": 5},
                                          events={"heartbeat_s": 2.0},
                                          mqtt={"host": "127.0.0.1", "port": broker.port,
                                                "topic_prefix": "flowercam/garden-pi"}))
        wait_for(lambda: len(listener.topics("/state")) >= 3, 60)
        timeline = [(time.monotonic() - t0, "broker stopped")]
        broker.stop()
        time.sleep(5)
        timeline.append((time.monotonic() - t0, "broker started"))
        broker.start()
        restarted = time.monotonic()
        wait_for(lambda: any(m[0] > restarted and m[2] == b"online" for m in listener.topics("/availability")), 60)
        timeline.append((time.monotonic() - t0, "daemon reconnected ('online')"))
        time.sleep(5)  # two heartbeats
        timeline.append((time.monotonic() - t0, "daemon stopped (SIGTERM)"))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        time.sleep(0.5)
        listener.close()
        broker.stop()
        stop = events_of(folder / "events.jsonl")[-1]
    messages = [{"t": round(m[0] - t0, 2), "topic": m[1], "bytes": len(m[2]),
                 "payload": m[2].decode() if not m[1].endswith("/snapshot") else "<JPEG>"} for m in listener.messages]
    discovery = {m["topic"]: json.loads(m["payload"]) for m in messages if m["topic"].endswith("/config")}
    data = {"machine": machine_info(), "discovery": discovery, "messages": messages,
            "timeline": [{"t": round(t, 2), "what": what} for t, what in timeline], "daemon_counts": stop["mqtt"]}
    write_results(out, "mqtt", data, render)


def render(data: dict) -> str:
    """mqtt.md from mqtt.json."""
    counts = data["daemon_counts"]
    lines = ["# MQTT session with Home Assistant discovery\n", header_markdown(data["machine"]),
             "The daemon (bundled model, a video of the sample photo) against a real mosquitto broker on 127.0.0.1, "
             "seen by a subscriber to `#`; the broker is stopped for 5 s in the middle. Command: "
             "`python bench/mqtt_session.py`.\n",
             f"**Daemon's counts** (its `stop` event): {counts['published']} messages published while connected, "
             f"{counts['queued']} queued while the broker was away (sent when it came back), {counts['dropped']} "
             f"dropped; {counts['connects']} connections ({counts['connects'] - 1} reconnections after "
             f"{counts['disconnects']} disconnections).\n", "## What happened\n"]
    lines += [f"- {t['t']:.1f} s: {t['what']}" for t in data["timeline"]]
    lines += ["\n## Discovery payloads (retained)\n"]
    for topic, payload in data["discovery"].items():
        lines += [f"`{topic}`", "```json", json.dumps(payload, indent=1), "```"]
    lines += ["\n## Message sequence (as the subscriber saw it)\n", "| t s | topic | bytes | payload |",
              "|---|---|---|---|"]
    for m in data["messages"]:
        payload = m["payload"] if len(m["payload"]) <= 90 else m["payload"][:87] + "..."
        payload = payload.replace("|", "\\|")
        lines.append(f"| {m['t']:.2f} | `{m['topic']}` | {m['bytes']} | {payload} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
