"""The JavaScript clients: Node's ws (Debian's node-ws) and Chromium's own
WebSocket, both driven through one agent (agent.js) that speaks small JSON
commands: over a node process's stdin/stdout, or evaluated in a headless
Chromium page.

Chromium is driven over its DevTools protocol, not WebDriver: that needs
no extra package (chromium-driver, selenium), and the DevTools protocol is
JSON over a WebSocket, spoken here with the websockets library the suite
already uses. One browser serves the whole session (launched on first use,
ended by stop_browser() or at exit); each client has its own page."""

import asyncio
import atexit
import base64
import concurrent.futures
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from ..deadlines import Deadline
from ..tools.failure import tail
from . import base

AGENT = Path(__file__).with_name("agent.js")
NODE_MODULES = "/usr/share/nodejs"  # where Debian's node-* packages put their modules
STARTUP_SECONDS = 30  # scaled: a browser's cold start on a loaded machine takes seconds
CLEANUP_SECONDS = 5  # scaled: closing a page or the browser
STDERR_LINES = 8  # of a dead client's stderr, in the error


def _need(name, package):
    """The path of a program on PATH (a bare name) or of a file."""
    path = shutil.which(name) if os.sep not in name else name if os.path.exists(name) else None
    if path is None:
        raise base.ClientBroken(f"{name} is missing: install the Debian package {package}")
    return path


def _encoded(message):
    """A message as the agent takes it (agent.js): base64 for bytes."""
    if isinstance(message, str):
        return {"text": message}
    return {"binary": base64.b64encode(message).decode()}


def _decoded(message):
    if "text" in message:
        return message["text"]
    return base64.b64decode(message["binary"])


def _tail(path_or_file):
    """The last lines of a client's stderr, for the reason it broke."""
    if isinstance(path_or_file, Path):
        text = path_or_file.read_bytes() if path_or_file.exists() else b""
    else:
        path_or_file.seek(0)
        text = path_or_file.read()
    return tail(text.decode(errors="replace"), STDERR_LINES) or "(nothing on stderr)"


class AgentClient(base.Client):
    """The operations as agent commands; a subclass says how a command
    reaches the agent (_ask). A command whose wait was given up on (the
    watch raised) may still answer later: the client is then good for
    end() only."""

    def open(self, url, protocols, first=None):
        if first is not None:
            raise base.ClientBroken(f"{self.name} cannot send a frame in the handshake's own write")
        ca = str(self.tls.ca_pem) if self.tls is not None else None  # only Node's ws takes a CA file
        return self._command("open", url=url, protocols=list(protocols), ca=ca)["protocol"]

    def send(self, message):
        self._command("send", message=_encoded(message))

    def send_fragments(self, parts):
        if "fragments" not in self.features:  # a browser's send() would make each part a message of its own
            raise base.ClientBroken(f"{self.name} cannot send a message as several frames")
        self._command("fragments", parts=[_encoded(part) for part in parts])

    def recv(self):
        return _decoded(self._command("recv")["message"])

    def ping(self, data):
        if "pings" not in self.features:
            raise base.ClientBroken(f"{self.name} cannot send a ping")
        return base64.b64decode(self._command("ping", data=base64.b64encode(data).decode())["data"])

    def close(self, code, reason):
        answer = self._command("close", code=code, reason=reason)
        return answer["code"], answer["reason"]

    def _command(self, op, **args):
        answer = self._ask({"op": op, **args})
        if "error" in answer:
            raise base.ClientSaw(f"{self.name}: {answer['error']}")
        if "broken" in answer:
            raise base.ClientBroken(f"{self.name}'s agent failed: {answer['broken']}")
        return answer


class NodeWs(AgentClient):
    """Node's ws package, in a node process of its own per client."""

    name = "node-ws"
    package = "node-ws"
    features = frozenset({"fragments", "pings"})

    def __init__(self, watch, tls=None):
        super().__init__(watch, tls)
        self._node = None
        self._stderr = None
        self._unread = b""  # output after the last answer's line

    def _start(self):
        node = _need("node", "nodejs")
        _need(os.path.join(NODE_MODULES, "ws"), "node-ws")
        self._stderr = tempfile.TemporaryFile()
        self._node = subprocess.Popen([node, str(AGENT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env={**os.environ, "NODE_PATH": NODE_MODULES})
        os.set_blocking(self._node.stdin.fileno(), False)  # writes in slices too: a 16 MiB message is 22 MB of JSON

    def _ask(self, command):
        if self._node is None:
            self._start()
        self._write((json.dumps(command) + "\n").encode())
        return json.loads(self._read_line())

    def _write(self, data):
        fd = self._node.stdin.fileno()
        view = memoryview(data)
        while view:
            self.watch.check()
            if select.select([], [fd], [], base.POLL_SECONDS)[1]:
                try:
                    view = view[os.write(fd, view):]
                except BrokenPipeError:
                    raise self._died() from None
                self.watch.agent_moved()

    def _read_line(self):
        fd = self._node.stdout.fileno()
        chunks = [self._unread]
        while b"\n" not in chunks[-1]:
            self.watch.check()
            if select.select([fd], [], [], base.POLL_SECONDS)[0]:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._died()
                self.watch.agent_moved()
                chunks.append(chunk)
        line, _, self._unread = b"".join(chunks).partition(b"\n")
        return line

    def _died(self):
        try:
            status = self._node.wait(timeout=base.POLL_SECONDS)
        except subprocess.TimeoutExpired:
            status = "still running"
        return base.ClientBroken(f"{self.name}: node ended its agent ({status}):\n{_tail(self._stderr)}")

    def end(self):
        if self._node is not None:
            self._node.kill()
            self._node.wait()
            self._node.stdin.close()
            self._node.stdout.close()
            self._stderr.close()
            self._node = None


class Chromium(AgentClient):
    """Chromium's own WebSocket, in a page of the session's browser."""

    name = "chromium"
    package = "chromium"

    def __init__(self, watch, tls=None):
        super().__init__(watch, tls)
        self._browser = None
        self._page = None

    def _ask(self, command):
        if self._page is None:
            self._browser = _browser_for(self.tls.spki if self.tls is not None else None)
            self._page = self._browser.wait(self._browser.new_page(), self.watch.check)
        return self._browser.wait(self._page.agent(command), self.watch.check)

    def end(self):
        if self._page is not None:
            page, self._page = self._page, None
            if self._browser.alive():
                self._browser.cleanup(page.close())


class _DevTools:
    """One DevTools WebSocket (the browser's or a page's): a command, then
    its answer, one at a time; the events between are not asked for."""

    def __init__(self, socket):
        self.socket = socket
        self.last_id = 0

    @classmethod
    async def connect(cls, url):
        import websockets  # the suite's own WebSocket library (python3-websockets)

        # No permessage-deflate: Chromium accepts it, and inflating a 22 MB
        # command (a 16 MiB message in base64) took it 10 s instead of 0.6.
        return cls(await websockets.connect(url, max_size=None, compression=None))

    async def call(self, method, **params):
        self.last_id += 1
        await self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            answer = json.loads(await self.socket.recv())
            if answer.get("id") == self.last_id:  # older ids: answers to calls given up on
                break
        if "error" in answer:
            raise base.ClientBroken(f"chromium: DevTools {method} failed: {answer['error']}")
        return answer["result"]


class _Page:
    """A browser page with the agent in it."""

    def __init__(self, browser_devtools, target_id, devtools):
        self.browser_devtools = browser_devtools
        self.target_id = target_id
        self.devtools = devtools

    async def evaluate(self, expression):
        result = await self.devtools.call("Runtime.evaluate", expression=expression,
                                          awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise base.ClientBroken(f"chromium: the agent threw: {details.get('exception', details)}")
        return result["result"].get("value")

    async def agent(self, command):
        return await self.evaluate(f"agent({json.dumps(command)})")  # JSON is a JavaScript literal

    async def close(self):
        await self.devtools.socket.close()
        await self.browser_devtools.call("Target.closeTarget", targetId=self.target_id)


class _Browser:
    """A headless Chromium and the thread whose asyncio loop speaks DevTools
    to it. `spkis`: the server keys it trusts for wss://."""

    def __init__(self, spkis):
        chromium = _need("chromium", "chromium")
        self.spkis = frozenset(spkis)
        self.folder = Path(tempfile.mkdtemp(prefix="conformance-chromium-"))
        self.stderr = self.folder / "stderr"
        with open(self.stderr, "wb") as stderr:
            self.process = subprocess.Popen([chromium, *self._flags(), "about:blank"], stdin=subprocess.DEVNULL,
                                            stdout=stderr, stderr=stderr, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="conformance-chromium", daemon=True)
        self.thread.start()
        self.devtools = None
        try:
            self._connect(Deadline(STARTUP_SECONDS))
        except BaseException:
            self.stop()
            raise

    def _connect(self, startup):
        self.port, path = self._wait_for_port(startup)

        def check():
            if startup.expired():
                raise self._broken(f"did not answer on its DevTools WebSocket in {startup.seconds:.0f} s")
        self.devtools = self.wait(_DevTools.connect(f"ws://127.0.0.1:{self.port}{path}"), check)

    def _flags(self):
        flags = ["--headless", "--no-sandbox",  # we run as root: Chromium's sandbox refuses root
                 "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--remote-debugging-port=0",  # any free port, written to DevToolsActivePort
                 f"--user-data-dir={self.folder / 'profile'}"]
        if self.spkis:
            # A browser takes no CA file: it trusts the test server's key by
            # its SPKI hash, a flag it honours only with --user-data-dir.
            flags.append(f"--ignore-certificate-errors-spki-list={','.join(sorted(self.spkis))}")
        return flags

    def _wait_for_port(self, startup):
        """The port and browser path from DevToolsActivePort, which Chromium
        writes once it listens; the pause between looks is a wait for its
        exit."""
        port_file = self.folder / "profile" / "DevToolsActivePort"
        while True:
            if port_file.exists():
                found = re.match(r"(\d+)\n(/devtools/browser/[0-9a-f-]{36})", port_file.read_text())
                if found:
                    return int(found[1]), found[2]
            try:
                status = self.process.wait(timeout=base.POLL_SECONDS)
                raise self._broken(f"exited ({status}) before it listened")
            except subprocess.TimeoutExpired:
                pass
            if startup.expired():
                raise self._broken(f"did not write {port_file} in {startup.seconds:.0f} s")

    def _broken(self, what):
        return base.ClientBroken(f"chromium {what}; its last lines on stderr:\n{_tail(self.stderr)}")

    def wait(self, coroutine, check):
        """Runs a coroutine on the loop and waits for it in slices, calling
        check() between them (watch.check, or a deadline's)."""
        from websockets.exceptions import WebSocketException

        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            while not concurrent.futures.wait([future], timeout=base.POLL_SECONDS)[0]:
                check()
        finally:
            future.cancel()  # a wait given up on leaves nothing running (no-op when done)
        try:
            return future.result()
        except (OSError, WebSocketException) as e:
            raise self._broken(f"stopped answering DevTools ({e!r})") from e

    def cleanup(self, coroutine):
        """A wait bounded by its own deadline, whose failure is ignored."""
        deadline = Deadline(CLEANUP_SECONDS)

        def check():
            if deadline.expired():
                raise TimeoutError("cleanup")
        try:
            self.wait(coroutine, check)
        except Exception:
            pass

    async def new_page(self):
        target = await self.devtools.call("Target.createTarget", url="about:blank")
        page = _Page(self.devtools, target["targetId"],
                     await _DevTools.connect(f"ws://127.0.0.1:{self.port}/devtools/page/{target['targetId']}"))
        await page.evaluate(AGENT.read_text())
        return page

    def alive(self):
        return self.process.poll() is None

    async def _shutdown(self):
        """Closes the browser's DevTools connection and cancels what still
        runs (the connections of pages never closed)."""
        if self.devtools is not None:
            await self.devtools.socket.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self):
        if self.alive():
            self.cleanup(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
        _end_group(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


def _die_with_parent():
    """In the browser's process, before exec: killed when the harness
    process that started it dies, even by SIGKILL (a run's grace period
    after Ctrl-C): a browser in a session of its own would outlive it.
    Its helpers end when it does."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _end_group(process):
    """Chromium and its helpers (renderers, GPU, network, crashpad) are one
    process group: TERM, then KILL what is left after the cleanup time."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=Deadline(CLEANUP_SECONDS).seconds)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers still exiting after the browser: now
    except ProcessLookupError:
        pass
    process.wait()


_browser = None  # the session's browser, launched by the first Chromium client


def _browser_for(spki):
    """The session's browser, trusting `spki` too: a new one when there is
    none, it died, or it does not trust the key yet (a flag, given at
    launch only)."""
    global _browser
    if _browser is not None and _browser.alive() and (spki is None or spki in _browser.spkis):
        return _browser
    spkis = set(_browser.spkis) if _browser is not None else set()
    stop_browser()
    _browser = _Browser(spkis | ({spki} if spki else set()))
    return _browser


def stop_browser():
    """Ends the session's browser, if one was launched (idempotent)."""
    global _browser
    if _browser is not None:
        browser, _browser = _browser, None
        browser.stop()


atexit.register(stop_browser)
