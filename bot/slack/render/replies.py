"""Private replies every feature gives: a short answer, and "that command was wrong, here are its forms"."""

from __future__ import annotations

from typing import Any

from bot.slack.render import blocks as bk
from bot.slack.render.text import escape


def ephemeral(text: str, mrkdwn: str | None = None) -> dict[str, Any]:
    """A private reply. `text` is plain (escaped here: Slack parses a message's top-level text for
    mentions too); `mrkdwn`, for the block, must already be escaped."""
    return {"response_type": "ephemeral", "text": escape(text), "blocks": [bk.section(mrkdwn or escape(text))]}


def usage(command: str, problem: str, forms: list[tuple[str, str]]) -> dict[str, Any]:
    """A private answer to a wrong command: what was wrong, then the right forms."""
    lines = "\n".join(f"• `{escape(f)}` — {escape(d)}" for f, d in forms)
    return {
        "response_type": "ephemeral",
        # The problem often quotes what was typed: the top-level text is parsed for mentions too.
        "text": escape(f"{problem} Usage of {command}: " + "; ".join(f for f, _ in forms)),
        "blocks": [bk.section(f":warning: {escape(problem)}\n*Usage*\n{lines}")],
    }
