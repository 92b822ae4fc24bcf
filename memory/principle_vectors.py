"""Principle vectors: each principle text embedded once, stored by its hash, and read by every process after.

The budget choice (memory.budget) compares a verdict's item with every active principle; embedding 1,200 of them
again in each new process made the first judgment after a restart take 10 s (issue 23). A version written
queues their embedding in the background (memory.signals), so a restarted process only reads them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from memory import versions
from memory.embeddings import DIMENSIONS, MODEL_ID, embed
from memory.models import Principle, PrincipleVector
from reviews.models import Project

READ_CHUNK = 500  # hashes per query: SQLite limits the parameters of one statement


def text_hash(text: str) -> str:
    """The key of a text's vector: the embedding model is part of it, so another model never reads these vectors."""
    return hashlib.sha256(f"{MODEL_ID}\n{text}".encode()).hexdigest()


def stored(hashes: list[str]) -> dict[str, np.ndarray]:
    """The stored vectors of these text hashes (those that have one)."""
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), READ_CHUNK):
        rows = PrincipleVector.objects.filter(text_hash__in=unique[start : start + READ_CHUNK])
        for key, blob in rows.values_list("text_hash", "vector"):
            found[key] = np.frombuffer(bytes(blob), dtype="<f4")
    return found


def vectors_of(texts: list[str]) -> np.ndarray:
    """Return the texts' vectors (rows in their order), embedding and storing those not stored yet."""
    hashes = [text_hash(t) for t in texts]
    found = stored(hashes)
    missing = {h: t for h, t in zip(hashes, texts) if h not in found}
    if missing:
        found.update(_store(missing))
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([found[h] for h in hashes])


def _store(texts_by_hash: dict[str, str]) -> dict[str, np.ndarray]:
    fresh = dict(zip(texts_by_hash, embed(list(texts_by_hash.values()))))
    PrincipleVector.objects.bulk_create(
        [PrincipleVector(text_hash=h, vector=v.astype("<f4").tobytes()) for h, v in fresh.items()],
        ignore_conflicts=True,  # another process stored the same text meanwhile: the same vector
        batch_size=READ_CHUNK,
    )
    return fresh


def missing_texts(project: Project) -> list[str]:
    """The project's active principle texts that have no stored vector."""
    by_hash = {text_hash(t): t for t in versions.active_principles(project).values_list("text", flat=True)}
    keys = list(by_hash)
    for start in range(0, len(keys), READ_CHUNK):
        chunk = PrincipleVector.objects.filter(text_hash__in=keys[start : start + READ_CHUNK])
        for key in chunk.values_list("text_hash", flat=True):
            del by_hash[key]
    return list(by_hash.values())


def prune() -> int:
    """Delete the vectors no project's active principle has (retired or rewritten texts); return how many.

    A vector pruned while its text is being made active again is embedded again when first needed."""
    active = {text_hash(t) for t in Principle.objects.filter(retired=False).values_list("text", flat=True).iterator()}
    unused: list[str] = []
    for key in PrincipleVector.objects.values_list("text_hash", flat=True).iterator(chunk_size=READ_CHUNK):
        if key not in active:
            unused.append(key)
    for start in range(0, len(unused), READ_CHUNK):
        PrincipleVector.objects.filter(text_hash__in=unused[start : start + READ_CHUNK]).delete()
    return len(unused)


def embed_missing(project: Project) -> int:
    """Embed and store the project's active principles that have no vector yet; return how many."""
    missing = missing_texts(project)
    if missing:
        _store({text_hash(t): t for t in missing})
    return len(missing)
