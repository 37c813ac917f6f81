from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0035_report_cases')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='HouseholdMember',
            index=Index(fields=['joined_at']),
        ),
        ops.AddIndex(
            model_name='HouseholdMember',
            index=Index(fields=['left_at']),
        ),
    ]
