"""Headless Chromium driven over the DevTools protocol on a pipe (no extra package).

``--remote-debugging-pipe`` makes Chromium read protocol messages from fd 3 and
write its answers to fd 4, each a JSON document ended by a NUL byte: the
transport Puppeteer uses with ``pipe: true``. This module keeps just what the
report tests need: open a page, collect console errors, uncaught exceptions
and network requests, evaluate JavaScript, and take a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "Page", "find_chromium", "open_page"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

LAUNCH_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """The browser did not start, answer in time, or accept a command."""


def find_chromium() -> str | None:
    """``$SFSYNC_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    configured = os.environ.get("SFSYNC_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    """One tab, attached over the pipe, with what it reported so far."""

    _proc: subprocess.Popen[bytes]
    _write_fd: int
    _read_fd: int
    session_id: str = ""
    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _next_id: int = 0
    _buffer: bytes = b""
    _events: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ transport

    def _send(self, method: str, params: dict[str, Any] | None, session: bool) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session_id:
            message["sessionId"] = self.session_id
        data = json.dumps(message).encode("utf-8") + b"\0"
        while data:
            written = os.write(self._write_fd, data)
            data = data[written:]
        return self._next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._read_fd, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit code {self._proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _record(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            self.console.append(params)
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(params.get("exceptionDetails", {}))
        elif method == "Log.entryAdded":
            self.log_entries.append(params.get("entry", {}))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
        self._events.append(message)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send one command and wait for its answer (events seen meanwhile are recorded)."""
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._record(message)

    def wait_for_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for index, event in enumerate(self._events):
            if event.get("method") == method:
                del self._events[index]
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            self._record(message)
            if message.get("method") == method:
                self._events.remove(message)
                return message

    # ------------------------------------------------------------------ page helpers

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating {expression!r}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def screenshot(self, path: Path, *, selector: str | None = None, width: int = 1280) -> Path:
        """A PNG of the whole page, or of the element ``selector`` matches."""
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if selector is None:
            box = {"x": 0, "y": 0, "width": width, "height": max(1, int(size["height"]))}
        else:
            box = self.evaluate(
                f"(function () {{ var r = document.querySelector({json.dumps(selector)})"
                ".getBoundingClientRect(); return {x: r.left + window.scrollX, "
                "y: r.top + window.scrollY, width: r.width, height: r.height}; })()"
            )
        params["clip"] = {**box, "scale": 1}
        shot = self.call("Page.captureScreenshot", params, timeout=60)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def events(self, method: str) -> list[dict[str, Any]]:
        """Events of one kind received so far and not consumed by :meth:`wait_for_event`."""
        return [e for e in self._events if e.get("method") == method]

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries, as text."""
        found = []
        for call in self.console:
            if call.get("type") in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in call.get("args", [])]
                found.append("console: " + " ".join(args))
        for details in self.exceptions:
            text = details.get("exception", {}).get("description") or details.get("text", "")
            found.append(f"exception: {text}")
        for entry in self.log_entries:
            if entry.get("level") == "error":
                found.append(
                    f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}"
                )
        return found


def _above_stdio(fd: int) -> int:
    """The same pipe end on a descriptor above 4, so dup2 onto 3 and 4 cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


@contextmanager
def open_page(
    url: str, *, executable: str, width: int = 1280, height: int = 900, timeout: float = 60
) -> Iterator[Page]:
    """Start Chromium, open ``url`` in a fresh tab, wait for ``load``, yield the page."""
    with (
        tempfile.TemporaryDirectory(prefix="sfsync-chromium-") as profile,
        tempfile.TemporaryFile() as stderr,
    ):
        to_browser_r, to_browser_w = (_above_stdio(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_above_stdio(fd) for fd in os.pipe())

        def wire_fds() -> None:
            # Chromium reads commands on fd 3 and answers on fd 4; dup2 clears close-on-exec.
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        args = [
            executable,
            *LAUNCH_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            close_fds=False,
            preexec_fn=wire_fds,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        page = Page(proc, to_browser_w, from_browser_r)
        try:
            target = page.call(
                "Target.createTarget", {"url": "about:blank"}, session=False, timeout=timeout
            )
            attached = page.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                session=False,
            )
            page.session_id = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.call(f"{domain}.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            page.call("Page.navigate", {"url": url})
            page.wait_for_event("Page.loadEventFired", timeout=timeout)
            yield page
        except BrowserError as exc:
            stderr.seek(0)
            tail = stderr.read()[-2000:].decode("utf-8", "replace")
            raise BrowserError(f"{exc}; Chromium's stderr ends with:\n{tail}") from None
        finally:
            with contextlib.suppress(BrowserError, OSError):
                page.call("Browser.close", session=False, timeout=5)
            os.close(to_browser_w)
            os.close(from_browser_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
