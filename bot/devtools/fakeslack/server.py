"""The HTTP side: a threaded server on 127.0.0.1 (keep-alive, chunked bodies, injected disconnects),
starting and stopping it, and routing each request — /api/<method> to the Web API (api.py), the
upload URLs files.getUploadURLExternal hands out (files.py), response_url POSTs (webhooks.py)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from .api import handle_api
from .common import Reply, to_int
from .files import receive_upload
from .state import State
from .webhooks import receive_webhook


class Serving(State):
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self)
        self._address = (self._host, int(self._server.server_address[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeslack:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._address = None
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # end idle keep-alive connections, or their threads keep serving
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Web API base URL for WebClient(base_url=...); ends with '/api/'."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "default") -> str:
        """A response_url whose POSTs are recorded under ``name`` (see webhook_posts)."""
        return f"{self.url}/webhook/{name}"

    def _handle_http(self, verb: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        arrived = time.monotonic()
        parts = urlsplit(path)
        route = parts.path
        lower_headers = {k.lower(): v for k, v in headers.items()}
        if route.startswith("/api/"):
            return handle_api(self, route[5:], parts.query, lower_headers, body, arrived)
        if route.startswith("/upload/") and verb == "POST":
            return receive_upload(self, route[8:], body)
        if route.startswith("/webhook/") and verb == "POST":
            return receive_webhook(self, route[9:], lower_headers, body, arrived)
        if route in ("/", "/health"):
            return 200, {"ok": True, "fake": "slack"}, {}
        return 404, {"ok": False, "error": "not_found"}, {}

    def _track_connection(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record_internal_error(self, path: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(f"{path}: {exc!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], fake: Serving) -> None:
        self.fake = fake
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that gave up (timeouts, injected disconnects, stop()) are not worth a traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError | OSError):
            self.fake._record_internal_error(str(client_address), exc or RuntimeError("unknown"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track_connection(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track_connection(self.connection, False)

    def do_POST(self) -> None:
        self._serve(self._read_body())

    def do_GET(self) -> None:
        self._serve(b"")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = to_int(self.headers.get("Content-Length"), 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, body: bytes) -> None:
        fake = self.server.fake
        try:
            result = fake._handle_http(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # a bug in the fake: answer, and remember it for the test
            fake._record_internal_error(self.path, exc)
            result = (500, {"ok": False, "error": "fake_internal_error", "detail": repr(exc)}, {})
        if result is None:  # injected disconnect
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, headers = result
        if isinstance(payload, bytes | str):
            data = payload.encode() if isinstance(payload, str) else payload
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
