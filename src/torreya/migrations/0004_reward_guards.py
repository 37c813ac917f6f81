"""Stock never below zero, and indexes on the reward tables' foreign keys."""

from tortoise import migrations
from tortoise.migrations import operations as ops

FK_INDEXES = [
    ("idx_rewards_village", "rewards", "village_id"),
    ("idx_redemptions_reward", "redemptions", "reward_id"),
    ("idx_redemptions_closed_by", "redemptions", "closed_by_id"),
    ("idx_movements_redemption", "stock_movements", "redemption_id"),
    ("idx_movements_actor", "stock_movements", "actor_id"),
]

POSTGRES = [
    "ALTER TABLE rewards ADD CONSTRAINT rewards_stock_nonneg CHECK (stock IS NULL OR stock >= 0)",
    "ALTER TABLE rewards ADD CONSTRAINT rewards_cost_positive CHECK (cost > 0)",
]

SQLITE = [
    """CREATE TRIGGER rewards_stock_nonneg BEFORE UPDATE OF stock ON rewards
    WHEN NEW.stock IS NOT NULL AND NEW.stock < 0
    BEGIN SELECT RAISE(ABORT, 'stock would go negative'); END""",
]


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    statements = SQLITE if client.capabilities.dialect == "sqlite" else POSTGRES
    for name, table, column in FK_INDEXES:
        await client.execute_script(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")
    for sql in statements:
        await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_rewards")]

    operations = [ops.RunPython(add_guards)]
