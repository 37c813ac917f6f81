"""The baseline: a bare Starlette endpoint doing one INSERT on the same database, through the
same driver and pool as Torreya. `bench/checkin.py` runs it side by side with Torreya."""

from __future__ import annotations

import contextlib
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from torreya.app import settle_heap
from torreya.db import fetch
from torreya.settings import Settings


async def insert(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    conn = connections.get("default")
    rows = await fetch(conn, "INSERT INTO bench_inserts (token) VALUES (?) RETURNING id",
                       [body["token"][:200]])
    return JSONResponse({"id": rows[0]["id"]}, status_code=201)


@contextlib.asynccontextmanager
async def lifespan(app):
    # The same connection settings as Torreya (driver, pool), and the same garbage collector
    # settings; only the endpoint differs.
    async with RegisterTortoise(app, config=Settings.from_env().tortoise_config()):
        settle_heap()  # the same collector settings as Torreya's
        yield


async def plain_json(request: Request) -> JSONResponse:
    """The baseline for reads: a fixed JSON body, no database."""
    return JSONResponse({"period": "month", "items": [
        {"rank": n, "display_name": "张*明", "points": 1000 - n} for n in range(1, 21)]})


async def parse_json(request: Request) -> JSONResponse:
    """The stack's own limit (issue 36): parses the check-in's request body and answers a
    small JSON body, touching no database. `bench/checkin.py` serves it on the fastest
    Python stack at hand (uvicorn with uvloop and httptools)."""
    body = json.loads(await request.body())
    return JSONResponse({"ok": True, "token": len(body["token"])}, status_code=201)


async def receive(request: Request) -> Response:
    """A webhook receiver that acknowledges at once (bench/webhooks.py)."""
    await request.body()
    return Response(status_code=204)


app = Starlette(routes=[Route("/insert", insert, methods=["POST"]),
                        Route("/json", plain_json),
                        Route("/parse", parse_json, methods=["POST"]),
                        Route("/receive", receive, methods=["POST"])], lifespan=lifespan)
