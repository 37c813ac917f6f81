from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0015_sms_codes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UserIdentity',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='identities', on_delete=OnDelete.CASCADE)),
                ('issuer', fields.CharField(max_length=200)),
                ('subject', fields.CharField(max_length=255)),
                ('label', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'user_identities', 'app': 'models', 'unique_together': (('issuer', 'subject'),), 'indexes': [Index(fields=['user_id'])], 'pk_attr': 'id', 'table_description': "A provider's account (OpenID Connect `iss` + `sub`) linked to a resident."},
            bases=['Model'],
        ),
    ]
