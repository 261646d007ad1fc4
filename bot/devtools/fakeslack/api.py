"""The Web API: which methods the fake knows (WEB_API, the one dispatch table), how a request's
parameters and token are read, and the order Slack applies its checks in — authentication, then an
injected fault, then rate limits, then the method itself. Every call is logged as a Call."""

from __future__ import annotations

import contextlib
import json
import math
import traceback
from collections.abc import Callable
from urllib.parse import parse_qsl

from . import chat, conversations, files, oauth, reactions, users, views
from .common import DEFAULT_SCOPES, Answer, Params, Reply, SlackError
from .faults import Disconnect, fault_response, rate_limit_wait, sleep_latency, take_fault
from .records import Call, Identity
from .state import State

Handler = Callable[[State, Params, Identity], Answer]


def api_test(s: State, p: Params, ident: Identity) -> Answer:
    if p.get("error"):
        raise SlackError(str(p["error"]))
    return {"args": {k: v for k, v in p.items() if not k.startswith("_")}}


WEB_API: dict[str, Handler] = {
    "api.test": api_test,
    "auth.test": users.auth_test,
    "bots.info": users.bots_info,
    "chat.postMessage": chat.post_message,
    "chat.update": chat.update,
    "chat.delete": chat.delete,
    "chat.postEphemeral": chat.post_ephemeral,
    "chat.getPermalink": chat.get_permalink,
    "chat.scheduleMessage": chat.schedule_message,
    "chat.deleteScheduledMessage": chat.delete_scheduled_message,
    "chat.scheduledMessages.list": chat.scheduled_messages_list,
    "conversations.join": conversations.join,
    "conversations.leave": conversations.leave,
    "conversations.info": conversations.info,
    "conversations.open": conversations.open_,
    "conversations.history": conversations.history,
    "conversations.replies": conversations.replies,
    "conversations.members": conversations.members,
    "conversations.list": conversations.list_,
    "users.conversations": conversations.users_conversations,
    "reactions.get": reactions.get,
    "reactions.add": reactions.add,
    "reactions.remove": reactions.remove,
    "users.info": users.info,
    "users.list": users.list_,
    "users.lookupByEmail": users.lookup_by_email,
    "team.info": users.team_info,
    "views.open": views.open_,
    "views.publish": views.publish,
    "views.update": views.update,
    "views.push": views.push,
    "files.upload": files.upload_v1,
    "files.getUploadURLExternal": files.get_upload_url_external,
    "files.completeUploadExternal": files.complete_upload_external,
    "apps.connections.open": oauth.connections_open,
    "oauth.v2.access": oauth.v2_access,
    "oauth.access": oauth.v2_access,
}
NO_AUTH_METHODS = frozenset({"oauth.v2.access", "oauth.access", "oauth.v2.exchange", "api.test"})
APP_TOKEN_METHODS = frozenset({"apps.connections.open", "auth.test"})
JSON_PARAMS = ("blocks", "attachments", "metadata", "view", "files", "outputs")


def parse_params(query: str, headers: dict[str, str], body: bytes) -> Params:
    """Query string plus body (JSON, or form-encoded); JSON-valued form fields decoded as Slack does."""
    params: Params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    ctype = headers.get("content-type", "").lower()
    if body:
        if "application/json" in ctype:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise SlackError("invalid_json") from exc
            if not isinstance(data, dict):
                raise SlackError("invalid_json")
            params.update(data)
        elif "multipart/form-data" in ctype:
            raise SlackError("invalid_form_data")
        else:
            try:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError as exc:
                raise SlackError("invalid_charset") from exc
    for key in JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # on failure it stays a string; the handler answers invalid_*_format
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def token_from(headers: dict[str, str], params: Params) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    token = params.pop("token", None)
    return str(token) if token else None


def handle_api(
    s: State, method: str, query: str, headers: dict[str, str], body: bytes, arrived: float
) -> Reply:
    """Answer one Web API request (``headers`` lower-cased) and log it."""
    parse_error: SlackError | None = None
    try:
        params = parse_params(query, headers, body)
    except SlackError as exc:
        params, parse_error = {}, exc
    token = token_from(headers, params)
    sleep_latency(s, method, s.latency)
    disconnect = False
    with s._lock:
        ident = s._identity(token) if token else None
        scopes = ident.scopes if ident else DEFAULT_SCOPES
        out_headers = {"x-oauth-scopes": scopes, "x-accepted-oauth-scopes": ""}
        try:
            if parse_error is not None:
                raise parse_error
            status, resp, extra = _process(s, method, params, token, ident, headers)
        except SlackError as exc:
            status, resp, extra = exc.status, {"ok": False, "error": exc.error, **exc.extra}, exc.headers
        except Disconnect:
            status, resp, extra, disconnect = 0, {"ok": False, "error": "disconnected"}, {}, True
        except Exception as exc:  # a bug in the fake: answer 500, keep the traceback for the test
            s.errors.append(f"{method}: {traceback.format_exc()}")
            status, resp, extra = 500, {"ok": False, "error": "fake_internal_error", "detail": repr(exc)}, {}
        out_headers.update(extra)
        s.stats["calls"] += 1
        if status == 429:
            s.stats["429"] += 1
        elif status >= 500:
            s.stats["5xx"] += 1
        if not resp.get("ok"):
            s.stats["errors"] += 1
        call = Call(method, params, headers, status, resp, arrived, token, ident.team_id if ident else None)
        s._calls.append(call)
        s._calls_by_method.setdefault(method, []).append(call)
        s._cond.notify_all()
    if disconnect:
        return None
    return status, resp, out_headers


def _check_token(s: State, method: str, token: str | None, ident: Identity | None) -> Identity:
    if method in NO_AUTH_METHODS:
        return ident or Identity()
    if not token or ident is None:
        raise SlackError("not_authed")
    if not token.startswith(("xoxb-", "xoxp-", "xapp-")) or token in s.invalid_tokens:
        raise SlackError("invalid_auth")
    if token in s.revoked_tokens:
        raise SlackError("token_revoked")
    is_app_token = token.startswith("xapp-")
    app_method = method == "apps.connections.open"
    if is_app_token != app_method and not (is_app_token and method in APP_TOKEN_METHODS):
        raise SlackError("not_allowed_token_type")
    return ident


def _process(
    s: State, method: str, params: Params, token: str | None, ident: Identity | None, headers: dict[str, str]
) -> tuple[int, Answer, dict[str, str]]:
    handler = WEB_API.get(method)
    if handler is None:
        raise SlackError("unknown_method")
    ident = _check_token(s, method, token, ident)
    raw_channel = params.get("channel") or params.get("channel_id")
    channel_keys: tuple[str | None, ...] = (raw_channel,)
    if isinstance(raw_channel, str) and raw_channel[:1] in ("U", "W"):  # a DM, named by its person
        channel_keys = (raw_channel, s._dm_by_user.get(raw_channel, "D" + raw_channel[1:]))
    fault = take_fault(s, method, channel_keys)
    if fault is not None:
        if fault.disconnect:
            raise Disconnect()
        return fault_response(fault)
    wait = rate_limit_wait(s, method, channel_keys[-1], ident)
    if wait:
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
    if method in NO_AUTH_METHODS:
        params["_authorization"] = headers.get("authorization", "")
    try:
        data = handler(s, params, ident)
    finally:
        params.pop("_authorization", None)
    return 200, {"ok": True, **data}, {}

