"""Level names (L0..L4) and the `--layers` / `--levels` syntax."""

from __future__ import annotations

from featx.errors import FeatxError

LEVELS: tuple[str, ...] = ("L0", "L1", "L2", "L3", "L4")


def parse_levels(spec: str) -> list[str]:
    """'L0-L4' -> [L0..L4]; 'L3,L4' -> [L3, L4]; 'L4' -> [L4]. Sorted, no duplicates."""
    out: set[str] = set()
    for part in (p.strip().upper() for p in spec.split(",")):
        if not part:
            continue
        if "-" in part:
            lo, hi = (s.strip() for s in part.split("-", 1))
            if lo not in LEVELS or hi not in LEVELS or LEVELS.index(lo) > LEVELS.index(hi):
                raise FeatxError(f"bad level range {part!r} in {spec!r}: use e.g. L0-L4")
            out.update(LEVELS[LEVELS.index(lo): LEVELS.index(hi) + 1])
        elif part in LEVELS:
            out.add(part)
        else:
            raise FeatxError(f"unknown level {part!r} in {spec!r}: levels are {', '.join(LEVELS)}")
    if not out:
        raise FeatxError(f"no level in {spec!r}")
    return sorted(out, key=LEVELS.index)
