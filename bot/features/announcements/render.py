"""Pure renderers for announcements: the message each channel gets, the modal, private answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.slack.ids import Action, Block, Callback
from bot.slack.render import blocks as bk
from bot.slack.render.text import (
    INPUT_TEXT_MAX,
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
    channel_link,
    datetime_token,
    escape,
    escape_truncate,
    mention,
    plain,
    truncate,
)

EVENT_TYPE = "loopline_announcement"


@dataclass(frozen=True)
class AnnouncementView:
    """What a renderer needs to know about an announcement (built from the model by the caller)."""

    id: int
    title: str
    body: str
    areas: list[str]
    author: str
    version: int = 1
    status: str = "sending"
    send_at: datetime | None = None
    retracted_by: str | None = None
    channels: list[str] = field(default_factory=list)

    @property
    def public_id(self) -> str:
        return f"AN-{self.id}"


def view_of(a: Any) -> AnnouncementView:
    return AnnouncementView(id=a.id, title=a.title, body=a.body, areas=list(a.areas or []), author=a.author,
                            version=a.version, status=a.status, send_at=a.send_at, retracted_by=a.retracted_by,
                            channels=[d.channel for d in a.deliveries])


def metadata(announcement_id: int, delivery_id: int) -> dict[str, Any]:
    """Message metadata: how a restarted sender recognises a copy it posted before it died."""
    return {"event_type": EVENT_TYPE, "event_payload": {"announcement_id": announcement_id,
                                                        "delivery_id": delivery_id}}


def is_copy_of(message: dict[str, Any], delivery_id: int) -> bool:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return meta.get("event_type") == EVENT_TYPE and str(payload.get("delivery_id")) == str(delivery_id)


def _body_sections(body: str) -> list[dict[str, Any]]:
    """The body, escaped, split over sections of at most 3000 characters (on line breaks when possible)."""
    text = escape(body.strip()) or " "
    chunks: list[str] = []
    while text:
        if len(text) <= SECTION_TEXT_MAX:
            chunks.append(text)
            break
        cut = text.rfind("\n", 0, SECTION_TEXT_MAX)
        if cut < SECTION_TEXT_MAX // 2:
            cut = text.rfind(" ", 0, SECTION_TEXT_MAX)
        if cut < SECTION_TEXT_MAX // 2:
            cut = SECTION_TEXT_MAX
            amp = text.rfind("&", cut - 6, cut)  # never split an &amp; entity
            if amp != -1 and ";" not in text[amp:cut]:
                cut = amp
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [bk.section(c) for c in chunks]


def announcement_message(a: AnnouncementView, *, delivery_id: int) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(fallback text, blocks, metadata) of the copy posted in a channel."""
    areas = ", ".join(a.areas)
    # No @-mention of the author here: a mention notifies them once per channel (1,000 pings for a
    # 1,000-channel fan-out). Their name is in their own confirmation.
    context = f":mega: {a.public_id} · {escape(areas)}"
    if a.version > 1:
        context += " · (edited)"
    blocks: list[dict[str, Any]] = [bk.header(a.title)]
    body = _body_sections(a.body)
    room = MESSAGE_BLOCKS_MAX - 3
    if len(body) > room:
        body = [*body[:room - 1], bk.section("_…the rest was too long for one message._")]
    blocks += body
    blocks.append(bk.context(context))
    blocks.append(bk.actions(bk.button("Got it", Action.ANNOUNCE_ACK, str(a.id), style="primary"),
                             block_id=f"an_ack:{a.id}"))
    text = truncate(f"{a.title}: {a.body}", 3000)
    return escape(text), blocks, metadata(a.id, delivery_id)


def retracted_message(a: AnnouncementView, *, delivery_id: int) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    text = ":no_entry_sign: Retracted by its author"  # no @-mention: see announcement_message
    blocks = [bk.section(f"{text} ({a.public_id}, {escape_truncate(a.title, 200)})")]
    return text, blocks, metadata(a.id, delivery_id)


# --- the modal -----------------------------------------------------------------------------------------


def announce_modal(areas: list[tuple[str, str]], *, private_metadata: dict[str, Any],
                   title: str = "", body: str = "", chosen: list[str] | None = None,
                   send_at: datetime | None = None, decisions: str = "", edit: bool = False,
                   allow_send_at: bool = True) -> dict[str, Any]:
    """`areas` is (name, label) of every known area; for an edit the areas are fixed and shown, not chosen."""
    title_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 150}
    if title:
        title_el["initial_value"] = plain(title, 150)
    body_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": True,
                               "max_length": INPUT_TEXT_MAX}
    if body:
        body_el["initial_value"] = truncate(body, INPUT_TEXT_MAX)
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": Block.AN_TITLE, "label": {"type": "plain_text", "text": "Title"},
         "element": title_el},
        {"type": "input", "block_id": Block.AN_BODY, "label": {"type": "plain_text", "text": "Message"},
         "element": body_el},
    ]
    if edit:
        blocks.append(bk.context("Product areas: " + escape(", ".join(chosen or []))))
    else:
        options = [bk.option(label, name) for name, label in areas[:100]]
        areas_el: dict[str, Any] = {"type": "multi_static_select", "action_id": "value", "options": options,
                                    "placeholder": {"type": "plain_text", "text": "Choose product areas"}}
        initial = [o for o in options if o["value"] in (chosen or [])]
        if initial:
            areas_el["initial_options"] = initial
        blocks.append({"type": "input", "block_id": Block.AN_AREAS,
                       "label": {"type": "plain_text", "text": "Product areas"}, "element": areas_el})
    if allow_send_at:
        picker: dict[str, Any] = {"type": "datetimepicker", "action_id": "value"}
        if send_at:
            picker["initial_date_time"] = int(send_at.timestamp())
        blocks.append({"type": "input", "block_id": Block.AN_SEND_AT, "optional": True,
                       "label": {"type": "plain_text", "text": "Send at"}, "element": picker,
                       "hint": {"type": "plain_text", "text": "Leave empty to send now."}})
    if not edit:
        dec_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value",
                                  "placeholder": {"type": "plain_text", "text": "e.g. D-3, D-7"}}
        if decisions:
            dec_el["initial_value"] = decisions
        blocks.append({"type": "input", "block_id": Block.AN_DECISIONS, "optional": True,
                       "label": {"type": "plain_text", "text": "Decisions shipped"}, "element": dec_el})
    return {
        "type": "modal", "callback_id": Callback.ANNOUNCE_MODAL,
        "title": {"type": "plain_text", "text": "Edit announcement" if edit else "Announce"},
        "submit": {"type": "plain_text", "text": "Save" if edit else "Announce"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(private_metadata)[:3000],
        "blocks": blocks,
    }


def read_modal(values: dict[str, Any]) -> dict[str, Any]:
    """state.values -> {title, body, areas, send_at (epoch or None), decisions}."""
    def el(block: str) -> dict[str, Any]:
        inner = values.get(block) or {}
        return next(iter(inner.values()), {}) if inner else {}

    picked = el(Block.AN_AREAS).get("selected_options") or []
    send_at = el(Block.AN_SEND_AT).get("selected_date_time")
    return {
        "title": (el(Block.AN_TITLE).get("value") or "").strip(),
        "body": (el(Block.AN_BODY).get("value") or "").strip(),
        "areas": [o.get("value") for o in picked if o.get("value")],
        "send_at": int(send_at) if send_at not in (None, "") else None,
        "decisions": (el(Block.AN_DECISIONS).get("value") or "").strip(),
    }


# --- private answers -------------------------------------------------------------------------------------


def refusal(announcers: set[str]) -> str:
    who = "workspace admins and owners"
    if announcers:
        who += " and " + ", ".join(mention(u) for u in sorted(announcers))
    return f":lock: Only {who} can announce product changes. Ask one of them, or an admin to add you to LOOPLINE_ANNOUNCERS."


def no_areas() -> str:
    return ("There are no product areas yet. An admin or announcer creates them by subscribing a channel: "
            "`/subscribe billing, mobile app`.")


def confirmation(a: AnnouncementView, *, scheduled: bool) -> tuple[str, list[dict[str, Any]]]:
    """The author's private confirmation, with Edit, Retract and (while scheduled) Cancel."""
    n = len(a.channels)
    where = ", ".join(channel_link(c) for c in a.channels[:40]) + (f" and {n - 40} more" if n > 40 else "")
    if a.status == "retracted":
        head = f":no_entry_sign: *{a.public_id}* was retracted; every copy is being replaced by a notice."
    elif a.status == "cancelled":
        head = f":x: *{a.public_id}* was cancelled; nothing was sent."
    elif scheduled and a.send_at:
        when = datetime_token(int(a.send_at.timestamp()), fallback=a.send_at.strftime("%Y-%m-%d %H:%M UTC"))
        head = f":calendar: *{a.public_id}* is scheduled for {when} to {n} channel{'s' if n != 1 else ''}: {where}"
    else:
        head = f":mega: *{a.public_id}* is on its way to {n} channel{'s' if n != 1 else ''}: {where}"
    text = f"{a.public_id}: {a.title}"
    blocks = [bk.section(head), bk.context(f"*{escape_truncate(a.title, 200)}*")]
    if a.status not in ("retracted", "cancelled"):
        buttons = [bk.button("Edit", Action.ANNOUNCE_EDIT, str(a.id)),
                   bk.button("Retract", Action.ANNOUNCE_RETRACT, str(a.id), style="danger",
                             confirm=bk.confirm_dialog("Retract?", "Every copy will be replaced by a short notice.",
                                                       "Retract"))]
        if scheduled:
            buttons.append(bk.button("Cancel", Action.ANNOUNCE_CANCEL, str(a.id),
                                     confirm=bk.confirm_dialog("Cancel?", "Nothing will be sent.", "Cancel it", "Keep")))
        blocks.append(bk.actions(*buttons, block_id=f"an_manage:{a.id}"))
    return escape(text), blocks


def summary(a: AnnouncementView, *, sent: int, failures: list[tuple[str, str]], late: bool) -> tuple[str, list[dict[str, Any]]]:
    """One DM to the author when every copy has been dealt with."""
    total = sent + len(failures)
    if failures:
        head = (f":warning: *{a.public_id}* reached {sent} of {total} channels. "
                f"{len(failures)} failed:")
        lines = [f"• {channel_link(c)}: `{escape(err)}` — {_why(err)}" for c, err in failures[:40]]
        if len(failures) > 40:
            lines.append(f"…and {len(failures) - 40} more (see `loopline export announcements`).")
        body = head + "\n" + "\n".join(lines)
    else:
        body = f":white_check_mark: *{a.public_id}* reached all {total} channel{'s' if total != 1 else ''}."
    if late:
        body += "\n_It went out late: its time passed while Loopline was down or busy._"
    return f"{a.public_id}: {sent}/{total} channels", [bk.section(body), bk.context(escape_truncate(a.title, 200))]


_WHY = {
    "channel_not_found": "the channel was deleted, or is private and I'm not in it",
    "is_archived": "the channel is archived (its subscriptions are now inactive)",
    "not_in_channel": "I was removed from the channel (invite me back with `/invite @Loopline`)",
    "missing_scope": "I'm missing a permission; an admin should reinstall Loopline from the manifest",
}


def _why(err: str) -> str:
    return _WHY.get(err.split(":")[0], "Slack refused the message")


def home_section(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """App Home blocks for the author's recent announcements and who acknowledged them, per channel."""
    if not items:
        return []
    out: list[dict[str, Any]] = [bk.divider(), bk.section("*Your announcements*")]
    for it in items[:5]:
        acks = ", ".join(f"{channel_link(c)} {n}" for c, n in it["acks"].items()) or "no acknowledgements yet"
        out.append(bk.context(f"*AN-{it['id']}* {escape_truncate(it['title'], 120)} · {it['status']} · "
                              f"{it['channels']} channel{'s' if it['channels'] != 1 else ''} · "
                              f":white_check_mark: {acks}"))
    return out
