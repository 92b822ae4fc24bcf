"""Evaluations and regression-gate checks, created by memory's migration 0006 and moved here with their tables."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('memory', '0009_merge_conflict_similarity_and_version_actor'),
        ('reviews', '0009_merge_queue_order_and_team_review'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (the models keep their names with db_table): only Django's record of
        # which app owns the models changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Evaluation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=10)),
                        ('options', models.JSONField(default=dict, help_text='seed, test fraction, shards, variants, prequential, limit')),
                        ('group_key', models.CharField(blank=True, max_length=100)),
                        ('provider', models.CharField(blank=True, max_length=20)),
                        ('model', models.CharField(blank=True, max_length=100)),
                        ('done', models.PositiveIntegerField(default=0)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('result', models.JSONField(blank=True, help_text='The document `manage.py evaluate --json` prints.', null=True)),
                        ('error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('progress_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='evaluations', to='reviews.project')),
                    ],
                    options={
                        'db_table': 'memory_evaluation',
                        'ordering': ['project', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='GateCheck',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('guard_size', models.PositiveIntegerField()),
                        ('agreement_before', models.FloatField()),
                        ('agreement_after', models.FloatField()),
                        ('threshold', models.FloatField()),
                        ('held', models.BooleanField()),
                        ('flipped', models.JSONField(default=list, help_text='[{sample_id, external_id, expert, before, after}]')),
                        ('added', models.JSONField(default=list, help_text='Principles in the new version only, as [{id, text}].')),
                        ('removed', models.JSONField(default=list, help_text='Principles in the good version only.')),
                        ('usage', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('compared_with', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='memory.memoryversion')),
                        ('version', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='gate_check', to='memory.memoryversion')),
                    ],
                    options={
                        'db_table': 'memory_gatecheck',
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
