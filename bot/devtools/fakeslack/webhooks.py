"""response_url: what an app POSTs back to a slash command or an interaction (FakeSlack.response_url
hands out one URL per name). Bodies are recorded in arrival order; blocks are held to Block Kit's
limits as Slack does."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from . import blockkit
from .common import Reply
from .faults import sleep_latency, take_fault
from .records import WebhookPost
from .state import State


def _parse(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        form = dict(parse_qsl(text))
        try:
            return json.loads(form["payload"]) if "payload" in form else {"_raw": text}
        except ValueError:
            return {"_raw": text}


def receive_webhook(
    s: State, name: str, headers: dict[str, str], body: bytes, arrived: float
) -> Reply:
    sleep_latency(s, "webhook")
    parsed = _parse(body)
    with s._lock:
        fault = take_fault(s, "webhook", (name,))
        if fault is not None:
            if fault.disconnect:
                return None
            return fault.status, fault.error, {}
        if s.validate_blocks and isinstance(parsed, dict) and isinstance(parsed.get("blocks"), list):
            errors = blockkit.check_message_blocks(parsed["blocks"])
            if errors:
                return 400, "invalid_blocks", {}
        s._webhooks.append(WebhookPost(name, parsed, headers, arrived))
        s._cond.notify_all()
    return 200, "ok", {}
