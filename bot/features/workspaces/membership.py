"""Getting the bot into channels, shared by watch mode, subscriptions and digests."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot.queue.core import JobContext, slack_error

INVITE_HINT = ("I can't join private channels by myself. Invite me with `/invite @Loopline` in the channel, "
               "then run the command again.")


def ensure_member(ctx: JobContext, channel: str) -> tuple[bool, str]:
    """(True, "") when the bot is (now) in `channel`; else (False, what the person should do)."""
    client = ctx.client()
    try:
        info = client.conversations_info(channel=channel).get("channel") or {}
    except SlackApiError as e:
        code = slack_error(e)
        if code == "channel_not_found":
            # Private channels the bot is not in are invisible to it.
            return False, INVITE_HINT
        if e.response.status_code == 429 or code in ("ratelimited", "internal_error", "fatal_error",
                                                      "service_unavailable", "request_timeout"):
            raise  # transient: the job is retried
        # A DM, a group DM, a missing scope…: say so rather than fail silently after the ack.
        return False, f"I can't use this conversation (`{code}`): run the command in a channel."
    if info.get("is_member"):
        return True, ""
    if info.get("is_archived"):
        return False, "This channel is archived; nothing can be posted there."
    if info.get("is_private") or info.get("is_group"):
        return False, INVITE_HINT
    try:
        client.conversations_join(channel=channel)
    except SlackApiError as e:
        code = slack_error(e)
        if code in ("method_not_supported_for_channel_type", "channel_not_found"):
            return False, INVITE_HINT
        if code == "missing_scope":
            return False, "I'm missing the `channels:join` scope; ask an admin to reinstall Loopline from the manifest."
        if code == "is_archived":
            return False, "This channel is archived; nothing can be posted there."
        raise
    return True, ""
