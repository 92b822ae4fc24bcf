"""Benchmark: background embedding of imported samples, FeedbackQA-length texts, through a real Celery worker.

    .venv/bin/python bench/background_embedding.py
    .venv/bin/python bench/background_embedding.py --count 500 --workers one --concurrency 1

The path measured is the product's: reviews.importers.import_samples writes `--count` FeedbackQA samples
(question as the input, answer passage as the output), its signal queues memory.tasks.embed_samples, and a
`celery worker` subprocess embeds the samples that have no vector, memory.vectors.BATCH at a time (each
sample's parts, question and passage, go through one embed() call per batch, sorted by length, batches of 16
for the model), and stores the vectors. The clock starts when the import returns and stops when no sample of the
project is left without a vector. Texts per second counts the parts embedded (two per sample). The target
(issue 7, item 4) is at least 40 FeedbackQA-length texts per second on this 2-core machine.

The figure that counts is distinct texts per second: a part that several samples share is embedded once. Then
the distinct texts are embedded in this process (the workers idle), alternately by the code path before issue 23
(kept here as embed_before) and by today's memory.embeddings.embed, `--rounds` times each: the speed-up of the
model path, measured in one run under the same load.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Environment, add_worker_options, footer, header, review_records  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000, help="samples imported (default 1,000)")
    add_worker_options(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the in-process comparison")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    records, criterion, labels, source = review_records(args.count)
    with Environment("embedding", chroma=False) as env:
        if args.workers == "site":
            env.start_site_workers()
        else:
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

        # The model path alone, in this process with the workers idle, on the distinct texts (what the run embeds):
        # the code path before issue 23 (texts sorted by characters, batches of 16, tokenized per batch, tokenizer
        # padding) against today's embed(), alternated so that the machine's load weighs on both alike.
        unique = list(dict.fromkeys(parts))
        timings: dict[str, list[float]] = {"before (issue 23)": [], "now": []}
        for _ in range(args.rounds):
            for name, run in (("before (issue 23)", embed_before), ("now", embed)):
                t0 = time.monotonic()
                run(unique)
                timings[name].append(time.monotonic() - t0)
        best = {name: min(times) for name, times in timings.items()}
        for name, times in timings.items():
            print(
                f"  {len(unique):,} distinct texts in this process, {name}: "
                + ", ".join(f"{len(unique) / t:.1f}" for t in times)
                + f" distinct texts/s (best {len(unique) / best[name]:.1f})"
            )
        print(f"  speed-up of the model path, best against best: {best['before (issue 23)'] / best['now']:.2f}×")
    footer()
    return 0


_session_before = None


def embed_before(texts: list[str]):
    """memory.embeddings.embed as it was before issue 23, kept for comparison: sorted by characters, batches of
    16 texts, each tokenized with the tokenizer's own padding to its longest text, a session whose threads spin."""
    import numpy as np

    from memory.embeddings import DIMENSIONS, MAX_TOKENS, _get_encoder

    global _session_before
    encoder = _get_encoder()
    if _session_before is None:
        import onnxruntime as ort

        from memory.embeddings import model_path

        options = ort.SessionOptions()  # the options of the time: 2 threads that spin while they wait
        options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        _session_before = ort.InferenceSession(
            str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
    tokenizer = encoder.tokenizer_without_limits()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]", length=None)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
    for start in range(0, len(order), 16):
        batch = order[start : start + 16]
        encodings = tokenizer.encode_batch([texts[i] for i in batch])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = _session_before.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        result[batch] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return result


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
