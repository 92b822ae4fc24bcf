"""Benchmark: background embedding of imported samples, FeedbackQA-length texts, through a real Celery worker.

    .venv/bin/python bench/background_embedding.py
    .venv/bin/python bench/background_embedding.py --count 500 --concurrency 1

The path measured is the product's: reviews.importers.import_samples writes `--count` FeedbackQA samples
(question as the input, answer passage as the output), its signal queues memory.tasks.embed_samples, and a
`celery worker` subprocess embeds the samples that have no vector, memory.vectors.BATCH at a time (each
sample's parts, question and passage, go through one embed() call per batch, sorted by length, batches of 16
for the model), and stores the vectors. The clock starts when the import returns and stops when no sample of the
project is left without a vector. Texts per second counts the parts embedded (two per sample). The target
(issue 7, item 4) is at least 40 FeedbackQA-length texts per second on this 2-core machine.

For reference, the same texts are then embedded in this process with memory.embeddings.embed (the worker idle),
the raw speed of the model here.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Environment, footer, header, review_records  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000, help="samples imported (default 1,000)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2, as `make run`)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    records, criterion, labels, source = review_records(args.count)
    with Environment("embedding", chroma=False) as env:
        env.start_worker(concurrency=args.concurrency)
        header("background embedding of imported samples (through the real worker)", env)
        print(f"  samples: {source}; input = the question, output = the answer passage")
        sys.stdout.flush()

        from django.contrib.auth import get_user_model

        from memory import vectors
        from memory.embeddings import embed, token_counts
        from reviews.importers import import_samples
        from reviews.models import Sample
        from reviews.projects import create_project

        owner = get_user_model().objects.create_user("bench-owner")
        project = create_project(
            owner, name="Bench embedding", criterion=criterion, label_kind="categorical", categories=labels
        )
        lines = [
            json.dumps({"external_id": f"e{n}", "inputs": r["inputs"], "outputs": r["outputs"]})
            for n, r in enumerate(records)
        ]
        started = time.monotonic()
        import_samples(project, io.BytesIO("\n".join(lines).encode()), "bench.jsonl", owner)
        imported = time.monotonic()
        page_ms = pages_while_embedding(project, owner, args.timeout)
        seconds = time.monotonic() - imported

        parts = [
            part for sample in Sample.objects.filter(project=project) for part in vectors.sample_vector_parts(sample)
        ]
        tokens = sorted(token_counts(parts))
        distinct = len(set(parts))
        print(
            f"\n{args.count:,} samples imported in {imported - started:.1f} s; {len(parts):,} texts "
            f"(tokens p50 {tokens[len(tokens) // 2]}, p90 {tokens[int(len(tokens) * 0.9)]}, over 256: "
            f"{sum(t > 256 for t in tokens) / len(tokens):.0%}, cut there)"
        )
        print(
            f"  embedded in the background {seconds:.1f} s after the import returned: "
            f"{len(parts) / seconds:.1f} texts/s ({args.count / seconds:.1f} samples/s); target ≥ 40 texts/s"
        )
        print(
            f"  distinct texts: {distinct:,} of {len(parts):,} (a part that samples share is embedded once), "
            f"{distinct / seconds:.1f} distinct texts/s"
        )
        for name, times in page_ms.items():
            times.sort()
            print(
                f"  {name} meanwhile ({len(times)} requests): p50 {times[len(times) // 2]:.0f} ms, "
                f"p95 {times[int(len(times) * 0.95)]:.0f} ms, max {times[-1]:.0f} ms"
            )

        t0 = time.monotonic()
        embed(parts)
        raw = time.monotonic() - t0
        print(
            f"  the same texts in this process, one embed() call, worker idle: {raw:.1f} s, {len(parts) / raw:.1f} texts/s"
        )
    footer()
    return 0


def pages_while_embedding(project, owner, timeout: float) -> dict[str, list[float]]:
    """Until no sample is left without a vector, request the pages a reviewer uses (as the owner, through
    Django's test client in this process, against the database the worker writes to); return their times."""
    from django.test import Client

    from memory import vectors

    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    pages = {"project overview": f"/p/{project.slug}/", "review queue": f"/p/{project.slug}/queue/"}
    times: dict[str, list[float]] = {name: [] for name in pages}
    deadline = time.monotonic() + timeout
    while vectors.pending(project).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"samples still without a vector after {timeout:.0f} s")
        for name, url in pages.items():
            t0 = time.monotonic()
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            times[name].append((time.monotonic() - t0) * 1000)
        time.sleep(0.5)
    return times


if __name__ == "__main__":
    sys.exit(main())
