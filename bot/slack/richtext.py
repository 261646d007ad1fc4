"""The words of a Slack message whose `text` says nothing: its blocks and attachments, as plain text.

A message made only of blocks (rich text from some clients and workflows, apps posting Block Kit)
carries a placeholder `text`, "This content can't be displayed.", or none at all. What a person wrote is
in the blocks: rich text sections, lists, quotes and code, with mentions and links as elements rather
than `<@U1>` tokens. This reads them the way Slack's own clients render them as text ("• item",
"1. item", "> quote", fenced code, "@name", "#channel"), pure and without network: the caller passes
`names` (id -> display name) when it has looked them up, and unknown ids keep Slack's notation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

# What Slack puts in `text` when a message has blocks and no text of its own.
PLACEHOLDERS = frozenset({"This content can't be displayed.", "This content can’t be displayed."})

Names = Callable[[str], str | None]
# element type -> (its id field, shown as sigil + name, else Slack's own notation for the id)
_MENTIONS = {"user": ("user_id", "@", "<@{}>"), "usergroup": ("usergroup_id", "@", "<!subteam^{}>"),
             "channel": ("channel_id", "#", "<#{}>")}
_BLANK_RUNS = re.compile(r"\n{3,}")


def _no_names(_: str) -> str | None:
    return None


def is_placeholder(text: str | None) -> bool:
    return not (text or "").strip() or (text or "").strip() in PLACEHOLDERS


def mentioned_ids(blocks: Iterable[dict[str, Any]] | None) -> set[str]:
    """Ids of the people, channels, user groups and teams rich text names (to look their names up)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("user_id", "channel_id", "usergroup_id", "team_id"):
                if isinstance(node.get(key), str) and node.get("type") in ("user", "channel", "usergroup", "team"):
                    found.add(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(list(blocks or []))
    return found


def blocks_text(blocks: Iterable[dict[str, Any]] | None, *, names: Names = _no_names) -> str:
    """Plain text of a message's blocks; '' when they hold no words (buttons, images, dividers)."""
    parts = [_block(b, names) for b in blocks or [] if isinstance(b, dict)]
    return _tidy("\n".join(p for p in parts if p))


def attachments_text(attachments: Iterable[dict[str, Any]] | None, *, names: Names = _no_names) -> str:
    """Plain text of legacy attachments: pretext, title, text and fields, else the fallback summary."""
    out = []
    for a in attachments or []:
        if not isinstance(a, dict):
            continue
        pieces = [a.get("pretext"), a.get("title"), a.get("text")]
        pieces += [": ".join(str(x) for x in (f.get("title"), f.get("value")) if x) for f in a.get("fields") or []
                   if isinstance(f, dict)]
        pieces.append(blocks_text(a.get("blocks"), names=names))
        words = "\n".join(str(p).strip() for p in pieces if p and str(p).strip())
        out.append(words or str(a.get("fallback") or "").strip())
    return _tidy("\n".join(p for p in out if p))


def _tidy(text: str) -> str:
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _block(block: dict[str, Any], names: Names) -> str:
    kind = block.get("type")
    if kind == "rich_text":
        return "\n".join(_rich_element(e, names) for e in block.get("elements") or [] if isinstance(e, dict))
    if kind in ("header", "section"):
        texts = [block.get("text"), *(block.get("fields") or [])]
        return "\n".join(t["text"] for t in texts if isinstance(t, dict) and t.get("text"))
    if kind == "context":
        return " ".join(e["text"] for e in block.get("elements") or []
                        if isinstance(e, dict) and e.get("type") in ("mrkdwn", "plain_text") and e.get("text"))
    return ""  # actions, images, dividers, inputs: no words of the message


def _rich_element(el: dict[str, Any], names: Names) -> str:
    kind = el.get("type")
    if kind == "rich_text_section":
        text = _inline(el.get("elements"), names)
        # A section's closing line break is the line break before the next element, not a blank line.
        return text[:-1] if text.endswith("\n") else text
    if kind == "rich_text_list":
        indent = "  " * int(el.get("indent") or 0)
        start = int(el.get("offset") or 0)
        lines = []
        for i, item in enumerate(e for e in el.get("elements") or [] if isinstance(e, dict)):
            mark = f"{start + i + 1}." if el.get("style") == "ordered" else "•"
            lines.append(f"{indent}{mark} {_rich_element(item, names)}")
        return "\n".join(lines)
    if kind == "rich_text_quote":
        return "\n".join("> " + line for line in _inline(el.get("elements"), names).rstrip("\n").split("\n"))
    if kind == "rich_text_preformatted":
        return "```\n" + _inline(el.get("elements"), names).strip("\n") + "\n```"
    return _inline([el], names)


def _inline(elements: Any, names: Names) -> str:
    return "".join(_piece(e, names) for e in elements or [] if isinstance(e, dict))


def _piece(el: dict[str, Any], names: Names) -> str:
    kind = el.get("type")
    if kind == "text":
        return str(el.get("text") or "")
    if kind == "link":
        url, label = str(el.get("url") or ""), str(el.get("text") or "").strip()
        return f"{label} ({url})" if label and label != url else url
    if kind in _MENTIONS:
        key, sigil, notation = _MENTIONS[kind]
        mid = str(el.get(key) or "")
        name = names(mid)
        return f"{sigil}{name}" if name else notation.format(mid)
    if kind == "team":
        tid = str(el.get("team_id") or "")
        return names(tid) or tid
    if kind == "broadcast":
        return "@" + str(el.get("range") or "here")
    if kind == "emoji":
        code = str(el.get("unicode") or "")
        try:
            return "".join(chr(int(cp, 16)) for cp in code.split("-")) if code else f":{el.get('name')}:"
        except ValueError:
            return f":{el.get('name')}:"
    if kind == "date":
        if el.get("fallback"):
            return str(el["fallback"])
        try:
            return datetime.fromtimestamp(int(el.get("timestamp") or 0), UTC).date().isoformat()
        except (TypeError, ValueError, OverflowError):
            return ""
    if kind == "color":
        return str(el.get("value") or "")
    if kind in ("rich_text_section", "rich_text_list", "rich_text_quote", "rich_text_preformatted"):
        return _rich_element(el, names)
    return str(el.get("text") or "")


def base_reaction(name: str) -> str:
    """'bulb::skin-tone-2' -> 'bulb': a skin tone is the same tag (the edge
    filters reactions with it, feedback's jobs count them)."""
    return name.split("::", 1)[0]
