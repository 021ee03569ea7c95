"""The daemon's optional HTTP endpoints (stdlib): /healthz, /metrics (Prometheus text), /latest (JSON)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY_BUCKETS_MS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000)


class Metrics:
    """Counters shared between the main loop and the HTTP thread (guarded by a lock)."""

    def __init__(self, stall_s: float) -> None:
        self.lock = threading.Lock()
        self.stall_s = stall_s
        self.frames = self.inferences = self.reconnects = self.dropped = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0.0
        self.last_frame_at = 0.0
        self.label = "uncertain"
        self.latest: dict = {}

    def observe(self, inference_ms: float, now: float) -> None:
        with self.lock:
            self.inferences += 1
            self.latency_sum_ms += inference_ms
            index = next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if inference_ms <= b), len(LATENCY_BUCKETS_MS))
            self.latency_counts[index] += 1
            self.last_frame_at = now

    def prometheus(self) -> str:
        with self.lock:
            lines = [
                "# TYPE flowercam_frames_total counter", f"flowercam_frames_total {self.frames}",
                "# TYPE flowercam_frames_dropped_total counter", f"flowercam_frames_dropped_total {self.dropped}",
                "# TYPE flowercam_inferences_total counter", f"flowercam_inferences_total {self.inferences}",
                "# TYPE flowercam_source_reconnects_total counter",
                f"flowercam_source_reconnects_total {self.reconnects}",
                "# TYPE flowercam_inference_latency_ms histogram",
            ]
            cumulative = 0
            for bucket, count in zip(LATENCY_BUCKETS_MS, self.latency_counts):
                cumulative += count
                lines.append(f'flowercam_inference_latency_ms_bucket{{le="{bucket}"}} {cumulative}')
            lines += [f'flowercam_inference_latency_ms_bucket{{le="+Inf"}} {self.inferences}',
                      f"flowercam_inference_latency_ms_sum {self.latency_sum_ms:.3f}",
                      f"flowercam_inference_latency_ms_count {self.inferences}",
                      "# TYPE flowercam_current_label gauge",
                      f'flowercam_current_label{{label="{self.label}"}} 1']
        return "\n".join(lines) + "\n"


def serve(host: str, port: int, metrics: Metrics, clock) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; returns the server (``shutdown()`` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/healthz":
                with metrics.lock:
                    flowing = metrics.last_frame_at and clock() - metrics.last_frame_at <= metrics.stall_s
                self._send(200 if flowing else 503, "ok\n" if flowing else "no frames\n", "text/plain")
            elif self.path == "/metrics":
                self._send(200, metrics.prometheus(), "text/plain; version=0.0.4")
            elif self.path == "/latest":
                with metrics.lock:
                    body = json.dumps(metrics.latest)
                self._send(200, body + "\n", "application/json")
            else:
                self._send(404, "not found\n", "text/plain")

        def _send(self, code: int, body: str, kind: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # quiet: events go to the journal, not access logs
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
