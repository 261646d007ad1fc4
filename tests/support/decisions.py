"""Decisions driven as a person would: capture a customer's message, log a decision, click its buttons."""

from __future__ import annotations

import json
from typing import Any

from tests.support.env import CUSTOMER, PM, REP, REP2, export
from tests.support.slack_requests import text_value

TITLE = "Drop IE11 & <!channel> support for the <admin> console 🚀"


CONTEXT = "Usage is <1% — see <@U0CUST>'s thread; \"legacy\" & risky"


ACME_SAYS = "We still have 40 kiosks on IE11 <!here> & can't upgrade before Q3 😬"


def users_value(u: str | None) -> dict[str, Any]:
    return {"value": {"type": "users_select", "selected_user": u}}


def date_value(d: str | None) -> dict[str, Any]:
    return {"value": {"type": "datepicker", "selected_date": d}}


def status_value(s: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": s, "text": {"type": "plain_text",
                                                                                         "text": s}}}}


def view_of(call: Any) -> dict[str, Any]:
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def capture_acme(server, slack, fake) -> tuple[str, str]:
    """REP tags a customer's message in the shared channel: reporter CUSTOMER, captured by REP."""
    ts = fake.add_message("C0ACME", ACME_SAYS, user=CUSTOMER)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="memo", ext_shared=True)
    server.settle()
    fid = next(r["id"] for r in export(server.rt.db) if r["ts"] == ts)
    return fid, ts


def capture_command(slack, text: str, user: str = REP2) -> str:
    return slack.command("/feedback", text, user=user, channel="C0SALES").json()["text"].split()[-1]


def open_decision_modal(slack, fake, *, title: str = TITLE, user: str = PM, channel: str = "C0SALES") -> dict:
    n = len(fake.calls_to("views.open"))
    r = slack.command("/decision", title, user=user, channel=channel)
    assert r.status_code == 200 and r.text == ""
    calls = fake.wait_for("views.open", count=n + 1)
    return view_of(calls[n])


def log_decision(server, slack, fake, *, feedback: str = "", status: str = "proposed", owner: str = PM,
                 channel: str = "C0SALES", user: str = PM, due: str | None = "2031-03-31") -> dict:
    view = open_decision_modal(slack, fake, user=user, channel=channel)
    values = {"dec_title": text_value(TITLE), "dec_context": text_value(CONTEXT), "dec_status": status_value(status),
              "dec_owner": users_value(owner), "dec_due": date_value(due), "dec_area": text_value(" Admin  Console "),
              "dec_feedback": text_value(feedback)}
    r = slack.view_submission(view, values, user=user)
    assert r.status_code == 200 and r.text == "", r.text
    server.settle()
    return export(server.rt.db, "decisions")[-1]


def click(slack, *, user: str, decision: dict, status: str, action_ts: str | None = None,
          overflow: bool = False) -> None:
    number = decision["id"].split("-")[1]
    if overflow:
        r = slack.block_action(user=user, action_id="decision_overflow", channel=decision["channel"],
                               message_ts=decision["ts"], action_ts=action_ts,
                               extra_action={"type": "overflow", "selected_option": {"value": f"{number}:{status}"}})
    else:
        r = slack.block_action(user=user, action_id=f"decision_status:{status}", value=number,
                               channel=decision["channel"], message_ts=decision["ts"], action_ts=action_ts)
    assert r.status_code == 200
