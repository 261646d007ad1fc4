"""Events API: persist what matters to the inbox (one row per event_id) and ack. Nothing else here.

Every event type the manifest subscribes to has a listener, because Bolt answers 404 to an
unhandled event and Slack counts that as a failure and retries it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners
from slack_bolt.middleware.ignoring_self_events.ignoring_self_events import IgnoringSelfEvents
from slack_bolt.request.internals import extract_user_id

from bot.slack.edge import Edge
from bot.slack.richtext import base_reaction, is_placeholder

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

# A person's own top-level words: plain (no subtype), with a file (a screenshot with words), or "/me …".
WATCHED_SUBTYPES = (None, "file_share", "me_message")


def worth_keeping(edge: Edge, event: dict[str, Any]) -> bool | None:
    """Drop at the edge what can never matter, so chatty channels don't fill the queue. None: a person's
    top-level message, kept if its channel is watched (Edge.is_watched)."""
    etype = event.get("type")
    if etype in ("reaction_added", "reaction_removed"):
        return (event.get("item") or {}).get("type") == "message" and base_reaction(
            event.get("reaction", "")) in edge.settings.reactions
    if etype == "message":
        subtype = event.get("subtype")
        if subtype == "message_changed":
            # Unfurls and reactions also arrive as message_changed; only a change of words matters (for a
            # blocks-only message the words are in its blocks, its text being a placeholder).
            new, old = event.get("message") or {}, event.get("previous_message") or {}
            return new.get("text") != old.get("text") or (
                is_placeholder(new.get("text")) and new.get("blocks") != old.get("blocks"))
        if subtype == "message_deleted":
            return True  # might be the source of a captured item; the worker checks
        if subtype not in WATCHED_SUBTYPES or event.get("bot_id") or not event.get("user"):
            # Joins, bots, channel topics...: never feedback. A thread_broadcast ("also send to channel")
            # is a thread reply: left to reactions, like every reply (README, "Capture").
            return False
        thread_ts = event.get("thread_ts")
        if thread_ts and thread_ts != event.get("ts"):
            return False  # thread replies are conversation about feedback, not new feedback
        return None if event.get("channel_type") in ("channel", "group", None) else False
    return True


async def persist(edge: Edge, body: dict[str, Any], event: dict[str, Any], context: Any,
                  revocations: AsyncTokenRevocationListeners | None = None) -> None:
    """The one inbox write for an event: kept or dropped here, queued for the worker by event_id."""
    etype = event.get("type")
    installation = None
    if etype in ("app_uninstalled", "tokens_revoked"):
        # The installation as Slack names it (an org-wide one by its enterprise alone); the worker
        # abandons what was queued for the workspaces it served.
        installation = {"enterprise_id": context.enterprise_id, "team_id": context.team_id,
                        "is_enterprise_install": bool(context.is_enterprise_install)}
        if revocations is not None:
            # Bolt's own handlers, before the ack: from here on this workspace's requests get Bolt's
            # "please reinstall" answer and nothing more is queued for it.
            if etype == "app_uninstalled":
                await revocations.handle_app_uninstalled_events(context)
            else:
                await revocations.handle_tokens_revoked_events(event, context)
    team = await edge.workspace(body, context)
    keep = worth_keeping(edge, event)
    if keep is None:
        keep = await edge.is_watched(team, event.get("channel", ""))
    if not keep:
        return
    event_id = body.get("event_id") or f"{etype}:{event.get('event_ts') or event.get('ts')}"
    await edge.enqueue(key=f"ev:{event_id}", kind="event", team_id=team,
                       payload={"event": event, "event_id": event_id, "team_id": team,
                                # None when absent: the worker then asks Slack instead of assuming.
                                "is_ext_shared_channel": body.get("is_ext_shared_channel"),
                                **({"installation": installation} if installation else {})})


def register(app: AsyncApp, edge: Edge) -> None:
    store = app.installation_store
    revocations = AsyncTokenRevocationListeners(store) if store is not None else None

    async def listener(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        await persist(edge, body, event, context, revocations)

    # One listener for every subscribed type: Bolt tries listeners in order, and one regex matcher is
    # cheaper per request than thirteen.
    app.event(re.compile("^(" + "|".join(map(re.escape, SUBSCRIBED_EVENTS)) + ")$"))(listener)


# Events whose whole handling is the inbox write, with nothing of Bolt's needed on the way: no
# installation to revoke (app_uninstalled, tokens_revoked go through Bolt).
LEAN_EVENTS = frozenset(SUBSCRIBED_EVENTS) - {"app_uninstalled", "tokens_revoked"}


class LeanInbox:
    """The events path without Bolt's dispatch, for a single-workspace install (its authorisation is a
    fixed answer): the signed event is written to the inbox exactly as the Bolt listener above writes it
    (`persist`), and Slack gets the same empty 200. Bolt's request object, context, middleware chain and
    listener matching cost more than the write itself (measured with bench/ack.py, README "Measured on this machine", *Acks*), and
    Slack sends events far more often than anything else. Everything else (URL verification, commands,
    interactivity, the two revocation events, OAuth installs) goes through Bolt."""

    def __init__(self, edge: Edge, auth: AuthorizeResult):
        self.edge, self.auth = edge, auth

    def take(self, body: bytes, content_type: str) -> dict[str, Any] | None:
        """The parsed envelope when this path can handle it, else None (Bolt will)."""
        if not body.startswith(b"{") or "json" not in content_type:
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        event = payload.get("event") if isinstance(payload, dict) else None
        if payload.get("type") != "event_callback" or not isinstance(event, dict) or event.get("type") not in LEAN_EVENTS:
            return None
        return payload

    async def handle(self, payload: dict[str, Any]) -> None:
        event = payload["event"]
        # Bolt's own rule (its IgnoringSelfEvents middleware, which Loopline's app keeps on).
        if IgnoringSelfEvents._is_self_event(self.auth, extract_user_id(payload), event.get("bot_id"), payload):
            return
        await persist(self.edge, payload, event, AsyncBoltContext(authorize_result=self.auth))
