"""`loopline demo`, continued: subscriptions, an announcement, a decision that closes the loop, the digest,
and App Home. Each factory gets (slack, fake, rt, settle, posted, private) and returns (title, fn).

STEPS is the explicit list bot/demo.py runs after its own steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bot.core.models import DigestRun
from bot.devtools.demo_text import ADMIN, PM, REP, REP2
from bot.devtools.demo_text import blocks_text as _blocks_text
from bot.devtools.demo_text import show as _show
from bot.devtools.slack_requests import TEAM, text_value
from bot.features.subscriptions.service import ensure_area
from bot.slack.ids import Block

Step = tuple[str, Callable[[], None]]

# The rest of a realistic week, so the digest has themes to find (typos, emoji, pings and all).
WEEK = [
    (REP, "Acme again: CSV export drops the custom fields, they rebuild it every Monday 😩"),
    (ADMIN, "globex wants custom fields in the csv export too — 'dealbreaker' per their ops lead (call notes)"),
    (REP, "Initech: CSV export times out over 50k rows <!here> pls look"),
    (REP2, "SSO w/ Okta is blocking the Umbrella renewal ($120k) & their IT won't budge"),
    (REP, "Okta SSO again: Hooli security review flagged password logins 🔐"),
    (REP2, "Mobile app crashes on Android 14 when opening a shared board (Pixel 8)"),
    (REP, "android app crash on launch after update, 3 reps at Soylent saw it"),
    (REP2, "Invoice PDF shows the wrong VAT for AT customers — finance is <annoyed>"),
    (REP, "wrong VAT on invoices for Austrian customers again?? 2nd time this month"),
    (REP2, "Billing: Vienna office got invoices with German VAT (19%) instead of 20% 🙃"),
]


def _wait(cond: Callable[[], Any], timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError("the demo waited too long for the bot")


NAMES = {ADMIN: "dana", PM: "priya", REP: "sam", REP2: "lee"}


class _Inbox:
    """What a person privately received since the last look (ephemerals and DMs), printed once each."""

    def __init__(self, fake: Any, user: str):
        self.fake, self.user = fake, user
        self.eph, self.dm = len(fake.ephemerals(user=user)), len(fake.dms(user))

    def show(self) -> None:
        eph, dms = self.fake.ephemerals(user=self.user), self.fake.dms(self.user)
        for e in eph[self.eph:]:
            _show(f"only {NAMES[self.user]} sees", _blocks_text(e))
        for m in dms[self.dm:]:
            _show(f"DM to {NAMES[self.user]}", _blocks_text(m))
        self.eph, self.dm = len(eph), len(dms)


def _opened_view(fake: Any, before: int) -> dict[str, Any]:
    """The modal the bot opened after `before` views.open calls (as the fake received it)."""
    calls = _wait(lambda: fake.calls_to("views.open")[before:])
    view = calls[-1].params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def _views_opened(fake: Any) -> int:
    return len(fake.calls_to("views.open"))


def subscribe(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:

        # An admin set the workspace's product areas up long ago; only admins and announcers create new ones.
        with rt.db.session() as s:
            for label in ("Exports", "SSO", "Billing", "Mobile app"):
                ensure_area(s, team_id=TEAM, label=label, by=ADMIN)
        print("   (the workspace's product areas: Exports, SSO, Billing, Mobile app)")
        r = slack.command("/subscribe", "exports", user=PM, channel="C0RELEASES", channel_name="releases",
                          response_url=fake.response_url("demo-sub"))
        if r.text and r.json().get("text"):
            _show("only priya sees", _blocks_text(r.json()))
        settle()
        for body in fake.webhook_posts("demo-sub"):
            _show("only priya sees", _blocks_text(body))

    return "priya (PM) subscribes #releases to the “exports” area: /subscribe exports", run


def announce(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:
        n = _views_opened(fake)
        slack.command("/announce", "", user=ADMIN, channel="C0PRODUCT", channel_name="product")
        view = _opened_view(fake, n)
        labels = [b["label"]["text"] for b in view["blocks"] if b.get("type") == "input"]
        print(f"   (a modal opens for dana: {' · '.join(labels)})")
        values = {
            Block.AN_TITLE: text_value("CSV export now keeps your custom fields 🎉"),
            Block.AN_BODY: text_value("From today the CSV export includes *custom fields* & tags, in the order you "
                                      "set them. Exports over 50k rows are streamed, so no more timeouts.\n"
                                      "Thanks to everyone who flagged it (looking at you, <sales>)!"),
            Block.AN_AREAS: {"value": {"type": "multi_static_select",
                                       "selected_options": [{"value": "exports",
                                                             "text": {"type": "plain_text", "text": "Exports"}}]}},
            Block.AN_SEND_AT: {"value": {"type": "datetimepicker", "selected_date_time": None}},
        }
        slack.view_submission(view, values, user=ADMIN)
        _wait(lambda: fake.bot_messages("C0RELEASES"))
        settle()
        posted("C0RELEASES", "releases")
        private(ADMIN)
        copy = fake.bot_messages("C0RELEASES")[-1]
        aid = copy["metadata"]["event_payload"]["announcement_id"]
        sam = _Inbox(fake, REP)
        slack.block_action(user=REP, action_id="announce_ack", value=str(aid), channel="C0RELEASES",
                           message_ts=copy["ts"])
        print("   (sam clicks “Got it” under the announcement)")
        settle()
        _wait(lambda: len(fake.ephemerals(user=REP)) > sam.eph, 5)
        sam.show()

    return "dana (admin) runs /announce and submits the modal", run


def decide(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:
        n = _views_opened(fake)
        title = "Ship custom fields in CSV export (v2)"
        slack.command("/decision", title, user=PM, channel="C0PRODUCT", channel_name="product")
        view = _opened_view(fake, n)
        values = {
            "dec_title": text_value(title),
            "dec_context": text_value("Acme + Globex rebuild exports by hand; ~2 eng-weeks. Okta SSO is next."),
            "dec_status": {"value": {"type": "static_select", "selected_option": {
                "value": "in_review", "text": {"type": "plain_text", "text": "In review"}}}},
            "dec_owner": {"value": {"type": "users_select", "selected_user": PM}},
            "dec_due": {"value": {"type": "datepicker", "selected_date": None}},
            "dec_area": text_value("exports"),
            "dec_feedback": text_value("FB-2"),
        }
        r = slack.view_submission(view, values, user=PM)
        if r.text:
            print(f"   (the modal refused: {r.text})")
        _wait(lambda: fake.bot_messages("C0PRODUCT"))
        settle()
        posted("C0PRODUCT", "product")
        card = fake.bot_messages("C0PRODUCT")[-1]
        number = next(e["value"] for b in card.get("blocks", []) if b.get("type") == "actions"
                      for e in b["elements"] if e.get("action_id") == "decision_status:decided")
        print("   (priya clicks “Decided” on the card)")
        inboxes = [_Inbox(fake, u) for u in (REP, REP2)]
        slack.block_action(user=PM, action_id="decision_status:decided", value=number, channel="C0PRODUCT",
                           message_ts=card["ts"])
        settle()
        status = fake.message("C0PRODUCT", card["ts"]) or card
        shown = _blocks_text(status).splitlines()
        now = next((shown[i + 1] for i, line in enumerate(shown[:-1]) if line.strip() == "*Status*"), "?")
        _show("#product (bot)", f"(the card is updated in place: Status {now.strip()})")
        for m in fake.replies("C0PRODUCT", card["ts"]):
            if m["ts"] != card["ts"]:
                _show("  ↳ thread", _blocks_text(m))
        _wait(lambda: len(fake.dms(REP)) > inboxes[0].dm, 5)
        for inbox in inboxes:
            inbox.show()
        print(f"   (#ext-acme still has {len(fake.bot_messages('C0ACME'))} bot messages: the customer hears it "
              "from sam, not from a bot)")

    return "priya logs a decision linked to FB-2 (/decision), then marks it Decided", run


def week(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:
        for user, text in WEEK:
            slack.command("/feedback", text, user=user, channel="C0SALES")
        settle()
        print(f"   ({len(WEEK)} more items captured with /feedback in #sales, e.g. “{WEEK[2][1]}”)")

    return "the rest of the week: sam, lee and dana capture what they hear", run


def digest(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:
        from sqlalchemy import select


        r = slack.command("/digest", "now", user=PM, channel="C0PRODUCT", channel_name="product")
        _show("only priya sees", r.json().get("text", ""))

        def done() -> Any:
            with rt.db.read_session() as s:
                return s.scalar(select(DigestRun.ts).where(DigestRun.status == "posted"))

        parent_ts = _wait(done, 15)
        settle()
        parent = next(m for m in fake.bot_messages("C0PRODUCT") if m["ts"] == parent_ts)
        _show("#product (bot)", _blocks_text(parent))
        for m in fake.replies("C0PRODUCT", parent_ts):
            if m["ts"] == parent_ts:
                continue
            if m.get("files"):
                _show("  ↳ thread", "📈 " + ", ".join(f.get("title") or f.get("name", "chart") for f in m["files"]))
            else:
                _show("  ↳ thread", _blocks_text(m))
        for f in fake.files:
            if f.get("thread_ts") == parent_ts and not any(f.get("id") == x.get("id") for m in
                                                           fake.replies("C0PRODUCT", parent_ts)
                                                           for x in m.get("files") or []):
                _show("  ↳ thread", f"📈 {f.get('title') or f.get('name')} ({f.get('length', 0)} bytes PNG)")

    return "priya posts the digest in #product: /digest now", run


def home(slack: Any, fake: Any, rt: Any, settle: Any, posted: Any, private: Any) -> Step:
    def run() -> None:
        slack.event({"type": "app_home_opened", "user": ADMIN, "channel": "D0DANAHOME", "tab": "home",
                     "event_ts": f"{time.time():.6f}"})
        view = _wait(lambda: fake.home_view(ADMIN))
        _show("dana's Home", _blocks_text(view))

    return "dana opens Loopline's App Home", run


STEPS: list[Callable[..., Step]] = [subscribe, announce, decide, week, digest, home]
