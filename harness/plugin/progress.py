"""Progress while a run is quiet: when no case has finished for
QUIET_SECONDS, say which ones are running and for how long."""

import sys
import threading
import time

QUIET_SECONDS = 10  # with no case finished for this long, say what runs


class Progress:
    """Names the cases still running when none has finished for
    QUIET_SECONDS (an HTTPS transfer against a slow MHD can take a while):
    a run that looks hung says what it waits for."""

    def __init__(self, write):
        self.write = write
        self.running = {}  # node id -> when it started
        self.last_end = self.last_said = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="conformance-progress", daemon=True)
        self.thread.start()

    def started(self, nodeid):
        with self.lock:
            self.running[nodeid] = time.monotonic()

    def finished(self, nodeid):
        with self.lock:
            self.running.pop(nodeid, None)
            self.last_end = time.monotonic()

    def _watch(self):
        while not self.stop.wait(1.0):
            now = time.monotonic()
            with self.lock:
                if now - max(self.last_end, self.last_said) < QUIET_SECONDS or not self.running:
                    continue
                self.last_said = now
                oldest = sorted(self.running.items(), key=lambda kv: kv[1])[:6]
                more = len(self.running) - len(oldest)
            names = ", ".join(f"{nodeid.split('::')[-1]} ({now - t:.0f} s)" for nodeid, t in oldest)
            self.write(f"conformance: no case finished for {now - self.last_end:.0f} s; running: {names}"
                       + (f" and {more} more" if more > 0 else ""))


_progress = None


def pytest_runtest_logstart(nodeid, location):
    if _progress is not None:
        _progress.started(nodeid)


def pytest_runtest_logfinish(nodeid, location):
    if _progress is not None:
        _progress.finished(nodeid)


def start(config):
    global _progress
    if hasattr(config, "workerinput") or _progress is not None:
        return

    def write(line):
        sys.stderr.write("\n" + line + "\n")
        sys.stderr.flush()
    _progress = Progress(write)


def stop(config):
    global _progress
    if _progress is not None:
        _progress.stop.set()
        _progress = None

