"""Judge runs and verdicts move to the judging app, evaluations and gate checks to the evaluation app."""

from django.db import migrations

MOVED = {"judgerun": "judging", "judgement": "judging", "evaluation": "evaluation", "gatecheck": "evaluation"}


def move_content_types(apps, schema_editor):
    """Permissions and admin history follow the models to their new app."""
    content_type = apps.get_model("contenttypes", "ContentType")
    for model, app in MOVED.items():
        if not content_type.objects.filter(app_label=app, model=model).exists():
            content_type.objects.filter(app_label="memory", model=model).update(app_label=app)


def move_content_types_back(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model, app in MOVED.items():
        if not content_type.objects.filter(app_label="memory", model=model).exists():
            content_type.objects.filter(app_label=app, model=model).update(app_label="memory")


class Migration(migrations.Migration):

    dependencies = [
        ('memory', '0009_merge_conflict_similarity_and_version_actor'),
        ('judging', '0001_initial'),
        ('evaluation', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        # The tables stay where they are (the models keep their names with db_table): only Django's record of
        # which app owns the models changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='gatecheck',
                    name='compared_with',
                ),
                migrations.RemoveField(
                    model_name='gatecheck',
                    name='version',
                ),
                migrations.RemoveField(
                    model_name='judgement',
                    name='memory_version',
                ),
                migrations.RemoveField(
                    model_name='judgement',
                    name='project',
                ),
                migrations.RemoveField(
                    model_name='judgement',
                    name='run',
                ),
                migrations.RemoveField(
                    model_name='judgement',
                    name='sample',
                ),
                migrations.RemoveField(
                    model_name='judgerun',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='judgerun',
                    name='memory_version',
                ),
                migrations.RemoveField(
                    model_name='judgerun',
                    name='project',
                ),
                migrations.DeleteModel(
                    name='Evaluation',
                ),
                migrations.DeleteModel(
                    name='GateCheck',
                ),
                migrations.DeleteModel(
                    name='Judgement',
                ),
                migrations.DeleteModel(
                    name='JudgeRun',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, reverse_code=move_content_types_back),
    ]
