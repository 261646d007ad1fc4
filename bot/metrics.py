"""Prometheus metrics for one process: what `GET /metrics` (loopline serve) and
`loopline scheduler --metrics-port P` answer.

Everything lives in a `Metrics` object holding its own `CollectorRegistry`: the runtime creates one and
hands it to the parts that count (nothing is registered at import, and several apps in one process, as
in the tests, each count their own). The parts only get small call sites:

* the HTTP edge (bot/server.py): `RequestMeter`, an ASGI middleware around /slack/events, times each
  request from its arrival to its response and counts it by kind and outcome;
* the group committer (bot/core/groupcommit.py): the size of every batch;
* the Web API clients (bot/core/slack_client.py): `SlackCallMeter`, a slack-sdk retry handler that never
  retries but is shown every HTTP answer (slack-sdk asks retry handlers about each one, success
  included), counts calls by method and result; the real retry handlers are wrapped to count retries.
  Bolt copies the handler list into its per-request clients, so listeners' calls are counted too;
* the delivery loop and the digest poster: outcomes, build time, themes found;
* the job queue and open deliveries: read from the database at scrape time by `QueueCollector`, at
  most once per `db_ttl` seconds, never waiting more than `db_wait` seconds for it.

Labels carry only bounded, non-secret values: request kinds, HTTP codes, Web API method names and
Slack's error codes. Never a token, a team or user id, or anything a person typed.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

# Seconds. Slack gives up on an ack after 3 s; most of ours take a few milliseconds.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DIGEST_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
THEME_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34)
KINDS = ("command", "event", "action", "view", "shortcut", "options", "other", "unknown")

_CODE = re.compile(r"[a-z0-9_]{1,48}")
_METHOD = re.compile(r"[a-zA-Z]+(\.[a-zA-Z0-9_]+)+")


def request_kind(body: Any) -> str:
    """The kind of a parsed Slack request body (Bolt's parse)."""
    if not isinstance(body, dict):
        return "unknown"
    if "command" in body:
        return "command"
    t = body.get("type")
    if t == "event_callback":
        return "event"
    if t in ("block_actions", "interactive_message"):
        return "action"
    if t in ("view_submission", "view_closed"):
        return "view"
    if t in ("shortcut", "message_action"):
        return "shortcut"
    if t in ("block_suggestion", "dialog_suggestion"):
        return "options"
    return "other"


def outcome_of(status: int) -> str:
    return "acked" if status < 400 else "rejected" if status < 500 else "failed"


def _method_of(url: str) -> str:
    """`chat.postMessage` from https://slack.com/api/chat.postMessage?x=y; "other" for anything else
    (file upload URLs carry ids: never a label)."""
    path = url.split("?", 1)[0]
    if "/api/" not in path:
        return "other"
    name = path.rsplit("/api/", 1)[1].strip("/")
    return name if _METHOD.fullmatch(name) else "other"


def _code(value: Any) -> str:
    """An error code fit for a label: Slack's own codes are short snake_case words; anything else is
    'other' (a proxy's odd answer must not create series without bound)."""
    s = str(value or "")
    return s if _CODE.fullmatch(s) else "other"


def _result(response: Any, error: BaseException | None) -> str:
    if response is None:
        if error is None:
            return "other"
        return "timeout" if isinstance(error, TimeoutError) or "timed out" in str(error) else "connection_error"
    status = int(getattr(response, "status_code", 0) or 0)
    body = getattr(response, "body", None)
    if status == 429:
        return "ratelimited"
    if isinstance(body, dict) and body:
        return "ok" if body.get("ok") else _code(body.get("error"))
    if status >= 400:
        return f"http_{status}"
    return "ok"


class Metrics:
    """One process's metrics and registry. `db_ttl`: database readings are reused this long;
    `db_wait`: a scrape waits at most this long for a fresh reading (then shows the last one);
    `render_ttl`: a rendered scrape is reused this long (scrapes can't cost the edge anything)."""

    def __init__(self, *, db_ttl: float = 10.0, db_wait: float = 1.0, render_ttl: float = 1.0,
                 process: bool = True):
        self.registry = r = CollectorRegistry(auto_describe=True)
        # Another process's exposition to add to this one's (the worker process of `loopline serve`).
        self.also: Callable[[], str | None] | None = None
        self.render_ttl = render_ttl
        self.db_ttl, self.db_wait = db_ttl, db_wait
        if process:
            ProcessCollector(registry=r)
        self.ack_seconds = Histogram(
            "loopline_slack_ack_seconds", "Time from a Slack request's arrival to our answer, by request kind",
            ["kind"], buckets=ACK_BUCKETS, registry=r)
        self.requests = Counter(
            "loopline_slack_requests", "Requests to /slack/events by kind, outcome (acked, rejected, failed) "
            "and HTTP status code", ["kind", "outcome", "code"], registry=r)
        self.commit_batch = Histogram(
            "loopline_group_commit_batch_size", "Writes carried by each group commit", buckets=BATCH_BUCKETS,
            registry=r)
        self.api_calls = Counter(
            "loopline_slack_api_calls", "Slack Web API calls (each HTTP attempt) by method and result "
            "(ok, or Slack's error code, ratelimited, http_5xx, connection_error, timeout)",
            ["method", "result"], registry=r)
        self.rate_limited = Counter(
            "loopline_slack_rate_limited", "Slack Web API answers with HTTP 429, by method", ["method"], registry=r)
        self.retries = Counter(
            "loopline_slack_retries", "Web API calls slack-sdk sent again at once, by method and reason "
            "(ratelimited, server_error, connection_error)", ["method", "reason"], registry=r)
        self.deliveries = Counter(
            "loopline_deliveries", "Announcement deliveries handled by this process, by outcome (posted, adopted, "
            "updated, retracted, failed; rate_limited and transient: put back for a later attempt)",
            ["status"], registry=r)
        self.digest_seconds = Histogram(
            "loopline_digest_build_seconds", "Time to build a digest (reading, embedding, finding and naming themes)",
            buckets=DIGEST_BUCKETS, registry=r)
        self.digest_themes = Histogram(
            "loopline_digest_themes", "Themes found per digest built", buckets=THEME_BUCKETS, registry=r)
        self.renders = Counter(
            "loopline_metrics_renders", "Times this process rendered /metrics (each rendering is reused for "
            "a second, so a burst of scrapes costs one)", registry=r)
        self.queue = QueueCollector(self)
        r.register(self.queue)
        self._rendered: tuple[float, bytes] | None = None
        self._render_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None

    # --- call sites -----------------------------------------------------------------------------------

    def observe_batch(self, size: int) -> None:
        self.commit_batch.observe(size)

    def observe_request(self, kind: str, status: int, seconds: float | None) -> None:
        self.requests.labels(kind, outcome_of(status), str(status)).inc()
        if seconds is not None:
            self.ack_seconds.labels(kind).observe(seconds)

    def observe_digest(self, seconds: float, themes: int) -> None:
        self.digest_seconds.observe(seconds)
        self.digest_themes.observe(themes)

    def count_deliveries(self, stats: dict[str, int]) -> dict[str, int]:
        """The delivery loop's own `stats` dict, also counted here (its keys are the outcomes)."""
        return _CountingStats(stats, self.deliveries)

    def watch(self, read: Callable[[], dict[str, Any]], worker_running: Callable[[], bool]) -> None:
        """`read()` returns the database readings (see QueueCollector), called at scrape time;
        `worker_running()` says whether this process's job worker thread is alive (no I/O)."""
        self.queue.read = read
        Gauge("loopline_worker_running", "1 while this process's job worker thread runs",
              registry=self.registry).set_function(lambda: 1.0 if worker_running() else 0.0)

    def slack_handlers(self, handlers: list[Any], *, asynchronous: bool = False) -> list[Any]:
        """Retry handlers for a Web API client: the call meter first, then each real handler, counted."""
        if asynchronous:
            return [AsyncSlackCallMeter(self), *(AsyncCountedRetries(h, self) for h in handlers)]
        return [SlackCallMeter(self), *(CountedRetries(h, self) for h in handlers)]

    def record_call(self, request: Any, response: Any, error: BaseException | None) -> None:
        method = _method_of(str(getattr(request, "url", "")))
        result = _result(response, error)
        self.api_calls.labels(method, result).inc()
        if result == "ratelimited":
            self.rate_limited.labels(method).inc()

    def record_retry(self, request: Any, response: Any, error: BaseException | None) -> None:
        status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
        reason = "ratelimited" if status == 429 else "server_error" if status >= 500 else "connection_error"
        self.retries.labels(_method_of(str(getattr(request, "url", ""))), reason).inc()

    # --- exposition -----------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition, reused for `render_ttl` seconds; one render at a time."""
        with self._render_lock:
            now = time.monotonic()
            if self._rendered is None or now - self._rendered[0] >= self.render_ttl:
                self.renders.inc()
                other = self.also() if self.also is not None else None
                text = merged_exposition(self.registry, other) if other else generate_latest(self.registry)
                self._rendered = (time.monotonic(), text)
            return self._rendered[1]

    async def render_async(self) -> bytes:
        """render() off the event loop, with at most one thread busy at it however many scrapes arrive."""
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        cached = self._rendered
        if cached is not None and time.monotonic() - cached[0] < self.render_ttl:
            return cached[1]
        async with self._async_lock:
            return await asyncio.to_thread(self.render)

    content_type = CONTENT_TYPE_LATEST


def merged_exposition(registry: CollectorRegistry, other: str) -> bytes:
    """This process's metrics plus another process's text exposition, as one: counters, histograms and
    summaries add up sample by sample (each process counts its own work), a gauge is this process's
    when it has one (the database readings and worker_running are read here), and the other process's
    own `process_*` / `python_*` families are left out (they describe another process)."""
    families: dict[str, Metric] = {f.name: f for f in registry.collect()}
    for theirs in text_string_to_metric_families(other):
        if theirs.name.startswith(("process_", "python_")):
            continue
        mine = families.get(theirs.name)
        if mine is None or not mine.samples:
            families[theirs.name] = theirs
            continue
        if mine.type == "gauge":
            continue
        samples = {(x.name, frozenset(x.labels.items())): x for x in mine.samples}
        for x in theirs.samples:
            key = (x.name, frozenset(x.labels.items()))
            if key in samples:
                old = samples[key]
                value = min(old.value, x.value) if x.name.endswith("_created") else old.value + x.value
                samples[key] = old._replace(value=value)
            else:
                samples[key] = x
        both = Metric(mine.name, mine.documentation, mine.type)
        both.samples = list(samples.values())
        families[theirs.name] = both

    class Merged(Collector):
        def collect(self) -> Iterable[Metric]:
            return list(families.values())

    out = CollectorRegistry(auto_describe=False)
    out.register(Merged())
    return generate_latest(out)


def authorised(token: str | None, header: str | None) -> bool:
    """LOOPLINE_METRICS_TOKEN, when set, must come as `Authorization: Bearer <token>`."""
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest(expected, (header or "").encode())


class _CountingStats(dict):
    def __init__(self, initial: dict[str, int], counter: Counter):
        super().__init__(initial)
        self._counter = counter

    def __setitem__(self, key: str, value: int) -> None:
        delta = value - self.get(key, 0)
        super().__setitem__(key, value)
        if delta > 0:
            self._counter.labels("rate_limited" if key == "429" else key).inc(delta)


# --- Web API calls: slack-sdk's retry handlers see every HTTP answer ------------------------------------


class _Shared:
    """Bolt deep-copies a request (its client and that client's retry handlers) for lazy listeners:
    these handlers hold no per-call state, so the copy is the same object, still counting here."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __copy__(self) -> Any:
        return self


class SlackCallMeter(_Shared, RetryHandler):
    """Never retries; counts each answer (or connection failure) slack-sdk shows the retry handlers."""

    def __init__(self, metrics: Metrics):
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    def can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        self.metrics.record_call(request, response, error)
        return False


class AsyncSlackCallMeter(_Shared, AsyncRetryHandler):
    def __init__(self, metrics: Metrics):
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    async def can_retry_async(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        self.metrics.record_call(request, response, error)
        return False


class CountedRetries(_Shared, RetryHandler):
    """A real retry handler, with each retry it asks for counted."""

    def __init__(self, inner: RetryHandler, metrics: Metrics):
        super().__init__(max_retry_count=inner.max_retry_count, interval_calculator=inner.interval_calculator)
        self.inner, self.metrics = inner, metrics

    def can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        return self.inner.can_retry(state=state, request=request, response=response, error=error)

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        self.metrics.record_retry(request, response, error)
        self.inner.prepare_for_next_attempt(state=state, request=request, response=response, error=error)


class AsyncCountedRetries(_Shared, AsyncRetryHandler):
    def __init__(self, inner: AsyncRetryHandler, metrics: Metrics):
        super().__init__(max_retry_count=inner.max_retry_count, interval_calculator=inner.interval_calculator)
        self.inner, self.metrics = inner, metrics

    async def can_retry_async(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        return await self.inner.can_retry_async(state=state, request=request, response=response, error=error)

    async def prepare_for_next_attempt_async(self, *, state: Any, request: Any, response: Any = None,
                                             error: Any = None) -> None:
        self.metrics.record_retry(request, response, error)
        await self.inner.prepare_for_next_attempt_async(state=state, request=request, response=response, error=error)


def sibling_handlers(handlers: Iterable[Any], new: list[RetryHandler]) -> list[Any]:
    """Retry handlers for a sibling of a client that had `handlers`: `new`, metered like the original."""
    meter = next((h for h in handlers if isinstance(h, SlackCallMeter)), None)
    return new if meter is None else meter.metrics.slack_handlers(new)


# --- the edge -------------------------------------------------------------------------------------------


class RequestMeter:
    """ASGI middleware (outermost): for requests to `path`, the time from arrival to the response's
    start, by the kind the endpoint found (`scope["state"]["slack_kind"]`), and the status code. Requests
    refused before the endpoint (413, 408) count as kind "unknown"."""

    def __init__(self, app: Any, *, metrics: Metrics, path: str = "/slack/events"):
        self.app, self.metrics, self.path = app, metrics, path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        took: list[float] = []

        async def metered_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                took.append(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, metered_send)
        finally:
            kind = (scope.get("state") or {}).get("slack_kind", "unknown")
            self.metrics.observe_request(kind, status[0], took[0] if took and kind != "unknown" else None)


# --- the database, read at scrape time -----------------------------------------------------------------


class QueueCollector(Collector):
    """Jobs pending, due and retrying, the oldest due job's wait, open deliveries by status, and whether
    the last reading worked. A reading runs in its own thread (one at a time); a scrape waits for it at
    most `db_wait` seconds and otherwise shows the previous reading, so a database that hangs never
    holds a scrape (or the server) up."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.read: Callable[[], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._ok = False
        self._at = float("-inf")  # monotonic time of the last reading's start
        self._done = threading.Event()
        self._done.set()

    def describe(self) -> Iterable[Metric]:
        return []  # read lazily: describing must not touch the database

    def _refresh(self) -> None:
        read = self.read
        try:
            value = read() if read is not None else None
            ok = True
        except Exception:
            value, ok = None, False
        with self._lock:
            if ok:
                self._value = value
            self._ok = ok
        self._done.set()

    def collect(self) -> Iterable[Metric]:
        if self.read is None:
            return []
        with self._lock:
            start = self._done.is_set() and time.monotonic() - self._at >= self.metrics.db_ttl
            if start:
                self._at = time.monotonic()
                self._done.clear()
                threading.Thread(target=self._refresh, name="loopline-metrics-db", daemon=True).start()
        self._done.wait(self.metrics.db_wait)
        with self._lock:
            value, ok, fresh = self._value, self._ok, self._done.is_set()
        up = GaugeMetricFamily("loopline_database_up", "1 when the last scrape-time database reading worked "
                               "(0: failed, or still running after the scrape's wait)")
        up.add_metric([], 1.0 if ok and fresh else 0.0)
        out: list[Metric] = [up]
        if value is None:
            return out
        for name, doc, key in (
            ("loopline_jobs_pending", "Jobs waiting in the queue (due now or later)", "pending"),
            ("loopline_jobs_due", "Jobs due now", "due"),
            ("loopline_jobs_retrying", "Pending jobs that failed before and wait to be retried", "retrying"),
            ("loopline_jobs_oldest_due_seconds", "How long the oldest due job has waited", "oldest_due_s"),
        ):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], float(value.get(key) or 0))
            out.append(g)
        d = GaugeMetricFamily("loopline_deliveries_open", "Announcement deliveries not done yet, by status",
                              labels=["status"])
        for status, n in sorted((value.get("deliveries") or {}).items()):
            d.add_metric([status], float(n))
        out.append(d)
        return out


def queue_reading(db: Any, worker: Any, ttl: float) -> dict[str, Any]:
    """The readings QueueCollector shows: the worker's backlog aggregate (the query /healthz uses, over
    index ix_jobs_due) and one count of open deliveries by status (over index ix_deliveries_due)."""
    from sqlalchemy import func, select

    from bot.core.models import OPEN_DELIVERY, Delivery

    out = dict(worker.backlog(max_age=ttl))
    with db.read_session() as s:
        rows = s.execute(select(Delivery.status, func.count()).where(Delivery.status.in_(OPEN_DELIVERY))
                         .group_by(Delivery.status)).all()
    out["deliveries"] = {status: 0 for status in OPEN_DELIVERY} | {str(st): int(n) for st, n in rows}
    return out


# --- a port of its own (`loopline scheduler --metrics-port`) --------------------------------------------


def serve_metrics(metrics: Metrics, host: str, port: int, *,
                  token: str | None = None) -> tuple[Callable[[], None], int]:
    """GET /metrics on host:port (0: any free port) from a small threaded HTTP server (standard library);
    returns its stop function and the port it listens on. Same text, caching and optional bearer token as
    `loopline serve`'s /metrics."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        allow_reuse_address = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorised(token, environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"unauthorised\n"]
        body = metrics.render()
        start_response("200 OK", [("Content-Type", metrics.content_type), ("Content-Length", str(len(body)))])
        return [body]

    httpd = make_server(host, port, app, server_class=Server, handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="loopline-metrics-http", daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return stop, int(httpd.server_address[1])
