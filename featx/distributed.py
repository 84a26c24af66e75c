"""Who am I in a torchrun job: rank and world size from its environment, the process group, and
the barrier. A plain `python -m featx` run is rank 0 of a world of 1 and never touches the
process group."""

from __future__ import annotations

import os
from datetime import timedelta
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def shard(self, items: list[int]) -> list[int]:
        """This rank's share of `items` (round-robin, so every rank gets a spread of the work)."""
        return list(items[self.rank::self.size])

    def broadcast(self, obj: object) -> object:
        """Rank 0's `obj` on every rank (so all ranks act on one view of the work folder)."""
        if self.size <= 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def from_env() -> World:
    """The World torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (a world of 1 without)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(rank=int(os.environ.get("RANK", "0")), size=size,
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> None:
    """Join the process group (nccl for CUDA devices, gloo on the CPU) when there is more than
    one process; torchrun's MASTER_ADDR / MASTER_PORT tell every rank where to meet."""
    if world.size <= 1 or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # nccl collectives use the current device
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    # generous timeout: after a resume one rank may wait at the final barrier for a slow shard
    dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size,
                            timeout=timedelta(hours=6), **kwargs)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
