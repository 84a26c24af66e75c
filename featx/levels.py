"""Level names (L0..L4, and `emb` for CLIP backbones) and the `--layers` / `--levels` syntax."""

from __future__ import annotations

from collections.abc import Iterable

from featx.errors import FeatxError

LEVELS: tuple[str, ...] = ("L0", "L1", "L2", "L3", "L4")
EMB = "emb"  # CLIP's projected image embedding
ALL_LEVELS: tuple[str, ...] = LEVELS + (EMB,)


def sort_levels(levels: Iterable[str]) -> list[str]:
    """Shallow to deep, `emb` last, no duplicates."""
    return sorted(set(levels), key=ALL_LEVELS.index)


def parse_levels(spec: str) -> list[str]:
    """'L0-L4' -> [L0..L4]; 'L3,L4' -> [L3, L4]; 'L4' -> [L4]; 'L0-L4,emb' adds emb. Sorted, no
    duplicates."""
    out: set[str] = set()
    for part in (p.strip().upper() for p in spec.split(",")):
        if not part:
            continue
        if part == EMB.upper():
            out.add(EMB)
        elif "-" in part:
            lo, hi = (s.strip() for s in part.split("-", 1))
            if lo not in LEVELS or hi not in LEVELS or LEVELS.index(lo) > LEVELS.index(hi):
                raise FeatxError(f"bad level range {part!r} in {spec!r}: use e.g. L0-L4")
            out.update(LEVELS[LEVELS.index(lo): LEVELS.index(hi) + 1])
        elif part in LEVELS:
            out.add(part)
        else:
            raise FeatxError(f"unknown level {part!r} in {spec!r}: levels are "
                             f"{', '.join(ALL_LEVELS)}")
    if not out:
        raise FeatxError(f"no level in {spec!r}")
    return sort_levels(out)
