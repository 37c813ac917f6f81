from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0031_passbook')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Town',
            name='expiry',
            field=fields.CharField(default='none', db_default='none', max_length=16),
        ),
    ]
