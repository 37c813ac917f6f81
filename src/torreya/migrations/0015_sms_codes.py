from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0014_sessions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SmsCode',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('phone', fields.CharField(max_length=20)),
                ('code_hash', fields.CharField(max_length=64)),
                ('ip', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('wrong_tries', fields.IntField(default=0)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sms_codes', 'app': 'models', 'indexes': [Index(fields=['phone', 'created_at']), Index(fields=['ip', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A 6-digit code for a phone: stored as an HMAC (never the digits), valid 5 minutes,'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='SmsMessage',
            name='purpose',
            field=fields.CharField(default='notice', db_default='notice', max_length=8),
        ),
    ]
