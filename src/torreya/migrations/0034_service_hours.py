from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0033_star_criteria')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ServiceCertificate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=24)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.RESTRICT)),
                ('town_id', fields.IntField()),
                ('village_id', fields.IntField(null=True)),
                ('period_from', fields.DateField()),
                ('period_to', fields.DateField()),
                ('minutes', fields.IntField()),
                ('items', fields.IntField()),
                ('key_id', fields.IntField()),
                ('payload', fields.TextField(unique=False)),
                ('signature', fields.CharField(max_length=128)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('issued_by', fields.ForeignKeyField('models.User', source_field='issued_by_id', null=True, db_constraint=True, to_field='id', related_name='issued_certificates', on_delete=OnDelete.SET_NULL)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by_id', fields.IntField(null=True)),
                ('revoke_reason', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'service_certificates', 'app': 'models', 'indexes': [Index(fields=['user_id']), Index(fields=['village_id', 'issued_at'])], 'pk_attr': 'id', 'table_description': "A signed statement of a resident's service minutes over a period. The signed text"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Checkin',
            name='checked_out_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Checkin',
            name='checkout_method',
            field=fields.CharField(default='', db_default='', max_length=16),
        ),
        ops.AddField(
            model_name='Checkin',
            name='checkout_staff_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Checkin',
            name='hour_points',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Checkin',
            name='minutes',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Event',
            name='checkout',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Event',
            name='points_per_hour',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
