"""The fake Slack Web API, exercised with the real slack_sdk clients over HTTP."""

from __future__ import annotations

import asyncio
import http.client
import importlib.util
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.devtools import fakeslack
from bot.devtools.fakeslack import BOT_USER_ID, FakeSlack

TS_RE = re.compile(r"^\d{10}\.\d{6}$")
HUMAN = "U0ALICE"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user(HUMAN, "alice", real_name="Alice Ops", is_admin=True, tz="Europe/Berlin")
        server.add_channel("C1", "feedback", members=[HUMAN])
        server.add_channel("C2", "announcements")
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.base_url, timeout=5)


def _error(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return exc.value.response["error"]


def test_base_url_shape(fake: FakeSlack) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", fake.base_url)
    assert fake.response_url("r1").startswith(fake.url + "/webhook/")


def test_post_message_round_trip_and_history(fake: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi* &lt;there&gt; :wave:"}}]
    first = client.chat_postMessage(channel="C1", text="hello ✨", blocks=blocks, unfurl_links=False)
    assert first["ok"] and first["channel"] == "C1" and TS_RE.match(first["ts"])
    assert first["message"]["text"] == "hello ✨"
    assert first["message"]["bot_id"] == "BBOT" and first["message"]["user"] == BOT_USER_ID
    reply = client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    second = client.chat_postMessage(
        channel="C1",
        text="with metadata",
        metadata={"event_type": "loopline_item", "event_payload": {"id": "FB-1"}},
    )
    assert first["ts"] < reply["ts"] < second["ts"]

    history = client.conversations_history(channel="C1", limit=10)
    assert [m["text"] for m in history["messages"]] == [
        "with metadata",
        "hello ✨",
    ]  # newest first, no replies
    assert history["messages"][1]["reply_count"] == 1
    assert "metadata" not in history["messages"][0]
    with_meta = client.conversations_history(channel="C1", include_all_metadata=True, limit=1)
    assert with_meta["messages"][0]["metadata"]["event_payload"] == {"id": "FB-1"}
    assert with_meta["has_more"] is True
    page2 = client.conversations_history(
        channel="C1", limit=1, cursor=with_meta["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in page2["messages"]] == [first["ts"]]
    one = client.conversations_history(channel="C1", latest=first["ts"], inclusive=True, limit=1)
    assert one["messages"][0]["ts"] == first["ts"]

    replies = client.conversations_replies(channel="C1", ts=first["ts"])
    assert [m["text"] for m in replies["messages"]] == ["hello ✨", "in thread"]

    call = fake.calls_to("chat.postMessage")[0]
    assert call.params["blocks"] == blocks and call.params["unfurl_links"] is False
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert [m["text"] for m in fake.bot_messages("C1")] == ["hello ✨", "in thread", "with metadata"]
    assert fake.wait_for("chat.postMessage", count=3, timeout=0.1)[2].params["text"] == "with metadata"


def test_update_delete_permalink_ephemeral_and_dm(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C2", text="v1")
    updated = client.chat_update(channel="C2", ts=posted["ts"], text="v2")
    assert updated["message"]["text"] == "v2" and "edited" in updated["message"]
    link = client.chat_getPermalink(channel="C2", message_ts=posted["ts"])["permalink"]
    assert link == f"https://example.slack.com/archives/C2/p{posted['ts'].replace('.', '')}"
    client.chat_delete(channel="C2", ts=posted["ts"])
    assert fake.messages("C2") == []
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C2", ts=posted["ts"], text="v3")
    assert _error(exc) == "message_not_found"
    human_ts = fake.add_message("C1", "customer said <!channel>", user=HUMAN)
    with pytest.raises(SlackApiError) as exc:
        client.chat_delete(channel="C1", ts=human_ts)
    assert _error(exc) == "cant_delete_message"

    eph = client.chat_postEphemeral(channel="C1", user=HUMAN, text="only you")
    assert TS_RE.match(eph["message_ts"])
    assert fake.ephemerals(user=HUMAN)[0]["text"] == "only you"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C1", user="U0STRANGER", text="x")
    assert _error(exc) == "user_not_in_channel"

    dm = client.chat_postMessage(channel=HUMAN, text="your feedback was captured")
    assert dm["channel"].startswith("D")
    assert client.conversations_open(users=HUMAN)["channel"]["id"] == dm["channel"]
    assert [m["text"] for m in fake.dms(HUMAN)] == ["your feedback was captured"]


def test_rate_limited_429_is_honoured_by_retry_handler(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=1)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="no retry handler")
    assert exc.value.response.status_code == 429
    assert _error(exc) == "ratelimited"
    assert exc.value.response.headers["Retry-After"] == "1"

    fake.fail_next("chat.postMessage", retry_after=0)  # the handler sleeps Retry-After + random()
    retrying = WebClient(
        token="xoxb-test",
        base_url=fake.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert retrying.chat_postMessage(channel="C1", text="after retry")["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert fake.stats["429"] == 2
    assert [m["text"] for m in fake.messages("C1")] == ["after retry"]


def test_server_errors_and_dropped_connections(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("users.info", status=503)
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user=HUMAN)
    assert exc.value.response.status_code == 503
    fake.fail_next("users.info", status=500)
    retrying = WebClient(
        token="xoxb-test",
        base_url=fake.base_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)],
    )
    assert retrying.users_info(user=HUMAN)["user"]["real_name"] == "Alice Ops"
    assert [c.status for c in fake.calls_to("users.info")] == [503, 500, 200]

    fake.fail_next("auth.test", disconnect=True)  # WebClient's default ConnectionErrorRetryHandler retries
    assert client.auth_test()["user_id"] == BOT_USER_ID
    assert [c.status for c in fake.calls_to("auth.test")] == [0, 200]


def test_permanent_errors_raise_slack_api_error(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("G1", "secret", is_private=True, bot_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="G1", text="x")
    assert _error(exc) == "not_in_channel"
    fake.archive("C2")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C2", text="x")
    assert _error(exc) == "is_archived"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C404", text="x")
    assert _error(exc) == "channel_not_found"
    fake.delete_channel("C1")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert _error(exc) == "channel_not_found"

    fake.add_channel("C3", "ops")
    fake.add_channel("C4", "sales")
    fake.fail_next("chat.postMessage", error="missing_scope", channel="C4")
    assert client.chat_postMessage(channel="C3", text="fine")["ok"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C4", text="x")
    assert exc.value.response.status_code == 200
    assert _error(exc) == "missing_scope" and exc.value.response["needed"]

    with pytest.raises(SlackApiError) as exc:
        client.conversations_join(channel="G1")
    assert _error(exc) == "method_not_supported_for_channel_type"
    fake.add_channel("C5", "new", bot_member=False)
    assert "warning" not in client.conversations_join(channel="C5").data
    assert client.conversations_join(channel="C5")["warning"] == "already_in_channel"
    assert BOT_USER_ID in client.conversations_members(channel="C5")["members"]

    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C3", text="x", blocks=too_many)
    assert _error(exc) == "invalid_blocks"
    assert "no more than 50 items" in exc.value.response["response_metadata"]["messages"][0]


def test_auth_errors(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=fake.base_url).auth_test()
    assert _error(exc) == "not_authed"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="nope", base_url=fake.base_url).auth_test()
    assert _error(exc) == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-test", base_url=fake.base_url).api_call("chat.nothing")
    assert _error(exc) == "unknown_method"


def test_per_channel_and_workspace_rate_limits(fake: FakeSlack, client: WebClient) -> None:
    fake.per_channel_rate = 1.0
    assert client.chat_postMessage(channel="C1", text="one")["ok"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="two")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "1"
    assert client.chat_postMessage(channel="C2", text="other channel")["ok"]

    fake.per_channel_rate = None
    fake.workspace_rate = 3.0
    for i in range(4):
        fake.add_channel(f"CW{i}", f"w{i}")
    results = []
    for i in range(4):
        try:
            results.append(client.chat_postMessage(channel=f"CW{i}", text="burst").status_code)
        except SlackApiError as e:
            results.append(e.response.status_code)
    assert results == [200, 200, 200, 429]  # burst = rate = 3, then 429 until a token refills
    assert fake.stats["429"] == 2


def test_files_upload_v2_into_thread(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="digest for week 12")
    content = "theme,count\nexport ✓,3\n".encode()
    result = client.files_upload_v2(
        channel="C1",
        thread_ts=parent["ts"],
        content=content,
        filename="digest.csv",
        title="Digest data",
        initial_comment="full data attached",
    )
    assert result["file"]["title"] == "Digest data"
    [stored] = fake.files
    assert (
        stored["content"] == content and stored["channels"] == ["C1"] and stored["thread_ts"] == parent["ts"]
    )
    replies = client.conversations_replies(channel="C1", ts=parent["ts"])["messages"]
    assert replies[1]["text"] == "full data attached"
    assert replies[1]["files"][0]["id"] == stored["id"]
    complete = fake.calls_to("files.completeUploadExternal")[0]
    assert complete.params["files"] == [{"id": stored["id"], "title": "Digest data"}]


def test_reactions_get_returns_seeded_message_with_permalink(fake: FakeSlack, client: WebClient) -> None:
    ts = fake.add_message(
        "C1", "Export to CSV is broken <@U0BOB> & slow", user=HUMAN, reactions={"bug": [HUMAN]}
    )
    got = client.reactions_get(channel="C1", timestamp=ts)
    assert got["type"] == "message" and got["channel"] == "C1"
    message = got["message"]
    assert message["text"] == "Export to CSV is broken <@U0BOB> & slow" and message["user"] == HUMAN
    assert message["reactions"] == [{"name": "bug", "users": [HUMAN], "count": 1}]
    assert message["permalink"] == f"https://example.slack.com/archives/C1/p{ts.replace('.', '')}"
    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert _error(exc) == "already_reacted"
    stored = fake.message("C1", ts)
    assert stored is not None and stored["reactions"] == {"bug": [HUMAN], "eyes": [BOT_USER_ID]}
    reply_ts = fake.add_message("C1", "+1 from another customer", user="U0BOB", thread_ts=ts)
    link = client.reactions_get(channel="C1", timestamp=reply_ts)["message"]["permalink"]
    assert link.endswith(f"?thread_ts={ts}&cid=C1")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_get(channel="C1", timestamp="1.000001")
    assert _error(exc) == "message_not_found"


def test_users_team_and_views(fake: FakeSlack, client: WebClient) -> None:
    user = client.users_info(user=HUMAN)["user"]
    assert user["is_admin"] is True and user["tz"] == "Europe/Berlin" and user["tz_offset"] in (3600, 7200)
    assert user["profile"]["real_name"] == "Alice Ops"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0NOBODY")
    assert _error(exc) == "user_not_found"
    assert client.team_info()["team"]["id"] == "T0001"

    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Feedback"}, "blocks": []}
    opened = client.views_open(trigger_id="123.456.abc", view=modal)["view"]
    assert opened["id"].startswith("V") and opened["hash"]
    changed = dict(modal, blocks=[{"type": "divider"}])
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)
    assert _error(exc) == "hash_conflict"
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="expired.1", view=modal)
    assert _error(exc) == "expired_trigger_id"
    home = {
        "type": "home",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "This week"}}],
    }
    client.views_publish(user_id=HUMAN, view=home)
    published = fake.home_view(HUMAN)
    assert published is not None and published["blocks"] == home["blocks"]
    assert [v["method"] for v in fake.views] == ["views.open", "views.update", "views.publish"]
    bad = dict(modal, title={"type": "plain_text", "text": "x" * 25})
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="123.456.abc", view=bad)
    assert _error(exc) == "invalid_arguments"


def test_latency_delays_calls(fake: FakeSlack, client: WebClient) -> None:
    fake.latency_for["users.info"] = 0.3
    started = time.monotonic()
    client.users_info(user=HUMAN)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.25
    fake.latency = 0.2
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    slow = WebClient(token="xoxb-test", base_url=fake.base_url, timeout=1)
    fake.latency_for["users.info"] = 1.5
    with pytest.raises(TimeoutError):
        slow.users_info(user=HUMAN)


def test_response_url_and_oauth(fake: FakeSlack) -> None:
    url = fake.response_url("cmd-1")
    WebhookClient(url).send(text="Captured FB-1", response_type="ephemeral")
    assert fake.wait_for_webhook("cmd-1", timeout=1) == [
        {"text": "Captured FB-1", "response_type": "ephemeral"}
    ]

    installing = WebClient(base_url=fake.base_url)
    resp = installing.oauth_v2_access(client_id="111.222", client_secret="s3cret", code="good-code")
    assert resp["team"]["id"] == "T9TK3CUKW"
    identity = WebClient(token=resp["access_token"], base_url=fake.base_url).auth_test()
    assert identity["team_id"] == "T9TK3CUKW" and identity["user_id"] == resp["bot_user_id"]
    with pytest.raises(SlackApiError) as exc:
        installing.oauth_v2_access(client_id="111.222", client_secret="s3cret", code="bad-code")
    assert _error(exc) == "invalid_code"


def test_wait_for_times_out_with_a_readable_dump(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="only one")
    with pytest.raises(AssertionError) as exc:
        fake.wait_for("chat.postMessage", count=2, timeout=0.2)
    assert "chat.postMessage 200 ok channel=C1 text='only one'" in str(exc.value)
    assert fake.wait_for("chat.postMessage", predicate=lambda c: c.params["text"] == "only one", timeout=0.1)


def test_many_concurrent_keep_alive_connections(fake: FakeSlack) -> None:
    channels = [f"C{i:04d}" for i in range(1000)]
    for cid in channels:
        fake.add_channel(cid, f"area-{cid}")
    host, port = "127.0.0.1", fake.port
    errors: list[str] = []

    def worker(mine: list[str]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)  # one keep-alive connection
        try:
            for cid in mine:
                body = json.dumps({"channel": cid, "text": f"announcement for {cid}"})
                headers = {
                    "Authorization": "Bearer xoxb-test",
                    "Content-Type": "application/json; charset=utf-8",
                }
                conn.request("POST", "/api/chat.postMessage", body=body, headers=headers)
                resp = conn.getresponse()
                data = json.loads(resp.read())
                if resp.status != 200 or not data["ok"]:
                    errors.append(f"{cid}: {resp.status} {data}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(channels[i::20],)) for i in range(20)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert errors == []
    assert fake.call_count("chat.postMessage") == 1000
    assert all(len(fake.messages(cid)) == 1 for cid in channels[::97])
    assert elapsed < 10, elapsed


def test_async_web_client(fake: FakeSlack) -> None:
    pytest.importorskip("aiohttp")
    from slack_sdk.web.async_client import AsyncWebClient

    async def scenario() -> None:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        posted = await client.chat_postMessage(channel="C1", text="async hello")
        history = await client.conversations_history(channel="C1", limit=5)  # form params in the query string
        assert history["messages"][0]["ts"] == posted["ts"]
        uploaded = await client.files_upload_v2(
            channel="C1", thread_ts=posted["ts"], content=b"\x00\x01bytes", filename="blob.bin"
        )
        assert uploaded["file"]["name"] == "blob.bin"
        fake.fail_next("users.info", error="user_not_found")
        with pytest.raises(SlackApiError) as exc:
            await client.users_info(user=HUMAN)
        assert exc.value.response["error"] == "user_not_found"

    asyncio.run(scenario())
    assert fake.files[0]["content"] == b"\x00\x01bytes"


def test_slack_connect_people_and_channels(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0CUST", "jo", team_id="T0EXT")
    fake.add_user("W0SIB", "sib", team_id="T0SIB", enterprise_id="E0ORG", is_stranger=True)
    own = client.users_info(user=HUMAN)["user"]
    assert own["team_id"] == "T0001" and "is_stranger" not in own and "enterprise_user" not in own
    foreign = client.users_info(user="U0CUST")["user"]
    assert foreign["team_id"] == "T0EXT" and foreign["is_stranger"] is False
    sib = client.users_info(user="W0SIB")["user"]
    assert sib["is_stranger"] is True and sib["enterprise_user"]["enterprise_id"] == "E0ORG"
    assert sib["enterprise_user"]["teams"] == ["T0SIB"]

    info = client.conversations_info(channel="C1")["channel"]
    assert (info["is_shared"], info["is_ext_shared"], info["is_pending_ext_shared"]) == (False, False, False)
    fake.share_channel("C1", pending=True)
    info = client.conversations_info(channel="C1")["channel"]
    assert info["is_pending_ext_shared"] and not info["is_ext_shared"] and info["pending_connected_team_ids"] == ["T0EXT"]
    fake.share_channel("C1", teams=["T0EXT", "T0MORE"])
    info = client.conversations_info(channel="C1")["channel"]
    assert info["is_shared"] and info["is_ext_shared"] and info["shared_team_ids"] == ["T0001", "T0EXT", "T0MORE"]
    fake.share_channel("C1", ext_shared=False)
    assert not client.conversations_info(channel="C1")["channel"]["is_ext_shared"]
    fake.add_channel("C3", "grid-wide", org_shared=True)
    grid = client.conversations_info(channel="C3")["channel"]
    assert grid["is_shared"] and grid["is_org_shared"] and not grid["is_ext_shared"]

    fake.register_token("xoxb-grid", enterprise_id="E0ORG")
    assert WebClient(token="xoxb-grid", base_url=fake.base_url).auth_test()["enterprise_id"] == "E0ORG"
    assert "enterprise_id" not in client.auth_test().data


def test_the_fake_is_one_package_of_small_modules() -> None:
    # One import path (the wheel ships it for `loopline demo`, the tests use the same one), and no
    # module so long that finding, say, how chat.update answers means scrolling through all of Slack.
    assert importlib.util.find_spec("tests.fakeslack") is None
    package = Path(fakeslack.__file__).parent
    lines = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in package.glob("*.py")}
    assert max(lines.values()) < 500, lines


def test_every_method_in_the_dispatch_table_answers_like_slack(fake: FakeSlack) -> None:
    # Called bare, every method in the table answers as Slack would (ok, or a Slack error such as
    # channel_not_found), never with a bug of the fake: a handler wired with the wrong signature, or
    # one that forgot a missing argument, answers fake_internal_error.
    from bot.devtools.fakeslack.api import WEB_API

    assert {"chat.postMessage", "views.publish", "files.completeUploadExternal"} <= WEB_API.keys()
    # the names are Slack's own, as slack_sdk spells them (chat.postMessage -> WebClient.chat_postMessage)
    assert [m for m in WEB_API if not hasattr(WebClient, m.replace(".", "_"))] == []
    for method in sorted(WEB_API):
        token = "xapp-1-A0001-1-s3cr3t" if method == "apps.connections.open" else "xoxb-test"
        try:
            answer = WebClient(token=token, base_url=fake.base_url, timeout=5).api_call(method).data
        except SlackApiError as exc:
            answer = exc.response.data
        assert isinstance(answer, dict), (method, answer)
        assert answer.get("error") not in ("unknown_method", "fake_internal_error"), (method, answer)
    assert fake.errors == []
    assert [c.method for c in fake.calls] == sorted(WEB_API)
