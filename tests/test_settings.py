"""Production mode refuses to start half-configured, and passes Django's deployment checks when configured.

Each test runs the site in a fresh Python (5-15 s, mostly importing the stack on one core). The commands are
independent, so they all start with the module, two at a time, and each test waits for its own and checks it.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRET = "a-long-random-secret-key-for-the-deploy-check-0123456789-abcdefghijklmnop"


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


def no_secret_key(tmp_path: Path) -> subprocess.CompletedProcess:
    return manage("check", DEBUG="0", ALLOWED_HOSTS="memalign.example.com", DATA_DIR=str(tmp_path))


def no_allowed_hosts(tmp_path: Path) -> subprocess.CompletedProcess:
    return manage("check", DEBUG="0", SECRET_KEY="k" * 60, DATA_DIR=str(tmp_path))


def unclear_debug(tmp_path: Path) -> subprocess.CompletedProcess:
    return manage("check", DEBUG="yes", DATA_DIR=str(tmp_path))


def check_deploy(tmp_path: Path) -> subprocess.CompletedProcess:
    return manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="memalign.example.com",
        DATA_DIR=str(tmp_path),
    )


def demo_in_production(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    env = {"DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "x.example.com", "DATA_DIR": str(tmp_path)}
    return tmp_path, manage("migrate", "-v", "0", **env), manage("seed_demo", **env)


def bad_settings(tmp_path: Path) -> subprocess.CompletedProcess:
    return manage(
        "check",
        DEBUG="1",
        DATA_DIR=str(tmp_path),
        MEMALIGN_DISTILL_BATCH_SIZE="many",
        MEMALIGN_PROVIDER="gpt",
        MEMALIGN_API_RATE="lots",
        CHROMA_URL="chroma:8000",
        MEMALIGN_IMPORT_MAX_ROWS="0",
    )


def misconfigured_web_server(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")
    }
    env.update(DJANGO_SETTINGS_MODULE="memalign_site.settings", DEBUG="0", ALLOWED_HOSTS="x.example.com")
    env["DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-c", "import memalign_site.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def max_rows_from_the_environment(tmp_path: Path) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.MEMALIGN_IMPORT_MAX_ROWS)"
    return manage("shell", "-c", code, DEBUG="1", DATA_DIR=str(tmp_path), MEMALIGN_IMPORT_MAX_ROWS="1234")


COMMANDS: list[Callable[[Path], Any]] = [
    demo_in_production,  # the longest (a migration, then the seed): first
    bad_settings,
    check_deploy,
    no_secret_key,
    no_allowed_hosts,
    unclear_debug,
    misconfigured_web_server,
    max_rows_from_the_environment,
]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Start every command of the module (two at a time, each with a data folder of its own); return a function
    that waits for one command's result."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: dict[Callable[[Path], Any], Future] = {
            command: pool.submit(command, tmp_path_factory.mktemp(command.__name__)) for command in COMMANDS
        }
        yield lambda command: futures[command].result()
        for future in futures.values():
            future.cancel()  # a test run with -k: what no test asked for does not start


def test_production_without_secret_key_fails_clearly(ran):
    result = ran(no_secret_key)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_without_allowed_hosts_fails_clearly(ran):
    result = ran(no_allowed_hosts)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_debug_must_be_a_clear_boolean(ran):
    result = ran(unclear_debug)
    assert result.returncode != 0
    assert "DEBUG must be 0 or 1" in result.stderr


def test_check_deploy_is_clean_in_production_mode(ran):
    result = ran(check_deploy)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_demo_account_is_never_created_in_production(ran):
    data_dir, migrated, result = ran(demo_in_production)
    assert migrated.returncode == 0
    assert result.returncode != 0
    assert "never created in production" in result.stderr
    assert not (data_dir / "demo-password").exists()


def test_check_names_every_bad_setting_with_its_id(ran):
    result = ran(bad_settings)
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


def test_the_web_server_refuses_to_start_misconfigured(ran):
    result = ran(misconfigured_web_server)
    assert result.returncode != 0
    assert "ImproperlyConfigured: MemAlign is misconfigured" in result.stderr
    assert "(memalign.E003) SECRET_KEY is not set" in result.stderr


def test_import_max_rows_is_read_from_the_environment(ran):
    result = ran(max_rows_from_the_environment)
    assert result.stdout.strip().splitlines()[-1] == "1234", result.stderr
