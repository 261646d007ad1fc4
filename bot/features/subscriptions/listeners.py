"""/subscribe and /unsubscribe: product areas a channel hears announcements about.

Listing and unsubscribing are database-only and answered in the ack. Subscribing needs the Web API
(join the channel, or find out it is private; users.info to know whether the person may create an
area), so the listener queues a job and the worker answers through the response_url.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from sqlalchemy.orm import Session

from bot.core.common import enqueue, split_list
from bot.features.feedback import render
from bot.features.subscriptions import service as sub_svc
from bot.slack.edge import Edge
from bot.slack.render.text import escape

FORMS = [
    ("/subscribe AREA[, AREA…]", "announcements about these product areas will be posted in this channel"),
    ("/subscribe", "list this channel's subscriptions"),
    ("/unsubscribe AREA[, AREA…]", "stop them"),
]


def _listing(labels: list[str], known: list[str]) -> tuple[str, str]:
    """(plain, mrkdwn) for render.ephemeral: area labels are the users' words."""
    if labels:
        plain = "This channel is subscribed to: " + ", ".join(labels) + "."
        rich = "This channel is subscribed to: " + ", ".join(f"*{escape(a)}*" for a in labels) + "."
    else:
        plain = rich = "This channel has no subscriptions yet."
    if known:
        plain += " Known product areas: " + ", ".join(known) + "."
        rich += " Known product areas: " + ", ".join(escape(a) for a in known) + "."
    hint = " Subscribe with `/subscribe billing, mobile app`; stop with `/unsubscribe billing`."
    return plain + hint, rich + hint


def _channel_listing(edge: Edge, team: str, channel: str) -> tuple[str, str]:
    with edge.db.read_session() as s:
        labels = sub_svc.channel_subscriptions(s, team_id=team, channel_id=channel)
        known = [a.label for a in sub_svc.known_areas(s, team_id=team)]
    return _listing(labels, known)


def register(app: AsyncApp, edge: Edge) -> None:
    async def subscribe_command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        team, channel, user = await edge.workspace(body, context), body["channel_id"], body["user_id"]
        text = (body.get("text") or "").strip()
        if not split_list(text):
            await ack(**render.ephemeral(*_channel_listing(edge, team, channel)))
            return

        def put(s: Session) -> None:
            enqueue(s, key=f"subscribe:{team}:{channel}:{body.get('trigger_id') or text}",
                    kind="subscriptions.subscribe", team_id=team,
                    payload={"channel": channel, "user": user, "text": text,
                             "response_url": body.get("response_url")})

        await edge.write(put)
        await ack()  # the worker answers (it has to join the channel first)

    async def unsubscribe_command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        team, channel = await edge.workspace(body, context), body["channel_id"]
        text = (body.get("text") or "").strip()
        if not split_list(text):  # PRODUCT.md: no argument lists the channel's subscriptions
            await ack(**render.ephemeral(*_channel_listing(edge, team, channel)))
            return

        def drop(s: Session) -> tuple[list[str], list[str], list[str]]:
            removed, missing = sub_svc.unsubscribe(s, team_id=team, channel_id=channel, text=text)
            return removed, missing, sub_svc.channel_subscriptions(s, team_id=team, channel_id=channel)

        removed, missing, left = await edge.write(drop)
        parts = []
        if removed:
            parts.append("Unsubscribed this channel from " + ", ".join(removed) + ".")
        if missing:
            parts.append("It was not subscribed to " + ", ".join(missing) + ".")
        parts.append("Still subscribed to: " + (", ".join(left) or "nothing") + ".")
        await ack(**render.ephemeral(" ".join(parts)))  # escaped there, in the text and in the block

    app.command("/subscribe")(subscribe_command)
    app.command("/unsubscribe")(unsubscribe_command)
