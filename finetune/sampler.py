"""Epoch orders: class-balanced weighted sampling or shuffling, shared out over DDP ranks.

Each epoch's order is one global draw seeded by (seed, epoch); rank r takes every world-th item
from position r, so ranks never overlap and a resumed run sees the very same order. Every item
carries its own augmentation seed, so augmentation does not depend on workers or restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-item sampling weight, inversely proportional to its class's frequency."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    return 1.0 / counts[labels]


def _weighted(labels: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    w = class_weights(labels)
    return rng.choice(len(labels), size=total, replace=True, p=w / w.sum())


def _shuffle(labels: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    perm = rng.permutation(len(labels))
    return np.resize(perm, total)  # padding for equal rank shares repeats the first items


# name -> (labels, number of draws, generator) -> positions into labels
SAMPLERS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "weighted": _weighted,
    "shuffle": _shuffle,
}


class EpochSampler:
    """Yields (position, augmentation seed) pairs for this rank's share of an epoch."""

    def __init__(self, labels: np.ndarray, kind: str = "weighted", seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if kind not in SAMPLERS:
            raise ValueError(f"unknown sampler {kind!r}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.kind, self.seed, self.rank, self.world_size = kind, seed, rank, world_size
        self.epoch = 0
        self.skip = 0  # items of this rank's share already consumed (resuming mid-epoch)
        self.per_rank = -(-len(self.labels) // world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def global_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, augmentation seeds) of the whole epoch over all ranks."""
        rng = np.random.default_rng([self.seed, epoch])
        total = self.per_rank * self.world_size
        order = SAMPLERS[self.kind](self.labels, total, rng)
        return order, rng.integers(0, 2**31 - 1, size=total)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, seeds = self.global_order(self.epoch)
        mine = slice(self.rank, None, self.world_size)
        for i, s in list(zip(order[mine].tolist(), seeds[mine].tolist()))[self.skip:]:
            yield i, s

    def __len__(self) -> int:
        return self.per_rank - self.skip
