"""Headless Chromium driven over the DevTools protocol (Debian's chromium; no browser download): sign in with
the Airflow token cookie, open a page, wait for text to render, read the DOM, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# Flags from ../shared/stack-notes.md: without the background-networking ones, Chromium's own outbound
# connections fail on a closed network, many at a time.
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1500,1000", "--remote-debugging-port=0", "--remote-allow-origins=*",
]  # fmt: skip


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one tab."""

    def __init__(self) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        port = None
        assert self.process.stderr is not None
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            port = int(match.group(1)) if match else None
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port within 60 s")
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        self._page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def visit(
        self,
        url: str,
        *,
        token: str,
        expect: list[str],
        screenshot: Path,
        timeout: float = 90.0,
        full_page: bool = False,
    ) -> dict[str, Any]:
        """Open ``url`` signed in with ``token``; wait until every string of ``expect`` is in the page text;
        save a PNG screenshot (``full_page``: the whole page, not only the window). Returns ``{"text", "links",
        "title"}`` (visible text; hrefs of all anchors; the document's title after the page's scripts ran)."""
        return asyncio.run(self._visit(url, token, expect, screenshot, timeout, full_page))

    async def _visit(
        self, url: str, token: str, expect: list[str], screenshot: Path, timeout: float, full_page: bool
    ) -> dict:
        import websockets

        async with websockets.connect(self._page_ws, max_size=64 * 2**20) as ws:

            async def call(method: str, **params: Any) -> dict[str, Any]:
                message_id = next(self._ids)
                await ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    answer = json.loads(await ws.recv())
                    if answer.get("id") == message_id:
                        if "error" in answer:
                            raise RuntimeError(f"{method}: {answer['error']}")
                        return answer.get("result", {})

            await call("Network.enable")
            await call("Network.setCookie", name="_token", value=token, url=url)
            await call("Page.enable")
            await call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            text = ""
            while time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                result = await call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                                    returnByValue=True)  # fmt: skip
                text = result["result"].get("value") or ""
                if all(item in text for item in expect):
                    break
            else:
                shot = await call("Page.captureScreenshot", format="png")
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                missing = [item for item in expect if item not in text]
                raise AssertionError(f"{url}: {missing} not rendered within {timeout:.0f} s; page text: {text[:800]}")
            await asyncio.sleep(1.0)  # let the last requests paint
            links = await call(
                "Runtime.evaluate",
                expression="Array.from(document.querySelectorAll('a')).map(a => a.href)",
                returnByValue=True,
            )  # fmt: skip
            title = await call("Runtime.evaluate", expression="document.title", returnByValue=True)
            if full_page:
                size = (await call("Page.getLayoutMetrics"))["cssContentSize"]
                clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
                shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
            else:
                shot = await call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return {"text": text, "links": links["result"].get("value") or [], "title": title["result"].get("value")}
