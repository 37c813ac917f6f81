from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0034_service_hours')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Department',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town', fields.ForeignKeyField('models.Town', source_field='town_id', db_constraint=True, to_field='id', related_name='departments', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'departments', 'app': 'models', 'unique_together': (('town', 'name'),), 'pk_attr': 'id', 'table_description': 'A town department that handles cases (派出所, 应急办, 综治中心).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReportFollower',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('report', fields.ForeignKeyField('models.Report', source_field='report_id', db_constraint=True, to_field='id', related_name='followers', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='followed_reports', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'report_followers', 'app': 'models', 'unique_together': (('report', 'user'),), 'indexes': [Index(fields=['user_id'])], 'pk_attr': 'id', 'table_description': 'A resident of the village who has the same problem (我也遇到了) and is told of each'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Report',
            name='department_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Report',
            name='escalated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='rated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='rating',
            field=fields.SmallIntField(null=True),
        ),
        ops.AddField(
            model_name='Report',
            name='rating_comment',
            field=fields.CharField(default='', db_default='', max_length=500),
        ),
        ops.AddField(
            model_name='Report',
            name='resolved_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='visit_note',
            field=fields.CharField(default='', db_default='', max_length=500),
        ),
        ops.AddField(
            model_name='Report',
            name='visited_on',
            field=fields.DateField(null=True),
        ),
        ops.AddIndex(
            model_name='Report',
            index=Index(fields=['status', 'created_at']),
        ),
        ops.AddIndex(
            model_name='Report',
            index=Index(fields=['department_id', 'status']),
        ),
        ops.AddField(
            model_name='Town',
            name='case_ack_hours',
            field=fields.IntField(default=48, db_default=48),
        ),
        ops.AddField(
            model_name='Town',
            name='case_resolve_hours',
            field=fields.IntField(default=168, db_default=168),
        ),
        ops.AddField(
            model_name='User',
            name='department_id',
            field=fields.IntField(null=True),
        ),
    ]
