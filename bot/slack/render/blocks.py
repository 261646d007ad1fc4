"""Small pure builders for Block Kit dicts, each clipping to Slack's limits."""

from __future__ import annotations

from typing import Any

from bot.slack.render.text import (
    BUTTON_TEXT_MAX,
    CONTEXT_TEXT_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
    truncate,
)

Block = dict[str, Any]


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_TEXT_MAX), "emoji": True}}


def section(mrkdwn: str, *, accessory: Block | None = None, block_id: str | None = None) -> Block:
    """`mrkdwn` must already be escaped (built with render.text helpers)."""
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_TEXT_MAX)}}
    if accessory:
        block["accessory"] = accessory
    if block_id:
        block["block_id"] = block_id
    return block


def fields(items: list[str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": truncate(t, 2000)} for t in items[:10]],
    }


def context(*mrkdwn: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(t, CONTEXT_TEXT_MAX)} for t in mrkdwn[:10] if t],
    }


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str = "", *, style: str | None = None, url: str | None = None,
           confirm: Block | None = None) -> Block:
    b: Block = {"type": "button", "text": {"type": "plain_text", "text": truncate(text, BUTTON_TEXT_MAX)},
                "action_id": action_id}
    if value:
        b["value"] = value[:2000]
    if style in ("primary", "danger"):
        b["style"] = style
    if url:
        b["url"] = url
    if confirm:
        b["confirm"] = confirm
    return b


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def confirm_dialog(title: str, text: str, confirm: str = "Yes", deny: str = "Cancel") -> Block:
    return {
        "title": {"type": "plain_text", "text": truncate(title, 100)},
        "text": {"type": "mrkdwn", "text": truncate(text, 300)},
        "confirm": {"type": "plain_text", "text": truncate(confirm, 30)},
        "deny": {"type": "plain_text", "text": truncate(deny, 30)},
    }


def option(text: str, value: str) -> Block:
    return {"text": {"type": "plain_text", "text": truncate(text, 75)}, "value": value[:150]}


def chunk_blocks(blocks: list[Block], limit: int = MESSAGE_BLOCKS_MAX) -> list[list[Block]]:
    """Split a long block list over several messages (e.g. thread replies)."""
    return [blocks[i : i + limit] for i in range(0, len(blocks), limit)] or [[]]
