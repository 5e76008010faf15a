"""Headless Debian Chromium driven over the DevTools protocol: open a page, wait until it is drawn, screenshot it.

`chromium --screenshot --virtual-time-budget=…` alone is racy for Streamlit: the page's content arrives
over a WebSocket, which virtual time does not wait for, so the shot often shows the loading skeleton.
Here the browser runs with a DevTools port and the test waits, in real time, for a condition
evaluated in the page before it takes the picture.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser with one tab; use as a context manager."""

    def __init__(self, binary: str, profile: Path, width: int = 1400, height: int = 1000,
                 flags: tuple[str, ...] = ()):
        self.binary, self.profile, self.size, self.flags = binary, profile, (width, height), flags
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tab: ClientConnection | None = None
        self._closing = contextlib.ExitStack()

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        log = (self.profile / "chromium.log").open("wb")
        self._proc = subprocess.Popen(
            [self.binary, *FLAGS, *self.flags, f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
             "about:blank"], stdout=log, stderr=log, start_new_session=True)
        port = self._devtools_port(timeout_s=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            tabs = [t for t in json.load(reply) if t.get("type") == "page"]
        if not tabs:
            raise BrowserError("chromium opened no tab")
        self._tab = self._closing.enter_context(
            connect(tabs[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10))
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.close()
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)  # the group started above: chromium and its helpers
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()

    def _devtools_port(self, timeout_s: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if marker.exists() and (text := marker.read_text().split()):
                return int(text[0])
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
        raise BrowserError(f"chromium did not open its DevTools port within {timeout_s:g}s:\n{log}")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One DevTools command; events arriving meanwhile are skipped."""
        assert self._tab is not None
        ident = next(self._ids)
        self._tab.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self._tab.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise BrowserError(f"script failed in the page: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60, settle_s: float = 1.0) -> Any:
        """Poll a JavaScript expression until it is truthy and still is after the page has settled for
        `settle_s` (a page that redraws itself, like a live view, can be caught mid-redraw); its value."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if _ready(value):
                time.sleep(settle_s)
                value = self.evaluate(expression)
                if _ready(value):
                    return value
            time.sleep(0.25)
        raise BrowserError(f"the page was not ready within {timeout_s:g}s; last state: {value}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def _ready(value: Any) -> bool:
    return bool(value) and (not isinstance(value, dict) or bool(value.get("ready")))
