"""The one place where text from users becomes Slack mrkdwn.

Slack treats `&`, `<` and `>` as control characters: `<!channel>` pings everyone, `<@U1>` mentions a
person, `<https://x|label>` makes a link. Escaping them (and nothing else, per Slack's formatting
docs) means a customer's words are shown exactly as written and can never notify anyone.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# Limits from Slack's Block Kit reference (https://api.slack.com/reference/block-kit/blocks).
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000
BUTTON_TEXT_MAX = 75
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
MODAL_TITLE_MAX = 24
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
NOTIFICATION_TEXT_MAX = 3000
INPUT_TEXT_MAX = 3000

_ID_RE = re.compile(r"^[UWBCGDT][A-Z0-9]{2,}$")


def escape(text: str | None) -> str:
    """Escape user text for mrkdwn (and for `plain_text`, harmlessly)."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, *, suffix: str = ELLIPSIS) -> str:
    """Cut to at most `limit` characters, never inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(suffix))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + suffix


def escape_truncate(text: str | None, limit: int) -> str:
    return truncate(escape(text), limit)


def plain(text: str | None, limit: int) -> str:
    """For plain_text objects: no escaping needed (Slack shows them verbatim), only length."""
    return truncate((text or "").strip() or " ", limit)


def link(url: str | None, label: str) -> str:
    """A mrkdwn link whose label is user text; URLs we build or got from Slack are trusted."""
    if not url or not url.startswith(("https://", "http://")) or any(c in url for c in "<>| "):
        return escape(label)
    return f"<{url}|{escape(label).replace('|', '¦')}>"


def mention(user_id: str | None) -> str:
    """`<@U123>` for a real Slack user id; anything else (an imported name) is shown as escaped text."""
    if not user_id:
        return "someone"
    if _ID_RE.match(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def channel_link(channel_id: str | None) -> str:
    if channel_id and _ID_RE.match(channel_id):
        return f"<#{channel_id}>"
    return escape(channel_id or "a channel")


def quote(text: str | None, limit: int = 500) -> str:
    """A block quote of user text: escaped, truncated, each line prefixed so it stays one quote."""
    body = escape_truncate((text or "").strip(), limit)
    return "\n".join("&gt; " + line for line in body.splitlines() or [""])


def money(amount: float | None) -> str:
    if amount is None:
        return "—"
    if amount >= 1_000_000:
        return f"${amount / 1_000_000:.1f}M"
    if amount >= 1_000:
        return f"${amount / 1_000:.0f}k"
    return f"${amount:,.0f}"


def datetime_token(epoch: int, fmt: str = "{date_short_pretty} {time}", fallback: str = "") -> str:
    """Slack renders this in each reader's own time zone."""
    return f"<!date^{epoch}^{fmt}|{escape(fallback) or epoch}>"
