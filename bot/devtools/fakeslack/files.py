"""files.*: the external upload flow slack_sdk's files_upload_v2 uses (files.getUploadURLExternal,
a raw POST of the bytes to the upload URL, files.completeUploadExternal sharing them into channels
or a thread); the retired files.upload answers method_deprecated, as Slack now does."""

from __future__ import annotations

import time
from typing import Any

from .chat import bot_message
from .common import TEAM_DOMAIN, TEAM_ID, Answer, Params, Reply, SlackError, norm_ts, to_int
from .faults import sleep_latency, take_fault
from .records import Identity
from .state import State


def upload_v1(s: State, p: Params, ident: Identity) -> Answer:
    raise SlackError("method_deprecated")


def get_upload_url_external(s: State, p: Params, ident: Identity) -> Answer:
    filename = p.get("filename")
    length = to_int(p.get("length"), -1)
    if not filename or length < 0:
        raise SlackError("invalid_arguments")
    file_id = s._new_id("F")
    s._files[file_id] = {
        "id": file_id,
        "name": str(filename),
        "title": str(filename),
        "length": length,
        "alt_txt": p.get("alt_txt"),
        "snippet_type": p.get("snippet_type"),
        "content": None,
        "uploaded": False,
        "completed": False,
        "channels": [],
        "thread_ts": None,
        "initial_comment": None,
        "user": ident.user_id,
        "created": int(time.time()),
    }
    return {"upload_url": f"{s.url}/upload/{file_id}", "file_id": file_id}


def receive_upload(s: State, file_id: str, body: bytes) -> Reply:
    """The bytes POSTed to an upload_url (not a Web API call: plain text answers, as Slack's)."""
    sleep_latency(s, "upload")
    with s._lock:
        fault = take_fault(s, "upload", (None,))
        if fault is not None:
            if fault.disconnect:
                return None
            return fault.status, f"error: {fault.error}", {}
        record = s._files.get(file_id)
        if record is None:
            return 404, "file not found", {}
        record["content"] = body
        record["uploaded"] = True
        s.stats["uploads"] += 1
    return 200, f"OK - {len(body)}", {}


def _file_obj(s: State, rec: dict[str, Any]) -> dict[str, Any]:
    content = rec["content"] or b""
    shares: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cid, ts in rec.get("shares", []):
        ch = s._channels.get(cid, {})
        kind = "private" if ch.get("is_private") or ch.get("is_im") else "public"
        share: dict[str, Any] = {"ts": ts, "channel_name": ch.get("name", ""), "team_id": TEAM_ID}
        if rec.get("thread_ts"):
            share["thread_ts"] = rec["thread_ts"]
        shares.setdefault(kind, {}).setdefault(cid, []).append(share)
    return {
        "id": rec["id"],
        "created": rec["created"],
        "timestamp": rec["created"],
        "name": rec["name"],
        "title": rec["title"],
        "mimetype": "text/plain"
        if rec["name"].endswith((".txt", ".csv", ".md"))
        else "application/octet-stream",
        "filetype": rec["name"].rsplit(".", 1)[-1] if "." in rec["name"] else "binary",
        "user": rec["user"],
        "size": len(content),
        "is_external": False,
        "url_private": f"https://files.slack.com/files-pri/{TEAM_ID}-{rec['id']}/{rec['name']}",
        "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{rec['user']}/{rec['id']}/{rec['name']}",
        "channels": list(rec["channels"]),
        "shares": shares,
    }


def complete_upload_external(s: State, p: Params, ident: Identity) -> Answer:
    files = p.get("files")
    if not isinstance(files, list) or not files:
        raise SlackError("invalid_arguments")
    records = []
    for item in files:
        rec = s._files.get(str(item.get("id") if isinstance(item, dict) else item))
        if rec is None or not rec["uploaded"] or rec["completed"]:
            raise SlackError("file_not_found")
        records.append((rec, item))
    targets = [c.strip() for c in str(p.get("channels") or "").split(",") if c.strip()]
    if p.get("channel_id"):
        targets.insert(0, str(p["channel_id"]))
    chans = [s._postable(c, ident) for c in dict.fromkeys(targets)]
    thread_ts = norm_ts(p.get("thread_ts"))
    for rec, item in records:
        if isinstance(item, dict) and item.get("title"):
            rec["title"] = item["title"]
        rec["completed"] = True
        rec["thread_ts"] = thread_ts
        rec["initial_comment"] = p.get("initial_comment")
        rec["channels"] = [c["id"] for c in chans]
        rec["shares"] = []
    for ch in chans:
        msg = bot_message({"text": p.get("initial_comment") or ""}, ident, s._new_ts())
        msg["upload"] = True
        msg["display_as_bot"] = False
        s._attach_thread(ch["id"], msg, thread_ts)
        for rec, _item in records:
            rec["shares"].append((ch["id"], msg["ts"]))
        msg["files"] = [
            {"id": rec["id"], "name": rec["name"], "title": rec["title"]} for rec, _item in records
        ]
        s._store(ch["id"], msg)
    return {"files": [_file_obj(s, rec) for rec, _item in records]}
