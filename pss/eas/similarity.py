"""How alike generated architectures are (EAS Fig. B: mean cosine similarity across superclasses per budget). No torch.

An architecture is a vector of one-hot choices (:func:`architecture_vector`);
the cosine of two is the share of decisions they agree on. EAS reports the mean
over superclass pairs at each budget: low means the generator specialises.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..problem.space import Structure, StructureSpace


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two architecture vectors (EAS Fig. B compares generated architectures across superclasses)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def mean_pairwise_cosine(vectors: Sequence[Sequence[float]]) -> float:
    """Mean cosine similarity over every pair of vectors (NaN for fewer than two)."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    sims = [cosine_similarity(vectors[i], vectors[j]) for i in range(n) for j in range(i + 1, n)]
    return float(np.mean(sims))


def architecture_vector(structure: Structure, space: StructureSpace) -> list[float]:
    """A structure as a vector for similarity: per searchable dimension and for the resolution, a one-hot of its choice.

    The cosine of two such vectors is the share of decisions on which the two
    architectures agree (widths relative to o_max would all sit in [0.75, 1],
    so their cosine is near 1 for any pair and says little).
    """
    out: list[float] = []
    for w, d in zip(structure.widths, space.dimensions):
        if len(d.choices) > 1:
            out.extend(1.0 if c == w else 0.0 for c in d.choices)
    out.extend(1.0 if r == structure.resolution else 0.0 for r in space.resolutions)
    return out
