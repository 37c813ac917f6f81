from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0022_elder_mode')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OfflineScan',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('nonce', fields.CharField(unique=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.User', source_field='staff_id', db_constraint=True, to_field='id', related_name='offline_scans', on_delete=OnDelete.RESTRICT)),
                ('event', fields.ForeignKeyField('models.Event', source_field='event_id', null=True, db_constraint=True, to_field='id', related_name='offline_scans', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharField(max_length=8)),
                ('subject_id', fields.BigIntField(null=True)),
                ('outcome', fields.CharField(default='', max_length=16)),
                ('reason', fields.CharField(default='', max_length=32)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('points', fields.IntField(null=True)),
                ('name', fields.CharField(default='', max_length=64)),
                ('scanned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('synced_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'offline_scans', 'app': 'models', 'indexes': [Index(fields=['event_id', 'synced_at'])], 'pk_attr': 'id', 'table_description': 'A scan a staff phone made without signal and synced later (issue 15): its nonce'},
            bases=['Model'],
        ),
    ]
