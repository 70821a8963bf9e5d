"""Open a report in headless Chromium and see what a person would see.

A small DevTools-protocol client over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so it needs no extra package, no
port and no download: only a ``chromium`` binary (Debian's package). It
records console messages, log entries (Content-Security-Policy violations
arrive there), uncaught exceptions, JavaScript dialogs and every network
request the page makes, evaluates expressions in the page, and takes
screenshots. Used by the browser tests and to make the documentation's
screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer in time."""


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM`` first), or ``None``."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLog:
    """What happened while a page was open."""

    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console errors, error log entries (CSP violations included) and uncaught exceptions."""
        out = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in c.get("args", []))
            for c in self.console
            if c.get("type") in ("error", "assert")
        ]
        out += [e.get("text", "") for e in self.log if e.get("level") == "error"]
        out += [x.get("exceptionDetails", {}).get("text", "exception") for x in self.exceptions]
        return out

    @property
    def foreign_requests(self) -> list[str]:
        """Requests other than for the page itself."""
        return [r for r in self.requests if r.split("#", 1)[0] != self.url.split("#", 1)[0]]


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe.

    ::

        with Browser() as b:
            page = b.open(Path("report.html"))
            b.evaluate("document.title")
            b.screenshot(Path("shot.png"))
    """

    def __init__(
        self, binary: str | None = None, *, width: int = 1280, height: int = 900, timeout: float = 20.0
    ) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("no chromium binary found: install it (apt-get install -y chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self._buf = b""
        self._id = 0
        self._session: str | None = None
        self._page: PageLog | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile = tempfile.mkdtemp(prefix="interests-chromium-")

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    #: launches tried before giving up: a cold Chromium on a loaded machine has been seen not to
    #: answer its first command at all (5 browser tests errored once in a full test run), and a
    #: second launch with a fresh profile answered at once
    LAUNCH_TRIES = 2

    def start(self) -> None:
        for attempt in range(self.LAUNCH_TRIES):
            try:
                self._launch()
                return
            except BrowserError:
                self.close()
                if attempt + 1 == self.LAUNCH_TRIES:
                    raise
                self._buf, self._session = b"", None
                self._profile = tempfile.mkdtemp(prefix="interests-chromium-")

    def _launch(self) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def plumbing() -> None:  # runs in the child: its fd 3 reads commands, fd 4 writes replies
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            self.binary or "chromium",
            *FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=plumbing,
            close_fds=False,
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                self._send("Browser.close", {}, session=False)
                proc.wait(timeout=5)
            except (OSError, BrowserError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(timeout=5)
            try:  # helpers chromium started in its own session, if any are left
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ----------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], *, session: bool = True) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session and self._session:
            msg["sessionId"] = self._session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        return self._id

    def _recv(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg: dict[str, Any] = json.loads(raw)
        if "method" in msg:
            self._event(msg)
        return msg

    def _event(self, msg: dict[str, Any]) -> None:
        page, method, params = self._page, msg["method"], msg.get("params", {})
        if method == "Page.javascriptDialogOpening":
            if page is not None:
                page.dialogs.append(params.get("message", ""))
            self._send("Page.handleJavaScriptDialog", {"accept": False})
        if page is None:
            return
        if method == "Runtime.consoleAPICalled":
            page.console.append(params)
        elif method == "Log.entryAdded":
            page.log.append(params.get("entry", {}))
        elif method == "Runtime.exceptionThrown":
            page.exceptions.append(params)
        elif method == "Network.requestWillBeSent":
            page.requests.append(params.get("request", {}).get("url", ""))

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile are recorded)."""
        if self._proc is None:
            raise BrowserError("the browser is not running")
        mid = self._send(method, params or {}, session=session)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise BrowserError(f"no answer to {method} within {self.timeout:g} s")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error'].get('message')}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    def wait_for(self, method: str, timeout: float | None = None) -> dict[str, Any] | None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline)
            if msg is None:
                return None
            if msg.get("method") == method:
                return msg

    def settle(self, seconds: float) -> None:
        """Keep recording events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while self._recv(deadline) is not None:
            pass

    # -- pages -------------------------------------------------------------------

    def open(self, target: Path | str, *, settle: float = 0.5) -> PageLog:
        """Load a file (or URL), wait for its load event, and return what it did."""
        url = target.resolve().as_uri() if isinstance(target, Path) else target
        self._page = PageLog(url=url)
        self.call("Page.navigate", {"url": url})
        if self.wait_for("Page.loadEventFired") is None:
            raise BrowserError(f"{url} did not finish loading within {self.timeout:g} s")
        self.settle(settle)
        return self._page

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def media(self, media: str = "") -> None:
        """Emulate a CSS media type (``"print"``; ``""`` resets)."""
        self.call("Emulation.setEmulatedMedia", {"media": media})

    def screenshot(
        self, path: Path, *, full_page: bool = False, selector: str | None = None, max_height: int = 4000
    ) -> Path:
        """Write a PNG of the viewport, of the page (``full_page``) or of one element (``selector``)."""
        params: dict[str, Any] = {"format": "png"}
        if selector is not None:
            rect = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()"
            )
            x, y, w, h = (float(v) for v in rect)
            params.update(
                captureBeyondViewport=True,
                clip={
                    "x": max(0.0, x - 8),
                    "y": max(0.0, y - 8),
                    "width": w + 16,
                    "height": min(h + 16, max_height),
                    "scale": 1,
                },
            )
        elif full_page:
            height = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
            )
        data = self.call("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def scripts_enabled(self, enabled: bool) -> None:
        """Turn JavaScript on or off for the next page loads."""
        self.call("Emulation.setScriptExecutionDisabled", {"value": not enabled})

    def pdf(self, path: Path) -> Path:
        """Print the page to PDF (print CSS applies)."""
        data = self.call("Page.printToPDF", {"printBackground": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path


__all__ = ["Browser", "BrowserError", "PageLog", "find_chromium"]
