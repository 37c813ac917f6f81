"""The OpenAPI 3.1 document says exactly what is served (issue 16): real answers of the main
flows validate against the documented schemas, bodies are refused as the schemas say, and
refusals read in the caller's language."""

from __future__ import annotations

import jsonschema_rs
import pytest

from tests.factories import api_token, make_event, make_user, make_village
from tests.rewards.test_redemption import make_reward, resident_with
from torreya.models import Checkin, Role, User


def conforms(document: dict, path: str, method: str, status: int, body) -> None:
    """`body` validates against what the document says `method path` answers with."""
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": document["components"]}, validate_formats=True)
    errors = [str(e) for e in validator.iter_errors(body)]
    assert not errors, (path, status, errors)


async def test_real_answers_of_the_main_flows_match_the_document(client, settings):
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    village = await make_village()
    resident = await resident_with(50, village)
    staff = await make_user(Role.STAFF, village)
    headers = await api_token(client, resident)
    staff_headers = await api_token(client, staff)
    event = await make_event(village)
    reward = await make_reward(village, cost=5)

    async def check(method, path, doc_path, status, **kw):
        answer = await client.request(method, "/api/v1" + path, **kw)
        assert answer.status_code == status, answer.text
        conforms(document, doc_path, method.lower(), status, answer.json())
        return answer.json()

    await check("GET", "/me", "/api/v1/me", 200, headers=headers)
    await check("GET", "/me/member-card", "/api/v1/me/member-card", 200, headers=headers)
    code = await check("GET", f"/events/{event.id}/checkin-code",
                       "/api/v1/events/{id}/checkin-code", 200, headers=staff_headers)
    await check("POST", "/checkins", "/api/v1/checkins", 201, headers=headers,
                json={"token": code["token"]})
    await check("GET", "/me/ledger", "/api/v1/me/ledger", 200, headers=headers)
    voucher = await check("POST", "/redemptions", "/api/v1/redemptions", 201,
                          headers=headers, json={"reward_id": reward.id})
    await check("GET", "/me/redemptions", "/api/v1/me/redemptions", 200, headers=headers)
    await check("GET", f"/villages/{village.id}/rewards", "/api/v1/villages/{id}/rewards", 200,
                headers=headers)
    await check("POST", f"/vouchers/{voucher['voucher_code']}/fulfil",
                "/api/v1/vouchers/{code}/fulfil", 200, headers=staff_headers)
    await check("GET", f"/villages/{village.id}/leaderboard",
                "/api/v1/villages/{id}/leaderboard", 200)
    await check("GET", f"/events/{event.id}/offline-kit", "/api/v1/events/{id}/offline-kit",
                200, headers=staff_headers)
    await check("GET", "/me/sessions", "/api/v1/me/sessions", 200, headers=headers)
    await check("GET", "/me/notifications", "/api/v1/me/notifications", 200, headers=headers)
    # refusals: the error envelope, under the status the document gives for them
    await check("POST", "/checkins", "/api/v1/checkins", 409, headers=headers,
                json={"token": code["token"]})
    await check("POST", "/checkins", "/api/v1/checkins", 422, headers=headers, json={})
    await check("GET", "/me", "/api/v1/me", 401)


async def test_every_operation_documents_its_refusals_and_headers(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert any(s.startswith("2") for s in op["responses"]), where
            assert {"500", "503"} <= set(op["responses"]), where
            names = {p["name"] for p in op["parameters"]}
            assert "Accept-Language" in names, where
            if op.get("security"):
                assert "401" in op["responses"], where
            if "requestBody" in op:
                assert {"413", "422"} <= set(op["responses"]), where
                assert op["requestBody"]["content"]["application/json"]["schema"], where
            assert "nullable" not in str(op), where  # 3.0 syntax, not 3.1
    token = document["paths"]["/api/v1/redemptions"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in token["parameters"]}
    assert token["responses"]["201"]["links"]["fulfil"]["operationId"] == "fulfil"


# Keywords pydantic knows and JSON Schema does not: generators and validators ignore them,
# so a bound written so is a bound nobody sees.
PYDANTIC_ONLY = {"ge", "le", "gt", "lt", "min_length", "max_length", "multiple_of",
                 "allow_inf_nan", "max_digits", "decimal_places", "strict", "coerce_numbers_to_str"}


def _keywords(node, where: str = ""):
    """Every (where, keyword) of every schema object in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key
            if key not in ("examples", "example", "properties"):
                yield from _keywords(value, f"{where}/{key}")
            else:
                for name, inner in value.items() if isinstance(value, dict) else ():
                    yield from _keywords(inner, f"{where}/{key}/{name}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keywords(value, f"{where}[{index}]")


async def test_every_schema_speaks_json_schema_and_the_document_validates(client):
    from openapi_spec_validator import validate

    document = (await client.get("/api/v1/openapi.json")).json()
    validate(document)  # raises on any error, as an integrator's check would
    wrong = [(where, key) for where, key in _keywords(document) if key in PYDANTIC_ONLY
             and "/examples" not in where]
    assert not wrong, wrong
    ledger = {p["name"]: p["schema"] for p in
              document["paths"]["/api/v1/me/ledger"]["get"]["parameters"]}
    assert ledger["limit"] == {"maximum": 100, "minimum": 1, "type": "integer"}
    # the cursor a page gives is the cursor the next request takes: both text
    assert ledger["cursor"]["type"] == "string"
    page = _schema(document, "LedgerPage")["properties"]["next_cursor"]
    assert {"type": "string"} in page["anyOf"]
    board = {p["name"]: p["schema"] for p in
             document["paths"]["/api/v1/towns/{id}/leaderboard"]["get"]["parameters"]}
    assert (board["limit"]["minimum"], board["limit"]["maximum"]) == (1, 100)
    token = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]
    assert token["required"] is True
    # choices are enums
    assert _schema(document, "EventOut")["properties"]["kind"]["enum"][0] == "campaign"
    assert "cancelled" in _schema(document, "RedemptionOut")["properties"]["status"]["enum"]
    assert "refund" in _schema(document, "EntryOut")["properties"]["kind"]["enum"]
    assert "town_admin" in _schema(document, "MeOut")["properties"]["role"]["enum"]
    period = _schema(document, "RewardOut")["properties"]["limit_period"]["anyOf"][0]
    assert period["enum"] == ["day", "week", "month", "year"]
    # a signed head carries every field its signature covers, the version too
    assert "v" in _schema(document, "SignedHead")["required"]
    hook = document["webhooks"]["checkin.created"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert {"type", "town_id", "timestamp", "data"} <= set(hook["required"])


def _schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


async def test_the_schemas_carry_the_real_limits(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    event = _schema(document, "EventIn")["properties"]
    assert event["points"] == {"maximum": 10000, "minimum": 0, "title": "Points",
                               "type": "integer"}
    assert event["title"]["maxLength"] == 120 and "<>" in event["title"]["pattern"]
    assert event["starts_at"]["format"] == "date-time"
    assert event["qr_mode"]["enum"] == ["static", "rotating"]
    group = _schema(document, "GroupIn")["properties"]["village_ids"]
    assert group["anyOf"][0]["items"]["type"] == "integer"
    assert group["anyOf"][0]["items"]["maximum"] == 2**31 - 1
    pledge = _schema(document, "PledgeIn")["properties"]
    assert pledge["confirmations"]["items"]["type"] == "string"
    route = _schema(document, "RouteIn")["properties"]
    assert route["checkpoints"]["maxItems"] == 50


@pytest.mark.parametrize("body, field, english", [
    ({"token": 5}, "token", "must be text"),
    ({}, "token", "is required"),
    ({"token": "x" * 2049}, "token", "too long"),
    ({"token": "a\x00b"}, "token", "control characters"),
])
async def test_a_refused_body_names_its_field_in_both_languages(client, body, field, english):
    resident = await make_user()
    headers = await api_token(client, resident)
    answer = await client.post("/api/v1/checkins", headers={**headers, "Accept-Language": "en"},
                               json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", field)
    assert english in error["message"]
    chinese = await client.post("/api/v1/checkins", headers=headers, json=body)
    message = chinese.json()["error"]["message"]
    assert message != error["message"] and any("\u4e00" <= c <= "\u9fff" for c in message)
    assert not await Checkin.all().exists()


async def test_strict_types_and_bounds(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    headers = {**await api_token(client, admin), "Accept-Language": "en"}
    base = {"title": "演练", "kind": "drill", "points": 5, "qr_mode": "static",
            "starts_at": "2026-12-01T09:00:00+08:00", "ends_at": "2026-12-01T11:00:00+08:00"}
    for change, field in [({"points": "5"}, "points"), ({"points": True}, "points"),
                          ({"points": 5.0}, "points"), ({"points": 2**70}, "points"),
                          ({"starts_at": "2026-12-01T09:00:00"}, "starts_at"),
                          ({"starts_at": "0001-01-01T00:00:00+08:00"}, "starts_at"),
                          ({"starts_at": 1764550800}, "starts_at"),
                          ({"kind": "party"}, "kind"), ({"title": "<b>演练</b>"}, "title"),
                          ({"remind_day_before": "true"}, "remind_day_before")]:
        answer = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers,
                                   json=base | change)
        assert answer.status_code == 422, (change, answer.text)
        assert answer.json()["error"]["field"] == field, change
    created = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers,
                                json=base)
    assert created.status_code == 201, created.text
    # the query too: an empty value is a wrong one, not an absent one
    board = await client.get(f"/api/v1/villages/{village.id}/leaderboard?limit=")
    assert board.status_code == 422 and board.json()["error"]["field"] == "limit"
    assert (await client.get(f"/api/v1/villages/{village.id}/leaderboard?limit=5")
            ).status_code == 200
    assert (await client.get(f"/api/v1/villages/{village.id}/leaderboard?period=decade")
            ).status_code == 422


async def test_a_token_refusal_comes_before_the_body(client):
    answer = await client.post("/api/v1/towns", json={})
    assert answer.status_code == 401
    assert (await User.all().count()) == 0


async def test_the_recorded_examples_fit_their_schemas(client):
    """The examples are real answers (scripts/api_examples.py); if a model changes they must
    be recorded again, or this fails."""
    document = (await client.get("/api/v1/openapi.json")).json()
    found = 0
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            media = [(status, r["content"]["application/json"])
                     for status, r in op["responses"].items() if "content" in r]
            if "requestBody" in op:
                media.append(("request", op["requestBody"]["content"]["application/json"]))
            for status, content in media:
                for example in content.get("examples", {}).values():
                    validator = jsonschema_rs.Draft202012Validator(
                        {**content["schema"], "components": document["components"]},
                        validate_formats=True)
                    errors = [str(e) for e in validator.iter_errors(example["value"])]
                    assert not errors, (method, path, status, errors)
                    found += 1
    assert found >= 30, found
    check_in = document["paths"]["/api/v1/checkins"]["post"]
    assert check_in["responses"]["409"]["content"]["application/json"]["examples"]["demo"][
        "value"]["error"]["code"] == "already_checked_in"
