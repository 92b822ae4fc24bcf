"""The episodic store: reviewed examples in Chroma, one collection per project."""

from __future__ import annotations

import threading

import chromadb
from chromadb.config import Settings as ChromaSettings
from django.conf import settings

_client_lock = threading.Lock()
_client = None


def get_client():
    """Return the process's Chroma client: a server at CHROMA_URL, else a folder under DATA_DIR."""
    global _client
    with _client_lock:
        if _client is None:
            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            if settings.CHROMA_URL:
                from urllib.parse import urlparse

                url = urlparse(settings.CHROMA_URL)
                _client = chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1",
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            else:
                settings.CHROMA_PATH.mkdir(parents=True, exist_ok=True)
                _client = chromadb.PersistentClient(path=str(settings.CHROMA_PATH), settings=chroma_settings)
        return _client
