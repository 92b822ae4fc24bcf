"""Benchmark: the project overview, the review queue and the review page at 100,000 samples.

    .venv/bin/python bench/pages_at_scale.py                         # SQLite in a throwaway data folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/pages_at_scale.py
    .venv/bin/python bench/pages_at_scale.py --samples 20000 --requests 20 --profile

It builds a project in its own throwaway database (bench/_harness.py's Environment: the configured database is
never touched): `--samples` samples bulk-created with a judge verdict, about half of them reviewed — three
reviewers (60 %, 30 % and 5 % of the samples, so many samples have two or three reviews), a fifth of the labels
disagreeing with the judge and carrying a critique — and the teaching order stored for every sample. Then it
times each page through Django's test Client, logged in as the reviewer who is halfway (settings.DEBUG off, as
in production): `--warmup` requests, then `--requests` timed ones, p50 / p95. The review page is timed over
distinct samples of that reviewer's "needs my review" queue (opening one from there claims it, a write, as in
use). `--profile` prints, per page, the number of SQL queries and the slowest ones of one request; `--cprofile N`
prints, per page, the N functions with the most cumulative time (cProfile) over a second pass of its timed requests.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import WORDS, Environment, footer, header, percentile  # noqa: E402


def build(samples: int, seed: int = 7):
    """Create the project, its members, samples, feedback and teaching order; return (project, reviewer, owner)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from reviews.models import Feedback, Membership, QueuePriority, Role, Sample
    from reviews.projects import create_project

    rng = random.Random(seed)
    User = get_user_model()
    owner = User.objects.create_user("bench-owner")
    reviewers = [User.objects.create_user(f"bench-reviewer-{i}") for i in range(3)]
    project = create_project(owner, name="Bench", criterion="Is the reply's tone right?", label_kind="pass_fail")
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.REVIEWER) for u in reviewers])

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize()

    rows = [
        Sample(
            project=project,
            external_id=f"bench-{n:07d}",
            inputs={"customer_message": text(10, 30) + "?", "channel": rng.choice(["email", "chat"])},
            outputs=text(30, 90) + ".",
            judge_value=rng.choice(["pass", "fail"]),
            judge_rationale=text(10, 16),
            metadata={"batch": n // 1000},
        )
        for n in range(samples)
    ]
    Sample.objects.bulk_create(rows, batch_size=2_000)
    ids = list(Sample.objects.filter(project=project).order_by("id").values_list("id", "judge_value"))

    now = timezone.now()
    feedback = []
    for index, user in enumerate(reviewers):
        share = (0.6, 0.3, 0.05)[index]  # one busy reviewer, one halfway, one just started
        for sample_id, judge in rng.sample(ids, int(len(ids) * share)):
            label = judge if rng.random() < 0.8 else ("fail" if judge == "pass" else "pass")
            feedback.append(
                Feedback(
                    project=project,
                    sample_id=sample_id,
                    author=user,
                    label=label,
                    critique="" if label == judge else text(8, 24) + ".",
                    agrees_with_judge=label == judge,
                )
            )
    # Review times spread over a month, as a team's pace would: auto_now is held off while they are written.
    rng.shuffle(feedback)
    for k, row in enumerate(feedback):
        row.created_at = row.updated_at = now - timedelta(seconds=30 * k)
    fields = [Feedback._meta.get_field("created_at"), Feedback._meta.get_field("updated_at")]
    saved = [(f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False  # type: ignore[attr-defined]
    try:
        Feedback.objects.bulk_create(feedback, batch_size=5_000)
    finally:
        for f, (auto_now, auto_now_add) in zip(fields, saved):
            f.auto_now, f.auto_now_add = auto_now, auto_now_add  # type: ignore[attr-defined]

    ranked = [sample_id for sample_id, _ in ids]
    rng.shuffle(ranked)
    QueuePriority.objects.bulk_create(
        [
            QueuePriority(sample_id=sample_id, project=project, rank=rank, score=1.0, audit=rank % 5 == 4)
            for rank, sample_id in enumerate(ranked)
        ],
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        # What autovacuum does to PostgreSQL's tables soon after a bulk load; on SQLite the planner's statistics.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return project, reviewers[1], owner, len(feedback)


def time_page(client, urls, warmup: int, requests: int) -> list[float]:
    """GET each url in turn (cycling): `warmup` untimed, then `requests` timed; return the timings in seconds."""
    timings = []
    for n in range(warmup + requests):
        url = urls[n % len(urls)]
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        if n >= warmup:
            timings.append(elapsed)
    return timings


def profile(client, url: str, top: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))
    total = sum(float(q["time"]) for q in queries) * 1000
    print(f"    {url}: {len(queries)} queries, {total:.1f} ms in the database")
    for q in queries[:top]:
        print(f"      {float(q['time']) * 1000:6.1f} ms  {q['sql'][:220]}")


def python_profile(client, urls, requests: int, top: int) -> None:
    """cProfile over `requests` GETs of the urls: where a page's time goes in Python (the ORM, templates, ...)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(requests):
        client.get(urls[n % len(urls)])
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="print each page's queries (one request)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="print each page's N costliest functions")
    args = parser.parse_args()

    with Environment("pages", chroma=False) as env:
        header("pages at scale: overview, queue, review page", env)
        from django.conf import settings
        from django.test import Client

        from reviews import queue

        started = time.perf_counter()
        project, reviewer, owner, feedback_count = build(args.samples)
        print(
            f"built {args.samples:,} samples, {feedback_count:,} feedback from 3 reviewers, the teaching order "
            f"stored, in {time.perf_counter() - started:.0f} s"
        )
        settings.DEBUG = False  # no query log, as in production
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        todo = queue.samples(project, reviewer, queue.QueueQuery(filter="todo", order=queue.default_order(project)))
        to_review = list(todo.values_list("id", flat=True)[: args.warmup + args.requests])
        base = f"/p/{project.slug}"
        pages = [
            ("overview", [f"{base}/"]),
            ("queue", [f"{base}/queue/"]),
            ("review page", [f"{base}/samples/{i}/" for i in to_review]),
        ]
        client = Client()
        client.force_login(reviewer)
        print(
            f"\nlogged in as {reviewer.username} (reviewer, {int(args.samples * 0.3):,} reviewed); "
            f"{args.warmup} warm-up then {args.requests} timed requests per page:"
        )
        for name, urls in pages:
            timings = [t * 1000 for t in time_page(client, urls, args.warmup, args.requests)]
            print(f"  {name:12s}  p50 {percentile(timings, 50):7.1f} ms   p95 {percentile(timings, 95):7.1f} ms")
        if args.profile:
            print("\nqueries of one request per page:")
            for name, urls in pages:
                profile(client, urls[0] if name != "review page" else f"{base}/samples/{to_review[-1]}/", 8)
        if args.cprofile:
            for name, urls in pages:
                print(f"\ncProfile of {name}, {args.requests} requests, by cumulative time:")
                python_profile(client, urls, args.requests, args.cprofile)
        footer()


if __name__ == "__main__":
    main()
