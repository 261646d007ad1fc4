"""Pure renderers for decisions: the modal, the card, the thread note, the loop DM, the link modal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.slack.ids import Action, Callback
from bot.slack.render import blocks as bk
from bot.slack.render.connect import HIDDEN_IN_SHARED
from bot.slack.render.text import INPUT_TEXT_MAX, escape, escape_truncate, link, mention, plain, quote

LABELS = {"proposed": "Proposed", "in_review": "In review", "decided": "Decided", "rejected": "Rejected",
          "deferred": "Deferred", "superseded": "Superseded"}
EMOJI = {"proposed": ":seedling:", "in_review": ":mag:", "decided": ":white_check_mark:", "rejected": ":x:",
         "deferred": ":hourglass_flowing_sand:", "superseded": ":arrows_counterclockwise:"}
BUTTONS = ("in_review", "decided", "rejected")  # the common moves, one button each
OVERFLOW = ("deferred", "superseded", "proposed")  # the rest, in the overflow menu
OUTCOME_WORDS = {"decided": "was decided", "rejected": "was rejected", "deferred": "was deferred",
                 "shipped": "has shipped"}
MAX_LINKS_SHOWN = 20

# block ids of the decision modal
B_TITLE, B_CONTEXT, B_STATUS, B_OWNER, B_DUE, B_AREA, B_FEEDBACK = (
    "dec_title", "dec_context", "dec_status", "dec_owner", "dec_due", "dec_area", "dec_feedback")
# block ids of the link modal
B_PICK, B_TYPED = "link_pick", "link_typed"


def status_action(status: str) -> str:
    return f"{Action.DECISION_STATUS}:{status}"


@dataclass(frozen=True)
class LinkedFeedback:
    id: int
    permalink: str | None = None


@dataclass(frozen=True)
class DecisionSummary:
    """What a renderer needs of a decision (built from the model by the caller)."""

    id: int
    title: str
    status: str
    context: str = ""
    owner: str | None = None
    due: date | None = None
    area: str | None = None
    created_by: str | None = None
    feedback: list[LinkedFeedback] = field(default_factory=list)

    @property
    def public_id(self) -> str:
        return f"D-{self.id}"


def summary_of(d: Any, permalinks: dict[int, str | None] | None = None) -> DecisionSummary:
    permalinks = permalinks or {}
    return DecisionSummary(id=d.id, title=d.title, status=d.status, context=d.context or "", owner=d.owner,
                           due=d.due, area=d.area, created_by=d.created_by,
                           feedback=[LinkedFeedback(i, permalinks.get(i)) for i in d.feedback_ids])


# --- the modal ----------------------------------------------------------------------------------


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False,
           hint: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional,
                         "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        b["hint"] = {"type": "plain_text", "text": hint}
    return b


def decision_modal(*, metadata: dict[str, Any], title: str = "", author: str | None = None) -> dict[str, Any]:
    """Labels contain the words PRODUCT.md names: Decision, Context, Status, Owner, Due."""
    title_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 255,
                                "placeholder": {"type": "plain_text", "text": "e.g. Drop IE11 support in Q3"}}
    if title.strip():
        title_el["initial_value"] = title.strip()[:255]
    status_options = [bk.option(label, value) for value, label in LABELS.items()]
    owner_el: dict[str, Any] = {"type": "users_select", "action_id": "value"}
    if author:
        owner_el["initial_user"] = author
    view_blocks = [
        _input(B_TITLE, "Decision", title_el),
        _input(B_CONTEXT, "Context", {"type": "plain_text_input", "action_id": "value", "multiline": True,
                                      "max_length": INPUT_TEXT_MAX}, optional=True),
        _input(B_STATUS, "Status", {"type": "static_select", "action_id": "value", "options": status_options,
                                    "initial_option": status_options[0]}),
        _input(B_OWNER, "Owner", owner_el),
        _input(B_DUE, "Due date", {"type": "datepicker", "action_id": "value"}, optional=True),
        _input(B_AREA, "Product area", {"type": "plain_text_input", "action_id": "value", "max_length": 80,
                                        "placeholder": {"type": "plain_text", "text": "e.g. billing"}},
               optional=True),
        _input(B_FEEDBACK, "Linked feedback", {"type": "plain_text_input", "action_id": "value", "max_length": 2000,
                                               "placeholder": {"type": "plain_text", "text": "FB-12, FB-40"}},
               optional=True, hint="Ids of the feedback this decision answers, separated by commas."),
    ]
    return {
        "type": "modal", "callback_id": Callback.DECISION_MODAL,
        "title": {"type": "plain_text", "text": "Log a decision"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata)[:3000],
        "blocks": view_blocks,
    }


def read_decision_modal(values: dict[str, Any]) -> dict[str, Any]:
    def el(block: str) -> dict[str, Any]:
        return values.get(block, {}).get("value", {}) or {}

    return {
        "title": (el(B_TITLE).get("value") or "").strip(),
        "context": (el(B_CONTEXT).get("value") or "").strip(),
        "status": ((el(B_STATUS).get("selected_option") or {}).get("value") or "proposed"),
        "owner": el(B_OWNER).get("selected_user"),
        "due": el(B_DUE).get("selected_date"),
        "area": (el(B_AREA).get("value") or "").strip(),
        "feedback": el(B_FEEDBACK).get("value") or "",
    }


# --- the card -----------------------------------------------------------------------------------


def _feedback_line(feedback: list[LinkedFeedback]) -> str:
    if not feedback:
        return "No linked feedback yet."
    shown = [link(f.permalink, f"FB-{f.id}") for f in feedback[:MAX_LINKS_SHOWN]]
    more = f" and {len(feedback) - MAX_LINKS_SHOWN} more" if len(feedback) > MAX_LINKS_SHOWN else ""
    n = len(feedback)
    return f"*Linked feedback ({n}):* " + ", ".join(shown) + more


def card(d: DecisionSummary, *, flags: tuple[str, ...] = (), shared: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The decision card posted in the channel: who owns it, where it stands, what informed it.

    `shared`: the channel is shared with another organisation. What the author wrote (title, context)
    stays; the linked feedback (other customers' words, links into internal channels) does not."""
    status = d.status
    due = d.due.isoformat() if d.due else "—"
    flag_text = "".join(f" · :warning: {escape(f)}" for f in flags)
    blocks: list[dict[str, Any]] = [
        bk.section(f"*{d.public_id}* · *{escape_truncate(d.title, 400)}*"),
        bk.fields([
            f"*Status*\n{EMOJI.get(status, '')} {LABELS.get(status, escape(status))}{flag_text}",
            f"*Owner*\n{mention(d.owner)}",
            f"*Due*\n{due}",
            f"*Product area*\n{escape(d.area) if d.area else '—'}",
        ]),
    ]
    if d.context.strip():
        blocks.append(bk.section(quote(d.context, 1500)))
    blocks.append(bk.context(HIDDEN_IN_SHARED) if shared else bk.section(_feedback_line(d.feedback)))
    elements = [bk.button(LABELS[s], status_action(s), str(d.id), style="primary" if s == "decided" else None)
                for s in BUTTONS]
    elements.append({"type": "overflow", "action_id": Action.DECISION_OVERFLOW,
                     "options": [bk.option(f"Set to {LABELS[s].lower()}", f"{d.id}:{s}") for s in OVERFLOW]})
    blocks.append(bk.actions(*elements, block_id=f"decision:{d.id}"))
    if d.created_by:
        blocks.append(bk.context(f"Logged by {mention(d.created_by)} · only the owner or a workspace admin "
                                 "changes the status"))
    text = f"{d.public_id} {escape_truncate(d.title, 200)} — {LABELS.get(status, escape(status))}"
    return text, blocks


def status_note(*, by: str, from_status: str | None, to_status: str) -> str:
    """The one-line thread note of a change."""
    before = LABELS.get(from_status or "", from_status or "none")
    return f"{mention(by)} changed the status from *{before}* to *{LABELS.get(to_status, escape(to_status))}*."


def refusal(d: DecisionSummary) -> tuple[str, list[dict[str, Any]]]:
    msg = (f"Only the owner ({mention(d.owner)}) or a workspace admin can change the status of "
           f"*{d.public_id}*. Nothing changed.")
    return f"Only the owner or a workspace admin can change {d.public_id}; nothing changed.", [bk.section(msg)]


def cannot_post(d: DecisionSummary, channel: str | None, hint: str) -> tuple[str, list[dict[str, Any]]]:
    where = f"<#{channel}>" if channel and channel[:1] in "CG" else "that channel"
    msg = (f":warning: *{d.public_id}* ({escape_truncate(d.title, 200)}) is saved, but I couldn't post its card "
           f"in {where}. {escape(hint)}")
    return f"{d.public_id} is saved, but I couldn't post its card: {hint}", [bk.section(msg)]


# --- closing the loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopItem:
    id: int
    text: str
    permalink: str | None
    can_reply: bool  # the item came from a Slack message, so it has a thread to reply in
    channel: str | None = None
    shared: bool = False  # that thread is in a channel shared with another organisation


def _outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, f"is now {escape(outcome)}")


def loop_dm(*, notification_id: int, d: DecisionSummary, outcome: str, announcement: str | None,
            items: list[LoopItem]) -> tuple[str, list[dict[str, Any]]]:
    """The private 'your feedback was answered' message, with a Reply button per item from a message."""
    ann = f" ({escape(announcement)})" if announcement else ""
    head = (f":loudspeaker: Feedback you shared {'has' if len(items) == 1 else 'have'} an answer: "
            f"*{d.public_id}* _{escape_truncate(d.title, 300)}_ {_outcome_words(outcome)}{ann}.")
    blocks: list[dict[str, Any]] = [bk.section(head)]
    for item in items[:20]:
        blocks.append(bk.section(f"{link(item.permalink, f'FB-{item.id}')}\n{quote(item.text, 400)}"))
    buttons = [_reply_button(i, d, outcome, notification_id, single=len(items) == 1) for i in items[:20] if i.can_reply]
    if buttons:
        blocks.append(bk.actions(*buttons[:5]))
        blocks.append(bk.context("Nothing is posted where the feedback was given unless you click the button."))
    ids = ", ".join(f"FB-{i.id}" for i in items)
    text = f"{ids}: {d.public_id} {escape_truncate(d.title, 150)} {_outcome_words(outcome)}"
    return text, blocks


def _reply_button(item: LoopItem, d: DecisionSummary, outcome: str, notification_id: int, *,
                  single: bool) -> dict[str, Any]:
    button = bk.button("Reply in thread" if single else f"Reply in thread (FB-{item.id})", Action.LOOP_REPLY,
                       f"{notification_id}:{item.id}")
    if item.shared:
        # People of the other organisation read that thread: say what they will see before it is posted.
        button["confirm"] = {
            "title": {"type": "plain_text", "text": "Reply in a shared channel?"},
            "text": {"type": "plain_text", "text": plain(
                f"People outside your organisation read that thread. They will see: {d.public_id} "
                f"“{d.title}” {OUTCOME_WORDS.get(outcome, 'is now ' + outcome)}.", 300)},
            "confirm": {"type": "plain_text", "text": "Reply"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
    return button


def loop_thread_reply(*, d: DecisionSummary, outcome: str, feedback_id: int, by: str) -> str:
    return (f":loudspeaker: Update on this feedback (FB-{feedback_id}): *{d.public_id}* "
            f"_{escape_truncate(d.title, 300)}_ {_outcome_words(outcome)}. (Shared by {mention(by)}.)")


def loop_replied(original: list[dict[str, Any]], feedback_id: int) -> list[dict[str, Any]]:
    """The DM after a reply: the button for that item gives way to a note."""
    out: list[dict[str, Any]] = []
    for b in original:
        if b.get("type") == "actions":
            kept = [e for e in b.get("elements", []) if not str(e.get("value", "")).endswith(f":{feedback_id}")]
            if kept:
                out.append({**b, "elements": kept})
            continue
        out.append(b)
    out.append(bk.context(f":speech_balloon: Replied in the thread of FB-{feedback_id}."))
    return out


# --- the link modal -----------------------------------------------------------------------------


def link_modal(*, feedback_id: int, choices: list[tuple[int, str, str]], metadata: dict[str, Any]) -> dict[str, Any]:
    """Pick a decision for FB-n: a menu of the latest ones, or type an id."""
    view_blocks: list[dict[str, Any]] = [bk.section(f"Link *FB-{feedback_id}* to a decision.")]
    if choices:
        options = [bk.option(f"D-{i} {title} ({LABELS.get(status, status).lower()})", str(i))
                   for i, title, status in choices[:100]]
        view_blocks.append(_input(B_PICK, "Decision", {"type": "static_select", "action_id": "value",
                                                       "options": options}, optional=True))
    view_blocks.append(_input(B_TYPED, "Or type a decision id", {
        "type": "plain_text_input", "action_id": "value", "max_length": 20,
        "placeholder": {"type": "plain_text", "text": "D-3"}}, optional=True))
    return {
        "type": "modal", "callback_id": Callback.LINK_DECISION_MODAL,
        "title": {"type": "plain_text", "text": plain(f"Link FB-{feedback_id}", 24)},
        "submit": {"type": "plain_text", "text": "Link"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata)[:3000],
        "blocks": view_blocks,
    }


def read_link_modal(values: dict[str, Any]) -> str:
    typed = (values.get(B_TYPED, {}).get("value", {}) or {}).get("value") or ""
    picked = ((values.get(B_PICK, {}).get("value", {}) or {}).get("selected_option") or {}).get("value") or ""
    return typed.strip() or picked.strip()


def linked(feedback_id: int, d: DecisionSummary, *, added: bool) -> tuple[str, list[dict[str, Any]]]:
    if added:
        msg = f":link: Linked *FB-{feedback_id}* to *{d.public_id}* _{escape_truncate(d.title, 200)}_."
        text = f"Linked FB-{feedback_id} to {d.public_id}"
    else:
        msg = f":information_source: *FB-{feedback_id}* was already linked to *{d.public_id}*."
        text = f"FB-{feedback_id} was already linked to {d.public_id}"
    return text, [bk.section(msg)]
