"""`loopline demo`: a short, realistic session against a local stand-in for Slack.

It starts the real server (same code as `loopline serve`) on a free local port, a fake Slack Web API
beside it, sends requests signed exactly as Slack signs them, and prints what the bot posted.
No credentials, no network: SQLite in a temporary folder, offline themes.
"""

from __future__ import annotations

import html
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot import clock

SECRET = "demo-signing-secret"
ADMIN, PM, REP, REP2, CUSTOMER = "U0ADMIN", "U0PM", "U0REP", "U0REP2", "U0CUST"


def _say(title: str) -> None:
    print(f"\n\033[1m▶ {title}\033[0m" if os.isatty(1) else f"\n> {title}")


def _show(label: str, text: str) -> None:
    for i, line in enumerate(text.strip().splitlines() or [""]):
        print(f"   {label if i == 0 else ' ' * len(label)} │ {line}")


def _blocks_text(msg: dict[str, Any]) -> str:
    """A terminal rendering of what a person would read in Slack."""
    out: list[str] = []
    for b in msg.get("blocks") or []:
        if b.get("type") in ("section", "header"):
            t = (b.get("text") or {}).get("text")
            if t:
                out.append(t)
            for f in b.get("fields") or []:
                out.append(f.get("text", ""))
        elif b.get("type") == "context":
            out.append("  " + " · ".join(e.get("text", "") for e in b.get("elements", []) if isinstance(e, dict)))
        elif b.get("type") == "actions":
            out.append("  [" + "] [".join(e.get("text", {}).get("text", "…") for e in b.get("elements", [])) + "]")
    # Slack shows &lt; as <: unescape so the terminal reads like the client (the wire text stays escaped).
    return html.unescape("\n".join(out) or msg.get("text", ""))


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

    from bot.devtools.fakeslack import FakeSlack
    from bot.devtools.slack_requests import SlackSender
    from bot.runtime import Runtime
    from bot.settings import load_settings

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

        from bot.models import Delivery, Job

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

    for extra in DEMO_STEPS:
        steps.append(extra(slack, fake, rt, settle, posted, private))

    try:
        for title, fn in steps:
            _say(title)
            fn()
        settle()
        _say("loopline export feedback")
        from bot.exports import export_records

        with rt.db.read_session() as s:
            for line in export_records(s, "feedback"):
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


# Features append step factories: fn(slack, fake, rt, settle, posted, private) -> (title, fn).
DEMO_STEPS: list[Callable[..., tuple[str, Callable[[], None]]]] = []

# Importing the module registers the later steps (subscriptions, announcement, decision, digest, Home).
import bot.devtools.demo_steps  # noqa: E402,F401
