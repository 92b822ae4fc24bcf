"""Benchmark: import 50,000 generated rows through reviews.importers.import_samples, then time the queue at 100k.

    .venv/bin/python bench/import_50k.py                      # SQLite in a throwaway data folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_50k.py
    .venv/bin/python bench/import_50k.py --rows 20000 --keep  # other sizes; --keep leaves the database

It builds its own database (a test database next to the configured one, created and dropped here: your data is
never touched), prints rows/s, wall time and peak memory for the import and a re-import of the same file, then
grows the project to 100,000 samples with reviews from three reviewers and prints median timings of the
queue: first page, a deep page, the counts, a search, and the whole queue and review pages over HTTP.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import WORDS  # noqa: E402


def setup_django(keep: bool):
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="memalign-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "memalign_site.settings_test"
    import django
    from django.conf import settings

    django.setup()
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = "memalign_bench"
    from django.test.utils import setup_databases, setup_test_environment

    setup_test_environment()
    settings.DEBUG = False  # no query log: it would hold every bulk INSERT and skew the memory figures
    old = setup_databases(verbosity=0, interactive=False, keepdb=keep)
    return old


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(rows: int, start: int = 0, seed: int = 7) -> bytes:
    """Return a JSONL file of `rows` realistic judge outputs (about 0.9 KB each)."""
    rng = random.Random(seed + start)
    out = io.StringIO()
    for n in range(start, start + rows):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 30)))
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90)))
        record = {
            "external_id": f"bench-{n:07d}",
            "inputs": {"customer_message": question.capitalize() + "?", "channel": rng.choice(["email", "chat"])},
            "outputs": answer.capitalize() + ".",
            "judge_value": rng.choice(["pass", "fail"]),
            "judge_rationale": " ".join(rng.choice(WORDS) for _ in range(14)),
            "metadata": {"batch": n // 1000, "priority": rng.choice(["low", "normal", "high"])},
        }
        out.write(json.dumps(record) + "\n")
    return out.getvalue().encode()


def timed(fn, repeat: int = 7) -> tuple[float, object]:
    """Return the median wall time in ms of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--queue-size", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    old = setup_django(args.keep)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from reviews import queue
    from reviews.importers import import_samples
    from reviews.models import Feedback, Membership, Role, Sample
    from reviews.projects import create_project

    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}"
        + (" (DATABASE_URL set)" if os.environ.get("DATABASE_URL") else " (SQLite default)")
    )
    try:
        User = get_user_model()
        owner = User.objects.create_user("bench-owner")
        reviewers = [User.objects.create_user(f"bench-reviewer-{i}") for i in range(3)]
        project = create_project(owner, name="Bench", criterion="Is the tone right?", label_kind="pass_fail")
        Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.REVIEWER) for u in reviewers])

        data = generate(args.rows)
        if len(data) > settings.MEMALIGN_IMPORT_MAX_BYTES:
            print(f"note: the file ({len(data) / 1e6:.1f} MB) is over MEMALIGN_IMPORT_MAX_BYTES; raised for this run")
            settings.MEMALIGN_IMPORT_MAX_BYTES = len(data)
        gc.collect()
        before = rss_mb()
        progress: list[str] = []
        started = time.perf_counter()
        summary = import_samples(project, io.BytesIO(data), "bench.jsonl", owner, progress=progress.append)
        wall = time.perf_counter() - started
        peak = rss_mb()
        print(
            f"\nimport of {args.rows:,} rows ({len(data) / 1e6:.1f} MB JSONL): {wall:.2f} s wall, "
            f"{args.rows / wall:,.0f} rows/s; peak RSS {peak:.0f} MB (was {before:.0f} MB before the import, "
            f"+{peak - before:.0f} MB); {summary.message()}"
        )
        print(f"  progress messages: {len(progress)} ({progress[0]!r} … {progress[-1]!r})")

        started = time.perf_counter()
        again = import_samples(project, io.BytesIO(data), "bench.jsonl", owner)
        wall = time.perf_counter() - started
        print(f"re-import of the same file: {wall:.2f} s wall, {args.rows / wall:,.0f} rows/s; {again.message()}")
        assert again.created == 0 and Sample.objects.filter(project=project).count() == args.rows

        # Grow to the queue size straight through the ORM (not timed), and review a share of it.
        extra = args.queue_size - args.rows
        if extra > 0:
            import_samples(project, io.BytesIO(generate(extra, start=args.rows)), "bench-more.jsonl", owner)
        ids = list(Sample.objects.filter(project=project).order_by("id").values_list("id", "judge_value"))
        rng = random.Random(3)
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
                        critique="" if label == judge else "The tone misses the customer's worry.",
                        agrees_with_judge=label == judge,
                    )
                )
        Feedback.objects.bulk_create(feedback, batch_size=5_000)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")  # what autovacuum does to a table soon after a bulk load
        total = Sample.objects.filter(project=project).count()
        print(
            f"\nqueue at {total:,} samples, {len(feedback):,} feedback from 3 reviewers "
            f"(the timed reviewer has reviewed {int(len(ids) * 0.3):,}); median of 7 runs:"
        )

        me = reviewers[1]
        todo = queue.QueueQuery(filter="todo")
        last_id = ids[-1][0]
        deep_after = ids[int(len(ids) * 0.9)][0]

        def first_page():
            return queue.page(queue.samples(project, me, todo))

        def deep_page():
            return queue.page(queue.samples(project, me, todo), after=deep_after)

        def deep_page_all():
            return queue.page(queue.samples(project, me, queue.QueueQuery(filter="all")), after=ids[-200][0])

        def previous_page():
            return queue.page(queue.samples(project, me, todo), before=last_id)

        def disagree_page():
            return queue.page(queue.samples(project, me, queue.QueueQuery(filter="disagree")))

        def counts():
            return queue.counts(project, me, todo)

        def counts_search():
            return queue.counts(project, me, queue.QueueQuery(filter="todo", q="escalate manager"))

        def search_page():
            return queue.page(queue.samples(project, me, queue.QueueQuery(filter="todo", q="escalate manager")))

        def neighbours():
            return queue.neighbours(project, me, todo, ids[len(ids) // 2][0])

        for name, fn in [
            ("first page (needs my review)", first_page),
            ("deep page, 90% in (keyset)", deep_page),
            ("deep page, all samples", deep_page_all),
            ("previous page from the end", previous_page),
            ("first page of 'disagree'", disagree_page),
            ("counts of all 6 filters", counts),
            ("counts with a text search", counts_search),
            ("first page of a text search", search_page),
            ("previous/next of one sample", neighbours),
        ]:
            ms, result = timed(fn)
            detail = f"{len(result.items)} rows" if hasattr(result, "items") and not isinstance(result, dict) else ""
            if isinstance(result, dict):
                detail = ", ".join(f"{k} {v:,}" for k, v in result.items())
            print(f"  {name:32s} {ms:8.1f} ms  {detail}")

        client = Client()
        client.force_login(me)
        for name, url in [
            ("GET queue page (HTTP, whole page)", f"/p/{project.slug}/queue/"),
            ("GET deep queue page (HTTP)", f"/p/{project.slug}/queue/?after={deep_after}"),
            ("GET review page (HTTP)", f"/p/{project.slug}/samples/{ids[len(ids) // 2][0]}/"),
        ]:
            ms, response = timed(lambda url=url: client.get(url))
            assert response.status_code == 200, (url, response.status_code)
            print(f"  {name:32s} {ms:8.1f} ms")
        print(f"\npeak RSS of the whole run: {rss_mb():.0f} MB")
    finally:
        from django.test.utils import teardown_databases

        if not args.keep:
            teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
