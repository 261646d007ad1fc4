"""Fan-out benchmark: one announcement to N channels against the fake Web API enforcing Slack's limits.

The fake allows 1 message/s per channel and `--fake-rate` (default 5) per workspace, answering 429 +
Retry-After beyond that, with `--latency` seconds per call. The sender is a real `python -m bot
scheduler` subprocess on its own database, so `--kill` really is `kill -9` in the middle of the run
(followed by an immediate restart). The floor is N / fake-rate seconds.

    python bench/fanout.py --channels 200            # ~40 s floor
    python bench/fanout.py --channels 1000 --kill    # ~200 s floor, kill -9 at half way
    python bench/fanout.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench   (a scratch DB: it is wiped)

Prints time, ratio to the floor, 429s received, duplicates and losses.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.core.db import Database  # noqa: E402
from bot.core.models import Announcement, Base, Delivery  # noqa: E402
from bot.devtools.fakeslack import FakeSlack  # noqa: E402
from bot.features.announcements import service as an_svc  # noqa: E402
from bot.features.subscriptions import service as sub_svc  # noqa: E402

TEAM, ADMIN, TOKEN = "T0001", "U0ADMIN", "xoxb-bench-token"


def start_sender(db_url: str, api_url: str, rate: float) -> subprocess.Popen[str]:
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench", "SLACK_API_URL": api_url,
           "DATABASE_URL": db_url, "LOOPLINE_WORKSPACE_RATE": str(rate), "LOOPLINE_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "scheduler and worker running" in line:
                ready.set()
            elif "Traceback" in line or "ERROR" in line:
                sys.stderr.write("  sender: " + line)

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise SystemExit("the sender did not start")
    return proc


def copies_per_channel(fake: FakeSlack, channels: list[str]) -> Counter[str]:
    n: Counter[str] = Counter()
    for ch in channels:
        n[ch] = sum(1 for m in fake.bot_messages(ch)
                    if (m.get("metadata") or {}).get("event_type") == "loopline_announcement")
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--fake-rate", type=float, default=5.0, help="the fake's workspace cap (msg/s)")
    ap.add_argument("--rate", type=float, default=4.9, help="LOOPLINE_WORKSPACE_RATE for the app")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds the fake adds to every call")
    ap.add_argument("--kill", action="store_true", help="kill -9 the sender half way, then restart it")
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="loopline-fanout-")
    db_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    db = Database(db_url)
    db.upgrade()
    with db.session() as s:  # a fresh run every time
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())

    fake = FakeSlack().start()
    fake.add_user(ADMIN, "dana.admin", is_admin=True)
    channels = [f"C{i:08d}" for i in range(args.channels)]
    for ch in channels:
        fake.add_channel(ch, f"team-{ch[-4:]}", members=["U0HUMAN"])
    with db.session() as s:
        for ch in channels:
            sub_svc.subscribe(s, team_id=TEAM, channel_id=ch, text="mobile app", by=ADMIN, may_create=True)

    proc = start_sender(db_url, fake.base_url, args.rate)
    fake.per_channel_rate = 1.0
    fake.workspace_rate = args.fake_rate
    fake.latency = args.latency
    fake.clear_calls()

    t0 = time.monotonic()
    with db.session() as s:
        aid = an_svc.create_announcement(
            s, team_id=TEAM, source_key=f"bench:{time.time()}", title="Offline mode ships 📴",
            body="Offline mode is rolling out to all mobile customers this week & it's on by default.",
            areas=["mobile app"], author=ADMIN, now=datetime.now(UTC)).id
    killed_at = None
    try:
        while True:
            with db.read_session() as s:
                status = s.get(Announcement, aid).status  # type: ignore[union-attr]
                done = s.query(Delivery).filter(Delivery.announcement_id == aid,
                                                Delivery.status.in_(("sent", "failed"))).count()
            if args.kill and killed_at is None and done >= args.channels // 2:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = time.monotonic() - t0
                print(f"kill -9 at {killed_at:.1f}s with {done} copies recorded; restarting", flush=True)
                proc = start_sender(db_url, fake.base_url, args.rate)
            if status == "sent":
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        time.sleep(1.0)  # anything still in flight would show up as a duplicate now
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    per = copies_per_channel(fake, channels)
    dups = sum(max(0, n - 1) for n in per.values())
    losses = sum(1 for ch in channels if per[ch] == 0)
    with db.read_session() as s:
        failed = s.query(Delivery).filter(Delivery.announcement_id == aid, Delivery.status == "failed").count()
    floor = args.channels / args.fake_rate
    posts = fake.call_count("chat.postMessage")
    print(f"channels={args.channels} app_rate={args.rate}/s fake_cap={args.fake_rate}/s latency={args.latency}s "
          f"db={'postgresql' if db_url.startswith('postgres') else 'sqlite'} kill={'yes' if args.kill else 'no'}")
    print(f"time={elapsed:.1f}s floor={floor:.1f}s ratio={elapsed / floor:.3f} "
          f"429s={fake.stats['429']} 5xx={fake.stats['5xx']} postMessage_calls={posts} "
          f"history_calls={fake.call_count('conversations.history')} "
          f"duplicates={dups} losses={losses} failed={failed}")
    fake.stop()
    db.dispose()
    return 0 if dups == 0 and losses == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
