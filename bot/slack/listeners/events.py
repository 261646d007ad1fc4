"""Events API: persist what matters to the inbox (one row per event_id) and ack. Nothing else here.

Every event type the manifest subscribes to has a listener, because Bolt answers 404 to an
unhandled event and Slack counts that as a failure and retries it.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services.feedback import base_reaction
from bot.slack.edge import Edge, team_of

# The events in slack-manifest.yml (bot events); `message` covers message.channels and message.groups.
SUBSCRIBED_EVENTS = (
    "reaction_added",
    "reaction_removed",
    "message",
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "member_joined_channel",
    "channel_archive",
    "channel_unarchive",
    "channel_deleted",
    "group_archive",
    "group_unarchive",
    "group_deleted",
    "channel_shared",
    "channel_unshared",
)
MANIFEST_BOT_EVENTS = (*tuple(e for e in SUBSCRIBED_EVENTS if e not in ("message", "app_uninstalled", "tokens_revoked")), "message.channels", "message.groups", "app_uninstalled", "tokens_revoked")

_IGNORED_MESSAGE_SUBTYPES = None  # plain human messages have no subtype


def worth_keeping(edge: Edge, team: str, event: dict[str, Any]) -> bool:
    """Drop at the edge what can never matter, so chatty channels don't fill the queue."""
    etype = event.get("type")
    if etype in ("reaction_added", "reaction_removed"):
        return (event.get("item") or {}).get("type") == "message" and base_reaction(
            event.get("reaction", "")) in edge.settings.reactions
    if etype == "message":
        subtype = event.get("subtype")
        if subtype == "message_changed":
            # Unfurls and reactions also arrive as message_changed; only a change of words matters.
            return (event.get("message") or {}).get("text") != (event.get("previous_message") or {}).get("text")
        if subtype == "message_deleted":
            return True  # might be the source of a captured item; the worker checks
        if subtype not in (None, "file_share") or event.get("bot_id") or not event.get("user"):
            return False  # joins, bots, channel topics...: never feedback (a screenshot with words is)
        thread_ts = event.get("thread_ts")
        if thread_ts and thread_ts != event.get("ts"):
            return False  # thread replies are conversation about feedback, not new feedback
        return event.get("channel_type") in ("channel", "group", None) and edge.is_watched(team, event.get("channel", ""))
    return True


def register(app: AsyncApp, edge: Edge) -> None:
    async def persist(body: dict[str, Any], event: dict[str, Any]) -> None:
        team = team_of(body)
        if not worth_keeping(edge, team, event):
            return
        event_id = body.get("event_id") or f"{event.get('type')}:{event.get('event_ts') or event.get('ts')}"
        await edge.enqueue(key=f"ev:{event_id}", kind="event", team_id=team,
                           payload={"event": event, "event_id": event_id, "team_id": team,
                                    # None when absent: the worker then asks Slack instead of assuming.
                                    "is_ext_shared_channel": body.get("is_ext_shared_channel")})

    # One listener for every subscribed type: Bolt tries listeners in order, and one regex matcher is
    # cheaper per request than thirteen.
    app.event(re.compile("^(" + "|".join(map(re.escape, SUBSCRIBED_EVENTS)) + ")$"))(persist)
