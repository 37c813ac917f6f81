from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from torreya.models.integrity import SignalKind, SignalStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


async def one_open_signal_per_incident(apps, schema_editor) -> None:
    # A finding of an incident already open updates that signal (INSERT … ON CONFLICT on
    # this index, integrity/signals.py); a resolved one leaves room for a new signal.
    # Partial: same syntax on PostgreSQL and SQLite.
    await schema_editor.client.execute_script(
        "CREATE UNIQUE INDEX signals_open_incident ON signals (kind, incident)"
        " WHERE status = 'open'")


class Migration(migrations.Migration):
    dependencies = [('models', '0028_salted_digests')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeviceSighting',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('checkin_id', fields.BigIntField()),
                ('event_id', fields.IntField()),
                ('user_id', fields.IntField()),
                ('town_id', fields.IntField()),
                ('village_id', fields.IntField()),
                ('device', fields.CharField(max_length=64)),
                ('address', fields.CharField(default='', max_length=64)),
                ('agent', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'device_sightings', 'app': 'models', 'indexes': [Index(fields=['event_id', 'device', 'created_at']), Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': "A resident's own check-in and the device it came from: written after the check-in,"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PhotoPrint',
            fields=[
                ('report_id', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('user_id', fields.IntField()),
                ('print', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'photo_prints', 'app': 'models', 'indexes': [Index(fields=['town_id'])], 'pk_attr': 'report_id', 'table_description': "A report photo's perceptual hash (a 64-bit difference hash of the stored image), so a"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Signal',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('village_id', fields.IntField()),
                ('kind', fields.CharEnumField(description='ONE_DEVICE_MANY_RESIDENTS: one_device_many_residents\nADJUSTMENTS_CONCENTRATED: adjustments_concentrated\nDUPLICATE_PHOTO: duplicate_photo\nPATROL_PACE: patrol_pace\nEARNING_OUTLIER: earning_outlier', enum_type=SignalKind, max_length=32)),
                ('incident', fields.CharField(max_length=160)),
                ('user_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('evidence', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=SignalStatus.OPEN, description='OPEN: open\nDISMISSED: dismissed\nCONFIRMED: confirmed', enum_type=SignalStatus, max_length=16)),
                ('note', fields.CharField(default='', max_length=500)),
                ('resolved_by', fields.ForeignKeyField('models.User', source_field='resolved_by_id', null=True, db_constraint=True, to_field='id', related_name='signals_resolved', on_delete=OnDelete.SET_NULL)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'signals', 'app': 'models', 'indexes': [Index(fields=['village_id', 'status', 'id'])], 'pk_attr': 'id', 'table_description': 'One incident: raised once, updated with new evidence while it is open, resolved by a'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Route',
            name='walk_minutes',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Town',
            name='integrity',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.RunPython(one_open_signal_per_incident),
    ]
