"""Camera sources behind one small interface, chosen by a URI.

``picamera2`` (the Pi camera), ``opencv:N`` (USB camera N), or a video file / stream URL
read through OpenCV. Each source is a context manager yielding RGB frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from .base import FrameSource, SourceError

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "file")


def _userinfo(uri: str) -> str:
    """The credentials part of ``uri`` (between ``://`` and its last ``@``), taken as a camera library takes it
    whatever characters the password holds (``#``, ``/``, ``?`` unencoded); "" when there is none."""
    if "://" not in uri or "@" not in uri.split("://", 1)[1]:
        return ""
    rest = uri.split("://", 1)[1]
    return rest[:rest.rindex("@")]


def redact(uri: str) -> str:
    """``uri`` with any user name and password replaced by ``***``, for logs, events and the HTTP API."""
    userinfo = _userinfo(uri)
    if not userinfo:
        return uri
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://***@{rest[len(userinfo) + 1:]}"


def scrub(text: str, uri: str) -> str:
    """``text`` (e.g. a capture library's error message) with the credentials of ``uri`` removed, encoded or
    not."""
    from urllib.parse import quote, unquote

    userinfo = _userinfo(uri)
    if not userinfo:
        return text
    for secret in {userinfo, unquote(userinfo), quote(userinfo, safe=":"), *userinfo.split(":", 1)[1:]}:
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def check_uri(uri: str) -> None:
    """Refuse a URI no source could open, before anything runs (one line, with the URI redacted)."""
    if not uri.strip():
        raise SourceError("empty source: expected picamera2, opencv:N, a video file or a stream URL")
    if uri.startswith("opencv:") and not uri.split(":", 1)[1].isdigit():
        raise SourceError(f"bad source {redact(uri)!r}: expected opencv:N with a camera number N")
    scheme = urlsplit(uri).scheme
    if "://" in uri and scheme not in STREAM_SCHEMES:
        raise SourceError(f"bad source {redact(uri)!r}: unsupported scheme {scheme!r} "
                          f"(expected one of {', '.join(STREAM_SCHEMES)})")


def check_backend(uri: str) -> None:
    """Refuse a source whose capture library is not installed (the daemon would otherwise retry forever)."""
    import importlib.util

    if uri == "picamera2" and importlib.util.find_spec("picamera2") is None:
        raise SourceError("source picamera2: the picamera2 library is not installed (Raspberry Pi OS: sudo apt "
                          "install python3-picamera2, and a venv made with --system-site-packages)")
    if uri != "picamera2" and importlib.util.find_spec("cv2") is None:
        raise SourceError(f"source {redact(uri)!r}: OpenCV is not installed (pip install 'flowercam[camera]')")


def open_source(uri: str) -> FrameSource:
    """The source for ``uri``; imports its backend only when chosen."""
    check_uri(uri)
    if uri == "picamera2":
        from .picamera import PiCameraSource

        return PiCameraSource()
    from .opencv import OpenCVSource

    if uri.startswith("opencv:"):
        return OpenCVSource(int(uri.split(":", 1)[1]))
    return OpenCVSource(uri)


__all__ = ["FrameSource", "SourceError", "check_uri", "open_source", "redact"]


def open_in_background(uri: str, while_waiting: Callable[[], None], stopping: Callable[[], bool]):
    """Open ``uri`` in a helper thread (a stream can take seconds), calling ``while_waiting`` (the watchdog's
    ping) meanwhile and giving up on ``stopping``. Returns the open source, or why it could not be opened."""
    outcome: dict = {}

    def work() -> None:
        try:
            source = open_source(uri)
            source.open()
            outcome["source"] = source
        except SourceError as err:
            outcome["error"] = str(err)
        except Exception as err:  # a capture backend failing to open
            outcome["error"] = f"{type(err).__name__}: {err}"

    opener = threading.Thread(target=work, name="source-open", daemon=True)
    opener.start()
    while opener.is_alive() and not stopping():
        while_waiting()
        opener.join(0.1)
    if opener.is_alive():
        return "stopped while opening"
    return outcome.get("source") or outcome.get("error", "no source")
