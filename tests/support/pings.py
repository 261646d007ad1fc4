"""What would notify someone: every string Slack parses for mentions, and the patterns that ping."""

from __future__ import annotations

import re

PINGS = re.compile(r"<!(channel|here|everyone|subteam)|<@U0GUEST>|<https://evil\.example")


def mrkdwn_texts(obj) -> list[str]:
    """Every string Slack parses for mentions: top-level `text` and mrkdwn text objects.

    plain_text objects (headers, buttons, input values) are shown as typed and never notify anyone.
    """
    out: list[str] = []
    if isinstance(obj, dict):
        if obj.get("type") == "mrkdwn" and isinstance(obj.get("text"), str):
            out.append(obj["text"])
        for k, v in obj.items():
            if k == "text" and isinstance(v, str) and "type" not in obj:
                out.append(v)  # a message's top-level text (also its notification)
            elif isinstance(v, dict | list):
                out += mrkdwn_texts(v)
    elif isinstance(obj, list):
        for v in obj:
            out += mrkdwn_texts(v)
    return out
