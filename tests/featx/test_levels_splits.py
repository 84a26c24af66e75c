import numpy as np
import pytest

from featx.errors import FeatxError
from featx.levels import LEVELS, parse_levels
from featx.splits import parse_split, stratified_split


@pytest.mark.parametrize("spec,expected", [
    ("L0-L4", list(LEVELS)), ("L3,L4", ["L3", "L4"]), ("L4", ["L4"]), ("l4, L0", ["L0", "L4"]),
    ("L1-L2,L4", ["L1", "L2", "L4"]),
])
def test_parse_levels(spec, expected):
    assert parse_levels(spec) == expected


@pytest.mark.parametrize("spec", ["L5", "L3-L1", "", "layer4"])
def test_parse_levels_rejects(spec):
    with pytest.raises(FeatxError):
        parse_levels(spec)


def test_parse_split():
    assert parse_split("80/5/15") == pytest.approx((0.8, 0.05, 0.15))
    assert parse_split("90/5/5") == pytest.approx((0.9, 0.05, 0.05))
    for bad in ("80/20", "a/b/c", "-1/50/51", "0/0/0"):
        with pytest.raises(FeatxError, match="--split"):
            parse_split(bad)


def test_stratified_split_fractions_and_seed():
    labels = np.repeat(np.arange(4), 100)
    groups = np.arange(400)
    s = stratified_split(labels, groups, "80/5/15", seed=0)
    for c in range(4):
        counts = np.bincount(s[labels == c], minlength=3)
        assert counts.tolist() == [80, 5, 15]
    assert np.array_equal(s, stratified_split(labels, groups, "80/5/15", seed=0))
    assert not np.array_equal(s, stratified_split(labels, groups, "80/5/15", seed=1))


def test_duplicate_groups_stay_together():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    groups = np.arange(300)
    groups[100:200] = groups[:100]  # 100 pairs
    for seed in range(5):
        s = stratified_split(labels, groups, "60/20/20", seed=seed)
        assert np.array_equal(s[:100], s[100:200])
