"""TORREYA_STALL_MS: a stall of the event loop is logged with the code it was in; a loop
that only waits logs nothing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace

import httpx
import pytest

from torreya.app import create_app
from torreya.ops import stalls
from torreya.settings import ConfigurationError, Settings


def _compute_without_waiting(seconds: float) -> None:
    time.sleep(seconds)  # as a long loop over rows would: the thread is not given back


async def test_a_stall_is_logged_with_the_code_it_was_in(caplog):
    caplog.set_level(logging.WARNING, logger="torreya.stalls")
    watch = stalls.watch(50)
    try:
        await asyncio.sleep(0.05)
        _compute_without_waiting(0.25)
        await asyncio.sleep(0.05)
    finally:
        watch.stop()
    [record] = [r for r in caplog.records if r.name == "torreya.stalls"]
    held = int(record.getMessage().split("held up ")[1].split(" ms")[0])
    assert 200 <= held < 1000
    assert "_compute_without_waiting" in record.getMessage()


async def test_a_loop_that_waits_logs_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="torreya.stalls")
    watch = stalls.watch(100)
    try:
        for _ in range(20):
            await asyncio.sleep(0.01)
    finally:
        watch.stop()
    assert not [r for r in caplog.records if r.name == "torreya.stalls"]


def test_off_by_default_and_a_wrong_value_is_refused(monkeypatch):
    monkeypatch.delenv("TORREYA_STALL_MS", raising=False)
    monkeypatch.setenv("TORREYA_SECRET_KEY", "x" * 40)
    assert stalls.watch(Settings.from_env().STALL_MS) is None
    monkeypatch.setenv("TORREYA_STALL_MS", "80")
    assert Settings.from_env().STALL_MS == 80
    for wrong in ("-1", "0.5", "fast", "60001"):
        monkeypatch.setenv("TORREYA_STALL_MS", wrong)
        with pytest.raises(ConfigurationError, match="TORREYA_STALL_MS"):
            Settings.from_env()


async def test_the_app_watches_its_loop_while_it_serves(settings, caplog):
    caplog.set_level(logging.WARNING, logger="torreya.stalls")
    app = create_app(replace(settings, STALL_MS=50))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.get("/login")).status_code == 200
        _compute_without_waiting(0.2)
        await asyncio.sleep(0.05)
    assert [r for r in caplog.records if r.name == "torreya.stalls"
            and "_compute_without_waiting" in r.getMessage()]
    assert not any(t.name == "torreya-stall-watch" for t in threading.enumerate())
