"""Pure renderers for feedback: confirmations and the feedback modal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.ids import feedback_ref
from bot.slack.ids import Action, Block, Callback
from bot.slack.render import blocks as bk
from bot.slack.render.replies import ephemeral as ephemeral  # shared by every feature's replies
from bot.slack.render.replies import usage as usage
from bot.slack.render.text import INPUT_TEXT_MAX, channel_link, escape, link, mention, money, plain, quote

KIND_LABELS = {"feedback": "Feedback", "idea": "Idea", "bug": "Bug", "question": "Question", "praise": "Praise"}


@dataclass(frozen=True)
class FeedbackSummary:
    """What a renderer needs to know about an item (built from the model by the caller)."""

    id: int
    text: str
    kind: str
    votes: int
    area: str | None = None
    customer: str | None = None
    arr: float | None = None
    permalink: str | None = None
    reporter: str | None = None
    status: str = "active"
    text_pending: bool = False  # captured from a message whose text Slack has not given us yet

    @property
    def public_id(self) -> str:
        return feedback_ref(self.id)


PENDING_TEXT = "(text not fetched yet — see the message in Slack)"


def _quoted_text(fb: FeedbackSummary, limit: int) -> str:
    if fb.text_pending and not fb.text.strip():
        return f"_{PENDING_TEXT}_"
    return quote(fb.text, limit)


def summary_of(item: Any) -> FeedbackSummary:
    return FeedbackSummary(id=item.id, text=item.text, kind=item.kind, votes=item.vote_count, area=item.area,
                           customer=item.customer, arr=item.arr, permalink=item.permalink,
                           reporter=item.reporter, status=item.status, text_pending=bool(item.text_pending))


def _details_line(fb: FeedbackSummary) -> str:
    parts = [KIND_LABELS.get(fb.kind, escape(fb.kind.title()))]
    if fb.customer:
        parts.append(f"customer *{escape(fb.customer)}*" + (f" ({money(fb.arr)} ARR)" if fb.arr else ""))
    if fb.area:
        parts.append(f"area _{escape(fb.area)}_")
    parts.append(f"{fb.votes} vote{'s' if fb.votes != 1 else ''}")
    return " · ".join(parts)


def capture_confirmation(fb: FeedbackSummary, *, created: bool, new_vote: bool = False,
                         via: str = "", outsider: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The private note after a capture: names the id, shows the text, offers "Add details".

    `outsider`: for someone outside the organisation (or not known to be inside): the id and their own
    words only; no account, ARR, area, votes or editing buttons (docs/slack-connect.md)."""
    if created:
        head = f":white_check_mark: Captured as *{fb.public_id}*{via}."
        text = f"Captured as {fb.public_id}"
    elif new_vote:
        head = f":ballot_box_with_check: Already captured as *{fb.public_id}*; your vote is counted."
        text = f"Your vote on {fb.public_id} is counted"
    else:
        head = f":information_source: This is already *{fb.public_id}*; nothing changed."
        text = f"Already captured as {fb.public_id}"
    title = link(fb.permalink, fb.public_id) if fb.permalink else fb.public_id
    if outsider:
        return text, [bk.section(f"{head}\n{quote(fb.text, 600)}")]
    blocks = [
        bk.section(f"{head}\n{_quoted_text(fb, 600)}"),
        bk.context(f"{title} · {_details_line(fb)}"),
        bk.actions(
            bk.button("Add details", Action.FEEDBACK_DETAILS, str(fb.id), style="primary"),
            bk.button("Link to decision", Action.FEEDBACK_LINK_DECISION, str(fb.id)),
        ),
    ]
    return text, blocks


def text_not_fetched(fb: FeedbackSummary, *, channel: str, created: bool) -> tuple[str, list[dict[str, Any]]]:
    """A reaction's capture is saved, but Slack would not give us the message (an outage that outlasted
    the retries, or no access): say so, and offer the form to type the text in."""
    head = (f":warning: Captured as *{fb.public_id}*" if created
            else f":warning: Your vote on *{fb.public_id}* is counted") + \
        f" from a message in {channel_link(channel)}, but Slack did not give us its text."
    blocks = [
        bk.section(f"{head}\nThe item is saved; use *Add details* to type what was said."),
        bk.context(f"{link(fb.permalink, fb.public_id) if fb.permalink else fb.public_id} · {_details_line(fb)}"),
        bk.actions(bk.button("Add details", Action.FEEDBACK_DETAILS, str(fb.id), style="primary")),
    ]
    return f"{fb.public_id} is saved, but its text could not be fetched from Slack", blocks


def vote_removed(fb: FeedbackSummary) -> tuple[str, list[dict[str, Any]]]:
    if fb.status == "withdrawn":
        msg = f":wastebasket: *{fb.public_id}* is withdrawn: nobody tags it any more."
    else:
        msg = f":heavy_minus_sign: Your vote on *{fb.public_id}* is removed ({fb.votes} left)."
    return msg.replace("*", ""), [bk.section(msg)]


def details_saved(fb: FeedbackSummary) -> tuple[str, list[dict[str, Any]]]:
    return (f"Saved details of {fb.public_id}",
            [bk.section(f":pencil2: Saved *{fb.public_id}*: {_details_line(fb)}\n{quote(fb.text, 300)}")])


def account_question(name: str, arr: float | None, original: str) -> dict[str, Any]:
    """`/feedback account …`: map the channel, or was it feedback that starts with "account"?"""
    arr_text = f" ({money(arr)} ARR)" if arr else ""
    return {
        "response_type": "ephemeral",
        "text": f"Map this channel to the account {escape(name)}{arr_text}, or capture the text as feedback?",
        "blocks": [
            bk.section(f":office: Map this channel to the account *{escape(name)}*{arr_text}? Feedback captured "
                       "here would get it filled in.\nOr did you mean this as feedback?\n" + quote(original, 500)),
            bk.actions(
                bk.button(f"Map channel to {name}", Action.FEEDBACK_ACCOUNT_CONFIRM,
                          json.dumps({"name": name[:255], "arr": arr}), style="primary"),
                bk.button("Capture as feedback", Action.FEEDBACK_CAPTURE_INSTEAD, original[:2000]),
            ),
        ],
    }


def feedback_modal(*, metadata: dict[str, Any], text: str = "", customer: str | None = None,
                   arr: float | None = None, area: str | None = None, kind: str = "feedback",
                   reporter: str | None = None, permalink: str | None = None,
                   title: str = "Capture feedback", submit: str = "Save") -> dict[str, Any]:
    """The modal for new feedback and for "Add details". Labels contain the words README "What people can do" uses."""
    context_bits = []
    if reporter:
        context_bits.append(f"Said by {mention(reporter)}")
    if permalink:
        context_bits.append(link(permalink, "original message"))
    kind_options = [bk.option(label, value) for value, label in KIND_LABELS.items()]
    initial_kind = next((o for o in kind_options if o["value"] == kind), kind_options[0])
    view_blocks: list[dict[str, Any]] = []
    if context_bits:
        view_blocks.append(bk.context(" · ".join(context_bits)))
    text_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": True,
                               "max_length": INPUT_TEXT_MAX}
    if text:
        text_el["initial_value"] = text[:INPUT_TEXT_MAX]
    view_blocks.append({"type": "input", "block_id": Block.FB_TEXT, "label": {"type": "plain_text", "text": "Feedback"},
                        "element": text_el})
    cust_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 255,
                               "placeholder": {"type": "plain_text", "text": "Account name, e.g. Acme Corp"}}
    if customer:
        cust_el["initial_value"] = customer[:255]
    view_blocks.append({"type": "input", "block_id": Block.FB_CUSTOMER, "optional": True,
                        "label": {"type": "plain_text", "text": "Customer"}, "element": cust_el})
    arr_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 32,
                              "placeholder": {"type": "plain_text", "text": "e.g. 120k"}}
    if arr:
        arr_el["initial_value"] = f"{arr:.0f}"
    view_blocks.append({"type": "input", "block_id": Block.FB_ARR, "optional": True,
                        "label": {"type": "plain_text", "text": "Customer ARR"}, "element": arr_el})
    area_el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 80,
                               "placeholder": {"type": "plain_text", "text": "e.g. billing, mobile app"}}
    if area:
        area_el["initial_value"] = area[:80]
    view_blocks.append({"type": "input", "block_id": Block.FB_AREA, "optional": True,
                        "label": {"type": "plain_text", "text": "Product area"}, "element": area_el})
    view_blocks.append({"type": "input", "block_id": Block.FB_KIND,
                        "label": {"type": "plain_text", "text": "Type"},
                        "element": {"type": "static_select", "action_id": "value", "options": kind_options,
                                    "initial_option": initial_kind}})
    return {
        "type": "modal",
        "callback_id": Callback.FEEDBACK_MODAL,
        "title": {"type": "plain_text", "text": plain(title, 24)},
        "submit": {"type": "plain_text", "text": plain(submit, 24)},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata)[:3000],
        "blocks": view_blocks,
    }


def read_feedback_modal(values: dict[str, Any]) -> dict[str, Any]:
    """state.values of the feedback modal -> plain fields."""

    def val(block: str) -> str | None:
        v = values.get(block, {}).get("value", {})
        if "selected_option" in v:
            return (v.get("selected_option") or {}).get("value")
        return v.get("value")

    return {"text": val(Block.FB_TEXT) or "", "customer": val(Block.FB_CUSTOMER), "arr": val(Block.FB_ARR),
            "area": val(Block.FB_AREA), "kind": val(Block.FB_KIND) or "feedback"}
