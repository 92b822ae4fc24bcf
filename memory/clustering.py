"""Average-linkage clustering of unit vectors: principles from critiques (the offline provider), near-duplicate
principles (consolidation), contradictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_linkage(
    vectors: np.ndarray, threshold: float, *, labels: Sequence[str] | None = None, target: int = 1
) -> list[list[int]]:
    """Groups of row indices of unit `vectors`, merged while two groups' mean cosine is >= `threshold` and more
    than `target` groups remain. With `labels`, rows of different labels never share a group.

    Deterministic: the most similar pair merges first, ties to the lowest indices; groups come back in
    order of their smallest index, members ascending.
    """
    n = len(vectors)
    groups: list[list[int]] = [[i] for i in range(n)]
    if n < 2:
        return groups
    sim = (vectors @ vectors.T).astype(np.float64)
    if labels is not None:
        codes = np.array([hash(label) for label in labels])
        sim[codes[:, None] != codes[None, :]] = -np.inf
    np.fill_diagonal(sim, -np.inf)
    alive = np.ones(n, dtype=bool)
    count = n
    while count > target:
        flat = int(np.argmax(sim))
        a, b = divmod(flat, n)  # row-major first maximum: a < b because `sim` is symmetric
        if sim[a, b] < threshold or sim[a, b] == -np.inf:
            break
        size_a, size_b = len(groups[a]), len(groups[b])
        merged = (size_a * sim[a] + size_b * sim[b]) / (size_a + size_b)  # Lance-Williams, average linkage
        sim[a], sim[:, a] = merged, merged
        sim[b], sim[:, b] = -np.inf, -np.inf
        sim[a, a] = -np.inf
        groups[a] = sorted(groups[a] + groups[b])
        alive[b] = False
        count -= 1
    return [groups[i] for i in range(n) if alive[i]]
