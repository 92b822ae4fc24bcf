"""Judge runs and verdicts, created by memory's migrations 0002-0006 and moved here with their tables."""

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
                    name='JudgeRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(choices=[('reviewed', 'Reviewed samples (measures agreement with the experts)'), ('unreviewed', 'Unreviewed samples'), ('all', 'All samples'), ('queue', "The queue filter's samples"), ('items', 'Items posted through the API')], default='reviewed', max_length=10)),
                        ('scope_detail', models.CharField(blank=True, help_text='The queue filter, for that scope.', max_length=300)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=10)),
                        ('sample_ids', models.JSONField(default=list)),
                        ('chunk_size', models.PositiveIntegerField(default=32)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('done', models.PositiveIntegerField(default=0)),
                        ('failed', models.PositiveIntegerField(default=0)),
                        ('abstained', models.PositiveIntegerField(default=0)),
                        ('usage', models.JSONField(default=dict)),
                        ('figures', models.JSONField(blank=True, help_text='Agreement with the experts, when the run ended.', null=True)),
                        ('error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('dispatched_at', models.DateTimeField(blank=True, help_text='When its chunks were queued.', null=True)),
                        ('started_at', models.DateTimeField(blank=True, help_text='When a worker first took a chunk.', null=True)),
                        ('progress_at', models.DateTimeField(blank=True, help_text='When the last verdict was stored.', null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('memory_version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='memory.memoryversion')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judge_runs', to='reviews.project')),
                    ],
                    options={
                        'db_table': 'memory_judgerun',
                        'ordering': ['project', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Judgement',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('value', models.CharField(blank=True, help_text='Empty: the judge abstained, or failed (see error).', max_length=64)),
                        ('rationale', models.TextField(blank=True)),
                        ('error', models.TextField(blank=True, help_text='Why the provider gave no usable verdict; retryable.')),
                        ('principle_ids', models.JSONField(default=list, help_text='The principles in its working memory.')),
                        ('retrieved', models.JSONField(default=list, help_text='Feedback ids of the retrieved examples, most similar first.')),
                        ('similarities', models.JSONField(default=list, help_text="The retrieved examples' similarities, in that order.")),
                        ('provider', models.CharField(max_length=20)),
                        ('model', models.CharField(max_length=100)),
                        ('usage', models.JSONField(default=dict)),
                        ('latency_ms', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('memory_version', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='memory.memoryversion')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgements', to='reviews.project')),
                        ('sample', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgements', to='reviews.sample')),
                        ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='judgements', to='judging.judgerun')),
                    ],
                    options={
                        'db_table': 'memory_judgement',
                        'ordering': ['-id'],
                    },
                ),
                migrations.AddIndex(
                    model_name='judgerun',
                    index=models.Index(fields=['project', 'status'], name='judgerun_by_status'),
                ),
                migrations.AddIndex(
                    model_name='judgement',
                    index=models.Index(fields=['sample', '-id'], name='judgement_latest_by_sample'),
                ),
                migrations.AddConstraint(
                    model_name='judgement',
                    constraint=models.UniqueConstraint(fields=('run', 'sample'), name='one_judgement_per_run_and_sample'),
                ),
            ],
            database_operations=[],
        ),
    ]
