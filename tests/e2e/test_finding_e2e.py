"""Finding feedback from Slack end to end: `/feedback search`, paging, the App Home search form, and
`/feedback customer`, through signed requests against the fake Slack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.core.settings import Settings, load_settings
from bot.features.decisions import service as dec_svc
from bot.features.feedback import merging
from bot.features.feedback import service as fb_svc
from tests.support.env import ADMIN, BOT_TOKEN, CUSTOMER, EXT_TEAM, PM, REP, REP2, SIGNING_SECRET
from tests.support.slack_requests import text_value

SSO = [
    "Okta SSO logs everyone out after 10 minutes <!channel> & nobody can work",
    "SSO session via Okta expires way too fast, users sign in again all day",
    "Okta SSO: logout after ten minutes breaks the kiosk app",
    "Our Okta single sign-on kicks people out every 10 min",
    "SSO with Okta: session timeout should be configurable per group",
    "Okta SSO drops the session when switching tabs",
    "SSO login loop with Okta on Safari",
]
OTHER = ["Dark mode for the mobile app please 🌙", "CSV export of invoices times out above 10k rows"]


@pytest.fixture
def settings(fake, db_url) -> Settings:
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text",
                         loopline_embedder="static")


def seed(db, text: str, *, customer: str | None = None, arr: float | None = None, user: str = REP) -> int:
    with db.session() as s:
        item, _ = fb_svc.capture_feedback(s, team_id="T0001", source="command", source_key=f"seed:{text}:{customer}",
                                          text=text, channel="C0SALES", reporter=user, captured_by=user,
                                          customer=customer, arr=arr)
        return item.id


def ask(slack, fake, text: str, name: str, *, user: str = PM, **kw: Any) -> dict[str, Any]:
    r = slack.command("/feedback", text, user=user, response_url=slack.response_url_base + "/" + name, **kw)
    assert r.status_code == 200
    assert r.text == ""  # nothing searched before the ack: the answer comes from the worker
    return fake.wait_for_webhook(name)[-1]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_search_finds_by_words_and_meaning_pages_and_escapes(server, slack, fake, db):
    ids = [seed(db, t, customer="Acme Corp" if i % 2 else "Globex", arr=120_000 if i % 2 else 80_000)
           for i, t in enumerate(SSO)]
    for t in OTHER:
        seed(db, t, customer="Initech")
    with db.session() as s:
        d, _ = dec_svc.create_decision(s, team_id="T0001", source_key="d", title="Longer SSO sessions", created_by=PM,
                                       channel="C0PRODUCT", feedback_ids=[ids[0]])
    server.settle()

    first = ask(slack, fake, "search okta sso logout", "s1")
    assert first["response_type"] == "ephemeral"
    text = json.dumps(first["blocks"], ensure_ascii=False)
    assert "1–5 of 7" in text and "Dark mode" not in text and "CSV export" not in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # the matched words are escaped
    assert f"D-{d.id} Longer SSO sessions (proposed)" in text and "$120k ARR" in text and "1 vote" in text
    nav = buttons(first["blocks"])
    assert set(nav) == {"Next", "Capture as feedback instead"}

    r = slack.block_action(user=PM, action_id="feedback_search_page", value=nav["Next"]["value"],
                           response_url=slack.response_url_base + "/s1-next")
    assert r.status_code == 200
    second = fake.wait_for_webhook("s1-next")[-1]
    assert second["replace_original"] is True
    assert "6–7 of 7" in json.dumps(second["blocks"], ensure_ascii=False)
    assert set(buttons(second["blocks"])) == {"Previous"}

    # By meaning: no word of the query is in the item, the static model still finds it first.
    meaning = ask(slack, fake, "search night theme for the phone application", "s2")
    assert "Dark mode" in json.dumps(meaning["blocks"], ensure_ascii=False).split("FB-")[1]

    nothing = ask(slack, fake, "search zzzqqq", "s3")
    assert "Nothing found" in nothing["text"]


def test_search_usage_outsider_and_capture_instead(server, slack, fake, db):
    seed(db, SSO[0], customer="Globex", arr=500_000)
    r = slack.command("/feedback", "search", user=PM)
    assert r.json()["response_type"] == "ephemeral" and "/feedback search WORDS" in r.json()["text"]
    # Someone of another organisation: refused privately, nothing about other accounts.
    r = slack.command("/feedback", "search okta", user=CUSTOMER, channel="C0ACME", team=EXT_TEAM,
                      response_url=slack.response_url_base + "/out")
    assert "Only people of the workspace" in r.json()["text"] and "Globex" not in r.text
    server.settle()
    assert fake.webhook_posts("out") == []
    # "search is broken" may have been feedback: one click captures it.
    answer = ask(slack, fake, "search is broken on mobile", "s4", user=REP2)
    capture = buttons(answer["blocks"])["Capture as feedback instead"]
    slack.block_action(user=REP2, action_id="feedback_capture_instead", value=capture["value"],
                       response_url=slack.response_url_base + "/s4-capture")
    assert "Captured as FB-" in fake.wait_for_webhook("s4-capture")[-1]["text"]


def test_search_from_app_home(server, slack, fake, db):
    seed(db, SSO[1], customer="Acme Corp")
    slack.event({"type": "app_home_opened", "user": PM, "channel": "D0HOMEPM", "tab": "home"})
    home = fake.wait_until(lambda: fake.home_view(PM))
    assert "Search feedback" in buttons(home["blocks"])
    slack.block_action(user=PM, action_id="feedback_search_open", value="search", channel=None)
    [call] = fake.wait_for("views.open")
    opened = fake.views[-1]
    assert opened["view"]["callback_id"] == "feedback_search_modal"
    r = slack.view_submission(opened["view"], {"fb_search": text_value("okta session")}, user=PM,
                              view_id=opened["view_id"])
    assert r.json()["response_action"] == "update" and "Searching" in json.dumps(r.json()["view"])
    server.settle()
    fake.wait_for("views.update")
    shown = fake.view(opened["view_id"])
    assert shown is not None and "1–1 of 1" in json.dumps(shown["blocks"], ensure_ascii=False)
    assert call is not None


def test_customer_view_with_totals_and_fuzzy_names(server, slack, fake, db):
    a1 = seed(db, SSO[0], customer="Acme Corp", arr=120_000, user=REP)
    a2 = seed(db, OTHER[1], customer="acme corp", user=REP2)
    a3 = seed(db, SSO[1], customer="Acme Corp", user=PM)
    g = seed(db, SSO[2], customer="Globex", arr=80_000, user=ADMIN)
    seed(db, OTHER[0], customer="Acme Labs")
    with db.session() as s:
        merging.merge(s, team_id="T0001", feedback_id=a3, into_id=a1, by=PM, request_key="m")
        dec_svc.create_decision(s, team_id="T0001", source_key="d1", title="Faster CSV export <b>", created_by=PM,
                                channel="C0PRODUCT", feedback_ids=[a2], status="in_review")
        dec_svc.create_decision(s, team_id="T0001", source_key="d2", title="Done already", created_by=PM,
                                channel="C0PRODUCT", feedback_ids=[a1], status="decided")
    server.settle()

    view = ask(slack, fake, "customer ACME C", "c1")
    text = json.dumps(view["blocks"], ensure_ascii=False)
    # Two things asked (the merged item counts under its survivor), 3 people, ARR once.
    assert "*Acme Corp* asked for *2* things · 3 votes" in text and "$120k ARR" in text
    [open_decisions] = [b["text"]["text"] for b in view["blocks"] if "Open decisions" in b.get("text", {}).get("text", "")]
    assert "Faster CSV export &lt;b&gt; (in review)" in open_decisions and "Done already" not in open_decisions
    assert f"FB-{a1}" in text and f"FB-{a2}" in text and f"FB-{g}" not in text

    several = ask(slack, fake, "customer acme", "c2")
    assert "Several accounts" in several["text"] and "Acme Labs" in json.dumps(several["blocks"])
    none = ask(slack, fake, "customer initech", "c3")
    assert "No account matches" in none["text"]
    r = slack.command("/feedback", "customer", user=PM)
    assert "/feedback customer NAME" in r.json()["text"]
