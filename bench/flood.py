"""Acks while junk floods the request URL: latency of signed `/feedback` commands under attack.

Starts `loopline serve` (SQLite, the fake Web API), then for each scenario sends signed `/feedback`
commands from 4 threads (50 each, 20 ms apart) while attackers send unsigned junk, and prints p50,
p99 and max ack latency. Slack's deadline is 3 s. Each scenario runs `--runs` times on a fresh server;
the median of the runs is printed.

    python bench/flood.py                                  # this checkout
    python bench/flood.py --repo /tmp/loopline-before      # another checkout (e.g. `git archive` of main)

Scenarios: none (baseline); two attackers each streaming 100 MB POSTs back to back, one with a
Content-Length and one chunked; 4 attackers sending 1 MiB unsigned bodies (the most the edge reads)
back to back; a slowloris of 1,700 connections that send half a request line and stall. The server runs
with an open-file limit of 1,024 (`--nofile`; systemd's default soft limit), as in the report that
1,700 stalled connections starved real requests.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def head(port: int, length: int | None) -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n").encode()


def junk_poster(port: int, size: int, chunked: bool) -> Callable[[threading.Event], None]:
    block = ("token=x&text=" + "junk " * MB)[:MB].encode()

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    s.sendall(head(port, None if chunked else size))
                    sent = 0
                    while sent < size and not stop.is_set():
                        n = min(len(block), size - sent)
                        s.sendall(b"%x\r\n" % n + block[:n] + b"\r\n" if chunked else block[:n])
                        sent += n
                    if chunked:
                        s.sendall(b"0\r\n\r\n")
                    s.recv(4096)
            except OSError:
                time.sleep(0.01)  # refused or cut off: try again

    return run


def slowloris(port: int, n: int) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        socks: list[socket.socket] = []
        while not stop.is_set():
            socks = [s for s in socks if s.fileno() != -1]
            while len(socks) < n and not stop.is_set():
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slack-Req")
                    socks.append(s)
                except OSError:
                    time.sleep(0.05)
                    break
            # Keep them stalled; reopen those the server closed.
            for s in list(socks):
                try:
                    s.setblocking(False)
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        s.close()
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
            time.sleep(0.2)
        for s in socks:
            s.close()

    return run


def acks(port: int, *, threads: int = 4, each: int = 50) -> list[float]:
    verifier = SignatureVerifier(SECRET)
    out: list[float] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        streak = 0
        with httpx.Client(timeout=10) as http:  # well past Slack's 3 s: longer is a failure for Slack anyway
            for i in range(each):
                if streak >= 3:  # the server is not answering: count the rest as failed, don't wait for each
                    with lock:
                        out.extend([float("inf")] * (each - i))
                    return
                ts = str(int(time.time()))
                body = urlencode({"token": "x", "team_id": "T0001", "channel_id": "C0SALES", "user_id": "U0REP",
                                  "command": "/feedback", "text": f"Flood check {t}-{i}: SSO loops on Safari 🙃",
                                  "response_url": "http://127.0.0.1:9/hook", "trigger_id": uuid.uuid4().hex})
                headers = {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
                           "x-slack-signature": verifier.generate_signature(timestamp=ts, body=body)}
                t0 = time.monotonic()
                try:
                    r = http.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.monotonic() - t0 if ok else float("inf")
                streak = 0 if ok else streak + 1
                with lock:
                    out.append(elapsed)
                time.sleep(0.02)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted(out)


def pct(values: list[float], p: float) -> float:
    return values[max(0, round(p * len(values)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(ROOT), help="checkout whose `python -m bot serve` is measured")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nofile", type=int, default=1024, help="the server's open-file limit")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from bot.devtools.fakeslack import FakeSlack

    fake = FakeSlack().start()
    fake.add_channel("C0SALES", "sales")
    scenarios: dict[str, Callable[[int], list[Callable[[threading.Event], None]]]] = {
        "no flood": lambda port: [],
        "2 x 100 MB POSTs (length, chunked)": lambda port: [junk_poster(port, 100 * MB, False),
                                                            junk_poster(port, 100 * MB, True)],
        "4 x 1 MiB unsigned bodies": lambda port: [junk_poster(port, MB - 64, False) for _ in range(4)],
        "slowloris, 1,700 connections": lambda port: [slowloris(port, 1700)],
    }
    results: dict[str, list[tuple[float, float, float, int]]] = {k: [] for k in scenarios}
    try:
        for run in range(args.runs):
            for name, make in scenarios.items():
                tmp = Path(tempfile.mkdtemp(prefix="loopline-flood-"))
                port = free_port()
                env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
                       "SLACK_API_URL": fake.base_url, "DATABASE_URL": f"sqlite:///{tmp / 'flood.db'}",
                       "LOOPLINE_LOG_FORMAT": "json", "PYTHONDONTWRITEBYTECODE": "1"}
                log = (tmp / "serve.log").open("wb")
                proc = subprocess.Popen(
                    [args.python, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=args.repo,
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile)))
                stop = threading.Event()
                attackers: list[threading.Thread] = []
                try:
                    end = time.monotonic() + 30
                    while time.monotonic() < end:
                        try:
                            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                                break
                        except httpx.HTTPError:
                            time.sleep(0.1)
                    attackers = [threading.Thread(target=a, args=(stop,), daemon=True) for a in make(port)]
                    for a in attackers:
                        a.start()
                    time.sleep(1.0 if attackers else 0)  # let the attack get going
                    lat = acks(port)
                finally:
                    stop.set()
                    for a in attackers:
                        a.join(timeout=60)
                    proc.terminate()
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    log.close()
                failed = sum(1 for x in lat if x == float("inf"))  # no answer, or not a 200, within 10 s
                log_bytes = (tmp / "serve.log").stat().st_size
                results[name].append((pct(lat, 0.5), pct(lat, 0.99), lat[-1], failed))
                print(f"run {run + 1} {name:<38} p50 {pct(lat, .5) * 1000:8.1f} ms  p99 {pct(lat, .99) * 1000:8.1f} ms"
                      f"  max {lat[-1] * 1000:8.1f} ms  failed {failed}  log {log_bytes / 1e6:.1f} MB", flush=True)
                subprocess.run(["rm", "-rf", str(tmp)], check=False)
    finally:
        fake.stop()
    print(f"\nmedian of {args.runs} runs, {args.repo}: 200 signed /feedback acks per run (4 threads)")
    print(f"{'scenario':<40}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'failed':>8}")
    for name, runs in results.items():
        med = [statistics.median(r[i] for r in runs) for i in range(4)]
        print(f"{name:<40}{med[0] * 1000:>10.1f}{med[1] * 1000:>10.1f}{med[2] * 1000:>10.1f}{med[3]:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
