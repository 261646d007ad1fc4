"""Before authentication: how big, how slow and how many requests the edge takes, and what it logs.

Junk from the internet must never slow the acks Slack is waiting for, fill the disk with log lines or
the database with OAuth states, or hold connections until the process runs out of descriptors.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
import pytest
from sqlalchemy import func, insert, select

from bot.core.logging import JsonFormatter
from bot.core.settings import load_settings
from tests.conftest import BOT_TOKEN, ENCRYPTION_KEY, REP, SIGNING_SECRET, RunningServer, export
from tests.support.process import BotProcess, bot_env
from tests.support.slack_requests import SlackSender

MARKER = "junk-7f3c-never-log-me"
CJK = "请把发票导出改成按客户分组，谢谢！"  # realistic non-Latin text: 3 UTF-8 bytes, 6 JSON-escaped per character


def _addr(url: str) -> tuple[str, int]:
    u = urlparse(url)
    return u.hostname or "127.0.0.1", int(u.port or 80)


def _response(sock: socket.socket, timeout: float) -> tuple[int | None, bool]:
    """(status, closed): the status line of what the server answered, and whether it then closed."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, closed


def _head(*, length: int | None = None, content_type: str = "application/json", extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST /slack/events HTTP/1.1\r\nHost: loopline.example\r\nContent-Type: {content_type}\r\n"
            f"{framing}{extra}\r\n").encode()


# --- size ------------------------------------------------------------------------------------------------


def test_a_declared_100_mb_body_is_refused_before_it_is_read(server):
    with socket.create_connection(_addr(server.url)) as s:
        s.sendall(_head(length=100 * 1024 * 1024) + b'{"token": "' + b"x" * 4096)
        status, closed = _response(s, timeout=3)
    assert status == 413 and closed  # answered at once, without waiting for the 100 MB


def test_a_chunked_body_is_counted_while_it_streams_and_cut_off_at_the_limit(server):
    chunk = (MARKER + "a" * 65536)[:65536].encode()
    sent = 0
    with socket.create_connection(_addr(server.url)) as s:
        s.sendall(_head(length=None, content_type="application/x-www-form-urlencoded"))
        try:
            for _ in range(64):  # 4 MiB, sent as fast as the server reads it
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        status, _closed = _response(s, timeout=3)
    # Refused once past the limit: either we read the 413, or the connection was cut before we got
    # to the end of the 4 MiB. (Today the whole body is read, then 401 for the missing signature.)
    assert status == 413 or (status is None and sent < 4 * 1024 * 1024), (status, sent)


def test_the_largest_requests_slack_really_sends_fit_under_the_limit(server, slack, fake, db):
    from bot.core.httplimits import MAX_BODY_BYTES

    text = (CJK * (40_000 // len(CJK) + 1))[:40_000]  # Slack truncates message text at 40,000 characters
    rich = [{"type": "rich_text", "block_id": "b1", "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]
    ts = fake.add_message("C0SALES", text, user="U0CUST", blocks=rich)
    # A message edit carries both versions, each with its blocks: the biggest event Loopline subscribes to.
    before = {"type": "message", "text": text, "user": "U0CUST", "ts": ts, "blocks": rich}
    event = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "C0SALES",
             "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}", "channel_type": "channel",
             "message": {**before, "text": text[:-1] + "。", "edited": {"user": "U0CUST", "ts": "1.0"}},
             "previous_message": before}
    size = len(json.dumps({"event": event}).encode())  # json.dumps escapes non-ASCII: the biggest encoding
    assert 900_000 < size < MAX_BODY_BYTES, size
    assert slack.event(event).status_code == 200
    # The capture shortcut on that message: the whole message, URL-encoded in a form.
    r = slack.message_shortcut(user=REP, channel="C0SALES", message={"text": text, "user": "U0CUST", "ts": ts,
                                                                      "blocks": rich})
    assert r.status_code == 200
    fake.wait_for("views.open")


# --- signature --------------------------------------------------------------------------------------------


def _cases(verifier: Any, now: int) -> list[tuple[str, dict[str, Any]]]:
    def signed_with(ts: str, body: str) -> dict[str, str]:
        return {"x-slack-request-timestamp": ts,
                "x-slack-signature": str(verifier.generate_signature(timestamp=ts, body=body))}

    return [
        ("unsigned", {"sign": False}),
        ("wrong signature", {"sign": False, "headers": {"x-slack-request-timestamp": str(now),
                                                        "x-slack-signature": "v0=" + "0" * 64}}),
        ("stale", {"timestamp": now - 600}),
        ("from the future", {"timestamp": now + 3600}),
        ("non-numeric timestamp", {"sign": False, "signed_as": "tomorrow"}),
        ("huge timestamp", {"sign": False, "signed_as": "9" * 5000}),
        ("no timestamp", {"sign": False, "headers": {"x-slack-signature": "v0=" + "1" * 64}}),
    ]


def test_bad_signatures_get_401_before_any_parsing_and_no_body_is_ever_logged(caplog, settings, db, fake):
    caplog.set_level(logging.DEBUG)  # before the app is built: Bolt's loggers copy the level then
    srv = RunningServer(settings)
    sender = SlackSender(srv.url, SIGNING_SECRET)
    now = int(time.time())
    command = urlencode({"token": "x", "team_id": "T0001", "channel_id": "C0SALES", "user_id": REP,
                         "command": "/feedback", "text": f"{MARKER} <!channel> & €", "trigger_id": "1.2.3",
                         "response_url": "https://hooks.slack.com/commands/T0001/1/x"})
    event = json.dumps({"type": "event_callback", "team_id": "T0001", "event_id": "Ev0JUNK",
                        "event": {"type": "message", "channel": "C0SALES", "user": REP, "text": MARKER,
                                  "ts": "1700000000.000100"}})
    bodies = [(command, "application/x-www-form-urlencoded"), (event, "application/json"),
              ("payload=" + json.dumps({"type": "block_actions", "actions": [{"value": MARKER}]}),
               "application/x-www-form-urlencoded")]
    try:
        for body, ctype in bodies:
            for name, kw in _cases(sender.verifier, now):
                kw = dict(kw)
                if "signed_as" in kw:
                    ts = kw.pop("signed_as")
                    kw["headers"] = {"x-slack-request-timestamp": ts,
                                     "x-slack-signature": str(sender.verifier.generate_signature(timestamp=ts,
                                                                                                 body=body))}
                r = sender.post_raw(body, ctype, **kw)
                assert r.status_code == 401, (name, ctype, r.status_code, r.text)
        # Bytes that are not UTF-8, signed over exactly those bytes.
        raw = b"token=x&text=" + MARKER.encode() + b"\xff\xfe"
        ts = str(now)
        sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, "sha256").hexdigest()
        r = sender.post_raw(raw, "application/x-www-form-urlencoded", sign=False,
                            headers={"x-slack-request-timestamp": ts, "x-slack-signature": sig})
        assert 400 <= r.status_code < 500
        # Real requests still go through.
        ok = sender.command("/feedback", "Export to CSV drops the € sign", user=REP)
        assert ok.status_code == 200 and "FB-" in ok.json()["text"]
    finally:
        sender.close()
        srv.stop()
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(rec) for rec in caplog.records)
    assert MARKER not in logged
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info] == []
    assert [r["text"] for r in export(db)] == ["Export to CSV drops the € sign"]


# --- a flood while Slack is waiting ------------------------------------------------------------------------


@pytest.fixture
def env(fake, db_url, db):
    return bot_env(fake, db_url, SIGNING_SECRET, BOT_TOKEN)


def flood(url: str, stop: threading.Event, started: threading.Event, *, chunked: bool,
          size: int = 100 * 1024 * 1024) -> None:
    """Unsigned 100 MB form posts, one after another, as fast as the server takes them."""
    block = ("text=" + MARKER + "a" * (1024 * 1024))[: 1024 * 1024].encode()
    while not stop.is_set():
        try:
            with socket.create_connection(_addr(url), timeout=10) as s:
                s.sendall(_head(length=None if chunked else size, content_type="application/x-www-form-urlencoded"))
                sent = 0
                while sent < size and not stop.is_set():
                    s.sendall(b"%x\r\n" % len(block) + block + b"\r\n" if chunked else block)
                    sent += len(block)
                    started.set()
                if chunked:
                    s.sendall(b"0\r\n\r\n")
                s.recv(1024)
        except OSError:
            started.set()  # refused part-way: the server is not reading it


def ack_latencies(url: str, *, threads: int = 4, each: int = 15) -> list[float]:
    out: list[float] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        sender = SlackSender(url, SIGNING_SECRET)
        try:
            for i in range(each):
                t0 = time.monotonic()
                r = sender.command("/feedback", f"Flood check {n}-{i}: SSO login loops on Safari 🙃", user=REP)
                elapsed = time.monotonic() - t0
                assert r.status_code == 200, r.text
                with lock:
                    out.append(elapsed)
                time.sleep(0.05)
        finally:
            sender.close()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted(out)


def test_a_100_mb_junk_post_does_not_slow_the_acks_slack_waits_for(env, fake, db, tmp_path):
    web = BotProcess.serve(env, log=tmp_path / "web.log")
    stop, started = threading.Event(), threading.Event()
    attackers = [threading.Thread(target=flood, args=(web.url, stop, started), kwargs={"chunked": c}, daemon=True)
                 for c in (False, True)]
    try:
        for a in attackers:
            a.start()
        assert started.wait(10)
        lat = ack_latencies(web.url)
    finally:
        stop.set()
        for a in attackers:
            a.join(timeout=60)
        web.stop()
    p99 = lat[max(0, round(0.99 * len(lat)) - 1)]
    assert p99 < 1.5, f"p99 {p99:.2f}s, max {lat[-1]:.2f}s"  # Slack's deadline is 3 s
    assert len(export(db)) == len(lat)
    log = (tmp_path / "web.log").read_text(errors="replace")
    assert MARKER not in log and len(log) < 200_000


# --- slow and idle connections -----------------------------------------------------------------------------


def test_stalled_connections_never_starve_real_requests_and_are_closed(env, fake, db, tmp_path):
    from bot.core.httplimits import HEAD_DEADLINE_S

    # 256 descriptors: a 340-connection slowloris would exhaust them (it did: accept() failed and real
    # requests waited forever).
    web = BotProcess.serve(env, log=tmp_path / "web.log", nofile=256)
    addr = _addr(web.url)
    heads, bodies = [], []
    try:
        for _ in range(300):  # never finish their headers
            s = socket.create_connection(addr)
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: loopline.example\r\nX-Slack-Req")
            heads.append(s)
        for _ in range(40):  # headers done, the body never comes
            s = socket.create_connection(addr)
            s.sendall(_head(length=2000, content_type="application/x-www-form-urlencoded") + b"token=x&text=")
            bodies.append(s)
        opened = time.monotonic()
        sender = SlackSender(web.url, SIGNING_SECRET)
        sender.http.timeout = httpx.Timeout(10)
        t0 = time.monotonic()
        r = sender.command("/feedback", "Real request during a slowloris: invoices €0.00", user=REP)
        assert r.status_code == 200 and "FB-" in r.json()["text"]
        assert time.monotonic() - t0 < 1.5
        # Every stalled connection is closed by the server: the headers' and the body's deadlines.
        statuses = [_response(s, timeout=max(0.1, opened + HEAD_DEADLINE_S + 5 - time.monotonic()))
                    for s in heads + bodies]
        assert all(closed for _status, closed in statuses), sum(1 for _s, c in statuses if not c)
        assert {st for st, _c in statuses[len(heads):]} == {408}
        assert sender.command("/feedback", "Still serving after the slowloris", user=REP).status_code == 200
        sender.close()
    finally:
        for s in heads + bodies:
            s.close()
        web.stop()
    assert len(export(db)) == 2


# --- the install page --------------------------------------------------------------------------------------


def test_install_page_is_rate_limited_per_client_and_expired_states_are_purged(fake, db, db_url):
    from datetime import UTC, datetime, timedelta

    settings = load_settings(slack_client_id="111.222", slack_client_secret="oauth-secret",
                             slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url, database_url=db_url,
                             loopline_encryption_key=ENCRYPTION_KEY)
    srv = RunningServer(settings)
    states = srv.rt.oauth_stores[1].oauth_states
    # Abandoned installs from last week (stamped on the store's own clock, as slack-sdk does).
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=7)
    with db.engine.begin() as c:
        c.execute(insert(states), [{"state": str(uuid.uuid4()), "expire_at": long_ago} for _ in range(500)])
    try:
        with httpx.Client(base_url=srv.url) as http:
            codes = [http.get("/slack/install").status_code for _ in range(60)]
            other = http.get("/slack/install", headers={"x-forwarded-for": "203.0.113.7"})
            limited = http.get("/slack/install")
        assert codes[0] == 200 and 429 in codes
        allowed = codes.index(429)
        assert 3 <= allowed <= 20 and set(codes[allowed:]) == {429}
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert other.status_code == 200  # another client has its own budget
        with db.engine.connect() as c:
            assert c.scalar(select(func.count()).select_from(states)) == allowed + 1  # the old ones are gone
    finally:
        srv.stop()
