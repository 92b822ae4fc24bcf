"""Production mode refuses to start half-configured, and passes Django's deployment checks when configured."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**clean, "DJANGO_SETTINGS_MODULE": "memalign_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_secret_key_fails_clearly(tmp_path):
    result = manage("check", DEBUG="0", ALLOWED_HOSTS="memalign.example.com", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_without_allowed_hosts_fails_clearly(tmp_path):
    result = manage("check", DEBUG="0", SECRET_KEY="k" * 60, DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_debug_must_be_a_clear_boolean(tmp_path):
    result = manage("check", DEBUG="yes", DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DEBUG must be 0 or 1" in result.stderr


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    secret = "a-long-random-secret-key-for-the-deploy-check-0123456789-abcdefghijklmnop"
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="memalign.example.com",
        DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_demo_account_is_never_created_in_production(tmp_path):
    secret = "a-long-random-secret-key-for-the-deploy-check-0123456789-abcdefghijklmnop"
    env = {"DEBUG": "0", "SECRET_KEY": secret, "ALLOWED_HOSTS": "x.example.com", "DATA_DIR": str(tmp_path)}
    assert manage("migrate", "-v", "0", **env).returncode == 0
    result = manage("seed_demo", **env)
    assert result.returncode != 0
    assert "never created in production" in result.stderr
    assert not (tmp_path / "demo-password").exists()


def test_check_names_every_bad_setting_with_its_id(tmp_path):
    result = manage(
        "check",
        DEBUG="1",
        DATA_DIR=str(tmp_path),
        MEMALIGN_DISTILL_BATCH_SIZE="many",
        MEMALIGN_PROVIDER="gpt",
        MEMALIGN_API_RATE="lots",
        CHROMA_URL="chroma:8000",
        MEMALIGN_IMPORT_MAX_ROWS="0",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for check_id, words in [
        ("memalign.E002", "MEMALIGN_DISTILL_BATCH_SIZE must be an integer, not 'many'"),
        ("memalign.E005", "MEMALIGN_PROVIDER is 'gpt'"),
        ("memalign.E007", "MEMALIGN_API_RATE is 'lots'"),
        ("memalign.E008", "CHROMA_URL is 'chroma:8000'"),
        ("memalign.E010", "MEMALIGN_IMPORT_MAX_ROWS must be a positive number, not 0"),
    ]:
        assert f"({check_id}) {words}" in result.stderr


def test_the_web_server_refuses_to_start_misconfigured(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")
    }
    env.update(DJANGO_SETTINGS_MODULE="memalign_site.settings", DEBUG="0", ALLOWED_HOSTS="x.example.com")
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import memalign_site.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: MemAlign is misconfigured" in result.stderr
    assert "(memalign.E003) SECRET_KEY is not set" in result.stderr


def test_import_max_rows_is_read_from_the_environment(tmp_path):
    code = "from django.conf import settings; print(settings.MEMALIGN_IMPORT_MAX_ROWS)"
    result = manage("shell", "-c", code, DEBUG="1", DATA_DIR=str(tmp_path), MEMALIGN_IMPORT_MAX_ROWS="1234")
    assert result.stdout.strip().splitlines()[-1] == "1234", result.stderr
