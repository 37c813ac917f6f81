from tortoise import migrations
from tortoise.migrations import operations as ops
from torreya.models.signin import RegistrationStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_identities')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Registration',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('phone', fields.CharField(max_length=20)),
                ('name', fields.CharField(max_length=64)),
                ('village', fields.ForeignKeyField('models.Village', source_field='village_id', db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('id_last4', fields.CharField(null=True, max_length=4)),
                ('status', fields.CharEnumField(default=RegistrationStatus.PENDING, description='PENDING: pending\nAPPROVED: approved\nREJECTED: rejected', enum_type=RegistrationStatus, max_length=16)),
                ('reason', fields.CharField(default='', max_length=200)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='registration', on_delete=OnDelete.SET_NULL)),
                ('decided_by', fields.ForeignKeyField('models.User', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='decided_registrations', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'registrations', 'app': 'models', 'indexes': [Index(fields=['village_id', 'status']), Index(fields=['phone'])], 'pk_attr': 'id', 'table_description': 'Someone whose proven phone number matches nobody asks to join a village (居民认证).'},
            bases=['Model'],
        ),
    ]
