"""The built book in a real browser: headless Chromium, served on localhost.

Serves ``_build/html`` on 127.0.0.1, starts Chromium headless (Debian's
``chromium``; Google Chrome where that is what the machine has) and drives it
over the DevTools protocol: the index loads and links to the chapters; an
executed chapter shows its launch buttons (Binder, Colab) and
download buttons, and a figure that the browser decoded and laid out with a
non-zero size. Skipped, with the reason, when no Chromium is installed.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WHYDEEP_BUILD_DIR", ROOT / "_build"))
HTML = BUILD / "html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and nothing that reaches for the network on its own.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--window-size=1280,900",
)
TIMEOUT = 20.0  # seconds for any one wait

BROWSER = next(filter(None, map(shutil.which, BROWSERS)), None)
pytestmark = [
    pytest.mark.skipif(
        BROWSER is None,
        reason=("no Chromium here (apt-get install chromium; .ci/run installs it)"),
    ),
    pytest.mark.skipif(
        not HTML.is_dir(), reason=f"no built book in {HTML}: run make book"
    ),
]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(_Quiet, directory=str(HTML))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class DevTools:
    """The smallest DevTools-protocol client: one page, commands and answers."""

    def __init__(self, websocket_url: str):
        import websocket

        self._ws = websocket.create_connection(
            websocket_url, timeout=TIMEOUT, suppress_origin=True
        )
        self._ids = itertools.count(1)

    def send(self, method: str, **params):
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
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
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise TimeoutError(f"waited {TIMEOUT:.0f} s for {what}")

    def open(self, url: str):
        self.send("Page.navigate", url=url)
        self.wait_for(
            f"location.href === {json.dumps(url)} && "
            "document.readyState === 'complete'",
            f"{url} to load",
        )

    def close(self):
        self._ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [BROWSER, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not port_file.is_file() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{BROWSER} did not start (exit code {process.poll()})")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        import urllib.request

        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT
        ) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        tools.send("Page.enable")
        yield tools
        tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _executed_pages() -> list[str]:
    executed = BUILD / "jupyter_execute"
    pages = [
        p.relative_to(executed).with_suffix("").as_posix()
        for p in sorted(executed.rglob("*.ipynb"))
    ]
    return [page for page in pages if (HTML / f"{page}.html").is_file()]


def _chapter_with_a_figure() -> str:
    for page in _executed_pages():
        if "<img" in (HTML / f"{page}.html").read_text(encoding="utf-8"):
            return page
    pytest.fail("no executed page of the built book shows a figure")


def test_index_loads_and_links_to_the_chapters(site, browser):
    browser.open(f"{site}/book/index.html")
    found = browser.evaluate("""({
        title: document.title,
        links: [...document.querySelectorAll('nav.bd-links a.reference.internal')]
            .map(a => a.getAttribute('href')),
        article: document.querySelector('article.bd-article')
            .getBoundingClientRect().height,
    })""")
    assert "Why Deep?" in found["title"]
    assert found["article"] > 0
    for page in _executed_pages():
        name = page.rsplit("/", 1)[-1]
        assert any(name in link for link in found["links"]), f"index: no link to {page}"


def test_chapter_shows_launch_buttons_and_a_rendered_figure(site, browser):
    page = _chapter_with_a_figure()
    browser.open(f"{site}/{page}.html")
    browser.wait_for(
        "[...document.querySelectorAll('.cell_output img')].every(img => img.complete)",
        "the figures to load",
    )
    found = browser.evaluate("""(() => {
        const items = sel => Object.fromEntries(
            [...document.querySelectorAll(sel + ' li > *')].map(
                b => [b.textContent.trim(), b.getAttribute('href')
                                            || b.getAttribute('onclick')]));
        const toggle = sel => {
            const b = document.querySelector(sel + ' button.dropdown-toggle');
            if (!b) return 0;
            const r = b.getBoundingClientRect();
            return r.width * r.height;
        };
        const img = document.querySelector('.cell_output img');
        const box = img.getBoundingClientRect();
        return {
            launch: items('.dropdown-launch-buttons'),
            download: items('.dropdown-download-buttons'),
            launchToggle: toggle('.dropdown-launch-buttons'),
            downloadToggle: toggle('.dropdown-download-buttons'),
            figure: {natural: [img.naturalWidth, img.naturalHeight],
                     shown: [box.width, box.height]},
        };
    })()""")
    launch = found["launch"]
    assert launch.get("Colab", "").endswith(f"{page}.ipynb"), launch
    assert launch.get("Binder", "").endswith(f"notebooks/{page}.ipynb"), launch
    assert "Live Code" not in launch, launch
    assert found["launchToggle"] > 0, "the launch button is not visible"
    assert found["downloadToggle"] > 0, "the download button is not visible"
    assert {".ipynb", ".md"} <= set(found["download"]), found["download"]
    natural, shown = found["figure"]["natural"], found["figure"]["shown"]
    assert min(natural) > 0, f"{page}: the figure did not decode"
    assert min(shown) > 0, f"{page}: the figure has no size on the page"
