"""The daemon's optional HTTP endpoints (stdlib): a status page for people (``/``, with ``/snapshot.jpg`` and the
thumbnails of the last label changes), and ``/healthz``, ``/metrics`` (Prometheus text), ``/latest`` (JSON) for
machines. With ``[review]`` on, the owner's requests under ``/review`` and ``/learn`` (api.py; every change
refused, 403, without the owner's token in the ``X-Flowercam-Token`` header). A request whose Host header names
another host is refused (421: auth.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..config import ConfigError, HttpConfig, parse_bind
from ..metrics import Metrics
from . import api, season
from .api import JPEG, Owner
from .auth import TOKEN_HEADER, host_allowed

log = logging.getLogger(__name__)

STATUS_PAGE = (Path(__file__).parent / "status.html").read_text(encoding="utf-8")

MAX_BODY = 4096  # bytes: a label is a short JSON object
REQUEST_TIMEOUT_S = 5.0  # a client that sends nothing for this long is dropped ...
REQUEST_DEADLINE_S = 10.0  # ... and one that has not sent its whole request after this (one byte a second)
MAX_CONNECTIONS = 32  # open connections at most; a new one past this pushes out the slowest still sending


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most :data:`MAX_CONNECTIONS` of them. A connection that has not sent its
    whole request within :data:`REQUEST_DEADLINE_S` is closed, and when all slots are taken a new connection
    closes the one that has been sending its request longest, so slow clients never make ``/healthz`` or
    ``/metrics`` unanswerable. Client errors (a client that disconnects mid-request) are not the daemon's: no
    traceback in the journal."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # the listen backlog (socketserver's 5 made a burst of clients wait for TCP retries)

    def __init__(self, address: tuple[str, int], metrics: Metrics, clock: Callable[[], float],
                 owner: Owner | None, hosts: frozenset[str] = frozenset()) -> None:
        self.metrics, self.clock, self.owner = metrics, clock, owner  # what the handler answers from
        self.hosts = hosts | {"localhost", address[0].lower()}  # the names a request's Host may give
        self.season_db: Path | None = None  # the Season card's database, read-only ([sightings] db)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._sending: dict = {}  # connection -> when it connected, while its request is still coming in
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def sending(self, request, done: bool = False) -> None:
        """Note that a connection's request is still coming in (or, ``done``, that it has all arrived)."""
        with self._lock:
            if done:
                self._sending.pop(request, None)
            else:
                self._sending[request] = time.monotonic()

    def _push_out_slowest(self) -> None:
        with self._lock:
            if not self._sending:
                return
            slowest = min(self._sending, key=self._sending.get)
            self._sending.pop(slowest)
        with contextlib.suppress(OSError):
            slowest.shutdown(socket.SHUT_RDWR)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._push_out_slowest()
            if not self._slots.acquire(timeout=1.0):
                self.shutdown_request(request)
                return
        self.sending(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.sending(request, done=True)
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        deadline = threading.Timer(REQUEST_DEADLINE_S, self._cut, (request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self.sending(request, done=True)
            self._slots.release()

    def _cut(self, request) -> None:
        with self._lock:
            still_sending = request in self._sending
        if still_sending:
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        pass  # a broken or slow client: nothing to report


class _Handler(BaseHTTPRequestHandler):
    """One request: the routes above, answered from the server's ``metrics``, ``clock`` and ``owner``."""

    timeout = REQUEST_TIMEOUT_S
    server: _Server

    def parse_request(self) -> bool:  # the request line and headers are in: no longer a slow sender
        ok = super().parse_request()
        if self.command != "POST":
            self.server.sending(self.request, done=True)
        if ok and not host_allowed(self.headers.get("Host"), self.server.hosts):
            self.close_connection = True
            self._json(421, {"error": "unknown Host: open the page by its address, localhost, or a name listed "
                                      "in [http] hosts"})
            return False
        return ok

    def _answering_os_errors(self, handle, path: str) -> None:
        """A review request whose files fail (a full disk, a folder made unreadable) answers 500 with the
        reason, never a dropped connection."""
        try:
            handle(path)
        except ConnectionError:  # the client went away: nobody to answer
            return
        except OSError as err:
            log.error("review request %s failed: %s", path, err)
            self._json(500, {"error": f"the review folder failed: {err.strerror or err}"})

    def _answer(self, code: int, value: dict | bytes) -> None:
        if isinstance(value, bytes):
            self._send(code, value, JPEG)
        else:
            self._json(code, value)

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if self.server.owner is None or not (path == "/learn" or path.startswith("/review/")):
            self._send(404, "not found\n", "text/plain")
            return
        self._answering_os_errors(self._post, path)

    def _post(self, path: str) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._json(413, {"error": f"body too large (at most {MAX_BODY} bytes)"})
            return
        body = self.rfile.read(int(length))
        self.server.sending(self.request, done=True)
        self._answer(*api.post(self.server.owner, path, body, self.headers.get(TOKEN_HEADER)))

    def _json(self, code: int, value) -> None:
        self._send(code, json.dumps(value) + "\n", "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path, metrics, clock = self.path.split("?")[0], self.server.metrics, self.server.clock
        if self.server.owner is not None and (path == "/review" or path.startswith("/review/")):
            self._answering_os_errors(lambda p: self._answer(*api.get(self.server.owner, p)), path)
        elif self.server.season_db is not None and (path == "/season" or path.startswith("/season/")):
            query = self.path.partition("?")[2]
            self._answering_os_errors(lambda p: self._answer(*season.get(self.server.season_db, p, query)), path)
        elif path == "/healthz":
            flowing, detail = metrics.health(clock())
            self._send(200 if flowing else 503, detail + "\n", "text/plain")
        elif path == "/metrics":
            self._send(200, metrics.prometheus(clock()), "text/plain; version=0.0.4")
        elif path == "/latest":
            self._send(200, json.dumps(metrics.status(clock())) + "\n", "application/json")
        elif path in ("/", "/index.html"):
            self._send(200, STATUS_PAGE, "text/html; charset=utf-8")
        elif path == "/snapshot.jpg":
            jpeg = metrics.snapshot()
            if jpeg is None:
                self._send(503, "no frame yet\n", "text/plain")
            else:
                self._send(200, jpeg, "image/jpeg")
        elif path.startswith("/history/") and path.endswith(".jpg"):
            index = path[len("/history/"):-len(".jpg")]
            with metrics.lock:
                history = list(metrics.history)
            if index.isdigit() and int(index) < len(history):
                self._send(200, history[int(index)]["thumb"], "image/jpeg")
            else:
                self._send(404, "not found\n", "text/plain")
        else:
            self._send(404, "not found\n", "text/plain")

    def _send(self, code: int, body: str | bytes, kind: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store, max-age=0")  # never a stale label or frame
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet: events go to the journal, not access logs
        pass


def serve(config: HttpConfig, metrics: Metrics, clock, owner: Owner | None = None, season_db: str = ""
          ) -> ThreadingHTTPServer:
    """Start the endpoints on ``[http] bind`` in a daemon thread; returns the server (``shutdown()`` to stop).
    A bind that fails names the setting."""
    try:
        hosts = frozenset(h.strip().lower() for h in config.hosts.split(",") if h.strip())
        server = _Server(parse_bind(config.bind, config.allow_remote), metrics, clock, owner, hosts)
        server.season_db = Path(season_db) if season_db else None  # the Season card's database (read-only)
    except OSError as err:
        raise ConfigError(f"http.bind = {config.bind!r}: {err.strerror or err} (another program on that port? "
                          "choose another port)") from None
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
