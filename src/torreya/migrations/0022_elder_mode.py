from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0021_chain_guards')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='elder_mode',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
