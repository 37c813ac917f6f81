"""The chain's own guards: links and signed heads are append-only, as the ledger is; and
every town that has entries gets its head, with the entries written before sealing
(`legacy_through`) to be chained as they are by `torreya migrate` (with a progress bar).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

GENESIS = "0" * 64

POSTGRES = [
    """CREATE FUNCTION torreya_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
    END;
    $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER chain_no_update BEFORE UPDATE OR DELETE ON ledger_chain"
    " FOR EACH ROW EXECUTE FUNCTION torreya_append_only()",
    "CREATE TRIGGER signed_heads_no_update BEFORE UPDATE OR DELETE ON signed_heads"
    " FOR EACH ROW EXECUTE FUNCTION torreya_append_only()",
]

SQLITE = [
    f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
    for table in ("ledger_chain", "signed_heads") for action in ("update", "delete")
]


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    for sql in SQLITE if client.capabilities.dialect == "sqlite" else POSTGRES:
        await client.execute_script(sql)
    await client.execute_query(
        "INSERT INTO chain_heads (town_id, seq, hash, entry_id, total, legacy_through)"
        f" SELECT town_id, 0, '{GENESIS}', 0, 0, MAX(id) FROM ledger_entries GROUP BY town_id")


class Migration(migrations.Migration):
    dependencies = [('models', '0020_hash_chain')]

    initial = False

    operations = [ops.RunPython(add_guards)]
