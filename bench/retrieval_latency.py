"""Benchmark: top-5 episodic retrieval latency at 1,000 / 10,000 / 100,000 examples in one project's collection.

    .venv/bin/python bench/retrieval_latency.py
    .venv/bin/python bench/retrieval_latency.py --sizes 1000,10000 --queries 100

Measured through the product's code against a `chroma run` server (the store `make run` uses), in one
collection made by memory.episodic.collection(), i.e. with the product's embedding function and its
HNSW cosine configuration:
- "text":          memory.episodic.query(project, text, k=5), as the judge retrieves: it embeds the query
                   text (a sample's input + output, as long as the stored ones), then queries the store;
- "vector":        collection.query(query_embeddings=[precomputed], n_results=5), the store alone;
- "vector, where": the same with the judge's filter, where={"sample_id": {"$ne": …}} (episodic.query adds it
                   when it is given exclude_sample_id);
plus recall@5 of the vector queries against an exact (brute-force) search over the same vectors.

Embedding 100,000 real texts would take far too long on 2 cores (real example texts embed at only 8-16 per
second here), so only `--real` texts (default 600: FeedbackQA and HaluEval records, embedded as the
product embeds an example) are embedded for real; the larger collections are built from those vectors plus
Gaussian noise (sigma `--noise` per dimension), renormalised, each stored with its source text as document
and product-shaped metadata, inserted in batches straight into the collection. The collection grows in place:
1,000, then 10,000, then 100,000 entries. Queries are `--queries` held-out real texts (records not in the
collection) and their vectors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from chromadb.api.types import Where

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Environment, footer, header, load_jsonl, percentile  # noqa: E402

# The filter a judge's "never its own sample" would need (mypy cannot type the nested operator as a literal).
NOT_SAMPLE_1: Where = {"sample_id": {"$ne": 1}}  # type: ignore[dict-item]
PROJECT_ID = 1  # the collection is the one memory.episodic.collection(1) names; no database row is needed


def record_text(record: dict) -> str:
    """The text the product embeds for a record's sample: Sample.inputs_text() + output, via example_text."""
    from memory.embeddings import example_text

    inputs = (
        record["inputs"]
        if isinstance(record["inputs"], str)
        else json.dumps(record["inputs"], indent=2, ensure_ascii=False)
    )
    output = (
        record.get("outputs") or f"Output A:\n{record.get('output_a', '')}\n\nOutput B:\n{record.get('output_b', '')}"
    )
    return example_text(inputs, output)


def texts(real: int, queries: int, seed: int) -> tuple[list[str], list[str], list[str], str]:
    """(collection texts, their labels, query texts, source) from the shared datasets, else generated text."""
    rng = np.random.default_rng(seed)
    pool = load_jsonl("feedbackqa") + load_jsonl("halueval_general")
    held_out = load_jsonl("llmbar") + load_jsonl("mtbench_human")
    if len(pool) + len(held_out) >= real + queries:
        order = rng.permutation(len(pool))
        chosen = [pool[i] for i in order[:real]]
        rest = [pool[i] for i in order[real:]] + held_out
        picked = [rest[i] for i in rng.permutation(len(rest))[:queries]]
        return (
            [record_text(r) for r in chosen],
            [str(r["label"]) for r in chosen],
            [record_text(r) for r in picked],
            "FeedbackQA + HaluEval (collection), held-out FeedbackQA/HaluEval/LLMBar/MT-Bench (queries)",
        )
    words = [
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
        "weekend",
        "tomorrow",
        "confirm",
        "reference",
        "escalate",
        "manager",
        "policy",
        "vaccine",
        "visa",
    ]

    def sentence(lo: int, hi: int) -> str:
        return " ".join(words[i] for i in rng.integers(0, len(words), rng.integers(lo, hi)))

    made = [f"{sentence(8, 25)}?\n\n{sentence(30, 120)}." for _ in range(real + queries)]
    return (
        made[:real],
        ["pass" if i % 2 else "fail" for i in range(real)],
        made[real:],
        "generated text (shared datasets not found)",
    )


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--real", type=int, default=600, help="real texts embedded (default 600)")
    parser.add_argument("--where-queries", type=int, default=50, help="filtered queries per size (slow at 100k)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.02, help="per-dimension Gaussian noise of the copies")
    parser.add_argument("--batch", type=int, default=1000, help="entries per insert call")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    base_texts, base_labels, query_texts, source = texts(args.real, args.queries, args.seed)
    with Environment("retrieval", database=False, redis=False, keep=args.keep) as env:
        env.notes.append("No worker and no database: retrieval needs only the store and the embedding model")
        header("top-5 episodic retrieval latency", env)
        print(f"  texts: {source}")
        sys.stdout.flush()

        from memory import episodic
        from memory.embeddings import embed, token_counts

        # -- embedding throughput, on the real texts ---------------------------------------------------------
        embed(["warm-up"])
        tokens = token_counts(base_texts)
        started = time.perf_counter()
        base = embed(base_texts)
        embed_seconds = time.perf_counter() - started
        single = timed(lambda t: embed([t]), query_texts[:50])
        query_vectors = embed(query_texts)
        print(
            f"\nembedding: {len(base_texts):,} real texts in {embed_seconds:.1f} s = {len(base_texts) / embed_seconds:,.0f} texts/s "
            f"(batched as embed() batches; tokens per text: median {statistics.median(tokens):.0f}, "
            f"mean {statistics.mean(tokens):.0f}, truncated at 256)"
        )
        print(
            f"  one text at a time (what a query pays): p50 {percentile(single, 50) * 1000:.1f} ms, "
            f"p95 {percentile(single, 95) * 1000:.1f} ms"
        )
        print(
            f"collection entries beyond the first {len(base):,}: a real vector + N(0, {args.noise}²) per dimension, "
            f"renormalised (cosine to its source ≈ {1 / np.sqrt(1 + 384 * args.noise**2):.2f}), document = source text"
        )
        sys.stdout.flush()

        store = episodic.collection(PROJECT_ID)
        config = store.configuration_json if hasattr(store, "configuration_json") else {}
        print(f"  collection {store.name!r}: hnsw {json.dumps((config or {}).get('hnsw'))}")
        rng = np.random.default_rng(args.seed)
        vectors = np.empty((sizes[-1], base.shape[1]), dtype=np.float32)  # kept for the exact search (recall)
        rows = []
        count = 0
        for size in sizes:
            started = time.perf_counter()
            while count < size:
                n = min(args.batch, size - count)
                index = np.arange(count, count + n)
                source_rows = index % len(base)
                batch = base[source_rows].copy()
                copies = index >= len(base)
                if copies.any():
                    batch[copies] += rng.normal(0, args.noise, (int(copies.sum()), base.shape[1])).astype(np.float32)
                    batch[copies] /= np.linalg.norm(batch[copies], axis=1, keepdims=True)
                vectors[count : count + n] = batch
                store.add(
                    ids=[str(i + 1) for i in index],
                    embeddings=batch,
                    documents=[base_texts[s] for s in source_rows],
                    metadatas=[
                        {
                            "sample_id": int(i + 1),
                            "label": base_labels[s],
                            "author_id": 1,
                            "project_id": PROJECT_ID,
                            "revision": 1,
                        }
                        for i, s in zip(index, source_rows)
                    ],
                )
                count += n
            insert_seconds = time.perf_counter() - started
            added = size - (rows[-1]["size"] if rows else 0)
            assert store.count() == size, f"the collection holds {store.count()} entries, expected {size}"

            # Warm up (first queries load the segment), then measure.
            for q in query_vectors[:10]:
                store.query(query_embeddings=[q.tolist()], n_results=5, include=["metadatas", "distances"])
            text_times = timed(lambda t: episodic.query(PROJECT_ID, t, k=5), query_texts)
            judge_times = timed(
                lambda q: store.query(
                    query_embeddings=[q.tolist()],
                    n_results=5,
                    where=NOT_SAMPLE_1,
                    include=["metadatas", "distances"],
                ),
                query_vectors[: args.where_queries],
            )
            collection_times = timed(lambda _: episodic.collection(PROJECT_ID), range(50))
            found: list[list[str]] = []

            def vector_query(q):
                found.append(  # noqa: B023 - called within this iteration only
                    store.query(query_embeddings=[q.tolist()], n_results=5, include=["metadatas", "distances"])["ids"][
                        0
                    ]
                )

            vector_times = timed(vector_query, query_vectors)
            similarities = query_vectors @ vectors[:size].T
            exact = np.argsort(-similarities, axis=1)[:, :5]
            recall = statistics.mean(
                len({int(i) - 1 for i in got} & set(want.tolist())) / 5 for got, want in zip(found, exact)
            )
            # The copies come in tight clusters of near-duplicates, where HNSW may return another copy that is
            # almost exactly as similar: the similarity shortfall tells a near-tie from a real miss.
            shortfall = statistics.mean(
                float(similarities[q, want].mean() - similarities[q, [int(i) - 1 for i in got]].mean())
                for q, (got, want) in enumerate(zip(found, exact))
            )
            rows.append(
                {
                    "size": size,
                    "added": added,
                    "insert_s": insert_seconds,
                    "text": text_times,
                    "judge": judge_times,
                    "vector": vector_times,
                    "recall": recall,
                    "shortfall": shortfall,
                    "collection": collection_times,
                }
            )
            print(
                f"  {size:>7,} entries: inserted {added:,} in {insert_seconds:.1f} s ({added / insert_seconds:,.0f}/s); "
                f"vector p50 {percentile(vector_times, 50) * 1000:.1f} ms"
            )
            sys.stdout.flush()

        print(f"\ntop-5 latency over {len(query_texts)} queries each (ms, p50 / p95):")
        print(
            f"  {'entries':>9}  {'text':>15}  {'vector':>15}  {'vector, where':>15}  {'recall@5':>8}  {'sim. gap':>8}  {'insert/s':>8}"
        )
        for row in rows:
            cells = [
                f"{percentile(row[k], 50) * 1000:6.1f} / {percentile(row[k], 95) * 1000:6.1f}"
                for k in ("text", "vector", "judge")
            ]
            print(
                f"  {row['size']:>9,}  {cells[0]:>15}  {cells[1]:>15}  {cells[2]:>15}  {row['recall']:>8.3f}  {row['shortfall']:>8.4f}  "
                f"{row['added'] / row['insert_s']:>8,.0f}"
            )
        print(
            f"  text = episodic.query (embeds the query text, then queries; {len(query_texts)} queries); vector = collection.query "
            f"with a precomputed vector ({len(query_vectors)}); vector, where = with the judge's sample_id filter "
            f"({min(args.where_queries, len(query_vectors))}); recall@5 of the vector queries vs exact search, and the mean "
            "cosine by which the returned top 5 fall short of the exact top 5 (sim. gap)"
        )
        print(
            "  episodic.collection() alone (get_or_create_collection, paid by every episodic.query): "
            + ", ".join(f"{row['size']:,}: p50 {percentile(row['collection'], 50) * 1000:.1f} ms" for row in rows)
        )
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
