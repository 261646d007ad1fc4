"""Sends requests to the app over HTTP, signed exactly as Slack signs them, with realistic payloads."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

TEAM = "T0001"
_counter = itertools.count(1)


class SlackSender:
    def __init__(self, base_url: str, signing_secret: str, *, response_url_base: str = "http://127.0.0.1:9/webhook"):
        self.base_url = base_url.rstrip("/")
        self.verifier = SignatureVerifier(signing_secret)
        self.response_url_base = response_url_base
        self.http = httpx.Client(timeout=30)

    def close(self) -> None:
        self.http.close()

    # --- transport -------------------------------------------------------------------------------

    def post_raw(self, body: str | bytes, content_type: str, *, headers: dict[str, str] | None = None,
                 sign: bool = True, timestamp: int | None = None, path: str = "/slack/events") -> httpx.Response:
        raw = body.encode() if isinstance(body, str) else body
        ts = str(timestamp if timestamp is not None else int(time.time()))
        h: dict[str, str] = {"content-type": content_type}
        if sign:
            h["x-slack-request-timestamp"] = ts
            h["x-slack-signature"] = str(self.verifier.generate_signature(timestamp=ts, body=raw.decode("utf-8", "replace")))
        h.update(headers or {})
        return self.http.post(self.base_url + path, content=raw, headers=h)

    def form(self, fields: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.post_raw(urlencode(fields), "application/x-www-form-urlencoded", **kw)

    def interactive(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.post_raw("payload=" + quote(json.dumps(payload)), "application/x-www-form-urlencoded", **kw)

    def json_body(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.post_raw(json.dumps(body), "application/json", **kw)

    # --- payload builders ------------------------------------------------------------------------

    def command(self, command: str, text: str = "", *, user: str = "U0REP", channel: str = "C0SALES",
                channel_name: str = "sales", trigger_id: str | None = None, team: str = TEAM,
                response_url: str | None = None, **kw: Any) -> httpx.Response:
        n = next(_counter)
        return self.form({
            "token": "deprecated-verification-token", "team_id": team, "team_domain": "example",
            "channel_id": channel, "channel_name": channel_name, "user_id": user, "user_name": "someone",
            "command": command, "text": text, "api_app_id": "A0001", "is_enterprise_install": "false",
            "response_url": response_url or f"{self.response_url_base}/cmd{n}",
            "trigger_id": trigger_id or f"{n}.{int(time.time())}.{uuid.uuid4().hex[:16]}",
        }, **kw)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM,
              retry_num: int | None = None, ext_shared: bool | None = False, **kw: Any) -> httpx.Response:
        """`ext_shared`: the envelope's is_ext_shared_channel (None leaves the field out)."""
        event_id = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
        body = {
            "token": "deprecated", "team_id": team, "api_app_id": "A0001", "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": "UBOT", "is_bot": True,
                                "is_enterprise_install": False}],
            "event_context": f"4-{uuid.uuid4().hex[:12]}",
        }
        if ext_shared is not None:
            body["is_ext_shared_channel"] = ext_shared
        headers = dict(kw.pop("headers", {}) or {})
        if retry_num:
            headers.update({"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": "http_timeout"})
        return self.json_body(body, headers=headers, **kw)

    def reaction(self, kind: str, *, user: str, channel: str, ts: str, reaction: str = "bulb",
                 item_user: str | None = "U0CUST", **kw: Any) -> httpx.Response:
        ev: dict[str, Any] = {"type": kind, "user": user, "reaction": reaction,
                              "item": {"type": "message", "channel": channel, "ts": ts},
                              "event_ts": f"{time.time():.6f}"}
        if item_user:
            ev["item_user"] = item_user
        return self.event(ev, **kw)

    def message(self, *, channel: str, user: str, text: str, ts: str, thread_ts: str | None = None,
                channel_type: str = "channel", **extra: Any) -> httpx.Response:
        kw = {k: extra.pop(k) for k in list(extra) if k in ("event_id", "retry_num", "ext_shared")}
        ev = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "team": TEAM,
              "client_msg_id": str(uuid.uuid4()), "event_ts": ts, "channel_type": channel_type,
              "blocks": [{"type": "rich_text", "block_id": "b1", "elements": [
                  {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}], **extra}
        if thread_ts:
            ev["thread_ts"] = thread_ts
            ev["parent_user_id"] = "U0SOMEONE"
        return self.event(ev, **kw)

    def message_changed(self, *, channel: str, ts: str, new_text: str, old_text: str, user: str,
                        **kw: Any) -> httpx.Response:
        now = f"{time.time():.6f}"
        return self.event({
            "type": "message", "subtype": "message_changed", "hidden": True, "channel": channel, "ts": now,
            "event_ts": now, "channel_type": "channel",
            "message": {"type": "message", "text": new_text, "user": user, "team": TEAM, "ts": ts,
                        "edited": {"user": user, "ts": now}},
            "previous_message": {"type": "message", "text": old_text, "user": user, "ts": ts},
        }, **kw)

    def message_deleted(self, *, channel: str, ts: str, old_text: str, user: str, **kw: Any) -> httpx.Response:
        now = f"{time.time():.6f}"
        return self.event({
            "type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel,
            "deleted_ts": ts, "event_ts": now, "ts": now, "channel_type": "channel",
            "previous_message": {"type": "message", "text": old_text, "user": user, "ts": ts},
        }, **kw)

    def message_shortcut(self, *, user: str, channel: str, message: dict[str, Any], callback_id: str = "capture_feedback",
                         user_team: str = TEAM, **kw: Any) -> httpx.Response:
        """`user_team`: the person's own workspace (another organisation's for a Slack Connect member)."""
        n = next(_counter)
        return self.interactive({
            "type": "message_action", "token": "deprecated", "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM, "domain": "example"}, "user": {"id": user, "name": "someone", "team_id": user_team},
            "channel": {"id": channel, "name": "customer-acme"}, "is_enterprise_install": False, "enterprise": None,
            "callback_id": callback_id, "trigger_id": f"{n}.222.{uuid.uuid4().hex[:10]}",
            "message_ts": message["ts"], "message": {"type": "message", **message},
            "response_url": f"{self.response_url_base}/sc{n}",
        }, **kw)

    def block_action(self, *, user: str, action_id: str, value: str = "", channel: str | None = "C0SALES",
                     message_ts: str | None = None, view: dict[str, Any] | None = None, block_id: str = "b",
                     action_ts: str | None = None, extra_action: dict[str, Any] | None = None,
                     team: str = TEAM, user_team: str | None = None, response_url: str | None = None,
                     **kw: Any) -> httpx.Response:
        """`team` is the workspace the request comes from; `user_team` the clicking person's own (another
        organisation's in a Slack Connect channel), by default the same."""
        n = next(_counter)
        action = {"action_id": action_id, "block_id": block_id, "type": "button", "value": value,
                  "text": {"type": "plain_text", "text": "Button"}, "action_ts": action_ts or f"{time.time():.6f}"}
        action.update(extra_action or {})
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": "someone", "name": "someone", "team_id": user_team or team},
            "api_app_id": "A0001", "token": "deprecated", "trigger_id": f"{n}.333.{uuid.uuid4().hex[:10]}",
            "team": {"id": team, "domain": "example"}, "enterprise": None, "is_enterprise_install": False,
            "state": {"values": {}}, "actions": [action],
            "response_url": response_url or f"{self.response_url_base}/ba{n}",
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V1")}
            payload["view"] = view
        else:
            payload["container"] = {"type": "message", "message_ts": message_ts or "1.0", "channel_id": channel,
                                    "is_ephemeral": message_ts is None}
            payload["channel"] = {"id": channel, "name": "sales"}
            if message_ts:
                payload["message"] = {"type": "message", "ts": message_ts, "text": "", "bot_id": "BBOT"}
        return self.interactive(payload, **kw)

    def view_submission(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str,
                        view_id: str | None = None, team: str = TEAM, user_team: str | None = None,
                        **kw: Any) -> httpx.Response:
        """`view` is what the app opened (as the fake received it); `values` is state.values."""
        submitted = dict(view)
        submitted.setdefault("id", view_id or f"V{uuid.uuid4().hex[:8].upper()}")
        submitted.update({"team_id": team, "state": {"values": values}, "hash": f"{time.time():.0f}.abc",
                          "app_id": "A0001", "app_installed_team_id": team, "bot_id": "BBOT",
                          "root_view_id": submitted["id"], "previous_view_id": None})
        return self.interactive({
            "type": "view_submission", "team": {"id": team, "domain": "example"},
            "user": {"id": user, "username": "someone", "name": "someone", "team_id": user_team or team},
            "api_app_id": "A0001", "token": "deprecated", "trigger_id": f"{next(_counter)}.444.x",
            "view": submitted, "response_urls": [], "is_enterprise_install": False, "enterprise": None,
        }, **kw)


def text_value(v: str | None) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": v}}


def select_value(v: str | None) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": ({"value": v, "text": {"type": "plain_text", "text": v}} if v else None)}}
