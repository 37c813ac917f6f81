from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0019_family_helpers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChainHead',
            fields=[
                ('town_id', fields.IntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('seq', fields.BigIntField(default=0)),
                ('hash', fields.CharField(max_length=64)),
                ('entry_id', fields.BigIntField(default=0)),
                ('total', fields.BigIntField(default=0)),
                ('legacy_through', fields.BigIntField(default=0)),
                ('swept_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'chain_heads', 'app': 'models', 'pk_attr': 'town_id', 'table_description': "The newest link of a town's chain, and what the chainer needs to carry on."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChainLink',
            fields=[
                ('entry_id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('seq', fields.BigIntField()),
                ('digest', fields.CharField(max_length=64)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'ledger_chain', 'app': 'models', 'unique_together': (('town_id', 'seq'),), 'pk_attr': 'entry_id', 'table_description': "An entry's place in its town's chain: `hash` = SHA-256(prev_hash ‖ digest), where"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SignedHead',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('key_id', fields.IntField()),
                ('kind', fields.CharField(max_length=16)),
                ('period', fields.CharField(max_length=10)),
                ('seq', fields.BigIntField()),
                ('entry_id', fields.BigIntField()),
                ('hash', fields.CharField(max_length=64)),
                ('total', fields.BigIntField()),
                ('signed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('signature', fields.CharField(max_length=128)),
            ],
            options={'table': 'signed_heads', 'app': 'models', 'unique_together': (('town_id', 'kind', 'period'),), 'indexes': [Index(fields=['town_id', 'seq'])], 'pk_attr': 'id', 'table_description': "A town's chain head as signed on a day (or for a monthly report). Append-only."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TownKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('town_id', fields.IntField()),
                ('public_key', fields.CharField(max_length=64)),
                ('private_key', fields.CharField(max_length=400)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('retired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'town_keys', 'app': 'models', 'indexes': [Index(fields=['town_id'])], 'pk_attr': 'id', 'table_description': "A town's Ed25519 signing key. The private half is encrypted with a key derived from"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='LedgerEntry',
            name='seal',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
