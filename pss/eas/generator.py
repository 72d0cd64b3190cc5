"""The architecture generator of EAS (Sec. 3.2, Fig. 2b): (superclass, budget) -> gate probabilities alpha.

A learnable embedding per superclass and per *budget level* (``levels`` budgets
evenly spaced from C(min) to C(max); a budget in between takes the linear
interpolation of its two neighbours' embeddings, :func:`budget_position`) are
concatenated and fed to an LSTM. EAS follows ENAS: one LSTM decision step per
architectural choice, with fully connected heads per kind of choice (depth,
width, kernel size). Our space has two kinds, so there are two heads: one for
the width gates of each searchable dimension (one step each) and one for the
resolution gates (the last step). Each step's input is the scenario embedding
plus a learned embedding of the step, so the LSTM knows which choice it makes.
A sigmoid turns each head's output into the gate probabilities (Eq. 8).

A batch of scenarios runs as one batched forward: 50 scenarios are one LSTM
call of 50 rows.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .gates import GateLayout


def budget_levels(c_min: float, c_max: float, levels: int) -> torch.Tensor:
    """The ``levels`` budgets evenly spaced from C(min) to C(max) that own an embedding."""
    return torch.linspace(float(c_min), float(c_max), int(levels), dtype=torch.float64)


def budget_position(budgets: torch.Tensor, c_min: float, c_max: float, levels: int) -> torch.Tensor:
    """Where each budget falls among the levels, as a fractional index in [0, levels - 1] (clamped outside)."""
    span = max(float(c_max) - float(c_min), 1e-12)
    pos = (budgets.to(torch.float64) - float(c_min)) / span * (levels - 1)
    return pos.clamp(0.0, levels - 1.0)


class ArchitectureGenerator(nn.Module):
    """G_theta(superclass, budget) -> probabilities of every gate of a :class:`GateLayout`."""

    def __init__(self, layout: GateLayout, superclasses: int, c_min: float, c_max: float,
                 levels: int = 10, embedding: int = 32, hidden: int = 64) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError("the generator needs at least two budget levels")
        self.layout = layout
        self.c_min, self.c_max, self.levels = float(c_min), float(c_max), int(levels)
        self.superclass_embedding = nn.Embedding(superclasses, embedding)
        self.budget_embedding = nn.Parameter(torch.randn(levels, embedding) * 0.1)
        self.step_embedding = nn.Parameter(torch.randn(layout.steps, 2 * embedding) * 0.1)
        self.lstm = nn.LSTM(2 * embedding, hidden, batch_first=True)
        self.width_head = nn.Linear(hidden, layout.max_gates)
        self.resolution_head = nn.Linear(hidden, layout.max_gates)
        # Start with every gate likely on (alpha about sigmoid(2) = 0.88): the search begins near the
        # supernet, and the constraint loss pulls each scenario down to its budget. Small, not zero,
        # weights, so the loss reaches the LSTM and the embeddings from the first step.
        for head in (self.width_head, self.resolution_head):
            with torch.no_grad():
                head.weight.mul_(0.1)
            nn.init.constant_(head.bias, 2.0)

    def embed(self, superclasses: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
        """The scenario embedding: superclass embedding ++ the budget's interpolated level embedding."""
        pos = budget_position(budgets, self.c_min, self.c_max, self.levels).to(self.budget_embedding.dtype)
        low = pos.floor().long().clamp(max=self.levels - 2)
        frac = (pos - low.to(pos.dtype)).unsqueeze(-1)
        budget = (1 - frac) * self.budget_embedding[low] + frac * self.budget_embedding[low + 1]
        return torch.cat([self.superclass_embedding(superclasses), budget], dim=-1)

    def logits(self, superclasses: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
        """Gate logits (n scenarios, layout.size): log(alpha / (1 - alpha)) of every gate."""
        scenario = self.embed(superclasses, budgets)
        steps = scenario.unsqueeze(1) + self.step_embedding.unsqueeze(0)
        hidden, _ = self.lstm(steps)
        layout, out = self.layout, []
        for i, d in enumerate(layout.dims):
            out.append(self.width_head(hidden[:, i])[:, : layout.gates_of(d)])
        out.append(self.resolution_head(hidden[:, -1])[:, : len(layout.resolutions) - 1])
        return torch.cat(out, dim=-1)

    def forward(self, superclasses: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
        """Eq. 8: alpha = sigmoid(LSTM output) for each scenario; (n, layout.size)."""
        return torch.sigmoid(self.logits(superclasses, budgets))

    def settings(self) -> dict[str, float | int]:
        """What rebuilds this module around a saved state dict (with the layout and the superclass count)."""
        return {"levels": self.levels, "embedding": self.superclass_embedding.embedding_dim,
                "hidden": self.lstm.hidden_size, "c_min": self.c_min, "c_max": self.c_max,
                "superclasses": self.superclass_embedding.num_embeddings}


def scenario_tensors(superclasses: Sequence[int], budgets: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(list(superclasses), dtype=torch.long), torch.as_tensor(list(budgets), dtype=torch.float64)
