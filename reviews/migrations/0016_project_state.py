"""The project state token (reviews.models.ProjectState) and the triggers that change it on every write.

SQLite: a row trigger per table and kind of write. PostgreSQL: a statement trigger per table and kind of write
over its transition table, so a bulk insert of 100,000 samples changes the token once, not 100,000 times.

Review claims change no token: a reviewer renews theirs on every review page, and figures that depend on
claims are cached under the ids of the live ones as well (reviews.overlap.live_claims).
"""

from django.db import migrations, models

# table -> the SQL expression of the project a changed row belongs to, over the changed row {row}
TABLES = {
    "reviews_sample": "{row}.project_id",
    "reviews_feedback": "{row}.project_id",
    "reviews_decision": "{row}.project_id",
    "reviews_queuepriority": "{row}.project_id",
    "reviews_importrun": "{row}.project_id",
    "reviews_membership": "{row}.project_id",
    "reviews_project": "{row}.id",
}
EVENTS = ("INSERT", "UPDATE", "DELETE")


def _sqlite(table: str, project: str, event: str) -> str:
    row = "OLD" if event == "DELETE" else "NEW"
    return f"""
        CREATE TRIGGER {table}_state_{event.lower()} AFTER {event} ON {table} FOR EACH ROW BEGIN
            INSERT INTO reviews_projectstate (project_id, token)
            SELECT p, random() FROM (SELECT {project.format(row=row)} AS p) WHERE p IS NOT NULL
            ON CONFLICT (project_id) DO UPDATE SET token = random();
        END"""


def _postgresql(table: str, project: str, event: str) -> list[str]:
    transition = "OLD TABLE" if event == "DELETE" else "NEW TABLE"
    function = f"{table}_state_{event.lower()}"
    return [
        f"""
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO reviews_projectstate (project_id, token)
            SELECT p, (random() * 9e18)::bigint FROM (SELECT DISTINCT {project.format(row='r')} AS p FROM changed r) found
            WHERE p IS NOT NULL ORDER BY p
            ON CONFLICT (project_id) DO UPDATE SET token = excluded.token;
            RETURN NULL;
        END $$""",
        f"""
        CREATE TRIGGER {function} AFTER {event} ON {table} REFERENCING {transition} AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
    ]


def create_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for table, project in TABLES.items():
        for event in EVENTS:
            if vendor == "postgresql":
                for statement in _postgresql(table, project, event):
                    schema_editor.execute(statement)
            elif vendor == "sqlite":
                schema_editor.execute(_sqlite(table, project, event))
            else:
                raise NotImplementedError(f"no state triggers for {vendor}: cached figures would go stale")


def drop_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        for event in EVENTS:
            name = f"{table}_state_{event.lower()}"
            if vendor == "postgresql":
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("reviews", "0015_queue_needs_expert")]

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
