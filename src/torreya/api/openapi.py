"""GET /api/v1/openapi.json, built from the endpoint table."""

from __future__ import annotations

import re

from starlette.requests import Request

from torreya import __version__
from torreya.api.registry import ENDPOINTS, endpoint, json
from torreya.convertors import BIGID_DIGITS, ID_DIGITS

STATUS = {"invalid_request": 422, "unauthenticated": 401, "invalid_credentials": 401,
          "forbidden": 403, "not_found": 404, "invalid_token": 400, "token_expired": 410,
          "too_many_attempts": 429, "private_address": 422, "invalid_code": 401,
          "step_up_required": 403, "sms_unavailable": 503, "no_account": 409,
          "several_accounts": 409, "choose_account": 409, "too_many_helpers": 409,
          "helper_exists": 409, "own_number": 409, "helper_forbidden": 403,
          "already_registered": 409, "already_waiting": 409,
          "totp_required": 401}


TYPES = {"int": {"type": "integer"}, "str": {"type": "string"}, "bool": {"type": "boolean"},
         "num": {"type": "number"}, "time": {"type": "string", "format": "date-time"},
         "list": {"type": "array", "items": {"type": "object"}}, "obj": {"type": "object"}}


def response_schema(spec: str) -> dict:
    """The object schema of a `returns` spec ("id:int name village_id:int? items:list")."""
    properties = {}
    for token in spec.split():
        name, _sep, kind = token.partition(":")
        nullable = kind.endswith("?")
        schema = dict(TYPES[(kind.rstrip("?") or "str")])
        if nullable:
            schema["nullable"] = True
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": list(properties)}


def webhooks() -> dict:
    """What a subscribed endpoint receives, per event type (docs/events.md)."""
    from torreya.outbox.service import PAYLOADS

    return {event_type: {"post": {
        "summary": f"{event_type}, signed with the Standard Webhooks headers",
        "parameters": [{"name": name, "in": "header", "required": True,
                        "schema": {"type": "string"}}
                       for name in ("webhook-id", "webhook-timestamp", "webhook-signature")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["type", "timestamp", "data"],
            "properties": {"type": {"type": "string", "enum": [event_type]},
                           "timestamp": {"type": "string", "format": "date-time"},
                           "data": response_schema(spec)}}}}},
        "responses": {"200": {"description": "Any 2xx acknowledges it; anything else, or "
                                              "no answer within 10 s, is retried."}},
    }} for event_type, spec in PAYLOADS.items()}


# Path ids: what the {…:id} and {…:bigid} route convertors take (torreya/convertors.py).
ID_SCHEMAS = {kind: {"type": "integer", "minimum": 0, "maximum": 10**digits - 1}
              for kind, digits in (("id", ID_DIGITS), ("bigid", BIGID_DIGITS))}


def _path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def document(base_url: str) -> dict:
    paths: dict = {}
    for e in ENDPOINTS:
        op: dict = {"summary": e.summary, "tags": [e.tag] if e.tag else [],
                    "operationId": e.handler.__name__,
                    "responses": {str(e.status): {"description": "OK"}}}
        if e.returns:
            op["responses"][str(e.status)]["content"] = {"application/json": {
                "schema": response_schema(e.returns)}}
        params = [{"name": name, "in": "path", "required": True,
                   "schema": ID_SCHEMAS.get(kind, {"type": "string"})}
                  for name, kind in re.findall(r"\{(\w+)(?::(\w+))?\}", e.path)]
        params += [{"name": f.name, "in": "query", "required": False, "schema": f.openapi()}
                   for f in e.query]
        if params:
            op["parameters"] = params
        if e.body:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {f.name: f.openapi() for f in e.body},
                "required": [f.name for f in e.body if f.required],
            }}}}
        codes = list(e.errors) + (["unauthenticated"] if e.auth else [])
        for code in codes:
            status = str(STATUS.get(code, 409))
            op["responses"].setdefault(status, {"description": "", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
            op["responses"][status]["description"] += (", " if op["responses"][status][
                "description"] else "") + code
        if e.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault("/api/v1" + _path(e.path), {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "webhooks": webhooks(),
        "info": {"title": "Torreya API", "version": __version__,
                 "description": "平安积分 points platform. Errors are "
                                "{\"error\": {\"code\", \"message\"}}."},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "field": {"type": "string"}}}}}},
        },
    }


@endpoint("GET", "/openapi.json", summary="This document", auth=False, tag="meta")
async def openapi(request: Request, body: dict) -> object:
    return json(document(request.app.state.settings.BASE_URL))
