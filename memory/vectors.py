"""Sample vectors: each sample embedded once, in background batches, and the vector reused everywhere.

A stored vector is used only while it matches the sample's content (its fingerprint) and the current vector
scheme; anything else is embedded on the spot (in one batch with the rest) and stored, so callers always get
the right vector. Each sample is embedded once: embedding holds the project's embedding lock, so a caller that
meets the background run embedding its samples waits for that batch and reads the vectors it stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from redis.exceptions import LockError, RedisError

from memory.embeddings import DIMENSIONS, embed_cached, fingerprint, sample_parts
from memory.models import SampleVector
from memory.redis_client import get_redis
from reviews.models import Project, Sample

# How vectors are made. 2: the mean of the sample's parts (input, each output), each embedded whole up to 256
# tokens; 1 (episodic entries without a "scheme"): input and output as one text, cut at 256 tokens.
SCHEME = 2
BATCH = 256  # samples per background embedding batch: all their parts go through one embed() call
LOCK_SECONDS = 120  # a project's embedding lock: longer than a batch takes on a loaded machine
log = logging.getLogger(__name__)


def sample_fingerprint(sample: Sample) -> str:
    return fingerprint(sample.inputs_text(), sample.output_text())


def sample_vector_parts(sample: Sample) -> list[str]:
    """The parts embedded for a sample: its input and each of its outputs, the whole sample."""
    return sample_parts(sample.inputs_text(), sample.outputs, sample.output_a, sample.output_b)


def for_samples(samples: list[Sample]) -> np.ndarray:
    """Return the samples' vectors (rows in their order), embedding and storing those not stored yet.

    Embedding is done under the project's embedding lock, and what is missing is looked up again once it is
    held: a caller that meets the background run (or another caller) embedding the same samples waits for it
    and reads its vectors instead of computing them a second time."""
    result = np.empty((len(samples), DIMENSIONS), dtype=np.float32)
    missing = _fill_stored(samples, result)
    if missing:
        with embedding_lock(samples[missing[0]].project_id):
            missing = [missing[i] for i in _fill_stored([samples[row] for row in missing], result, missing)]
            if missing:
                result[missing] = _embed_and_store([samples[row] for row in missing])
    return result


def without_vector(samples: list[Sample]) -> list[Sample]:
    """The samples that have no current stored vector: for_samples would embed them."""
    rows = _fill_stored(samples, np.empty((len(samples), DIMENSIONS), dtype=np.float32))
    return [samples[row] for row in rows]


def _fill_stored(samples: list[Sample], result: np.ndarray, rows: list[int] | None = None) -> list[int]:
    """Copy the samples' current stored vectors into `result` (at `rows`, default 0..n-1); return the indexes
    (into `samples`) of those with none."""
    rows = rows if rows is not None else list(range(len(samples)))
    stored = SampleVector.objects.only("fingerprint", "scheme", "vector").in_bulk([s.pk for s in samples])
    missing = []
    for index, (row, sample) in enumerate(zip(rows, samples)):
        found = stored.get(sample.pk)
        if found is not None and found.scheme == SCHEME and found.fingerprint == sample_fingerprint(sample):
            result[row] = np.frombuffer(bytes(found.vector), dtype="<f4")
        else:
            missing.append(index)
    return missing


def _embed_and_store(samples: list[Sample]) -> np.ndarray:
    """Embed the samples' parts (each distinct text once) and store each sample's vector, the normalised mean of
    its non-empty parts, with the part vectors themselves (the learned judge's features): nothing is embedded
    again for either."""
    texts = [sample_part_texts(s) for s in samples]
    flat = [text or " " for parts in texts for text in parts]
    embedded = embed_cached(flat)
    means = np.empty((len(samples), DIMENSIONS), dtype=np.float32)
    rows: dict[int, SampleVector] = {}  # one per sample: a sample may come twice (two reviewers' feedback on it)
    start = 0
    for index, (sample, parts) in enumerate(zip(samples, texts)):
        block = embedded[start : start + len(parts)].copy()
        start += len(parts)
        filled = [bool(text) for text in parts]
        mean = block[filled].mean(axis=0) if any(filled) else block.mean(axis=0)
        means[index] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        block[[not f for f in filled]] = 0.0
        rows[sample.pk] = SampleVector(
            sample_id=sample.pk,
            project_id=sample.project_id,
            fingerprint=sample_fingerprint(sample),
            scheme=SCHEME,
            vector=means[index].astype("<f4").tobytes(),
            parts=block.astype("<f4").tobytes(),
        )
    # PostgreSQL refuses an upsert that touches a row twice: one row per sample
    SampleVector.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["sample"],
        update_fields=["fingerprint", "scheme", "vector", "parts"],
    )
    return means


def embedding_lock_key(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}:embedding:{project_id}"


@contextmanager
def embedding_lock(project_id: int) -> Iterator[None]:
    """Hold the project's embedding lock for the block: one process embeds a project's samples at a time, and the
    next finds their vectors stored. A holder that died lets go after LOCK_SECONDS; without Redis (down) the
    block runs unlocked, as it did before the lock existed: the worst is a text embedded twice."""
    lock = get_redis().lock(embedding_lock_key(project_id), timeout=LOCK_SECONDS)
    try:
        held = lock.acquire(blocking=True, blocking_timeout=LOCK_SECONDS)
    except RedisError:
        held = False
    if not held:
        log.warning("embedding project %s without its embedding lock", project_id)
    try:
        yield
    finally:
        if held:
            with suppress(LockError, RedisError):  # it expired meanwhile: the vectors are stored all the same
                lock.release()


def part_texts(inputs: str, output: str = "", output_a: str = "", output_b: str = "") -> list[str]:
    """The texts of an item's parts in a fixed layout: input and output, or input, A and B (as sample_parts
    writes them, so the vectors are the ones its mean vector was made of)."""
    if output_a or output_b:
        return [inputs.strip(), f"Output A:\n{output_a.strip()}", f"Output B:\n{output_b.strip()}"]
    return [inputs.strip(), output.strip()]


def sample_part_texts(sample: Sample) -> list[str]:
    return part_texts(sample.inputs_text(), sample.outputs, sample.output_a, sample.output_b)


def embed_parts(texts: list[list[str]]) -> np.ndarray:
    """Embed items' part texts (all of one layout) into (n, parts, 384); an empty part is a zero vector."""
    width = len(texts[0]) if texts else 2
    flat = [text or " " for parts in texts for text in parts]
    vectors = embed_cached(flat).reshape(len(texts), width, DIMENSIONS)
    for index, parts in enumerate(texts):
        vectors[index][[not text for text in parts]] = 0.0
    return vectors


def part_vectors(samples: list[Sample]) -> np.ndarray:
    """Return each sample's part vectors, shape (n, parts, 384) — 2 parts for one output, 3 for pairwise (all
    samples of one project have the same kind) — embedding and storing those not stored yet. An empty part is
    a zero vector."""
    if not samples:
        return np.zeros((0, 2, DIMENSIONS), dtype=np.float32)
    for_samples(samples)  # stores the parts with the vector of a sample not embedded yet
    width = len(sample_part_texts(samples[0]))
    result = np.zeros((len(samples), width, DIMENSIONS), dtype=np.float32)
    stored = SampleVector.objects.only("parts").in_bulk([s.pk for s in samples])
    legacy = []  # rows stored before the parts were: their parts are embedded now, once
    for row, sample in enumerate(samples):
        blob = bytes(stored[sample.pk].parts) if sample.pk in stored else b""
        if len(blob) == width * DIMENSIONS * 4:
            result[row] = np.frombuffer(blob, dtype="<f4").reshape(width, DIMENSIONS)
        else:
            legacy.append(row)
    if legacy:
        vectors = embed_parts([sample_part_texts(samples[row]) for row in legacy])
        result[legacy] = vectors
        for row, vector in {samples[row].pk: (row, vector) for row, vector in zip(legacy, vectors)}.values():
            SampleVector.objects.filter(sample_id=samples[row].pk).update(parts=vector.astype("<f4").tobytes())
    return result


def pending(project: Project) -> QuerySet[Sample]:
    """The project's samples with no stored vector (or one of an older scheme), in id order."""
    return Sample.objects.filter(project=project).exclude(vector__scheme=SCHEME).order_by("id")


def embed_pending(project: Project, limit: int = BATCH) -> int:
    """Embed up to `limit` of the project's samples that have no vector yet; return how many."""
    batch = list(pending(project)[:limit])
    if batch:
        for_samples(batch)
    return len(batch)
