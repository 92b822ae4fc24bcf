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
