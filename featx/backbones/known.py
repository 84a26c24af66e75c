"""The default `featx backbones` listing without building a model or importing torch: the rows of
the listed names, resolved once and kept in known_rows.json (checked against live resolution by
tests/featx/test_backbones_listing.py), used while the installed torchvision / timm / open_clip
are the versions and featx's code is the code they were made with (else the names are resolved
live). `python -m featx.backbones.known` rewrites the file."""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FILE = Path(__file__).with_name("known_rows.json")
LIBRARIES = ("torchvision", "timm", "open_clip_torch")


# featx's own code that decides a row: rows made by other code are not used
SOURCES = ("backbones/*.py", "listing.py", "preprocess.py", "levels.py", "pooling.py")
NOT_ROWS = ("conformance.py",)  # the sweep's reference: no part of a row


def versions() -> dict[str, str]:
    """The library versions and a hash of featx's code the stored rows were made with."""
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = ""
    root = Path(__file__).parents[1]
    h = hashlib.sha256()
    for path in sorted(p for pattern in SOURCES for p in root.glob(pattern)
                       if p.name not in NOT_ROWS):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    out["featx"] = h.hexdigest()[:16]
    return out


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch (TORCH_HOME, else XDG_CACHE_HOME/torch)."""
    home = os.getenv("TORCH_HOME") or os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
                                                   "torch")
    return Path(os.path.expanduser(home)) / "hub"


def on_disk(probe: dict) -> bool:
    """Whether a row's pretrained weights are in the Hugging Face or torch hub cache."""
    if probe.get("repo"):
        from huggingface_hub import try_to_load_from_cache

        for name in probe.get("files", []):
            p = try_to_load_from_cache(probe["repo"], name)
            if isinstance(p, str) and os.path.isfile(p):
                return True
    url = probe.get("url")
    return bool(url) and (torch_hub_dir() / "checkpoints" / url.rsplit("/", 1)[-1]
                          .split("?")[0]).is_file()


def probe_of(bb) -> dict:
    """Where `on_disk` looks for a backbone's weights (the source's own `cached` rule)."""
    from featx.backbones import open_clip, timm

    if bb.source == "torchvision":
        return {"url": bb.ref.DEFAULT.url}
    cfg = bb.extra["pretrained_cfg"]
    files = timm._FILES if bb.source == "timm" else open_clip._FILES
    repo = (cfg.get("hf_hub_id") or cfg.get("hf_hub") or "").rstrip("/")
    return {"repo": repo, "url": cfg.get("url") or "",
            "files": ([cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else [])
            + list(files)}


def rows() -> list[dict] | None:
    """The stored default rows (with `cached` looked up now), or None when the file is missing
    or was made with other library versions."""
    try:
        data = json.loads(FILE.read_text())
    except (OSError, ValueError):
        return None
    if data.get("versions") != versions():
        return None
    return [{**r, "cached": on_disk(p)} for r, p in zip(data["rows"], data["probes"])]


def write() -> None:
    """Resolve the default names live and store their rows (atomically)."""
    from featx.backbones import get_backbone, list_backbones
    from featx.listing import EXAMPLES, describe

    names = list_backbones() + list(EXAMPLES)
    live = [describe(n) for n in names]
    data = {"versions": versions(),
            "rows": [{k: v for k, v in r.items() if k != "cached"} for r in live],
            "probes": [probe_of(get_backbone(n)) for n in names]}
    tmp = FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=0) + "\n")
    os.replace(tmp, FILE)


if __name__ == "__main__":
    write()
