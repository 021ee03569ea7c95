"""MQTT for the daemon, with Home Assistant's MQTT discovery (paho-mqtt, the ``mqtt`` extra).

Topics under ``topic_prefix`` (default ``flowercam/<hostname>``):

- ``…/availability``: ``online`` while connected; ``offline`` on a clean stop and, as the broker's last will, when
  the daemon vanishes;
- ``…/state``: JSON ``{label, confidence, uncertain, since, fps, source}`` on every label change and heartbeat;
- ``…/snapshot``: the JPEG frame of each label change (a Home Assistant camera entity);
- ``…/season`` (with ``[sightings]`` on, retained, at each heartbeat): JSON ``{year, seen_today: [...], classes:
  {label: {first_seen, last_seen, seen_today}}}``.

With ``discovery_prefix`` set, the entities are announced (retained) on each connection: sensors for the label,
the calibrated confidence and the fps, a binary sensor for "uncertain", the camera, and "flowers seen today" (how
many kinds, the season's record as its attributes). paho reconnects by itself
(1 s to 30 s backoff); messages published while the broker is away are queued (at most
:data:`MAX_QUEUED`) and counted as dropped beyond that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from pathlib import Path

from .. import __version__
from .config import ConfigError, MqttConfig

log = logging.getLogger(__name__)
MAX_QUEUED = 200


class MqttPublisher:
    """One connection to the broker for the daemon's life (reconnected by paho)."""

    def __init__(self, config: MqttConfig, model_name: str) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise ConfigError("[mqtt] needs paho-mqtt: pip install 'flowercam[mqtt]'") from None
        self.config = config
        host = socket.gethostname()
        self.node = "".join(c if c.isalnum() else "_" for c in host).lower() or "flowercam"
        self.prefix = (config.topic_prefix or f"flowercam/{host}").rstrip("/")
        self.model_name = model_name
        self.lock = threading.Lock()
        self.stats = {"published": 0, "queued": 0, "dropped": 0, "connects": 0, "disconnects": 0}
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"flowercam-{self.node}")
        if config.username:
            password = Path(config.password_file).read_text().strip() if config.password_file else None
            client.username_pw_set(config.username, password)
        if config.tls_ca:
            client.tls_set(ca_certs=config.tls_ca)
        client.will_set(self.topic("availability"), "offline", qos=config.qos, retain=True)
        client.reconnect_delay_set(1, 30)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client
        client.connect_async(config.host, config.port, keepalive=30)
        client.loop_start()

    def topic(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.config.host, reason_code)
            return
        with self.lock:
            self.stats["connects"] += 1
        log.info("MQTT connected to %s:%s", self.config.host, self.config.port)
        if self.config.discovery_prefix:
            for kind, object_id, payload in self.discovery():
                self._publish(f"{self.config.discovery_prefix}/{kind}/{self.node}/{object_id}/config",
                              json.dumps(payload), retain=True)
        self._publish(self.topic("availability"), "online", retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.lock:
            self.stats["disconnects"] += 1
        if reason_code != 0:
            log.warning("MQTT connection to %s lost (%s); reconnecting", self.config.host, reason_code)

    def discovery(self) -> list[tuple[str, str, dict]]:
        """Home Assistant discovery messages: (component, object id, config payload)."""
        device = {"identifiers": [f"flowercam_{self.node}"], "name": f"flowercam {self.node}",
                  "manufacturer": "flowercam", "model": self.model_name, "sw_version": __version__}
        common = {"availability_topic": self.topic("availability"), "device": device}
        state = self.topic("state")

        def entity(object_id: str, name: str, **extra) -> dict:
            return {"name": name, "unique_id": f"flowercam_{self.node}_{object_id}",
                    "object_id": f"flowercam_{self.node}_{object_id}", **common, **extra}

        return [
            ("sensor", "label", entity("label", "Flower", state_topic=state, value_template="{{ value_json.label }}",
                                       icon="mdi:flower")),
            ("sensor", "confidence", entity("confidence", "Confidence", state_topic=state, unit_of_measurement="%",
                                            value_template="{{ (value_json.confidence * 100) | round(1) }}")),
            ("binary_sensor", "uncertain", entity("uncertain", "Uncertain", state_topic=state,
                                                  value_template="{{ 'ON' if value_json.uncertain else 'OFF' }}")),
            ("sensor", "fps", entity("fps", "Frames per second", state_topic=state, unit_of_measurement="fps",
                                     value_template="{{ value_json.fps }}", entity_category="diagnostic")),
            ("camera", "snapshot", entity("snapshot", "Last label change", topic=self.topic("snapshot"))),
            ("sensor", "seen_today", entity("seen_today", "Flowers seen today", state_topic=self.topic("season"),
                                            value_template="{{ value_json.seen_today | length }}",
                                            json_attributes_topic=self.topic("season"), icon="mdi:flower-tulip")),
        ]

    def _publish(self, topic: str, payload, retain: bool | None = None) -> None:
        import paho.mqtt.client as mqtt

        info = self.client.publish(topic, payload, qos=self.config.qos,
                                   retain=self.config.retain if retain is None else retain)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            kind = "published"
        elif info.rc == mqtt.MQTT_ERR_NO_CONN and self.config.qos > 0:
            kind = "queued"  # paho sends it once the broker is back
        else:
            kind = "dropped"  # QoS 0 while away, or the queue full
        with self.lock:
            self.stats[kind] += 1

    def state(self, **state) -> None:
        """The current label and figures, as JSON on ``…/state``."""
        self._publish(self.topic("state"), json.dumps(state))

    def season(self, record: dict) -> None:
        """The season's record, retained on ``…/season`` (a new subscriber gets it at once)."""
        self._publish(self.topic("season"), json.dumps(record), retain=True)

    def snapshot(self, jpeg: bytes) -> None:
        if self.config.snapshots:
            self._publish(self.topic("snapshot"), jpeg)

    def close(self) -> dict:
        """``offline``, then disconnect; returns the message counts."""
        info = self.client.publish(self.topic("availability"), "offline", qos=self.config.qos, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):  # never connected: nothing to say offline to
            info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()
        with self.lock:
            return dict(self.stats)
