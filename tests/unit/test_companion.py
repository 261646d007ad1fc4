"""The pipe between `loopline serve` and its worker process (bot/companion.py): wake-ups, "the edge is
under a burst" (the worker pauses between jobs, as it does in the edge's own process), end of file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.companion import BUSY, WAKE, ParentPipe
from bot.features.announcements import service as an_svc
from tests.support.announcements import TEAM, seed_subscriptions
from tests.support.env import ADMIN, export

REPO = Path(__file__).resolve().parents[2]


def test_the_worker_process_hears_wake_ups_bursts_and_its_parent_going():
    r, w = os.pipe()
    woken = threading.Event()
    stop = threading.Event()
    pipe = ParentPipe(woken.set, stop, fd=r)
    thread = pipe.start()
    try:
        assert not pipe.edge_busy()
        os.write(w, WAKE)
        assert woken.wait(5)
        os.write(w, BUSY)
        deadline = time.monotonic() + 5
        while not pipe.edge_busy():
            assert time.monotonic() < deadline, "a burst the worker never heard of"
            time.sleep(0.001)
        # The window closes by itself when the bytes stop coming: a quiet edge gets its worker back.
        deadline = time.monotonic() + 5
        while pipe.edge_busy():
            assert time.monotonic() < deadline, "the worker stayed paused after the burst"
            time.sleep(0.01)
        assert not stop.is_set()
    finally:
        os.close(w)
    thread.join(5)
    assert stop.is_set()  # the server is gone: the worker process stops
    os.close(r)


def test_a_worker_process_whose_server_died_while_it_started_does_not_run_on(settings, db, fake):
    """`loopline serve` killed in the seconds its worker process spends starting: the kernel's "kill me with
    my parent" is asked for too late to fire, and the orphaned worker posted what the next server posts
    too (a flaky kill -9 test showed it). The worker must exit before it does any work."""
    seed_subscriptions(db, {"C0SALES": "api"})
    with db.session() as s:
        an_svc.create_announcement(s, team_id=TEAM, source_key="orphan-test", title="API v2 🎉", body="Out now & <b>free</b>",
                                   areas=["api"], author=ADMIN, now=datetime.now(UTC))  # the child's real clock
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "test-secret",
           "DATABASE_URL": settings.database_url, "SLACK_API_URL": settings.slack_api_url,
           "LOOPLINE_LOG_FORMAT": "text"}
    # A stand-in for the server: starts its worker process exactly as serve does, then is killed at once.
    server = ("import os, signal, subprocess\n"
              "from bot.companion import WorkerProcess\n"
              "report, port_fd = os.pipe()\n"
              "child = subprocess.Popen(WorkerProcess.command(port_fd), stdin=subprocess.PIPE, pass_fds=(port_fd,),"
              " stderr=subprocess.DEVNULL)\n"
              "print(child.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", server], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    child = int(out.stdout.split()[0])
    try:
        deadline = time.monotonic() + 30
        while running(child):
            assert time.monotonic() < deadline, "the worker process ran on without its server"
            time.sleep(0.1)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
    assert fake.call_count("chat.postMessage") == 0
    assert [d["status"] for d in export(db, "announcements")[0]["deliveries"]] == ["pending"]  # the next server's


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is left
