"""Guards the ORM cannot declare: the ledger is append-only and no balance goes negative.

Tortoise's initial migration creates no CHECK constraints and no indexes on foreign keys,
so both are added here, per dialect.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

FK_INDEXES = [
    ("idx_checkins_user", "checkins", "user_id"),
    ("idx_events_town", "events", "town_id"),
    ("idx_ledger_actor", "ledger_entries", "actor_id"),
    ("idx_audit_actor", "audit_events", "actor_id"),
    ("idx_totals_user", "earning_totals", "user_id"),
    ("idx_villages_town", "villages", "town_id"),
]

POSTGRES = [
    "ALTER TABLE users ADD CONSTRAINT users_balance_nonneg CHECK (balance >= 0)",
    "ALTER TABLE users ADD CONSTRAINT users_lifetime_nonneg CHECK (lifetime_points >= 0)",
    "ALTER TABLE ledger_entries ADD CONSTRAINT ledger_balance_after_nonneg"
    " CHECK (balance_after >= 0)",
    """CREATE FUNCTION torreya_ledger_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'ledger_entries is append-only';
    END;
    $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger_entries"
    " FOR EACH ROW EXECUTE FUNCTION torreya_ledger_append_only()",
]

SQLITE = [
    """CREATE TRIGGER users_balance_nonneg BEFORE UPDATE OF balance, lifetime_points ON users
    WHEN NEW.balance < 0 OR NEW.lifetime_points < 0
    BEGIN SELECT RAISE(ABORT, 'balance would go negative'); END""",
    """CREATE TRIGGER ledger_balance_after_nonneg BEFORE INSERT ON ledger_entries
    WHEN NEW.balance_after < 0
    BEGIN SELECT RAISE(ABORT, 'balance would go negative'); END""",
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""",
]


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    statements = SQLITE if client.capabilities.dialect == "sqlite" else POSTGRES
    for name, table, column in FK_INDEXES:
        await client.execute_script(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")
    for sql in statements:
        await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [ops.RunPython(add_guards)]
