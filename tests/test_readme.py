"""The README's examples, run as written against a live site with the demo project and a real worker.

Every ```sh and ```python block is accounted for: the API examples run (only the site's address and the token
are put in); lines that start services (`make run`, gunicorn, Celery, vLLM) cannot run inside a test, so the
test checks that what they name exists. A wrong slug, a wrong input key or a renamed command fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands

from api import tokens
from reviews.models import Project, Sample

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", README, re.S)
# Placeholders the README's reader replaces with their own: the site's address and their token.
SITE, TOKEN = "http://127.0.0.1:8000", "mla_…"
# Programs of other projects that the README shows how to start; this test cannot install them.
EXTERNAL = {"vllm", "ollama"}


def api_blocks() -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in BLOCKS if "MEMALIGN" in body]


def service_blocks() -> list[str]:
    return [body for kind, body in BLOCKS if kind == "sh" and "MEMALIGN" not in body]


def test_every_block_is_either_run_or_checked():
    assert BLOCKS, "the README has no examples"
    assert len(api_blocks()) + len(service_blocks()) == len(BLOCKS), [k for k, _ in BLOCKS]


def commands_of(line: str) -> list[list[str]]:
    line = line.split("  #")[0].split("\t#")[0].strip()
    if not line or line.startswith("#"):
        return []
    return [shlex.split(part) for part in re.split(r"&&", line)]


def test_the_services_the_readme_starts_exist():
    """Each command that starts a service names a make target, a management command or a program we install."""
    make_targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.M))
    management = set(get_commands())
    for block in service_blocks():
        for line in block.splitlines():
            for words in commands_of(line):
                program = words[0]
                if program == "export" or program in EXTERNAL:
                    continue
                if program == "make":
                    assert words[1] in make_targets, line
                elif program == ".venv/bin/python" and words[1] == "manage.py":
                    assert words[2] in management, line
                else:
                    assert program.startswith(".venv/bin/"), f"no rule for this README line: {line}"
                    assert (ROOT / program).exists() or (Path(sys.executable).parent / Path(program).name).exists(), (
                        line
                    )


def test_every_management_command_the_readme_names_exists():
    named = set(re.findall(r"manage\.py ([a-z_]+)", README))
    assert named, "the README names no management command"
    assert named <= set(get_commands()), named - set(get_commands())


@pytest.fixture
def demo(settings, tmp_path):
    """The demo project exactly as `make run` seeds it, and a token of the demo user."""
    settings.DEBUG = True  # seed_demo refuses production mode
    settings.DATA_DIR = tmp_path
    call_command("seed_demo")
    project = Project.objects.get(slug="customer-support-tone")
    _, raw = tokens.create_token(project.memberships.get(user__username="demo").user, "readme")
    return project, raw


def run_block(kind: str, body: str, site: str, token: str, cwd: Path) -> subprocess.CompletedProcess:
    body = body.replace(SITE, site).replace(TOKEN, token)
    env = {**os.environ, "MEMALIGN": site, "TOKEN": token}
    command = ["bash", "-euo", "pipefail", "-c", body] if kind == "sh" else [sys.executable, "-c", body]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.django_db(transaction=True)
def test_the_api_examples_run_against_the_demo(celery_worker, live_server, demo, tmp_path):
    project, token = demo
    (shell_kind, shell), (python_kind, python) = api_blocks()
    assert shutil.which("curl"), "curl is needed to run the README's examples"
    workdir = tmp_path / "checkout"
    (workdir / "reviews" / "demo").mkdir(parents=True)
    demo_file = ROOT / "reviews" / "demo" / "customer_support_tone.jsonl"
    shutil.copy(demo_file, workdir / "reviews" / "demo")

    shell_result = run_block(shell_kind, shell, live_server.url, token, workdir)

    assert shell_result.returncode == 0, shell_result.stderr
    added = Sample.objects.get(project=project, external_id="t-1")
    demo_keys = set(Sample.objects.get(project=project, external_id="demo-001").inputs)
    assert set(added.inputs) == demo_keys  # the example's sample looks like the demo's own
    assert Sample.objects.filter(project=project).count() == 31  # the demo file again changes nothing
    exported = [json.loads(line) for line in (workdir / "dataset.jsonl").read_text().splitlines()]
    assert {row["external_id"] for row in exported} >= {"demo-001", "t-1"}

    (workdir / "new_model_outputs.jsonl").write_text(
        json.dumps({"external_id": "new-1", "inputs": added.inputs, "outputs": "Your refund is on its way."}) + "\n"
    )
    python_result = run_block(python_kind, python, live_server.url, token, workdir)

    # The thresholds are the reader's: on a fresh demo nobody reviewed yet, so the job fails them (exit 1).
    assert python_result.returncode in (0, 1), python_result.stderr
    assert re.match(r"done: pass rate [\d.]+% on \d+ new outputs, agreement [\d.]+%", python_result.stdout), (
        python_result.stdout
    )
