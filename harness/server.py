"""One reference-server process: started with its options, watched for its
ready line and for crashes, its JSON event lines collected for the cases."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections import deque

from . import urls
from .deadlines import Deadline
from .tracebacks import hidden as _hidden

__tracebackhide__ = _hidden  # findings about MHD: without the helper frames


class ServerError(Exception):
    """The reference server failed to start: nothing was learnt about MHD,
    so it is reported as an error of the cases that needed it."""


class ServerDied(AssertionError):
    """The reference server died during a case (a crash in MHD, say): an
    observation about MHD, a deviation of that case's rules."""


class StopFailure(AssertionError):
    """The reference server's daemon did not stop when asked (SIGTERM:
    MHD_stop_daemon): an observation about MHD, with what its threads were
    doing when the deadline passed."""


class EventTimeout(AssertionError):
    """An event the case waits for (something MHD should have made happen)
    did not happen within its deadline."""


# The first line of a report that explains a crash: the server's own
# backtrace (servers/crash.c), or a sanitizer's.
CRASH_REPORT = re.compile(r"^refserver: fatal signal|ERROR: (Address|Leak|Thread)Sanitizer|: runtime error: "
                          r"|Assertion .* failed|^Fatal error in GNU libmicrohttpd")


def describe_exit(code):
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class RefServer:
    START_SECONDS = 10
    STOP_SECONDS = 10  # scaled: MHD_stop_daemon joins its threads; that takes milliseconds
    # Within a stop, how long the server waits for its upgraded-socket
    # scripts to end (woken, they CLOSE) before it calls MHD_stop_daemon
    # all the same and exits 4: within STOP_SECONDS, so that it can say so.
    SCRIPTS_END_SECONDS = 5
    READERS_END_SECONDS = 5  # the server has exited: its pipes reach their end at once
    # A script on an upgraded socket that hears nothing for this long gives
    # up and CLOSEs: a case that failed half-way (or a client end that never
    # reaches the application, as over HTTPS) leaves no connection open for
    # the rest of the run. Longer than any case waits for a byte.
    IDLE_SECONDS = 30

    def __init__(self, binary, mode, transport="plain", flags="upgrade", timeout=None,
                 memory_limit=None, connection_limit=None, stop_with_open=False, tls=None, env=None):
        self.binary = binary
        self.mode = mode
        self.transport = transport
        self.options = dict(flags=flags, timeout=timeout, memory_limit=memory_limit,
                            connection_limit=connection_limit, stop_with_open=stop_with_open)
        self.tls = tls
        self.env = env  # extra environment (a mutant: LD_PRELOAD + CONFORMANCE_MUTANT)
        self.proc = None
        self.killed = False  # stop() needed SIGKILL
        self.hung_stacks = ""  # what its threads were doing when stop() gave up
        self.stopped_by = None  # "sigterm" once stop() signalled a live server
        self.port = None
        self.ready = None
        self._events = []
        self._stderr = deque(maxlen=400)  # room for a whole sanitizer report
        self._cond = threading.Condition()
        self._readers = []
        self._subscribers = []  # write ends of pipes: poked on every event

    def __repr__(self):
        return f"RefServer({self.mode.id}, {self.transport}, {self.options})"

    def url(self, path, **query):
        """`path` with `query` as its query string; a key the path does not
        accept raises urls.UnknownKey (see harness/urls.py)."""
        return urls.upgrade_url(self.binary, path, **query)

    # -- life cycle ---------------------------------------------------------
    def command(self):
        cmd = [str(self.binary), "--mode", self.mode.name, "--flags", self.options["flags"],
               "--idle-ms", str(int(Deadline(self.IDLE_SECONDS).seconds * 1000)),
               "--stop-wait-ms", str(int(Deadline(self.SCRIPTS_END_SECONDS).seconds * 1000))]
        for opt, flag in (("timeout", "--timeout"), ("memory_limit", "--memory-limit"),
                          ("connection_limit", "--connection-limit")):
            if self.options[opt] is not None:
                cmd += [flag, str(self.options[opt])]
        if self.options["stop_with_open"]:
            cmd.append("--stop-with-open")
        if self.tls is not None:
            cmd += ["--tls-key", str(self.tls.key), "--tls-cert", str(self.tls.cert)]
        return cmd

    def start(self):
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     # Not in the terminal's process group: a Ctrl-C stops pytest,
                                     # which then stops its servers in order (SIGTERM). A harness
                                     # killed outright takes them along (PR_SET_PDEATHSIG).
                                     start_new_session=True)
        for target, stream in ((self._read_events, self.proc.stdout), (self._read_stderr, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True)
            t.start()
            self._readers.append(t)
        try:
            first = self.wait_event(lambda e: e["ev"] in ("ready", "fatal"), self.START_SECONDS,
                                    "ready line", exc=ServerError, died=ServerError)
        except ServerError:
            self.stop()
            raise
        if first["ev"] == "fatal":
            self.stop()
            raise ServerError(f"reference server ({self.mode.id}) could not start: {first.get('error')}\n"
                              + self.last_lines())
        self.ready = first
        self.port = first["port"]
        return self

    def stop(self):
        """SIGTERM, then SIGKILL after a deadline; returns the exit status.
        Sets `killed` (the deadline passed and SIGKILL was needed)."""
        if self.proc is None:
            return None
        self.killed = False
        if self.proc.poll() is None:
            if self.stopped_by is None:
                self.begin_stop()
            try:
                self.proc.wait(timeout=Deadline(self.STOP_SECONDS).seconds)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.hung_stacks = self.stacks()
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(timeout=Deadline(self.READERS_END_SECONDS).seconds)
        return self.proc.returncode

    def stacks(self):
        """What the server's threads are doing: gdb's backtraces where gdb
        can attach, else each thread's name, kernel wait channel and
        system call (/proc)."""
        pid = self.proc.pid
        gdb = shutil.which("gdb")
        if gdb:
            try:
                out = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off",
                                      "-ex", "thread apply all bt 15"], capture_output=True, text=True,
                                     timeout=Deadline(30).seconds, stdin=subprocess.DEVNULL)
                lines = [line for line in out.stdout.splitlines() if line.startswith(("Thread ", "#"))]
                if lines:
                    return "the server's threads (gdb):\n  " + "\n  ".join(lines[:200])
            except (OSError, subprocess.TimeoutExpired):
                pass
        parts = []
        try:
            for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
                base = f"/proc/{pid}/task/{tid}"
                fields = []
                for name in ("comm", "wchan", "syscall"):
                    try:
                        with open(f"{base}/{name}") as f:
                            fields.append(f"{name}={f.read().strip().split(' ')[0]}")
                    except OSError:
                        pass
                parts.append(f"thread {tid}: " + " ".join(fields))
        except OSError:
            return "(the server's threads could not be read)"
        return "the server's threads (/proc: name, wait channel, system call number):\n  " + "\n  ".join(parts)

    def begin_stop(self):
        """SIGTERM, without waiting: for a case that acts while the server
        stops (stop() then waits for the end)."""
        self.stopped_by = "sigterm"
        self.proc.send_signal(signal.SIGTERM)

    def stop_problem(self):
        """After stop(): None if the server stopped cleanly on SIGTERM, else
        what went wrong (killed after the deadline, or a crash or error
        exit on the way out)."""
        if self.proc is None or self.stopped_by is None:
            return None
        if self.killed:
            return (f"did not stop within {Deadline(self.STOP_SECONDS).seconds:.1f} s of SIGTERM "
                    "(MHD_stop_daemon) and was killed")
        if self.stopped_by == "sigterm" and self.proc.returncode != 0:
            return f"{describe_exit(self.proc.returncode)} on SIGTERM instead of exiting 0"
        return None

    def stop_failure(self, what):
        """The finding of a server whose stop() had a problem: StopFailure
        when it did not stop (with what its threads were doing), ServerDied
        when it crashed on the way out; with its last words."""
        cls = StopFailure if self.killed else ServerDied
        crash = self.crash_line()
        return cls(f"the reference server ({self.mode.id}, {self.transport}) {self.stop_problem()} {what}"
                   + (f": {crash}" if crash and not self.killed else "")
                   + (f"\n{self.hung_stacks}" if self.hung_stacks else "") + "\n" + self.last_lines())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def crash_line(self):
        """The first line of a crash report in stderr (an assertion, a
        sanitizer's report, our backtrace's signal), or ''."""
        with self._cond:
            return next((line.strip() for line in self._stderr if CRASH_REPORT.search(line)), "")

    def died_message(self, what):
        """One line for a death: how it ended and the crash report's first
        line (a baseline's signature can name an assertion), then the rest."""
        crash = self.crash_line()
        return (f"the reference server ({self.mode.id}, {self.transport}) {describe_exit(self.proc.returncode)} "
                f"{what}" + (f": {crash}" if crash else "") + "\n" + self.last_lines())

    def last_lines(self):
        with self._cond:
            return self._last_lines_locked()

    # -- events -------------------------------------------------------------
    def _read_events(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                event = json.loads(line)
            except ValueError:
                event = {"ev": "unparsed", "line": line}
            with self._cond:
                self._events.append(event)
                self._cond.notify_all()
                self._poke()
        with self._cond:
            self._cond.notify_all()
            self._poke()

    def _poke(self):
        for fd in self._subscribers:
            try:
                os.write(fd, b"e")
            except BlockingIOError:
                pass  # a byte is already waiting there

    def subscribe(self):
        """(read fd, cursor): the fd becomes readable when an event arrives
        (or the server's output ends), for a loop that waits on a socket and
        the server's events at once; drain it, then read events_after()."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with self._cond:
            self._subscribers.append(w)
            return r, len(self._events)

    def unsubscribe(self, fd):
        with self._cond:
            for w in list(self._subscribers):
                if os.path.samestat(os.fstat(w), os.fstat(fd)):
                    self._subscribers.remove(w)
                    os.close(w)
        os.close(fd)

    def events_after(self, cursor, rid=None):
        """(events after position `cursor`, of request `rid` if given; the
        new cursor)."""
        with self._cond:
            new = self._events[cursor:]
            return [e for e in new if rid is None or e.get("rid") == rid], cursor + len(new)

    def _read_stderr(self, stream):
        for raw in stream:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def events(self, rid=None):
        with self._cond:
            return [e for e in self._events if rid is None or e.get("rid") == rid]

    def wait_event(self, predicate, seconds, what, exc=EventTimeout, died=ServerDied, means=""):
        """The first event (old or new) matching `predicate`; raises `exc`
        after `seconds` (scaled), `died` if the server dies first. `means`:
        what the event would have said, in MHD's terms, for the message."""
        deadline = Deadline(seconds)
        with self._cond:
            seen = 0
            while True:
                for event in self._events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self._events)
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._readers[:1]):
                    crash = next((line.strip() for line in self._stderr if CRASH_REPORT.search(line)), "")
                    raise died(f"the reference server ({self.mode.id}, {self.transport}) "
                               f"{describe_exit(self.proc.returncode)} while waiting for {what}"
                               + (f": {crash}" if crash else "") + "\n" + self._last_lines_locked())
                if deadline.expired():
                    raise exc(f"no {what} from the reference server within {deadline.seconds:.1f} s"
                              + (f" (it would say: {means})" if means else ""))
                self._cond.wait(min(deadline.remaining(), 0.5))

    def _last_lines_locked(self, events=12, stderr=60):
        # More of stderr than of events: a crash backtrace or a sanitizer
        # report is there, and it is what explains the crash.
        out = "last events:\n  " + "\n  ".join([json.dumps(e) for e in self._events[-events:]] or ["(none)"])
        lines = list(self._stderr)
        start = next((i for i, line in enumerate(lines) if CRASH_REPORT.search(line)), None)
        if start is not None:
            out += "\nstderr, from the crash report on:\n  " + "\n  ".join(lines[start:start + stderr])
        elif lines:
            out += "\nlast stderr lines:\n  " + "\n  ".join(lines[-stderr:])
        return out
