from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from torreya.models.notifications import SmsStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_session_generation')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('town_id', fields.IntField(null=True)),
                ('kind', fields.CharField(max_length=32)),
                ('params', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('link', fields.CharField(default='', max_length=200)),
                ('dedup_key', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notifications', 'app': 'models', 'unique_together': (('user', 'dedup_key'),), 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['user_id', 'read_at'])], 'pk_attr': 'id', 'table_description': "One thing a resident is told, in the inbox. Rendered in the reader's language from"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SmsMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('notification', fields.OneToOneField('models.Notification', source_field='notification_id', null=True, db_constraint=True, to_field='id', related_name='sms', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.IntField()),
                ('phone', fields.CharField(max_length=20)),
                ('text', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(default=SmsStatus.PENDING, description='PENDING: pending\nSENT: sent\nFAILED: failed\nCANCELLED: cancelled', enum_type=SmsStatus, max_length=16)),
                ('send_after', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.CharField(default='', max_length=200)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'sms_messages', 'app': 'models', 'indexes': [Index(fields=['status', 'send_after'])], 'pk_attr': 'id', 'table_description': 'A text message waiting for the gateway: sent by the worker, outside any transaction,'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Event',
            name='remind_day_before',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Event',
            name='reminded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='sms_notifications',
            field=fields.BooleanField(default=True, db_default=True),
        ),
    ]
