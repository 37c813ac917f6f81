from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0030_households')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PassbookPrint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='passbook_prints', on_delete=OnDelete.CASCADE)),
                ('up_to_entry_id', fields.BigIntField()),
                ('entries', fields.IntField()),
                ('printed_by', fields.ForeignKeyField('models.User', source_field='printed_by_id', null=True, db_constraint=True, to_field='id', related_name='passbooks_printed', on_delete=OnDelete.SET_NULL)),
                ('printed_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'passbook_prints', 'app': 'models', 'indexes': [Index(fields=['user_id', 'up_to_entry_id'])], 'pk_attr': 'id', 'table_description': '积分存折: a page printed for a resident, up to which ledger entry. The next print'},
            bases=['Model'],
        ),
    ]
