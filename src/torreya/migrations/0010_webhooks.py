from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from torreya.models.webhooks import DeliveryStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_reliability')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Webhook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town', fields.ForeignKeyField('models.Town', source_field='town_id', db_constraint=True, to_field='id', related_name='webhooks', on_delete=OnDelete.RESTRICT)),
                ('url', fields.CharField(max_length=500)),
                ('events', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('secret', fields.CharField(max_length=80)),
                ('previous_secret', fields.CharField(null=True, max_length=80)),
                ('previous_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='webhooks', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhooks', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An endpoint of a town that receives the event types it names (Standard Webhooks).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.Webhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('message_id', fields.BigIntField()),
                ('event_type', fields.CharField(max_length=48)),
                ('status', fields.CharEnumField(default=DeliveryStatus.PENDING, description='PENDING: pending\nSUCCEEDED: succeeded\nFAILED: failed', enum_type=DeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhook_deliveries', 'app': 'models', 'unique_together': (('webhook', 'message_id'),), 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['webhook_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One outbox message to one endpoint: retried with backoff until it succeeds or fails.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookAttempt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.WebhookDelivery', source_field='delivery_id', db_constraint=True, to_field='id', related_name='attempt_log', on_delete=OnDelete.CASCADE)),
                ('status_code', fields.IntField(null=True)),
                ('error', fields.CharField(default='', max_length=200)),
                ('response', fields.CharField(default='', max_length=500)),
                ('duration_ms', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhook_attempts', 'app': 'models', 'indexes': [Index(fields=['delivery_id', 'id'])], 'pk_attr': 'id', 'table_description': "What happened when we tried: the receiver's status and the start of its answer."},
            bases=['Model'],
        ),
    ]
