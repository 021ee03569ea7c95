"""The daemon's configuration: TOML (``tomllib``) loaded into frozen dataclasses, checked once at start.

Unknown sections or keys and out-of-range values are rejected with the key's name.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import FlowercamError
from ..model.preprocess import CROP_SETS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(FlowercamError):
    """A bad configuration file; the message names the key."""


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # empty: the bundled model
    threads: int = 2
    edgetpu: bool = False
    uncertain_below: float = -1.0  # calibrated confidence under which a frame is "uncertain"; <0: the model's
    crops: str = ""  # "center", "multi" (centre, whole frame and four corners, averaged); empty: the model's
    adapter: str = ""  # an adapter from flowercam learn (e.g. /var/lib/flowercam/adapter.npz); empty: none


@dataclass(frozen=True)
class SourceConfig:
    uri: str = "picamera2"  # or "opencv:0", a video file, a stream URL
    fps: float = 5.0  # classify at most this often
    loop: bool = False  # a video file that ends starts again at once (demos, soak tests)
    every_frame: bool = False  # a video file's every frame in turn (as fast as fps allows), not at its own speed
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0


@dataclass(frozen=True)
class SmoothingConfig:
    window: int = 5  # frames averaged
    enter: float = 0.6  # a class is reported once its averaged confidence reaches this
    stay: float = 0.4  # ... and kept while it stays above this


@dataclass(frozen=True)
class EventsConfig:
    file: str = ""  # JSON Lines file; empty: stdout only
    heartbeat_s: float = 30.0
    snapshot_dir: str = ""  # JPEG of the frame when a new label is confirmed; empty: off
    snapshot_max: int = 200  # oldest deleted past this many


@dataclass(frozen=True)
class HttpConfig:
    bind: str = ""  # e.g. "127.0.0.1:8089"; empty: off. Beyond loopback only with allow_remote
    allow_remote: bool = False  # let bind name a non-loopback address (labelling then still needs the token)
    hosts: str = ""  # names the page is reached by besides localhost and IP addresses ("flowercam.local, pi"):
    # any other name in a request's Host header is refused (a web page's DNS rebinding never reaches the daemon)


@dataclass(frozen=True)
class ReviewConfig:
    dir: str = ""  # e.g. /var/lib/flowercam: frames for review in DIR/review, labelled ones in DIR/garden; empty: off
    every_s: float = 20.0  # keep at most one frame this often
    confident_every: int = 50  # besides the uncertain frames, keep one in this many confident ones
    quota_mb: float = 200.0  # the review queue's disk quota: oldest frames go first
    token_file: str = ""  # the labelling token (one line); empty: DIR/token, made at the first start


@dataclass(frozen=True)
class MqttConfig:
    host: str = ""  # the broker; empty: MQTT off (needs the mqtt extra: pip install 'flowercam[mqtt]')
    port: int = 1883
    username: str = ""
    password_file: str = ""  # a file holding the password, 0640 root:flowercam (install.sh writes it): the secret
    # stays out of the config, which people copy, paste into issues and keep in backups
    tls_ca: str = ""  # a CA certificate file: connect with TLS
    topic_prefix: str = ""  # empty: flowercam/<hostname>
    discovery_prefix: str = "homeassistant"  # Home Assistant's MQTT discovery; empty: no discovery messages
    qos: int = 1
    retain: bool = True  # state and snapshot messages are retained (a new subscriber sees the current label)
    snapshots: bool = True  # publish the frame of each label change (a Home Assistant camera entity)


@dataclass(frozen=True)
class SightingsConfig:
    db: str = ""  # the season's record, e.g. /var/lib/flowercam/sightings.db (SQLite); empty: off
    keep_days: float = 366.0  # sightings older than this are pruned (daily)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    sightings: SightingsConfig = field(default_factory=SightingsConfig)


_RANGES = {
    "model.threads": (1, 64), "model.uncertain_below": (-1.0, 1.0), "source.fps": (0.1, 120.0),
    "source.reconnect_initial_s": (0.01, 3600.0), "source.reconnect_max_s": (0.01, 86400.0),
    "smoothing.window": (1, 1000), "smoothing.enter": (0.0, 1.0), "smoothing.stay": (0.0, 1.0),
    "events.heartbeat_s": (0.1, 86400.0), "events.snapshot_max": (1, 1_000_000),
    "mqtt.port": (1, 65535), "mqtt.qos": (0, 2),
    "review.every_s": (0.0, 86400.0), "review.confident_every": (0, 1_000_000), "review.quota_mb": (1.0, 1e6),
    "sightings.keep_days": (1.0, 36500.0),
}


def _section(cls, name: str, values: dict):
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key} (valid: {', '.join(known)})")
        expected = type(getattr(cls(), key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            raise ConfigError(f"{name}.{key} must be {expected.__name__}, not {type(value).__name__}")
        low, high = _RANGES.get(f"{name}.{key}", (None, None))
        if low is not None and not low <= value <= high:
            raise ConfigError(f"{name}.{key} = {value} is out of range {low}..{high}")
        values = {**values, key: value}
    return cls(**values)


def parse_bind(bind: str, allow_remote: bool = False) -> tuple[str, int]:
    """``host:port`` -> (host, port); a loopback address unless ``allow_remote``."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"http.bind = {bind!r}: expected host:port, e.g. 127.0.0.1:8089")
    if host != "localhost" and not allow_remote:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(f"http.bind = {bind!r}: only loopback addresses (127.0.0.1, ::1, localhost), unless "
                              "http.allow_remote = true")
    return host, int(port)


MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; more is not one


def _read_bounded(path: Path) -> str:
    """The text of a regular file of at most MAX_CONFIG_BYTES (never a device, FIFO or socket: /dev/zero or a
    pipe would never end)."""
    import os
    import stat

    mode = os.stat(path).st_mode  # FileNotFoundError, PermissionError: the caller's
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path} is not a regular file (a device, pipe or socket): expected a TOML config file")
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 10} kB, not a config file")
    return data.decode("utf-8")


def load_config(path: str | Path) -> Config:
    """Read and check a TOML config file."""
    try:
        data = tomllib.loads(_read_bounded(Path(path)))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a config file") from None
    except OSError as err:  # permission denied, a path too long, ...
        raise ConfigError(f"cannot read config {str(path)[:200]}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    sections = {f.name: f.default_factory for f in fields(Config)}
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"unknown section [{sorted(unknown)[0]}] (valid: {', '.join(sections)})")
    config = Config(**{name: _section(type(factory()), name, data.get(name, {})) for name, factory in sections.items()})
    if config.smoothing.stay > config.smoothing.enter:
        raise ConfigError("smoothing.stay must not exceed smoothing.enter")
    if config.source.reconnect_initial_s > config.source.reconnect_max_s:
        raise ConfigError("source.reconnect_initial_s must not exceed source.reconnect_max_s")
    if config.http.bind:
        parse_bind(config.http.bind, config.http.allow_remote)
    if config.review.dir and not config.model.adapter:
        raise ConfigError("review.dir needs model.adapter: the file that learning from the review writes "
                          "(e.g. /var/lib/flowercam/adapter.npz)")
    for key in ("password_file", "tls_ca"):
        path = getattr(config.mqtt, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"mqtt.{key} = {path!r}: no such file")
    from ..sources import SourceError, check_uri

    try:
        check_uri(config.source.uri)
    except SourceError as err:
        raise ConfigError(f"source.uri: {err}") from None
    if config.model.crops not in ("", *CROP_SETS):
        raise ConfigError(f"model.crops = {config.model.crops!r}: expected one of {', '.join(CROP_SETS)} "
                          "(or empty for the model's default)")
    return config


def network_peers(config: Config) -> list[str]:
    """What the config reaches beyond loopback (the unit allows only loopback: these need a drop-in)."""
    from urllib.parse import urlsplit

    peers = []
    host = urlsplit(config.source.uri).hostname if "://" in config.source.uri else None
    if host and not _loopback(host):
        peers.append(f"the camera at {host}")
    if config.mqtt.host and not _loopback(config.mqtt.host):
        peers.append(f"the MQTT broker {config.mqtt.host}")
    if config.http.bind and not _loopback(parse_bind(config.http.bind, True)[0]):
        peers.append(f"clients of the status page on {config.http.bind}")
    return peers


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
