"""Where PostgreSQL logs statement parameters, check-ins are not written in batches: the
batch's statement carries the sealing key's blocks (tests/checkins/test_express.py has the
rest). Its own app, so no clean_audit fixture: the test checks the seal itself."""

from __future__ import annotations

import httpx
import pytest

from tests.checkins.test_express import express_only
from tests.conftest import PG_DB, _pg_admin
from tests.factories import api_token, make_event, make_user, make_village
from torreya.app import create_app
from torreya.checkins.codes import poster_token
from torreya.ledger import batch
from torreya.models import LedgerEntry
from torreya.security import read_access_token
from torreya.trust import encoding, sealing


@pytest.mark.postgres_only
async def test_no_batches_where_the_database_logs_statement_parameters(settings):
    """A server that logs statement parameters would keep the key: there every check-in
    is sealed in Python, one by one."""

    async def check_in_with_logging(setting: str) -> bool:
        await _pg_admin(f"ALTER DATABASE {PG_DB} SET {setting}")
        try:
            app = create_app(settings)  # its connections see the setting
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport,
                                             base_url="http://testserver") as client:
                    village = await make_village()
                    event = await make_event(village)
                    resident = await make_user(village=village)
                    headers = await api_token(client, resident)
                    claims = read_access_token(
                        settings, headers["Authorization"].removeprefix("Bearer "))
                    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
                    done = await express_only(settings, claims, token)
                    answer = await client.post("/api/v1/checkins", headers=headers,
                                               json={"token": token})
                    if done is None:
                        assert answer.status_code == 201, answer.text
                    entry = await LedgerEntry.get(user_id=resident.id).values()
                    assert encoding.seal_ok(sealing.key(), entry)
                    return done is not None
        finally:
            await _pg_admin(f"ALTER DATABASE {PG_DB} RESET ALL")
            batch.forget()

    assert not await check_in_with_logging("log_min_duration_statement = 60000")
    assert await check_in_with_logging("log_parameter_max_length = 0")


def test_which_logging_settings_write_parameters():
    quiet = {"log_parameter_max_length": "-1", "log_statement": "none",
             "log_min_duration_statement": "-1", "log_min_duration_sample": "-1",
             "log_statement_sample_rate": "1", "log_transaction_sample_rate": "0"}
    assert not batch.logs_parameters(quiet)
    for loud in ({"log_statement": "all"}, {"log_min_duration_statement": "250"},
                 {"log_min_duration_sample": "0"}, {"log_transaction_sample_rate": "0.01"}):
        assert batch.logs_parameters(quiet | loud), loud
        assert not batch.logs_parameters(quiet | loud | {"log_parameter_max_length": "0"})
    assert not batch.logs_parameters(quiet | {"log_statement": "mod"})  # ours is a SELECT
    assert not batch.logs_parameters(quiet | {"log_min_duration_sample": "0",
                                                "log_statement_sample_rate": "0"})
