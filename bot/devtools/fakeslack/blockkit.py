"""A server-side Block Kit limits check, as the fake Web API applies it.

Slack rejects payloads that break Block Kit limits (`invalid_blocks` for chat.*, `invalid_arguments`
for views.*) with messages such as
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]``.
slack_sdk only validates Block objects and never plain dicts, so the fake does it for everything it
receives. The limits are the ones Slack documents for blocks, messages and views (Block Kit reference).
"""

from __future__ import annotations

from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MAX_ATTACHMENTS = 100
MAX_TEXT = 40_000
VIEW_MAX_BYTES = 250_000

_BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


def _too_long(limit: int, ptr: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{ptr}]"


def _too_many(limit: int, ptr: str) -> str:
    return f"[ERROR] no more than {limit} items allowed [json-pointer:{ptr}]"


def _missing(field: str, ptr: str) -> str:
    return f"[ERROR] missing required field: {field} [json-pointer:{ptr}]"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, msg: str) -> None:
        self.errors.append(msg)

    def maxlen(self, value: Any, limit: int, ptr: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(_too_long(limit, ptr))

    def text_obj(
        self,
        obj: Any,
        ptr: str,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.err(_missing("text", ptr.rsplit("/", 1)[0]))
            return
        if not isinstance(obj, dict):
            self.err(f"[ERROR] must be an object [json-pointer:{ptr}]")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.err(f"[ERROR] must be one of {', '.join(allowed)} [json-pointer:{ptr}/type]")
        text = obj.get("text")
        if not isinstance(text, str):
            self.err(_missing("text", ptr))
        elif not text:
            self.err(f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/text]")
        else:
            self.maxlen(text, limit, f"{ptr}/text")

    def option(self, opt: Any, ptr: str) -> None:
        if not isinstance(opt, dict):
            self.err(f"[ERROR] must be an object [json-pointer:{ptr}]")
            return
        self.text_obj(opt.get("text"), f"{ptr}/text", 75)
        self.maxlen(opt.get("value"), 150, f"{ptr}/value")
        if isinstance(opt.get("description"), dict):
            self.text_obj(opt["description"], f"{ptr}/description", 75)
        self.maxlen(opt.get("url"), 3000, f"{ptr}/url")

    def element(self, el: Any, ptr: str) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            self.err(_missing("type", ptr))
            return
        kind = el["type"]
        self.maxlen(el.get("action_id"), 255, f"{ptr}/action_id")
        if isinstance(el.get("placeholder"), dict):
            self.text_obj(el["placeholder"], f"{ptr}/placeholder", 150, plain_only=True)
        if kind == "button":
            self.text_obj(el.get("text"), f"{ptr}/text", 75, plain_only=True)
            self.maxlen(el.get("value"), 2000, f"{ptr}/value")
            self.maxlen(el.get("url"), 3000, f"{ptr}/url")
            self.maxlen(el.get("accessibility_label"), 75, f"{ptr}/accessibility_label")
        options = el.get("options")
        if isinstance(options, list):
            limit = {"overflow": 5, "checkboxes": 10, "radio_buttons": 10}.get(kind, 100)
            if len(options) > limit:
                self.err(_too_many(limit, f"{ptr}/options"))
            if kind == "overflow" and not options:
                self.err(f"[ERROR] must provide at least 1 items [json-pointer:{ptr}/options]")
            for i, opt in enumerate(options[: limit + 1]):
                self.option(opt, f"{ptr}/options/{i}")
        groups = el.get("option_groups")
        if isinstance(groups, list) and len(groups) > 100:
            self.err(_too_many(100, f"{ptr}/option_groups"))
        confirm = el.get("confirm")
        if isinstance(confirm, dict):
            for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
                if isinstance(confirm.get(key), dict):
                    self.text_obj(confirm[key], f"{ptr}/confirm/{key}", limit)

    def block(self, block: Any, ptr: str) -> None:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.err(_missing("type", ptr))
            return
        kind = block["type"]
        if kind not in _BLOCK_TYPES:
            self.err(f"[ERROR] unsupported type: {kind} [json-pointer:{ptr}/type]")
            return
        self.maxlen(block.get("block_id"), 255, f"{ptr}/block_id")
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                self.err(f"[ERROR] must provide either text or fields [json-pointer:{ptr}]")
            if text is not None:
                self.text_obj(text, f"{ptr}/text", 3000)
            if isinstance(fields, list):
                if len(fields) > 10:
                    self.err(_too_many(10, f"{ptr}/fields"))
                for i, field in enumerate(fields):
                    self.text_obj(field, f"{ptr}/fields/{i}", 2000)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{ptr}/accessory")
        elif kind == "header":
            self.text_obj(block.get("text"), f"{ptr}/text", 150, plain_only=True)
        elif kind in ("context", "actions"):
            elements = block.get("elements")
            limit = 10 if kind == "context" else 25
            if not isinstance(elements, list) or not elements:
                self.err(_missing("elements", ptr))
                return
            if len(elements) > limit:
                self.err(_too_many(limit, f"{ptr}/elements"))
            for i, el in enumerate(elements):
                sub = f"{ptr}/elements/{i}"
                if kind == "context" and isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                    self.text_obj(el, sub, 3000)
                elif kind == "actions":
                    self.element(el, sub)
        elif kind == "input":
            self.text_obj(block.get("label"), f"{ptr}/label", 2000, plain_only=True)
            if isinstance(block.get("hint"), dict):
                self.text_obj(block["hint"], f"{ptr}/hint", 2000, plain_only=True)
            if block.get("element") is None:
                self.err(_missing("element", ptr))
            else:
                self.element(block["element"], f"{ptr}/element")
        elif kind == "image":
            if not block.get("image_url") and not block.get("slack_file"):
                self.err(_missing("image_url", ptr))
            self.maxlen(block.get("image_url"), 3000, f"{ptr}/image_url")
            if not isinstance(block.get("alt_text"), str):
                self.err(_missing("alt_text", ptr))
            self.maxlen(block.get("alt_text"), 2000, f"{ptr}/alt_text")
            if isinstance(block.get("title"), dict):
                self.text_obj(block["title"], f"{ptr}/title", 2000, plain_only=True)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str):
                self.err(_missing("text", ptr))
            else:
                self.maxlen(text, 12_000, f"{ptr}/text")

    def blocks(self, blocks: list[Any], limit: int, ptr: str) -> None:
        if len(blocks) > limit:
            self.err(_too_many(limit, ptr))
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}")


def check_message_blocks(blocks: list[Any]) -> list[str]:
    """Error messages (empty when valid) for a message's ``blocks`` array."""
    checker = _Checker()
    checker.blocks(blocks, MESSAGE_MAX_BLOCKS, "/blocks")
    return checker.errors


def check_view(view: dict[str, Any]) -> list[str]:
    """Error messages (empty when valid) for a modal or Home tab view."""
    checker = _Checker()
    kind = view.get("type")
    if kind not in ("modal", "home", "workflow_step"):
        checker.err("[ERROR] must be one of modal, home, workflow_step [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        checker.err(_missing("blocks", "/view"))
        blocks = []
    checker.blocks(blocks, VIEW_MAX_BLOCKS, "/view/blocks")
    if kind == "modal":
        checker.text_obj(view.get("title"), "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                checker.text_obj(view[key], f"/view/{key}", 24, plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            checker.err("[ERROR] must provide submit when view has input blocks [json-pointer:/view/submit]")
    checker.maxlen(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.maxlen(view.get("callback_id"), 255, "/view/callback_id")
    checker.maxlen(view.get("external_id"), 255, "/view/external_id")
    return checker.errors
