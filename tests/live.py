"""A live `torreya serve` for tests that need the real server: the real CLI, uvicorn and the
real database, started, killed and restarted as an operator would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND, PG_URL, SECRET
from torreya.db import now
from torreya.settings import LOCAL

CLI = [sys.executable, "-m", "torreya.cli"]
PASSWORD = "torreya2026"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_admin(sql: str) -> None:
    async def run() -> None:
        import asyncpg

        connection = await asyncpg.connect(f"{PG_URL}/postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    # A fresh loop in a thread: callers may be inside the test's own event loop.
    with contextlib.ExitStack():
        import threading

        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(run())
            except BaseException as error:  # re-raised in the caller
                errors.append(error)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]


def start_server(folder: Path, env: dict, log: Path, port: int, *, attempts: int = 5,
                 extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    """`torreya serve` on `port`, ready; or on another free port if something took that one
    meanwhile (a port picked early can become the source port of any outgoing connection
    before the server binds it). `env`'s TORREYA_BASE_URL follows the port."""
    for _attempt in range(attempts):
        env["TORREYA_BASE_URL"] = f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            process = subprocess.Popen([*CLI, "serve", "--port", str(port), *extra], cwd=folder,
                                       env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                    time.sleep(0.3)  # ours, not a server that had the port: still running
                    if process.poll() is None:
                        return process, port
            except httpx.HTTPError:
                time.sleep(0.2)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if "address already in use" not in log.read_text():
            break
        port = _free_port()
    pytest.fail(log.read_text())


@dataclass
class Live:
    folder: Path
    env: dict
    url: str
    db_name: str | None
    process: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, *extra: str) -> None:
        """`torreya serve`, with `extra` arguments (`--workers`, "2")."""
        log = self.folder / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        port = int(self.url.rsplit(":", 1)[1])
        self.process, port = start_server(self.folder, self.env, log, port, extra=extra)
        self.url = f"http://127.0.0.1:{port}"

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], cwd=self.folder, env=self.env, capture_output=True,
                              text=True, timeout=120)

    def sql(self, statement: str) -> None:
        """Change the database directly, behind the app's back."""
        url = self.env["TORREYA_DATABASE_URL"]
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(url.split("://", 1)[1])) as connection:
                connection.execute(statement)
                connection.commit()
            return

        async def run() -> None:
            import asyncpg

            connection = await asyncpg.connect(url)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()

        _in_thread(run())

    def rows(self, sql: str, *values) -> list[tuple]:
        """Read the database directly, as an auditor would (not through the app)."""
        url = self.env["TORREYA_DATABASE_URL"]
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(url.split("://", 1)[1])) as connection:
                return connection.execute(sql, values).fetchall()
        marked = sql
        for number in range(1, len(values) + 1):
            marked = marked.replace("?", f"${number}", 1)

        async def run() -> list[tuple]:
            import asyncpg

            connection = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await connection.fetch(marked, *values)]
            finally:
                await connection.close()

        return _in_thread(run())


def _in_thread(coroutine):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class DemoTown:
    """`torreya demo --residents 24` run once per test session through the real CLI, then
    copied for each test that serves it: the demo's 36 migrations and half a year of life
    took 9–22 s of a test's set-up, for a town the same each time. It starts from a copy of
    the suite's migrated database. Made again when the village's day has turned since (its
    periods, "yesterday's" signed record)."""

    def __init__(self, folder: Path, pristine: str) -> None:
        self.folder = folder
        self.pristine = pristine  # the suite's migrated, empty database (conftest)
        self.made: tuple[str, str] | None = None  # (village day, database url)
        self.databases: list[str] = []

    def copy(self, folder: Path) -> tuple[str, str | None]:
        """A database holding the demo town, for `folder`'s test: (url, its PostgreSQL
        name or None)."""
        template = self._template()
        if BACKEND == "postgres":
            name = f"torreya_faults_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            pg_admin(f"CREATE DATABASE {name} TEMPLATE {template.rsplit('/', 1)[1]}")
            return f"{PG_URL}/{name}", name
        path = folder / "torreya.sqlite3"
        with contextlib.closing(sqlite3.connect(template.split("://", 1)[1])) as source, \
                contextlib.closing(sqlite3.connect(path)) as target:
            source.backup(target)
        return f"sqlite://{path}", None

    def restore_into(self, url: str) -> None:
        """The demo town written into `url`, an empty database on another PostgreSQL server
        (a test's own cluster), by pg_dump and psql."""
        dump = subprocess.run(["pg_dump", "--no-owner", self._template()], capture_output=True,
                              check=True, timeout=120)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=dump.stdout,
                       capture_output=True, check=True, timeout=120)

    def _template(self) -> str:
        day = now().astimezone(LOCAL).date().isoformat()
        if self.made is not None and self.made[0] == day:
            return self.made[1]
        made = self.folder / f"demo-{day}"
        made.mkdir()
        if BACKEND == "postgres":
            name = f"torreya_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            pg_admin(f"CREATE DATABASE {name} TEMPLATE {self.pristine}")
            self.databases.append(name)
            url = f"{PG_URL}/{name}"
        else:
            shutil.copy(self.pristine, made / "torreya.sqlite3")
            url = f"sqlite://{made}/torreya.sqlite3"
        env = {**os.environ, "TORREYA_DATABASE_URL": url, "TORREYA_SECRET_KEY": SECRET}
        demo = subprocess.run([*CLI, "demo", "--residents", "24"], cwd=made, env=env,
                              capture_output=True, text=True, timeout=300)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        self.made = (day, url)
        return url

    def drop(self) -> None:
        for name in self.databases:
            pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def demo_town(tmp_path_factory, pristine):
    town = DemoTown(tmp_path_factory.mktemp("demo"), pristine)
    yield town
    town.drop()


@pytest.fixture
def live(tmp_path, demo_town):
    """A demo town served live (not yet started: call `start()`), on its own database."""
    port = _free_port()
    db_url, db_name = demo_town.copy(tmp_path)
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET,
           "TORREYA_BASE_URL": f"http://127.0.0.1:{port}"}
    server = Live(tmp_path, env, f"http://127.0.0.1:{port}", db_name)
    yield server
    server.stop()
    if db_name:
        pg_admin(f"ALTER DATABASE {db_name} ALLOW_CONNECTIONS true")
        pg_admin(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


async def login_token(client: httpx.AsyncClient, username: str, *, base: str = ""
                      ) -> dict[str, str]:
    """A bearer token for a demo user (`base`: the server, when the client has none)."""
    answer = await client.post(f"{base}/api/v1/auth/token",
                               json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


