"""`loopline serve`'s worker and scheduler in a child process of their own (the default).

Why a process: the edge must answer Slack within 3 seconds and as many requests a second as it can, and
in one Python process every thread shares one interpreter lock. The worker's jobs (embedding, fan-out
posts, digests) then take turns with the acks: measured with bench/ack.py, the in-process worker cost
the edge a third or more of its throughput on events (README "Measured on this machine", *Acks*). A child process takes that work
to its own interpreter, at a lower CPU priority (nice 10), so on a busy machine the acks come first.

How the two talk: through the database they share (the inbox and the job table, exactly as a separate
`loopline scheduler` does), plus one pipe: the edge writes a byte to the child's stdin after each commit
that queued work, so the worker starts within milliseconds instead of at its next poll; another byte
while requests arrive faster than one per commit, so the worker steps aside between jobs as it does in
the edge's own process (bot/queue/core.py); and the child stops when the pipe closes (a normal stop:
it finishes the job in hand), or at once if its parent dies (`die_with_parent`). The child serves its
metrics on a loopback port of its choosing, which it reports down a second pipe, and the edge's GET
/metrics adds them to its own (bot/metrics.py `merged_exposition`).

The parent restarts a child that dies (backoff 1 s doubling to 30 s); /healthz says so meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from bot.core.groupcommit import GroupCommitter

log = logging.getLogger(__name__)

NICENESS = 10  # CFS weight ~1/10 of the edge's while both want the CPU; nothing lower when it's idle
WAKE, BUSY = b"\x01", b"b"
# The edge's own burst window, mirrored in the child; a "busy" byte goes at most every BUSY_EVERY seconds,
# well inside it, so a burst keeps the window open without a gap.
BUSY_WINDOW = GroupCommitter.BUSY_WINDOW
BUSY_EVERY = 0.02


class WorkerProcess:
    def __init__(self, *, metrics_token: str | None = None, max_backoff: float = 30.0) -> None:
        """The child serves GET /metrics on a loopback port of its choosing, which it reports through a
        pipe, for `metrics_text()`; `metrics_token`: LOOPLINE_METRICS_TOKEN, which it requires too."""
        self.metrics_port: int | None = None
        self.metrics_token = metrics_token
        self.max_backoff = max_backoff
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._busy_sent = 0.0

    @staticmethod
    def command(port_fd: int) -> list[str]:
        return [sys.executable, "-m", "bot", "scheduler", "--companion", "--parent-pid", str(os.getpid()),
                "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--port-fd", str(port_fd)]

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="loopline-worker-process", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> None:
        # Same environment and working directory, so the same settings (.env included); its logs go
        # where ours go.
        self.metrics_port = None
        # The child binds any free loopback port and writes its number down this pipe.
        report, port_fd = os.pipe()
        try:
            proc = subprocess.Popen(self.command(port_fd), stdin=subprocess.PIPE, pass_fds=(port_fd,))
        finally:
            os.close(port_fd)
        with contextlib.suppress(OSError):  # from its first instruction on (imports are CPU work too)
            os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)
        with self._lock:
            self._proc = proc
        # Started once the process is recorded: the port it reports is taken only for the current one.
        threading.Thread(target=self._read_port, args=(report, proc), name="loopline-worker-port",
                         daemon=True).start()
        log.info("worker process started (pid %d)", proc.pid)

    def _read_port(self, report: int, proc: subprocess.Popen[bytes]) -> None:
        with os.fdopen(report, "rb") as f:
            line = f.readline().strip()
        if line.isdigit() and self._proc is proc:
            self.metrics_port = int(line)

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.error("worker process (pid %d) exited with %s; starting another in %.0f s", proc.pid, code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)
            self.restarts += 1
            try:
                self._spawn()
            except OSError:
                log.exception("could not start the worker process")

    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wake(self) -> None:
        """After a commit that queued work (the group-commit writer's thread)."""
        self._send(WAKE)

    def edge_busy(self) -> None:
        """The edge is under a burst (a commit carried several requests): at most one byte per 20 ms."""
        now = time.monotonic()
        if now - self._busy_sent >= BUSY_EVERY:
            self._busy_sent = now
            self._send(BUSY)

    def _send(self, byte: bytes) -> None:
        # A full pipe already holds a wake-up; a broken one means the child is being restarted.
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError, ValueError):
            os.write(proc.stdin.fileno(), byte)

    def metrics_text(self) -> str | None:
        """The child's GET /metrics, or None when it can't answer within a second."""
        if not self.metrics_port or not self.alive:
            return None
        req = urllib.request.Request(f"http://127.0.0.1:{self.metrics_port}/metrics")
        if self.metrics_token:
            req.add_header("Authorization", f"Bearer {self.metrics_token}")
        try:
            with urllib.request.urlopen(req, timeout=1.0) as resp:
                return resp.read().decode()
        except OSError:  # refused, timed out, or an HTTP error (urllib's URLError is an OSError)
            return None

    def stop(self, timeout: float = 15.0) -> None:
        """Close the pipe (the child finishes the job in hand and exits), then wait; kill if it won't."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker process (pid %d) did not stop in %.0f s; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait(timeout=5)


def die_with_parent(parent: int | None = None) -> None:
    """In the worker process (Linux): the kernel kills it the moment the server that started it dies,
    however it dies, as a `kill -9` of one process took its worker threads with it; its jobs' leases then
    hand them to the next process. Elsewhere the pipe's end of file stops it, after the job in hand.

    `parent`: the server's pid. One killed before this call (while the child was still starting) can't
    signal it any more: the child, adopted by another process, exits here instead of running on as an
    orphan that posts what the next server will post too (seen as a flaky kill -9 test)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        sys.stderr.write(f"loopline: the server (pid {parent}) that started this worker is gone; exiting\n")
        os._exit(0)


class ParentPipe:
    """In the worker process: what `loopline serve` says down stdin. WAKE wakes the worker, BUSY opens a
    BUSY_WINDOW in which `edge_busy()` is true (the worker pauses between jobs), end of file sets `stop`."""

    def __init__(self, wake: Callable[[], None], stop: threading.Event, fd: int | None = None):
        self.wake, self.stop = wake, stop
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._busy_until = 0.0

    def edge_busy(self) -> bool:
        return time.monotonic() < self._busy_until

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="loopline-parent-pipe", daemon=True)
        t.start()
        return t

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                self.stop.set()
                return
            if BUSY in data:
                self._busy_until = time.monotonic() + BUSY_WINDOW
            if WAKE in data:
                self.wake()
