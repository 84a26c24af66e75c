"""Files -> batches of uint8 image tensors, decoded in DataLoader workers.

Batches follow a fixed plan (`chunk_batches`): they never cross a chunk boundary, so a batch holds
the same images whether a run was interrupted or not and whichever rank runs it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from featx.errors import FeatxError
from featx.backbones.registry import Preprocess
from featx.preprocess import FAST_DECODE, PREPROCESSING, as_preprocess, load_preprocessed

WORKER_TIMEOUT_S = 600
Batch = tuple[Tensor, Tensor, list[str]]  # row indices, uint8 [B, 3, S, S], error per row


class ImageFiles(Dataset):
    """Item i: (i, uint8 [3, S, S], '') or (i, zeros, reason) for a file that cannot be used."""

    def __init__(self, paths: Sequence[Path], image_size: int | Preprocess, fast: bool = False):
        # paths, or images inside shards/tables (featx.datasets.members) as they are
        self.paths = [str(p) if isinstance(p, Path) else p for p in paths]
        self.pp = as_preprocess(image_size)
        self.image_size = self.pp.input_size
        self.fast = fast  # --fast-decode: JPEG draft decoding

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Tensor, str]:
        try:
            img, error = load_preprocessed(self.paths[i], self.pp, self.fast)
        except Exception as e:  # a decoder bug must cost one image, not the run
            img = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
            error = f"unexpected decoding error ({type(e).__name__}: {e})"
        return i, img, error


def collate(items: list[tuple[int, Tensor, str]]) -> Batch:
    return (torch.tensor([i for i, _, _ in items], dtype=torch.long),
            torch.stack([x for _, x, _ in items]), [e for _, _, e in items])


class ChunkBatches:
    """Row indices of every batch of the given chunks, in order; chunk k = rows [k*cs, (k+1)*cs).
    Generated lazily: memory stays flat however many images there are."""

    def __init__(self, chunks: Sequence[int], chunk_size: int, batch_size: int, n: int):
        self.chunks, self.chunk_size, self.batch_size, self.n = list(chunks), chunk_size, \
            batch_size, n

    def _bounds(self, k: int) -> range:
        return range(k * self.chunk_size, min(self.n, (k + 1) * self.chunk_size))

    def __iter__(self) -> Iterator[list[int]]:
        for k in self.chunks:
            rows = self._bounds(k)
            for start in range(rows.start, rows.stop, self.batch_size):
                yield list(range(start, min(start + self.batch_size, rows.stop)))

    def __len__(self) -> int:
        return sum(math.ceil(len(self._bounds(k)) / self.batch_size) for k in self.chunks)

    def n_rows(self) -> int:
        return sum(len(self._bounds(k)) for k in self.chunks)


def default_workers(device_type: str, local_world: int | None = None) -> int:
    """Decoding processes per rank. On the CPU, decoding competes with the forward for cores and
    one worker keeps up with any CNN there; a GPU wants every spare core decoding. The cores are
    shared among the `local_world` processes of this machine (default: torchrun's
    LOCAL_WORLD_SIZE, 1 without torchrun)."""
    if local_world is None:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, (cores or 1) // max(1, local_world))
    if device_type == "cuda":
        return max(1, min(16, cores - 1))
    return 1 if cores <= 4 else max(1, min(4, cores // 4))


def make_loader(dataset: Dataset, batches: Iterable[list[int]], workers: int,
                pin_memory: bool, collate_fn=collate) -> Iterator:
    """A DataLoader over `batches` in order (workers keep order), a few batches read ahead."""
    kwargs = {}
    if workers > 0:
        # a worker that cannot hand over its batch (e.g. /dev/shm full) would otherwise hang us
        kwargs = {"prefetch_factor": 4, "persistent_workers": False, "timeout": WORKER_TIMEOUT_S}
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                        collate_fn=collate_fn, pin_memory=pin_memory, **kwargs)
    try:
        yield from loader
    except RuntimeError as e:  # worker killed, timed out, shared memory exhausted
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FeatxError(f"image loading failed ({first}); try --workers 0 or fewer "
                         f"workers") from None


@dataclass(frozen=True)
class Decoder:
    """One way of turning files into uint8 batches on the device: a Dataset for the workers, its
    collate, and `finish(batch, device)` run in the main process (the CPU path only moves it)."""

    name: str
    preprocessing: str  # recorded in the fingerprint: decoders differ in the last bits
    dataset: Callable[[Sequence[Path], int], Dataset]
    collate: Callable
    finish: Callable[[object, torch.device, int], Batch]

    def fast(self) -> "Decoder":
        """The same decoder with --fast-decode (JPEG draft decoding), recorded as such."""
        return replace(self, preprocessing=f"{self.preprocessing},{FAST_DECODE}",
                       dataset=functools.partial(self.dataset, fast=True))


def _move(batch: Batch, device: torch.device, image_size: int) -> Batch:
    idx, images, errors = batch
    return idx, images.to(device, non_blocking=True), errors


CPU_DECODER = Decoder("cpu", PREPROCESSING, ImageFiles, collate, _move)
