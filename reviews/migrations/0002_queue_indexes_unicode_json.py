"""Indexes for the queue's counts, agreement left empty where there is no verdict, unescaped JSON.

Feedback on a sample without a judge verdict agreed with nothing: agrees_with_judge becomes NULL there (it was
False, which counted such samples as disagreements), so counting disagreements needs no join to the samples.

The encoder is not part of the database schema: the AlterFields change Django's state only (SQLite would
otherwise rebuild the samples table three times). On SQLite, rows stored earlier with \\u escapes are
re-encoded, so that a search for "café" finds them; PostgreSQL's jsonb never stored escapes.
"""

import reviews.models
from django.conf import settings
from django.db import migrations, models

JSON_FIELDS = ["inputs", "expectations", "metadata"]


def reencode_escaped_json(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    Sample = apps.get_model("reviews", "Sample")
    # (`contains` on a JSONField means containment, not a substring: ask SQLite about the stored text.)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM reviews_sample WHERE " + " OR ".join(f"instr({name}, '\\u') > 0" for name in JSON_FIELDS)
        )
        ids = [row[0] for row in cursor.fetchall()]
    for start in range(0, len(ids), 1000):
        batch = list(Sample.objects.filter(pk__in=ids[start : start + 1000]))
        Sample.objects.bulk_update(batch, JSON_FIELDS)


def no_verdict_no_agreement(apps, schema_editor):
    Feedback = apps.get_model("reviews", "Feedback")
    Feedback.objects.filter(sample__judge_value="").update(agrees_with_judge=None)


class Migration(migrations.Migration):

    dependencies = [
        ('reviews', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='sample',
                    name='expectations',
                    field=models.JSONField(blank=True, encoder=reviews.models.UnicodeJSONEncoder, null=True),
                ),
                migrations.AlterField(
                    model_name='sample',
                    name='inputs',
                    field=models.JSONField(encoder=reviews.models.UnicodeJSONEncoder, help_text='What the judged system was given: a JSON object or a string.'),
                ),
                migrations.AlterField(
                    model_name='sample',
                    name='metadata',
                    field=models.JSONField(blank=True, default=dict, encoder=reviews.models.UnicodeJSONEncoder),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(reencode_escaped_json, migrations.RunPython.noop, elidable=True),
        migrations.RemoveIndex(
            model_name='feedback',
            name='feedback_agreement',
        ),
        migrations.AlterField(
            model_name='feedback',
            name='agrees_with_judge',
            field=models.BooleanField(help_text="Whether the label equals the base judge's verdict; empty when the sample has none.", null=True),
        ),
        migrations.RunPython(no_verdict_no_agreement, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name='feedback',
            index=models.Index(fields=['project', 'agrees_with_judge', 'sample'], name='feedback_agreement'),
        ),
        migrations.AddIndex(
            model_name='feedback',
            index=models.Index(fields=['author', 'project', 'sample'], name='feedback_by_author'),
        ),
        migrations.AddIndex(
            model_name='feedback',
            index=models.Index(fields=['project', 'sample'], name='feedback_by_sample'),
        ),
    ]
