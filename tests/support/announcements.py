"""Announcements driven as a person would: open the /announce modal, fill it in, wait for the fan-out."""

from __future__ import annotations

import time
from typing import Any

from bot.core.db import Database
from bot.features.subscriptions import service as sub_svc
from tests.support.env import ADMIN, export
from tests.support.slack_requests import SlackSender, text_value

TEAM = "T0001"


def wait(cond: Any, timeout: float = 15.0, msg: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting {msg}")


def wait_status(db: Database, status: str, timeout: float = 20.0) -> dict[str, Any]:
    return wait(lambda: next((r for r in export(db, "announcements") if r["status"] == status), None), timeout,
                f"for an announcement {status}")


def copies(fake: Any, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.bot_messages(channel)
            if (m.get("metadata") or {}).get("event_type") == "loopline_announcement"]


def seed_subscriptions(db: Database, plan: dict[str, str]) -> None:
    with db.session() as s:
        for channel, areas in plan.items():
            sub_svc.subscribe(s, team_id=TEAM, channel_id=channel, text=areas, by=ADMIN, may_create=True)


def open_modal(slack: SlackSender, fake: Any, user: str = ADMIN) -> dict[str, Any]:
    before = len(fake.views)
    slack.command("/announce", "", user=user, channel="C0PRODUCT", channel_name="product")
    fake.wait_until(lambda: len(fake.views) > before, 5, "for views.open")
    return fake.views[-1]["view"]


def modal_values(title: str, body: str, areas: list[str], send_at: int | None = None,
                 decisions: str | None = None) -> dict[str, Any]:
    return {
        "an_title": text_value(title), "an_body": text_value(body),
        "an_areas": {"value": {"type": "multi_static_select",
                               "selected_options": [{"value": a, "text": {"type": "plain_text", "text": a}}
                                                    for a in areas]}},
        "an_send_at": {"value": {"type": "datetimepicker", "selected_date_time": send_at}},
        "an_decisions": text_value(decisions),
    }
