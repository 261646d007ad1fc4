"""`loopline socket`: the same behaviour over Socket Mode, against a local WebSocket stand-in."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid

import pytest

from tests.support.env import BOT_TOKEN, CUSTOMER, REP, export
from tests.support.process import BotProcess, bot_env

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402


class SocketModeServer:
    """Plays wss://wss.slack.com: says hello, sends envelopes, collects the app's acks."""

    def __init__(self) -> None:
        self.acks: queue.Queue[dict] = queue.Queue()
        self.connected = threading.Event()
        self._ws: web.WebSocketResponse | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def link(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            self._ws = ws
            await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0001"},
                                "debug_info": {"host": "local", "approximate_connection_time": 3600}})
            self.connected.set()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.acks.put(json.loads(msg.data))
            return ws

        app = web.Application()
        app.router.add_get("/link/", link)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{self.port}/link/"
        self._ready.set()
        self._loop.run_forever()

    def send(self, envelope_type: str, payload: dict, **extra: object) -> str:
        envelope_id = str(uuid.uuid4())
        msg = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
               "accepts_response_payload": envelope_type != "events_api", **extra}
        assert self._ws is not None
        asyncio.run_coroutine_threadsafe(self._ws.send_json(msg), self._loop).result(5)
        return envelope_id

    def ack_for(self, envelope_id: str, timeout: float = 10) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ack = self.acks.get(timeout=0.2)
            except queue.Empty:
                continue
            if ack.get("envelope_id") == envelope_id:
                return ack
        raise AssertionError(f"no ack for {envelope_id}")


def test_socket_mode_captures_and_acks(fake, db, db_url, tmp_path):
    ws = SocketModeServer()
    fake.socket_mode_url = ws.url
    env = bot_env(fake, db_url, "", BOT_TOKEN, SLACK_APP_TOKEN="xapp-1-A0001-1234-abcdef")
    proc = BotProcess(["socket"], env, log=tmp_path / "socket.log")
    try:
        assert ws.connected.wait(20), proc.log()
        cmd = {"token": "x", "team_id": "T0001", "team_domain": "example", "channel_id": "C0SALES",
               "channel_name": "sales", "user_id": REP, "user_name": "sam", "command": "/feedback",
               "text": "Socket mode: the \"payload\" of our webhooks is truncated at 4 KB <!here>",
               "api_app_id": "A0001", "response_url": fake.response_url("sock"), "trigger_id": "1.2.socket"}
        ack = ws.ack_for(ws.send("slash_commands", cmd))
        acked = json.dumps(ack["payload"])
        assert "&lt;!here&gt;" in acked and "<!here>" not in acked
        assert f'Captured as {export(db)[0]["id"]}' in acked

        ts = fake.add_message("C0ACME", "Need EU data residency before we can expand", user=CUSTOMER)
        event = {"token": "x", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                 "event_id": "EvSOCKET1", "event_time": int(time.time()),
                 "event": {"type": "reaction_added", "user": REP, "reaction": "bulb", "item_user": CUSTOMER,
                           "item": {"type": "message", "channel": "C0ACME", "ts": ts}, "event_ts": "1.2"},
                 "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}]}
        ws.ack_for(ws.send("events_api", event))
        ws.ack_for(ws.send("events_api", event, retry_attempt=1, retry_reason="timeout"))  # redelivered
        fake.wait_until(lambda: len(export(db)) == 2, timeout=20)
        fake.wait_until(lambda: fake.ephemerals(user=REP), timeout=20)
    finally:
        proc.stop()
    recs = export(db)
    assert [r["source"] for r in recs] == ["command", "reaction"]
    assert recs[1]["votes"] == 1
