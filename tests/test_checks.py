"""The configuration checks, in process: each bad setting gives its error id, a good configuration none."""

from __future__ import annotations

import pytest

from memalign_site.checks import check_settings, refuse_to_start


def ids() -> list[str]:
    return [message.id for message in check_settings()]


def test_the_test_configuration_is_clean():
    assert ids() == []
    refuse_to_start()  # raises nothing


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("MEMALIGN_PROVIDER", "gpt", "memalign.E005"),
        ("OPENAI_COMPATIBLE_STRUCTURED", "xml", "memalign.E006"),
        ("MEMALIGN_API_RATE", "120 per minute", "memalign.E007"),
        ("CHROMA_URL", "localhost:8000", "memalign.E008"),
        ("CELERY_TASK_SOFT_TIME_LIMIT", 400, "memalign.E009"),
        ("MEMALIGN_LOCK_SECONDS", 60, "memalign.E009"),
        ("MEMALIGN_IMPORT_MAX_ROWS", 0, "memalign.E010"),
        ("AXES_FAILURE_LIMIT", 0, "memalign.E010"),
    ],
)
def test_a_bad_setting_is_an_error_with_its_id(settings, name, value, check_id):
    setattr(settings, name, value)
    assert ids() == [check_id]


@pytest.mark.parametrize("rate", ["120/min", "5000/hour", "10/s", "100/day"])
def test_the_api_rates_the_throttle_reads_pass(settings, rate):
    settings.MEMALIGN_API_RATE = rate
    assert ids() == []


def test_anthropic_without_a_key_is_a_warning(settings):
    settings.MEMALIGN_PROVIDER, settings.ANTHROPIC_API_KEY = "anthropic", ""
    [warning] = check_settings()
    assert (warning.id, warning.is_serious()) == ("memalign.W001", False)
    refuse_to_start()  # a warning does not stop the site


def test_values_the_settings_noted_are_reported_and_stop_the_site(settings):
    settings.MEMALIGN_SETTINGS_ERRORS = [("memalign.E002", "MEMALIGN_LOCK_SECONDS must be an integer, not 'x'.")]
    assert ids() == ["memalign.E002"]
    with pytest.raises(Exception, match=r"misconfigured:\n.*memalign.E002.*MEMALIGN_LOCK_SECONDS"):
        refuse_to_start()


def test_a_visibility_timeout_shorter_than_a_task_is_an_error(settings):
    """An evaluation may run an hour: with a 10-minute visibility timeout a second worker would start it again."""
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 600}
    [error] = check_settings()
    assert error.id == "memalign.E011"
    assert "run_evaluation may run 3660 s" in error.msg
