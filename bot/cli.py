"""`loopline` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from bot.core.logging import setup_logging
from bot.core.settings import ConfigError, Settings, load_settings

log = logging.getLogger("loopline")


def _settings() -> Settings:
    return load_settings()


def cmd_serve(args: argparse.Namespace) -> int:
    s = _settings()
    s.require_slack_http()
    from bot.runtime import Runtime
    from bot.server import serve

    rt = Runtime(s)
    serve(rt, host=args.host, port=args.port or s.port, worker="none" if args.no_scheduler else args.worker)
    return 0


def cmd_socket(args: argparse.Namespace) -> int:
    s = _settings()
    s.require("slack_app_token", "slack_bot_token")
    import asyncio

    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.core.slack_client import make_async_web_client
    from bot.runtime import Runtime

    # Socket Mode has no signatures to check; Bolt skips verification in this mode.
    s = s.model_copy(update={"slack_signing_secret": s.slack_signing_secret or "socket-mode"})
    rt = Runtime(s)
    app = rt.build_app()
    rt.start_background(scheduler=not args.no_scheduler)

    async def main() -> None:
        handler = AsyncSocketModeHandler(app, s.secret("slack_app_token"),
                                         web_client=make_async_web_client(s, s.secret("slack_app_token")))
        await handler.start_async()

    try:
        asyncio.run(main())
    finally:
        rt.stop()
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    # --companion: started by `loopline serve` (bot/companion.py), which has migrated the database already.
    # Tied to that server's life first of all: the imports below take seconds on a small machine.
    if args.companion:
        from bot.companion import ParentPipe, die_with_parent

        die_with_parent(args.parent_pid)
    s = _settings()
    if not s.slack_bot_token and not s.oauth_enabled:
        raise ConfigError("SLACK_BOT_TOKEN is not set (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)")
    from bot.runtime import Runtime

    rt = Runtime(s, migrate=not args.companion)
    stop = threading.Event()
    if args.companion:
        pipe = ParentPipe(rt.worker.wake, stop)
        rt.worker.edge_busy = pipe.edge_busy
        pipe.start()
    rt.start_background()
    stop_metrics = None
    if args.metrics_port is not None:
        from bot.metrics import serve_metrics

        stop_metrics, port = serve_metrics(rt.metrics, args.metrics_host, args.metrics_port,
                                           token=s.secret("loopline_metrics_token"))
        log.info("metrics on http://%s:%s/metrics", args.metrics_host, port)
        if args.port_fd is not None:  # `loopline serve` asked for any free port: tell it which
            with os.fdopen(args.port_fd, "w") as report:
                report.write(f"{port}\n")
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("scheduler and worker running")
    stop.wait()
    if stop_metrics is not None:
        stop_metrics()
    rt.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from bot.core.db import Database

    db = Database(_settings().database_url)
    db.upgrade()
    print("database schema is up to date")
    return 0


def cmd_new_key(args: argparse.Namespace) -> int:
    from bot.slack.oauth import new_key

    print(new_key())
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from bot.core.db import Database
    from bot.slack.oauth import EncryptedInstallationStore, TokenCipher

    s = _settings()
    keys = s.encryption_keys
    if not keys:
        raise ConfigError("LOOPLINE_ENCRYPTION_KEY is not set: list the new key first, then the old ones")
    db = Database(s.database_url)
    db.upgrade()
    # Every stored token, whichever app (client id) installed it.
    store = EncryptedInstallationStore(client_id=s.slack_client_id or "", engine=db.engine, cipher=TokenCipher(keys))
    scan = store.rotate()
    print(f"re-encrypted {scan.tokens} tokens with the first key of LOOPLINE_ENCRYPTION_KEY "
          f"({scan.plain} were in plain text); the other keys can now be removed")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from bot.slack.manifest import render_manifest

    if not args.url.startswith("https://"):
        print("loopline: error: --url must be the public https:// address of this server", file=sys.stderr)
        return 2
    sys.stdout.write(render_manifest(args.url))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bot import composition
    from bot.core.db import Database
    from bot.core.exports import export_records

    db = Database(_settings().database_url)
    db.upgrade()
    with db.read_session() as session:
        for chunk in export_records(session, args.what, composition.exporters(composition.build_features()), fmt=args.format, include_withdrawn=args.all):
            sys.stdout.write(chunk)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bot.core.csvfile import UnreadableFile, decode
    from bot.core.db import Database
    from bot.features.feedback.service import import_feedback_csv

    s = _settings()
    # The whole file is read and decoded before anything is imported: a file we can't read is
    # refused whole, never half imported.
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as fh:
                data = fh.read()
    except OSError as e:
        print(f"loopline: error: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        text = decode(data, name="standard input" if args.file == "-" else args.file, encoding=args.encoding)
    except UnreadableFile as e:
        print(f"loopline: error: {e}", file=sys.stderr)
        return 2
    db = Database(s.database_url)
    db.upgrade()
    from bot.core.workspace import resolve_team

    team = resolve_team(s, db, args.team)
    from bot.core.progress import Progress

    name = "standard input" if args.file == "-" else os.path.basename(args.file)
    with Progress(f"importing {name}", total=text.count("\n") + (not text.endswith("\n")), unit="lines") as bar:
        report = import_feedback_csv(db.session, text, team_id=team, progress=bar.update)
    print(report.summary())
    return 1 if report.rejected and not report.imported and not report.duplicates else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import run

    def say(line: str) -> None:
        print(line, flush=True)  # each check as it finishes: a slow network check shows where it waits

    return run(url=args.url, socket=args.socket, print_line=say)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep)


def add_digest_parser(sub: Any) -> None:
    p = sub.add_parser("digest", help="build the digest for a channel now")
    p.add_argument("--channel", required=True, help="channel id, e.g. C0123ABCD")
    p.add_argument("--print", action="store_true", dest="print_", help="render to the terminal instead of posting")
    p.add_argument("--json", action="store_true", help="print the digest's data as JSON")
    p.add_argument("--since", help="start of the period (YYYY-MM-DD); default: 7 days ago")
    p.add_argument("--team", default=None, help="workspace id (default: the bot token's)")

    def run(args: argparse.Namespace) -> int:
        from bot.features.digests.cli import run_digest_command

        return run_digest_command(_settings(), args)

    p.set_defaults(fn=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopline", description="Loopline: the product-ops loop inside Slack")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="HTTP mode: POST /slack/events, GET /healthz")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-scheduler", action="store_true",
                   help="web only: no worker or scheduler (run `loopline scheduler` beside it)")
    p.add_argument("--worker", choices=["auto", "process", "thread"], default="auto",
                   help="where the worker and scheduler run: a child process at lower CPU priority, or threads "
                        "of this process (auto, the default: a process on PostgreSQL, threads on SQLite)")
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)")
    p.add_argument("--no-scheduler", action="store_true")
    p.set_defaults(fn=cmd_socket)

    p = sub.add_parser("scheduler", help="run only the scheduler/delivery worker")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve GET /metrics (Prometheus) on this port (default: off)")
    p.add_argument("--metrics-host", default="0.0.0.0",
                   help="address for --metrics-port (default 0.0.0.0: reachable by a Prometheus in another container)")
    p.add_argument("--companion", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_scheduler)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(fn=cmd_migrate)
    sub.add_parser("new-key", help="print a new key for LOOPLINE_ENCRYPTION_KEY").set_defaults(fn=cmd_new_key)
    sub.add_parser("rotate-key", help="re-encrypt every stored Slack token with the first key of "
                                      "LOOPLINE_ENCRYPTION_KEY").set_defaults(fn=cmd_rotate_key)

    add_digest_parser(sub)

    p = sub.add_parser("import", help="import records")
    p.add_argument("what", choices=["feedback"])
    p.add_argument("file", help="CSV file (columns: text; optional area, kind, customer, arr, created_at, reporter)")
    p.add_argument("--team", default=None, help="workspace id (default: the bot token's workspace)")
    p.add_argument("--encoding", default=None,
                   help="the file's encoding when it is not UTF-8 and has no byte-order mark, e.g. cp1252")
    p.set_defaults(fn=cmd_import)

    p = sub.add_parser("export", help="write every record to stdout")
    p.add_argument("what", choices=["feedback", "decisions", "announcements"])
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--all", action="store_true", help="include withdrawn feedback (with a status field)")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("manifest", help="print the Slack app manifest")
    p.add_argument("--url", required=True, help="public base URL, e.g. https://loopline.example.com")
    p.set_defaults(fn=cmd_manifest)

    p = sub.add_parser("doctor", help="check settings, database, Slack tokens and scopes, the public URL; "
                                      "say how to fix each problem")
    p.add_argument("--url", default=None, help="the public base URL Slack sends to, e.g. https://loopline.example.com")
    p.add_argument("--socket", action="store_true", help="this install uses Socket Mode (`loopline socket`)")
    p.set_defaults(fn=cmd_doctor)

    p = sub.add_parser("demo", help="a short realistic session against a local stand-in for Slack")
    p.add_argument("--keep", action="store_true", help="keep the demo database afterwards")
    p.set_defaults(fn=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings_fmt = "auto"
        with contextlib.suppress(ConfigError):
            settings_fmt = load_settings().loopline_log_format
        setup_logging(settings_fmt)
        fn: Callable[[argparse.Namespace], int] = args.fn
        return fn(args)
    except ConfigError as e:
        print(f"loopline: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


if __name__ == "__main__":
    sys.exit(main())
