"""Training images: per-item seeded augmentation, featx's evaluation preprocessing, failures."""

from __future__ import annotations

import torch

from featx.dataset import load_collection
from featx.preprocess import load_preprocessed
from finetune.data import Failed, ImageSet, collate


def test_augmentation_is_fixed_by_the_item_seed(images):
    coll = load_collection(images, "60/20/20")
    idx = coll.indices("train")
    for augment in ("resnet", "vgg"):
        ds = ImageSet(coll, idx, 32, augment=augment)
        a, ya = ds[(3, 11)]
        b, _ = ds[(3, 11)]
        c, _ = ds[(3, 12)]
        assert a.dtype == torch.uint8 and a.shape == (3, 32, 32)
        assert ya == int(coll.labels[idx[3]])
        assert torch.equal(a, b) and not torch.equal(a, c), augment


def test_items_leave_the_global_rng_alone(images):
    coll = load_collection(images, "60/20/20")
    ds = ImageSet(coll, coll.indices("train"), 32, augment="resnet")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ds[(0, 1)]
    assert torch.equal(torch.rand(3), expected)


def test_evaluation_uses_featx_preprocessing(images):
    coll = load_collection(images, "60/20/20")
    idx = coll.indices("test")
    ds = ImageSet(coll, idx, 32)
    x, _ = ds[2]
    ref, err = load_preprocessed(coll.abspath(int(idx[2])), 32)
    assert err == "" and torch.equal(x, ref)


def test_collate_drops_failed_items(images, tmp_path):
    bad = tmp_path / "bad" / "anger"
    bad.mkdir(parents=True)
    (bad / "x.jpg").write_bytes(b"\xff\xd8 truncated")
    coll = load_collection(tmp_path / "bad", "100/0/0")
    (item,) = [ImageSet(coll, coll.indices("train"), 32)[0]]
    assert isinstance(item, Failed) and item.path == "anger/x.jpg"
    good = ImageSet(load_collection(images, "60/20/20"), [0, 1], 32)
    batch = collate([good[0], item, good[1]])
    assert batch.images.shape == (2, 3, 32, 32) and batch.labels.tolist() == [0, 0]
    assert [f.path for f in batch.failed] == ["anger/x.jpg"]
