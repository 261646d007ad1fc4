"""A fix for slack-bolt 1.30's body parser, applied once at import.

`slack_bolt.request.internals.parse_body` decides that a form body is an interactivity payload when
the *substring* "payload" appears anywhere in it, so `/feedback the "payload" field is missing`
parses to `{}` and Bolt answers 404 (the user sees an error, the feedback is lost). We decide by the
form field instead. Reported upstream behaviour; remove when Bolt checks the field name.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import slack_bolt.request.async_request as _async_request
import slack_bolt.request.request as _request


def parse_body(body: str, content_type: str | None) -> dict[str, Any]:
    if not body:
        return {}
    if (content_type is not None and content_type == "application/json") or body.startswith("{"):
        return json.loads(body)
    params = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in params and len(params) == 1:
        return json.loads(params["payload"])
    return params


_async_request.parse_body = parse_body
_request.parse_body = parse_body
