"""Prometheus metrics through prometheus_client, the field's library (SPEC §4.11).

One `torreya serve --workers N` is one scrape: serve gives its workers a shared directory
(PROMETHEUS_MULTIPROC_DIR, emptied at start) and each worker writes its counters there;
`/metrics` sums them (prometheus_client's multiprocess mode). With one worker the
counters stay in the process. What is read from the database (the outbox's backlog) is
measured when scraped, once, whichever worker answers.

`/metrics` answers loopback clients, or anyone bearing TORREYA_METRICS_TOKEN when it is
set; a load balancer's or the internet's requests get 401.
"""

from __future__ import annotations

import hmac
import os
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as multi
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from torreya.db import conn, fetch, is_unavailable, now

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # no `_created` series beside every counter: noise for a town

HTTP_REQUESTS = Counter("torreya_http_requests", "HTTP requests answered, by route template",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("torreya_http_request_duration_seconds",
                          "Time to answer, by route template", ["method", "route"],
                          buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
CHECKINS = Counter("torreya_checkins", "Check-ins: created, or the refusal's error code",
                   ["result"])
LEDGER_ENTRIES = Counter("torreya_ledger_entries", "Ledger entries written, by kind",
                         ["kind"])
DB_UNAVAILABLE = Counter("torreya_db_unavailable", "Answers 503 because the database was "
                         "out of reach or out of time")


_CHECKINS: dict[str, Counter] = {}
_ENTRIES: dict[str, Counter] = {}


def checkin(result: str) -> None:
    series = _CHECKINS.get(result) or _CHECKINS.setdefault(result, CHECKINS.labels(result))
    series.inc()


def entries(kind: str, count: int = 1) -> None:
    if count:
        series = _ENTRIES.get(kind) or _ENTRIES.setdefault(kind, LEDGER_ENTRIES.labels(kind))
        series.inc(count)


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multi.MultiProcessCollector(registry)
        return registry
    return REGISTRY


async def _outbox() -> str:
    """The backlog, read now: messages not yet dispatched and the age of the oldest."""
    rows = await fetch(conn(), "SELECT count(*) AS n, min(created_at) AS oldest FROM outbox"
                               " WHERE dispatched_at IS NULL", [])
    pending, oldest = int(rows[0]["n"]), rows[0]["oldest"]
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    age = max(0.0, (now() - oldest).total_seconds()) if oldest is not None else 0.0
    return ("# HELP torreya_outbox_pending Outbox messages not yet dispatched\n"
            "# TYPE torreya_outbox_pending gauge\n"
            f"torreya_outbox_pending {pending}\n"
            "# HELP torreya_outbox_oldest_pending_seconds Age of the oldest message not yet "
            "dispatched (0: none)\n"
            "# TYPE torreya_outbox_oldest_pending_seconds gauge\n"
            f"torreya_outbox_oldest_pending_seconds {age:.3f}\n")


def _allowed(request: Request) -> bool:
    token = request.app.state.settings.METRICS_TOKEN
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    client = request.client.host if request.client else ""
    return client in ("127.0.0.1", "::1", "localhost")


async def metrics(request: Request) -> Response:
    if not _allowed(request):
        return JSONResponse({"error": {"code": "unauthenticated", "message": (
            "Metrics are served to this machine, or with TORREYA_METRICS_TOKEN.")}},
            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    text = generate_latest(_registry()).decode()
    try:
        text += await _outbox()
    except Exception as error:  # the database is down: the counters still answer
        if not is_unavailable(error):
            raise
    return Response(text, media_type=CONTENT_TYPE_LATEST)
