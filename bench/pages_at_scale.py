"""Benchmark: the server time of the project overview, the queue and the review page at 100,000 samples.

    .venv/bin/python bench/pages_at_scale.py                       # SQLite in a throwaway data folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME .venv/bin/python bench/pages_at_scale.py
    .venv/bin/python bench/pages_at_scale.py --samples 10000 --reviews 2000 --requests 15   # quicker

It builds a project of its own (bulk_create, not timed): `--samples` samples with the judge's verdicts, a teaching
order over all of them (as the memory task stores it, 20% audit slice), `--reviews` reviews by three reviewers
(one busy, one halfway, one starting) with overlap 2, so that some samples have two reviews that disagree, and a
few of those conflicts decided. Then it requests each page with Django's test Client, logged in as the reviewer
in the middle (the overview also as the owner), and prints the server time p50 / p95 per page (and the CPU time
of this process: on a shared machine the wall time also counts waiting for a core), after two warm-up requests each: the first request of a page compiles its templates, and the figures a page caches per
project state are computed there once, as the first visitor after a write would compute them.

After the reads, `--writes` reviews are saved through the site (POST, as a reviewer does) and the overview and
queue requested after each: the time of a page right after a write, when cached figures must be recomputed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Environment, command_line, footer, load_average, machine, percentile  # noqa: E402

WORDS = [
    "refund",
    "order",
    "delivery",
    "account",
    "password",
    "invoice",
    "shipping",
    "broken",
    "late",
    "charge",
    "cancel",
    "upgrade",
    "support",
    "apologise",
    "sorry",
    "thanks",
    "please",
    "weekend",
    "tomorrow",
    "confirm",
    "reference",
    "escalate",
    "manager",
    "policy",
]


def build(samples: int, reviews: int, seed: int = 5):
    """Create the project, its samples, ranking, reviews and decisions; return (project, owner, reviewer, ids)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews import adjudication
    from reviews.models import Feedback, Membership, QueuePriority, Role, Sample
    from reviews.projects import create_project

    rng = random.Random(seed)
    User = get_user_model()
    owner = User.objects.create_user("bench-owner")
    team = [User.objects.create_user(f"bench-reviewer-{i}") for i in range(3)]
    project = create_project(owner, name="Bench pages", criterion="Is the tone right?", label_kind="pass_fail")
    project.reviews_per_sample = 2
    project.save(update_fields=["reviews_per_sample"])
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.REVIEWER) for u in team])

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    Sample.objects.bulk_create(
        (
            Sample(
                project=project,
                external_id=f"s-{n:07d}",
                inputs={"customer_message": text(10, 30).capitalize() + "?", "channel": rng.choice(["email", "chat"])},
                outputs=text(30, 90).capitalize() + ".",
                judge_value=rng.choice(["pass", "fail"]),
                judge_rationale=text(10, 16),
                metadata={"batch": n // 1000},
            )
            for n in range(samples)
        ),
        batch_size=2_000,
    )
    ids = list(Sample.objects.filter(project=project).order_by("id").values_list("id", "judge_value"))
    order = list(range(len(ids)))
    rng.shuffle(order)
    QueuePriority.objects.bulk_create(
        (
            QueuePriority(
                sample_id=ids[n][0], project=project, rank=rank, score=1 - rank / len(ids), audit=rng.random() < 0.2
            )
            for rank, n in enumerate(order)
        ),
        batch_size=5_000,
    )
    # Reviews: each reviewer walks a stretch of the samples; stretches overlap (overlap 2), so 15% of reviews
    # share a sample with another reviewer's, and a fifth of those disagree.
    shares = (0.5, 0.3, 0.2)
    feedback: list[Feedback] = []
    start = 0
    for user, share in zip(team, shares):
        count = int(reviews * share)
        for sample_id, judge in ids[start : start + count]:
            label = judge if rng.random() < 0.8 else ("fail" if judge == "pass" else "pass")
            feedback.append(
                Feedback(
                    project=project,
                    sample=Sample(pk=sample_id, project=project),
                    author=user,
                    label=label,
                    critique="" if label == judge else "The tone misses the customer's worry. " + text(5, 15),
                    agrees_with_judge=label == judge,
                    verdict_shown=rng.random() < 0.5,
                )
            )
        start += int(count * 0.85)
    Feedback.objects.bulk_create(feedback, batch_size=5_000)
    conflicts = list(adjudication.conflicted(project).order_by("id")[:50])
    for sample in conflicts[:20]:
        adjudication.decide(sample, "pass", "Polite and on point: the customer's worry is answered.", owner)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # what autovacuum does to tables soon after a bulk load
    return project, owner, team[1], [i for i, _ in ids]


def timed_gets(client, url: str, requests: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of this process (the view, the template, SQLite's work; not PostgreSQL's) per GET."""
    for _ in range(2):  # warm-up: templates compiled, per-project figures computed once
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    wall, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 200, (url, response.status_code)
    return wall, cpu


def line(name: str, times: list[float], cpu: list[float] | None = None) -> str:
    ms = [t * 1000 for t in times]
    text = f"  {name:44s} p50 {percentile(ms, 50):7.1f} ms   p95 {percentile(ms, 95):7.1f} ms"
    if cpu is not None:
        text += f"   CPU p50 {percentile([c * 1000 for c in cpu], 50):6.1f} ms"
    return text + f"   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--writes", type=int, default=10, help="reviews saved, each followed by the pages")
    args = parser.parse_args()

    with Environment("pages", chroma=False) as env:
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import reverse

        setup_test_environment()  # the test Client's host name is allowed
        settings.DEBUG = False  # no query log
        print(f"command: {command_line()}")
        print(f"machine: {machine()}; {'; '.join(env.notes)}")
        print(f"load average at the start: {load_average()}")
        started = time.perf_counter()
        project, owner, reviewer, ids = build(args.samples, args.reviews)
        print(
            f"built {args.samples:,} samples, {args.reviews:,} reviews by 3 reviewers (overlap 2, some conflicts, "
            f"20 decided) in {time.perf_counter() - started:.0f} s on {connection.vendor}"
        )

        as_reviewer, as_owner = Client(), Client()
        as_reviewer.force_login(reviewer)
        as_owner.force_login(owner)
        slug = project.slug
        middle = ids[len(ids) // 2]
        pages = [
            ("overview (reviewer)", as_reviewer, reverse("project-overview", args=[slug])),
            ("overview (owner)", as_owner, reverse("project-overview", args=[slug])),
            ("queue, needs my review, teaching order", as_reviewer, reverse("sample-queue", args=[slug])),
            ("queue, all, import order", as_reviewer, reverse("sample-queue", args=[slug]) + "?filter=all&order=plain"),
            (
                "queue, deep page (keyset)",
                as_reviewer,
                reverse("sample-queue", args=[slug]) + f"?after={ids[-500]}&order=plain&filter=all",
            ),
            ("review page (needs my review)", as_reviewer, reverse("sample-review", args=[slug, middle])),
            (
                "review page (all, import order)",
                as_reviewer,
                reverse("sample-review", args=[slug, middle]) + "?filter=all&order=plain",
            ),
        ]
        print(
            f"\nserver time per page at {args.samples:,} samples ({connection.vendor}), {args.requests} requests each:"
        )
        for name, client, url in pages:
            print(line(name, *timed_gets(client, url, args.requests)), flush=True)

        if args.writes:
            overview_after, queue_after = [], []
            todo = [i for i in ids[len(ids) // 2 :: 97]][: args.writes]
            for sample_id in todo:
                response = as_reviewer.post(
                    reverse("feedback-save", args=[slug, sample_id]),
                    {"label": "fail", "critique": "Too curt: the refund question is not answered.", "coached": "1"},
                )
                assert response.status_code in (200, 302), response.status_code
                for times, url in (
                    (overview_after, reverse("project-overview", args=[slug])),
                    (queue_after, reverse("sample-queue", args=[slug])),
                ):
                    t0 = time.perf_counter()
                    assert as_reviewer.get(url).status_code == 200
                    times.append(time.perf_counter() - t0)
            print(f"\nthe first request after each of {args.writes} saved reviews (cached figures recomputed):")
            print(line("overview", overview_after))
            print(line("queue", queue_after))
    footer()


if __name__ == "__main__":
    main()
