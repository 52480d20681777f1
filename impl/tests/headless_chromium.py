"""Headless Chromium driven over the DevTools protocol, for the tests that need a real browser.

Invariants:
- One launcher for every browser test (impl/tests/test_browser.py drives a WebSocket page,
  conformance/tests/test_report_browser.py checks the HTML reports); found through pytest's
  ``pythonpath``.
- The browser listens on loopback only, in a throw-away profile, in its own process group,
  and is always killed, helpers included, when the ``chromium`` context exits.
- Without Chromium a test skips and says how to install it; under ``CI=true``, where
  ``.ci/install-peers.sh`` installs it, it fails instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = os.environ.get("RFC6455_CHROMIUM") or shutil.which("chromium")
MISSING = "chromium is not installed: run .ci/install-peers.sh (apt-get install chromium)"
DEADLINE = 60.0


def require_chromium() -> str:
    """The browser's path; skips the calling test without one, fails it under CI=true."""
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the browser tests: {MISSING}", pytrace=False)
        pytest.skip(MISSING)
    return CHROMIUM


class DevTools:
    """A minimal Chrome DevTools protocol client: one browser connection, flat sessions."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") != number:
                continue  # an event, or the answer to someone else
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            return reply["result"]

    async def open(self, url: str, width: int = 1280, height: int = 900) -> str:
        """A new tab showing ``url`` at ``width`` x ``height`` CSS pixels; its session id."""
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        session: str = attached["sessionId"]
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await self.call("Page.navigate", session, url=url)
        return session

    async def evaluate(self, session: str, expression: str, page_url: str) -> Any:
        """``expression``'s value (promises awaited), run once ``page_url`` is the document."""
        while True:
            try:
                href = await self.call(
                    "Runtime.evaluate", session, expression="location.href", returnByValue=True
                )
                if href["result"].get("value") != page_url:
                    await asyncio.sleep(0.02)
                    continue
                answer = await self.call(
                    "Runtime.evaluate",
                    session,
                    expression=expression,
                    awaitPromise=True,
                    returnByValue=True,
                )
            except RuntimeError as exc:
                if "context" in str(exc).lower():  # navigation replaced the document meanwhile
                    continue
                raise
            if "exceptionDetails" in answer:
                raise RuntimeError(f"the page's script failed: {answer['exceptionDetails']}")
            return answer["result"].get("value")

    async def screenshot(self, session: str, path: Path) -> Path:
        """The whole page, not only the viewport, as a PNG at ``path``."""
        metrics = await self.call("Page.getLayoutMetrics", session)
        size = metrics["cssContentSize"]
        shot = await self.call(
            "Page.captureScreenshot",
            session,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium with a DevTools endpoint on a free loopback port."""
    executable = require_chromium()
    process = await asyncio.create_subprocess_exec(
        executable,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its helper processes share its process group
    )
    try:
        endpoint = await _devtools_endpoint(process)
        async with connect(endpoint, max_size=None, open_timeout=DEADLINE) as ws:
            yield DevTools(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    """Read Chromium's stderr until it prints ``DevTools listening on ws://...``."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("chromium exited before listening:\n" + "".join(seen))
        seen.append(line)
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            asyncio.get_running_loop().create_task(_drain(process.stderr))
            return match.group(1)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
