"""Sample vectors: each sample embedded once, in background batches, and the vector reused everywhere.

A stored vector is used only while it matches the sample's content (its fingerprint) and the current vector
scheme; anything else is embedded on the spot (in one batch with the rest) and stored, so callers always get
the right vector and never wait on the background work.
"""

from __future__ import annotations

import numpy as np
from django.db.models import QuerySet

from memory.embeddings import DIMENSIONS, embed_cached, example_vectors, fingerprint, sample_parts
from memory.models import SampleVector
from reviews.models import Project, Sample

# How vectors are made. 2: the mean of the sample's parts (input, each output), each embedded whole up to 256
# tokens; 1 (episodic entries without a "scheme"): input and output as one text, cut at 256 tokens.
SCHEME = 2
BATCH = 256  # samples per background embedding batch: all their parts go through one embed() call


def sample_fingerprint(sample: Sample) -> str:
    return fingerprint(sample.inputs_text(), sample.output_text())


def sample_vector_parts(sample: Sample) -> list[str]:
    """The parts embedded for a sample: its input and each of its outputs, the whole sample."""
    return sample_parts(sample.inputs_text(), sample.outputs, sample.output_a, sample.output_b)


def for_samples(samples: list[Sample]) -> np.ndarray:
    """Return the samples' vectors (rows in their order), embedding and storing those not stored yet."""
    result = np.empty((len(samples), DIMENSIONS), dtype=np.float32)
    stored = SampleVector.objects.in_bulk([s.pk for s in samples])
    prints = [sample_fingerprint(s) for s in samples]
    missing = []
    for row, (sample, print_) in enumerate(zip(samples, prints)):
        found = stored.get(sample.pk)
        if found is not None and found.scheme == SCHEME and found.fingerprint == print_:
            result[row] = np.frombuffer(bytes(found.vector), dtype="<f4")
        else:
            missing.append(row)
    if missing:
        vectors = example_vectors([sample_vector_parts(samples[row]) for row in missing])
        result[missing] = vectors
        SampleVector.objects.bulk_create(
            [
                SampleVector(
                    sample_id=samples[row].pk,
                    project_id=samples[row].project_id,
                    fingerprint=prints[row],
                    scheme=SCHEME,
                    vector=vector.astype("<f4").tobytes(),
                )
                # one row per sample: a sample may come twice (two reviewers' feedback on it), and PostgreSQL
                # refuses an upsert that touches a row twice
                for row, vector in {samples[row].pk: (row, vector) for row, vector in zip(missing, vectors)}.values()
            ],
            update_conflicts=True,
            unique_fields=["sample"],
            update_fields=["fingerprint", "scheme", "vector"],
        )
    return result


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
    width = len(sample_part_texts(samples[0]))
    result = np.zeros((len(samples), width, DIMENSIONS), dtype=np.float32)
    stored = SampleVector.objects.only("fingerprint", "scheme", "parts").in_bulk([s.pk for s in samples])
    missing = []
    for row, sample in enumerate(samples):
        found = stored.get(sample.pk)
        blob = bytes(found.parts) if found is not None else b""
        if (
            found is not None
            and found.fingerprint == sample_fingerprint(sample)
            and len(blob) == width * DIMENSIONS * 4
        ):
            result[row] = np.frombuffer(blob, dtype="<f4").reshape(width, DIMENSIONS)
        else:
            missing.append(row)
    if missing:
        vectors = embed_parts([sample_part_texts(samples[row]) for row in missing])
        result[missing] = vectors
        for_samples([samples[row] for row in missing])  # the row must exist, with the current content
        for row, vector in {samples[row].pk: (row, vector) for row, vector in zip(missing, vectors)}.values():
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
