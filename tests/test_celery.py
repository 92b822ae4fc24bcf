"""A real round trip: a task sent through the real Redis broker to a real worker, its result read back."""

import pytest

from memalign_site.celery import ping
from memalign_site.health import check_worker


@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_a_real_worker(celery_worker):
    result = ping.delay()
    assert result.get(timeout=10) == "pong"
    assert result.successful()


@pytest.mark.django_db(transaction=True)
def test_health_reports_every_part_ok_with_a_worker(celery_worker, client):
    response = client.get("/health/")
    body = response.content.decode()
    assert response.status_code == 200, body
    for part in ("database", "broker", "worker", "chroma"):
        assert f'data-check="{part}" data-ok="true"' in body


def test_worker_check_fails_with_its_reason_when_no_worker_listens(db):
    """Nothing consumes this queue, so the round trip times out and the check says why."""
    with pytest.raises(RuntimeError, match="no worker answered within 1 s"):
        check_worker(queue="memalign-test-nobody-listens", timeout=1)


def test_health_page_lists_failures_with_status_503(db, client, settings):
    settings.CHROMA_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    import memory.episodic as episodic

    episodic._client, saved = None, episodic._client
    try:
        response = client.get("/health/")
    finally:
        episodic._client = saved
    assert response.status_code == 503
    assert 'data-check="chroma" data-ok="false"' in response.content.decode()
