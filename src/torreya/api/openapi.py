"""GET /api/v1/openapi.json: the OpenAPI 3.1 document, built from the endpoint table and the
pydantic models it names (torreya/api/schema.py), so it says exactly what is served."""

from __future__ import annotations

import json as json_module
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from starlette.requests import Request

from torreya import __version__
from torreya.api.registry import Endpoint, Endpoints, json
from torreya.api.schema import Out, body_required
from torreya.convertors import BIGID_DIGITS, ID_DIGITS
from torreya.errors import DomainError
from torreya.outbox.service import PAYLOADS

# Codes raised with an explicit status rather than by a class of their own.
_EXTRA_STATUS = {"unavailable": 503, "server_error": 500, "too_large": 413}


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


def _error_classes(cls: type[DomainError] = DomainError):
    for sub in cls.__subclasses__():
        yield sub
        yield from _error_classes(sub)


def status_of(code: str) -> int:
    """The HTTP status an error code is answered with (its DomainError class says)."""
    for cls in _error_classes():
        if cls.code == code:
            return cls.status
    return _EXTRA_STATUS.get(code, 409)


# What any operation can answer besides its own errors.
_ALWAYS = {
    "500": "server_error: a fault on our side, logged with its trace; nothing was changed",
    "503": "unavailable: the database is out of reach or busy; nothing was changed, retry "
           "after the Retry-After header's seconds",
}

# Path ids: what the {…:id} and {…:bigid} route convertors take (torreya/convertors.py).
ID_SCHEMAS = {kind: {"type": "integer", "minimum": 0, "maximum": 10**digits - 1}
              for kind, digits in (("id", ID_DIGITS), ("bigid", BIGID_DIGITS))}

HEADERS = {
    "Accept-Language": {
        "name": "Accept-Language", "in": "header", "required": False,
        "description": "The language of messages: zh-CN (the default) or en. 消息的语言。",
        "schema": {"type": "string", "examples": ["zh-CN", "en"]}},
    "Idempotency-Key": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Any unique text (a UUID), scoped to you and the operation: a retry "
                       "with the same key and body replays the first answer (header "
                       "Idempotent-Replayed: true) instead of acting twice; the same key with "
                       "another body is 409 idempotency_mismatch. Kept 7 days. "
                       "重试时带同一个键，不会重复办理。",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
}

# The error body. Named ErrorResponse, not Error: a generated client names its variables
# after the model, and an "error" field inside a model called Error shadowed one
# (openapi-python-client's code then failed mypy --strict).
ERROR_DETAIL = {
    "type": "object", "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "Stable; what a client branches on"},
        "message": {"type": "string", "description": "For people, in the caller's language"},
        "field": {"type": ["string", "null"],
                  "description": "The field refused, as `scans[3].nonce`"}}}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}}


ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def _examples() -> dict:
    """Real requests and answers by operationId and status (scripts/api_examples.py)."""
    path = Path(__file__).with_name("examples.json")
    return json_module.loads(path.read_text()) if path.exists() else {}


def _with_example(content: dict, value) -> dict:
    media = dict(content["application/json"])
    media["examples"] = {"demo": {"summary": "A real one, from the demo town", "value": value}}
    return {"application/json": media}


def _path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _models(endpoints: Sequence[Endpoint]) -> list[tuple[type[BaseModel], str]]:
    pairs: list[tuple[type[BaseModel], str]] = []
    for e in endpoints:
        for model, mode in ((e.body, "validation"), (e.returns, "serialization")):
            if model is not None and (model, mode) not in pairs:
                pairs.append((model, mode))

    for model in PAYLOADS.values():
        if (model, "serialization") not in pairs:
            pairs.append((model, "serialization"))
    return pairs


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema["properties"].items():
        described = prop.get("description") or next(
            (kind["description"] for kind in prop.get("anyOf", ()) if "description" in kind),
            None)
        parameters.append({"name": name, "in": "query",
                           "required": name in schema.get("required", []),
                           "schema": _query_schema(prop),
                           **({"description": described} if described else {})})
    return parameters


def _query_schema(prop: dict) -> dict:
    """A parameter's schema: a query string has no null (an optional one is left out), so
    `T | None = None` is documented as T, not required."""
    kinds = [kind for kind in prop.get("anyOf", ()) if kind.get("type") != "null"]
    schema = dict(kinds[0]) if len(kinds) == 1 else {
        k: v for k, v in prop.items() if k not in ("title", "description")}
    if len(kinds) == 1 and prop.get("default") is not None:
        schema["default"] = prop["default"]
    schema.pop("description", None)
    return schema


def _errors(e) -> dict[str, list[str]]:
    codes = list(e.errors)
    if e.auth:
        codes.append("unauthenticated")
    if e.body is not None or e.query is not None or e.idempotent:
        codes.append("invalid_request")
    if e.idempotent:
        codes.append("idempotency_mismatch")
    if e.body is not None:
        codes.append("too_large")
    by_status: dict[str, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(str(status_of(code)), []).append(code)
    return by_status


_DOCUMENTS: dict[tuple[str, int], dict] = {}  # (base URL, the router's endpoints) → document


def document(base_url: str, endpoints: Sequence[Endpoint]) -> dict:
    """The OpenAPI document of `endpoints` (the router's), made once per worker."""
    key = (base_url, id(endpoints))
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = _document(base_url, endpoints)
    return _DOCUMENTS[key]


def _document(base_url: str, endpoints: Sequence[Endpoint]) -> dict:
    refs, defs = models_json_schema(_models(endpoints),
                                    ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["ErrorResponse"] = ERROR
    schemas["ErrorDetail"] = ERROR_DETAIL
    examples = _examples()
    paths: dict = {}
    for e in endpoints:
        seen = examples.get(e.handler.__name__, {})
        description = "\n\n".join(part for part in (e.summary_zh, e.description) if part)
        op: dict = {"operationId": e.handler.__name__, "summary": e.summary,
                    "tags": [e.tag] if e.tag else [], "responses": {}}
        if description:
            op["description"] = description
        ok: dict = {"description": "OK" if e.status < 300 else "Accepted"}
        if e.status == 201:
            ok["description"] = "Created"
        if e.returns is not None:
            ok["content"] = {"application/json": {
                "schema": refs[(e.returns, "serialization")]}}
        if "content" in ok and str(e.status) in seen:
            ok["content"] = _with_example(ok["content"], seen[str(e.status)])
        if e.links:
            ok["links"] = {name: {"operationId": target, **spec}
                           for name, (target, spec) in e.links.items()}
        op["responses"][str(e.status) if e.status != 204 else "204"] = ok
        for status, codes in sorted(_errors(e).items()):
            op["responses"][status] = {"description": ", ".join(codes), "content": (
                _with_example(ERROR_BODY, seen[status]) if status in seen else ERROR_BODY)}
        for status, text in _ALWAYS.items():
            op["responses"].setdefault(status, {"description": text, "content": ERROR_BODY})
        params = [{"name": name, "in": "path", "required": True,
                   "schema": ID_SCHEMAS.get(kind, {"type": "string", "minLength": 1,
                                                   "maxLength": 400})}
                  for name, kind in re.findall(r"\{(\w+)(?::(\w+))?\}", e.path)]
        if e.query is not None:
            params += _query_parameters(e.query)
        params.append(HEADERS["Accept-Language"])
        if e.idempotent:
            params.append(HEADERS["Idempotency-Key"])
        op["parameters"] = params
        if e.body is not None:
            op["requestBody"] = {
                "required": body_required(e.body),
                "content": {"application/json": {"schema": refs[(e.body, "validation")]}}}
            if "request" in seen:
                op["requestBody"]["content"] = _with_example(op["requestBody"]["content"],
                                                             seen["request"])
        if e.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault("/api/v1" + _path(e.path), {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Torreya API", "version": __version__,
            "description": (
                "平安积分 points platform: residents earn points for safety work, check in by "
                "QR code, and spend points on their village's rewards.\n\n"
                "Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`: `code` is "
                "stable, `message` is in the caller's language (Accept-Language: zh-CN by "
                "default, or en). A method a path does not serve is 405 with an `Allow` "
                "header. A body over the limit is 413.\n\n"
                "平安积分平台接口。错误统一为 error 对象：code 固定，message 按 Accept-Language "
                "给出中文（默认）或英文。")},
        "servers": [{"url": base_url}],
        "paths": paths,
        "webhooks": webhooks(refs),
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "POST /api/v1/auth/token gives one; it lasts 12 hours."}},
            "schemas": schemas,
        },
    }


def webhooks(refs: dict) -> dict:
    """What a subscribed endpoint receives, per event type (docs/events.md)."""
    return {event_type: {"post": {
        "operationId": "webhook_" + event_type.replace(".", "_"),
        "summary": f"{event_type}, signed with the Standard Webhooks headers",
        "parameters": [{"name": name, "in": "header", "required": True,
                        "schema": {"type": "string"}}
                       for name in ("webhook-id", "webhook-timestamp", "webhook-signature")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["type", "town_id", "timestamp", "data"],
            "properties": {"type": {"const": event_type},
                           "town_id": {"type": "integer", "minimum": 1,
                                       "description": "The town it happened in"},
                           "timestamp": {"type": "string", "format": "date-time"},
                           "data": refs[(model, "serialization")]}}}}},
        "responses": {"200": {"description": "Any 2xx acknowledges it; anything else, or "
                                              "no answer within 10 s, is retried."}},
    }} for event_type, model in PAYLOADS.items()}


class Document(Out):
    """An OpenAPI 3.1 document (this one)."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict
    paths: dict


@api.endpoint("GET", "/openapi.json", summary="This document", summary_zh="本接口文档",
              auth=False, tag="meta", returns=Document)
async def openapi(request: Request, body: None) -> object:
    return json(document(request.app.state.settings.BASE_URL, request.scope["api"].endpoints))
