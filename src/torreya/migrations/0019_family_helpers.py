from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_totp')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FamilyHelper',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.User', source_field='member_id', db_constraint=True, to_field='id', related_name='helpers', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(max_length=20)),
                ('name', fields.CharField(max_length=32)),
                ('added_by', fields.ForeignKeyField('models.User', source_field='added_by_id', null=True, db_constraint=True, to_field='id', related_name='helpers_added', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'family_helpers', 'app': 'models', 'unique_together': (('member_id', 'phone'),), 'indexes': [Index(fields=['phone'])], 'pk_attr': 'id', 'table_description': "亲属代办: a phone that may act for a resident (an elder's account run by a child)."},
            bases=['Model'],
        ),
    ]
