"""Benchmark: aligned-judge runs — memory overhead per verdict, throughput against a slow fake model, scale.

    .venv/bin/python bench/judge_runs.py                       # all three phases
    .venv/bin/python bench/judge_runs.py --phases overhead     # some of them

Phases (each in its own throwaway environment, bench/_harness.py):
- overhead:   everything but the provider: a run over --judged samples of a project holding --stored reviewed
              examples and --principles active principles, judged in this process chunk by chunk
              (judging.runs.judge_chunk) with the offline provider, whose vote over the retrieved examples
              takes microseconds. Per chunk: wall time / samples in it (retrieval with the batched query
              embedding, working memory, the vote, storing the verdicts, the recount). Then again with the
              other core kept busy by a spinning process. Stored examples are product-shaped rows (sample
              and feedback in the database, an entry in Chroma) whose vectors are random unit vectors:
              embedding 10,000 texts for real would take minutes on two cores and changes nothing here.
- throughput: a fake Messages API (tests/fake_anthropic.py) answering after --latency seconds; runs through
              real `celery worker` subprocesses (prefork, 2 processes each, as `make run` starts): one worker
              at project concurrency 8, two workers at 16, two workers at 8. The server counts the most
              requests it was answering at once.
- scale:      one worker (offline provider) judging 1,000 then 10,000 samples; the time from start to the
              run's end, to see that it grows no faster than linearly.
In the throughput and scale phases the samples are embedded first, as the background task does after an
import (memory.vectors.embed_pending), and that time is reported on its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, Environment, footer, header, percentile  # noqa: E402

WORDS = ("parcel", "refund", "invoice", "password", "delivery", "warranty", "discount", "account", "booking", "receipt")


def sample_text(i: int) -> tuple[dict, str]:
    word = WORDS[i % len(WORDS)]
    return {
        "question": f"Customer {i} asks about their {word}: order {i * 7 % 9973} is late."
    }, f"Reply {i}: we are sorry about your {word}."


def make_project(owner, reviewer, samples: int, stored: int, principles: int, provider: str, concurrency: int = 8):
    """A project with `samples` samples, the first `stored` of them reviewed and in Chroma; `principles` principles."""
    from memory import episodic
    from memory.models import Principle
    from reviews.models import Feedback, Membership, Project, Sample

    project = Project.objects.create(
        name=f"bench {time.monotonic_ns()}",
        slug=f"bench-{time.monotonic_ns()}",
        criterion="Is the reply helpful?",
        provider=provider,
        provider_concurrency=concurrency,
    )
    Membership.objects.create(project=project, user=owner, role="owner")
    Membership.objects.create(project=project, user=reviewer, role="reviewer")
    rows = []
    for i in range(samples):
        inputs, output = sample_text(i)
        rows.append(Sample(project=project, external_id=f"b{i}", inputs=inputs, outputs=output, judge_value="pass"))
    created = Sample.objects.bulk_create(rows, batch_size=2_000)
    created = list(Sample.objects.filter(project=project).order_by("id"))
    feedback = Feedback.objects.bulk_create(
        [
            Feedback(
                project=project, sample=s, author=reviewer, label="fail" if i % 3 else "pass", critique=f"Critique {i}."
            )
            for i, s in enumerate(created[:stored])
        ],
        batch_size=2_000,
    )
    feedback = list(Feedback.objects.filter(project=project).order_by("id"))
    rng = np.random.default_rng(5)
    store = episodic.collection(project.pk)
    for start in range(0, len(feedback), 1_000):
        part = feedback[start : start + 1_000]
        vectors = rng.normal(size=(len(part), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(
            ids=[str(f.pk) for f in part],
            embeddings=vectors.tolist(),
            metadatas=[
                {
                    "sample_id": f.sample_id,
                    "label": f.label,
                    "author_id": f.author_id,
                    "project_id": project.pk,
                    "revision": 1,
                }
                for f in part
            ],
        )
    Principle.objects.bulk_create(
        [
            Principle(
                project=project,
                text=f"Principle {i}: when the {WORDS[i % 10]} is late, say when it arrives. " * 2,
                origin="manual",
            )
            for i in range(principles)
        ]
    )
    return project


def embed_all(project) -> str:
    """Embed the project's samples as the background task does after an import; return what it took."""
    from memory import vectors

    started, embedded = time.monotonic(), 0
    while count := vectors.embed_pending(project):
        embedded += count
    elapsed = time.monotonic() - started
    return (
        f"{embedded:,} samples embedded beforehand in {elapsed:.1f} s ({embedded / max(elapsed, 1e-9):.0f} per second)"
    )


def users():
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return User.objects.create_user(f"owner{time.monotonic_ns()}"), User.objects.create_user(
        f"reviewer{time.monotonic_ns()}"
    )


def overhead(args) -> None:
    with Environment("judge-overhead", keep=args.keep) as env:
        from judging import runs

        header("aligned judge: memory overhead per verdict (offline provider, in process)", env)
        owner, reviewer = users()
        project = make_project(owner, reviewer, args.stored + args.judged, args.stored, args.principles, "offline")
        print(
            f"  {args.stored:,} stored examples, {args.principles:,} principles, judging {args.judged:,} unreviewed samples "
            f"in chunks of {runs.CHUNK_SIZE}; retrieval k={project.retrieval_k}"
        )
        from memory import vectors

        started = time.monotonic()
        embedded = 0
        while count := vectors.embed_pending(project):  # what the background task does after an import
            embedded += count
        print(
            f"  samples embedded beforehand (as embed_samples does after import): {embedded:,} in "
            f"{time.monotonic() - started:.1f} s ({embedded / (time.monotonic() - started):.0f} per second, short texts)"
        )
        for busy in (False, True):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                run = runs.start(project, owner, "unreviewed", in_process=True)
                per_sample = []
                started = time.monotonic()
                for index in range(run.chunk_count):
                    t = time.perf_counter()
                    runs.judge_chunk(run.pk, index)
                    per_sample.append((time.perf_counter() - t) / len(run.chunk(index)))
                total = time.monotonic() - started
            finally:
                if spinner:
                    spinner.kill()
                    spinner.wait()
            run.refresh_from_db()
            label = "other core busy" if busy else "at rest"
            print(
                f"  {label}: {run.done:,} verdicts in {total:.1f} s; per verdict (chunk time / chunk size, over "
                f"{len(per_sample)} chunks): p50 {percentile(per_sample, 50) * 1000:.1f} ms, p95 {percentile(per_sample, 95) * 1000:.1f} ms, "
                f"max {max(per_sample) * 1000:.1f} ms"
            )
            sys.stdout.flush()
            from judging.models import JudgeRun

            JudgeRun.objects.filter(pk=run.pk).delete()  # the second pass judges the same samples again


def throughput(args) -> None:
    from tests.fake_anthropic import FakeAnthropic

    with FakeAnthropic(latency=args.latency) as fake:
        env_vars = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.url}
        with Environment("judge-throughput", env=env_vars, keep=args.keep) as env:
            from judging import runs
            from judging.models import JudgeRun

            env.start_worker(concurrency=2)
            header(f"aligned judge: throughput against a fake model answering in {args.latency:g} s", env)
            owner, reviewer = users()
            for workers, concurrency, samples in (
                (1, 8, args.samples),
                (2, 16, 2 * args.samples),
                (2, 8, args.samples),
            ):
                while len(env.workers) < workers:
                    env.start_worker(concurrency=2)
                project = make_project(owner, reviewer, samples, 20, 20, "anthropic", concurrency)
                embed_all(project)
                fake.reset()
                started = time.monotonic()
                run = runs.start(project, owner, "unreviewed")
                while not JudgeRun.objects.get(pk=run.pk).finished:
                    time.sleep(0.2)
                elapsed = time.monotonic() - started
                run.refresh_from_db()
                print(
                    f"  {workers} worker(s), project concurrency {concurrency}: {run.done:,} verdicts ({run.failed} failed) in "
                    f"{elapsed:.1f} s = {run.done / elapsed:.2f} verdicts/s (ideal {concurrency / args.latency:g}); "
                    f"most requests in flight at the server: {fake.max_in_flight}"
                )
                sys.stdout.flush()


def scale(args) -> None:
    with Environment("judge-scale", keep=args.keep) as env:
        from judging import runs
        from judging.models import JudgeRun

        env.start_worker(concurrency=2)
        header("aligned judge: run time against run size (offline provider, one worker)", env)
        owner, reviewer = users()
        for size in args.sizes:
            project = make_project(owner, reviewer, size, 200, 20, "offline")
            print(f"  {size:,} samples: {embed_all(project)}")
            started = time.monotonic()
            run = runs.start(project, owner, "all")
            while not JudgeRun.objects.get(pk=run.pk).finished:
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            run.refresh_from_db()
            print(
                f"  {size:,} samples: {run.status}, {run.done:,} verdicts in {elapsed:.1f} s ({size / elapsed:.0f} per second)"
            )
            sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default="overhead,throughput,scale")
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--judged", type=int, default=1_000)
    parser.add_argument("--principles", type=int, default=1_200)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=240, help="samples per throughput run (twice that with 16)")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    phases = [p for p in args.phases.split(",") if p]
    if len(phases) > 1:  # one process per phase: Django is set up once per process, for one environment
        failed = 0
        for phase in phases:
            failed |= subprocess.call([sys.executable, *sys.argv, "--phases", phase], cwd=ROOT)
        return failed
    {"overhead": overhead, "throughput": throughput, "scale": scale}[phases[0]](args)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
