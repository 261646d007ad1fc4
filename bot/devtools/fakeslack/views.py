"""views.*: modals opened and pushed from a trigger, updated by id or external_id with hash
checks, and Home tabs published per person. Every view is checked against Block Kit's limits."""

from __future__ import annotations

import json
import time
from typing import Any

from . import blockkit
from .common import APP_ID, Answer, Params, SlackError
from .records import Identity
from .state import State


def _invalid(message: str) -> SlackError:
    return SlackError("invalid_arguments", response_metadata={"messages": [message]})


def _view_arg(s: State, p: Params) -> dict[str, Any]:
    view = p.get("view")
    if not isinstance(view, dict):
        raise _invalid("[ERROR] missing required field: view")
    if len(json.dumps(view)) > blockkit.VIEW_MAX_BYTES:
        raise SlackError("view_too_large")
    if s.validate_blocks:
        errors = blockkit.check_view(view)
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": errors})
    return view


def _make_view(
    s: State,
    view: dict[str, Any],
    ident: Identity,
    *,
    view_id: str | None = None,
    root_view_id: str | None = None,
    previous_view_id: str | None = None,
) -> dict[str, Any]:
    view_id = view_id or s._new_id("V")
    obj = {
        "id": view_id,
        "team_id": ident.team_id,
        "type": view.get("type"),
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{next(s._ids):08x}",
        "title": view.get("title"),
        "clear_on_close": bool(view.get("clear_on_close", False)),
        "notify_on_close": bool(view.get("notify_on_close", False)),
        "close": view.get("close"),
        "submit": view.get("submit"),
        "previous_view_id": previous_view_id,
        "root_view_id": root_view_id or view_id,
        "app_id": APP_ID,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": ident.team_id,
        "bot_id": ident.bot_id,
    }
    ext = view.get("external_id")
    if ext:
        owner = s._view_by_external.get(ext)
        if owner is not None and owner != view_id:
            raise SlackError("duplicate_external_id")
        s._view_by_external[ext] = view_id
    s._view_state[view_id] = obj
    return obj


def _shown(
    s: State,
    method: str,
    view: dict[str, Any],
    obj: dict[str, Any],
    *,
    trigger: str | None = None,
    user: str | None = None,
) -> Answer:
    """Log the call for FakeSlack.views and answer with the view as Slack stores it."""
    s._views.append(
        {"method": method, "trigger_id": trigger, "view": view, "user_id": user, "view_id": obj["id"]}
    )
    return {"view": obj}


def _check_trigger(p: Params) -> str:
    trigger = p.get("trigger_id") or p.get("interactivity_pointer")
    if not trigger:
        raise _invalid("[ERROR] missing required field: trigger_id")
    trigger = str(trigger)
    if trigger.startswith("expired"):
        raise SlackError("expired_trigger_id")
    if trigger.startswith("invalid"):
        raise SlackError("invalid_trigger_id")
    return trigger


def _from_trigger(s: State, p: Params, ident: Identity, method: str) -> Answer:
    trigger = _check_trigger(p)
    view = _view_arg(s, p)
    return _shown(s, method, view, _make_view(s, view, ident), trigger=trigger)


def open_(s: State, p: Params, ident: Identity) -> Answer:
    return _from_trigger(s, p, ident, "views.open")


def push(s: State, p: Params, ident: Identity) -> Answer:
    return _from_trigger(s, p, ident, "views.push")


def update(s: State, p: Params, ident: Identity) -> Answer:
    view_id = p.get("view_id") or s._view_by_external.get(str(p.get("external_id") or ""))
    if not p.get("view_id") and not p.get("external_id"):
        raise _invalid("[ERROR] view_id or external_id required")
    current = s._view_state.get(str(view_id or ""))
    if current is None:
        raise SlackError("not_found")
    if p.get("hash") and p["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    view = _view_arg(s, p)
    obj = _make_view(
        s,
        view,
        ident,
        view_id=current["id"],
        root_view_id=current["root_view_id"],
        previous_view_id=current["previous_view_id"],
    )
    user = next((u for u, v in s._home_by_user.items() if v == current["id"]), None)
    return _shown(s, "views.update", view, obj, user=user)


def publish(s: State, p: Params, ident: Identity) -> Answer:
    user = p.get("user_id")
    if not user:
        raise _invalid("[ERROR] missing required field: user_id")
    view = _view_arg(s, p)
    if view.get("type") != "home":
        raise _invalid("[ERROR] must be home [json-pointer:/view/type]")
    current_id = s._home_by_user.get(user)
    current = s._view_state.get(current_id) if current_id else None
    if p.get("hash") and current is not None and p["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    obj = _make_view(s, view, ident, view_id=current_id)
    s._home_by_user[user] = obj["id"]
    return _shown(s, "views.publish", view, obj, user=user)
