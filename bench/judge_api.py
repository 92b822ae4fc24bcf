"""Benchmark: the judge API through gunicorn — our own time per call, the first judgment after a restart, and
the run path in the same run (issue 23).

    .venv/bin/python bench/judge_api.py                          # 10,000 examples, 1,200 principles
    .venv/bin/python bench/judge_api.py --requests 50 --profile  # plus a cProfile of the endpoint, in process

One throwaway environment (bench/_harness.py): a project on the Anthropic provider holding --stored reviewed
examples (sample and feedback rows, Chroma entries with random unit vectors, as bench/judge_runs.py makes them)
and --principles active principles (written as a memory version, over the working-memory budget, so the budget
choice runs), whose vectors are computed as the background task does after a version is written. A fake
Messages API (tests/fake_anthropic.py) answers at once, in this process; it times how long it takes with each
request, and "our own time" is a call's time at the client minus that.

1. gunicorn (`memalign_site.wsgi`, --workers 2) is started; once a worker answers a cheap request, the first two
   judgments are timed: the cost of a restart (a judgment that lands on a worker still booting waits for it).
2. --requests judge calls, one at a time, each a different item (`POST /api/v1/projects/{slug}/judge`),
   after one warm-up call per gunicorn worker: p50 and p95 of the total and of our own time.
3. The run path: a run over --judged unreviewed samples judged in this process chunk by chunk
   (judging.runs.judge_chunk) against the same fake model: wall time per verdict.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, Environment, footer, header, percentile, wait_for  # noqa: E402

from bench.judge_runs import make_project, users  # noqa: E402
from tests.fake_anthropic import FakeAnthropic  # noqa: E402


class TimedFake(FakeAnthropic):
    """The fake model, noting how long it spent on each request (parsing, answering, the simulated cache)."""

    def __init__(self) -> None:
        super().__init__(latency=0.0)
        self.durations: list[float] = []

    def handle(self, method, path, headers, raw):
        started = time.perf_counter()
        try:
            return super().handle(method, path, headers, raw)
        finally:
            with self._lock:
                self.durations.append(time.perf_counter() - started)


def item(i: int) -> dict:
    return {
        "inputs": {"question": f"Customer {i} writes again: where is parcel {i * 13 % 7919}? It was due on Monday."},
        "outputs": f"Reply {i}: your parcel left the depot today and should arrive within two days.",
    }


def start_gunicorn(env: Environment, port: int, extra: dict[str, str]) -> subprocess.Popen:
    assert env.data_dir is not None
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "memalign_site.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "600",  # the first judgment before principle vectors were stored took longer than the default 30 s
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": env.database_url, **extra},
        stdout=(env.data_dir / "gunicorn.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    env.workers.append(process)  # stopped with the environment, also after an error

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: see {env.data_dir}/gunicorn.log")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(answers, 60, "gunicorn to listen")
    return process


def stop_gunicorn(env: Environment, process: subprocess.Popen) -> None:
    from memalign_site.launcher import stop

    stop([process], timeout=20)
    env.workers.remove(process)


def write_version_and_vectors(project) -> None:
    """What distillation leaves behind: a memory version, then (in the background) the principles' vectors."""
    from memory import principle_vectors, principles, versions
    from memory.models import MemoryVersion

    with principles.changing(project):  # a version is written inside the writer lock and a transaction
        versions.new_version(project, MemoryVersion.Trigger.MANUAL, summary="bench")
    started = time.monotonic()
    count = principle_vectors.embed_missing(project)
    print(f"  principle vectors stored in the background: {count:,} in {time.monotonic() - started:.1f} s")


def profile(client, url: str, token: str, count: int) -> None:
    """cProfile of the endpoint in this process (Django's test client, the same view and code)."""
    profiler = cProfile.Profile()
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(count):
        if i == 1:
            profiler.enable()  # the first call warms the caches
        response = client.post(url, item(900_000 + i), content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    print(f"  cProfile of {count - 1} calls in process (cumulative):")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[:70]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--principles", type=int, default=1_200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--judged", type=int, default=200, help="unreviewed samples judged by the run path")
    parser.add_argument("--profile", action="store_true", help="also profile the endpoint in process")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request

    with TimedFake() as fake:
        # The token's rate limit is lifted: at 0 ms per model call 200 calls come faster than the default 120/min.
        model_env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.url, "MEMALIGN_API_RATE": "100000/min"}
        with Environment("judge-api", env=model_env, keep=args.keep) as env:
            from api.tokens import create_token
            from judging import runs
            from memalign_site.launcher import free_port

            header("judge API through gunicorn, fake model at 0 ms", env)
            owner, reviewer = users()
            started = time.monotonic()
            project = make_project(
                owner, reviewer, args.stored + args.judged, args.stored, args.principles, "anthropic"
            )
            print(
                f"  project: {args.stored:,} reviewed examples, {args.principles:,} principles (principle budget "
                f"{project.principle_budget_tokens:,} tokens), k={project.retrieval_k}; built in "
                f"{time.monotonic() - started:.0f} s"
            )
            write_version_and_vectors(project)
            _, token = create_token(owner, "bench")
            port = free_port()
            url = f"/api/v1/projects/{project.slug}/judge"
            headers = {"Authorization": f"Bearer {token}"}

            started = time.monotonic()
            gunicorn = start_gunicorn(env, port, model_env)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as client:
                # A worker answers once it has booted (Django and the apps imported): a cheap request, refused.
                client.get("/api/v1/projects", headers={"Authorization": "Bearer none"})
                print(f"  gunicorn started, a worker answering after {time.monotonic() - started:.1f} s")
                firsts = []
                for i in range(2):  # one per gunicorn worker, most likely: each is a fresh process
                    t = time.perf_counter()
                    response = client.post(url, json=item(800_000 + i))
                    firsts.append(time.perf_counter() - t)
                    assert response.status_code == 200, response.text
                print(
                    "  first judgments after a (re)start of gunicorn (2 workers): "
                    + ", ".join(f"{s:.2f} s" for s in firsts)
                )
                for i in range(4):  # any worker still cold gets its first call here
                    client.post(url, json=item(810_000 + i))
                totals, own = [], []
                for i in range(args.requests):
                    fake.durations.clear()
                    t = time.perf_counter()
                    response = client.post(url, json=item(i))
                    total = time.perf_counter() - t
                    assert response.status_code == 200, response.text
                    assert len(fake.durations) == 1, "one model call per judgment"
                    totals.append(total)
                    own.append(total - fake.durations[0])
                    model_time = fake.durations[0]
                ms = lambda values, q: percentile(values, q) * 1000  # noqa: E731
                print(
                    f"  {args.requests} judge calls, one at a time: total p50 {ms(totals, 50):.1f} ms, p95 "
                    f"{ms(totals, 95):.1f} ms; our own time (total minus the fake model's) p50 {ms(own, 50):.1f} ms, "
                    f"p95 {ms(own, 95):.1f} ms; the fake model's last: {model_time * 1000:.1f} ms"
                )
            stop_gunicorn(env, gunicorn)
            sys.stdout.flush()

            run = runs.start(project, owner, "unreviewed", in_process=True)
            fake.durations.clear()
            per_verdict = []
            started = time.monotonic()
            for index in range(run.chunk_count):
                t = time.perf_counter()
                runs.judge_chunk(run.pk, index)
                per_verdict.append((time.perf_counter() - t) / len(run.chunk(index)))
            total = time.monotonic() - started
            run.refresh_from_db()
            print(
                f"  run path in the same run: {run.done:,} verdicts ({run.failed} failed) in {total:.1f} s, chunks of "
                f"{runs.CHUNK_SIZE}; per verdict p50 {percentile(per_verdict, 50) * 1000:.1f} ms, p95 "
                f"{percentile(per_verdict, 95) * 1000:.1f} ms (the fake model's share: "
                f"{sum(fake.durations) / max(run.done, 1) * 1000:.1f} ms per verdict, calls overlapping)"
            )
            if args.profile:
                from django.test import Client

                profile(Client(HTTP_HOST="127.0.0.1"), url, token, args.requests // 4 + 1)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
