"""The episodic store: reviewed examples in Chroma, one collection per project, id = feedback id.

Chroma is an index derived from the database and can be rebuilt from it at any time (`rebuild_memory`).
Each entry's metadata carries the feedback revision it was embedded from, so drift is detectable.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.client import SharedSystemClient
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from django.conf import settings

from memory import vectors as sample_vectors
from memory.embeddings import MiniLMEmbeddingFunction, embed, example_text
from reviews.models import Feedback, Sample

_client_lock = threading.Lock()
_client: ClientAPI | None = None
_collections: dict[str, Collection] = {}  # collection handles by name, for the process's client
T = TypeVar("T")
PAGE = 1_000  # Chroma reads are paged: a large collection is never fetched in one response
VECTOR_SCHEME = sample_vectors.SCHEME  # in each entry's metadata: entries of an older scheme are re-embedded


class StoreUnavailable(ConnectionError):
    """The Chroma server at CHROMA_URL did not answer (Chroma itself says so with a bare ValueError)."""


def get_client() -> ClientAPI:
    """Return the process's Chroma client: a server at CHROMA_URL, else a folder under DATA_DIR."""
    global _client
    with _client_lock:
        if _client is None:
            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            if settings.CHROMA_URL:
                url = urlparse(settings.CHROMA_URL)
                try:
                    _client = chromadb.HttpClient(
                        host=url.hostname or "127.0.0.1",
                        port=url.port or (443 if url.scheme == "https" else 8000),
                        ssl=url.scheme == "https",
                        settings=chroma_settings,
                    )
                except ValueError as error:
                    raise StoreUnavailable(f"{settings.CHROMA_URL}: {error}") from error
            else:
                settings.CHROMA_PATH.mkdir(parents=True, exist_ok=True)
                _client = chromadb.PersistentClient(path=str(settings.CHROMA_PATH), settings=chroma_settings)
        return _client


def reset_client() -> None:
    """Forget the cached client (after the store was deleted, or in tests that switch stores)."""
    global _client
    with _client_lock:
        _client = None
        _collections.clear()
        # Chroma caches one system per store path; a deleted folder needs a fresh one.
        SharedSystemClient.clear_system_cache()


def collection_name(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}-project-{project_id}"


def collection(project_id: int) -> Collection:
    """Return the project's collection, creating it on first use. The handle is kept for the process: each
    lookup would be one more request to the Chroma server before every query (issue 23)."""
    name = collection_name(project_id)
    with _client_lock:
        found = _collections.get(name)
    if found is None:
        # Always pass our embedding function: a collection without one gets Chroma's default, which downloads.
        # (Chroma types the argument as a function of documents or images; ours embeds documents only.)
        found = get_client().get_or_create_collection(
            name,
            embedding_function=MiniLMEmbeddingFunction(),  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
        )
        with _client_lock:
            _collections[name] = found
    return found


def _forget(project_id: int) -> None:
    with _client_lock:
        _collections.pop(collection_name(project_id), None)


def _on_collection(project_id: int, use: Callable[[Any], T]) -> T:
    """Run `use` on the project's collection; a handle whose collection another process dropped (a rebuild) is
    looked up again once."""
    try:
        return use(collection(project_id))
    except NotFoundError:
        _forget(project_id)
        return use(collection(project_id))


def sample_text(sample: Sample) -> str:
    """Return the text stored with a sample's entry, for reading (the vector is the sample's, memory.vectors)."""
    return example_text(sample.inputs_text(), sample.output_text())


def upsert(feedback: list[Feedback]) -> None:
    """Embed and store feedback (new or edited) in its project's collection. Feedback must share a project."""
    if not feedback:
        return
    texts = [sample_text(f.sample) for f in feedback]
    vectors = sample_vectors.for_samples([f.sample for f in feedback])  # stored at import: no embedding here
    _on_collection(
        feedback[0].project_id,
        lambda store: store.upsert(
            ids=[str(f.pk) for f in feedback],
            embeddings=[v.tolist() for v in vectors],
            documents=texts,
            metadatas=[
                {
                    "sample_id": f.sample_id,
                    "label": f.label,
                    "author_id": f.author_id,
                    "project_id": f.project_id,
                    "revision": f.revision,
                    "scheme": VECTOR_SCHEME,
                }
                for f in feedback
            ],
        ),
    )


def delete(project_id: int, feedback_ids: list[int]) -> None:
    if feedback_ids:
        _on_collection(project_id, lambda store: store.delete(ids=[str(i) for i in feedback_ids]))


def drop(project_id: int) -> None:
    """Delete a project's whole collection (before a rebuild, or when the project is deleted)."""
    _forget(project_id)
    try:
        get_client().delete_collection(collection_name(project_id))
    except Exception as error:  # Chroma raises different errors for "no such collection" by client kind
        if "does not exist" not in str(error).lower() and "not found" not in str(error).lower():
            raise


def entries(project_id: int) -> dict[int, int]:
    """Return {feedback id: revision} for every entry the project's collection holds.

    An entry embedded under an older vector scheme reports revision -1, so a repair re-embeds it.
    """
    found: dict[int, int] = {}
    offset = 0
    while True:
        batch = _on_collection(project_id, partial(_page, offset=offset))
        for entry_id, metadata in zip(batch["ids"], batch["metadatas"]):
            metadata = metadata or {}
            current = metadata.get("scheme") == VECTOR_SCHEME
            found[int(entry_id)] = int(metadata.get("revision", 0)) if current else -1
        if len(batch["ids"]) < PAGE:
            return found
        offset += PAGE


def _page(store: Any, offset: int) -> Any:
    return store.get(include=["metadatas"], limit=PAGE, offset=offset)


@dataclass
class Neighbour:
    feedback_id: int
    sample_id: int
    label: str
    similarity: float


def query(project_id: int, text: str, k: int, exclude_sample_id: int | None = None) -> list[Neighbour]:
    """Return the k reviewed examples most similar to `text`, never the excluded sample's own feedback."""
    return query_vectors(project_id, embed([text]), k, [exclude_sample_id])[0]


def query_vectors(
    project_id: int, vectors: np.ndarray, k: int, exclude_sample_ids: list[int | None]
) -> list[list[Neighbour]]:
    """Return, for each query vector, its k most similar reviewed samples (the most similar entry of each: a
    sample reviewed twice holds two entries, but fills one slot), never its excluded sample's own.

    One Chroma request answers all the vectors (a judge run's chunk at once); a second, wider one only when
    several reviews of one sample crowded the first answer below k samples.
    """
    if k <= 0 or len(vectors) == 0:
        return [[] for _ in range(len(vectors))]
    # Ask for as many extra neighbours as an excluded sample has entries and drop those here: a `where`
    # filter costs ~190 ms at 100k entries against ~2 ms for a plain query (docs/BENCHMARKS.md).
    own = Counter(
        Feedback.objects.filter(project_id=project_id, sample_id__in=[i for i in exclude_sample_ids if i]).values_list(
            "sample_id", flat=True
        )
    )
    extra = max((own[i] for i in exclude_sample_ids if i), default=0)
    wanted = 2 * k + extra  # room for two reviews per sample (overlap 2) in the first request
    queries = [list(map(float, v)) for v in vectors]
    while True:
        result = _on_collection(project_id, partial(_query, queries=queries, n_results=wanted))
        found, crowded = [], False
        for ids, metadatas, distances, excluded in zip(
            result["ids"], result["metadatas"], result["distances"], exclude_sample_ids, strict=False
        ):
            neighbours = _distinct_samples(ids, metadatas, distances, excluded, k)
            found.append(neighbours)
            crowded = crowded or (len(neighbours) < k and len(ids) == wanted)
        if not crowded:
            return found
        wanted *= 2  # more entries exist than were asked for: ask again, wider


def _query(store: Any, queries: list[list[float]], n_results: int) -> Any:
    return store.query(query_embeddings=queries, n_results=n_results, include=["metadatas", "distances"])


def _distinct_samples(
    ids: list[str], metadatas: list[Any], distances: list[float], excluded: int | None, k: int
) -> list[Neighbour]:
    """The first k entries of distinct samples, never the excluded sample's, most similar first."""
    seen: set[int] = set()
    kept = []
    for entry_id, metadata, distance in zip(ids, metadatas, distances):
        sample_id = int(metadata["sample_id"])
        if sample_id == excluded or sample_id in seen:
            continue
        seen.add(sample_id)
        kept.append(Neighbour(int(entry_id), sample_id, str(metadata["label"]), round(1.0 - float(distance), 4)))
        if len(kept) == k:
            break
    return kept
