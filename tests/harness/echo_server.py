"""A tiny HTTP server for pod runner and traffic tests, run as a pod's command.

    python tests/harness/echo_server.py --host 0.0.0.0 --port 8000

GET /readyz answers 200; GET /metrics answers Prometheus text with a request counter; any
other GET or POST answers JSON naming the server (env ECHO_NAME), its pod (HOSTNAME) and the
ROLLFORWARD_* environment it was given, so a test can see which backend served a request and
with what environment the runner started it. It uses only the standard library, so it runs
with any PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    served = 0

    def do_GET(self) -> None:
        if self.path == "/readyz":
            self._send(200, "text/plain", b"ok")
        elif self.path == "/metrics":
            text = f"# TYPE echo_requests_total counter\necho_requests_total {_Handler.served}\n"
            self._send(200, "text/plain; version=0.0.4", text.encode())
        else:
            self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        _Handler.served += 1
        body = {
            "name": os.environ.get("ECHO_NAME", ""),
            # Shaped like a prediction, so a traffic driver logs which backend answered.
            "version": os.environ.get("ECHO_NAME", ""),
            "label": "echo",
            "pod": os.environ.get("HOSTNAME", ""),
            "path": self.path,
            "userId": self.headers.get("X-User-Id"),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("ROLLFORWARD_", "POD_"))},
        }
        self._send(200, "application/json", json.dumps(body).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: tests read answers, not logs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), _Handler)
    server.serve_forever()  # until SIGTERM, which ends the process
    return 0


if __name__ == "__main__":
    sys.exit(main())
