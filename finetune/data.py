"""Images of a featx Collection for training and evaluation, with each recipe's augmentation.

Items are decoded in loader workers into uint8 tensors; normalisation runs on the device
(`normalizer`: ImageNet's for the paper recipes, the backbone's own for the modern ones). Images
that cannot be decoded are dropped from their batch and reported by the batch, so a bad file
never stops training.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from featx.dataset import Collection
from featx.decode import DecodeError, load_image
from featx.backbones import Preprocess
from featx.preprocess import normalize, to_model_input, to_uint8_tensor


Transform = Callable[[Image.Image], Image.Image]


def _interpolation(pre: Preprocess | None) -> T.InterpolationMode:
    return T.InterpolationMode(pre.interpolation if pre else "bilinear")


def _resnet_train(size: int, pre: Preprocess | None = None) -> Transform:
    return T.Compose([T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip()])


def _vgg_train(size: int, pre: Preprocess | None = None) -> Transform:
    return T.Compose([T.Resize(size, antialias=True), T.RandomHorizontalFlip(),
                      T.RandomRotation(10), T.CenterCrop(size)])


def _rrc_flip(size: int, pre: Preprocess | None = None) -> Transform:
    """Random resized crop (scale 0.08-1) and horizontal flip, in the backbone's interpolation."""
    return T.Compose([T.RandomResizedCrop(size, interpolation=_interpolation(pre),
                                          antialias=True), T.RandomHorizontalFlip()])


def eval_transform(size: int, pre: Preprocess | None = None) -> Transform:
    """featx extract's: the backbone's own resize + centre crop (featx.preprocess); without `pre`,
    the papers': shorter side to `size`, bilinear, centre crop."""
    pp = pre.at_size(size) if pre is not None else Preprocess(size, size)
    return lambda img: to_model_input(img, pp)


# name -> (image size, the backbone's preprocessing or None) -> training transform on PIL images
# (augment "none" = the eval transform)
AUGMENTATIONS: dict[str, Callable[[int, Preprocess | None], Transform]] = {
    "resnet": _resnet_train,
    "vgg": _vgg_train,
    "rrc_flip": _rrc_flip,
    "none": eval_transform,
}


def normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Callable[[Tensor], Tensor]:
    """uint8 [B, 3, H, W] on any device -> float32 normalised with `mean`/`std` (featx's)."""
    return functools.partial(normalize, dtype=torch.float32, mean=tuple(mean), std=tuple(std))


@dataclass
class Failed:
    path: str
    reason: str


class ImageSet(Dataset):
    """Items `indices` of a collection. A key is a position, or (position, augmentation seed)
    for training; returns (uint8 [3, S, S], label) or Failed; with `soft`, the target is the
    image's label distribution (float32 [C]) instead of its label."""

    def __init__(self, collection: Collection, indices: np.ndarray, size: int,
                 augment: str | None = None, pre: Preprocess | None = None,
                 soft: bool = False):
        self.collection = collection
        self.indices = np.asarray(indices, dtype=np.int64)
        self.size = size
        self.labels = collection.labels[self.indices].astype(np.int64)
        self.dist = (np.asarray(collection.label_dist[self.indices], dtype=np.float32)
                     if soft else None)
        self.transform = AUGMENTATIONS[augment](size, pre) if augment else eval_transform(size,
                                                                                          pre)
        self.train = augment is not None
        # training's random crops: JPEGs decoded at a reduced scale still >= twice the size;
        # evaluation decodes in full, as featx extract (the same pixels)
        self.draft = size * 2 if self.train else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]):
        pos, seed = key if isinstance(key, tuple) else (key, 0)
        i = int(self.indices[pos])
        try:
            img = load_image(self.collection.image(i), draft_size=self.draft)
        except DecodeError as e:
            return Failed(self.collection.paths[i], str(e))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            img = self.transform(img)
        if self.dist is not None:
            return to_uint8_tensor(img), torch.from_numpy(self.dist[pos])
        return to_uint8_tensor(img), int(self.labels[pos])


@dataclass
class Batch:
    images: Tensor  # uint8 [B, 3, S, S]
    labels: Tensor  # int64 [B], or float32 [B, C] label distributions
    failed: list[Failed]

    def __len__(self) -> int:
        return len(self.labels)

    def pin_memory(self) -> "Batch":
        return Batch(self.images.pin_memory(), self.labels.pin_memory(), self.failed)


def collate(items: list) -> Batch:
    ok = [it for it in items if not isinstance(it, Failed)]
    failed = [it for it in items if isinstance(it, Failed)]
    if not ok:
        return Batch(torch.zeros(0, 3, 1, 1, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64),
                     failed)
    ys = [y for _, y in ok]
    return Batch(torch.stack([im for im, _ in ok]),
                 torch.stack(ys) if isinstance(ys[0], Tensor)
                 else torch.tensor(ys, dtype=torch.int64), failed)


def make_loader(dataset: ImageSet, batch_size: int, workers: int, sampler=None,
                drop_last: bool = False, pin_memory: bool = False,
                persistent: bool = False) -> DataLoader:
    """`persistent`: keep the workers from one pass to the next (the sampler is still iterated
    anew, in this process, at each pass)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      num_workers=workers, collate_fn=collate, drop_last=drop_last,
                      pin_memory=pin_memory, persistent_workers=persistent and workers > 0,
                      # the loader's own seed is unused (items carry theirs); a private generator
                      # keeps it from drawing on the global RNG the training loop resumes from
                      generator=torch.Generator().manual_seed(0))
