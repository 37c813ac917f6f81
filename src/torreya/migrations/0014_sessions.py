from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_outbox_triggers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UserSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='logins', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=8)),
                ('user_agent', fields.CharField(default='', max_length=200)),
                ('ip', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('stepped_up_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'user_sessions', 'app': 'models', 'indexes': [Index(fields=['user_id', 'expires_at'])], 'pk_attr': 'id', 'table_description': "One login: a browser's session cookie or an API bearer token carries its id (`sid`)."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Town',
            name='step_up_points',
            field=fields.IntField(default=1000, db_default=1000),
        ),
        ops.AddField(
            model_name='User',
            name='ended_sessions',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
