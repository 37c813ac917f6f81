"""The two messages of every check-in, written by the database in the statement that makes
the row: `ledger.entry_created` for every ledger entry, `checkin.created` for every
check-in. Same transaction, same all-or-nothing, but no statement of their own on the
hottest path (on SQLite each statement is a hop through aiosqlite's thread; measured in
docs/benchmarks.md). Their fields are those of torreya.outbox.service.PAYLOADS; a test
compares every message with it. Times are written as Python's isoformat() writes them.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_SQLITE_TIME = "replace({}, ' ', 'T')"
_PG_TIME = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def _entry_fields(time: str) -> str:
    return (
        "'id', NEW.id, 'user_id', NEW.user_id,"
        " 'village_id', (SELECT village_id FROM users WHERE id = NEW.user_id),"
        " 'delta', NEW.delta, 'balance_after', NEW.balance_after, 'kind', NEW.kind,"
        " 'memo', NEW.memo, 'source_type', NEW.source_type, 'source_id', NEW.source_id,"
        f" 'proxy', {{proxy}}, 'created_at', {time.format('NEW.created_at')}")


def _checkin_fields(time: str) -> str:
    return (
        "'id', NEW.id, 'event_id', NEW.event_id,"
        " 'village_id', (SELECT village_id FROM events WHERE id = NEW.event_id),"
        " 'user_id', NEW.user_id, 'points', NEW.points, 'method', NEW.method,"
        f" 'staff_id', NEW.staff_id, 'created_at', {time.format('NEW.created_at')}")


SQLITE = [
    "CREATE TRIGGER ledger_entries_outbox AFTER INSERT ON ledger_entries BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES (NEW.town_id,"
    " 'ledger.entry_created', json_object("
    + _entry_fields(_SQLITE_TIME).format(
        proxy="json(CASE WHEN NEW.proxy THEN 'true' ELSE 'false' END)")
    + "), NEW.created_at); END",
    "CREATE TRIGGER checkins_outbox AFTER INSERT ON checkins BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES ("
    "(SELECT town_id FROM events WHERE id = NEW.event_id), 'checkin.created', json_object("
    + _checkin_fields(_SQLITE_TIME) + "), NEW.created_at); END",
]

POSTGRES = [
    "CREATE FUNCTION torreya_ledger_outbox() RETURNS trigger AS $$ BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES (NEW.town_id,"
    " 'ledger.entry_created', json_build_object("
    + _entry_fields(_PG_TIME).format(proxy="NEW.proxy")
    + ")::jsonb, NEW.created_at); RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER ledger_entries_outbox AFTER INSERT ON ledger_entries"
    " FOR EACH ROW EXECUTE FUNCTION torreya_ledger_outbox()",
    "CREATE FUNCTION torreya_checkin_outbox() RETURNS trigger AS $$ BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at) VALUES ("
    "(SELECT town_id FROM events WHERE id = NEW.event_id), 'checkin.created',"
    " json_build_object(" + _checkin_fields(_PG_TIME)
    + ")::jsonb, NEW.created_at); RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER checkins_outbox AFTER INSERT ON checkins"
    " FOR EACH ROW EXECUTE FUNCTION torreya_checkin_outbox()",
]


async def add_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for sql in SQLITE if client.capabilities.dialect == "sqlite" else POSTGRES:
        await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [('models', '0012_notifications')]

    initial = False

    operations = [ops.RunPython(add_triggers)]
