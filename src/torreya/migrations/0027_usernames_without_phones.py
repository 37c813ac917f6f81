from tortoise import migrations
from tortoise.migrations import operations as ops


async def rename_phone_usernames(apps, schema_editor) -> None:
    # Self-registered residents were named "{village code}_{their phone number}", which put
    # the whole number in front of anyone who sees a username (issue 26). They log in by
    # SMS and never type it: they become "{village code}_u{id}". Same SQL on both databases.
    await schema_editor.client.execute_script(
        "UPDATE users SET username = (SELECT v.code FROM villages v WHERE v.id = users.village_id)"
        " || '_u' || CAST(users.id AS TEXT)"
        " WHERE users.phone LIKE '+86%' AND users.village_id IS NOT NULL"
        " AND users.username = (SELECT v.code FROM villages v WHERE v.id = users.village_id)"
        " || '_' || SUBSTR(users.phone, 4)")


class Migration(migrations.Migration):
    dependencies = [('models', '0026_staff_scans_in_sets')]

    initial = False

    operations = [
        ops.RunPython(rename_phone_usernames),
    ]
