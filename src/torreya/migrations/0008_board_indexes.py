from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0007_town_levels")]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name="EarningTotal",
            name=None,
            fields=["village_id", "kind", "period", "total"],
        ),
        ops.RemoveIndex(
            model_name="EarningTotal",
            name=None,
            fields=["town_id", "kind", "period", "total"],
        ),
        ops.AddIndex(
            model_name="EarningTotal",
            index=Index(fields=["village_id", "kind", "period", "total", "user_id"]),
        ),
        ops.AddIndex(
            model_name="EarningTotal",
            index=Index(fields=["town_id", "kind", "period", "total", "user_id"]),
        ),
    ]
