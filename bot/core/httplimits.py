"""What the HTTP edge accepts before anyone is authenticated: how big, how slow, how many, how often.

Anyone on the internet can reach the request URL. Slack's own requests are small and quick, so a
request that is huge, slow or one of thousands is refused early and cheaply, and never delays the acks
Slack is waiting for (3 seconds). README, "What Loopline guarantees", states the numbers.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
import weakref
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Bodies over 1 MiB are refused with 413. Slack's requests are 1-10 KB; the largest it can send us are
# about a message's 40,000 characters (Slack truncates text there) twice over, as text and as rich_text
# blocks: a message shortcut on such a message is ~640 KB even when every character is non-Latin and
# JSON-escaped then URL-encoded (8 bytes each), a modal submission of our biggest form ~30 KB. Only a
# message_changed event of a 40,000-character message carries four copies (~960 KB escaped), and
# still fits. tests/test_edge_limits.py builds these and checks they are accepted.
MAX_BODY_BYTES = 1024 * 1024
# A request line and headers over 64 KiB are refused (Slack's are under 2 KB; nginx allows 32 KB).
MAX_HEAD_BYTES = 64 * 1024
# A request's head must arrive within 10 s of the connection opening (or of the previous response on
# a kept-alive connection), and its body within 10 s of the head: Slack sends both in milliseconds
# and gives up on us after 3 s anyway. Stalled ones get 408 and are closed.
HEAD_DEADLINE_S = 10.0
BODY_DEADLINE_S = 10.0
# Idle kept-alive connections are closed after 5 s (uvicorn's default, stated here on purpose).
KEEP_ALIVE_S = 5
# Open connections at most, and fewer when the process may open fewer files: descriptors are kept
# for the database, the Web API clients and the logs.
MAX_CONNECTIONS = 1000
FD_RESERVE = 64
# /slack/install issues an OAuth state (a database row) per hit: 10 hits at once per client address,
# then one every 6 seconds. A person installing the app needs one or two.
INSTALL_BURST = 10
INSTALL_PER_SECOND = 1 / 6


def connection_cap(max_connections: int = MAX_CONNECTIONS) -> int:
    """MAX_CONNECTIONS, or what the open-file limit leaves after FD_RESERVE."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(16, min(max_connections, soft - FD_RESERVE))


async def _refuse(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    # `connection: close` makes uvicorn close the socket after the answer: the rest of an oversized or
    # stalled body is never read.
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: reads each request's body whole, within MAX_BODY_BYTES and BODY_DEADLINE_S,
    before the application sees any of it (413 / 408 otherwise), then hands it on in one piece."""

    def __init__(self, app: Any, *, max_bytes: int = MAX_BODY_BYTES, deadline: float = BODY_DEADLINE_S):
        self.app = app
        self.max_bytes = max_bytes
        self.deadline = deadline

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.deadline):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:  # chunked bodies declare no length: count them as they come
                        break
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _refuse(send, 408, f"request body not received within {self.deadline:g} s")
            return
        if size > self.max_bytes:
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as the server's own would

        await self.app(scope, replay, send)


# Per server: its connections that have no request in progress (idle, or still sending a request's
# head), oldest first.
_WAITING: weakref.WeakKeyDictionary[Any, dict[GuardedHttpToolsProtocol, None]] = weakref.WeakKeyDictionary()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus what it lacks against slow clients.

    uvicorn times out idle kept-alive connections, but not a connection that sends half a request
    line and then nothing: such connections were held forever, until the process ran out of
    descriptors and real requests could no longer be accepted. Here a request's head has
    HEAD_DEADLINE_S and MAX_HEAD_BYTES, and when `max_connections` are open, each new connection
    closes the one that has waited longest without a request in progress; a connection whose request
    is being served is never closed for this.
    """

    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting = _WAITING.setdefault(self.server_state, {})
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._await_head()
        self._make_room()

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._waiting[self] = None  # the newest waiter goes last
        self._head_timer = self.loop.call_later(HEAD_DEADLINE_S, self._head_too_slow)

    def _head_done(self) -> None:
        self._waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _make_room(self) -> None:
        while len(self.connections) > self.max_connections and self._waiting:
            oldest = next(iter(self._waiting))
            oldest._head_done()
            # Not counted as open from now on (uvicorn forgets it in connection_lost, a moment later),
            # so the limit below sees the true number at once.
            self.connections.discard(oldest)
            oldest.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self in self._waiting and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout")

    def _refuse(self, status: bytes) -> None:
        self._head_done()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self in self._waiting:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(b"431 Request Header Fields Too Large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's head has already arrived
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)


def protocol_for(max_connections: int) -> type[GuardedHttpToolsProtocol]:
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"max_connections": max_connections})


def uvicorn_limits() -> dict[str, Any]:
    """uvicorn.run() options that bound connections and time (see the constants above)."""
    cap = connection_cap()
    return {
        "http": protocol_for(cap),
        # Past the cap every open connection has a request in progress: answer 503 at once (Slack
        # retries events) rather than queue more work.
        "limit_concurrency": cap + 1,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


class RateLimiter:
    """A token bucket per client address, kept in this process's memory (each replica has its own).

    `take()` returns 0 when the client may go ahead, else the seconds until it may. At most
    `max_clients` addresses are remembered; the one seen longest ago is forgotten first.
    """

    def __init__(self, *, burst: int, per_second: float, max_clients: int = 10_000):
        self.burst, self.per_second, self.max_clients = float(burst), per_second, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        now = time.monotonic()
        tokens, stamp = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_second
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
