"""Ack throughput and latency: a bare Bolt app vs `loopline serve`, side by side, in one run.

Both servers run on loopback in their own process, one after the other, under the same load: wrk with
20 connections replaying pre-signed `/feedback <text>` commands and `reaction_added` events (every
request unique, so Loopline really writes each one to its inbox), and with `--kinds message` messages in
channels nobody watches (checked and dropped at the edge). Prints requests/s, p50 and p99 for
each and the ratio. Needs `wrk` (Debian package).

    python bench/ack.py --db sqlite            # or --db postgres, --duration 10, --connections 20
    python bench/ack.py --kinds message,event  # which requests (default command,event)
    python bench/ack.py --busy 3000            # the worker fans an announcement out to 3,000 channels meanwhile
    python bench/ack.py --worker thread        # serve's worker in threads of the edge's process (default: auto)

`--busy N` seeds an announcement due now to N subscribed channels before `loopline serve` starts, with
the workspace rate raised (`--busy-rate`) and the fake unlimited, so the delivery loop posts
flat out during the measurement while the job worker embeds and fetches what the edge captures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TEXTS = [
    "Export to CSV times out for >10k rows & the spinner never stops 🙃",
    "SSO via Okta drops sessions after 10 min — <!channel> blocking renewal",
    "Dark mode pls; our NOC team works nights (see <@U0CUST>)",
    "Webhook retries lose the \"event\" field & the signature header",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_requests(path: Path, kind: str, n: int) -> str:
    verifier = SignatureVerifier(SECRET)
    ts = str(int(time.time()))
    with path.open("w") as f:
        for i in range(n):
            if kind == "command":
                body = urlencode({"token": "x", "team_id": "T0001", "team_domain": "bench", "channel_id": "C0SALES",
                                  "channel_name": "sales", "user_id": f"U{i % 50:04d}", "user_name": "rep",
                                  "command": "/feedback", "text": f"{TEXTS[i % len(TEXTS)]} #{i}",
                                  "api_app_id": "A0001", "response_url": "http://127.0.0.1:9/hook",
                                  "trigger_id": f"{i}.{ts}.{uuid.uuid4().hex[:12]}"})
            elif kind == "message":
                # Chatter in a channel nobody watches: acked and dropped at the edge (after its one
                # indexed read), never queued.
                body = json.dumps({
                    "token": "x", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                    "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}", "event_time": int(ts),
                    "event": {"type": "message", "user": f"U{i % 50:04d}", "text": TEXTS[i % len(TEXTS)],
                              "channel": f"C{i % 40:04d}CHAT", "channel_type": "channel",
                              "ts": f"{ts}.{i:06d}", "event_ts": f"{ts}.{i:06d}", "team": "T0001"},
                    "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
                })
            else:
                body = json.dumps({
                    "token": "x", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
                    "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}", "event_time": int(ts),
                    "event": {"type": "reaction_added", "user": f"U{i % 50:04d}", "reaction": "bulb",
                              "item": {"type": "message", "channel": "C0ACME", "ts": f"1790000000.{i:06d}"},
                              "item_user": "U0CUST", "event_ts": f"{ts}.{i:06d}"},
                    "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
                })
            f.write(f"{ts}\t{verifier.generate_signature(timestamp=ts, body=body)}\t{body}\n")
    return "application/x-www-form-urlencoded" if kind == "command" else "application/json"


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_wrk(port: int, req_file: Path, content_type: str, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(ROOT / "bench/wrk_requests.lua"),
         f"http://127.0.0.1:{port}", "--", str(req_file), content_type, "2"],
        capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": float(non2xx.group(1)) if non2xx else 0.0,
            "requests": total}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux): per-request CPU is what a shared machine's load
    doesn't change much, unlike requests/s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed_fanout(db_url: str, fake: object, channels: int) -> None:
    from datetime import UTC, datetime

    from bot.core.db import Database
    from bot.features.announcements import service as an_svc
    from bot.features.subscriptions import service as sub_svc

    db = Database(db_url)
    db.upgrade()
    ids = [f"C{i:08d}BUSY" for i in range(channels)]
    for ch in ids:
        fake.add_channel(ch, f"launch-{ch[-8:]}", members=["U0HUMAN"])  # type: ignore[attr-defined]
    with db.session() as s:
        for ch in ids:
            sub_svc.subscribe(s, team_id="T0001", channel_id=ch, text="mobile app", by="U0ADMIN", may_create=True)
        an_svc.create_announcement(s, team_id="T0001", source_key=f"bench:{time.time()}", title="Offline mode ships",
                                   body="Offline mode is rolling out to every mobile customer this week & it's on.",
                                   areas=["mobile app"], author="U0ADMIN", now=datetime.now(UTC))
    db.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--no-worker", action="store_true", help="measure the edge alone (worker not draining)")
    ap.add_argument("--worker", choices=["auto", "process", "thread"], default="auto",
                    help="`loopline serve --worker`: the worker in a child process or in threads (auto: process on "
                         "PostgreSQL, threads on SQLite)")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="seed a fan-out to N channels so the worker is busy posting during the run")
    ap.add_argument("--busy-rate", type=float, default=500.0, help="LOOPLINE_WORKSPACE_RATE with --busy")
    ap.add_argument("--kinds", default="command,event",
                    help="comma-separated: command (/feedback), event (reaction_added), message (unwatched chatter)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("bench/ack.py needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from bot.devtools.fakeslack import FakeSlack

    tmp = Path(tempfile.mkdtemp(prefix="loopline-bench-"))
    fake = FakeSlack().start()
    fake.add_channel("C0SALES", "sales")
    fake.add_channel("C0ACME", "ext-acme")
    n = 20_000 * max(1, args.duration // 5)
    files = {k: (tmp / f"{k}.txt", write_requests(tmp / f"{k}.txt", k, n)) for k in args.kinds.split(",")}

    if args.db == "postgres":
        import psycopg

        name = f"loopline_bench_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        db_url = f"sqlite:///{tmp / 'bench.db'}"

    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": fake.base_url, "DATABASE_URL": db_url, "LOOPLINE_LOG_FORMAT": "json"}
    if args.busy:
        env["LOOPLINE_WORKSPACE_RATE"] = str(args.busy_rate)
        fake.latency_for["chat.postMessage"] = 0.01
        seed_fanout(db_url, fake, args.busy)
    results: dict[str, dict[str, dict[str, float]]] = {}
    servers = {
        "bare Bolt (ack only)": [sys.executable, str(ROOT / "bench/bare_bolt.py"), "--secret", SECRET],
        "loopline serve": [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
        + (["--no-scheduler"] if args.no_worker else ["--worker", args.worker]),
    }
    try:
        for label, cmd in servers.items():
            port = free_port()
            log = (tmp / f"{port}.log").open("wb")
            proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=log)
            try:
                wait_ready(port, proc, tmp / f"{port}.log")
                time.sleep(0.5)
                results[label] = {}
                for kind, (path, ctype) in files.items():
                    cpu0 = cpu_seconds(proc.pid)
                    r = results[label][kind] = run_wrk(port, path, ctype, args.duration, args.connections)
                    r["cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) * 1000 / max(r["requests"], 1)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log.close()
    finally:
        fake.stop()

    print(f"\nack benchmark: {args.connections} connections, {args.duration}s per run, database {args.db}"
          f"{' (worker off)' if args.no_worker else f' (worker draining the inbox, --worker {args.worker})'}"
          f"{f', fanning out to {args.busy} channels' if args.busy else ''}")
    if args.busy:
        print(f"posts made by the worker during the run: {fake.call_count('chat.postMessage')}")
    print(f"{'server':<24}{'request':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'CPU ms/req':>11}")
    for label, by_kind in results.items():
        for kind, r in by_kind.items():
            print(f"{label:<24}{kind:<10}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>9.0f}"
                  f"{r['cpu_ms']:>11.3f}")
    base, ours = results["bare Bolt (ack only)"], results["loopline serve"]
    for kind in files:
        print(f"ratio loopline/bare for {kind}: {ours[kind]['rps'] / base[kind]['rps']:.2f}x throughput, "
              f"p99 {ours[kind]['p99']:.1f} ms, CPU per request {ours[kind]['cpu_ms'] / base[kind]['cpu_ms']:.2f}x "
              f"the bare app's (load average {os.getloadavg()[0]:.1f})")
    if args.db == "sqlite":
        import sqlite3

        con = sqlite3.connect(tmp / "bench.db")
        jobs = con.execute("select count(*) from jobs").fetchone()[0]
        fb = con.execute("select count(*) from feedback").fetchone()[0]
        print(f"persisted: {jobs} inbox jobs, {fb} feedback rows")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
