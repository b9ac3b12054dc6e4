"""Data-parallel training under the standard launchers (``torchrun``, ``accelerate launch``).

Both launchers start one process per device and describe it in the environment (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); :func:`init_distributed` reads it. One
process without those variables is a world of one: nothing changes.

How the data is split: every optimisation step draws one *global* batch of
``batch_size x world_size`` frame indices from a generator seeded by (seed, step, micro-step), and
rank r reads only its slice r. So the ranks see disjoint samples (the data is sharded per step),
the sample stream does not depend on how many processes share it, and a run with N processes of
batch B follows the same global batches as one process with batch N x B - which is also why resume
works across a change of world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The rank that writes checkpoints, logs and progress."""
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group the launcher set up (gloo on CPU, NCCL on CUDA); returns this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown_distributed() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def mean_across_ranks(value: float, info: DistInfo, device: torch.device) -> float:
    """The mean of ``value`` over all ranks (itself in a world of one)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def steps_share(is_pad: torch.Tensor, info: DistInfo, device: torch.device) -> float:
    """world_size x this rank's fraction of the global batch's non-padded action steps (1 in a world of one)."""
    if not info.enabled:
        return 1.0
    mine = float((~is_pad.bool()).sum())
    total = torch.tensor([mine], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return info.world_size * mine / max(1.0, float(total.item()))


def batch_indices(n: int, batch_size: int, seed: int, step: int, micro: int, info: DistInfo) -> np.ndarray:
    """The calling rank's slice of the global batch of optimisation step ``step`` (see the module docstring)."""
    rng = np.random.default_rng([seed, step, micro])
    global_batch = rng.integers(0, n, size=batch_size * info.world_size)
    return global_batch[info.rank * batch_size:(info.rank + 1) * batch_size]
