"""How the fake misbehaves on purpose: injected failures (errors, 429 with Retry-After, 5xx, dropped
connections), Slack-like rate limits (token buckets per workspace, channel and method) and latency.

Tests arm them with FakeSlack.fail_next and the knobs on State (latency, latency_for,
per_channel_rate, workspace_rate, method_rate); api.py, files.py and webhooks.py consult them.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .records import Fault, Identity
from .state import State


class Disconnect(Exception):
    """Raised inside request handling: close the connection without answering."""


class FaultInjection(State):
    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: float | None = 1,
        times: int | None = 1,
        channel: str | None = None,
        *,
        disconnect: bool = False,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` fail (times=None: until clear_faults()).

        ``method`` is a Web API method, "*" for any, "upload" for the raw file upload URL or "webhook"
        for response_url POSTs. status defaults to 429 for "ratelimited" and 200 otherwise; a 5xx
        status with the default error answers ``internal_error``. disconnect=True closes the
        connection without an answer instead. ``channel`` limits the fault to calls for that channel.
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if status >= 500 and error == "ratelimited":
            error = "service_unavailable" if status == 503 else "internal_error"
        fault = Fault(method, error, status, retry_after, times, channel, disconnect)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


def sleep_latency(s: State, name: str, default: float = 0.0) -> None:
    """The delay a test asked for before answering ``name`` (a Web API method, "upload", "webhook")."""
    delay = s.latency_for.get(name, default)
    if delay:
        time.sleep(delay)


def take_fault(s: State, method: str, channels: tuple[str | None, ...]) -> Fault | None:
    """The armed fault this call meets, if any, counted as used (lock held)."""
    if not s._faults:
        return None
    for fault in s._faults:
        if fault.method not in (method, "*"):
            continue
        if fault.method == "*" and method in ("upload", "webhook"):
            continue
        if fault.channel is not None and fault.channel not in channels:
            continue
        fault.hits += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                s._faults.remove(fault)
        return fault
    return None


def fault_response(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"ok": False, "error": fault.error}
    headers: dict[str, str] = {}
    if fault.status == 429:
        headers["Retry-After"] = str(math.ceil(fault.retry_after or 0))
    if fault.error == "missing_scope":
        body["needed"] = "chat:write"
        body["provided"] = "commands"
    return fault.status, body, headers


def _take_token(s: State, key: tuple[str, str], rate: float, burst: float, now: float) -> float:
    """Token bucket; 0.0 when allowed (a token is NOT yet taken), else seconds to wait."""
    bucket = s._buckets.get(key)
    if bucket is None:
        bucket = s._buckets[key] = [float(burst), now]
    tokens = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
    bucket[0], bucket[1] = tokens, now
    return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate


def rate_limit_wait(s: State, method: str, channel: str | None, ident: Identity) -> float:
    """0.0 when the call is within every rate limit that applies (and is counted), else the seconds
    until it would be (lock held)."""
    checks: list[tuple[tuple[str, str], float, float]] = []
    if method == "chat.postMessage":
        if s.workspace_rate:
            burst = s.workspace_burst or s.workspace_rate
            checks.append((("ws", ident.team_id), s.workspace_rate, max(1.0, burst)))
        if s.per_channel_rate and channel:
            checks.append((("ch", channel), s.per_channel_rate, max(1.0, s.per_channel_burst)))
    rate = s.method_rate.get(method)
    if rate:
        checks.append((("m:" + method, ident.team_id), rate, max(1.0, rate)))
    if not checks:
        return 0.0
    now = time.monotonic()
    wait = max(_take_token(s, key, r, b, now) for key, r, b in checks)
    if wait == 0.0:
        for key, _, _ in checks:
            s._buckets[key][0] -= 1.0
    return wait
