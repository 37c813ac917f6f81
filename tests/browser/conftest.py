"""A live Torreya (the real CLI: demo data, then `torreya serve` under uvicorn) and headless
Chromium from Debian, driven by Playwright. Skipped, and said so, where Chromium is absent."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.browser.axe_everywhere import AuditedBrowser, Collector
from tests.conftest import BACKEND, PG_URL, SECRET
from tests.live import start_server
from tests.oidc_provider import start_provider, stop_provider
from tests.receiver import Receiver
from tests.wechat_standin import APPID, WechatStandIn
from tests.wechat_standin import SECRET as WECHAT_SECRET

CHROMIUM = os.environ.get("TORREYA_CHROMIUM", "/usr/bin/chromium")
BROWSER_DB = f"torreya_browser_{os.getpid()}"


@dataclass
class LiveServer:
    url: str
    env: dict
    sms: Receiver  # the SMS gateway (webhook backend): what residents' phones receive
    wechat: WechatStandIn  # WeChat's web authorization endpoints

    def last_code(self, phone: str, timeout: float = 10.0, *, after: int = 0) -> str:
        """The code in the newest text to `phone` (among texts after the first `after`),
        waiting for the server's worker."""
        import json

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _headers, body in reversed(self.sms.received[after:]):
                text = json.loads(body)
                if text["phone"] == phone and text["code"]:
                    return text["code"]
            time.sleep(0.2)
        raise AssertionError(f"no code reached {phone}")

    def sql(self, statement: str) -> None:
        """Stand-in for time passing (a patrol that lasted an hour), straight on the database."""
        url = self.env["TORREYA_DATABASE_URL"]
        if url.startswith("sqlite"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(url.split("://", 1)[1])) as conn:
                conn.execute(statement)
                conn.commit()
        else:
            subprocess.run([sys.executable, "-c", (
                "import asyncio, asyncpg\n"
                "async def main():\n"
                f"    c = await asyncpg.connect({url!r})\n"
                f"    await c.execute({statement!r})\n"
                "    await c.close()\n"
                "asyncio.run(main())")], check=True)

    @contextlib.contextmanager
    def api(self, username: str, password: str = "torreya2026") -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            token = client.post("/api/v1/auth/token",
                                json={"username": username, "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            yield client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg(sql: str) -> None:
    subprocess.run([sys.executable, "-c", (
        "import asyncio, asyncpg\n"
        "async def main():\n"
        f"    c = await asyncpg.connect('{PG_URL}/postgres')\n"
        f"    await c.execute({sql!r})\n"
        "    await c.close()\n"
        "asyncio.run(main())")], check=True)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, pristine):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    folder = tmp_path_factory.mktemp("live")
    port = _free_port()
    # The demo on a copy of the suite's migrated database (conftest's `pristine`)
    if BACKEND == "postgres":
        _pg(f"DROP DATABASE IF EXISTS {BROWSER_DB}")
        _pg(f"CREATE DATABASE {BROWSER_DB} TEMPLATE {pristine}")
        db_url = f"{PG_URL}/{BROWSER_DB}"
    else:
        shutil.copy(pristine, folder / "torreya.sqlite3")
        db_url = f"sqlite://{folder}/torreya.sqlite3"
    sms = Receiver().__enter__()
    wechat = WechatStandIn().__enter__()
    # 浙里办 for the browser: 溪口村 r006's demo number, verified.
    provider, provider_url = start_provider([
        {"sub": "zlb-xikou-r006", "phone_number": "+8613802000006",
         "phone_number_verified": True}])
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": f"http://127.0.0.1:{port}", "TORREYA_SMS_BACKEND": "webhook",
           "TORREYA_SMS_URL": sms.url, "TORREYA_WECHAT_APPID": APPID,
           "TORREYA_WECHAT_SECRET": WECHAT_SECRET, "TORREYA_WECHAT_AUTHORIZE_BASE": wechat.url,
           "TORREYA_WECHAT_API_BASE": wechat.url, "TORREYA_OIDC_ISSUER": provider_url,
           "TORREYA_OIDC_CLIENT_ID": "torreya", "TORREYA_OIDC_CLIENT_SECRET": "torreya-secret",
           "TORREYA_OIDC_LABEL": "浙里办登录"}
    cli = [sys.executable, "-m", "torreya.cli"]
    subprocess.run([*cli, "demo", "--residents", "8"], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=120)
    server, port = start_server(folder, env, folder / "server.log", port)
    url = f"http://127.0.0.1:{port}"
    yield LiveServer(url, env, sms, wechat)
    sms.__exit__(None, None, None)
    wechat.__exit__(None, None, None)
    stop_provider(provider)
    server.terminate()
    server.wait(timeout=10)
    if BACKEND == "postgres":
        _pg(f"DROP DATABASE IF EXISTS {BROWSER_DB} WITH (FORCE)")


_COLLECTED: list[Collector] = []
# The pages are the same whichever database is behind them: axe-core runs in the SQLite
# run of the suite, which keeps the PostgreSQL run (the same browser tests) shorter.
AXE = BACKEND != "postgres"
skip_without_axe = pytest.mark.skipif(not AXE, reason="axe-core runs in the SQLite run")


@pytest.fixture(scope="session")
def axe(live_server) -> Collector:
    _COLLECTED.append(Collector(live_server.url))
    return _COLLECTED[-1]


def pytest_terminal_summary(terminalreporter) -> None:
    for collector in _COLLECTED if AXE else []:
        pages = {key for key, _size in collector.checked}
        terminalreporter.write_line(f"axe-core checked {len(pages)} pages the browser tests "
                                    f"visited ({len(collector.checked)} page × size checks)")


@pytest.fixture(scope="module")
def browser(live_server, axe):
    # Playwright's sync API keeps an event loop running while it is open: close it with the
    # module, and run browser modules last (tests/conftest.py), so async tests get theirs.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield AuditedBrowser(browser, axe) if AXE else browser
        browser.close()


@pytest.fixture(autouse=True)
def no_serious_accessibility_violation(axe):
    """Fails the test during which axe-core first found a serious or critical violation on
    a page it visited (axe_everywhere.py)."""
    axe.take_found()
    yield
    found = axe.take_found()
    assert not found, "axe-core, serious or critical:\n" + "\n".join(found)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    """Keep a screenshot of what the user saw (tests/_artifacts/, not committed)."""
    folder = Path(__file__).resolve().parent.parent / "_artifacts"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


SCREENS = Path(__file__).resolve().parent.parent.parent / "docs" / "screens"


def screen(page, name: str) -> None:
    """A screenshot for docs/screens/ (what a reviewer looks at without running anything),
    written when TORREYA_SCREENS=1 (`scripts/screens`); otherwise kept as `shot` keeps it."""
    if os.environ.get("TORREYA_SCREENS") == "1":
        SCREENS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
    else:
        shot(page, name)
