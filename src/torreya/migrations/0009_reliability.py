from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

async def add_pending_index(apps, schema_editor) -> None:
    # What the delivery worker reads: messages not yet dispatched, oldest first. Partial, so
    # it holds only the backlog (same syntax on PostgreSQL and SQLite).
    await schema_editor.client.execute_script(
        "CREATE INDEX outbox_pending ON outbox (id) WHERE dispatched_at IS NULL")


class Migration(migrations.Migration):
    dependencies = [('models', '0008_board_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user_id', fields.IntField()),
                ('scope', fields.CharField(max_length=96)),
                ('key', fields.CharField(max_length=255)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('status_code', fields.SmallIntField()),
                ('response', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'idempotency_keys', 'app': 'models', 'unique_together': (('user_id', 'scope', 'key'),), 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': "A client's Idempotency-Key, scoped to the caller and the endpoint, with a fingerprint"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField(null=True)),
                ('event_type', fields.CharField(max_length=48)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('dispatched_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An event others care about, written in the same transaction as the change itself.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='entry_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['entry_id']),
        ),
        ops.RunPython(add_pending_index),
    ]
