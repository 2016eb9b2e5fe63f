"""The sandbox network's models move to the ``sandbox`` app (issue 11). Their tables stay as
they are, under their names (``social_sandboxuser``, ``social_sandboxpost`` and its mentions):
the models leave this app's state only, and ``sandbox`` 0001 takes them up."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("social", "0010_post_malformed_outcome_and_visibility"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="SandboxPost"),
                migrations.DeleteModel(name="SandboxUser"),
            ],
        ),
    ]
