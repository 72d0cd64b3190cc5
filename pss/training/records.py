"""What training steps and epochs did, as plain records the run format writes."""

from __future__ import annotations

from dataclasses import dataclass

from ..problem.space import Structure
from ..sampling.strategies import Subnet


@dataclass
class StepResult:
    """What one training step did: the subnets (max first) and, per subnet, its losses."""

    subnets: list[Subnet]
    losses: list[float]  # the loss each subnet was trained with (CE for max; KL, or CE for pse)
    ce: list[float]  # cross-entropy on the labels of the images it saw

    def _mean(self, role: str) -> float | None:
        values = [v for s, v in zip(self.subnets, self.losses) if s.role == role]
        return sum(values) / len(values) if values else None

    @property
    def loss_max(self) -> float:
        return self.losses[0]

    @property
    def loss_medium(self) -> float | None:
        """Mean training loss over the medium subnets (None when there were none)."""
        return self._mean("medium")

    @property
    def loss_min(self) -> float | None:
        return self._mean("min")

    @property
    def _first_medium(self) -> int | None:
        return next((i for i, s in enumerate(self.subnets) if s.role == "medium"), None)

    @property
    def medium(self) -> Structure | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].structure

    @property
    def metric(self) -> float | None:
        """PSS-Net's m = -batch_loss of the (first) medium subnet."""
        i = self._first_medium
        return None if i is None else -self.ce[i]

    @property
    def pool_index(self) -> int | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].pool_index

    @property
    def source(self) -> str | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].source


class SampleLog:
    """The epoch's trained non-max subnets and their losses, columnar (snapshot field ``samples``).

    One row per (step, subnet): the 1-based optimizer step, the index of the
    subnet's structure key in ``keys``, its cross-entropy on the images it
    trained on, and the max subnet's cross-entropy at that step (PSE-Net Eq.
    17-19 rescale a loss by the max subnet's).
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.step: list[int] = []
        self.key: list[int] = []
        self.loss: list[float] = []
        self.max_loss: list[float] = []

    def add(self, step: int, result: StepResult) -> None:
        for s, ce in zip(result.subnets, result.ce):
            if s.role == "max":
                continue
            k = s.structure.key
            if k not in self._index:
                self._index[k] = len(self.keys)
                self.keys.append(k)
            self.step.append(int(step))
            self.key.append(self._index[k])
            self.loss.append(float(ce))
            self.max_loss.append(float(result.ce[0]))

    def __len__(self) -> int:
        return len(self.step)

    def to_json(self) -> dict[str, list]:
        return {"keys": list(self.keys), "step": list(self.step), "key": list(self.key), "loss": list(self.loss), "max_loss": list(self.max_loss)}




@dataclass
class EpochStats:
    """One epoch of training: mean losses per role, the trained subnets, time and throughput.

    ``val_acc`` (max and min subnet, after a quick BN re-estimate) is filled in
    by :meth:`pss.training.trainer.Trainer.evaluate_references`.
    """

    epoch: int  # 1-based: the epoch just finished
    losses: dict[str, float | None]  # medium/min are None for a strategy that trains none (pse has no min)
    samples: SampleLog
    seconds: float
    images_per_second: float
    progress_end: float  # (e - 1) / E of Eq. 3 at the end of the epoch
    val_acc: dict[str, float] | None = None
