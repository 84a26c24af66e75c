"""Weighted vs shuffle sampling, rank shares, per-epoch determinism, mid-epoch skip."""

from __future__ import annotations

import numpy as np

from finetune.sampler import EpochSampler, class_weights

# 8 classes, heavily imbalanced: 400 of class 0 down to 10 of class 7
COUNTS = [400, 200, 100, 80, 60, 40, 20, 10]
LABELS = np.repeat(np.arange(8), COUNTS)


def class_fractions(sampler: EpochSampler, epochs: int = 5) -> np.ndarray:
    drawn = []
    for e in range(epochs):
        sampler.set_epoch(e)
        drawn += [LABELS[i] for i, _ in sampler]
    return np.bincount(drawn, minlength=8) / len(drawn)


def test_weighted_sampler_draws_classes_uniformly():
    frac = class_fractions(EpochSampler(LABELS, "weighted", seed=0))
    assert np.abs(frac - 1 / 8).max() < 0.02, frac


def test_shuffle_keeps_the_data_proportions():
    s = EpochSampler(LABELS, "shuffle", seed=0)
    s.set_epoch(0)
    positions = [i for i, _ in s]
    assert sorted(positions) == list(range(len(LABELS)))  # a permutation
    assert positions != list(range(len(LABELS)))
    frac = class_fractions(s)
    assert np.allclose(frac, np.array(COUNTS) / sum(COUNTS))


def test_class_weights_are_inverse_frequency():
    w = class_weights(LABELS)
    assert np.allclose(w * np.array(COUNTS)[LABELS], 1.0)


def test_epochs_differ_and_repeat_exactly():
    s = EpochSampler(LABELS, "weighted", seed=3)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    s.set_epoch(0)
    assert list(s) == e0 and e0 != e1
    assert len({seed for _, seed in e0}) > len(e0) * 0.99  # own augmentation seed per item


def test_ranks_share_one_global_draw_without_overlap():
    for kind in ("weighted", "shuffle"):
        single = EpochSampler(LABELS, kind, seed=1)
        order, _ = single.global_order(2)
        shares = []
        for r in range(3):
            s = EpochSampler(LABELS, kind, seed=1, rank=r, world_size=3)
            s.set_epoch(2)
            shares.append(list(s))
        assert len({len(sh) for sh in shares}) == 1  # equal lengths keep DDP in step
        total = shares[0][0:0]
        for k in range(len(shares[0])):
            total += [shares[r][k] for r in range(3)]
        g_order, g_seeds = EpochSampler(LABELS, kind, seed=1, world_size=3).global_order(2)
        assert [i for i, _ in total] == g_order.tolist()
        if kind == "shuffle":
            assert set(g_order[:len(LABELS)]) == set(range(len(LABELS)))
            assert order.tolist() == g_order[:len(order)].tolist()


def test_skip_resumes_mid_epoch():
    s = EpochSampler(LABELS, "weighted", seed=0)
    s.set_epoch(4)
    full = list(s)
    s.set_epoch(4, skip=100)
    assert list(s) == full[100:] and len(s) == len(full) - 100
