"""One session through every surface with hostile text; then everything the bot sent is searched.

README "What Loopline guarantees": a quote containing `<!channel>` or `@here` must never ping anyone from a digest or a
confirmation, and nothing from a customer channel is posted publicly unless a person chose to.
"""

from __future__ import annotations

from tests.support.announcements import modal_values, open_modal, seed_subscriptions, wait_status
from tests.support.decisions import click, log_decision
from tests.support.env import ADMIN, CUSTOMER, PM, REP, export
from tests.support.pings import PINGS, mrkdwn_texts

HOSTILE = [
    "<!channel> export is broken & nobody cares",
    "@here <!here|here> please escalate <@U0GUEST> <#C0SALES> <https://evil.example|click me>",
    "<!everyone> <!subteam^S0EXEC> billing charged twice >:( 🙃",
]


def everything_sent(fake) -> str:
    items: list = []
    for ch in ("C0SALES", "C0ACME", "C0PRODUCT"):
        items += [m for m in fake.messages(ch) if m.get("bot_id")]
    for user in (ADMIN, PM, REP, CUSTOMER):
        items += fake.dms(user)
    items += fake.ephemerals()
    items += [v["view"] for v in fake.views]
    items += fake.webhook_posts()
    return "\n".join(t for item in items for t in mrkdwn_texts({k: item.get(k) for k in ("text", "blocks")}))


def test_hostile_text_through_every_surface_never_pings(server, slack, fake, db):
    # Capture: command (ack body), reaction in a customer channel, watched channel.
    acks = [slack.command("/feedback", t, user=REP, channel="C0SALES").json() for t in HOSTILE]
    ts = fake.add_message("C0ACME", HOSTILE[1], user=CUSTOMER)
    slack.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bug", ext_shared=True)
    server.settle()
    fid = next(r["id"] for r in export(db) if r["ts"] == ts)

    # Decide on it: card, thread note, loop-closing DMs.
    decision = log_decision(server, slack, fake, feedback=fid)
    click(slack, user=PM, decision=decision, status="decided")
    server.settle()

    # Announce with hostile text in the title and body.
    seed_subscriptions(db, {"C0PRODUCT": "billing"})
    view = open_modal(slack, fake)
    slack.view_submission(view, modal_values("<!channel> Billing fix", HOSTILE[2], ["billing"]), user=ADMIN)
    wait_status(db, "sent")

    # The digest of all of it.
    slack.command("/digest", "now", user=PM, channel="C0PRODUCT")
    fake.wait_until(lambda: any("digest" in (m.get("text") or "").lower()
                                for m in fake.bot_messages("C0PRODUCT")), timeout=30)
    server.settle()

    sent = everything_sent(fake) + "\n" + "\n".join(mrkdwn_texts(acks))
    assert "&lt;!channel&gt;" in sent  # the texts did go through…
    found = [line[max(0, m.start() - 150):m.end() + 50] for line in sent.splitlines() for m in PINGS.finditer(line)]
    assert not found, f"live mentions or links from user text: {found}"
    # …and nothing was posted publicly in the customer's channel.
    assert fake.bot_messages("C0ACME") == []
