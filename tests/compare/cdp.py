"""A headless Chromium driven over the DevTools protocol through a pipe, for the browser test.

No Python dependency: Chromium's `--remote-debugging-pipe` reads JSON commands, each ended by
a NUL byte, from file descriptor 3 and writes replies and events to descriptor 4.

    with Chromium(find_chromium(), tmp_path) as page:
        page.open("file:///.../report.html")
        page.evaluate("document.querySelectorAll('svg').length")
        page.screenshot(tmp_path / "report.png")
        page.console_errors, page.requests
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, NAMES) if path), None)


class Chromium:
    def __init__(self, binary: str, profile: Path, width: int = 1400, height: int = 1000, timeout: float = 60):
        self.binary, self.profile, self.timeout = binary, profile, timeout
        self.width, self.height = width, height
        self.events: list[dict] = []
        self.next_id = 0
        self.buffer = b""

    # --- process and pipe -----------------------------------------------------------------

    def __enter__(self) -> Chromium:  # noqa: PYI034 - Self needs Python 3.11
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():  # descriptors 3 and 4, as --remote-debugging-pipe expects
            high_r, high_w = os.dup(to_chrome_r) + 100, os.dup(from_chrome_w) + 100
            os.dup2(to_chrome_r, high_r)
            os.dup2(from_chrome_w, high_w)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, close_fds=False)  # noqa: PLW1509 - the tests start no threads
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send({"id": self._id(), "method": "Browser.close"})
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing anyway
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self.to_chrome)
            os.close(self.from_chrome)

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def send(self, message: dict) -> None:
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        message = {"id": self._id(), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    # --- the page ---------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    @property
    def console_errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and error log entries."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails", {}))[:300])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out

    @property
    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]
