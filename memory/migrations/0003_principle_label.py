import re

from django.db import migrations, models

NAMED_LABEL = re.compile(r"\(experts chose (?P<label>[^()]+)\)\.?\s*$")


def label_from_text(apps, schema_editor):
    """Principles the offline provider wrote name their label in the text: record it in the new field."""
    Principle = apps.get_model("memory", "Principle")
    for principle in Principle.objects.filter(label="").iterator():
        if match := NAMED_LABEL.search(principle.text):
            Principle.objects.filter(pk=principle.pk).update(label=match["label"].strip()[:64])


class Migration(migrations.Migration):
    dependencies = [("memory", "0002_judge_runs")]

    operations = [
        migrations.AddField(
            model_name="principle",
            name="label",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(label_from_text, migrations.RunPython.noop),
    ]
