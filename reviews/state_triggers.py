"""The triggers that change a project's state token (reviews.models.ProjectState) on every write to its data.

SQLite: a row trigger per table and kind of write. PostgreSQL: a statement trigger per table and kind of write
over its transition table, so a bulk insert of 100,000 samples changes the token once, not 100,000 times.

`create` is idempotent and runs after every `migrate` (ReviewsConfig.ready), not only in the migration that
introduced it: on SQLite, a later migration that alters one of these tables rebuilds it, which drops its
triggers, and the cached figures would then go stale without a word.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

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


def names() -> list[tuple[str, str]]:
    """(table, trigger name) of every trigger."""
    return [(table, f"{table}_state_{event.lower()}") for table in TABLES for event in EVENTS]


def _sqlite(table: str, project: str, event: str) -> list[str]:
    row = "OLD" if event == "DELETE" else "NEW"
    return [
        f"""
        CREATE TRIGGER IF NOT EXISTS {table}_state_{event.lower()} AFTER {event} ON {table} FOR EACH ROW BEGIN
            INSERT INTO reviews_projectstate (project_id, token)
            SELECT p, random() FROM (SELECT {project.format(row=row)} AS p) WHERE p IS NOT NULL
            ON CONFLICT (project_id) DO UPDATE SET token = random();
        END"""
    ]


def _postgresql(table: str, project: str, event: str) -> list[str]:
    transition = "OLD TABLE" if event == "DELETE" else "NEW TABLE"
    function = f"{table}_state_{event.lower()}"
    return [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO reviews_projectstate (project_id, token)
            SELECT p, (random() * 9e18)::bigint FROM (SELECT DISTINCT {project.format(row="r")} AS p FROM changed r) found
            WHERE p IS NOT NULL ORDER BY p
            ON CONFLICT (project_id) DO UPDATE SET token = excluded.token;
            RETURN NULL;
        END $$""",
        f"""
        CREATE OR REPLACE TRIGGER {function} AFTER {event} ON {table} REFERENCING {transition} AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
    ]


def create(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers that are missing (all of them are replaced on PostgreSQL, which is the same)."""
    statements = {"postgresql": _postgresql, "sqlite": _sqlite}.get(connection.vendor)
    if statements is None:
        raise NotImplementedError(f"no state triggers for {connection.vendor}: cached figures would go stale")
    with connection.cursor() as cursor:
        for table, project in TABLES.items():
            for event in EVENTS:
                for statement in statements(table, project, event):
                    cursor.execute(statement)


def drop(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for table, name in names():
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
