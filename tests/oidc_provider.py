"""A real OpenID provider for the tests: oidc-provider-mock from PyPI, as its own server.
Its authorize page is a form with a `sub` field; `--user-claims` sets what it says."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterable

import httpx


def start_provider(people: Iterable[dict]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-W", "ignore", "-m", "oidc_provider_mock", "--port", str(port)]
    for person in people:
        command += ["--user-claims", json.dumps(person)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the OpenID provider did not start")


def stop_provider(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=10)
