"""Trust nothing the client can forge: modal metadata, button values and ids, and the words people type.

Slack signs every request, but what a button carries (`value`) and what a modal carries back
(`private_metadata`) are whatever the client sent. Rights are re-checked from the database on
submit, every public id is looked up inside the workspace of the request, and user text is escaped in
every text that leaves.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.core import clock
from bot.core.models import Acknowledgement, Feedback
from bot.core.settings import load_settings
from bot.devtools.fakeslack import default_oauth_response
from bot.features.announcements import service as an_svc
from bot.features.decisions import service as dec_svc
from bot.features.feedback import render as fb_render
from bot.features.subscriptions import service as sub_svc
from tests.conftest import ADMIN, ENCRYPTION_KEY, PM, REP, SIGNING_SECRET, RunningServer, export
from tests.support.slack_requests import SlackSender, select_value, text_value
from tests.test_announcements_e2e import modal_values, open_modal, seed_subscriptions, wait
from tests.test_never_pings import PINGS, mrkdwn_texts

A, B = "T0001", "T0B2222"
EVE, B_ANNOUNCER = "U0BEVE", "U0BANN"  # people of workspace B (B's announcer is in LOOPLINE_ANNOUNCERS)
SECRET_TEXT = "Acme: SSO loops on Safari — renewal at risk (don't share outside)"


def _view(call: Any) -> dict[str, Any]:
    view = call.params["view"]
    return json.loads(view) if isinstance(view, str) else view


# --- the announce permission -------------------------------------------------------------------------------


def test_a_forged_announce_submission_from_a_non_admin_is_refused(server, slack, fake, db):
    seed_subscriptions(db, {"C0SALES": "billing"})
    real = open_modal(slack, fake, user=ADMIN)  # a genuine modal, to copy its shape
    meta = json.loads(real["private_metadata"])
    # REP is no admin: the metadata claims REP opened the modal, and the view is one REP never had.
    forged = {**real, "id": "V0FORGED", "private_metadata": json.dumps({**meta, "opener": REP})}
    r = slack.view_submission(forged, modal_values("Price increase <!channel>", "Everyone pays 2x.", ["billing"]),
                              user=REP)
    assert r.json()["response_action"] == "errors" and "admins" in json.dumps(r.json())
    # The admin's modal, submitted by someone else, is refused too.
    r = slack.view_submission(real, modal_values("Price increase", "Everyone pays 2x.", ["billing"]), user=REP)
    assert r.json()["response_action"] == "errors"
    server.settle()
    assert export(db, "announcements") == []
    assert fake.bot_messages("C0SALES") == []
    # The admin's own submission goes out.
    r = slack.view_submission(real, modal_values("Invoices get a PO field", "From Monday.", ["billing"]), user=ADMIN)
    assert r.status_code == 200 and r.text == ""
    assert wait(lambda: [a["status"] for a in export(db, "announcements")] == ["sent"], 20)


# --- one workspace never reaches another's items -------------------------------------------------------------


def _install(srv: RunningServer, fake: Any, team: str, token: str) -> None:
    fake.oauth_response = {**default_oauth_response(), "access_token": token, "bot_user_id": "UBOT",
                           "team": {"id": team, "name": f"Workspace {team}"}}
    with httpx.Client(base_url=srv.url) as http:
        page = http.get("/slack/install")
        state = re.search(r"state=([\w-]+)", page.text).group(1)  # type: ignore[union-attr]
        done = http.get(f"/slack/oauth_redirect?code=good-{team}&state={state}",
                        cookies={"slack-app-oauth-state": state})
        assert done.status_code == 200, done.text


@pytest.fixture
def two_workspaces(fake, db, db_url):
    settings = load_settings(slack_client_id="111.222", slack_client_secret="oauth-secret",
                             slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url, database_url=db_url,
                             loopline_log_format="text", loopline_announcers=B_ANNOUNCER,
                             loopline_encryption_key=ENCRYPTION_KEY)
    srv = RunningServer(settings)
    _install(srv, fake, A, "xoxb-workspace-a-1111")
    _install(srv, fake, B, "xoxb-workspace-b-2222")
    fake.add_user(EVE, "eve", real_name="Eve (workspace B)", team_id=B)
    fake.add_user(B_ANNOUNCER, "bann", real_name="B's announcer", team_id=B)
    fake.add_channel("C0BGEN", "b-general", members=[EVE, B_ANNOUNCER], team_id=B)
    sender = SlackSender(srv.url, SIGNING_SECRET, response_url_base=fake.url.rstrip("/") + "/webhook")
    yield srv, sender
    sender.close()
    srv.stop()


def _item(db: Any, fid: int) -> dict[str, Any]:
    return next(r for r in export(db) if r["id"] == f"FB-{fid}")


def test_workspace_b_cannot_open_or_overwrite_workspace_a_feedback(two_workspaces, fake, db):
    srv, slack = two_workspaces
    r = slack.command("/feedback", SECRET_TEXT, user=REP, team=A)
    fid = int(r.json()["text"].split("FB-")[1].split()[0].strip("*."))
    with db.session() as s:
        item = s.get(Feedback, fid)
        item.customer, item.arr = "Acme Corp", 120_000.0
    before = _item(db, fid)

    # "Add details" and "Link to decision" with A's id, clicked in B.
    slack.block_action(user=EVE, action_id="feedback_details", value=str(fid), channel="C0BGEN", team=B,
                       response_url=fake.response_url("details"))
    slack.block_action(user=EVE, action_id="feedback_link_decision", value=str(fid), channel="C0BGEN", team=B,
                       response_url=fake.response_url("link"))
    for name in ("details", "link"):
        assert f"FB-{fid}" in json.dumps(fake.wait_for_webhook(name))
    opened = json.dumps([_view(c) for c in fake.calls_to("views.open")])
    assert "Acme" not in opened and "Safari" not in opened and "120" not in opened

    # The details form submitted from B with A's id in its metadata.
    forged = fb_render.feedback_modal(metadata={"feedback_id": fid, "channel": "C0BGEN"}, text="x")
    values = {"fb_text": text_value("Nothing to see here"), "fb_customer": text_value("Evil Corp"),
              "fb_arr": text_value("1"), "fb_area": text_value("pwned"), "fb_kind": select_value("praise")}
    r = slack.view_submission({**forged, "id": "V0EVE1"}, values, user=EVE, team=B)
    assert r.json()["response_action"] == "errors"
    srv.settle()
    assert _item(db, fid) == before


def test_workspace_b_cannot_acknowledge_edit_retract_or_cancel_workspace_a_announcements(two_workspaces, fake, db):
    srv, slack = two_workspaces
    with db.session() as s:
        sub_svc.subscribe(s, team_id=A, channel_id="C0PRODUCT", text="billing", by=ADMIN, may_create=True)
        sent = an_svc.create_announcement(s, team_id=A, source_key="t:sent", title="Invoices get a PO field",
                                          body="Internal: for Acme first.", areas=["billing"], author=ADMIN)
        later = an_svc.create_announcement(s, team_id=A, source_key="t:later", title="Dunning emails",
                                           body="Next month.", areas=["billing"], author=ADMIN,
                                           send_at=clock.now() + timedelta(days=3))
    srv.settle()

    # "Got it" on A's announcement, from B.
    slack.block_action(user=EVE, action_id="announce_ack", value=str(sent.id), channel="C0BGEN", team=B)
    # B's announcer (in LOOPLINE_ANNOUNCERS) presses Edit, Retract and Cancel with A's ids.
    slack.block_action(user=B_ANNOUNCER, action_id="announce_edit", value=str(sent.id), channel="C0BGEN", team=B,
                       response_url=fake.response_url("edit"))
    slack.block_action(user=B_ANNOUNCER, action_id="announce_retract", value=str(sent.id), channel="C0BGEN", team=B,
                       response_url=fake.response_url("retract"))
    slack.block_action(user=B_ANNOUNCER, action_id="announce_cancel", value=str(later.id), channel="C0BGEN",
                       team=B, response_url=fake.response_url("cancel"))
    # ...and submits an edit form naming A's announcement.
    edit_form = {"type": "modal", "callback_id": "announce_modal", "id": "V0BANN1",
                 "private_metadata": json.dumps({"opener": B_ANNOUNCER, "edit": sent.id}), "blocks": []}
    r = slack.view_submission(edit_form, modal_values("Pwned", "Pwned", []), user=B_ANNOUNCER, team=B)
    assert r.json()["response_action"] == "errors"
    for name in ("edit", "retract", "cancel"):
        fake.wait_for_webhook(name)
    srv.settle()

    with db.read_session() as s:
        assert s.query(Acknowledgement).count() == 0
    opened = json.dumps([_view(c) for c in fake.calls_to("views.open")])
    assert "Internal: for Acme" not in opened
    records = {r["id"]: r for r in export(db, "announcements")}
    assert records[f"AN-{sent.id}"]["title"] == "Invoices get a PO field"
    assert records[f"AN-{sent.id}"]["status"] in ("sending", "sent")
    assert records[f"AN-{later.id}"]["status"] == "scheduled"


def test_workspace_b_cannot_change_a_decision_of_workspace_a(two_workspaces, fake, db):
    srv, slack = two_workspaces
    with db.session() as s:
        d, _ = dec_svc.create_decision(s, team_id=A, source_key="t:d1", title="Sunset the v1 API",
                                       created_by=PM, channel="C0PRODUCT", owner=B_ANNOUNCER)
    srv.settle()
    # Even a person named as owner can't move it from another workspace.
    slack.block_action(user=B_ANNOUNCER, action_id="decision_status:decided", value=str(d.id), channel="C0BGEN",
                       team=B)
    srv.settle()
    assert [r["status"] for r in export(db, "decisions")] == ["proposed"]


# --- user text in every reply ------------------------------------------------------------------------------


HOSTILE = "<!channel> <@U0GUEST> <https://evil.example|click me> & co"


def test_command_arguments_are_escaped_in_every_text_that_leaves(server, slack, fake, db):
    with db.session() as s:
        sub_svc.subscribe(s, team_id=A, channel_id="C0PRODUCT", text=HOSTILE, by=ADMIN, may_create=True)
    acks = [
        slack.command("/feedback", f"account {HOSTILE} 120k", user=REP, channel="C0ACME").json(),
        slack.command("/digest", f"sometimes {HOSTILE}", user=PM, channel="C0PRODUCT").json(),
        slack.command("/digest", f"weekly {HOSTILE} 09:00", user=PM, channel="C0PRODUCT").json(),
        slack.command("/subscribe", "", user=PM, channel="C0PRODUCT").json(),
        slack.command("/unsubscribe", HOSTILE, user=PM, channel="C0SALES").json(),
    ]
    texts = mrkdwn_texts(acks)
    assert all(PINGS.search(t) is None for t in texts), [t for t in texts if PINGS.search(t)]
    # Shown, not dropped: every reply names what was typed, escaped.
    for ack in acks:
        assert "&lt;!channel&gt;" in ack["text"], ack["text"]
