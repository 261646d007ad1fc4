"""The pipe between `loopline serve` and its worker process (bot/companion.py): wake-ups, "the edge is
under a burst" (the worker pauses between jobs, as it does in the edge's own process), end of file."""

from __future__ import annotations

import os
import threading
import time

from bot.companion import BUSY, WAKE, ParentPipe


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
