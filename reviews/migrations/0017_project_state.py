"""The project state token (reviews.models.ProjectState) and the triggers that change it on every write.

The triggers live in reviews/state_triggers.py, which also re-creates them after every `migrate`.

Review claims change no token: a reviewer renews theirs on every review page, and figures that depend on
claims are cached under the ids of the live ones as well (reviews.overlap.live_claims).
"""

from django.db import migrations, models

from reviews import state_triggers

def create_triggers(apps, schema_editor) -> None:
    state_triggers.create(schema_editor.connection)


def drop_triggers(apps, schema_editor) -> None:
    state_triggers.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0016_feedback_quote")]

    operations = [
        migrations.CreateModel(
            name="ProjectState",
            fields=[
                ("project_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("token", models.BigIntegerField()),
            ],
        ),
        migrations.AddIndex(
            model_name="reviewclaim",
            index=models.Index(fields=["expires_at"], name="claim_expiry"),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
