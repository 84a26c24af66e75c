"""The `featx` command: extract, info, demo. Heavy imports happen inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from featx.datasets.options import data_options
from featx.errors import one_line_errors


def _err(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featx")
def main() -> None:
    """Images -> multi-level CNN features (L0..L4) in one HDF5 cache.

    Reference: docs/ in the featx repository (cache.md: the cache format; datasets.md;
    backbones.md)."""


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--backbone", default="resnet101", show_default=True,
              help="a torchvision name (resnet50, convnext_base, vit_b_16, ...), "
                   "timm/<model>[.<tag>] or clip/<arch>:<tag>; `featx backbones` lists them")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet (= the source's pretrained weights), none (random, seeded by "
                   "--seed) or PATH to a state_dict (.pt/.pth/.safetensors)")
@click.option("--layers", default=None,
              help="e.g. L0-L4, L3,L4, L4, L0-L4,emb (default: L0-L4, and emb for CLIP)")
@click.option("--pool", default=None,
              help="maps: gap, gmp, gap+gmp, meanstd; tokens: cls, gap, cls+gap (default: gap "
                   "for maps, cls for tokens)")
@click.option("--image-size", default=None, type=int,
              help="input size (default: the model's own, e.g. 224)")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--workers", default=None, type=int,
              help="decoding processes (default: 1 on a small CPU box, most cores with a GPU)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default=None,
              help="stored feature type (default: float16 on CUDA, float32 on the CPU)")
@click.option("--split", default=None,
              help="train/val/test percentages (default: the dataset's official split, else "
                   "80/5/15), kfold:K (a fold per image) or kfold:K:F (fold F as test)")
@click.option("--seed", default=0, show_default=True, type=int)
@data_options()
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="cache file (default: cache/<data>-<backbone>-<pool>.h5)")
@click.option("--chunk-size", type=int, default=None,
              help="images per resumable chunk, a multiple of --batch-size (default ~256 on "
                   "the CPU, ~2048 on a GPU)")
@click.option("--decode", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="where JPEGs are decoded (gpu: nvJPEG on the CUDA device)")
@click.option("--prompts", type=click.Path(path_type=Path), default=None,
              help="CLIP zero-shot templates, one per line with {} for the class name "
                   "(default: featx's emotion templates); stored in the cache")
@click.option("--fast-decode", is_flag=True,
              help="decode large JPEGs at a reduced scale (libjpeg draft): faster, but not the "
                   "pixels of the full decode; recorded in the fingerprint")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar or messages")
@one_line_errors
def extract(data: Path, backbone: str, weights: str, layers: str, pool: str | None,
            image_size: int | None,
            batch_size: int, workers: int | None, device: str, dtype: str | None, split: str,
            seed: int, fmt: str | None, conflicts: str, label: str, agree: str, task: str,
            out: Path | None, chunk_size: int | None, decode: str, prompts: Path | None,
            fast_decode: bool, quiet: bool, **read_options: str | None) -> None:
    """Extract pooled L0..L4 features of DATA (class folders, a CSV, a published dataset:
    FI, EmoSet, Emotion6, ArtPhoto, Abstract, Twitter I/II, a local Hugging Face dataset or
    WebDataset shards) into a cache.

    Safe to kill at any moment: the same command resumes where it stopped. Under
    `torchrun --nproc-per-node N -m featx extract ...` the ranks share the work."""
    from featx import distributed
    from featx.extract import ExtractConfig, describe_failures, run_extract
    from featx.pathnames import show

    cfg = ExtractConfig(data=data, backbone=backbone, weights=weights, layers=layers, pool=pool,
                        image_size=image_size, batch_size=batch_size, workers=workers,
                        device=device, dtype=dtype, split=split, seed=seed, out=out,
                        quiet=quiet, chunk_size=chunk_size, decode=decode, prompts=prompts,
                        format=fmt, conflicts=conflicts, label=label, agree=int(agree),
                        task=task, fast_decode=fast_decode, **read_options)
    try:
        result = run_extract(cfg, log=_err)
    finally:
        distributed.shutdown()
    if quiet or result.status == "shard-done":
        return
    if result.status == "written":
        _err(f"wrote {show(result.out)}: {result.n} images in {result.seconds:.1f} s")
    for line in describe_failures(result):
        _err(line)
    click.echo(show(result.out))


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--backbone", required=True, help="as for extract")
@click.option("--image-size", default=None, type=int,
              help="input size (default: the model's own)")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="folder for <name>.npy (the normalised input) and <name>.png")
@click.option("--fast-decode", is_flag=True, help="as for extract")
@click.option("--quiet", "-q", is_flag=True)
@one_line_errors
def preview(images: tuple[Path, ...], backbone: str, image_size: int | None, out: Path,
            fast_decode: bool, quiet: bool) -> None:
    """Write what the model receives for each of IMAGES: the normalised float32 [3, H, W]
    tensor (.npy) and its de-normalised picture (.png)."""
    from featx.pixels.preview import write_previews

    write_previews(list(images), backbone, out, image_size=image_size, fast=fast_decode,
                   log=(lambda msg: None) if quiet else click.echo)


@main.command()
@click.argument("cache", type=click.Path(path_type=Path))
@click.option("--failures", default=5, show_default=True, help="how many failures to list")
@one_line_errors
def info(cache: Path, failures: int) -> None:
    """Summary of CACHE: settings, levels and dims, counts per class and split, failures."""
    from featx.info import summary

    click.echo(summary(cache, max_failures=failures))


@main.command()
@click.argument("cache", type=click.Path(path_type=Path))
@click.option("--to", "to", type=click.Choice(["parquet", "npz"]), required=True,
              help="parquet (pandas, polars, DuckDB) or npz (numpy)")
@click.option("--levels", default=None, help="e.g. L4 or L3,L4 (default: every level)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output file (default: CACHE with the format's suffix)")
@click.option("--quiet", "-q", is_flag=True)
@one_line_errors
def export(cache: Path, to: str, levels: str | None, out: Path | None, quiet: bool) -> None:
    """Write CACHE as one table, a row per image: path, label, split/fold, valid, error, each
    level as a fixed-size list column (npz: an [n, D] array), label_dist, extra columns."""
    from featx.ecosystem.export import export as run
    from featx.pathnames import show

    written = run(cache, to, levels, out)
    if not quiet:
        _err(f"wrote {show(written)}")
    click.echo(show(written))


@main.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("cache/demo"))
@click.option("--per-class", default=60, show_default=True, help="images per class")
@click.option("--size", default=112, show_default=True, help="image size in pixels")
@click.option("--quiet", "-q", is_flag=True)
@one_line_errors
def demo(folder: Path, per_class: int, size: int, quiet: bool) -> None:
    """Offline demo: generate an 8-class image set in FOLDER, extract its features with
    resnet18, and show what to run next."""
    from featx.demo import run_demo
    from featx.info import summary

    result, next_commands = run_demo(folder, per_class=per_class, size=size, quiet=quiet,
                                     log=_err)
    click.echo(f"\nfeature cache: {result.out}"
               + (" (reused)" if result.status == "up-to-date" else ""))
    click.echo(summary(result.out))
    click.echo("\nnext:")
    for cmd in next_commands:
        click.echo(f"  {cmd}")
    click.echo("(the timm/ and clip/ extractions download their pretrained weights once; "
               "offline, add --weights none)")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--timm", "timm_pattern", default=None,
              help="list timm's pretrained names matching a pattern, e.g. 'vit_*dinov2*'")
@click.option("--clip", "clip_list", is_flag=True, help="list open_clip's arch:tag pairs")
@click.option("--json", "as_json", is_flag=True, help="JSON rows instead of a table")
@one_line_errors
def backbones(names: tuple[str, ...], timm_pattern: str | None, clip_list: bool,
              as_json: bool) -> None:
    """What --backbone takes: NAMES (default: the torchvision models and some timm / CLIP
    examples) with family, level dims L0..L4[,emb], input size, weights source, cached here."""
    import json

    if timm_pattern:
        import timm
        for n in timm.list_pretrained(timm_pattern):
            click.echo(f"timm/{n}")
        return
    if clip_list:
        import open_clip
        for arch, tag in open_clip.list_pretrained():
            click.echo(f"clip/{arch}:{tag}")
        return
    from featx.listing import rows, table

    items = rows(names)
    click.echo(json.dumps(items, indent=1) if as_json else table(items))
