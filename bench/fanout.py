"""Fan-out benchmark: one announcement to N channels against the fake Web API enforcing Slack's limits.

The fake allows 1 message/s per channel and `--fake-rate` (default 5) per workspace, answering 429 +
Retry-After beyond that, with `--latency` seconds per call. The senders are real `python -m bot
scheduler` subprocesses (`--schedulers`, default 1) on one database, so `--kill` really is `kill -9` in
the middle of the run: with one scheduler it is restarted at once, with several the others carry on.
The floor is N / fake-rate seconds (the workspace limit's minimum time).

    python bench/fanout.py --channels 200            # ~40 s floor
    python bench/fanout.py --channels 1000 --kill    # ~200 s floor, kill -9 at half way
    python bench/fanout.py --schedulers 3 --db postgres [--kill]    # a scratch PostgreSQL database
    python bench/fanout.py --schedulers 3 --db postgres --repo /tmp/loopline-main   # another checkout's schedulers
    python bench/fanout.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench   (a scratch DB: it is wiped)

Prints time, ratio to the floor, 429s received (and as % of posts), duplicates and losses.
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

from sqlalchemy import create_engine, inspect, text  # noqa: E402

from bot.core.db import Database  # noqa: E402
from bot.core.models import Announcement, Base, Delivery  # noqa: E402
from bot.devtools.fakeslack import FakeSlack  # noqa: E402
from bot.features.announcements import service as an_svc  # noqa: E402
from bot.features.subscriptions import service as sub_svc  # noqa: E402

TEAM, ADMIN, TOKEN = "T0001", "U0ADMIN", "xoxb-bench-token"


PG_ADMIN_URL = os.environ.get("LOOPLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _env(db_url: str, api_url: str, rate: float) -> dict[str, str]:
    return {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench", "SLACK_API_URL": api_url,
            "DATABASE_URL": db_url, "LOOPLINE_WORKSPACE_RATE": str(rate), "LOOPLINE_LOG_FORMAT": "text"}


def start_sender(db_url: str, api_url: str, rate: float, repo: Path = REPO, nice: int = 0) -> subprocess.Popen[str]:
    env = _env(db_url, api_url, rate)
    proc = subprocess.Popen(["nice", "-n", str(nice), sys.executable, "-m", "bot", "scheduler"], cwd=repo, env=env,
                            text=True,
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
    if not ready.wait(120):
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
    ap.add_argument("--schedulers", type=int, default=1, help="scheduler processes on the one database")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                    help="a fresh SQLite file or a scratch PostgreSQL database (dropped afterwards)")
    ap.add_argument("--database-url", default=None, help="an existing scratch database instead (it is wiped)")
    ap.add_argument("--repo", default=str(REPO), help="checkout whose `python -m bot scheduler` is measured")
    ap.add_argument("--sender-nice", type=int, default=0,
                    help="run the schedulers under `nice -n N` (keep this process, the stand-in for Slack, at "
                         "normal priority on a shared machine: a starved fake takes queued posts as a burst)")
    args = ap.parse_args()
    repo = Path(args.repo)

    tmp = tempfile.mkdtemp(prefix="loopline-fanout-")
    scratch = None
    if args.database_url:
        db_url = args.database_url
    elif args.db == "postgres":
        scratch = f"loopline_fanout_{os.getpid()}"
        with create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'CREATE DATABASE "{scratch}"'))
        db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + scratch
    else:
        db_url = f"sqlite:///{tmp}/bench.db"
    if args.schedulers > 1 and not db_url.startswith("postgres"):
        raise SystemExit("several schedulers need PostgreSQL (--db postgres)")
    db = Database(db_url)
    # The measured checkout migrates its own database (its schema may be older than this one's).
    subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=repo, env=_env(db_url, "http://127.0.0.1:9", 1.0),
                   check=True, stdout=subprocess.DEVNULL)
    if args.database_url:
        with db.session() as s:  # a fresh run every time
            for table in reversed(Base.metadata.sorted_tables):
                if inspect(s.connection()).has_table(table.name):
                    s.execute(table.delete())

    fake = FakeSlack().start()
    fake.add_user(ADMIN, "dana.admin", is_admin=True)
    channels = [f"C{i:08d}" for i in range(args.channels)]
    for ch in channels:
        fake.add_channel(ch, f"team-{ch[-4:]}", members=["U0HUMAN"])
    with db.session() as s:
        for ch in channels:
            sub_svc.subscribe(s, team_id=TEAM, channel_id=ch, text="mobile app", by=ADMIN, may_create=True)

    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(args.schedulers):
            procs.append(start_sender(db_url, fake.base_url, args.rate, repo, args.sender_nice))
    except BaseException:
        for proc in procs:
            proc.kill()
        fake.stop()
        db.dispose()
        if scratch:
            with create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        raise
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
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                killed_at = time.monotonic() - t0
                if len(procs) == 1:
                    print(f"kill -9 at {killed_at:.1f}s with {done} copies recorded; restarting", flush=True)
                    procs[0] = start_sender(db_url, fake.base_url, args.rate, repo, args.sender_nice)
                else:
                    print(f"kill -9 of one of {len(procs)} schedulers at {killed_at:.1f}s with {done} copies "
                          "recorded", flush=True)
                    procs.pop(0)
            if status == "sent":
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        time.sleep(1.0)  # anything still in flight would show up as a duplicate now
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
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
    # When the 429s came (arrival times at the fake): bunched arrivals after a stall (a starved process on a
    # loaded machine) show as 429s close together.
    arrivals = sorted(c.at for c in fake.calls_to("chat.postMessage"))
    limited = sorted(c.at for c in fake.calls_to("chat.postMessage") if c.status == 429)
    episodes = sum(1 for i, t in enumerate(limited) if i == 0 or t - limited[i - 1] > 2.0)
    j, busiest = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] < t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    print(f"channels={args.channels} app_rate={args.rate}/s fake_cap={args.fake_rate}/s latency={args.latency}s "
          f"db={'postgresql' if db_url.startswith('postgres') else 'sqlite'} schedulers={args.schedulers} "
          f"kill={'yes' if args.kill else 'no'} repo={repo}")
    print(f"time={elapsed:.1f}s floor={floor:.1f}s ratio={elapsed / floor:.3f} "
          f"429s={fake.stats['429']} ({100 * fake.stats['429'] / max(posts, 1):.2f}% of posts) "
          f"5xx={fake.stats['5xx']} postMessage_calls={posts} "
          f"history_calls={fake.call_count('conversations.history')} "
          f"duplicates={dups} losses={losses} failed={failed}")
    print(f"429 episodes (2 s apart)={episodes} most posts arriving within 1 s={busiest} "
          f"load average={os.getloadavg()[0]:.1f}")
    fake.stop()
    db.dispose()
    if scratch:
        with create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    return 0 if dups == 0 and losses == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
