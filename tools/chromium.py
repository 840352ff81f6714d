"""Headless Chromium for the book's tools and tests, driven over DevTools.

Used by ``tests/test_browser.py`` (the built site in a real browser) and by
``tools/pdf.py`` (the book as a PDF). Nothing here reaches the network: the
browser resolves no host name, so a page can load only what the local server
(127.0.0.1) gives it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # no host name resolves: a page that needs the network shows it as a failure
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--window-size=1280,900",
)
TIMEOUT = 30.0  # seconds for any one wait


def find_browser() -> str | None:
    """Path of an installed Chromium (or Chrome), or None."""
    return next(filter(None, map(shutil.which, BROWSERS)), None)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class DevTools:
    """The smallest DevTools-protocol client: one page, commands, answers, and
    the events that arrive in between (kept in ``events``)."""

    def __init__(self, websocket_url: str, timeout: float = TIMEOUT):
        import websocket

        self.timeout = timeout
        self._ws = websocket.create_connection(
            websocket_url, timeout=timeout, suppress_origin=True
        )
        self._ids = itertools.count(1)
        self.events: list[dict] = []

    def send(self, method: str, **params):
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise TimeoutError(f"waited {self.timeout:.0f} s for {what}")

    def open(self, url: str):
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for(
            f"location.href === {json.dumps(url)} && "
            "document.readyState === 'complete'",
            f"{url} to load",
        )

    def close(self):
        self._ws.close()


@contextlib.contextmanager
def launch(browser: str | None = None, timeout: float = TIMEOUT) -> Iterator[DevTools]:
    """Start headless Chromium with a fresh profile; yields its first page."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError("no Chromium here: apt-get install chromium")
    # Chromium's helper processes may still write to the profile for a moment
    # after the browser has exited: its removal must not fail the caller.
    with tempfile.TemporaryDirectory(
        prefix="whydeep-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        tools = None
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not port_file.is_file() or not port_file.read_text().strip():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{browser} did not start (exit code {process.poll()})"
                    )
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/json/list", timeout=timeout
            ) as answer:
                targets = json.load(answer)
            page = next(t for t in targets if t["type"] == "page")
            tools = DevTools(page["webSocketDebuggerUrl"], timeout=timeout)
            yield tools
        finally:
            if tools is not None:
                tools.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
