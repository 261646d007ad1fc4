"""`loopline demo`: a short, realistic session against a local stand-in for Slack.

It starts the real server (same code as `loopline serve`) on a free local port, a fake Slack Web API
beside it, sends requests signed exactly as Slack signs them, and prints what the bot posted.
No credentials, no network: SQLite in a temporary folder, offline themes.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.core import clock
from bot.devtools import demo_steps
from bot.devtools.demo_text import ADMIN, CUSTOMER, PM, REP, REP2
from bot.devtools.demo_text import blocks_text as _blocks_text
from bot.devtools.demo_text import say as _say
from bot.devtools.demo_text import show as _show

SECRET = "demo-signing-secret"


class _Server:
    def __init__(self, rt: Any):
        import uvicorn

        from bot.server import create_asgi_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_asgi_app(rt), log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run_demo(*, keep: bool = False) -> int:
    import logging

    from bot.core.settings import load_settings
    from bot.devtools.fakeslack import FakeSlack
    from bot.devtools.slack_requests import SlackSender
    from bot.runtime import Runtime

    logging.getLogger().setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="loopline-demo-"))
    fake = FakeSlack().start()
    for uid, name, admin in [(ADMIN, "dana (admin)", True), (PM, "priya (PM)", False), (REP, "sam (sales)", False),
                             (REP2, "lee (sales)", False), (CUSTOMER, "jo@acme", False)]:
        fake.add_user(uid, name, real_name=name, is_admin=admin, tz="Europe/Berlin")
    fake.add_channel("C0SALES", "sales", members=[REP, REP2, PM, ADMIN])
    fake.add_channel("C0ACME", "ext-acme", members=[REP, CUSTOMER], ext_shared=True)
    fake.add_channel("C0PRODUCT", "product", members=[PM, ADMIN])
    fake.add_channel("C0RELEASES", "releases", members=[PM, ADMIN, REP])
    settings = load_settings(slack_bot_token="xoxb-demo", slack_signing_secret=SECRET, slack_api_url=fake.base_url,
                             database_url=f"sqlite:///{workdir / 'loopline-demo.db'}", openai_api_key=None,
                             loopline_embedder="tfidf", loopline_workspace_rate=20.0)
    rt = Runtime(settings)
    srv = _Server(rt)
    slack = SlackSender(srv.url, SECRET, response_url_base=fake.url.rstrip("/") + "/webhook")
    names = {ADMIN: "dana", PM: "priya", REP: "sam", REP2: "lee", CUSTOMER: "jo@acme"}

    def settle(timeout: float = 15) -> None:

        from sqlalchemy import func, select

        from bot.core.models import Delivery, Job

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with rt.db.read_session() as s:
                now = clock.now()
                busy = s.scalar(select(func.count()).select_from(Job).where(Job.status == "pending",
                                                                             Job.run_after <= now)) or 0
                busy += s.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.status.in_(("pending", "sending")), Delivery.next_attempt_at <= now)) or 0
            if not busy:
                return
            rt.worker.wake()
            time.sleep(0.1)

    seen: set[str] = set()

    def posted(channel: str, label: str) -> None:
        for m in fake.messages(channel):
            key = f"{channel}:{m['ts']}:{m.get('edited', '')}"
            if m.get("bot_id") and key not in seen:
                seen.add(key)
                _show(f"#{label} (bot)", _blocks_text(m))

    def private(user: str) -> None:
        for n, e in enumerate(fake.ephemerals(user=user)):
            key = f"eph:{user}:{n}"  # the fake returns copies, so position is the stable identity
            if key not in seen:
                seen.add(key)
                _show(f"only {names[user]} sees", _blocks_text(e))
        for m in fake.dms(user):
            key = f"dm:{m['ts']}"
            if key not in seen:
                seen.add(key)
                _show(f"DM to {names[user]}", _blocks_text(m))

    steps: list[tuple[str, Callable[[], None]]] = []

    def step(title: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
        def add(fn: Callable[[], None]) -> Callable[[], None]:
            steps.append((title, fn))
            return fn

        return add

    @step("sam types /feedback in #sales")
    def _() -> None:
        r = slack.command("/feedback", "Acme wants SSO via Okta before the Q3 renewal — <!channel> this is urgent & blocking",
                          user=REP, channel="C0SALES")
        _show("only sam sees", _blocks_text(r.json()))

    @step("jo@acme writes in the shared channel #ext-acme; sam reacts with :bulb:, lee adds :memo:")
    def _() -> None:
        ts = fake.add_message("C0ACME", "Could exports include the *custom fields*? We rebuild them by hand every "
                                        "Monday 😩 (<@U0REP> knows)", user=CUSTOMER)
        slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb", ext_shared=True)
        slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="memo", ext_shared=True)
        settle()
        private(REP)
        private(REP2)
        print("   (nothing is posted in the customer channel: #ext-acme has "
              f"{len(fake.bot_messages('C0ACME'))} bot messages)")

    @step("the same event retried by Slack (X-Slack-Retry-Num: 1) changes nothing")
    def _() -> None:
        ts = fake.messages("C0ACME")[-1]["ts"]
        for retry in (None, 1):
            slack.reaction("reaction_added", user=REP2, channel="C0ACME", ts=ts, reaction="bug", event_id="EvDEMO1",
                           retry_num=retry)
        settle()

    for extra in demo_steps.STEPS:
        steps.append(extra(slack, fake, rt, settle, posted, private))

    try:
        for title, fn in steps:
            _say(title)
            fn()
        settle()
        _say("loopline export feedback")
        from bot.core.exports import export_records

        with rt.db.read_session() as s:
            for line in export_records(s, "feedback", rt.exporters()):
                rec = json.loads(line)
                print(f"   {rec['id']}: votes={rec['votes']} source={rec['source']} kind={rec['kind']} "
                      f"customer={rec['customer']} text={rec['text'][:60]!r}")
        print(f"\nThe fake Slack received {len(fake.calls)} Web API calls. Database: {workdir / 'loopline-demo.db'}"
              + ("" if keep else " (removed)"))
    finally:
        srv.stop()
        fake.stop()
        slack.close()
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return 0

