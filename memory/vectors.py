"""Sample vectors: each sample embedded once, in background batches, and the vector reused everywhere.

A stored vector is used only while it matches the sample's content (its fingerprint) and the current vector
scheme; anything else is embedded on the spot (in one batch with the rest) and stored, so callers always get
the right vector and never wait on the background work.
"""

from __future__ import annotations

import numpy as np
from django.db.models import QuerySet

from memory.embeddings import DIMENSIONS, example_vectors, fingerprint, sample_parts
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


def pending(project: Project) -> QuerySet[Sample]:
    """The project's samples with no stored vector (or one of an older scheme), in id order."""
    return Sample.objects.filter(project=project).exclude(vector__scheme=SCHEME).order_by("id")


def embed_pending(project: Project, limit: int = BATCH) -> int:
    """Embed up to `limit` of the project's samples that have no vector yet; return how many."""
    batch = list(pending(project)[:limit])
    if batch:
        for_samples(batch)
    return len(batch)
