from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

async def one_household_each(apps, schema_editor) -> None:
    # A resident belongs to one household at a time (their past memberships are kept, for
    # the points earned while members). Partial: same syntax on PostgreSQL and SQLite.
    await schema_editor.client.execute_script(
        "CREATE UNIQUE INDEX household_members_current ON household_members (user_id)"
        " WHERE left_at IS NULL")


class Migration(migrations.Migration):
    dependencies = [('models', '0029_integrity_signals')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Household',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('village', fields.ForeignKeyField('models.Village', source_field='village_id', db_constraint=True, to_field='id', related_name='households', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=40)),
                ('head', fields.ForeignKeyField('models.User', source_field='head_id', null=True, db_constraint=True, to_field='id', related_name='headed_households', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'households', 'app': 'models', 'indexes': [Index(fields=['village_id'])], 'pk_attr': 'id', 'table_description': "A village's household: a head (户主) and members. Its points are what its members"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HouseholdMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('household', fields.ForeignKeyField('models.Household', source_field='household_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='household_memberships', on_delete=OnDelete.RESTRICT)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'household_members', 'app': 'models', 'indexes': [Index(fields=['household_id']), Index(fields=['user_id'])], 'pk_attr': 'id', 'table_description': "A resident's time in a household: `left_at` is null while they belong. One current"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HouseholdRating',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('household', fields.ForeignKeyField('models.Household', source_field='household_id', db_constraint=True, to_field='id', related_name='ratings', on_delete=OnDelete.CASCADE)),
                ('year', fields.SmallIntField()),
                ('stars', fields.SmallIntField()),
                ('note', fields.CharField(default='', max_length=500)),
                ('rated_by', fields.ForeignKeyField('models.User', source_field='rated_by_id', null=True, db_constraint=True, to_field='id', related_name='household_ratings', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'household_ratings', 'app': 'models', 'unique_together': (('household', 'year'),), 'pk_attr': 'id', 'table_description': 'A yearly star rating (1–5, 星级平安户) by the village admin, one per household and year.'},
            bases=['Model'],
        ),
        ops.RunPython(one_household_each),
    ]
