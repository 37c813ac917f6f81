from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0027_usernames_without_phones')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ChainLink',
            name='v',
            field=fields.SmallIntField(default=1, db_default=1),
        ),
    ]
