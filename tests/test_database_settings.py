"""The database connection as the settings make it."""

import pytest
from django.db import connection


@pytest.mark.django_db
def test_postgresql_never_jit_compiles_the_sites_short_queries():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (DATABASE_URL names one in CI); SQLite has no JIT")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
