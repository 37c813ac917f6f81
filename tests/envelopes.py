"""Every webhook envelope the suite produces is checked against the document's webhook
schemas (issue 29): what a receiver's validator would refuse fails the test that made it,
on both databases. The `app` fixture checks the envelopes of every message a test left in
the outbox (the bytes the delivery worker would send); the local receiver checks what
it was actually sent."""

from __future__ import annotations

import json
from functools import cache

import jsonschema_rs

from torreya.api.openapi import _document
from torreya.db import conn, fetch
from torreya.outbox import worker


@cache
def _validators() -> dict[str, jsonschema_rs.Draft202012Validator]:
    from torreya.routes import API

    document = _document("http://testserver", API)
    return {kind: jsonschema_rs.Draft202012Validator(
        {**hook["post"]["requestBody"]["content"]["application/json"]["schema"],
         "components": document["components"]}, validate_formats=True)
        for kind, hook in document["webhooks"].items()}


def problems(body: bytes) -> list[str]:
    """What the document's schema for this envelope's type refuses in it."""
    envelope = json.loads(body)
    validator = _validators().get(envelope.get("type"))
    if validator is None:
        return [f"{envelope.get('type')!r} is not a documented webhook"]
    return [f"{envelope['type']}: {error.message} at {list(error.instance_path)}"
            for error in validator.iter_errors(envelope)]


async def outbox_problems() -> list[str]:
    rows = await fetch(conn(), "SELECT event_type, town_id, payload, created_at FROM outbox"
                               " ORDER BY id", [])
    return [problem for row in rows for problem in problems(worker.envelope(row))]
