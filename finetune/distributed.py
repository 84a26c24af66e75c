"""torchrun / DistributedDataParallel: process group from the environment, one device per
process (nccl on CUDA, gloo on CPU); only rank 0 writes files and shows progress."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from featx.errors import FeatxError


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0, distributed: bool = False) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FeatxError(f"--device {name}: CUDA is not available here")
        if distributed or name == "cuda":
            return torch.device("cuda", local_rank if distributed else torch.cuda.current_device())
    try:
        return torch.device(name)
    except RuntimeError:
        raise FeatxError(f"--device {name!r}: not a device (auto, cpu, cuda, cuda:N)") from None


def setup(device: str = "auto") -> Context:
    """The process's rank and device; joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local, world > 1)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Context(rank, world, local, dev)


def wrap(model: nn.Module, ctx: Context) -> nn.Module:
    """DDP over the currently trainable parameters (re-wrap when the trainable set changes)."""
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def gather(obj: object, ctx: Context) -> list:
    """Every rank's `obj`, in rank order (just [obj] without DDP)."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def sync_buffers(model: nn.Module, ctx: Context) -> None:
    """Rank 0's buffers (batch-norm statistics) on every rank: DDP only sends them at the next
    forward, so after an epoch's last step each rank still holds the statistics of its own
    batch."""
    if ctx.distributed:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast(obj: object, ctx: Context) -> object:
    """Rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
