"""Baseline for bench/ack.py: a bare Bolt AsyncApp that only acks, served exactly like `loopline serve`."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)
    args = p.parse_args()

    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id="T0001", bot_token="xoxb-bench", bot_user_id="UBOT",
                               bot_id="BBOT")

    app = AsyncApp(signing_secret=args.secret, authorize=authorize, process_before_response=True)

    @app.command("/feedback")
    async def feedback(ack: Any) -> None:
        await ack()

    @app.event("reaction_added")
    async def reaction(body: Any) -> None:
        return None

    @app.event("message")
    async def message(body: Any) -> None:
        return None

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    asgi = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    uvicorn.run(asgi, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
