"""Training on several processes with PyTorch's own engine (``torch.distributed``; ``torchrun`` starts them).

``torchrun --nproc_per_node N -m pss train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous; :func:`from_environment` joins the group
(NCCL on GPUs, gloo on CPUs). Each rank reads its rows of every global batch
(:func:`pss.data.base.shard_rows`), and the rest of the design keeps all ranks
in one state:

* every rank draws the same subnets: the strategies' random generators have
  the same seed and see the same pools;
* the per-subnet losses are averaged over the ranks before they update the
  pools (Alg. 3), so the pools stay equal, and before the divergence check,
  so every rank stops together;
* gradients are averaged once per step, after all of the step's backward
  passes, in flat buckets (what ``DistributedDataParallel`` with ``no_sync``
  on all but the last backward does; done explicitly because one step runs
  several subnets' forward and backward passes, and PSE-Net's parallel
  forward is not ``Module.forward``);
* BN batch statistics stay per rank (as with DDP), so a 2-process run is not
  bit-equal to a 1-process run of the same global batch;
* only rank 0 writes files; :meth:`Dist.check_in_step` compares a checksum of
  the weights and pools of every rank after each epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as td
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from ..errors import PssError

BUCKET_BYTES = 32 << 20


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the group: rank, world size, and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return (self.rank, self.world)

    def device(self, name: str) -> torch.device:
        """The device of this rank for a config's ``device`` (``auto`` or ``cuda``: GPU ``LOCAL_RANK``)."""
        if name in ("auto", "cuda") and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank if self.active else 0)
        if name == "auto":
            return torch.device("cpu")
        return torch.device(name)

    # ------------------------------------------------------------------ collectives
    def mean(self, values: Sequence[float]) -> list[float]:
        """Each value averaged over the ranks (identical result on every rank)."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        td.all_reduce(t)
        return (t / self.world).tolist()

    def sum(self, values: Sequence[float]) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        td.all_reduce(t)
        return t.tolist()

    def average_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """grad <- mean over ranks, in flat buckets of about 32 MB (one all-reduce per bucket)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        bucket: list[torch.Tensor] = []
        size = 0
        for g in grads + [None]:
            if g is not None:
                bucket.append(g)
                size += g.numel() * g.element_size()
            if bucket and (g is None or size >= BUCKET_BYTES):
                flat = _flatten_dense_tensors(bucket)
                td.all_reduce(flat)
                flat /= self.world
                for dst, src in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                    dst.copy_(src)
                bucket, size = [], 0

    def average_tensors(self, tensors: Sequence[torch.Tensor], weight: float) -> None:
        """In place: sum over ranks of tensor * weight, divided by the summed weights (BN statistics of shards)."""
        if not self.active:
            return
        total = self.sum([weight])[0]
        for t in tensors:
            buf = t.detach().to(torch.float64) * weight
            td.all_reduce(buf)
            t.copy_((buf / max(total, 1e-12)).to(t.dtype))

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            td.barrier()

    def check_in_step(self, model: torch.nn.Module, pools: Sequence[Any]) -> None:
        """PssError unless every rank holds the same weights and pools (a checksum of each, compared on all ranks)."""
        if not self.active:
            return
        h = hashlib.sha256(json.dumps([p.to_json() for p in pools], sort_keys=True).encode())
        with torch.no_grad():
            weights = float(sum(p.detach().double().sum().item() for p in model.parameters()))
        mine = (h.hexdigest(), round(weights, 6))
        every: list[Any] = [None] * self.world
        td.all_gather_object(every, mine)
        if any(other != mine for other in every):
            raise PssError(f"the {self.world} training processes no longer agree (weights or pools differ: {every}); "
                           "this is a bug, please report it with the command you ran")

    def close(self) -> None:
        if self.active and td.is_initialized():
            td.destroy_process_group()


def from_environment(device: str = "auto") -> Dist:
    """Join the process group ``torchrun`` describes in the environment; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PssError(f"device {device!r} requested but CUDA is not available here; use --set device=cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local_rank)
