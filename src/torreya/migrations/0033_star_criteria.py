from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0032_points_expiry')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Town',
            name='star_bonus',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Town',
            name='star_criteria',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
